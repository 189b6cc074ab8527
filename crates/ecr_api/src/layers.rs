//! BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
//! GetDownloadUrlForLayer.
//!
//! The layer flow of ECR and of ECR Public is one implementation: each front end checks its
//! own request shape (ECR by hand here, ECR Public by its generated `validate()`), names the
//! repository, and calls the shared functions (`check_layers`, `initiate`, `UploadPart::new`,
//! `upload_layer_part`, `complete`), whose responses have the same wire shape in both models.

use bytes::Bytes;
use model::{Digest, DigestError, UploadId};
use registry::{CompletionRules, PartData, RepositoryRef};

use crate::dto::{self, RepositoryScoped};
use crate::error::{ApiError, invalid};
use crate::validate::{self, required};
use crate::{Ctx, download};

const UPLOAD_ID_PATTERN: &str = "must satisfy regular expression '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'";
const LAYER_DIGEST_PATTERN: &str =
    "must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'";

/// The model's `layerPartBlob` maximum.
const MAX_PART_BLOB: usize = 20_971_520;

fn upload_id(v: Option<&str>) -> Result<UploadId, ApiError> {
    UploadId::parse(required(v, "uploadId")?).ok_or_else(|| invalid("uploadId", UPLOAD_ID_PATTERN))
}

/// True when `s` matches the model's `LayerDigest` pattern `[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+`.
fn matches_layer_digest_pattern(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    !alg.is_empty()
        && alg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b))
        && !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) async fn batch_check_layer_availability(
    ctx: &Ctx<'_>,
    req: dto::BatchCheckLayerAvailabilityRequest,
) -> Result<dto::BatchCheckLayerAvailabilityResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let digests = required(req.layer_digests.as_ref(), "layerDigests")?;
    validate::list_len(digests, "layerDigests", 1, 100)?;
    if digests.iter().any(|d| d.len() > 1000) {
        return Err(invalid(
            "layerDigests.member",
            "Member must have length less than or equal to 1000",
        ));
    }
    check_layers(ctx, &repo, digests).await
}

/// Which of `digests` (checked against the model) are layers of `repo`: a digest that is not
/// sha256 is a failure, not an error, as ECR answers.
pub(crate) async fn check_layers(
    ctx: &Ctx<'_>,
    repo: &RepositoryRef,
    digests: &[String],
) -> Result<dto::BatchCheckLayerAvailabilityResponse, ApiError> {
    let mut failures = Vec::new();
    let mut valid = Vec::new();
    for d in digests {
        match Digest::parse_sha256(d) {
            Ok(parsed) => valid.push(parsed),
            Err(DigestError::Empty) => failures.push(dto::LayerFailure {
                layer_digest: d.clone(),
                failure_code: "MissingLayerDigest",
                failure_reason: "Missing layer digest".into(),
            }),
            Err(_) => failures.push(dto::LayerFailure {
                layer_digest: d.clone(),
                failure_code: "InvalidLayerDigest",
                failure_reason: "Invalid layer digest".into(),
            }),
        }
    }
    let found = ctx
        .registry()
        .layer_availability(&ctx.principal, repo, &valid)
        .await?;
    let layers = valid
        .into_iter()
        .zip(found)
        .map(|(digest, blob)| match blob {
            Some(b) => dto::Layer {
                layer_digest: digest.to_string(),
                layer_availability: "AVAILABLE",
                layer_size: Some(b.size),
                media_type: b.media_type,
            },
            None => dto::Layer {
                layer_digest: digest.to_string(),
                layer_availability: "UNAVAILABLE",
                layer_size: None,
                media_type: None,
            },
        })
        .collect();
    Ok(dto::BatchCheckLayerAvailabilityResponse { layers, failures })
}

pub(crate) async fn initiate_layer_upload(
    ctx: &Ctx<'_>,
    req: dto::InitiateLayerUploadRequest,
) -> Result<dto::InitiateLayerUploadResponse, ApiError> {
    initiate(ctx, &validate::repository(&req)?).await
}

