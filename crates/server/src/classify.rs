//! What a request is, told from its method, path and `X-Amz-Target` alone, for metrics and
//! the request log: the API it speaks, the operation (ECR) or route kind (`/v2`), and the
//! repository when the path names one. The front ends are not asked: this runs before them
//! and must not read a body.
//!
//! Label values are drawn from fixed sets (the operation names of botocore's models, the
//! route kinds), never copied from the request, so a client cannot grow the metrics without
//! bound by inventing targets or paths.

use axum::http::{HeaderMap, Method};

/// The API a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    /// Amazon ECR's JSON API (`POST /` with `AmazonEC2ContainerRegistry_V20150921.*`), and
    /// the layer download URLs it hands out.
    Ecr,
    /// Amazon ECR Public's JSON API (`POST /` with `SpencerFrontendService.*`).
    EcrPublic,
    /// The OCI Distribution API under `/v2/`.
    Oci,
    /// `/metrics`, `/healthz`, `/readyz`: not counted, logged at debug.
    Operator,
    /// Anything else (answered 404 or 405).
    Other,
    /// The web UI under `/ui/`.
    Ui,
}

impl Api {
    pub const ALL: [Api; 6] = [
        Api::Ecr,
        Api::EcrPublic,
        Api::Oci,
        Api::Operator,
        Api::Other,
        Api::Ui,
    ];

