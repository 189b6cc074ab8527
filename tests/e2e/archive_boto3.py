#!/usr/bin/env python3
"""Issue 15's image archival (update_image_storage_class, the imageStatus filters) and pull-time
tracking (lastRecordedPullTime, the pull-time update exclusions), driven by boto3 against a
running berth server (run.sh starts it with the default restore delay and flush interval, so
this waits for both, within bounds). Reuses boto3_flow.py's client and check helpers; prints
one "PASS: ..." / "FAIL: ..." line per check and, last, "CHECKS passed=N failed=M". Exit status
is 0 only when every check passed.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boto3_flow as f  # noqa: E402
from boto3_flow import check, check_eq, ecr, expect_error, section  # noqa: E402

REPO = "boto3-archive/app"
ARN = "arn:aws:iam::000000000000:user/AKIDEXAMPLE"


def push(tag, note):
    config = f.make_config(note)
    layer = f"archive layer {note}".encode()
    f.upload_blob(REPO, config)
    layer_digest = f.upload_blob(REPO, layer)
    manifest = f.make_manifest(config, [layer])
    return f.put(REPO, manifest, tag)["image"]["imageId"]["imageDigest"], layer_digest


def statuses(status=None):
    kw = {"filter": {"imageStatus": status}} if status else {}
    return sorted(d["imageDigest"] for d in ecr.describe_images(repositoryName=REPO, **kw)["imageDetails"])


def detail(digest):
    return ecr.describe_images(repositoryName=REPO, imageIds=[{"imageDigest": digest}])["imageDetails"][0]


def wait_for(desc, cond, limit=30):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            check(desc, True)
            return True
        time.sleep(0.5)
    check(desc, False, f"not within {limit} s")
    return False


def archival():
    ecr.create_repository(repositoryName=REPO)
    old, layer = push("old", "one")
    new, _ = push("new", "two")
    r = ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageTag": "old"},
                                       targetStorageClass="ARCHIVE")
    check_eq("update_image_storage_class ARCHIVE answers ARCHIVED with the image",
             (r["imageStatus"], r["imageId"]), ("ARCHIVED", {"imageDigest": old, "imageTag": "old"}))
    check_eq("describe_images lists ACTIVE images by default", statuses(), [new])
    check_eq("the ARCHIVED filter", statuses("ARCHIVED"), [old])
    check_eq("list_images with the ARCHIVED filter",
             [i["imageDigest"] for i in ecr.list_images(repositoryName=REPO,
                                                        filter={"imageStatus": "ARCHIVED"})["imageIds"]],
             [old])
    check("lastArchivedAt is shown", "lastArchivedAt" in detail(old))
    got = ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "old"}])
    check_eq("batch_get_image of an archived image fails",
             [x["failureCode"] for x in got["failures"]], ["ImageInaccessible"])
    expect_error("get_download_url_for_layer of its layer", "LayerInaccessibleException",
                 ecr.get_download_url_for_layer, repositoryName=REPO, layerDigest=layer)
    expect_error("archiving it again", "ImageStorageClassUpdateNotSupportedException",
                 ecr.update_image_storage_class, repositoryName=REPO, imageId={"imageDigest": old},
                 targetStorageClass="ARCHIVE")
    expect_error("an unknown storage class", "InvalidParameterException",
                 ecr.update_image_storage_class, repositoryName=REPO, imageId={"imageDigest": old},
                 targetStorageClass="GLACIER")
    expect_error("a missing image", "ImageNotFoundException",
                 ecr.update_image_storage_class, repositoryName=REPO, imageId={"imageTag": "none"},
                 targetStorageClass="ARCHIVE")
    r = ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageDigest": old},
                                       targetStorageClass="STANDARD")
    check_eq("a restore starts ACTIVATING", r["imageStatus"], "ACTIVATING")
    expect_error("a second restore while it runs", "ImageStorageClassUpdateNotSupportedException",
                 ecr.update_image_storage_class, repositoryName=REPO, imageId={"imageDigest": old},
                 targetStorageClass="STANDARD")
    if wait_for("the restore completes", lambda: detail(old)["imageStatus"] == "ACTIVE"):
        check("lastActivatedAt is shown", "lastActivatedAt" in detail(old))
        got = ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "old"}])
        check_eq("and the image is pulled again", len(got["images"]), 1)


def pull_times():
    digest, _ = push("pulled", "three")
    check("a new image has no pull time", "lastRecordedPullTime" not in detail(digest))
    ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "pulled"}])
    wait_for("batch_get_image records lastRecordedPullTime",
             lambda: "lastRecordedPullTime" in detail(digest), limit=20)
    r = ecr.register_pull_time_update_exclusion(principalArn=ARN)
    check_eq("register_pull_time_update_exclusion", (r["principalArn"], "createdAt" in r), (ARN, True))
    expect_error("registering it twice", "ExclusionAlreadyExistsException",
                 ecr.register_pull_time_update_exclusion, principalArn=ARN)
    expect_error("a principal that is no IAM user or role", "InvalidParameterException",
                 ecr.register_pull_time_update_exclusion,
                 principalArn="arn:aws:iam::000000000000:group/devs")
    check_eq("list_pull_time_update_exclusions",
             ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"], [ARN])
    excluded, _ = push("excluded", "four")
    ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "excluded"}])
    time.sleep(7)  # longer than the server's flush interval (5 s by default)
    check("an excluded principal's pull is not recorded",
          "lastRecordedPullTime" not in detail(excluded))
    check_eq("deregister_pull_time_update_exclusion",
             ecr.deregister_pull_time_update_exclusion(principalArn=ARN)["principalArn"], ARN)
    expect_error("deregistering it twice", "ExclusionNotFoundException",
                 ecr.deregister_pull_time_update_exclusion, principalArn=ARN)
    ecr.delete_repository(repositoryName=REPO, force=True)


def main():
    print(f"== archive_boto3: endpoint {f.ENDPOINT}", flush=True)
    for fn in (archival, pull_times):
        section(fn)
    print(f"CHECKS passed={f.passed} failed={f.failed}", flush=True)
    return 0 if f.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
