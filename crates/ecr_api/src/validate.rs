//! Constraint checks of the botocore model that botocore itself does not make (it checks only
//! required members, types and minimums), turning request members into model types.

use model::{ImageTag, RepositoryName, RepositoryNameError, is_registry_id};
use registry::{Page, PageToken, RepositoryRef, StatusFilter, TagStatus};

use crate::dto::{ImagesFilter, RepositoryScoped};
use crate::error::{ApiError, invalid};

const REGISTRY_ID_PATTERN: &str = "must satisfy regular expression '[0-9]{12}'";

pub fn required<T>(v: Option<T>, field: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| invalid(field, "Member must not be null"))
}

pub fn registry_id(v: Option<&str>) -> Result<Option<String>, ApiError> {
    match v {
        Some(id) if !is_registry_id(id) => Err(invalid("registryId", REGISTRY_ID_PATTERN)),
        other => Ok(other.map(str::to_owned)),
    }
}

pub fn repository_name(v: &str, field: &str) -> Result<RepositoryName, ApiError> {
    RepositoryName::parse(v).map_err(|e| match e {
        RepositoryNameError::Length => invalid(field, "Member must have length between 2 and 256"),
        RepositoryNameError::Pattern => invalid(
            field,
            &format!(
                "must satisfy regular expression '{}'",
                RepositoryName::PATTERN
            ),
        ),
    })
}

/// `registryId` and `repositoryName` of a repository-scoped request.
pub fn repository(req: &impl RepositoryScoped) -> Result<RepositoryRef, ApiError> {
    Ok(RepositoryRef {
        service: registry::Service::Private,
        registry_id: registry_id(req.registry_id())?,
        name: repository_name(
            required(req.repository_name(), "repositoryName")?,
            "repositoryName",
        )?,
    })
}

pub fn tag(v: &str, field: &str) -> Result<ImageTag, ApiError> {
    ImageTag::parse(v).map_err(|e| invalid(field, &e.to_string()))
}

pub fn list_len<T>(v: &[T], field: &str, min: usize, max: usize) -> Result<(), ApiError> {
    if v.len() < min || v.len() > max {
        return Err(invalid(
            field,
            &format!("Member must have length between {min} and {max}"),
        ));
    }
    Ok(())
}

pub fn one_of<'a>(v: &'a str, field: &str, allowed: &[&str]) -> Result<&'a str, ApiError> {
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(invalid(
            field,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ))
    }
}

/// `nextToken` and `maxResults` (1-1000, default 100).
pub fn page(next_token: Option<&str>, max_results: Option<i64>) -> Result<Page, ApiError> {
    let limit = match max_results {
        None => 100,
        Some(n @ 1..=1000) => n as u32,
        Some(_) => {
            return Err(invalid(
                "maxResults",
                "Member must have value between 1 and 1000",
            ));
        }
    };
    let after = next_token.map(PageToken::decode).transpose()?;
    Ok(Page { after, limit })
}

/// Paging members together with an explicit id list are refused, as ECR does.
pub fn no_paging_with_ids(
    next_token: Option<&str>,
    max_results: Option<i64>,
    ids_field: &str,
) -> Result<(), ApiError> {
    if next_token.is_some() || max_results.is_some() {
        return Err(ApiError::InvalidParameter(format!(
            "Invalid parameter: nextToken and maxResults cannot be used together with {ids_field}"
        )));
    }
    Ok(())
}

/// The filter's `imageStatus` (`ImageStatusFilter`); ACTIVE when absent, as in ECR.
pub fn image_status(filter: Option<&ImagesFilter>) -> Result<StatusFilter, ApiError> {
    Ok(match filter.and_then(|f| f.image_status.as_deref()) {
        None => StatusFilter::Active,
        Some(s) => match one_of(
            s,
            "filter.imageStatus",
            &["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"],
        )? {
            "ARCHIVED" => StatusFilter::Archived,
            "ACTIVATING" => StatusFilter::Activating,
            "ANY" => StatusFilter::Any,
            _ => StatusFilter::Active,
        },
    })
}

pub fn tag_status(filter: Option<&ImagesFilter>) -> Result<TagStatus, ApiError> {
    image_status(filter)?;
    Ok(match filter.and_then(|f| f.tag_status.as_deref()) {
        None => TagStatus::Any,
        Some(s) => match one_of(s, "filter.tagStatus", &["TAGGED", "UNTAGGED", "ANY"])? {
            "TAGGED" => TagStatus::Tagged,
            "UNTAGGED" => TagStatus::Untagged,
            _ => TagStatus::Any,
        },
    })
}
