//! Manifest GET, HEAD, PUT and DELETE, by tag or digest.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::{ImageTag, MediaType, Reference, RepositoryName};
use registry::{ImageFailureCode, ImageIdInput, ImageRecord, PutImageRequest, RegistryError};

use crate::{Ctx, OciError};

/// The manifest size limit ECR applies (`imageManifest` maximum).
pub(crate) const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The reference a manifest PUT names: a malformed one is the client's mistake (400).
fn reference(s: &str) -> Result<Reference, OciError> {
    Reference::parse(s).ok_or_else(|| {
        if s.contains(':') {
            OciError::DigestInvalid(format!("invalid digest '{s}'"))
        } else {
            OciError::TagInvalid(format!("invalid tag '{s}'"))
        }
    })
}

/// The reference a manifest GET, HEAD or DELETE names. One that is neither a valid tag nor a
/// valid digest (`.INVALID_MANIFEST_NAME`, `-x`, `sha256:abc`) names nothing that could exist:
/// 404 `MANIFEST_UNKNOWN`, as the reference registries answer (distribution's router matches
/// no route for it) and as the conformance suite expects, rather than a 400 clients treat as
/// a failure.
fn existing_reference(s: &str) -> Result<Reference, OciError> {
    Reference::parse(s)
        .ok_or_else(|| OciError::ManifestUnknown(format!("no manifest can be named '{s}'")))
}

/// Whether the client's `Accept` lets it take `media_type`. No `Accept` takes anything; by
/// digest or tag, berth never converts between formats.
fn accepts(ctx: &Ctx<'_>, media_type: &str) -> bool {
    let mut any_header = false;
    for v in ctx.headers.get_all(header::ACCEPT) {
        any_header = true;
        let Ok(v) = v.to_str() else { continue };
        for item in v.split(',') {
            let t = item.split(';').next().unwrap_or("").trim();
            if t == media_type || t == "*/*" || t == "application/*" {
                return true;
            }
        }
    }
    !any_header
}

fn manifest_headers(resp: &mut Response, img: &ImageRecord) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&img.media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(img.digest.as_str()) {
        h.insert("docker-content-digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", img.digest)) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(img.manifest.len()),
    );
}

pub(crate) async fn get_manifest(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    reference_str: &str,
) -> Result<Response, OciError> {
    let r = existing_reference(reference_str)?;
    let img = if ctx.method == Method::GET {
        ctx.registry
            .pull_manifest(&ctx.principal, &ctx.repo(name), &r)
            .await?
    } else {
        ctx.registry
            .get_manifest(&ctx.principal, &ctx.repo(name), &r)
            .await?
    };
    if !accepts(ctx, &img.media_type) {
        return Err(OciError::ManifestUnknown(format!(
            "the manifest is {} and the request accepts none of that type",
            img.media_type
        )));
    }
    let body = if ctx.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(img.manifest.clone())
    };
    let mut resp = Response::new(body);
    manifest_headers(&mut resp, &img);
    Ok(resp)
}

/// The media type a PUT declares, when it is a manifest type (clients that send
/// `application/json` or nothing leave it to the manifest's `mediaType`).
fn declared_media_type(ctx: &Ctx<'_>) -> Option<String> {
    let ct = ctx.headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let ct = ct.split(';').next().unwrap_or("").trim();
    MediaType::is_supported_manifest(ct).then(|| ct.to_owned())
}

pub(crate) async fn put_manifest(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    reference_str: &str,
    body: Body,
) -> Result<Response, OciError> {
    let r = reference(reference_str)?;
    ctx.prepare_push(name).await?;
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
        .await
        .map_err(|_| OciError::ManifestTooLarge(MAX_MANIFEST_BYTES))?;
    let (tag, digest): (Option<ImageTag>, Option<String>) = match &r {
        Reference::Tag(t) => (Some(t.clone()), None),
        Reference::Digest(d) => (None, Some(d.to_string())),
    };
    let repo = ctx.repo(name);
    let image = match ctx
        .registry
        .put_image(
            &ctx.principal,
            &repo,
            PutImageRequest {
                manifest: bytes.to_vec(),
                media_type: declared_media_type(ctx),
                tag,
                digest,
                allow_sha512: true,
            },
        )
        .await
    {
        Ok((image, _)) => image,
        // Re-pushing what is already there is success on /v2 (ecr-api.md section 6.4).
        Err(RegistryError::ImageAlreadyExists { digest, .. }) => {
            ctx.registry
                .get_manifest(&ctx.principal, &repo, &Reference::Digest(digest))
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/{name}/manifests/{}", image.digest)) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(image.digest.as_str()) {
        h.insert("docker-content-digest", v);
    }
    if let Some(subject) = &image.subject
        && let Ok(v) = HeaderValue::from_str(subject.as_str())
    {
        h.insert("oci-subject", v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(resp)
}

/// DELETE by digest removes the image and its tags; by tag, the tag (and the image with its
/// last tag), as BatchDeleteImage does.
pub(crate) async fn delete_manifest(
    ctx: &Ctx<'_>,
    name: &RepositoryName,
    reference_str: &str,
) -> Result<Response, OciError> {
    let id = match existing_reference(reference_str)? {
        Reference::Tag(t) => ImageIdInput {
            digest: None,
            tag: Some(t.to_string()),
        },
        Reference::Digest(d) => ImageIdInput {
            digest: Some(d.to_string()),
            tag: None,
        },
    };
    let res = ctx
        .registry
        .batch_delete_image(&ctx.principal, &ctx.repo(name), &[id])
        .await?;
    match res.failures.first() {
        None => Ok(StatusCode::ACCEPTED.into_response()),
        Some(f) if f.code == ImageFailureCode::ImageReferencedByManifestList => {
            Err(OciError::Denied(f.reason.clone()))
        }
        Some(_) => Err(OciError::ManifestUnknown(
            "Requested image not found".into(),
        )),
    }
}