pub(crate) async fn initiate(
    ctx: &Ctx<'_>,
    repo: &RepositoryRef,
) -> Result<dto::InitiateLayerUploadResponse, ApiError> {
    let (id, part_size) = ctx.registry().initiate_upload(&ctx.principal, repo).await?;
    Ok(dto::InitiateLayerUploadResponse {
        upload_id: id.to_string(),
        part_size,
    })
}

/// The model's length constraint on `layerPartBlob`, broken.
fn part_too_long() -> ApiError {
    invalid(
        "layerPartBlob",
        "Member must have length less than or equal to 20971520",
    )
}

/// An UploadLayerPart request checked as far as it can be without decoding its part: the
/// members, and where the part's base64 text is.
pub(crate) struct UploadPart {
    repo: RepositoryRef,
    id: UploadId,
    first: u64,
    last: u64,
    blob: PartText,
}

/// Where an UploadLayerPart's base64 text is.
enum PartText {
    /// These bytes of the request body (base64 needs no JSON escapes, so serde borrows it).
    InBody(std::ops::Range<usize>),
    /// A copy (serde makes one to undo JSON escapes).
    Copied(String),
}

impl UploadPart {
    /// Checks `req`, decoded from `body`, and lets go of its borrow of `body`, which the
    /// part is then decoded within.
    pub(crate) fn check(
        req: dto::UploadLayerPartRequest<'_>,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let repo = validate::repository(&req)?;
        let id = upload_id(req.upload_id.as_deref())?;
        let first = required(req.part_first_byte, "partFirstByte")?;
        let last = required(req.part_last_byte, "partLastByte")?;
        if first < 0 {
            return Err(invalid(
                "partFirstByte",
                "Member must have value greater than or equal to 0",
            ));
        }
        if last < 0 {
            return Err(invalid(
                "partLastByte",
                "Member must have value greater than or equal to 0",
            ));
        }
        let blob = required(req.layer_part_blob, "layerPartBlob")?;
        Self::new(repo, id, first as u64, last as u64, blob, body)
    }

    /// A part of upload `id` of `repo` whose members are checked, with its base64 text `blob`
    /// (borrowed from `body` where serde could). Refuses a part over the model's maximum.
    pub(crate) fn new(
        repo: RepositoryRef,
        id: UploadId,
        first: u64,
        last: u64,
        blob: std::borrow::Cow<'_, str>,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        // A base64 text decodes to at most 3/4 of its length: refuse oversize parts before
        // decoding.
        if blob.len() / 4 * 3 > MAX_PART_BLOB + 2 {
            return Err(part_too_long());
        }
        let blob = match blob {
            std::borrow::Cow::Borrowed(text) => {
                // Where the borrowed text lies within the body it was borrowed from (checked,
                // so that a text from anywhere else is copied rather than a panic).
                let start = (text.as_ptr() as usize).checked_sub(body.as_ptr() as usize);
                match start {
                    Some(start) if start + text.len() <= body.len() => {
                        PartText::InBody(start..start + text.len())
                    }
                    _ => PartText::Copied(text.to_owned()),
                }
            }
            std::borrow::Cow::Owned(text) => PartText::Copied(text),
        };
        Ok(UploadPart {
            repo,
            id,
            first,
            last,
            blob,
        })
    }
}

/// Stores `part`, decoding its base64 text where it lies in `body`: a 20 MiB part costs the
/// 28 MB of its request body and no second buffer.
pub(crate) async fn upload_layer_part(
    ctx: &Ctx<'_>,
    part: UploadPart,
    mut body: crate::body::RequestBody,
) -> Result<dto::UploadLayerPartResponse, ApiError> {
    let UploadPart {
        repo,
        id,
        first,
        last,
        blob,
    } = part;
    let bad_base64 = || ApiError::Serialization("Invalid base64 in layerPartBlob".into());
    let bytes = match blob {
        PartText::InBody(range) => {
            let start = range.start;
            let len = base64_simd::STANDARD
                .decode_inplace(&mut body[range])
                .map_err(|_| bad_base64())?
                .len();
            body.into_bytes().slice(start..start + len)
        }
        PartText::Copied(text) => {
            drop(body);
            Bytes::from(
                base64_simd::STANDARD
                    .decode_to_vec(text.as_bytes())
                    .map_err(|_| bad_base64())?,
            )
        }
    };
    if bytes.len() > MAX_PART_BLOB {
        return Err(part_too_long());
    }
    let progress = ctx
        .registry()
        .upload_part(
            &ctx.principal,
            &repo,
            id,
            Some(first),
            Some(last),
            PartData::Buffered(bytes),
        )
        .await?;
    Ok(dto::UploadLayerPartResponse {
        registry_id: repo
            .registry_id
            .unwrap_or_else(|| ctx.principal.account_id.clone()),
        repository_name: repo.name.to_string(),
        upload_id: id.to_string(),
        last_byte_received: progress.received as i64 - 1,
    })
}