    /// The `api` label.
    pub fn label(self) -> &'static str {
        match self {
            Api::Ecr => "ecr",
            Api::EcrPublic => "ecr-public",
            Api::Oci => "oci",
            Api::Operator => "operator",
            Api::Other => "other",
            Api::Ui => "ui",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A request, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub api: Api,
    /// The ECR operation (`PutImage`), the `/v2` route kind (`manifest`), or `unknown`.
    pub operation: &'static str,
    /// The repository the path names (`/v2` only: an ECR request names it in its body).
    pub repository: Option<String>,
    /// Whether the request sends a layer's bytes: UploadLayerPart, or a `/v2` upload POST,
    /// PATCH or PUT.
    pub upload: bool,
}

const ECR_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
const ECR_PUBLIC_PREFIX: &str = "SpencerFrontendService.";
const UNKNOWN: &str = "unknown";

pub fn classify(method: &Method, path: &str, headers: &HeaderMap) -> Class {
    let class = |api, operation| Class {
        api,
        operation,
        repository: None,
        upload: false,
    };
    match path {
        "/metrics" => return class(Api::Operator, "metrics"),
        "/healthz" => return class(Api::Operator, "healthz"),
        "/readyz" => return class(Api::Operator, "readyz"),
        "/" => {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            for (prefix, api, ops) in [
                (ECR_PREFIX, Api::Ecr, ECR_OPERATIONS),
                (ECR_PUBLIC_PREFIX, Api::EcrPublic, ECR_PUBLIC_OPERATIONS),
            ] {
                if let Some(name) = target.strip_prefix(prefix) {
                    let operation = known(ops, name);
                    return Class {
                        upload: operation == "UploadLayerPart",
                        ..class(api, operation)
                    };
                }
            }
            return class(Api::Other, UNKNOWN);
        }
        _ => {}
    }
    if path.starts_with("/_berth/layers/") {
        return class(Api::Ecr, "LayerDownload");
    }
    if path == "/ui" || path.starts_with("/ui/") {
        return ui_class(path);
    }
    let Some(rest) = path
        .strip_prefix("/v2/")
        .or_else(|| (path == "/v2").then_some(""))
    else {
        return class(Api::Other, UNKNOWN);
    };
    use oci_api::route::Route;
    let Ok(route) = oci_api::route::parse(rest) else {
        return class(Api::Oci, UNKNOWN);
    };
    let (operation, repository) = match route {
        Route::Base => ("base", None),
        Route::Catalog => ("catalog", None),
        Route::Blob(n, _) => ("blob", Some(n)),
        Route::Uploads(n) | Route::Upload(n, _) => ("upload", Some(n)),
        Route::Manifest(n, _) => ("manifest", Some(n)),
        Route::Tags(n) => ("tags", Some(n)),
        Route::Referrers(n, _) => ("referrers", Some(n)),
    };
    Class {
        api: Api::Oci,
        operation,
        repository: repository.map(|n| n.as_str().to_owned()),
        upload: operation == "upload"
            && matches!(*method, Method::POST | Method::PATCH | Method::PUT),
    }
}

/// A web UI request: the page kind, and the repository a `/ui/r/<name>` page names.
fn ui_class(path: &str) -> Class {
    let (operation, repository) = match path {
        "/ui" | "/ui/" => ("repositories", None),
        "/ui/login" => ("login", None),
        "/ui/logout" => ("logout", None),
        p if p.starts_with("/ui/static/") => ("asset", None),
        p => match p.strip_prefix("/ui/r/") {
            Some(rest) => {
                let (name, page) = rest.split_once("/-/").unwrap_or((rest, ""));
                let name = model::RepositoryName::parse(name).ok();
                match page {
                    "" => ("repository", name),
                    p if p.starts_with("image/") => ("image", name),
                    _ => (UNKNOWN, name),
                }
            }
            None => (UNKNOWN, None),
        },
    };
    Class {
        api: Api::Ui,
        operation,
        repository: repository.map(|n| n.as_str().to_owned()),
        upload: false,
    }
}

/// `name` as one of `ops` (a `'static` label), or `unknown`.
fn known(ops: &[&'static str], name: &str) -> &'static str {
    ops.binary_search_by(|o| (*o).cmp(name))
        .map_or(UNKNOWN, |i| ops[i])
}

/// Every operation of botocore's `ecr` model (2015-09-21), `targetPrefix` `AmazonEC2ContainerRegistry_V20150921`.
const ECR_OPERATIONS: &[&str] = &[
    "BatchCheckLayerAvailability",
    "BatchDeleteImage",
    "BatchGetImage",
    "BatchGetRepositoryScanningConfiguration",
    "CompleteLayerUpload",
    "CreatePullThroughCacheRule",
    "CreateRepository",
    "CreateRepositoryCreationTemplate",
    "DeleteLifecyclePolicy",
    "DeletePullThroughCacheRule",
    "DeleteRegistryPolicy",
    "DeleteRepository",
    "DeleteRepositoryCreationTemplate",
    "DeleteRepositoryPolicy",
    "DeleteSigningConfiguration",
    "DeregisterPullTimeUpdateExclusion",
    "DescribeImageReplicationStatus",
    "DescribeImageScanFindings",
    "DescribeImageSigningStatus",
    "DescribeImages",
    "DescribePullThroughCacheRules",
    "DescribeRegistry",
    "DescribeRepositories",
    "DescribeRepositoryCreationTemplates",
    "GetAccountSetting",
    "GetAuthorizationToken",
    "GetDownloadUrlForLayer",
    "GetLifecyclePolicy",
    "GetLifecyclePolicyPreview",
    "GetRegistryPolicy",
    "GetRegistryScanningConfiguration",
    "GetRepositoryPolicy",
    "GetSigningConfiguration",
    "InitiateLayerUpload",
    "ListImageReferrers",
    "ListImages",
    "ListPullTimeUpdateExclusions",
    "ListTagsForResource",
    "PutAccountSetting",
    "PutImage",
    "PutImageScanningConfiguration",
    "PutImageTagMutability",
    "PutLifecyclePolicy",
    "PutRegistryPolicy",
    "PutRegistryScanningConfiguration",
    "PutReplicationConfiguration",
    "PutSigningConfiguration",
    "RegisterPullTimeUpdateExclusion",
    "SetRepositoryPolicy",
    "StartImageScan",
    "StartLifecyclePolicyPreview",
    "TagResource",
    "UntagResource",
    "UpdateImageStorageClass",
    "UpdatePullThroughCacheRule",
    "UpdateRepositoryCreationTemplate",
    "UploadLayerPart",
    "ValidatePullThroughCacheRule",
];

/// Every operation of botocore's `ecr-public` model (2020-10-30), `targetPrefix` `SpencerFrontendService`.
const ECR_PUBLIC_OPERATIONS: &[&str] = &[
    "BatchCheckLayerAvailability",
    "BatchDeleteImage",
    "CompleteLayerUpload",
    "CreateRepository",
    "DeleteRepository",
    "DeleteRepositoryPolicy",
    "DescribeImageTags",
    "DescribeImages",
    "DescribeRegistries",
    "DescribeRepositories",
    "GetAuthorizationToken",
    "GetRegistryCatalogData",
    "GetRepositoryCatalogData",
    "GetRepositoryPolicy",
    "InitiateLayerUpload",
    "ListTagsForResource",
    "PutImage",
    "PutRegistryCatalogData",
    "PutRepositoryCatalogData",
    "SetRepositoryPolicy",
    "TagResource",
    "UntagResource",
    "UploadLayerPart",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn target(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", t.parse().unwrap());
        h
    }

    #[test]
    fn operation_lists_are_sorted_for_binary_search() {
        for ops in [ECR_OPERATIONS, ECR_PUBLIC_OPERATIONS] {
            assert!(ops.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn ecr_targets() {
        let c = classify(
            &Method::POST,
            "/",
            &target("AmazonEC2ContainerRegistry_V20150921.UploadLayerPart"),
        );
        assert_eq!(
            (c.api, c.operation, c.upload),
            (Api::Ecr, "UploadLayerPart", true)
        );
        let c = classify(
            &Method::POST,
            "/",
            &target("SpencerFrontendService.DescribeRegistries"),
        );
        assert_eq!((c.api, c.operation), (Api::EcrPublic, "DescribeRegistries"));
        // Invented operations share one label.
        let c = classify(
            &Method::POST,
            "/",
            &target("AmazonEC2ContainerRegistry_V20150921.Nope123"),
        );
        assert_eq!((c.api, c.operation), (Api::Ecr, "unknown"));
        let c = classify(&Method::POST, "/", &HeaderMap::new());
        assert_eq!((c.api, c.operation), (Api::Other, "unknown"));
    }

    #[test]
    fn v2_routes() {
        let h = HeaderMap::new();
        let c = classify(&Method::PATCH, "/v2/team/app/blobs/uploads/abc", &h);
        assert_eq!(
            (c.api, c.operation, c.repository.as_deref(), c.upload),
            (Api::Oci, "upload", Some("team/app"), true)
        );
        let c = classify(&Method::GET, "/v2/team/app/blobs/uploads/abc", &h);
        assert!(!c.upload, "an upload's status is no upload");
        let c = classify(&Method::GET, "/v2/ab/manifests/latest", &h);
        assert_eq!(
            (c.operation, c.repository.as_deref()),
            ("manifest", Some("ab"))
        );
        assert_eq!(classify(&Method::GET, "/v2/", &h).operation, "base");
        assert_eq!(classify(&Method::GET, "/v2", &h).operation, "base");
        assert_eq!(
            classify(&Method::GET, "/v2/_catalog", &h).operation,
            "catalog"
        );
        assert_eq!(
            classify(&Method::GET, "/v2/ab/tags/list", &h).operation,
            "tags"
        );
        assert_eq!(
            classify(&Method::GET, "/v2/ab/referrers/sha256:00", &h).operation,
            "referrers"
        );
        assert_eq!(
            classify(&Method::GET, "/v2/A/nope", &h).operation,
            "unknown"
        );
        assert_eq!(classify(&Method::GET, "/v2x", &h).api, Api::Other);
        let c = classify(&Method::GET, "/ui/r/team/app/-/image/v1", &h);
        assert_eq!(
            (c.api, c.operation, c.repository.as_deref()),
            (Api::Ui, "image", Some("team/app"))
        );
        assert_eq!(classify(&Method::POST, "/ui/login", &h).operation, "login");
        assert_eq!(classify(&Method::GET, "/uix", &h).api, Api::Other);
        assert_eq!(classify(&Method::GET, "/metrics", &h).api, Api::Operator);
    }
}
