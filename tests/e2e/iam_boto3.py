#!/usr/bin/env python3
"""boto3 under identity policies (issue 19): an admin key, a push-only CI key (team-a/*) and a
pull-only developer key, against a berth server started with those keys (the Rust test
`iam::boto3_with_push_only_pull_only_and_admin_keys` starts it and runs this script).

Usage: iam_boto3.py ENDPOINT. Keys: AKIDADMIN, AKIDCI, AKIDDEV, secrets "<id>-secret".
Exits 0 when every check passed; prints the first failure otherwise.
"""

import hashlib
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = sys.argv[1]


def client(key):
    return boto3.client(
        "ecr",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=f"{key}-secret",
        config=Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )


admin, ci, dev = client("AKIDADMIN"), client("AKIDCI"), client("AKIDDEV")


def denied(call, **kw):
    try:
        call(**kw)
    except ClientError as e:
        code = e.response["Error"]["Code"]
        assert code == "AccessDeniedException", f"{call.__name__}: {code}"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return e.response["Error"]["Message"]
    raise AssertionError(f"{call.__name__} {kw} was allowed")


def push_layer(c, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    up = c.initiate_layer_upload(repositoryName=repo)["uploadId"]
    c.upload_layer_part(
        repositoryName=repo, uploadId=up, partFirstByte=0,
        partLastByte=len(data) - 1, layerPartBlob=data,
    )
    c.complete_layer_upload(repositoryName=repo, uploadId=up, layerDigests=[digest])
    return digest


for name in ("team-a/boto", "team-b/boto"):
    admin.create_repository(repositoryName=name)

# CI pushes an image to team-a.
config = b'{"architecture":"amd64","os":"linux"}'
layer = b"boto3 layer " * 100
cd = push_layer(ci, "team-a/boto", config)
ld = push_layer(ci, "team-a/boto", layer)
manifest = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": len(layer)}],
})
ci.put_image(repositoryName="team-a/boto", imageManifest=manifest, imageTag="v1")
# ... not to team-b, and it cannot pull.
msg = denied(ci.initiate_layer_upload, repositoryName="team-b/boto")
assert "because no identity-based policy allows the ecr:InitiateLayerUpload action" in msg, msg
denied(ci.batch_get_image, repositoryName="team-a/boto", imageIds=[{"imageTag": "v1"}])
denied(ci.delete_repository, repositoryName="team-a/boto", force=True)
# The developer pulls, byte for byte, and cannot push or delete.
got = dev.batch_get_image(repositoryName="team-a/boto", imageIds=[{"imageTag": "v1"}])
assert got["images"][0]["imageManifest"] == manifest, got
url = dev.get_download_url_for_layer(repositoryName="team-a/boto", layerDigest=ld)
assert url["layerDigest"] == ld
denied(dev.put_image, repositoryName="team-a/boto", imageManifest=manifest, imageTag="v2")
denied(dev.initiate_layer_upload, repositoryName="team-a/boto")
denied(dev.batch_delete_image, repositoryName="team-a/boto", imageIds=[{"imageTag": "v1"}])
denied(dev.create_repository, repositoryName="team-c/boto")
# Both get registry tokens (their policies allow ecr:GetAuthorizationToken).
for c in (ci, dev):
    assert c.get_authorization_token()["authorizationData"][0]["authorizationToken"]
# The admin sees exactly what was stored.
ids = admin.list_images(repositoryName="team-a/boto")["imageIds"]
assert [i.get("imageTag") for i in ids] == ["v1"], ids
assert admin.list_images(repositoryName="team-b/boto")["imageIds"] == []
print("iam_boto3: all checks passed")