pub(crate) async fn complete_layer_upload(
    ctx: &Ctx<'_>,
    req: dto::CompleteLayerUploadRequest,
) -> Result<dto::CompleteLayerUploadResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let id = upload_id(req.upload_id.as_deref())?;
    let digests = required(req.layer_digests.as_ref(), "layerDigests")?;
    validate::list_len(digests, "layerDigests", 1, 100)?;
    if !digests.iter().all(|d| matches_layer_digest_pattern(d)) {
        return Err(invalid("layerDigests.member", LAYER_DIGEST_PATTERN));
    }
    complete(ctx, repo, id, digests).await
}

/// Completes upload `id` of `repo`; `digests` holds 1 to 100 members of the model's
/// `LayerDigest` pattern.
pub(crate) async fn complete(
    ctx: &Ctx<'_>,
    repo: RepositoryRef,
    id: UploadId,
    digests: &[String],
) -> Result<dto::CompleteLayerUploadResponse, ApiError> {
    // Clients send exactly one digest: the layer's. ECR verifies against the first.
    let first = digests.first().ok_or_else(|| {
        invalid(
            "layerDigests",
            "Member must have length greater than or equal to 1",
        )
    })?;
    let digest = ctx
        .registry()
        .complete_upload(&ctx.principal, &repo, id, first, CompletionRules::ECR)
        .await?;
    Ok(dto::CompleteLayerUploadResponse {
        registry_id: repo
            .registry_id
            .unwrap_or_else(|| ctx.principal.account_id.clone()),
        repository_name: repo.name.to_string(),
        upload_id: id.to_string(),
        layer_digest: digest.to_string(),
    })
}

pub(crate) async fn get_download_url_for_layer(
    ctx: &Ctx<'_>,
    req: dto::GetDownloadUrlForLayerRequest,
) -> Result<dto::GetDownloadUrlForLayerResponse, ApiError> {
    let repo = validate::repository(&req)?;
    let digest_str = required(req.layer_digest.as_deref(), "layerDigest")?;
    if !matches_layer_digest_pattern(digest_str) {
        return Err(invalid("layerDigest", LAYER_DIGEST_PATTERN));
    }
    let digest = Digest::parse_sha256(digest_str)
        .map_err(|_| invalid("layerDigest", LAYER_DIGEST_PATTERN))?;
    let blob = ctx
        .registry()
        .downloadable_layer(&ctx.principal, &repo, &digest)
        .await?;
    let registry_id = req
        .registry_id()
        .map_or_else(|| ctx.principal.account_id.clone(), str::to_owned);
    // With blobs on S3, a presigned S3 URL as ECR hands out; else berth's own signed URL.
    let lifetime = std::time::Duration::from_secs(download::URL_LIFETIME_SECS);
    let download_url = match ctx
        .registry()
        .blob_download_url(&blob.digest, lifetime)
        .await?
    {
        Some(url) => url,
        None => download::presign(ctx, &registry_id, &repo.name, &blob.digest),
    };
    Ok(dto::GetDownloadUrlForLayerResponse {
        download_url,
        layer_digest: blob.digest.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_digest_pattern() {
        assert!(matches_layer_digest_pattern("sha256:abcDEF012"));
        assert!(matches_layer_digest_pattern("a+b.c-d_e:0"));
        assert!(!matches_layer_digest_pattern("sha256:"));
        assert!(!matches_layer_digest_pattern(":00"));
        assert!(!matches_layer_digest_pattern("sha256:xyz"));
        assert!(!matches_layer_digest_pattern("sha256"));
    }
}
