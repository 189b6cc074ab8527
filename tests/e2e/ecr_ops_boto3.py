#!/usr/bin/env python3
"""Issue 15's repository settings, scanning configuration, referrers and creation templates,
driven by boto3 against a running berth server (run.sh starts it). Reuses boto3_flow.py's
client and check helpers; prints one "PASS: ..." / "FAIL: ..." line per check and, last,
"CHECKS passed=N failed=M". Exit status is 0 only when every check passed.
"""

import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boto3_flow as f  # noqa: E402
from boto3_flow import check, check_eq, ecr, expect_error, section  # noqa: E402

REPO = "boto3-ops/app"


def push(repo, tag, note):
    config = f.make_config(note)
    layer = f"layer {note}".encode()
    f.upload_blob(repo, config)
    f.upload_blob(repo, layer)
    manifest = f.make_manifest(config, [layer])
    return manifest, f.put(repo, manifest, tag)["image"]["imageId"]["imageDigest"]


def tag_mutability():
    ecr.create_repository(repositoryName=REPO)
    m1, _ = push(REPO, "v1", "one")
    m2, _ = push(REPO, "v2", "two")
    r = ecr.put_image_tag_mutability(
        repositoryName=REPO, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest*"}])
    check_eq("put_image_tag_mutability answers the setting",
             (r["imageTagMutability"], r["imageTagMutabilityExclusionFilters"]),
             ("IMMUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": "latest*"}]))
    d = ecr.describe_repositories(repositoryNames=[REPO])["repositories"][0]
    check_eq("describe_repositories shows the exclusion filters",
             d.get("imageTagMutabilityExclusionFilters"), [{"filterType": "WILDCARD", "filter": "latest*"}])
    expect_error("moving an immutable tag", "ImageTagAlreadyExistsException",
                 f.put, REPO, m2, "v1")
    f.put(REPO, m1, "latest-1")
    f.put(REPO, m2, "latest-1")
    check("an excluded tag moves", True)
    expect_error("filters with MUTABLE", "InvalidParameterException", ecr.put_image_tag_mutability,
                 repositoryName=REPO, imageTagMutability="MUTABLE",
                 imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "x"}])
    expect_error("put_image_tag_mutability of a missing repository", "RepositoryNotFoundException",
                 ecr.put_image_tag_mutability, repositoryName="boto3-ops/none",
                 imageTagMutability="IMMUTABLE")
    r = ecr.put_image_scanning_configuration(repositoryName=REPO,
                                             imageScanningConfiguration={"scanOnPush": True})
    check_eq("put_image_scanning_configuration", r["imageScanningConfiguration"], {"scanOnPush": True})


def scanning():
    check_eq("get_registry_scanning_configuration of a new registry",
             ecr.get_registry_scanning_configuration()["scanningConfiguration"],
             {"scanType": "BASIC", "rules": []})
    rules = [{"scanFrequency": "SCAN_ON_PUSH",
              "repositoryFilters": [{"filter": "boto3-ops/*", "filterType": "WILDCARD"}]}]
    r = ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    check_eq("put_registry_scanning_configuration answers what it stored",
             r["registryScanningConfiguration"], {"scanType": "BASIC", "rules": rules})
    check_eq("get_registry_scanning_configuration returns it exactly",
             ecr.get_registry_scanning_configuration()["scanningConfiguration"],
             {"scanType": "BASIC", "rules": rules})
    b = ecr.batch_get_repository_scanning_configuration(repositoryNames=[REPO, "boto3-ops/none"])
    c = b["scanningConfigurations"][0]
    check_eq("a rule applies to the repository its filter matches",
             (c["scanFrequency"], c["appliedScanFilters"]), ("SCAN_ON_PUSH", rules[0]["repositoryFilters"]))
    check_eq("a missing repository is a failure",
             [(x["repositoryName"], x["failureCode"]) for x in b["failures"]],
             [("boto3-ops/none", "REPOSITORY_NOT_FOUND")])
    expect_error("continuous scanning with BASIC", "InvalidParameterException",
                 ecr.put_registry_scanning_configuration, scanType="BASIC",
                 rules=[dict(rules[0], scanFrequency="CONTINUOUS_SCAN")])
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])
    expect_error("start_image_scan without a scanner", "UnsupportedImageTypeException",
                 ecr.start_image_scan, repositoryName=REPO, imageId={"imageTag": "v1"})
    expect_error("describe_image_scan_findings of an image never scanned", "ScanNotFoundException",
                 ecr.describe_image_scan_findings, repositoryName=REPO, imageId={"imageTag": "v1"})
    expect_error("start_image_scan of a missing image", "ImageNotFoundException",
                 ecr.start_image_scan, repositoryName=REPO, imageId={"imageTag": "nope"})


