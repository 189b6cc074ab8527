#!/usr/bin/env python3
"""Pushes the images the UI flow browses, through the ECR API with boto3, and prints what
was pushed as JSON: the layers of `team-a/web:1.0` (digest and size, in manifest order), the
digest of `team-b/secret:classified`, a registry token of the reader key, the digest of the
image archived in `team-a/worker`, the bytes each repository holds (its blobs, each once, and
its manifests: what the UI's Size column counts), and the image pushed to eu-west-1.

`team-a/web:1.0` is pulled (BatchGetImage) so that it has a recorded pull time, and the seed
waits until DescribeImages reports it (run.sh writes pull times every second).

Expects ENDPOINT; the admin and reader keys are the ones run.sh configures.
"""

import base64
import hashlib
import json
import os
import random
import time

import boto3
from botocore.config import Config

ENDPOINT = os.environ["ENDPOINT"]


# What each repository holds, as the UI counts it: {repo: {digest: size}} for blobs and for
# manifests.
HELD = {}


def client(key, region="us-east-1"):
    return boto3.client(
        "ecr",
        endpoint_url=ENDPOINT,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=key + "-secret",
        config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60),
    )


def push_blob(ecr, repo, data):
    up = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=0,
                          partLastByte=len(data) - 1, layerPartBlob=data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    ecr.complete_layer_upload(repositoryName=repo, uploadId=up, layerDigests=[digest])
    HELD.setdefault(repo, {})[digest] = len(data)
    return digest


def put_image(ecr, repo, manifest, tag):
    out = ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag=tag)
    digest = out["image"]["imageId"]["imageDigest"]
    HELD.setdefault(repo, {})[digest] = len(manifest.encode())
    return digest


def push_image(ecr, repo, tag, arch, layer_sizes, seed):
    rnd = random.Random(seed)
    config = json.dumps({
        "architecture": arch, "os": "linux", "created": "2026-12-01T10:00:00Z",
        "config": {"Entrypoint": ["/usr/bin/web"], "Cmd": ["--port", "8080"],
                   "Env": [f"BUILD={seed}"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    }).encode()
    cd = push_blob(ecr, repo, config)
    layers = []
    for n in layer_sizes:
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": push_blob(ecr, repo, data), "size": n})
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd, "size": len(config)},
        "layers": layers,
    })
    return put_image(ecr, repo, manifest, tag), manifest, layers


def main():
    admin = client("AKIDADMIN")
    for repo in ["team-a/web", "team-a/worker", "team-b/secret", "tools/builder"]:
        admin.create_repository(repositoryName=repo)
    digest, manifest, layers = push_image(admin, "team-a/web", "1.0", "amd64",
                                          [180_000, 64_000, 2_500], 1)
    arm, arm_manifest, _ = push_image(admin, "team-a/web", "1.0-arm64", "arm64", [150_000], 2)
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
             "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm,
             "size": len(arm_manifest),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    })
    put_image(admin, "team-a/web", index, "latest")
    old, _, _ = push_image(admin, "team-a/worker", "2.3.1", "amd64", [90_000, 12_000], 3)
    push_image(admin, "team-a/worker", "2.4.0", "amd64", [95_000], 5)
    # The older worker goes to the archive storage class: listed, no longer pullable.
    admin.update_image_storage_class(repositoryName="team-a/worker",
                                     imageId={"imageDigest": old},
                                     targetStorageClass="ARCHIVE")
    # A pull of team-a/web:1.0, recorded as its lastRecordedPullTime.
    admin.batch_get_image(repositoryName="team-a/web", imageIds=[{"imageTag": "1.0"}])
    for _ in range(100):
        got = admin.describe_images(repositoryName="team-a/web",
                                    imageIds=[{"imageTag": "1.0"}])["imageDetails"][0]
        if "lastRecordedPullTime" in got:
            break
        time.sleep(0.2)
    else:
        raise SystemExit("the pull of team-a/web:1.0 was not recorded within 20 s")
    # A second region's registry: its own repository.
    eu = client("AKIDADMIN", "eu-west-1")
    eu.create_repository(repositoryName="eu/api")
    eu_digest, _, _ = push_image(eu, "eu/api", "3.0", "arm64", [70_000], 6)
    secret, _, _ = push_image(admin, "team-b/secret", "classified", "amd64", [40_000], 4)
    admin.put_lifecycle_policy(repositoryName="team-a/web", lifecyclePolicyText=json.dumps({
        "rules": [{"rulePriority": 1, "description": "Keep the last 30 images",
                   "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                 "countNumber": 30},
                   "action": {"type": "expire"}}]}))
    token = client("AKIDREADER").get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)[1]
    print(json.dumps({"digest": digest, "layers": layers, "secret": secret,
                      "reader_token": password, "archived": old, "eu_digest": eu_digest,
                      "bytes": {repo: sum(held.values()) for repo, held in HELD.items()}}))


if __name__ == "__main__":
    main()
