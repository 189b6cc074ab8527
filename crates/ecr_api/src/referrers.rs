//! ListImageReferrers: the ECR twin of `/v2`'s referrers API, over the same index.

use std::collections::BTreeMap;

use model::Digest;
use registry::{Page, StatusFilter};

use crate::Ctx;
use crate::error::{ApiError, invalid};
use crate::shapes::ecr;
use crate::validate;

/// ECR's page size when `maxResults` is absent (its largest).
const DEFAULT_PAGE: u32 = 50;

pub(crate) async fn list_image_referrers(
    ctx: &Ctx<'_>,
    req: ecr::ListImageReferrersRequest,
) -> Result<ecr::ListImageReferrersResponse, ApiError> {
    let r = validate::repository(&req)?;
    let subject = validate::required(
        req.subject_id.and_then(|s| s.image_digest),
        "subjectId.imageDigest",
    )?;
    let subject = Digest::parse(&subject).map_err(|_| {
        invalid(
            "subjectId.imageDigest",
            "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
        )
    })?;
    let filter = req.filter.unwrap_or_default();
    // "If no filter is specified, only artifacts with ACTIVE status are returned." The
    // generated checks allow only the four values.
    let status = match filter.artifact_status.as_deref() {
        Some("ARCHIVED") => StatusFilter::Archived,
        Some("ACTIVATING") => StatusFilter::Activating,
        Some("ANY") => StatusFilter::Any,
        _ => StatusFilter::Active,
    };
    // The generated checks bound maxResults to 1-50.
    let page = Page {
        after: req
            .next_token
            .as_deref()
            .map(registry::PageToken::decode)
            .transpose()?,
        limit: req
            .max_results
            .map_or(DEFAULT_PAGE, |n| u32::try_from(n).unwrap_or(DEFAULT_PAGE)),
    };
    let (referrers, next) = ctx
        .registry()
        .list_image_referrers(
            &ctx.principal,
            &r,
            &subject,
            &filter.artifact_types.unwrap_or_default(),
            status,
            page,
        )
        .await?;
    Ok(ecr::ListImageReferrersResponse {
        referrers: Some(
            referrers
                .into_iter()
                .map(|x| ecr::ImageReferrer {
                    digest: Some(x.digest.to_string()),
                    media_type: Some(x.media_type),
                    artifact_type: x.artifact_type,
                    size: Some(i64::try_from(x.size).unwrap_or(i64::MAX)),
                    annotations: x.annotations.and_then(|a| {
                        let map: BTreeMap<String, String> = a
                            .as_object()?
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect();
                        Some(map)
                    }),
                    artifact_status: Some(x.status.as_str().to_owned()),
                })
                .collect(),
        ),
        next_token: next.map(|t| t.encode()),
    })
}
