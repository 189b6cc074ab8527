/// Manifest media types berth stores (ecr-api.md section 6.5).
pub struct MediaType;

impl MediaType {
    pub const DOCKER_MANIFEST_V2: &'static str =
        "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &'static str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST_V1: &'static str =
        "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_MANIFEST_V1_SIGNED: &'static str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const OCI_MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &'static str = "application/vnd.oci.image.index.v1+json";

    /// True for the media types of an image index / manifest list, whose references are
    /// other manifests rather than blobs.
    pub fn is_index(mt: &str) -> bool {
        mt == Self::OCI_INDEX || mt == Self::DOCKER_MANIFEST_LIST
    }

    /// True for every manifest media type PutImage accepts.
    pub fn is_supported_manifest(mt: &str) -> bool {
        matches!(
            mt,
            Self::DOCKER_MANIFEST_V2
                | Self::DOCKER_MANIFEST_LIST
                | Self::OCI_MANIFEST
                | Self::OCI_INDEX
                | Self::DOCKER_MANIFEST_V1
                | Self::DOCKER_MANIFEST_V1_SIGNED
        )
    }
}
