//! Public repositories (ECR Public) through `/v2`: `<host>/v2/<alias>/<name>`, anonymous
//! pulls, pushes with the public registry's token only, and the logo route.
//!
//! Until the ECR Public JSON API exists, a test creates its public repositories through the
//! registry core itself, on the server's storage, before starting the real binary on it.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use auth::token::{RegistryToken, TokenScope};
use model::RepositoryName;
use registry::{
    CatalogData, CreatePublicRepository, Page, Principal, Registry, RegistryError, RepositoryRef,
    ResourceTag, Service,
};
use reqwest::Method;

use crate::harness::*;

const ACCOUNT: &str = "000000000000";
const ALIAS: &str = "acme";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-not-really-an-image";

fn owner() -> Principal {
    Principal {
        access_key_id: ACCESS_KEY.into(),
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{ACCESS_KEY}"),
        account_id: ACCOUNT.into(),
    }
}

/// The registry core on the storage a server on `dir` will use (the same backends as the
/// harness gives it).
async fn core_on(dir: &Path) -> Registry {
    let metadata = metadata_for(dir).map(|u| storage::Metadata::parse(&u).unwrap());
    let storage = storage::Storage::open(dir, metadata.as_ref())
        .await
        .expect("open storage");
    Registry::new(storage, "us-east-1".into(), registry::Limits::default())
}

async fn create_public(core: &Registry, name: &str, logo: Option<&[u8]>) {
    core.create_public_repository(
        &owner(),
        CreatePublicRepository {
            registry_id: None,
            name: RepositoryName::parse(name).unwrap(),
            tags: vec![],
            catalog: Some((
                CatalogData {
                    description: Some("a public image".into()),
                    ..Default::default()
                },
                logo.map(<[u8]>::to_vec),
            )),
        },
    )
    .await
    .expect("create the public repository");
}

/// A `/v2` password as GetAuthorizationToken would mint it, with the server's signing key.
fn password(dir: &Path, scope: TokenScope, account: &str) -> String {
    let key = auth::SigningKey::load_or_create(&dir.join("signing.key")).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let pw = auth::token::mint_for(
        scope,
        &key,
        &RegistryToken {
            account_id: account.into(),
            region: "us-east-1".into(),
            access_key_id: ACCESS_KEY.into(),
            arn: format!("arn:aws:iam::{account}:user/{ACCESS_KEY}"),
            expires_at: now + 3600,
        },
    );
    format!(
        "Basic {}",
        base64_simd::STANDARD.encode_to_string(format!("AWS:{pw}"))
    )
}

fn client(server: &TestServer, auth: String) -> Oci {
    Oci {
        http: reqwest::Client::new(),
        base: server.endpoint.clone(),
        auth,
    }
}