def referrers():
    manifest, subject = push(REPO, "subject", "subject")
    config = b"{}"
    f.upload_blob(REPO, config)
    art = ('{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.example.sbom",'
           '"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[],'
           '"subject":{"mediaType":"%s","digest":"%s","size":%d}}'
           % (f.OCI_MANIFEST, f.sha256_digest(config), f.OCI_MANIFEST, subject, len(manifest)))
    f.put(REPO, art, imageDigest=f.sha256_digest(art.encode()))
    r = ecr.list_image_referrers(repositoryName=REPO, subjectId={"imageDigest": subject})
    check_eq("list_image_referrers lists the artifact",
             [(x["digest"], x.get("artifactType"), x.get("artifactStatus")) for x in r["referrers"]],
             [(f.sha256_digest(art.encode()), "application/vnd.example.sbom", "ACTIVE")])
    r = ecr.list_image_referrers(repositoryName=REPO, subjectId={"imageDigest": subject},
                                 filter={"artifactTypes": ["application/vnd.example.sig"]})
    check_eq("an artifact type filter", r["referrers"], [])
    expect_error("list_image_referrers with maxResults 51", "InvalidParameterException",
                 ecr.list_image_referrers, repositoryName=REPO, subjectId={"imageDigest": subject},
                 maxResults=51)


def templates():
    t = ecr.create_repository_creation_template(
        prefix="boto3-tpl", appliedFor=["CREATE_ON_PUSH"], imageTagMutability="IMMUTABLE",
        resourceTags=[{"Key": "team", "Value": "py"}])["repositoryCreationTemplate"]
    check_eq("create_repository_creation_template", (t["prefix"], t["appliedFor"]),
             ("boto3-tpl", ["CREATE_ON_PUSH"]))
    expect_error("a second template of one prefix", "TemplateAlreadyExistsException",
                 ecr.create_repository_creation_template, prefix="boto3-tpl", appliedFor=["REPLICATION"])
    u = ecr.update_repository_creation_template(prefix="boto3-tpl", description="py")
    check_eq("update_repository_creation_template", u["repositoryCreationTemplate"]["description"], "py")
    # A /v2 push creates the repository from the template.
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    name = "boto3-tpl/app"
    config = f.make_config("tpl")
    req = urllib.request.Request(
        f"{f.ENDPOINT}/v2/{name}/blobs/uploads/?digest={f.sha256_digest(config)}", data=config,
        method="POST", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(req, timeout=f.HTTP_TIMEOUT) as resp:
        check_eq("a /v2 push to a missing repository under a template", resp.status, 201)
    d = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    check_eq("the repository has the template's mutability", d["imageTagMutability"], "IMMUTABLE")
    check_eq("and its tags", ecr.list_tags_for_resource(resourceArn=d["repositoryArn"])["tags"],
             [{"Key": "team", "Value": "py"}])
    check_eq("describe_repository_creation_templates",
             [x["prefix"] for x in ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]],
             ["boto3-tpl"])
    ecr.delete_repository_creation_template(prefix="boto3-tpl")
    expect_error("delete of a deleted template", "TemplateNotFoundException",
                 ecr.delete_repository_creation_template, prefix="boto3-tpl")
    ecr.delete_repository(repositoryName=name, force=True)
    ecr.delete_repository(repositoryName=REPO, force=True)


def main():
    print(f"== ecr_ops_boto3: endpoint {f.ENDPOINT}", flush=True)
    for fn in (tag_mutability, scanning, referrers, templates):
        section(fn)
    print(f"CHECKS passed={f.passed} failed={f.failed}", flush=True)
    return 0 if f.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
