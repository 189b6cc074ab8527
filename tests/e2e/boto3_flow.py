#!/usr/bin/env python3
"""End-to-end flow against a running berth server, driven by boto3.

Expects ENDPOINT (http://127.0.0.1:PORT) and dummy AWS credentials in the environment
(run.sh sets them up).  Prints one "PASS: ..." / "FAIL: ..." line per check and, as the
last line, "CHECKS passed=N failed=M".  Exit status is 0 only when every check passed.

Each section runs under its own time limit (SIGALRM); an unexpected exception or a
timeout in a section counts as one failed check and the next section still runs.
"""

import base64
import datetime
import hashlib
import json
import os
import signal
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["ENDPOINT"]
SECTION_TIMEOUT = int(os.environ.get("SECTION_TIMEOUT", "180"))
HTTP_TIMEOUT = int(os.environ.get("STEP_TIMEOUT", "60"))

MiB = 1024 * 1024
MIN_PART = 5 * MiB
MAX_PART = 20 * MiB
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

REPO = "py-e2e/app"
REPO_IMM = "py-e2e/immutable"
REPO_PAGES = "py-e2e/pages"
MISSING_REPO = "py-e2e/does-not-exist"
PAGE_REPOS = [f"py-e2e/page-{i}" for i in range(7)]

ecr = boto3.client(
    "ecr",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    config=Config(
        connect_timeout=5,
        read_timeout=HTTP_TIMEOUT,
        # one attempt only: the test must see the server's first answer
        retries={"mode": "standard", "total_max_attempts": 1},
    ),
)

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


def brief(resp):
    """A response without ResponseMetadata, for failure messages."""
    if isinstance(resp, dict):
        return {k: v for k, v in resp.items() if k != "ResponseMetadata"}
    return resp


def check(desc, cond, detail=""):
    if cond:
        ok(desc)
    else:
        bad(f"{desc}{': ' + str(detail) if detail != '' else ''}")
    return bool(cond)


def check_eq(desc, actual, expected):
    return check(desc, actual == expected, f"expected {expected!r}, got {actual!r}")


def expect_error(desc, code, fn, *args, **kwargs):
    """Call fn(*args, **kwargs); it must raise ClientError with Error.Code == code. Returns e.response."""
    try:
        resp = fn(*args, **kwargs)
    except ClientError as e:
        got = e.response.get("Error", {}).get("Code")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        check(f"{desc} -> {code}", got == code,
              f"got error code {got!r} (HTTP {status}): {e.response.get('Error', {}).get('Message')!r}")
        return e.response
    bad(f"{desc}: expected {code}, call succeeded: {str(brief(resp))[:300]}")
    return None


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class SectionTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise SectionTimeout(f"section exceeded {SECTION_TIMEOUT}s")


def section(fn):
    """Run one section; unexpected exceptions count as a single failure."""
    print(f"== {fn.__name__}", flush=True)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECTION_TIMEOUT)
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - we report everything
        tb = traceback.format_exc(limit=3).strip().splitlines()
        bad(f"section {fn.__name__} raised {type(e).__name__}: {str(e)[:400]} [{' | '.join(tb[-3:])}]")
    finally:
        signal.alarm(0)


def http_get(url, headers=None):
    """Plain GET without any AWS auth; only 127.0.0.1 URLs are fetched. Returns (status, body)."""
    host = urllib.parse.urlsplit(url).hostname
    if host != "127.0.0.1":
        raise AssertionError(f"refusing to fetch non-local URL {url!r}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=HTTP_TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --------------------------------------------------------------------------- helpers
def upload_blob(repo, data, part_sizes=None, desc="blob"):
    """InitiateLayerUpload + UploadLayerPart x N + CompleteLayerUpload. Returns the digest."""
    digest = sha256_digest(data)
    up = ecr.initiate_layer_upload(repositoryName=repo)
    upload_id = up["uploadId"]
    if not part_sizes:
        part_sizes = [len(data)]
    first = 0
    for n, size in enumerate(part_sizes, 1):
        last = first + size - 1
        r = ecr.upload_layer_part(repositoryName=repo, uploadId=upload_id, partFirstByte=first,
                                  partLastByte=last, layerPartBlob=data[first:last + 1])
        if r["lastByteReceived"] != last:
            raise AssertionError(f"{desc} part {n}: lastByteReceived {r['lastByteReceived']} != {last}")
        first = last + 1
    assert first == len(data), "part sizes do not add up"
    r = ecr.complete_layer_upload(repositoryName=repo, uploadId=upload_id, layerDigests=[digest])
    if r["layerDigest"] != digest:
        raise AssertionError(f"{desc}: layerDigest {r['layerDigest']} != {digest}")
    return digest


def make_config(note):
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"note": note}},
                       "rootfs": {"type": "layers", "diff_ids": []}}, separators=(",", ":")).encode()


def make_manifest(config_bytes, layers, annotations=None):
    """layers: list of bytes objects. Returns the manifest as a str (exact bytes = .encode())."""
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256_digest(b), "size": len(b)} for b in layers],
    }
    if annotations:
        m["annotations"] = annotations
    # two-space indentation on purpose: the digest must be over the exact bytes sent
    return json.dumps(m, indent=2)


