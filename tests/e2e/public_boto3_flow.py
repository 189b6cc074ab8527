#!/usr/bin/env python3
"""End-to-end flow of ECR Public against a running berth server, driven by boto3's
`ecr-public` client: every operation, multipart layers, paging, and refusals.

Expects ENDPOINT and dummy AWS credentials in the environment (run.sh sets them up). Prints
one "PASS: ..." / "FAIL: ..." line per check and, last, "CHECKS passed=N failed=M".
Each section runs under its own time limit; an unexpected exception in a section counts as
one failure and the next section still runs.
"""

import base64
import hashlib
import json
import os
import signal
import sys
import traceback
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["ENDPOINT"]
SECTION_TIMEOUT = int(os.environ.get("SECTION_TIMEOUT", "180"))
HTTP_TIMEOUT = int(os.environ.get("STEP_TIMEOUT", "60"))
MiB = 1024 * 1024
REPO = "py-pub/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def client(region="us-east-1"):
    return boto3.client(
        "ecr-public",
        endpoint_url=ENDPOINT,
        region_name=region,
        config=Config(connect_timeout=5, read_timeout=HTTP_TIMEOUT,
                      retries={"mode": "standard", "total_max_attempts": 1}),
    )


pub = client()
passed = 0
failed = 0


def ok(desc):
    global passed
    passed += 1
    print(f"PASS: {desc}", flush=True)


def bad(desc):
    global failed
    failed += 1
    print(f"FAIL: {desc}", flush=True)


def check(desc, cond, detail=""):
    (ok if cond else lambda d: bad(f"{d}: {detail}"))(desc)
    return bool(cond)


def check_eq(desc, actual, expected):
    return check(desc, actual == expected, f"expected {expected!r}, got {actual!r}")


def expect_error(desc, code, fn, **kwargs):
    try:
        resp = fn(**kwargs)
    except ClientError as e:
        got = e.response.get("Error", {}).get("Code")
        check(f"{desc} -> {code}", got == code, f"got {got!r}: {e.response.get('Error', {}).get('Message')!r}")
        return e.response
    bad(f"{desc}: expected {code}, the call succeeded: {str(resp)[:300]}")
    return None


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(data, parts, registry_id=None):
    extra = {"registryId": registry_id} if registry_id else {}
    up = pub.initiate_layer_upload(repositoryName=REPO, **extra)
    check("initiate advertises a part size", up["partSize"] > 0, up)
    off = 0
    for size in parts:
        end = min(off + size, len(data))
        r = pub.upload_layer_part(repositoryName=REPO, uploadId=up["uploadId"], partFirstByte=off,
                                  partLastByte=end - 1, layerPartBlob=data[off:end], **extra)
        check_eq("upload-layer-part lastByteReceived", r["lastByteReceived"], end - 1)
        off = end
    done = pub.complete_layer_upload(repositoryName=REPO, uploadId=up["uploadId"], layerDigests=[digest(data)], **extra)
    check_eq("complete-layer-upload digest", done["layerDigest"], digest(data))
    return done["layerDigest"]


def registry():
    r = pub.describe_registries()["registries"]
    check_eq("one registry", len(r), 1)
    global ALIAS, ACCOUNT
    ALIAS = r[0]["aliases"][0]["name"]
    ACCOUNT = r[0]["registryId"]
    check_eq("not verified", r[0]["verified"], False)
    pub.put_registry_catalog_data(displayName="Py")
    check_eq("registry display name", pub.get_registry_catalog_data()["registryCatalogData"].get("displayName"), "Py")
    expect_error("display name of 101 characters", "InvalidParameterException",
                 pub.put_registry_catalog_data, displayName="x" * 101)


def repositories():
    logo = b"\x89PNG\r\n\x1a\npython"
    r = pub.create_repository(repositoryName=REPO, catalogData={
        "description": "py", "architectures": ["ARM"], "logoImageBlob": logo}, tags=[{"Key": "k", "Value": "v"}])
    check_eq("repositoryArn", r["repository"]["repositoryArn"], f"arn:aws:ecr-public::{ACCOUNT}:repository/{REPO}")
    url = r["catalogData"].get("logoUrl", "")
    check("logoUrl is on the server", url.startswith(ENDPOINT), url)
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as resp:
        check_eq("logo bytes served", resp.read(), logo)
    names = [x["repositoryName"] for x in pub.describe_repositories()["repositories"]]
    check_eq("describe-repositories", names, [REPO])
    pub.put_repository_catalog_data(repositoryName=REPO, catalogData={"usageText": "run it"})
    c = pub.get_repository_catalog_data(repositoryName=REPO)["catalogData"]
    check_eq("catalog data replaced", (c.get("usageText"), c.get("description"), c.get("logoUrl")), ("run it", None, None))
    arn = r["repository"]["repositoryArn"]
    pub.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}])
    pub.untag_resource(resourceArn=arn, tagKeys=["k"])
    check_eq("tags", pub.list_tags_for_resource(resourceArn=arn)["tags"], [{"Key": "a", "Value": "1"}])
    expect_error("205+1 characters", "InvalidParameterException", pub.create_repository, repositoryName="b" * 206)
    expect_error("201 tags", "InvalidParameterException", pub.tag_resource, resourceArn=arn,
                 tags=[{"Key": f"k{i}", "Value": "v"} for i in range(201)])
    expect_error("logo over 512000 bytes", "InvalidParameterException", pub.put_repository_catalog_data,
                 repositoryName=REPO, catalogData={"logoImageBlob": b"\0" * 512001})
    expect_error("51 operating systems", "InvalidParameterException", pub.put_repository_catalog_data,
                 repositoryName=REPO, catalogData={"operatingSystems": [f"os{i}" for i in range(51)]})


