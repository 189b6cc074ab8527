//! The web UI at `/ui/` (issue 17 §2), as a browser drives it over HTTP: sign-in with an
//! access key or a registry token, the session cookie, refusals that follow the same policies
//! as the ECR API, pagination, and escaping of hostile text from manifests, configs and
//! policies. The headless-browser test is `tests/ui/`.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::harness::*;

const ACCOUNT: &str = "000000000000";
const ADMIN_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#;
/// May read `team-a/*` only: no listing of every repository, nothing of `team-b`.
const READER_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:Describe*","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:ListImages","ecr:GetRepositoryPolicy","ecr:GetLifecyclePolicy","ecr:GetAuthorizationToken"],"Resource":"arn:aws:ecr:us-east-1:000000000000:repository/team-a/*"},{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}"#;

/// A server with an admin key and a reader key (secrets `<id>-secret`).
async fn server() -> (TestServer, tempfile::TempDir) {
    server_with(&[]).await
}

/// [`server`] with more `berth serve` arguments.
async fn server_with(args: &[&str]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("berth.toml");
    let toml = format!(
        "[[access-keys]]\nid = \"AKIDADMIN\"\nsecret = \"AKIDADMIN-secret\"\narn = \"arn:aws:iam::{ACCOUNT}:user/admin\"\npolicy = '{ADMIN_POLICY}'\n\
         [[access-keys]]\nid = \"AKIDREADER\"\nsecret = \"AKIDREADER-secret\"\narn = \"arn:aws:iam::{ACCOUNT}:user/reader\"\npolicy = '{READER_POLICY}'\n"
    );
    std::fs::write(&cfg, toml).unwrap();
    let mut all = vec!["--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    let s = TestServer::start_with(&all).await;
    (s, dir)
}

fn admin(s: &TestServer) -> aws_sdk_ecr::Client {
    ecr_client_as(&s.endpoint, "AKIDADMIN", "AKIDADMIN-secret")
}

/// A browser's view of the UI: one cookie, no automatic redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Browser {
    fn new(s: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: s.endpoint.clone(),
            cookie: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let r = req.send().await.expect("request");
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", pct(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// Signs in with the form's fields; keeps the session cookie it sets.
    async fn sign_in(&mut self, form: &[(&str, &str)]) -> Page {
        let p = self.post_form("/ui/login", form).await;
        if let Some(c) = p.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
        p
    }

    async fn sign_in_key(&mut self, id: &str) -> Page {
        let secret = format!("{id}-secret");
        self.sign_in(&[("access_key_id", id), ("secret_access_key", &secret)])
            .await
    }
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Pushes an image whose config is `config` and whose layers are `layers`; tags it `tag`.
async fn push_image(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    tag: &str,
    config: &str,
    layers: &[Vec<u8>],
    annotations: Option<serde_json::Value>,
) -> (String, Vec<(String, usize)>) {
    let cd = push_layer(ecr, repo, config.as_bytes(), &[config.len()]).await;
    let mut ls = Vec::new();
    for l in layers {
        ls.push((push_layer(ecr, repo, l, &[l.len()]).await, l.len()));
    }
    let mut m: serde_json::Value = serde_json::from_str(&oci_manifest(
        (&cd, config.len()),
        &ls.iter().map(|(d, n)| (d.as_str(), *n)).collect::<Vec<_>>(),
    ))
    .unwrap();
    if let Some(a) = annotations {
        m["annotations"] = a;
    }
    let out = ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(m.to_string())
        .image_tag(tag)
        .send()
        .await
        .expect("put image");
    let digest = out
        .image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned();
    (digest, ls)
}

const AMD64_CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;

#[tokio::test]
async fn signing_in_sets_a_strict_httponly_session_and_signing_out_ends_it() {
    let (s, _dir) = server().await;
    create_repo(&admin(&s), "team-a/app").await;
    let mut b = Browser::new(&s);

    let p = b.get("/ui/").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), "/ui/login?next=%2Fui%2F");
    let p = b.get("/ui/login").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("Sign in to berth"));

    // Wrong secret, unknown key, empty form: no cookie.
    for form in [
        vec![
            ("access_key_id", "AKIDADMIN"),
            ("secret_access_key", "wrong"),
        ],
        vec![("access_key_id", "AKIDNOBODY"), ("secret_access_key", "x")],
        vec![("token", "berth1.forged.token")],
        vec![],
    ] {
        let p = b.sign_in(&form).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{form:?}");
        assert!(p.headers.get(SET_COOKIE).is_none());
        assert!(b.cookie.is_none());
    }

    let p = b.sign_in_key("AKIDADMIN").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), "/ui/");
    let set = p.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(set.contains(attr), "{set}");
    }
    let p = b.get("/ui/").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("team-a/app"), "{}", p.body);
    assert!(p.body.contains("arn:aws:iam::000000000000:user/admin"));
    // Counted in /metrics as the UI's own API, by page kind.
    let m = b.get("/metrics").await.body;
    assert!(
        m.contains(
            r#"berth_http_requests_total{api="ui",operation="repositories",status_class="2xx"} 1"#
        ),
        "{m}"
    );
    assert!(
        p.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    // An edited cookie is no session.
    let good = b.cookie.clone().unwrap();
    let (payload, mac) = good.split_once('.').unwrap();
    b.cookie = Some(format!("{payload}x.{mac}"));
    assert_eq!(b.get("/ui/").await.status, StatusCode::SEE_OTHER);
    b.cookie = Some(good);

    // Sign-in and sign-out from another site's page are refused.
    let p = b
        .send(
            b.http
                .post(format!("{}/ui/logout", b.base))
                .header("origin", "http://evil.example"),
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    for origin in ["null", "http://127.0.0.1.evil.example"] {
        let p = b
            .send(
                b.http
                    .post(format!("{}/ui/logout", b.base))
                    .header("origin", origin),
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{origin}");
    }
    // The page's own host is fine, also as https (a proxy that ends TLS in front of berth).
    let host = b.base.trim_start_matches("http://").to_owned();
    let p = b
        .send(
            b.http
                .post(format!("{}/ui/login", b.base))
                .header("origin", format!("https://{host}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("access_key_id=AKIDADMIN&secret_access_key=AKIDADMIN-secret"),
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    // Sign-out is a POST only; it clears the cookie.
    assert_eq!(
        b.get("/ui/logout").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let p = b.post_form("/ui/logout", &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(
        p.headers[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // After sign-in, back where the user was going; never to another site.
    let mut b = Browser::new(&s);
    let p = b
        .sign_in(&[
            ("access_key_id", "AKIDADMIN"),
            ("secret_access_key", "AKIDADMIN-secret"),
            ("next", "/ui/r/team-a/app"),
        ])
        .await;
    assert_eq!(p.location(), "/ui/r/team-a/app");
    let p = b
        .sign_in(&[
            ("access_key_id", "AKIDADMIN"),
            ("secret_access_key", "AKIDADMIN-secret"),
            ("next", "//evil.example/ui/"),
        ])
        .await;
    assert_eq!(p.location(), "/ui/");
}

#[tokio::test]
async fn a_registry_token_signs_in_as_its_principal_and_sees_only_what_it_may() {
    let (s, _dir) = server().await;
    let ecr = admin(&s);
    create_repo(&ecr, "team-a/app").await;
    create_repo(&ecr, "team-b/secret").await;
    let layer = random_bytes(3000, 1);
    let (a_digest, _) = push_image(
        &ecr,
        "team-a/app",
        "v1",
        AMD64_CONFIG,
        std::slice::from_ref(&layer),
        None,
    )
    .await;
    let (b_digest, _) = push_image(
        &ecr,
        "team-b/secret",
        "classified",
        AMD64_CONFIG,
        &[random_bytes(2000, 2)],
        None,
    )
    .await;

    // The reader's token from GetAuthorizationToken (base64 of `AWS:<password>`).
    let reader = ecr_client_as(&s.endpoint, "AKIDREADER", "AKIDREADER-secret");
    let token = reader.get_authorization_token().send().await.unwrap();
    let token = token.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_owned();
    let decoded = String::from_utf8(base64_simd::STANDARD.decode_to_vec(&token).unwrap()).unwrap();
    let password = decoded.strip_prefix("AWS:").unwrap();

    let mut b = Browser::new(&s);
    assert_eq!(
        b.sign_in(&[("token", password)]).await.status,
        StatusCode::SEE_OTHER
    );
    // It may not list every repository: a refusal that names no repository.
    let p = b.get("/ui/").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("You may not list repositories"));
    assert!(p.body.contains("arn:aws:iam::000000000000:user/reader"));
    assert!(!p.body.contains("team-b"), "{}", p.body);
    // Searching a full name opens it.
    let p = b.get("/ui/?q=team-a%2Fapp").await;
    assert_eq!(p.location(), "/ui/r/team-a/app");
    let p = b.get("/ui/r/team-a/app").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains(&a_digest[..19]));
    assert!(p.body.contains("linux/amd64"));
    // team-b: refused, and nothing of what it holds shows.
    for path in [
        "/ui/r/team-b/secret".to_owned(),
        "/ui/r/team-b/secret?tab=tags".to_owned(),
        "/ui/r/team-b/secret?tab=policies".to_owned(),
        format!("/ui/r/team-b/secret/-/image/{b_digest}"),
        "/ui/r/team-b/secret/-/image/classified".to_owned(),
    ] {
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}: {}", p.body);
        assert!(p.body.contains("Access denied"), "{path}");
        assert!(!p.body.contains(&b_digest[7..20]), "{path}");
        assert!(
            !p.body.contains("classified") || path.ends_with("classified"),
            "{path}"
        );
    }

    // A repository that does not exist is refused alike: no probing for names.
    let p = b.get("/ui/r/team-b/nothing").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // The same key through the key form reaches the same pages; the admin sees team-b.
    let mut b = Browser::new(&s);
    b.sign_in_key("AKIDREADER").await;
    assert_eq!(
        b.get("/ui/r/team-b/secret").await.status,
        StatusCode::FORBIDDEN
    );
    let mut a = Browser::new(&s);
    a.sign_in_key("AKIDADMIN").await;
    let p = a.get("/ui/r/team-b/secret").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("classified"));
}

#[tokio::test]
async fn an_image_page_lists_the_pushed_layers_platforms_and_referrers() {
    let (s, _dir) = server().await;
    let ecr = admin(&s);
    create_repo(&ecr, "team-a/app").await;
    let layers = vec![
        random_bytes(5000, 3),
        random_bytes(7000, 4),
        random_bytes(1234, 5),
    ];
    let (digest, pushed) = push_image(&ecr, "team-a/app", "v1", AMD64_CONFIG, &layers, None).await;
    let arm = AMD64_CONFIG.replace("amd64", "arm64");
    let (arm_digest, _) = push_image(
        &ecr,
        "team-a/app",
        "v1-arm64",
        &arm,
        &[random_bytes(900, 6)],
        None,
    )
    .await;
    // An index over both, and a signature-like artifact that refers to the amd64 image.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_digest, "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    });
    let index = fix_sizes(&ecr, index).await;
    ecr.put_image()
        .repository_name("team-a/app")
        .image_manifest(index.to_string())
        .image_tag("multi")
        .send()
        .await
        .expect("index");
    let sig_cfg = "{}";
    let cd = push_layer(&ecr, "team-a/app", sig_cfg.as_bytes(), &[2]).await;
    let sig = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": 2}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1}
    });
    ecr.put_image()
        .repository_name("team-a/app")
        .image_manifest(sig.to_string())
        .send()
        .await
        .expect("signature");

    let mut b = Browser::new(&s);
    b.sign_in_key("AKIDADMIN").await;
    // The list counts the four images, and the bytes of the blobs the repository links
    // (each once) and of its manifests.
    let blobs = AMD64_CONFIG.len() + arm.len() + 2 + 5000 + 7000 + 1234 + 900;
    let listed = ecr
        .describe_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap();
    let mut manifests = 0;
    for d in listed.image_details() {
        let got = ecr
            .batch_get_image()
            .repository_name("team-a/app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(d.image_digest().unwrap())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        manifests += got.images()[0].image_manifest().unwrap().len();
    }
    assert_eq!(listed.image_details().len(), 4);
    let bytes = (blobs + manifests) as u64;
    let p = b.get("/ui/").await;
    let row = p
        .body
        .split("<tr>")
        .find(|r| r.contains("team-a/app"))
        .unwrap();
    assert!(row.contains(r#"<td class="num">4</td>"#), "{row}");
    assert_eq!(listed_bytes(&p.body, "team-a/app"), Some(bytes), "{row}");
    assert!(
        row.contains(&format!(">{:.1} KiB<", bytes as f64 / 1024.0)),
        "{row} {bytes}"
    );
    let p = b.get("/ui/r/team-a/app/-/image/v1").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    // One row per pushed layer, in order, with its digest and exact size.
    let rows: Vec<&str> = p.body.split(r#"<tr class="layer">"#).skip(1).collect();
    assert_eq!(rows.len(), pushed.len());
    for (row, (d, n)) in rows.iter().zip(&pushed) {
        assert!(row.contains(d.as_str()), "{row}");
        assert!(row.contains(&format!(r#"data-bytes="{n}""#)), "{row}");
    }
    assert!(p.body.contains("linux/amd64"));
    assert!(
        p.body
            .contains("application/vnd.dev.cosign.simplesigning.v1+json"),
        "referrer"
    );
    assert!(
        p.body
            .contains(&format!("docker pull 127.0.0.1:{}/team-a/app:v1", port(&s)))
    );
    assert!(p.body.contains("podman pull --tls-verify=false"));
    assert!(
        p.body
            .contains("skopeo copy --src-tls-verify=false docker://")
    );

    // The index: each platform.
    let p = b.get("/ui/r/team-a/app/-/image/multi").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body.contains("linux/amd64") && p.body.contains("linux/arm64/v8"),
        "{}",
        p.body
    );
    // The images tab shows both platforms for the index and each image's own.
    let p = b.get("/ui/r/team-a/app").await;
    assert!(p.body.contains("linux/arm64/v8"));
    assert!(p.body.contains("OCI index"));
}

/// Sets each descriptor's size in an index to its manifest's real size.
async fn fix_sizes(ecr: &aws_sdk_ecr::Client, mut index: serde_json::Value) -> serde_json::Value {
    for m in index["manifests"].as_array_mut().unwrap() {
        let d = m["digest"].as_str().unwrap().to_owned();
        let got = ecr
            .batch_get_image()
            .repository_name("team-a/app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(d)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        m["size"] = got.images()[0].image_manifest().unwrap().len().into();
    }
    index
}

fn port(s: &TestServer) -> String {
    s.endpoint.rsplit(':').next().unwrap().to_owned()
}

#[tokio::test]
async fn tags_repositories_and_images_page_through_without_gaps_or_repeats() {
    let (s, _dir) = server().await;
    let ecr = admin(&s);
    create_repo(&ecr, "many").await;
    let (_, _) = push_image(
        &ecr,
        "many",
        "t000",
        AMD64_CONFIG,
        &[random_bytes(100, 7)],
        None,
    )
    .await;
    let manifest = ecr
        .batch_get_image()
        .repository_name("many")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("t000")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_manifest()
        .unwrap()
        .to_owned();
    for i in 1..120 {
        ecr.put_image()
            .repository_name("many")
            .image_manifest(&manifest)
            .image_tag(format!("t{i:03}"))
            .send()
            .await
            .unwrap();
    }
    // 30 images with a tag each (5 more than a page).
    for i in 0..30u64 {
        let cfg = AMD64_CONFIG.replace("/bin/sh", &format!("/bin/sh{i}"));
        push_image(
            &ecr,
            "many",
            &format!("img{i:02}"),
            &cfg,
            &[random_bytes(50, 100 + i)],
            None,
        )
        .await;
    }
    for i in 0..55 {
        create_repo(&ecr, &format!("r/{i:02}")).await;
    }
    let mut b = Browser::new(&s);
    b.sign_in_key("AKIDADMIN").await;

    let mut seen = Vec::new();
    let mut next = Some("/ui/r/many?tab=tags".to_owned());
    for _ in 0..10 {
        let Some(path) = next.take() else { break };
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::OK);
        for part in p.body.split(r#"<span class="tag">"#).skip(1) {
            let t = part.split('<').next().unwrap();
            if t.starts_with('t') {
                seen.push(t.to_owned());
            }
        }
        next = next_link(&p.body);
    }
    let want: Vec<String> = (0..120).map(|i| format!("t{i:03}")).collect();
    assert_eq!(seen, want);

    let mut images = 0;
    let mut next = Some("/ui/r/many".to_owned());
    let mut pages = 0;
    for _ in 0..10 {
        let Some(path) = next.take() else { break };
        let p = b.get(&path).await;
        images += p.body.matches("/ui/r/many/-/image/sha256:").count();
        pages += 1;
        next = next_link(&p.body);
    }
    assert_eq!((images, pages), (31, 2));

    let mut repos = Vec::new();
    let mut next = Some("/ui/?q=r%2F".to_owned());
    for _ in 0..10 {
        let Some(path) = next.take() else { break };
        let p = b.get(&path).await;
        for part in p.body.split(r#"<a href="/ui/r/"#).skip(1) {
            repos.push(part.split('"').next().unwrap().to_owned());
        }
        next = next_link(&p.body);
    }
    let want: Vec<String> = (0..55).map(|i| format!("r/{i:02}")).collect();
    assert_eq!(repos, want, "the prefix search finds r/* and only those");
    // A prefix that nothing has.
    let p = b.get("/ui/?q=zzz").await;
    assert!(p.body.contains("No repository name starts with"));
}

fn next_link(body: &str) -> Option<String> {
    let i = body.find(r#"rel="next""#)?;
    let before = &body[..i];
    let start = before.rfind("href=\"")? + 6;
    let href = &before[start..];
    Some(href[..href.find('"')?].replace("&amp;", "&"))
}

#[tokio::test]
async fn hostile_text_in_manifests_configs_policies_and_queries_is_escaped() {
    let (s, _dir) = server().await;
    let ecr = admin(&s);
    create_repo(&ecr, "team-a/app").await;
    const EVIL: &str = r#"<script>alert(1)</script>"#;
    let cfg = serde_json::json!({
        "architecture": "amd64\"><img src=x onerror=alert(2)>",
        "os": "linux",
        "created": EVIL,
        "config": {"Cmd": [EVIL], "Entrypoint": ["'><svg onload=alert(3)>"]},
    })
    .to_string();
    let annotations = serde_json::json!({"org.opencontainers.image.title": EVIL});
    let (digest, _) = push_image(
        &ecr,
        "team-a/app",
        "v1",
        &cfg,
        &[random_bytes(10, 9)],
        Some(annotations),
    )
    .await;
    ecr.set_repository_policy()
        .repository_name("team-a/app")
        .policy_text(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}}]}}"#,
            "x</pre><script>alert(4)</script>"
        ))
        .send()
        .await
        .expect("policy");
    // A referrer whose artifact type is hostile.
    let cd = push_layer(&ecr, "team-a/app", b"{}", &[2]).await;
    let sig = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/x-<script>alert(5)</script>",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": 2}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1}
    });
    let _ = ecr
        .put_image()
        .repository_name("team-a/app")
        .image_manifest(sig.to_string())
        .send()
        .await;

    let mut b = Browser::new(&s);
    b.sign_in_key("AKIDADMIN").await;
    for path in [
        "/ui/r/team-a/app".to_owned(),
        "/ui/r/team-a/app?tab=policies".to_owned(),
        "/ui/r/team-a/app/-/image/v1".to_owned(),
        format!("/ui/r/team-a/app/-/image/{digest}"),
        "/ui/?q=%3Cscript%3Ealert(6)%3C%2Fscript%3E".to_owned(),
        "/ui/r/%3Cscript%3Ealert(7)%3C%2Fscript%3E".to_owned(),
        "/ui/r/team-a/app/-/image/%3Cscript%3E".to_owned(),
        "/ui/r/team-a/app?tab=images&token=%3Cscript%3E".to_owned(),
        "/ui/r/team-a/app?tab=tags&after=%3Cscript%3E".to_owned(),
        "/ui/?q=x&after=%3Cscript%3E".to_owned(),
        "/ui/login?next=%2Fui%2F%22%3E%3Cscript%3Ealert(8)%3C%2Fscript%3E".to_owned(),
    ] {
        let p = b.get(&path).await;
        assert!(p.status != StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        for bad in ["<script>alert", "<img src=x", "<svg onload"] {
            assert!(!p.body.contains(bad), "{path} carries {bad}: {}", p.body);
        }
    }
    // Signed out, the sign-in form carries `next` escaped.
    let p = Browser::new(&s)
        .get("/ui/login?next=%2Fui%2F%22%3E%3Cscript%3Ealert(8)%3C%2Fscript%3E")
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("<script>alert"), "{}", p.body);
    assert!(
        p.body
            .contains("value=\"/ui/&quot;&gt;&lt;script&gt;alert(8)"),
        "{}",
        p.body
    );
    let p = b.get("/ui/r/team-a/app/-/image/v1").await;
    assert!(
        p.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        p.body
    );
    assert!(p.body.contains("alert(5)"), "the referrer is listed");
    let p = b.get("/ui/r/team-a/app?tab=policies").await;
    assert!(p.body.contains("&lt;/pre&gt;&lt;script&gt;alert(4)"));
    let p = b.get("/ui/r/%3Cscript%3Ealert(7)%3C%2Fscript%3E").await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_ui_can_be_turned_off() {
    let s = TestServer::start_with(&["--ui", "false"]).await;
    let b = Browser::new(&s);
    for path in ["/ui/", "/ui/login", "/ui/static/style.css"] {
        assert_eq!(b.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let on = TestServer::start().await;
    let b = Browser::new(&on);
    assert_eq!(b.get("/ui/static/style.css").await.status, StatusCode::OK);
}

#[tokio::test]
async fn without_configured_keys_any_key_id_signs_in_as_the_account_root() {
    let s = TestServer::start_without_keys().await;
    let mut b = Browser::new(&s);
    let p = b
        .sign_in(&[("access_key_id", "ANYKEY"), ("secret_access_key", "")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let p = b.get("/ui/").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains(":root"), "{}", p.body);
}

/// The `data-bytes` of a repository's row in the repository list.
fn listed_bytes(body: &str, name: &str) -> Option<u64> {
    let row = body
        .split("<tr>")
        .find(|r| r.contains(&format!(">{name}<")))?;
    let at = row.find("data-bytes=\"")? + "data-bytes=\"".len();
    row[at..].split('"').next()?.parse().ok()
}

/// Since archival, pull times and regions (issue 17 §2 follow-up): the image list and page
/// show each image's status and last recorded pull; an archived image's page says it cannot
/// be pulled; the repository list shows the maintained size; `?region=` browses another
/// region's registry, whose pull commands need `registry-domain`; a token's session stays in
/// the token's region.
#[tokio::test]
async fn status_pull_times_sizes_and_regions_show_on_the_pages() {
    let (s, _dir) = server_with(&[
        "--pull-time-flush-secs",
        "1",
        "--archive-restore-secs",
        "600",
    ])
    .await;
    let ecr = admin(&s);
    create_repo(&ecr, "team-a/app").await;
    let (manifest, pulled, _) = push_small_image(&ecr, "team-a/app", "pulled", 7).await;
    let (_, archived, _) = push_small_image(&ecr, "team-a/app", "archived", 8).await;
    ecr.update_image_storage_class()
        .repository_name("team-a/app")
        .image_id(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&archived)
                .build(),
        )
        .target_storage_class(aws_sdk_ecr::types::TargetStorageClass::Archive)
        .send()
        .await
        .expect("archive");
    ecr.batch_get_image()
        .repository_name("team-a/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("pulled")
                .build(),
        )
        .send()
        .await
        .expect("pull");
    let eu = ecr_client_in(&s.endpoint, "eu-west-1", "AKIDADMIN", "AKIDADMIN-secret");
    create_repo(&eu, "eu/app").await;
    push_small_image(&eu, "eu/app", "v1", 9).await;

    let mut b = Browser::new(&s);
    b.sign_in_key("AKIDADMIN").await;

    // The size is the maintained figure: both images' blobs and manifests.
    let p = b.get("/ui/").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("id=\"size-means\""), "{}", p.body);
    assert!(
        !p.body.contains("eu/app"),
        "another region's repository: {}",
        p.body
    );
    let manifests = manifest.len() as u64 * 2;
    let blobs = (r#"{"seed":7}"#.len() + 1007 + r#"{"seed":8}"#.len() + 1008) as u64;
    assert_eq!(listed_bytes(&p.body, "team-a/app"), Some(manifests + blobs));

    // Status and last pull, once the pull time is written (every second here).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let list = loop {
        let p = b.get("/ui/r/team-a/app").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        if p.body.contains("class=\"pulled\"") || std::time::Instant::now() > deadline {
            break p.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let row = |digest: &str| {
        list.split("<tr class=\"image\"")
            .find(|r| r.contains(&format!("data-digest=\"{digest}\"")))
            .unwrap_or_else(|| panic!("{digest} not listed: {list}"))
            .to_owned()
    };
    let (a, p) = (row(&archived), row(&pulled));
    assert!(
        a.contains("data-status=\"ARCHIVED\"") && a.contains("Archived 20"),
        "{a}"
    );
    assert!(a.contains("No pull recorded"), "{a}");
    assert!(
        p.contains("data-status=\"ACTIVE\"") && p.contains("class=\"pulled\""),
        "{p}"
    );
    assert!(!list.contains("Pull times are not recorded"));

    // The archived image's page: described, not pullable, with the way to restore it.
    let p = b.get(&format!("/ui/r/team-a/app/-/image/{archived}")).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("This image is archived"), "{}", p.body);
    assert!(p.body.contains("cannot be pulled until it is restored"));
    assert!(p.body.contains("--target-storage-class STANDARD"));
    assert!(!p.body.contains("docker pull"));
    // Restoring: ACTIVATING until the restore completes, still not pullable.
    ecr.update_image_storage_class()
        .repository_name("team-a/app")
        .image_id(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("archived")
                .build(),
        )
        .target_storage_class(aws_sdk_ecr::types::TargetStorageClass::Standard)
        .send()
        .await
        .expect("restore");
    let p = b.get("/ui/r/team-a/app/-/image/archived").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(
        p.body.contains("This image is being restored"),
        "{}",
        p.body
    );
    assert!(p.body.contains("data-status=\"ACTIVATING\""));
    assert!(p.body.contains("Restore completes"));
    assert!(!p.body.contains("docker pull"));
    let p = b.get("/ui/r/team-a/app?tab=tags").await;
    assert!(p.body.contains("data-status=\"ACTIVATING\""), "{}", p.body);
    assert!(p.body.contains(&archived[..19]));
    let p = b.get("/ui/r/team-a/app/-/image/pulled").await;
    assert!(
        p.body
            .contains("id=\"image-status\"><span class=\"status active\""),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("id=\"image-pulled\"><span class=\"pulled\">")
    );
    assert!(p.body.contains("--region us-east-1"));

    // Another region: its own repositories, links that keep it, and no /v2 host without
    // registry-domain.
    let p = b.get("/ui/?region=eu-west-1").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(
        p.body.contains("href=\"/ui/r/eu/app?region=eu-west-1\""),
        "{}",
        p.body
    );
    assert!(!p.body.contains("team-a/app"));
    assert!(p.body.contains("Not reachable by /v2 clients"));
    // Every region is served here: the header takes any region name; the search stays in
    // this region.
    assert!(
        p.body.contains(
            r#"<input type="text" id="region" name="region" value="eu-west-1" list="regions""#
        ),
        "{}",
        p.body
    );
    assert!(p.body.contains(r#"<option value="us-east-1">"#));
    assert!(
        p.body
            .contains(r#"<input type="hidden" name="region" value="eu-west-1">"#)
    );
    let p = b.get("/ui/r/eu/app/-/image/v1?region=eu-west-1").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("sets no <code>registry-domain</code>"));
    // The default region has no such repository.
    assert_eq!(b.get("/ui/r/eu/app").await.status, StatusCode::NOT_FOUND);
    for bad in ["not-a-region", "us-east-1%0A"] {
        let p = b.get(&format!("/ui/?region={bad}")).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{bad}");
    }

    // A reader's token opens us-east-1 only, and so does its session.
    let token = ecr_client_as(&s.endpoint, "AKIDREADER", "AKIDREADER-secret")
        .get_authorization_token()
        .send()
        .await
        .unwrap();
    let decoded = base64_simd::STANDARD
        .decode_to_vec(token.authorization_data()[0].authorization_token().unwrap())
        .unwrap();
    let password = String::from_utf8(decoded).unwrap()[4..].to_owned();
    let mut r = Browser::new(&s);
    r.sign_in(&[("token", &password)]).await;
    assert_eq!(r.get("/ui/r/team-a/app").await.status, StatusCode::OK);
    let p = r.get("/ui/r/team-a/app?region=eu-west-1").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.contains("opens the registries of that region only"));
}

/// With `registry-domain`, pull commands name the registry of the page's region, as
/// `repositoryUri` does.
#[tokio::test]
async fn pull_commands_name_the_regions_registry_host() {
    let (s, _dir) = server_with(&["--registry-domain", "localhost"]).await;
    let eu = ecr_client_in(&s.endpoint, "eu-west-1", "AKIDADMIN", "AKIDADMIN-secret");
    create_repo(&eu, "eu/app").await;
    push_small_image(&eu, "eu/app", "v1", 3).await;
    let mut b = Browser::new(&s);
    b.sign_in_key("AKIDADMIN").await;
    let p = b.get("/ui/r/eu/app/-/image/v1?region=eu-west-1").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let host = format!("{ACCOUNT}.dkr.ecr.eu-west-1.localhost:{}", port(&s));
    assert!(
        p.body.contains(&format!("docker pull {host}/eu/app:v1")),
        "{}",
        p.body
    );
    assert!(p.body.contains("--region eu-west-1"));
}
