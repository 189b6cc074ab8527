//! Request and response shapes of the botocore model (`ecr/2015-09-21`), camelCase on the wire.
//! Requests keep every member optional so that a missing required member becomes ECR's
//! `InvalidParameterException` rather than a serialization error; no logic lives here.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: Option<String>,
    #[serde(rename = "Value")]
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct MutabilityExclusionFilter {
    pub filter_type: Option<String>,
    pub filter: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageScanningConfiguration {
    #[serde(default)]
    pub scan_on_push: bool,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionConfiguration {
    pub encryption_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepositoryRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub image_tag_mutability: Option<String>,
    pub image_tag_mutability_exclusion_filters: Option<Vec<MutabilityExclusionFilter>>,
    pub image_scanning_configuration: Option<ImageScanningConfiguration>,
    pub encryption_configuration: Option<EncryptionConfiguration>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub repository_arn: String,
    pub registry_id: String,
    pub repository_name: String,
    pub repository_uri: String,
    pub created_at: f64,
    pub image_tag_mutability: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_tag_mutability_exclusion_filters: Vec<MutabilityExclusionFilter>,
    pub image_scanning_configuration: ImageScanningConfiguration,
    pub encryption_configuration: EncryptionConfiguration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryResponse {
    pub repository: Repository,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositoriesRequest {
    pub registry_id: Option<String>,
    pub repository_names: Option<Vec<String>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositoriesResponse {
    pub repositories: Vec<Repository>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRepositoryRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub force: Option<bool>,
}

/// The members every repository-scoped request shares. Written out in each request rather
/// than `#[serde(flatten)]`ed, which would buffer a 28 MB `layerPartBlob` once more.
pub trait RepositoryScoped {
    fn registry_id(&self) -> Option<&str>;
    fn repository_name(&self) -> Option<&str>;
}

macro_rules! repository_scoped {
    ($($t:ty),*) => {$(
        impl RepositoryScoped for $t {
            fn registry_id(&self) -> Option<&str> { self.registry_id.as_deref() }
            fn repository_name(&self) -> Option<&str> { self.repository_name.as_deref() }
        }
    )*};
}

repository_scoped!(
    SetRepositoryPolicyRequest,
    RepositoryPolicyRequest,
    DeleteRepositoryRequest,
    BatchCheckLayerAvailabilityRequest,
    InitiateLayerUploadRequest,
    UploadLayerPartRequest<'_>,
    CompleteLayerUploadRequest,
    PutImageRequest,
    BatchGetImageRequest,
    GetDownloadUrlForLayerRequest,
    ListImagesRequest,
    DescribeImagesRequest,
    BatchDeleteImageRequest
);

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InitiateLayerUploadRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BatchCheckLayerAvailabilityRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub layer_digests: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub layer_digest: String,
    pub layer_availability: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerFailure {
    pub layer_digest: String,
    pub failure_code: &'static str,
    pub failure_reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCheckLayerAvailabilityResponse {
    pub layers: Vec<Layer>,
    pub failures: Vec<LayerFailure>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateLayerUploadResponse {
    pub upload_id: String,
    pub part_size: u64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UploadLayerPartRequest<'a> {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub upload_id: Option<String>,
    pub part_first_byte: Option<i64>,
    pub part_last_byte: Option<i64>,
    /// Borrowed from the request body when it holds no JSON escapes (base64 never needs
    /// one), so a 28 MB part is not copied before it is decoded.
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    pub layer_part_blob: Option<Cow<'a, str>>,
}

/// An optional string borrowed from the input where it can be. `#[serde(borrow)]` alone does
/// not reach through `Option`: serde's `Cow` always copies, which cost every part a 28 MB copy
/// of its base64 and a 20 MiB buffer to decode it into.
fn borrowed_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLayerPartResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub upload_id: String,
    pub last_byte_received: i64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CompleteLayerUploadRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub upload_id: Option<String>,
    pub layer_digests: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteLayerUploadResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub upload_id: String,
    pub layer_digest: String,
}

#[derive(Debug, Deserialize, Serialize, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageIdentifier {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PutImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_manifest: Option<String>,
    pub image_manifest_media_type: Option<String>,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub registry_id: String,
    pub repository_name: String,
    pub image_id: ImageIdentifier,
    pub image_manifest: String,
    pub image_manifest_media_type: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageResponse {
    pub image: Image,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_ids: Option<Vec<ImageIdentifier>>,
    pub accepted_media_types: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFailure {
    pub image_id: ImageIdentifier,
    pub failure_code: &'static str,
    pub failure_reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageResponse {
    pub images: Vec<Image>,
    pub failures: Vec<ImageFailure>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GetDownloadUrlForLayerRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub layer_digest: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDownloadUrlForLayerResponse {
    pub download_url: String,
    pub layer_digest: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImagesFilter {
    pub tag_status: Option<String>,
    pub image_status: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImagesFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesResponse {
    pub image_ids: Vec<ImageIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_ids: Option<Vec<ImageIdentifier>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImagesFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDetail {
    pub registry_id: String,
    pub repository_name: String,
    pub image_digest: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_tags: Vec<String>,
    pub image_size_in_bytes: u64,
    pub image_pushed_at: f64,
    pub image_manifest_media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_manifest_digest: Option<String>,
    pub image_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_recorded_pull_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_archived_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_activated_at: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesResponse {
    pub image_details: Vec<ImageDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_ids: Option<Vec<ImageIdentifier>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageResponse {
    pub image_ids: Vec<ImageIdentifier>,
    pub failures: Vec<ImageFailure>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenRequest {
    pub registry_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationData {
    pub authorization_token: String,
    pub expires_at: f64,
    pub proxy_endpoint: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenResponse {
    pub authorization_data: Vec<AuthorizationData>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    pub resource_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceResponse {
    pub tags: Vec<Tag>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SetRepositoryPolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub policy_text: Option<String>,
    pub force: Option<bool>,
}

/// GetRepositoryPolicy and DeleteRepositoryPolicy.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPolicyResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub policy_text: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PutRegistryPolicyRequest {
    pub policy_text: Option<String>,
}

/// GetRegistryPolicy and DeleteRegistryPolicy take no members.
#[derive(Debug, Deserialize, Default)]
pub struct Empty {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryPolicyResponse {
    pub registry_id: String,
    pub policy_text: String,
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::UploadLayerPartRequest;

    #[test]
    fn part_blob_is_borrowed_from_the_body() {
        let r: UploadLayerPartRequest<'_> =
            serde_json::from_slice(br#"{"layerPartBlob":"QUJD/+=="}"#).unwrap();
        assert!(matches!(r.layer_part_blob, Some(Cow::Borrowed("QUJD/+=="))));
        // An escape can only be undone in a copy.
        let r: UploadLayerPartRequest<'_> =
            serde_json::from_slice(br#"{"layerPartBlob":"QUJD\/+=="}"#).unwrap();
        assert!(matches!(r.layer_part_blob, Some(Cow::Owned(ref t)) if t == "QUJD/+=="));
        for absent in [&br#"{}"#[..], br#"{"layerPartBlob":null}"#] {
            let r: UploadLayerPartRequest<'_> = serde_json::from_slice(absent).unwrap();
            assert!(r.layer_part_blob.is_none());
        }
    }
}

/// PutLifecyclePolicy and StartLifecyclePolicyPreview (whose policy text is optional).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PutLifecyclePolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub lifecycle_policy_text: Option<String>,
}

/// PutLifecyclePolicy, GetLifecyclePolicy and DeleteLifecyclePolicy.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evaluated_at: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLifecyclePolicyPreviewResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    pub status: &'static str,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyPreviewFilter {
    pub tag_status: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GetLifecyclePolicyPreviewRequest {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_ids: Option<Vec<ImageIdentifier>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<LifecyclePolicyPreviewFilter>,
}

repository_scoped!(PutLifecyclePolicyRequest, GetLifecyclePolicyPreviewRequest);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyRuleAction {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_storage_class: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyPreviewResult {
    pub image_tags: Vec<String>,
    pub image_digest: String,
    pub image_pushed_at: f64,
    pub action: LifecyclePolicyRuleAction,
    pub applied_rule_priority: i64,
    pub storage_class: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyPreviewSummary {
    pub expiring_image_total_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitioning_image_total_counts: Option<Vec<TransitioningImageTotalCount>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitioningImageTotalCount {
    pub target_storage_class: &'static str,
    pub image_total_count: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLifecyclePolicyPreviewResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub preview_results: Vec<LifecyclePolicyPreviewResult>,
    pub summary: LifecyclePolicyPreviewSummary,
}

// Generated request shapes of the operations built on them, scoped to one repository.
repository_scoped!(
    crate::shapes::ecr::PutImageTagMutabilityRequest,
    crate::shapes::ecr::PutImageScanningConfigurationRequest,
    crate::shapes::ecr::ListImageReferrersRequest,
    crate::shapes::ecr::StartImageScanRequest,
    crate::shapes::ecr::DescribeImageScanFindingsRequest,
    crate::shapes::ecr::UpdateImageStorageClassRequest,
    crate::shapes::ecr::DescribeImageReplicationStatusRequest
);
