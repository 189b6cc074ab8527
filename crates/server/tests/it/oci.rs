//! The `/v2` API endpoint by endpoint, and its views through the ECR API.

use aws_sdk_ecr::types::{ImageIdentifier, LayerAvailability};
use reqwest::Method;

use crate::harness::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[tokio::test]
async fn login_is_ecr_style_basic_auth() {
    let server = TestServer::start().await;
    let http = server.http();
    let r = http
        .get(format!("{}/v2/", server.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );

    let auth = server.basic_auth().await;
    let r = http
        .get(format!("{}/v2/", server.endpoint))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    // A token minted with another key (another deployment, or forged) is not ours.
    let other = auth::SigningKey::from_bytes([9; 32]);
    let token = |key: &auth::SigningKey, expires_at| {
        let pw = auth::token::mint(
            key,
            &auth::token::RegistryToken {
                account_id: "000000000000".into(),
                region: "us-east-1".into(),
                access_key_id: "AKIDEXAMPLE".into(),
                arn: "arn:aws:iam::000000000000:root".into(),
                expires_at,
            },
        );
        format!(
            "Basic {}",
            base64_simd::STANDARD.encode_to_string(format!("AWS:{pw}"))
        )
    };
    let r = http
        .get(format!("{}/v2/", server.endpoint))
        .header("authorization", token(&other, u64::MAX))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // One of ours that has expired: 403 DENIED, telling the user to log in again.
    let ours = auth::SigningKey::load_or_create(&server.data_dir().join("signing.key")).unwrap();
    let r = http
        .get(format!("{}/v2/_catalog", server.endpoint))
        .header("authorization", token(&ours, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("DENIED") && body.contains("expired"),
        "{body}"
    );
    let r = http
        .get(format!("{}/v2/", server.endpoint))
        .header("authorization", "Basic QVdTOnNlY3JldA==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn chunked_upload_checks_order_resumes_and_verifies_the_digest() {
    let server = TestServer::start().await;
    create_repo(&server.ecr(), "team/app").await;
    let oci = server.oci().await;
    let data = random_bytes(3 * MIB + 17, 11);

    let r = oci
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let uuid = r.headers()["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.ends_with(&uuid));

    let patch = |first: usize, last: usize| {
        oci.req(Method::PATCH, &location)
            .header("content-range", format!("{first}-{last}"))
            .header("content-type", "application/octet-stream")
            .body(data[first..=last].to_vec())
            .send()
    };
    // Small chunks are fine on /v2 (no 5 MiB minimum).
    let r = patch(0, 999).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-999");
    // Out of order: 416, and the upload is untouched.
    let r = patch(2000, 2999).await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(oci_code(r).await, "BLOB_UPLOAD_INVALID");
    // A dropped connection: the client asks where the upload stands and continues from there.
    let r = oci.req(Method::GET, &location).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-999");
    // The same upload is visible to the ECR API under the same id: a part through it continues it.
    let ecr = server.ecr();
    ecr.upload_layer_part()
        .repository_name("team/app")
        .upload_id(&uuid)
        .part_first_byte(1000)
        .part_last_byte(MIB as i64 - 1)
        .layer_part_blob(aws_sdk_ecr::primitives::Blob::new(&data[1000..MIB]))
        .send()
        .await
        .unwrap();
    // A streamed PATCH (no Content-Range) appends the rest but the last 17 bytes.
    let end = data.len() - 17;
    let r = oci
        .req(Method::PATCH, &location)
        .body(data[MIB..end].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.headers()["range"].to_str().unwrap(),
        format!("0-{}", end - 1)
    );
    // A wrong digest on the final PUT is refused and the upload can still finish.
    let r = oci
        .req(
            Method::PUT,
            &format!("{location}?digest={}", sha256_digest(b"wrong")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(oci_code(r).await, "DIGEST_INVALID");
    let digest = sha256_digest(&data);
    let r = oci
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .body(data[end..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().unwrap(),
        digest
    );
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/team/app/blobs/{digest}")
    );
    let r = oci.req(Method::GET, &location).send().await.unwrap();
    assert_eq!(oci_code(r).await, "BLOB_UPLOAD_UNKNOWN");

    // Readable through /v2 (whole and ranged), and AVAILABLE to the ECR API.
    let got = oci
        .req(Method::GET, &format!("/v2/team/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.headers()["docker-content-digest"].to_str().unwrap(),
        digest
    );
    assert_eq!(got.bytes().await.unwrap(), &data[..]);
    let part = oci
        .req(Method::GET, &format!("/v2/team/app/blobs/{digest}"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), &data[10..20]);
    let head = oci
        .req(Method::HEAD, &format!("/v2/team/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        data.len().to_string()
    );
    let check = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(&digest)
        .send()
        .await
        .unwrap();
    assert_eq!(
        check.layers()[0].layer_availability(),
        Some(&LayerAvailability::Available)
    );
    assert_eq!(check.layers()[0].layer_size(), Some(data.len() as i64));

    // Cancel.
    let r = oci
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        oci.req(Method::DELETE, &loc).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        oci.req(Method::GET, &loc).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn monolithic_uploads_mounts_and_blob_errors() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/a").await;
    create_repo(&ecr, "team/b").await;
    let oci = server.oci().await;
    let data = random_bytes(5000, 12);
    let d = oci.push_blob("team/a", &data).await;

    // POST then a single PUT with the body.
    let r = oci
        .req(Method::POST, "/v2/team/a/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let other = random_bytes(100, 13);
    let r = oci
        .req(
            Method::PUT,
            &format!("{loc}?digest={}", sha256_digest(&other)),
        )
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // An empty blob is a blob on /v2.
    let empty = oci.push_blob("team/a", b"").await;
    assert_eq!(
        oci.req(Method::HEAD, &format!("/v2/team/a/blobs/{empty}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Mount from A into B; from a repository without the blob, a new upload starts instead.
    let r = oci
        .req(
            Method::POST,
            &format!("/v2/team/b/blobs/uploads/?mount={d}&from=team/a"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/team/b/blobs/{d}")
    );
    assert_eq!(
        oci.req(Method::GET, &format!("/v2/team/b/blobs/{d}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        &data[..]
    );
    let missing = sha256_digest(b"nowhere");
    let r = oci
        .req(
            Method::POST,
            &format!("/v2/team/b/blobs/uploads/?mount={missing}&from=team/a"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Blob errors.
    let r = oci
        .req(
            Method::GET,
            &format!("/v2/team/b/blobs/{}", sha256_digest(&other)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (404, "BLOB_UNKNOWN"),
        "blobs are per repository"
    );
    let r = oci
        .req(Method::GET, "/v2/team/a/blobs/sha256:nothex")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (400, "DIGEST_INVALID")
    );
    let r = oci
        .req(Method::DELETE, &format!("/v2/team/a/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (405, "UNSUPPORTED")
    );
    let r = oci
        .req(Method::POST, "/v2/team/none/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (404, "NAME_UNKNOWN")
    );
    let r = oci
        .req(Method::GET, "/v2/Team/App/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (400, "NAME_INVALID")
    );
    let r = oci
        .req(Method::GET, "/v2/team/a/blobs/uploads/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
}

/// Pushes config + one layer through /v2 and returns the manifest text.
async fn image(oci: &Oci, repo: &str, seed: u64) -> String {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(2000 + seed as usize, seed);
    let cd = oci.push_blob(repo, &config).await;
    let ld = oci.push_blob(repo, &layer).await;
    oci_manifest((&cd, config.len()), &[(&ld, layer.len())])
}

#[tokio::test]
async fn manifests_by_tag_and_digest_with_content_negotiation() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let oci = server.oci().await;
    let manifest = image(&oci, "team/app", 1).await;
    let digest = sha256_digest(manifest.as_bytes());

    let r = oci
        .put_manifest("team/app", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().unwrap(),
        digest
    );
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/team/app/manifests/{digest}")
    );
    // Pushing it again is success on /v2.
    assert_eq!(
        oci.put_manifest("team/app", "v1", OCI_MANIFEST, &manifest)
            .await
            .status(),
        201
    );

    for reference in ["v1", digest.as_str()] {
        let r = oci
            .req(Method::GET, &format!("/v2/team/app/manifests/{reference}"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(
            r.headers()["docker-content-digest"].to_str().unwrap(),
            digest
        );
        assert_eq!(r.text().await.unwrap(), manifest, "byte for byte");
        let h = oci
            .req(Method::HEAD, &format!("/v2/team/app/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            h.headers()["content-length"].to_str().unwrap(),
            manifest.len().to_string()
        );
    }
    let r = oci
        .req(Method::GET, "/v2/team/app/manifests/v1")
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let r = oci
        .req(Method::GET, "/v2/team/app/manifests/nope")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (404, "MANIFEST_UNKNOWN")
    );

    // The same record through the ECR API.
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .send()
        .await
        .unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest.as_str()));
    let layer_digest =
        serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&layer_digest)
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    assert_eq!(
        sha256_digest(&reqwest::get(url).await.unwrap().bytes().await.unwrap()),
        layer_digest
    );

    // Manifest errors.
    let r = oci
        .put_manifest(
            "team/app",
            &sha256_digest(b"other"),
            OCI_MANIFEST,
            &manifest,
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (400, "DIGEST_INVALID")
    );
    let missing = oci_manifest((&sha256_digest(b"cfg"), 3), &[]);
    let r = oci
        .put_manifest("team/app", "v2", OCI_MANIFEST, &missing)
        .await;
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    let r = oci
        .put_manifest("team/app", "v2", OCI_MANIFEST, "{oops")
        .await;
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (400, "MANIFEST_INVALID")
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10}}]}}"#,
        sha256_digest(b"absent child")
    );
    let r = oci
        .put_manifest(
            "team/app",
            "multi",
            "application/vnd.oci.image.index.v1+json",
            &index,
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    let r = oci
        .req(Method::PUT, "/v2/team/app/manifests/v3")
        .body(vec![b' '; 4 * MIB + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // Immutable tags on /v2: TAG_INVALID.
    ecr.create_repository()
        .repository_name("team/frozen")
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    let m1 = image(&oci, "team/frozen", 1).await;
    let m2 = image(&oci, "team/frozen", 2).await;
    assert_eq!(
        oci.put_manifest("team/frozen", "v1", OCI_MANIFEST, &m1)
            .await
            .status(),
        201
    );
    let r = oci
        .put_manifest("team/frozen", "v1", OCI_MANIFEST, &m2)
        .await;
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (400, "TAG_INVALID")
    );

    // DELETE by tag removes the tag; by digest the image.
    assert_eq!(
        oci.put_manifest("team/app", "v2", OCI_MANIFEST, &manifest)
            .await
            .status(),
        201
    );
    assert_eq!(
        oci.req(Method::DELETE, "/v2/team/app/manifests/v2")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        oci.req(Method::GET, "/v2/team/app/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        oci.req(Method::DELETE, &format!("/v2/team/app/manifests/{digest}"))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        oci.req(Method::GET, "/v2/team/app/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = oci
        .req(Method::DELETE, &format!("/v2/team/app/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
}

#[tokio::test]
async fn tags_catalog_and_referrers_paginate_and_filter() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    create_repo(&ecr, "team/zzz").await;
    let oci = server.oci().await;
    let manifest = image(&oci, "team/app", 3).await;
    for t in ["a", "b", "c", "d", "e"] {
        assert_eq!(
            oci.put_manifest("team/app", t, OCI_MANIFEST, &manifest)
                .await
                .status(),
            201
        );
    }
    let r = oci
        .req(Method::GET, "/v2/team/app/tags/list?n=2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/team/app/tags/list?n=2&last=b>; rel=\"next\""
    );
    let v: serde_json::Value = r.json_body().await;
    assert_eq!(
        v,
        serde_json::json!({"name": "team/app", "tags": ["a", "b"]})
    );
    let v: serde_json::Value = oci
        .req(Method::GET, "/v2/team/app/tags/list?n=2&last=d")
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(v["tags"], serde_json::json!(["e"]));
    let v: serde_json::Value = oci
        .req(Method::GET, "/v2/team/app/tags/list")
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(v["tags"].as_array().unwrap().len(), 5);
    let r = oci
        .req(Method::GET, "/v2/team/none/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(oci_code(r).await, "NAME_UNKNOWN");

    let r = oci
        .req(Method::GET, "/v2/_catalog?n=1")
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("link"));
    let v: serde_json::Value = r.json_body().await;
    assert_eq!(v, serde_json::json!({"repositories": ["team/app"]}));
    let v: serde_json::Value = oci
        .req(Method::GET, "/v2/_catalog?last=team/app")
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(v, serde_json::json!({"repositories": ["team/zzz"]}));

    // Referrers: an artifact whose subject is the image; the subject need not exist first.
    let subject = sha256_digest(manifest.as_bytes());
    let empty = oci.push_blob("team/app", b"{}").await;
    let artifact = |t: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{t}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":{}}},"annotations":{{"k":"v"}}}}"#,
            manifest.len()
        )
    };
    let sbom = artifact("application/vnd.example.sbom");
    let sig = artifact("application/vnd.example.sig");
    for a in [&sbom, &sig] {
        let r = oci
            .put_manifest("team/app", &sha256_digest(a.as_bytes()), OCI_MANIFEST, a)
            .await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["oci-subject"].to_str().unwrap(), subject);
    }
    let r = oci
        .req(Method::GET, &format!("/v2/team/app/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let v: serde_json::Value = r.json_body().await;
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    let r = oci
        .req(
            Method::GET,
            &format!("/v2/team/app/referrers/{subject}?artifactType=application/vnd.example.sbom"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: serde_json::Value = r.json_body().await;
    let m = &v["manifests"].as_array().unwrap()[0];
    assert_eq!(
        m["digest"].as_str().unwrap(),
        sha256_digest(sbom.as_bytes())
    );
    assert_eq!(m["artifactType"], "application/vnd.example.sbom");
    assert_eq!(m["size"], sbom.len());
    assert_eq!(m["annotations"]["k"], "v");
    let v: serde_json::Value = oci
        .req(
            Method::GET,
            &format!("/v2/team/app/referrers/{}", sha256_digest(b"x")),
        )
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(v["manifests"], serde_json::json!([]));
    // A referrer pushed the pre-1.1 way, through the referrers tag schema, is listed too.
    let old_style = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.example.old","digest":"{empty}","size":2}},"layers":[]}}"#
    );
    let old_digest = sha256_digest(old_style.as_bytes());
    assert_eq!(
        oci.put_manifest("team/app", &old_digest, OCI_MANIFEST, &old_style)
            .await
            .status(),
        201
    );
    let fallback = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{old_digest}","size":{},"artifactType":"application/vnd.example.old"}}]}}"#,
        old_style.len()
    );
    let tag = subject.replace(':', "-");
    assert_eq!(
        oci.put_manifest(
            "team/app",
            &tag,
            "application/vnd.oci.image.index.v1+json",
            &fallback
        )
        .await
        .status(),
        201
    );
    let v: serde_json::Value = oci
        .req(Method::GET, &format!("/v2/team/app/referrers/{subject}"))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    let listed: Vec<&str> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(listed.contains(&old_digest.as_str()));

    // The artifact is an image like any other to the ECR API, with its subject.
    let d = ecr
        .describe_images()
        .repository_name("team/app")
        .image_ids(
            ImageIdentifier::builder()
                .image_digest(sha256_digest(sig.as_bytes()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.image_details()[0].subject_manifest_digest(),
        Some(subject.as_str())
    );
}

trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

fn sha512_digest(b: &[u8]) -> String {
    use sha2::{Digest as _, Sha512};
    format!("sha512:{}", hex::encode(Sha512::digest(b)))
}

#[tokio::test]
async fn sha512_digests_are_accepted_on_v2() {
    let server = TestServer::start().await;
    create_repo(&server.ecr(), "team/app").await;
    let oci = server.oci().await;
    let data = random_bytes(70_000, 21);
    let d512 = sha512_digest(&data);

    // Monolithic, then chunked with the digest named only at the end.
    let r = oci
        .req(
            Method::POST,
            &format!("/v2/team/app/blobs/uploads/?digest={d512}"),
        )
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"].to_str().unwrap(), d512);
    let other = random_bytes(10_000, 22);
    let r = oci
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    oci.req(Method::PATCH, &loc)
        .header("content-range", "0-4999")
        .body(other[..5000].to_vec())
        .send()
        .await
        .unwrap();
    let wrong = oci
        .req(
            Method::PUT,
            &format!("{loc}?digest={}", sha512_digest(b"x")),
        )
        .body(other[5000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(oci_code(wrong).await, "DIGEST_INVALID");
    let r = oci
        .req(
            Method::PUT,
            &format!("{loc}?digest={}", sha512_digest(&other)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = oci
        .req(Method::GET, &format!("/v2/team/app/blobs/{d512}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), &data[..]);

    // A manifest pushed by its sha512 digest is stored and served under it.
    let config = oci.push_blob("team/app", b"{}").await;
    let manifest = oci_manifest((&config, 2), &[(&d512, data.len())]);
    let m512 = sha512_digest(manifest.as_bytes());
    let r = oci
        .put_manifest("team/app", &m512, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"].to_str().unwrap(), m512);
    let r = oci
        .req(Method::GET, &format!("/v2/team/app/manifests/{m512}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), manifest);
}

#[tokio::test]
async fn create_on_push_and_anonymous_pull_are_options() {
    // Off by default: pushing to a missing repository is NAME_UNKNOWN, and pulls need a login.
    let plain = TestServer::start().await;
    let oci = plain.oci().await;
    let r = oci
        .req(Method::POST, "/v2/fresh/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(oci_code(r).await, "NAME_UNKNOWN");

    let server =
        TestServer::start_with(&["--create-on-push", "--anonymous-pull", "public/*"]).await;
    let oci = server.oci().await;
    let manifest = image(&oci, "public/tools", 5).await;
    assert_eq!(
        oci.put_manifest("public/tools", "v1", OCI_MANIFEST, &manifest)
            .await
            .status(),
        201
    );
    let repos = server
        .ecr()
        .describe_repositories()
        .repository_names("public/tools")
        .send()
        .await
        .unwrap();
    assert_eq!(
        repos.repositories()[0]
            .image_tag_mutability()
            .map(|m| m.as_str()),
        Some("MUTABLE")
    );
    create_repo(&server.ecr(), "private/app").await;
    let m2 = image(&oci, "private/app", 6).await;
    assert_eq!(
        oci.put_manifest("private/app", "v1", OCI_MANIFEST, &m2)
            .await
            .status(),
        201
    );

    let anon = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.endpoint);
    let r = anon
        .get(url("/v2/public/tools/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), manifest);
    let layer =
        serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(
        anon.get(url(&format!("/v2/public/tools/blobs/{layer}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        anon.get(url("/v2/public/tools/tags/list"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Only pulls, only of matching repositories.
    assert_eq!(
        anon.get(url("/v2/private/app/manifests/v1"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        anon.post(url("/v2/public/tools/blobs/uploads/"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        anon.delete(url("/v2/public/tools/manifests/v1"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        anon.get(url("/v2/_catalog")).send().await.unwrap().status(),
        401
    );
}