def layers_and_images():
    layer = os.urandom(5 * MiB + 10)
    ld = push_blob(layer, [5 * MiB, 10], registry_id=ALIAS)
    config = json.dumps({"architecture": "arm64", "os": "linux"}).encode()
    cd = push_blob(config, [len(config)])
    avail = pub.batch_check_layer_availability(repositoryName=REPO, layerDigests=[ld, digest(b"none")])
    check_eq("availability", [l["layerAvailability"] for l in avail["layers"]], ["AVAILABLE", "UNAVAILABLE"])
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": len(layer)}]},
                          separators=(",", ":"))
    img = pub.put_image(repositoryName=REPO, imageManifest=manifest, imageTag="1.0")["image"]
    check_eq("put-image digest", img["imageId"]["imageDigest"], digest(manifest.encode()))
    for i in range(3):
        pub.put_image(repositoryName=REPO, imageManifest=manifest, imageTag=f"extra-{i}")
    d = pub.describe_images(repositoryName=REPO)["imageDetails"]
    check_eq("one image, four tags", (len(d), len(d[0].get("imageTags", []))), (1, 4))
    tags = [t["imageTag"] for t in pub.get_paginator("describe_image_tags").paginate(repositoryName=REPO).build_full_result()["imageTagDetails"]]
    check_eq("describe-image-tags (paginated)", sorted(tags), ["1.0", "extra-0", "extra-1", "extra-2"])
    gone = pub.batch_delete_image(repositoryName=REPO, imageIds=[{"imageTag": "extra-0"}, {"imageTag": "nope"}])
    check_eq("batch-delete-image", ([i.get("imageTag") for i in gone["imageIds"]], [f["failureCode"] for f in gone["failures"]]),
             (["extra-0"], ["ImageNotFound"]))
    expect_error("layer part over the model's 20 MiB", "InvalidParameterException", pub.upload_layer_part,
                 repositoryName=REPO, uploadId=pub.initiate_layer_upload(repositoryName=REPO)["uploadId"],
                 partFirstByte=0, partLastByte=20 * MiB, layerPartBlob=b"\0" * (20 * MiB + 1))
    expect_error("complete with a wrong digest", "InvalidLayerException", pub.complete_layer_upload,
                 repositoryName=REPO, uploadId=_one_part_upload(b"abc"), layerDigests=[digest(b"abd")])


def _one_part_upload(data):
    up = pub.initiate_layer_upload(repositoryName=REPO)["uploadId"]
    pub.upload_layer_part(repositoryName=REPO, uploadId=up, partFirstByte=0, partLastByte=len(data) - 1, layerPartBlob=data)
    return up


def policies_and_tokens():
    expect_error("no policy yet", "RepositoryPolicyNotFoundException", pub.get_repository_policy, repositoryName=REPO)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "s", "Effect": "Allow",
                        "Principal": "*", "Action": ["ecr-public:BatchCheckLayerAvailability"]}]})
    pub.set_repository_policy(repositoryName=REPO, policyText=policy)
    check_eq("policy", json.loads(pub.get_repository_policy(repositoryName=REPO)["policyText"]), json.loads(policy))
    pub.delete_repository_policy(repositoryName=REPO)
    data = pub.get_authorization_token()["authorizationData"]
    check("token is AWS:<password>", base64.b64decode(data["authorizationToken"]).startswith(b"AWS:"), data)
    check("expiresAt is a datetime", hasattr(data["expiresAt"], "timestamp"), data)
    expect_error("us-west-2", "UnsupportedCommandException", client("us-west-2").get_authorization_token)


def cleanup():
    expect_error("delete without force", "RepositoryNotEmptyException", pub.delete_repository, repositoryName=REPO)
    pub.delete_repository(repositoryName=REPO, force=True)
    check_eq("no repositories left", pub.describe_repositories()["repositories"], [])


def _alarm(signum, frame):
    raise TimeoutError(f"section exceeded {SECTION_TIMEOUT}s")


def section(fn):
    print(f"== {fn.__name__}", flush=True)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECTION_TIMEOUT)
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - everything is reported
        tb = traceback.format_exc(limit=3).strip().splitlines()
        bad(f"section {fn.__name__} raised {type(e).__name__}: {str(e)[:400]} [{' | '.join(tb[-3:])}]")
    finally:
        signal.alarm(0)


ALIAS = ACCOUNT = None


def main():
    print(f"== public_boto3_flow: endpoint {ENDPOINT} (boto3 {boto3.__version__})", flush=True)
    for fn in (registry, repositories, layers_and_images, policies_and_tokens, cleanup):
        section(fn)
    print(f"CHECKS passed={passed} failed={failed}", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