def put(repo, manifest, tag=None, **extra):
    kwargs = dict(repositoryName=repo, imageManifest=manifest, imageManifestMediaType=OCI_MANIFEST, **extra)
    if tag is not None:
        kwargs["imageTag"] = tag
    return ecr.put_image(**kwargs)


# shared state between sections
S = {}

# raw response bodies seen by the client, per operation name (for wire-format checks)
RAW = {}


def _capture_raw(operation_model=None, response_dict=None, **_):
    if operation_model is not None and response_dict is not None:
        RAW[operation_model.name] = response_dict


ecr.meta.events.register("before-parse.ecr.*", _capture_raw)


def raw_call(target, body, sign=True, region="us-east-1"):
    """POST / with X-Amz-Target = AmazonEC2ContainerRegistry_V20150921.<target>, optionally
    SigV4-signed with the dummy credentials. Returns (status, headers (lower-case keys), parsed JSON or None)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921." + target,
               "Content-Type": "application/x-amz-json-1.1"}
    req = AWSRequest(method="POST", url=ENDPOINT + "/", data=body, headers=headers)
    if sign:
        creds = Credentials(os.environ.get("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                            os.environ.get("AWS_SECRET_ACCESS_KEY", "secret"))
        SigV4Auth(creds, "ecr", region).add_auth(req)
    prepared = req.prepare()
    assert urllib.parse.urlsplit(prepared.url).hostname == "127.0.0.1"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    r = urllib.request.Request(prepared.url, data=body, method="POST", headers=dict(prepared.headers.items()))
    try:
        with opener.open(r, timeout=HTTP_TIMEOUT) as resp:
            status, hdrs, data = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, data = e.code, e.headers, e.read()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = None
    return status, {k.lower(): v for k, v in hdrs.items()}, parsed


# --------------------------------------------------------------------------- sections
def repositories():
    r = ecr.create_repository(repositoryName=REPO, tags=[{"Key": "env", "Value": "dev"}])["repository"]
    check_eq("create_repository repositoryName", r["repositoryName"], REPO)
    check("create_repository repositoryArn", r["repositoryArn"].startswith("arn:aws:ecr:")
          and r["repositoryArn"].endswith(":repository/" + REPO), r["repositoryArn"])
    check("create_repository registryId is 12 digits", len(r["registryId"]) == 12 and r["registryId"].isdigit(),
          r["registryId"])
    check("create_repository createdAt is a datetime", isinstance(r.get("createdAt"), datetime.datetime),
          r.get("createdAt"))
    check_eq("create_repository default imageTagMutability", r.get("imageTagMutability"), "MUTABLE")
    S["arn"] = r["repositoryArn"]

    r2 = ecr.create_repository(repositoryName=REPO_IMM, imageTagMutability="IMMUTABLE")["repository"]
    check_eq("create_repository IMMUTABLE", r2.get("imageTagMutability"), "IMMUTABLE")
    ecr.create_repository(repositoryName=REPO_PAGES)

    d = ecr.describe_repositories(repositoryNames=[REPO, REPO_IMM])["repositories"]
    check_eq("describe_repositories by name", sorted(x["repositoryName"] for x in d), sorted([REPO, REPO_IMM]))

    expect_error("describe_repositories of a missing repo", "RepositoryNotFoundException",
                 ecr.describe_repositories, repositoryNames=[MISSING_REPO])
    expect_error("create_repository twice", "RepositoryAlreadyExistsException",
                 ecr.create_repository, repositoryName=REPO)

    try:
        tags = ecr.list_tags_for_resource(resourceArn=S["arn"])["tags"]
        check_eq("list_tags_for_resource returns env=dev", tags, [{"Key": "env", "Value": "dev"}])
    except ClientError as e:
        bad(f"list_tags_for_resource failed: {e}")


def multipart_upload():
    layer = os.urandom(12 * MiB)
    digest = sha256_digest(layer)
    S["layer"], S["layer_digest"] = layer, digest

    r = ecr.batch_check_layer_availability(repositoryName=REPO, layerDigests=[digest])
    check_eq("batch_check_layer_availability before upload -> UNAVAILABLE",
             [x["layerAvailability"] for x in r.get("layers", []) if x["layerDigest"] == digest], ["UNAVAILABLE"])

    up = ecr.initiate_layer_upload(repositoryName=REPO)
    uid = up["uploadId"]
    check(f"initiate_layer_upload partSize within [{MIN_PART}, {MAX_PART}]",
          MIN_PART <= up.get("partSize", -1) <= MAX_PART, up.get("partSize"))

    r = ecr.upload_layer_part(repositoryName=REPO, uploadId=uid, partFirstByte=0, partLastByte=MIN_PART - 1,
                              layerPartBlob=layer[:MIN_PART])
    check_eq("upload_layer_part 1 lastByteReceived", r["lastByteReceived"], MIN_PART - 1)
    check_eq("upload_layer_part echoes repositoryName", r.get("repositoryName"), REPO)
    check_eq("upload_layer_part echoes uploadId", r.get("uploadId"), uid)

    # out-of-order part: first byte skips one byte
    resp = expect_error("upload_layer_part with a gap (partFirstByte = last+2)", "InvalidLayerPartException",
                        ecr.upload_layer_part, repositoryName=REPO, uploadId=uid, partFirstByte=MIN_PART + 1,
                        partLastByte=2 * MIN_PART, layerPartBlob=layer[MIN_PART + 1:2 * MIN_PART + 1])
    if resp is not None:
        check_eq("InvalidLayerPartException lastValidByteReceived", resp.get("lastValidByteReceived"), MIN_PART - 1)
        check_eq("InvalidLayerPartException uploadId", resp.get("uploadId"), uid)
    # a resend of part 1 is out of order too
    resp = expect_error("upload_layer_part resending part 1", "InvalidLayerPartException",
                        ecr.upload_layer_part, repositoryName=REPO, uploadId=uid, partFirstByte=0,
                        partLastByte=MIN_PART - 1, layerPartBlob=layer[:MIN_PART])
    if resp is not None:
        check_eq("resend: lastValidByteReceived", resp.get("lastValidByteReceived"), MIN_PART - 1)
    # blob length disagreeing with first/last
    expect_error("upload_layer_part whose blob length != last-first+1", "InvalidLayerPartException",
                 ecr.upload_layer_part, repositoryName=REPO, uploadId=uid, partFirstByte=MIN_PART,
                 partLastByte=2 * MIN_PART - 1, layerPartBlob=layer[MIN_PART:MIN_PART + 10])

    # the upload continues after the rejected parts
    r = ecr.upload_layer_part(repositoryName=REPO, uploadId=uid, partFirstByte=MIN_PART,
                              partLastByte=2 * MIN_PART - 1, layerPartBlob=layer[MIN_PART:2 * MIN_PART])
    check_eq("upload_layer_part 2 lastByteReceived", r["lastByteReceived"], 2 * MIN_PART - 1)
    r = ecr.upload_layer_part(repositoryName=REPO, uploadId=uid, partFirstByte=2 * MIN_PART,
                              partLastByte=len(layer) - 1, layerPartBlob=layer[2 * MIN_PART:])
    check_eq("upload_layer_part 3 (2 MiB) lastByteReceived", r["lastByteReceived"], len(layer) - 1)

    r = ecr.complete_layer_upload(repositoryName=REPO, uploadId=uid, layerDigests=[digest])
    check_eq("complete_layer_upload layerDigest", r["layerDigest"], digest)
    expect_error("upload_layer_part after completion", "UploadNotFoundException",
                 ecr.upload_layer_part, repositoryName=REPO, uploadId=uid, partFirstByte=len(layer),
                 partLastByte=len(layer), layerPartBlob=b"x")

    r = ecr.batch_check_layer_availability(repositoryName=REPO, layerDigests=[digest])
    check_eq("batch_check_layer_availability after upload -> AVAILABLE, layerSize",
             [(x["layerAvailability"], x.get("layerSize")) for x in r["layers"] if x["layerDigest"] == digest],
             [("AVAILABLE", len(layer))])
    # blobs are per repository
    r = ecr.batch_check_layer_availability(repositoryName=REPO_PAGES, layerDigests=[digest])
    check_eq("layer uploaded to another repository is UNAVAILABLE here",
             [x["layerAvailability"] for x in r.get("layers", []) if x["layerDigest"] == digest], ["UNAVAILABLE"])

    # second (small) layer + config
    small = os.urandom(3000)
    S["small"] = small
    check_eq("small layer single-part upload", upload_blob(REPO, small, desc="small layer"), sha256_digest(small))
    cfg = make_config("app")
    S["config"] = cfg
    check_eq("config single-part upload", upload_blob(REPO, cfg, desc="config"), sha256_digest(cfg))


def upload_errors():
    expect_error("initiate_layer_upload in a missing repository", "RepositoryNotFoundException",
                 ecr.initiate_layer_upload, repositoryName=MISSING_REPO)
    expect_error("upload_layer_part with an unknown uploadId", "UploadNotFoundException",
                 ecr.upload_layer_part, repositoryName=REPO, uploadId="00000000-0000-4000-8000-000000000000",
                 partFirstByte=0, partLastByte=0, layerPartBlob=b"x")

    uid = ecr.initiate_layer_upload(repositoryName=REPO)["uploadId"]
    resp = expect_error("upload_layer_part starting at byte 1", "InvalidLayerPartException",
                        ecr.upload_layer_part, repositoryName=REPO, uploadId=uid, partFirstByte=1,
                        partLastByte=10, layerPartBlob=b"0123456789")
    expect_error("upload_layer_part with another repository's uploadId", "UploadNotFoundException",
                 ecr.upload_layer_part, repositoryName=REPO_PAGES, uploadId=uid, partFirstByte=0,
                 partLastByte=9, layerPartBlob=b"0123456789")
    expect_error("complete_layer_upload with no parts", "EmptyUploadException",
                 ecr.complete_layer_upload, repositoryName=REPO, uploadId=uid,
                 layerDigests=[sha256_digest(b"")])

    data = os.urandom(4096)
    uid = ecr.initiate_layer_upload(repositoryName=REPO)["uploadId"]
    ecr.upload_layer_part(repositoryName=REPO, uploadId=uid, partFirstByte=0, partLastByte=len(data) - 1,
                          layerPartBlob=data)
    expect_error("complete_layer_upload with a wrong digest", "InvalidLayerException",
                 ecr.complete_layer_upload, repositoryName=REPO, uploadId=uid,
                 layerDigests=[sha256_digest(b"something else")])

    uid = ecr.initiate_layer_upload(repositoryName=REPO)["uploadId"]
    ecr.upload_layer_part(repositoryName=REPO, uploadId=uid, partFirstByte=0, partLastByte=len(data) - 1,
                          layerPartBlob=data)
    expect_error("complete_layer_upload with a sha512 digest", "InvalidLayerException",
                 ecr.complete_layer_upload, repositoryName=REPO, uploadId=uid,
                 layerDigests=["sha512:" + hashlib.sha512(data).hexdigest()])

    # all parts but the last must be >= 5 MiB
    data = os.urandom(2 * MiB)
    uid = ecr.initiate_layer_upload(repositoryName=REPO)["uploadId"]
    ecr.upload_layer_part(repositoryName=REPO, uploadId=uid, partFirstByte=0, partLastByte=MiB - 1,
                          layerPartBlob=data[:MiB])
    ecr.upload_layer_part(repositoryName=REPO, uploadId=uid, partFirstByte=MiB, partLastByte=2 * MiB - 1,
                          layerPartBlob=data[MiB:])
    expect_error("complete_layer_upload with a 1 MiB non-final part", "LayerPartTooSmallException",
                 ecr.complete_layer_upload, repositoryName=REPO, uploadId=uid, layerDigests=[sha256_digest(data)])


def put_and_pull():
    cfg, layer, small = S["config"], S["layer"], S["small"]
    manifest = make_manifest(cfg, [layer, small])
    digest = sha256_digest(manifest.encode())
    S["manifest"], S["digest"] = manifest, digest

    img = put(REPO, manifest, "v1")["image"]
    check_eq("put_image imageDigest = sha256(manifest bytes)", img["imageId"]["imageDigest"], digest)
    check_eq("put_image imageTag", img["imageId"].get("imageTag"), "v1")
    check_eq("put_image echoes the manifest", img.get("imageManifest"), manifest)
    check_eq("put_image imageManifestMediaType", img.get("imageManifestMediaType"), OCI_MANIFEST)

    expect_error("put_image of the same manifest with the same tag", "ImageAlreadyExistsException",
                 put, REPO, manifest, "v1")
    expect_error("put_image with a non-matching imageDigest", "ImageDigestDoesNotMatchException",
                 put, REPO, manifest, "v9", imageDigest=sha256_digest(b"not the manifest"))
    img = put(REPO, manifest, "latest")["image"]
    check_eq("put_image retag (same manifest, new tag) keeps digest", img["imageId"]["imageDigest"], digest)

    missing = make_manifest(cfg, [layer, b"never uploaded"])
    expect_error("put_image referencing a missing layer", "LayersNotFoundException", put, REPO, missing, "broken")
    missing_cfg = make_manifest(b'{"never":"uploaded"}', [layer])
    expect_error("put_image referencing a missing config", "LayersNotFoundException",
                 put, REPO, missing_cfg, "broken2")
    expect_error("put_image with invalid JSON", "InvalidParameterException", put, REPO, "{not json", "bad")

    for by, image_id in (("tag", {"imageTag": "v1"}), ("digest", {"imageDigest": digest})):
        r = ecr.batch_get_image(repositoryName=REPO, imageIds=[image_id], acceptedMediaTypes=[OCI_MANIFEST])
        imgs = r.get("images", [])
        if check(f"batch_get_image by {by}: one image, no failures", len(imgs) == 1 and not r.get("failures"), brief(r)):
            got = imgs[0]["imageManifest"]
            check_eq(f"batch_get_image by {by}: manifest bytes hash to the digest",
                     sha256_digest(got.encode()), digest)
            check_eq(f"batch_get_image by {by}: imageId.imageDigest", imgs[0]["imageId"]["imageDigest"], digest)
            check_eq(f"batch_get_image by {by}: imageManifestMediaType",
                     imgs[0].get("imageManifestMediaType"), OCI_MANIFEST)
    r = ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "nope"}, {"imageTag": "v1"}])
    check_eq("batch_get_image with one missing tag: 1 image, failure ImageNotFound",
             (len(r.get("images", [])), [(f["imageId"].get("imageTag"), f["failureCode"]) for f in r["failures"]]),
             (1, [("nope", "ImageNotFound")]))
    expect_error("batch_get_image in a missing repository", "RepositoryNotFoundException",
                 ecr.batch_get_image, repositoryName=MISSING_REPO, imageIds=[{"imageTag": "v1"}])

    r = ecr.get_download_url_for_layer(repositoryName=REPO, layerDigest=S["layer_digest"])
    check_eq("get_download_url_for_layer echoes layerDigest", r.get("layerDigest"), S["layer_digest"])
    url = r["downloadUrl"]
    status, body = http_get(url)
    check_eq("GET downloadUrl (no auth) -> 200", status, 200)
    check_eq("downloaded 12 MiB layer hashes to its digest", sha256_digest(body), S["layer_digest"])
    status, body = http_get(url, {"Range": "bytes=100-199"})
    check_eq("Range bytes=100-199 -> 206", status, 206)
    check("Range bytes=100-199 returns exactly that slice", body == layer[100:200], f"{len(body)} bytes")
    status, body = http_get(url, {"Range": f"bytes={len(layer) - 10}-"})
    check("open-ended Range returns the last 10 bytes", status == 206 and body == layer[-10:], (status, len(body)))

    # the URL authorises itself: a tampered or stripped one must be refused
    parts = urllib.parse.urlsplit(url)
    if parts.query:
        last = parts.query[-1]
        tampered = urllib.parse.urlunsplit(parts._replace(query=parts.query[:-1] + ("0" if last != "0" else "1")))
        status, _ = http_get(tampered)
        check("tampered downloadUrl (last query char changed) is refused with 4xx", 400 <= status < 500, status)
        status, _ = http_get(urllib.parse.urlunsplit(parts._replace(query="")))
        check("downloadUrl without its query string is refused with 4xx", 400 <= status < 500, status)
    else:
        bad(f"downloadUrl carries no query string / signature: {url}")

    r = ecr.get_download_url_for_layer(repositoryName=REPO, layerDigest=sha256_digest(cfg))
    status, body = http_get(r["downloadUrl"])
    check("config blob download returns the config bytes", status == 200 and body == cfg, (status, body[:100]))
    expect_error("get_download_url_for_layer of an unknown digest", "LayersNotFoundException",
                 ecr.get_download_url_for_layer, repositoryName=REPO,
                 layerDigest=sha256_digest(b"never uploaded"))

    # uploaded but not referenced by any image: not downloadable (section 2.7)
    orphan = os.urandom(512)
    upload_blob(REPO, orphan, desc="unreferenced blob")
    expect_error("get_download_url_for_layer of an unreferenced blob", "LayerInaccessibleException",
                 ecr.get_download_url_for_layer, repositoryName=REPO, layerDigest=sha256_digest(orphan))

    ids = ecr.list_images(repositoryName=REPO)["imageIds"]
    check_eq("list_images: one entry per tag", sorted((i.get("imageTag"), i["imageDigest"]) for i in ids),
             [("latest", digest), ("v1", digest)])
    det = ecr.describe_images(repositoryName=REPO)["imageDetails"]
    if check_eq("describe_images: one image", [d["imageDigest"] for d in det], [digest]):
        d = det[0]
        check_eq("describe_images imageTags", sorted(d.get("imageTags", [])), ["latest", "v1"])
        check("describe_images imageSizeInBytes > 0", d.get("imageSizeInBytes", 0) > 0, d.get("imageSizeInBytes"))
        check("describe_images imageSizeInBytes >= sum of layer sizes",
              d.get("imageSizeInBytes", 0) >= len(layer) + len(small), d.get("imageSizeInBytes"))
        check("describe_images imagePushedAt is a datetime", isinstance(d.get("imagePushedAt"), datetime.datetime),
              d.get("imagePushedAt"))
        check_eq("describe_images imageManifestMediaType", d.get("imageManifestMediaType"), OCI_MANIFEST)
        check_eq("describe_images artifactMediaType", d.get("artifactMediaType"), OCI_CONFIG)
    expect_error("describe_images of a missing tag", "ImageNotFoundException",
                 ecr.describe_images, repositoryName=REPO, imageIds=[{"imageTag": "nope"}])

    # moving a mutable tag leaves the old image untagged
    manifest2 = make_manifest(cfg, [layer, small], {"rev": "2"})
    d2 = put(REPO, manifest2, "latest")["image"]["imageId"]["imageDigest"]
    check_eq("put_image moving mutable tag 'latest'", d2, sha256_digest(manifest2.encode()))
    tagged = ecr.list_images(repositoryName=REPO, filter={"tagStatus": "TAGGED"})["imageIds"]
    check_eq("list_images TAGGED after moving 'latest'", sorted((i.get("imageTag"), i["imageDigest"]) for i in tagged),
             sorted([("v1", digest), ("latest", d2)]))


def immutability():
    cfg = make_config("immutable")
    layer = os.urandom(2048)
    upload_blob(REPO_IMM, cfg, desc="config")
    upload_blob(REPO_IMM, layer, desc="layer")
    m1 = make_manifest(cfg, [layer], {"rev": "1"})
    m2 = make_manifest(cfg, [layer], {"rev": "2"})
    d1 = put(REPO_IMM, m1, "v1")["image"]["imageId"]["imageDigest"]
    check_eq("immutable repo: first push of v1", d1, sha256_digest(m1.encode()))
    expect_error("immutable repo: pushing a different manifest as v1", "ImageTagAlreadyExistsException",
                 put, REPO_IMM, m2, "v1")
    d2 = put(REPO_IMM, m2, "v2")["image"]["imageId"]["imageDigest"]
    check_eq("immutable repo: different manifest under a new tag", d2, sha256_digest(m2.encode()))
    r = ecr.batch_get_image(repositoryName=REPO_IMM, imageIds=[{"imageTag": "v1"}])
    check_eq("immutable repo: v1 still points at the first manifest",
             [i["imageId"]["imageDigest"] for i in r.get("images", [])], [d1])


def pagination():
    for name in PAGE_REPOS:
        ecr.create_repository(repositoryName=name)
    pages = list(ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 3}))
    names = [r["repositoryName"] for p in pages for r in p["repositories"]]
    check("describe_repositories pages hold at most 3 entries", all(len(p["repositories"]) <= 3 for p in pages),
          [len(p["repositories"]) for p in pages])
    check("describe_repositories paginated into >= 3 pages", len(pages) >= 3, len(pages))
    check("describe_repositories pagination returns all 7 new repos",
          set(PAGE_REPOS) <= set(names), sorted(set(PAGE_REPOS) - set(names)))
    check("describe_repositories pagination has no duplicates", len(names) == len(set(names)), names)
    all_at_once = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    check_eq("paginated result equals unpaginated result (as sets)", sorted(names), sorted(all_at_once))
    first = ecr.describe_repositories(maxResults=3)
    check("describe_repositories maxResults=3 returns nextToken", len(first["repositories"]) == 3
          and first.get("nextToken"), first.get("nextToken"))

    cfg = make_config("pages")
    layer = os.urandom(1024)
    upload_blob(REPO_PAGES, cfg, desc="config")
    upload_blob(REPO_PAGES, layer, desc="layer")
    digests = {}
    for i in range(7):
        m = make_manifest(cfg, [layer], {"i": str(i)})
        digests[f"t{i}"] = put(REPO_PAGES, m, f"t{i}")["image"]["imageId"]["imageDigest"]
    S["page_digests"] = digests
    pages = list(ecr.get_paginator("list_images").paginate(repositoryName=REPO_PAGES,
                                                           PaginationConfig={"PageSize": 3}))
    ids = [(i.get("imageTag"), i["imageDigest"]) for p in pages for i in p["imageIds"]]
    check("list_images pages hold at most 3 entries", all(len(p["imageIds"]) <= 3 for p in pages),
          [len(p["imageIds"]) for p in pages])
    check_eq("list_images paginated into 3 pages", len(pages), 3)
    check_eq("list_images pagination returns all 7 tags", sorted(ids), sorted(digests.items()))
    pages = list(ecr.get_paginator("describe_images").paginate(repositoryName=REPO_PAGES,
                                                               PaginationConfig={"PageSize": 3}))
    got = sorted(d["imageDigest"] for p in pages for d in p["imageDetails"])
    check_eq("describe_images pagination returns all 7 images", got, sorted(digests.values()))


def batch_delete():
    digests = S["page_digests"]
    r = ecr.batch_delete_image(repositoryName=REPO_PAGES, imageIds=[{"imageTag": "t0"}])
    check_eq("batch_delete_image by tag: deleted id", [(i.get("imageTag"), i.get("imageDigest")) for i in r["imageIds"]],
             [("t0", digests["t0"])])
    check_eq("batch_delete_image by tag: no failures", r.get("failures", []), [])
    r = ecr.batch_delete_image(repositoryName=REPO_PAGES, imageIds=[{"imageDigest": digests["t1"]}])
    check_eq("batch_delete_image by digest: deleted digest", [i.get("imageDigest") for i in r["imageIds"]],
             [digests["t1"]])
    check_eq("batch_delete_image by digest: no failures", r.get("failures", []), [])
    r = ecr.batch_delete_image(repositoryName=REPO_PAGES, imageIds=[{"imageTag": "t0"}])
    check_eq("batch_delete_image of a deleted tag: failure ImageNotFound",
             (r.get("imageIds", []), [f["failureCode"] for f in r.get("failures", [])]), ([], ["ImageNotFound"]))
    left = ecr.list_images(repositoryName=REPO_PAGES)["imageIds"]
    check_eq("list_images after deletes", sorted(i.get("imageTag") for i in left), [f"t{i}" for i in range(2, 7)])
    untagged = ecr.list_images(repositoryName=REPO_PAGES, filter={"tagStatus": "UNTAGGED"})["imageIds"]
    check_eq("deleting the last tag deleted the image (no untagged leftovers)", untagged, [])
    r = ecr.batch_get_image(repositoryName=REPO_PAGES, imageIds=[{"imageDigest": digests["t1"]}])
    check_eq("deleted digest is gone from batch_get_image",
             [f["failureCode"] for f in r.get("failures", [])], ["ImageNotFound"])


def auth_token():
    r = ecr.get_authorization_token()
    data = r["authorizationData"]
    check("get_authorization_token returns authorizationData", len(data) >= 1, brief(r))
    a = data[0]
    check("proxyEndpoint present", bool(a.get("proxyEndpoint")), a.get("proxyEndpoint"))
    user, sep, pw = base64.b64decode(a["authorizationToken"]).decode("utf-8").partition(":")
    check_eq("authorizationToken user is AWS", (user, sep), ("AWS", ":"))
    check("password non-empty and without ':'", pw and ":" not in pw, pw[:60])
    exp = a.get("expiresAt")
    check("expiresAt is in the future", isinstance(exp, datetime.datetime)
          and exp > datetime.datetime.now(datetime.timezone.utc), exp)


def protocol():
    """Wire-level details from sections 1.2-1.5 of the reference."""
    # success response framing
    ecr.describe_repositories(repositoryNames=[REPO_PAGES])
    raw = RAW.get("DescribeRepositories", {})
    hdrs = {k.lower(): v for k, v in raw.get("headers", {}).items()}
    check("success: Content-Type application/x-amz-json-1.1",
          hdrs.get("content-type", "").startswith("application/x-amz-json-1.1"), hdrs.get("content-type"))
    check("success: x-amzn-RequestId header", bool(hdrs.get("x-amzn-requestid")), hdrs)

    # timestamps are epoch-second numbers on the wire (Smithy SDKs need that)
    body = json.loads(raw.get("body") or b"{}")
    created = (body.get("repositories") or [{}])[0].get("createdAt")
    check("createdAt is a JSON number on the wire", isinstance(created, (int, float)), repr(created))
    ecr.describe_images(repositoryName=REPO_PAGES)
    dets = json.loads(RAW.get("DescribeImages", {}).get("body") or b"{}").get("imageDetails") or [{}]
    pushed = dets[0].get("imagePushedAt")
    check("imagePushedAt is a JSON number on the wire", isinstance(pushed, (int, float)), repr(pushed))
    ecr.get_authorization_token()
    ad = json.loads(RAW.get("GetAuthorizationToken", {}).get("body") or b"{}").get("authorizationData") or [{}]
    check("expiresAt is a JSON number on the wire", isinstance(ad[0].get("expiresAt"), (int, float)),
          repr(ad[0].get("expiresAt")))

    # error response framing
    try:
        ecr.describe_repositories(repositoryNames=[MISSING_REPO])
        bad("describe_repositories of a missing repo succeeded")
    except ClientError as e:
        md = e.response.get("ResponseMetadata", {})
        eh = md.get("HTTPHeaders", {})
        check_eq("error: HTTP status 400", md.get("HTTPStatusCode"), 400)
        check_eq("error: X-Amzn-ErrorType header equals __type", eh.get("x-amzn-errortype", "").split(":")[0],
                 "RepositoryNotFoundException")
        check("error: x-amzn-RequestId header", bool(eh.get("x-amzn-requestid")), eh)
        check("error: message names the repository", MISSING_REPO in e.response["Error"].get("Message", ""),
              e.response["Error"].get("Message"))

    # requests the SDKs would not send
    status, _, body = raw_call("DescribeRepositories", b"{}", sign=False)
    check_eq("unsigned request -> 400 MissingAuthenticationTokenException",
             (status, (body or {}).get("__type")), (400, "MissingAuthenticationTokenException"))
    status, _, body = raw_call("NoSuchOperation", b"{}")
    check_eq("unknown X-Amz-Target -> 400 UnknownOperationException",
             (status, (body or {}).get("__type")), (400, "UnknownOperationException"))
    status, _, body = raw_call("DescribeRepositories", b"{not json")
    check_eq("malformed JSON body -> 400 SerializationException",
             (status, (body or {}).get("__type")), (400, "SerializationException"))
    status, _, body = raw_call("DescribeRepositories", b"")
    check("empty body is treated as {}", status == 200 and "repositories" in (body or {}), (status, body))

    def client_in(region):
        return boto3.client("ecr", endpoint_url=ENDPOINT, region_name=region,
                            config=Config(connect_timeout=5, read_timeout=HTTP_TIMEOUT,
                                          retries={"mode": "standard", "total_max_attempts": 1}))
    # every region is served, each (account, region) a registry of its own: a us-east-1
    # repository is not in eu-west-1's
    east = client_in("us-east-1")
    east.create_repository(repositoryName="py-e2e/regional")
    names = [r["repositoryName"] for r in client_in("eu-west-1").describe_repositories()["repositories"]]
    check("eu-west-1 is another registry (no py-e2e/regional there)",
          "py-e2e/regional" not in names, names)
    east.delete_repository(repositoryName="py-e2e/regional")
    # the credential scope must name a region (section 1.4)
    expect_error("request signed for the malformed region us-east", "InvalidSignatureException",
                 client_in("us-east").describe_repositories)


def lifecycle():
    """PutLifecyclePolicy, GetLifecyclePolicy, a preview, DeleteLifecyclePolicy."""
    repo = "py-e2e/lifecycle"
    ecr.create_repository(repositoryName=repo)
    digests = []
    for n in range(3):
        config = make_config(f"lifecycle {n}")
        layer = f"lifecycle layer {n}".encode()
        upload_blob(repo, config, desc="config")
        upload_blob(repo, layer, desc="layer")
        r = put(repo, make_manifest(config, [layer]), tag=f"v{n}")
        digests.append(r["image"]["imageId"]["imageDigest"])
    policy = json.dumps({"rules": [{
        "rulePriority": 1, "description": "keep the newest image",
        "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
                      "countType": "imageCountMoreThan", "countNumber": 1},
        "action": {"type": "expire"}}]})
    expect_error("get_lifecycle_policy before one is put", "LifecyclePolicyNotFoundException",
                 ecr.get_lifecycle_policy, repositoryName=repo)
    expect_error("put_lifecycle_policy with an unknown tagStatus", "InvalidParameterException",
                 ecr.put_lifecycle_policy, repositoryName=repo,
                 lifecyclePolicyText=policy.replace('"tagged"', '"labelled"'))
    r = ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=policy)
    check_eq("put_lifecycle_policy answers the text", r["lifecyclePolicyText"], policy)
    r = ecr.get_lifecycle_policy(repositoryName=repo)
    check_eq("get_lifecycle_policy", r["lifecyclePolicyText"], policy)
    r = ecr.start_lifecycle_policy_preview(repositoryName=repo)
    check("start_lifecycle_policy_preview", r["status"] in ("IN_PROGRESS", "COMPLETE"), r.get("status"))
    r = ecr.get_lifecycle_policy_preview(repositoryName=repo)
    check_eq("preview status", r["status"], "COMPLETE")
    got = sorted(x["imageDigest"] for x in r["previewResults"])
    check_eq("preview expires all but the newest image", got, sorted(digests[:2]))
    check_eq("preview summary", r["summary"]["expiringImageTotalCount"], 2)
    check("preview actions are EXPIRE by rule 1",
          all(x["action"]["type"] == "EXPIRE" and x["appliedRulePriority"] == 1 for x in r["previewResults"]),
          r["previewResults"])
    left = ecr.list_images(repositoryName=repo)["imageIds"]
    check_eq("a preview expires nothing", len(left), 3)
    r = ecr.delete_lifecycle_policy(repositoryName=repo)
    check_eq("delete_lifecycle_policy answers the text", r["lifecyclePolicyText"], policy)
    expect_error("get_lifecycle_policy after delete", "LifecyclePolicyNotFoundException",
                 ecr.get_lifecycle_policy, repositoryName=repo)
    ecr.delete_repository(repositoryName=repo, force=True)


def delete_repositories():
    expect_error("delete_repository of a non-empty repository", "RepositoryNotEmptyException",
                 ecr.delete_repository, repositoryName=REPO)
    r = ecr.delete_repository(repositoryName=REPO, force=True)
    check_eq("delete_repository force=True", r["repository"]["repositoryName"], REPO)
    expect_error("describe_repositories after delete", "RepositoryNotFoundException",
                 ecr.describe_repositories, repositoryNames=[REPO])
    expect_error("delete_repository of a missing repository", "RepositoryNotFoundException",
                 ecr.delete_repository, repositoryName=REPO)
    for name in PAGE_REPOS:
        ecr.delete_repository(repositoryName=name)
    ok("deleted the 7 empty pagination repositories without force")
    ecr.delete_repository(repositoryName=REPO_IMM, force=True)
    ecr.delete_repository(repositoryName=REPO_PAGES, force=True)
    left = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    check("no py-e2e repositories left", not [n for n in left if n.startswith("py-e2e/")], left)


def registry_settings():
    """Issue 15: resource tags, account settings and DescribeRegistry through boto3."""
    r = ecr.describe_registry()
    check("describe_registry names a 12-digit registry", len(r.get("registryId", "")) == 12, brief(r))
    check_eq("describe_registry has no replication rules",
             r.get("replicationConfiguration"), {"rules": []})
    # REGISTRY_POLICY_SCOPE has no effect on the other flows sharing this server.
    r = ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")
    check_eq("get_account_setting default", (r.get("name"), r.get("value")),
             ("REGISTRY_POLICY_SCOPE", "V2"))
    r = ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    check_eq("put_account_setting answers what it set", (r.get("name"), r.get("value")),
             ("REGISTRY_POLICY_SCOPE", "V1"))
    check_eq("get_account_setting after put",
             ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE").get("value"), "V1")
    ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")
    expect_error("put_account_setting with a value the setting lacks", "InvalidParameterException",
                 ecr.put_account_setting, name="BLOB_MOUNTING", value="V2")
    expect_error("get_account_setting of an unknown name", "InvalidParameterException",
                 ecr.get_account_setting, name="NOT_A_SETTING")

    repo = "boto3-e2e/tags"
    arn = ecr.create_repository(repositoryName=repo)["repository"]["repositoryArn"]
    try:
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
        ecr.untag_resource(resourceArn=arn, tagKeys=["a"])
        check_eq("tag_resource then untag_resource",
                 ecr.list_tags_for_resource(resourceArn=arn)["tags"], [{"Key": "b", "Value": "2"}])
        expect_error("tag_resource with 51 tags", "TooManyTagsException", ecr.tag_resource,
                     resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
        expect_error("untag_resource of an aws: key", "InvalidTagParameterException",
                     ecr.untag_resource, resourceArn=arn, tagKeys=["aws:x"])
        expect_error("tag_resource of a missing repository", "RepositoryNotFoundException",
                     ecr.tag_resource, resourceArn=arn + "-missing", tags=[{"Key": "k", "Value": "v"}])
    finally:
        ecr.delete_repository(repositoryName=repo, force=True)


def main():
    print(f"== boto3_flow: endpoint {ENDPOINT} (boto3 {boto3.__version__})", flush=True)
    for fn in (repositories, multipart_upload, upload_errors, put_and_pull, immutability, pagination,
               batch_delete, auth_token, registry_settings, protocol, lifecycle, delete_repositories):
        section(fn)
    print(f"CHECKS passed={passed} failed={failed}", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
