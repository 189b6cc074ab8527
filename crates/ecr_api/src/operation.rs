//! The operation an `X-Amz-Target` header names.

pub const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";

/// Operations berth implements. Any other target, including the ECR operations not built yet,
/// answers `UnknownOperationException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateRepository,
    DescribeRepositories,
    DeleteRepository,
    BatchCheckLayerAvailability,
    InitiateLayerUpload,
    UploadLayerPart,
    CompleteLayerUpload,
    PutImage,
    BatchGetImage,
    GetDownloadUrlForLayer,
    ListImages,
    DescribeImages,
    BatchDeleteImage,
    GetAuthorizationToken,
    ListTagsForResource,
    SetRepositoryPolicy,
    GetRepositoryPolicy,
    DeleteRepositoryPolicy,
    PutRegistryPolicy,
    GetRegistryPolicy,
    DeleteRegistryPolicy,
    PutLifecyclePolicy,
    GetLifecyclePolicy,
    DeleteLifecyclePolicy,
    StartLifecyclePolicyPreview,
    GetLifecyclePolicyPreview,
}

impl Operation {
    pub fn from_target(target: &str) -> Option<Self> {
        use Operation::*;
        Some(match target.strip_prefix(TARGET_PREFIX)? {
            "CreateRepository" => CreateRepository,
            "DescribeRepositories" => DescribeRepositories,
            "DeleteRepository" => DeleteRepository,
            "BatchCheckLayerAvailability" => BatchCheckLayerAvailability,
            "InitiateLayerUpload" => InitiateLayerUpload,
            "UploadLayerPart" => UploadLayerPart,
            "CompleteLayerUpload" => CompleteLayerUpload,
            "PutImage" => PutImage,
            "BatchGetImage" => BatchGetImage,
            "GetDownloadUrlForLayer" => GetDownloadUrlForLayer,
            "ListImages" => ListImages,
            "DescribeImages" => DescribeImages,
            "BatchDeleteImage" => BatchDeleteImage,
            "GetAuthorizationToken" => GetAuthorizationToken,
            "ListTagsForResource" => ListTagsForResource,
            "SetRepositoryPolicy" => SetRepositoryPolicy,
            "GetRepositoryPolicy" => GetRepositoryPolicy,
            "DeleteRepositoryPolicy" => DeleteRepositoryPolicy,
            "PutRegistryPolicy" => PutRegistryPolicy,
            "GetRegistryPolicy" => GetRegistryPolicy,
            "DeleteRegistryPolicy" => DeleteRegistryPolicy,
            "PutLifecyclePolicy" => PutLifecyclePolicy,
            "GetLifecyclePolicy" => GetLifecyclePolicy,
            "DeleteLifecyclePolicy" => DeleteLifecyclePolicy,
            "StartLifecyclePolicyPreview" => StartLifecyclePolicyPreview,
            "GetLifecyclePolicyPreview" => GetLifecyclePolicyPreview,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Operation::from_target("AmazonEC2ContainerRegistry_V20150921.UploadLayerPart"),
            Some(Operation::UploadLayerPart)
        );
        assert_eq!(
            Operation::from_target("SpencerFrontendService.CreateRepository"),
            None
        );
        assert_eq!(
            Operation::from_target("AmazonEC2ContainerRegistry_V20150921.Nope"),
            None
        );
        assert_eq!(Operation::from_target("UploadLayerPart"), None);
    }
}