async fn anonymous(server: &TestServer, method: Method, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, format!("{}{path}", server.endpoint))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn public_repositories_are_pulled_by_anyone_and_pushed_with_their_token_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    create_public(&core_on(dir).await, "team/app", None).await;
    let server = TestServer::start_in_with(dir, &["--public-registry-alias", ALIAS]).await;
    let public = client(&server, password(dir, TokenScope::Public, ACCOUNT));
    let private = client(&server, password(dir, TokenScope::Private, ACCOUNT));
    let layer = random_bytes(4096, 1);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let upload = |d: &str| format!("/v2/{ALIAS}/team/app/blobs/uploads/?digest={d}");

    // Without a token, and with the private registry's token: 401 with the challenge.
    let r = anonymous(&server, Method::POST, &upload(&sha256_digest(&layer))).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    let r = private
        .req(Method::POST, &upload(&sha256_digest(&layer)))
        .body(layer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "a private token does not push to a public repository"
    );
    assert!(r.headers().contains_key("www-authenticate"));

    // With the public token: the same upload state machine as every push.
    let ld = public.push_blob(&format!("{ALIAS}/team/app"), &layer).await;
    let cd = public
        .push_blob(&format!("{ALIAS}/team/app"), &config)
        .await;
    let manifest = oci_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let media = "application/vnd.oci.image.manifest.v1+json";
    let r = private
        .put_manifest(&format!("{ALIAS}/team/app"), "v1", media, &manifest)
        .await;
    assert_eq!(r.status(), 401);
    let r = public
        .put_manifest(&format!("{ALIAS}/team/app"), "v1", media, &manifest)
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!(
            "/v2/{ALIAS}/team/app/manifests/{}",
            sha256_digest(manifest.as_bytes())
        )
    );

    // Anyone pulls: manifest, blob, tags, with or without some other token.
    let r = anonymous(
        &server,
        Method::GET,
        &format!("/v2/{ALIAS}/team/app/manifests/v1"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), manifest.as_bytes());
    let r = anonymous(
        &server,
        Method::HEAD,
        &format!("/v2/{ALIAS}/team/app/manifests/v1"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = anonymous(
        &server,
        Method::GET,
        &format!("/v2/{ALIAS}/team/app/blobs/{ld}"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), layer);
    let r = anonymous(
        &server,
        Method::GET,
        &format!("/v2/{ALIAS}/team/app/tags/list"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let tags: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    let r = private
        .req(Method::GET, &format!("/v2/{ALIAS}/team/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a private token reads public repositories as anyone may"
    );

    // The registry's generated (default) alias reaches it as well as the configured one.
    let generated = registry::generated_alias(ACCOUNT);
    let r = anonymous(
        &server,
        Method::GET,
        &format!("/v2/{generated}/team/app/manifests/v1"),
    )
    .await;
    assert_eq!(r.status(), 200);

    // Anonymous writes stay refused.
    let r = anonymous(
        &server,
        Method::DELETE,
        &format!("/v2/{ALIAS}/team/app/manifests/v1"),
    )
    .await;
    assert_eq!(r.status(), 401);

    // Another account's public token reaches the registry but may not write to this one.
    let stranger = client(&server, password(dir, TokenScope::Public, "111111111111"));
    let r = stranger
        .req(Method::POST, &upload(&sha256_digest(b"x")))
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(oci_code(r).await, "DENIED");

    // `docker login` with the public token probes /v2/.
    let r = public.req(Method::GET, "/v2/").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn public_and_private_repositories_of_one_name_stay_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    create_public(&core_on(dir).await, "team/app", None).await;
    let server = TestServer::start_in_with(dir, &["--public-registry-alias", ALIAS]).await;
    create_repo(&server.ecr(), "team/app").await;
    let public = client(&server, password(dir, TokenScope::Public, ACCOUNT));
    let private = client(&server, password(dir, TokenScope::Private, ACCOUNT));

    let layer = random_bytes(1000, 2);
    let ld = public.push_blob(&format!("{ALIAS}/team/app"), &layer).await;
    let manifest = oci_manifest((&ld, layer.len()), &[(&ld, layer.len())]);
    let media = "application/vnd.oci.image.manifest.v1+json";
    let r = public
        .put_manifest(&format!("{ALIAS}/team/app"), "pub", media, &manifest)
        .await;
    assert_eq!(r.status(), 201);

    // The private repository of the same name has none of it.
    let r = private
        .req(Method::GET, "/v2/team/app/manifests/pub")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(oci_code(r).await, "MANIFEST_UNKNOWN");
    let r = private
        .req(Method::HEAD, &format!("/v2/team/app/blobs/{ld}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let listed = server
        .ecr()
        .list_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert!(listed.image_ids().is_empty(), "{listed:?}");

    // Mounts: from public to private (a read anyone may do), never from private to public.
    let secret = private.push_blob("team/app", b"private bytes").await;
    let mount =
        |to: &str, from: &str, d: &str| format!("/v2/{to}/blobs/uploads/?mount={d}&from={from}");
    let r = public
        .req(
            Method::POST,
            &mount(&format!("{ALIAS}/team/app"), "team/app", &secret),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        202,
        "a new upload, not a mount of a private blob"
    );
    let r = anonymous(
        &server,
        Method::HEAD,
        &format!("/v2/{ALIAS}/team/app/blobs/{secret}"),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = private
        .req(
            Method::POST,
            &mount("team/app", &format!("{ALIAS}/team/app"), &ld),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "mounted from the public repository");

    // A public token opens no private repository, not even for a read.
    let r = public
        .req(Method::GET, "/v2/team/app/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = public
        .req(Method::GET, "/v2/_catalog")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The catalog lists the private registry only.
    let r = private
        .req(Method::GET, "/v2/_catalog")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let catalog: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["team/app"]));

    // A missing public repository is NAME_UNKNOWN to anyone, and no push creates one (ECR
    // Public does not create on push).
    let r = anonymous(
        &server,
        Method::GET,
        &format!("/v2/{ALIAS}/team/none/tags/list"),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(oci_code(r).await, "NAME_UNKNOWN");
    let r = public
        .req(
            Method::POST,
            &format!("/v2/{ALIAS}/team/none/blobs/uploads/?digest={ld}"),
        )
        .body(layer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(oci_code(r).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn create_on_push_never_creates_a_public_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server =
        TestServer::start_in_with(dir, &["--public-registry-alias", ALIAS, "--create-on-push"])
            .await;
    let public = client(&server, password(dir, TokenScope::Public, ACCOUNT));
    let r = public
        .req(
            Method::POST,
            &format!(
                "/v2/{ALIAS}/fresh/blobs/uploads/?digest={}",
                sha256_digest(b"x")
            ),
        )
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(oci_code(r).await, "NAME_UNKNOWN");
    // The same push to the private registry creates its repository, as before.
    let private = client(&server, password(dir, TokenScope::Private, ACCOUNT));
    private.push_blob("fresh", b"x").await;
}

#[tokio::test]
async fn the_logo_of_a_public_repository_is_served_to_anyone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let core = core_on(dir).await.with_public_aliases(
        registry::PublicAliases::new(&[(ACCOUNT.into(), ALIAS.into())], []).unwrap(),
    );
    create_public(&core, "team/app", Some(PNG)).await;
    create_public(&core, "team/plain", None).await;
    let (repo, _) = core
        .repository_catalog_data(
            &owner(),
            &RepositoryRef::public(None, RepositoryName::parse("team/app").unwrap()),
        )
        .await
        .unwrap();
    let path = core.logo_path(&repo);
    assert_eq!(path, format!("/_berth/public-logos/{ALIAS}/team/app"));
    drop(core);
    let server = TestServer::start_in_with(dir, &["--public-registry-alias", ALIAS]).await;

    let r = anonymous(&server, Method::GET, &path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap(), PNG);
    for missing in [
        format!("/_berth/public-logos/{ALIAS}/team/plain"),
        format!("/_berth/public-logos/{ALIAS}/team/none"),
        "/_berth/public-logos/nosuchalias/team/app".to_owned(),
        format!("/_berth/public-logos/{ALIAS}"),
    ] {
        let r = anonymous(&server, Method::GET, &missing).await;
        assert_eq!(r.status(), 404, "{missing}");
    }
}

/// The registry core's public use cases on this run's storage: resource tags within their
/// limit, catalog data, listings per registry, deletes that leave the other registry alone,
/// and ECR Public's ARNs in policies.
#[tokio::test]
async fn public_use_cases_share_the_core_and_keep_their_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let core = core_on(tmp.path()).await.with_public_aliases(
        registry::PublicAliases::new(&[(ACCOUNT.into(), ALIAS.into())], []).unwrap(),
    );
    let who = owner();
    let name = RepositoryName::parse("team/app").unwrap();
    let public_ref = RepositoryRef::public(None, name.clone());
    let private_ref = RepositoryRef::private(None, name.clone());
    create_public(&core, "team/app", Some(PNG)).await;
    core.create_repository(
        &who,
        registry::CreateRepository {
            registry_id: None,
            name: name.clone(),
            tags: vec![],
            image_tag_mutability: None,
            mutability_exclusions: vec![],
            scan_on_push: false,
            encryption: None,
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        core.create_public_repository(
            &who,
            CreatePublicRepository {
                registry_id: None,
                name: name.clone(),
                tags: vec![],
                catalog: None,
            },
        )
        .await,
        Err(RegistryError::RepositoryAlreadyExists { .. })
    ));

    // Identity: ARN, URI and registry.
    let repo = core.describe_repository(&who, &public_ref).await.unwrap();
    assert_eq!(repo.service, Service::Public);
    assert_eq!(repo.registry_id, ACCOUNT);
    assert_eq!(
        core.repository_arn(&repo),
        format!("arn:aws:ecr-public::{ACCOUNT}:repository/team/app")
    );
    assert_eq!(
        core.repository_uri(&repo, "localhost:5000"),
        format!("localhost:5000/{ALIAS}/team/app")
    );
    let registry = core.public_registry(&who).await.unwrap();
    assert_eq!(
        (registry.alias.as_str(), registry.display_name.as_deref()),
        (ALIAS, None)
    );
    assert_eq!(
        registry.arn,
        format!("arn:aws:ecr-public::{ACCOUNT}:registry/{ACCOUNT}")
    );
    let aliases: Vec<(&str, bool, bool)> = registry
        .aliases
        .iter()
        .map(|a| (a.name.as_str(), a.primary, a.default))
        .collect();
    let generated = registry::generated_alias(ACCOUNT);
    assert_eq!(
        aliases,
        [(ALIAS, true, false), (generated.as_str(), false, true)]
    );
    let registry = core
        .put_registry_catalog_data(&who, Some("Acme Images"))
        .await
        .unwrap();
    assert_eq!(registry.display_name.as_deref(), Some("Acme Images"));

    // Listings keep to their registry.
    let (public_list, _) = core
        .describe_repositories_in(
            &who,
            Service::Public,
            None,
            None,
            Page {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(public_list.len(), 1);
    assert_eq!(public_list[0].service, Service::Public);
    let (private_list, _) = core
        .describe_repositories(
            &who,
            None,
            None,
            Page {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(private_list.len(), 1);
    assert_eq!(private_list[0].service, Service::Private);

    // Catalog data: created with the repository, replaced whole.
    let (_, data) = core
        .repository_catalog_data(&who, &public_ref)
        .await
        .unwrap();
    let data = data.expect("catalog data");
    assert_eq!(data.description.as_deref(), Some("a public image"));
    assert_eq!(data.logo_content_type.as_deref(), Some("image/png"));
    let (_, stored) = core
        .put_repository_catalog_data(
            &who,
            &public_ref,
            CatalogData {
                about_text: Some("# About".into()),
                architectures: Some(vec!["ARM 64".into()]),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(stored.description, None);
    assert_eq!(stored.logo_content_type, None, "no logo given removes it");
    assert!(core.public_logo(ALIAS, &name).await.unwrap().is_none());
    assert!(matches!(
        core.put_repository_catalog_data(
            &who,
            &public_ref,
            CatalogData::default(),
            Some(&vec![0; registry::MAX_LOGO_BYTES + 1]),
        )
        .await,
        Err(RegistryError::InvalidParameter(_))
    ));
    let (_, data) = core
        .repository_catalog_data(&who, &public_ref)
        .await
        .unwrap();
    assert_eq!(
        data.unwrap().about_text.as_deref(),
        Some("# About"),
        "a refused write changes nothing"
    );

    // Resource tags: replaced in place, at most 50, all or nothing.
    let tag = |k: &str, v: &str| ResourceTag {
        key: k.into(),
        value: v.into(),
    };
    let many: Vec<ResourceTag> = (0..49).map(|i| tag(&format!("k{i}"), "v")).collect();
    core.tag_resource(&who, &public_ref, &many).await.unwrap();
    let tags = core
        .tag_resource(&who, &public_ref, &[tag("k0", "new"), tag("last", "v")])
        .await
        .unwrap();
    assert_eq!(tags.len(), 50);
    assert_eq!(tags[0], tag("k0", "new"), "a replaced key keeps its place");
    assert_eq!(tags[49], tag("last", "v"));
    assert!(matches!(
        core.tag_resource(&who, &public_ref, &[tag("one-too-many", "v")])
            .await,
        Err(RegistryError::TooManyTags { limit: 50 })
    ));
    core.untag_resource(&who, &public_ref, &["k1".into(), "absent".into()])
        .await
        .unwrap();
    let repo = core.describe_repository(&who, &public_ref).await.unwrap();
    assert_eq!(repo.tags.len(), 49);
    assert!(
        core.describe_repository(&who, &private_ref)
            .await
            .unwrap()
            .tags
            .is_empty(),
        "the private repository's tags are its own"
    );

    // Policies speak ecr-public: actions; another account may then push.
    let stranger = Principal {
        access_key_id: "AKIDOTHER".into(),
        arn: "arn:aws:iam::111111111111:user/ci".into(),
        account_id: "111111111111".into(),
    };
    let theirs = RepositoryRef::public(Some(ACCOUNT.into()), name.clone());
    let denied = core.initiate_upload(&stranger, &theirs).await.unwrap_err();
    assert!(
        matches!(&denied, RegistryError::AccessDenied { action, resource, .. }
            if action == "ecr-public:InitiateLayerUpload"
            && resource == &format!("arn:aws:ecr-public::{ACCOUNT}:repository/team/app")),
        "{denied:?}"
    );
    assert!(matches!(
        core.set_repository_policy(
            &who,
            &public_ref,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"ecr:InitiateLayerUpload"}]}"#,
            false,
        )
        .await,
        Err(RegistryError::InvalidParameter(_))
    ));
    core.set_repository_policy(
        &who,
        &public_ref,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"ecr-public:InitiateLayerUpload"}]}"#,
        false,
    )
    .await
    .unwrap();
    core.initiate_upload(&stranger, &theirs)
        .await
        .expect("allowed by the public repository's policy");

    // Deleting the public repository leaves the private one.
    core.delete_repository(&who, &public_ref, true)
        .await
        .unwrap();
    assert!(matches!(
        core.describe_repository(&who, &public_ref).await,
        Err(RegistryError::RepositoryNotFound { .. })
    ));
    core.describe_repository(&who, &private_ref).await.unwrap();
}

#[tokio::test]
async fn skopeo_pushes_with_the_public_token_and_pulls_anonymously() {
    if std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but skopeo is missing"
        );
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let work = tmp.path().join("skopeo");
    std::fs::create_dir_all(&work).unwrap();
    create_public(&core_on(&dir).await, "team/app", None).await;
    let server = TestServer::start_in_with(&dir, &["--public-registry-alias", ALIAS]).await;
    let host = server.endpoint.trim_start_matches("http://").to_owned();
    let public_pw = password(&dir, TokenScope::Public, ACCOUNT);
    let private_pw = password(&dir, TokenScope::Private, ACCOUNT);

    // An image in a private repository, pushed over raw /v2.
    create_repo(&server.ecr(), "team/src").await;
    let private = client(&server, private_pw.clone());
    let layer = random_bytes(70_000, 7);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let ld = private.push_blob("team/src", &layer).await;
    let cd = private.push_blob("team/src", config).await;
    let manifest = oci_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let r = private
        .put_manifest(
            "team/src",
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await;
    assert_eq!(r.status(), 201);

    let src = format!("docker://{host}/team/src:v1");
    let dest = format!("docker://{host}/{ALIAS}/team/app:v1");
    let w = work.as_path();
    // The private token does not push to the public repository...
    let (ok, err) = skopeo(
        w,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            &creds(&private_pw),
            "--dest-creds",
            &creds(&private_pw),
            &src,
            &dest,
        ],
    );
    assert!(!ok, "a private token pushed to a public repository");
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
    // ... the public one does, through the same upload flow.
    let (ok, err) = skopeo(
        w,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            &creds(&private_pw),
            "--dest-creds",
            &creds(&public_pw),
            &src,
            &dest,
        ],
    );
    assert!(ok, "skopeo copy with the public token: {err}");

    // Anyone pulls it back, byte for byte.
    let layout = tmp.path().join("pulled");
    let (ok, err) = skopeo(
        w,
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-no-creds",
            &dest,
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    assert!(ok, "anonymous skopeo pull: {err}");
    // skopeo may recompress what it copies (the test layer is no real gzip), so compare the
    // pulled layout with what the public repository holds.
    let r = anonymous(
        &server,
        Method::GET,
        &format!("/v2/{ALIAS}/team/app/manifests/v1"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let stored: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let mut digests = vec![stored["config"]["digest"].as_str().unwrap().to_owned()];
    for l in stored["layers"].as_array().unwrap() {
        digests.push(l["digest"].as_str().unwrap().to_owned());
    }
    for d in &digests {
        let r = anonymous(
            &server,
            Method::GET,
            &format!("/v2/{ALIAS}/team/app/blobs/{d}"),
        )
        .await;
        assert_eq!(r.status(), 200);
        let served = r.bytes().await.unwrap();
        let pulled = std::fs::read(
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap_or_else(|e| panic!("{d} in the pulled layout: {e}"));
        assert_eq!(pulled, served, "{d}");
        assert_eq!(sha256_digest(&pulled), *d);
    }
    let r = anonymous(
        &server,
        Method::GET,
        &format!("/v2/{ALIAS}/team/app/tags/list"),
    )
    .await;
    let tags: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
}

/// The `field: N` line of a `berth gc` report.
fn gc_count(report: &str, field: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}: ")))
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {report}"))
}

#[tokio::test]
async fn gc_and_fsck_treat_public_repositories_like_any_other() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    create_public(&core_on(dir).await, "team/app", None).await;
    let server = TestServer::start_in_with(
        dir,
        &["--public-registry-alias", ALIAS, "--gc-interval-secs", "0"],
    )
    .await;
    create_repo(&server.ecr(), "team/app").await;
    let public = client(&server, password(dir, TokenScope::Public, ACCOUNT));
    let private = client(&server, password(dir, TokenScope::Private, ACCOUNT));
    let media = "application/vnd.oci.image.manifest.v1+json";

    // One layer shared by an image in each registry; a config of each their own.
    let layer = random_bytes(5000, 11);
    let (public_config, private_config) = (b"{\"public\":1}".to_vec(), b"{\"private\":1}".to_vec());
    let pub_name = format!("{ALIAS}/team/app");
    let ld = public.push_blob(&pub_name, &layer).await;
    let pc = public.push_blob(&pub_name, &public_config).await;
    let public_manifest = oci_manifest((&pc, public_config.len()), &[(&ld, layer.len())]);
    let r = public
        .put_manifest(&pub_name, "v1", media, &public_manifest)
        .await;
    assert_eq!(r.status(), 201);
    private.push_blob("team/app", &layer).await;
    let vc = private.push_blob("team/app", &private_config).await;
    let private_manifest = oci_manifest((&vc, private_config.len()), &[(&ld, layer.len())]);
    let r = private
        .put_manifest("team/app", "v1", media, &private_manifest)
        .await;
    assert_eq!(r.status(), 201);

    // The public image goes; GC takes its config, and keeps the layer the private one uses.
    let r = public
        .req(
            Method::DELETE,
            &format!(
                "/v2/{pub_name}/manifests/{}",
                sha256_digest(public_manifest.as_bytes())
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (rc, out) = berth_cli(&["gc", "--gc-grace-secs", "0"], dir);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        gc_count(&out, "deleted_blobs"),
        1,
        "the public config: {out}"
    );
    let r = private
        .req(Method::GET, &format!("/v2/team/app/blobs/{ld}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), layer);
    let r = anonymous(&server, Method::HEAD, &format!("/v2/{pub_name}/blobs/{ld}")).await;
    assert_eq!(r.status(), 404, "unlinked from the public repository");
    let (rc, out) = berth_cli(&["fsck"], dir);
    assert_eq!((rc, out.trim()), (0, "0 problem(s)"));
}

#[tokio::test]
async fn a_public_upload_killed_between_parts_resumes_after_a_restart() {
    if skip_on_postgres(
        "a part's claim on its upload outlives a node killed in the middle of the part until it \
         expires (15 s), and this test retries the part at once",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    create_public(&core_on(dir).await, "team/app", None).await;
    let args = ["--public-registry-alias", ALIAS, "--gc-interval-secs", "0"];
    let layer = random_bytes(6 * MIB + 77, 21);
    let name = format!("{ALIAS}/team/app");
    let patch = |oci: &Oci, path: &str, first: usize, last: usize| {
        oci.req(Method::PATCH, path)
            .header("content-range", format!("{first}-{}", last - 1))
            .body(layer[first..last].to_vec())
            .send()
    };

    // Acknowledged before the crash: the first part.
    let upload = {
        let server = TestServer::start_in_with(dir, &args).await;
        let public = client(&server, password(dir, TokenScope::Public, ACCOUNT));
        let r = public
            .req(Method::POST, &format!("/v2/{name}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let path = v2_path(r.headers()["location"].to_str().unwrap());
        let r = patch(&public, &path, 0, 5 * MIB).await.unwrap();
        assert_eq!(r.status(), 202);
        path
    };

    // The server dies between writing the next part and recording it.
    let mut server = TestServer::start_in_with(
        dir,
        &[&args[..], &["--failpoint", "upload_part.after_write"]].concat(),
    )
    .await;
    let public = client(&server, password(dir, TokenScope::Public, ACCOUNT));
    let r = patch(&public, &upload, 5 * MIB, layer.len()).await;
    assert!(
        r.map_or(true, |r| !r.status().is_success()),
        "the part is never acknowledged"
    );
    assert!(
        server.exited().await,
        "the server aborted at the crash point"
    );
    drop(server);

    // After the restart the upload stands where the acknowledged part ended, and finishes.
    let server = TestServer::start_in_with(dir, &args).await;
    let public = client(&server, password(dir, TokenScope::Public, ACCOUNT));
    assert_eq!(upload_offset(&public, &upload).await, 5 * MIB);
    let r = patch(&public, &upload, 5 * MIB, layer.len()).await.unwrap();
    assert_eq!(r.status(), 202);
    let digest = sha256_digest(&layer);
    let r = public
        .req(
            Method::PUT,
            &format!(
                "{}{}digest={digest}",
                upload,
                if upload.contains('?') { "&" } else { "?" }
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let config = b"{}".to_vec();
    let cd = public.push_blob(&name, &config).await;
    let manifest = oci_manifest((&cd, config.len()), &[(&digest, layer.len())]);
    let r = public
        .put_manifest(
            &name,
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = anonymous(&server, Method::GET, &format!("/v2/{name}/blobs/{digest}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), layer);

    berth_cli(&["gc", "--gc-grace-secs", "0"], dir);
    assert_eq!(berth_cli(&["fsck"], dir), (0, "0 problem(s)\n".to_owned()));
}
