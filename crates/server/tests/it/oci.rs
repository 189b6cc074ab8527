//! The `/v2` API endpoint by endpoint, and its views through the ECR API.

use aws_sdk_ecr::primitives::Blob;
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

/// Status and OCI error code of a response.
async fn answer(r: reqwest::RequestBuilder) -> (u16, String) {
    let r = r.send().await.unwrap();
    (r.status().as_u16(), oci_code(r).await)
}

#[tokio::test]
async fn reads_of_names_that_cannot_exist_are_404_and_writes_stay_400() {
    let server = TestServer::start().await;
    create_repo(&server.ecr(), "team/app").await;
    let oci = server.oci().await;
    let manifest = image(&oci, "team/app", 3).await;
    let r = oci
        .put_manifest("team/app", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), 201);

    // Neither a tag nor a digest: nothing can exist under it (the conformance suite's
    // `.INVALID_MANIFEST_NAME`), so GET, HEAD and DELETE answer MANIFEST_UNKNOWN.
    for reference in [
        ".INVALID_MANIFEST_NAME",
        "-leading-dash",
        "sha256:abc",
        "a%21b",
    ] {
        let path = format!("/v2/team/app/manifests/{reference}");
        assert_eq!(
            answer(oci.req(Method::GET, &path)).await,
            (404, "MANIFEST_UNKNOWN".to_owned()),
            "GET {reference}"
        );
        let head = oci.req(Method::HEAD, &path).send().await.unwrap();
        assert_eq!(head.status(), 404, "HEAD {reference}");
        assert_eq!(
            answer(oci.req(Method::DELETE, &path)).await,
            (404, "MANIFEST_UNKNOWN".to_owned()),
            "DELETE {reference}"
        );
    }
    // A PUT names something to create: a bad tag is the client's mistake.
    let r = oci
        .put_manifest(
            "team/app",
            ".INVALID_MANIFEST_NAME",
            OCI_MANIFEST,
            &manifest,
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), oci_code(r).await.as_str()),
        (400, "TAG_INVALID")
    );

    // Blobs: a name that is not digest-shaped at all names nothing (404, distribution's
    // router answers so); a digest-shaped but invalid one is DIGEST_INVALID, as distribution
    // and zot answer.
    for (name, want) in [
        ("latest", (404, "BLOB_UNKNOWN")),
        (".INVALID", (404, "BLOB_UNKNOWN")),
        ("sha256:", (404, "BLOB_UNKNOWN")),
        ("sha256:abc", (400, "DIGEST_INVALID")),
        (
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            (400, "DIGEST_INVALID"),
        ),
    ] {
        let path = format!("/v2/team/app/blobs/{name}");
        let want = (want.0, want.1.to_owned());
        assert_eq!(
            answer(oci.req(Method::GET, &path)).await,
            want,
            "GET {name}"
        );
        assert_eq!(
            answer(oci.req(Method::DELETE, &path)).await,
            want,
            "DELETE {name}"
        );
        let head = oci.req(Method::HEAD, &path).send().await.unwrap();
        assert_eq!(head.status().as_u16(), want.0, "HEAD {name}");
    }
    // Referrers: the spec requires a 400 for a digest of invalid syntax.
    assert_eq!(
        answer(oci.req(Method::GET, "/v2/team/app/referrers/sha256:abc")).await,
        (400, "DIGEST_INVALID".to_owned())
    );
    // tags/list's `last` is a position, not a name that must exist.
    let r = oci
        .req(Method::GET, "/v2/team/app/tags/list?last=.not-a-tag")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn blob_delete_unlinks_only_what_no_image_references() {
    let server = TestServer::start_with(&["--gc-interval-secs", "0"]).await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    create_repo(&ecr, "team/copy").await;
    let oci = server.oci().await;
    let manifest = image(&oci, "team/app", 5).await;
    let r = oci
        .put_manifest("team/app", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), 201);
    let manifest_digest = sha256_digest(manifest.as_bytes());
    let layer: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let layer = layer["layers"][0]["digest"].as_str().unwrap().to_owned();
    let stray_bytes = random_bytes(4321, 77);
    let stray = oci.push_blob("team/app", &stray_bytes).await;
    let shared_bytes = random_bytes(999, 78);
    let shared = oci.push_blob("team/app", &shared_bytes).await;
    let r = oci
        .req(
            Method::POST,
            &format!("/v2/team/copy/blobs/uploads/?mount={shared}&from=team/app"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // team/copy's own image uses the mounted blob.
    let copy_config = br#"{"architecture":"amd64","os":"linux"}"#;
    let copy_config_digest = oci.push_blob("team/copy", copy_config).await;
    let copy_manifest = oci_manifest(
        (&copy_config_digest, copy_config.len()),
        &[(&shared, shared_bytes.len())],
    );
    let r = oci
        .put_manifest("team/copy", "v1", OCI_MANIFEST, &copy_manifest)
        .await;
    assert_eq!(r.status(), 201);

    // A layer of v1 stays: deleting it would leave an image that cannot be pulled.
    let r = oci
        .req(Method::DELETE, &format!("/v2/team/app/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("\"DENIED\"") && body.contains("delete the image first"),
        "{body}"
    );
    let r = oci
        .req(Method::GET, "/v2/team/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An unreferenced blob is unlinked: 202, then gone from this repository for both APIs.
    let r = oci
        .req(Method::DELETE, &format!("/v2/team/app/blobs/{stray}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["content-length"], "0");
    assert_eq!(
        answer(oci.req(Method::GET, &format!("/v2/team/app/blobs/{stray}"))).await,
        (404, "BLOB_UNKNOWN".to_owned())
    );
    assert_eq!(
        answer(oci.req(Method::DELETE, &format!("/v2/team/app/blobs/{stray}"))).await,
        (404, "BLOB_UNKNOWN".to_owned()),
        "a second DELETE finds nothing"
    );
    let avail = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(&stray)
        .send()
        .await
        .unwrap();
    assert_eq!(
        avail.layers()[0].layer_availability(),
        Some(&LayerAvailability::Unavailable),
        "ECR no longer sees the blob in the repository"
    );

    // Unlinking from one repository leaves another's link alone.
    let r = oci
        .req(Method::DELETE, &format!("/v2/team/app/blobs/{shared}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = oci
        .req(Method::GET, &format!("/v2/team/copy/blobs/{shared}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), &shared_bytes[..]);

    // Once the image is gone, its layer may be unlinked too.
    let r = oci
        .req(
            Method::DELETE,
            &format!("/v2/team/app/manifests/{manifest_digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = oci
        .req(Method::DELETE, &format!("/v2/team/app/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // GC reclaims the bytes of what no repository links any more, and only those (the files
    // are looked at where blobs are files; elsewhere, what is still linked must still pull).
    let local = !blobs_on_s3();
    assert!(!local || server.blob_file(&stray).exists());
    let (rc, out) = berth_cli(&["gc", "--gc-grace-secs", "0"], server.data_dir());
    assert_eq!(rc, 0, "{out}");
    if local {
        assert!(!server.blob_file(&stray).exists(), "{out}");
        assert!(!server.blob_file(&layer).exists(), "{out}");
        assert!(
            server.blob_file(&shared).exists(),
            "team/copy's image still uses it"
        );
    }
    let r = oci
        .req(Method::GET, &format!("/v2/team/copy/blobs/{shared}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "team/copy's image still uses it");
    assert_eq!(r.bytes().await.unwrap(), &shared_bytes[..]);

    // Without a repository: NAME_UNKNOWN.
    assert_eq!(
        answer(oci.req(Method::DELETE, &format!("/v2/team/none/blobs/{stray}"))).await,
        (404, "NAME_UNKNOWN".to_owned())
    );
}

#[tokio::test]
async fn blob_delete_can_be_turned_off() {
    let server = TestServer::start_with(&["--blob-delete=false"]).await;
    create_repo(&server.ecr(), "team/app").await;
    let oci = server.oci().await;
    let d = oci.push_blob("team/app", b"kept").await;
    assert_eq!(
        answer(oci.req(Method::DELETE, &format!("/v2/team/app/blobs/{d}"))).await,
        (405, "UNSUPPORTED".to_owned())
    );
    let r = oci
        .req(Method::GET, &format!("/v2/team/app/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &b"kept"[..]);
}

#[tokio::test]
async fn mount_without_from_finds_the_blob_in_the_registry() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    for repo in ["team/a", "team/b", "team/c"] {
        create_repo(&ecr, repo).await;
    }
    let oci = server.oci().await;
    let data = random_bytes(7000, 21);
    let d = oci.push_blob("team/b", &data).await;

    // No `from`: berth finds the blob in team/b and mounts it into team/c.
    let r = oci
        .req(
            Method::POST,
            &format!("/v2/team/c/blobs/uploads/?mount={d}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/team/c/blobs/{d}")
    );
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    let r = oci
        .req(Method::GET, &format!("/v2/team/c/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &data[..]);
    // ECR sees it as uploaded to team/c.
    let avail = ecr
        .batch_check_layer_availability()
        .repository_name("team/c")
        .layer_digests(&d)
        .send()
        .await
        .unwrap();
    assert_eq!(
        avail.layers()[0].layer_availability(),
        Some(&LayerAvailability::Available)
    );
    // Already there: a mount is still a 201.
    let r = oci
        .req(
            Method::POST,
            &format!("/v2/team/c/blobs/uploads/?mount={d}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Nowhere in the registry, or not a digest: a new upload session, which works.
    for mount in [sha256_digest(b"nowhere"), "not-a-digest".to_owned()] {
        let r = oci
            .req(
                Method::POST,
                &format!("/v2/team/a/blobs/uploads/?mount={mount}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{mount}");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with("/v2/team/a/blobs/uploads/"),
            "{location}"
        );
        let r = oci
            .req(
                Method::PUT,
                &format!("{location}?digest={}", sha256_digest(b"fresh")),
            )
            .body(&b"fresh"[..])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // A mount into a repository that does not exist is still NAME_UNKNOWN.
    assert_eq!(
        answer(oci.req(
            Method::POST,
            &format!("/v2/team/none/blobs/uploads/?mount={d}")
        ))
        .await,
        (404, "NAME_UNKNOWN".to_owned())
    );
}

#[tokio::test]
async fn cancelled_upload_is_gone_for_both_apis() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let oci = server.oci().await;
    let data = random_bytes(6 * MIB, 31);
    let part = |id: &str, first: usize, last: usize| {
        ecr.upload_layer_part()
            .repository_name("team/app")
            .upload_id(id)
            .part_first_byte(first as i64)
            .part_last_byte(last as i64)
            .layer_part_blob(Blob::new(&data[first..=last]))
            .send()
    };
    let complete = |id: &str| {
        ecr.complete_layer_upload()
            .repository_name("team/app")
            .upload_id(id)
            .layer_digests(sha256_digest(&data))
            .send()
    };

    // Started and cancelled on /v2; ECR cannot continue or complete it.
    let r = oci
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let id = r.headers()["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_owned();
    let r = oci
        .req(Method::PATCH, &location)
        .header("content-range", format!("0-{}", 5 * MIB - 1))
        .body(data[..5 * MIB].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = oci.req(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let e = part(&id, 5 * MIB, data.len() - 1).await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "UploadNotFoundException");
    let e = complete(&id).await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "UploadNotFoundException");
    for method in [Method::GET, Method::PATCH, Method::PUT, Method::DELETE] {
        let url = if method == Method::PUT {
            format!("{location}?digest={}", sha256_digest(&data))
        } else {
            location.clone()
        };
        assert_eq!(
            answer(oci.req(method.clone(), &url)).await,
            (404, "BLOB_UPLOAD_UNKNOWN".to_owned()),
            "{method} after cancel"
        );
    }

    // Started and fed through ECR, cancelled on /v2: neither API takes another part.
    let id = initiate_upload(&ecr, "team/app").await;
    part(&id, 0, 5 * MIB - 1).await.unwrap();
    let location = format!("/v2/team/app/blobs/uploads/{id}");
    let r = oci.req(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let e = part(&id, 5 * MIB, data.len() - 1).await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "UploadNotFoundException");
    let e = complete(&id).await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "UploadNotFoundException");
    assert_eq!(
        answer(
            oci.req(Method::PATCH, &location)
                .header("content-range", format!("{}-{}", 5 * MIB, data.len() - 1))
                .body(data[5 * MIB..].to_vec())
        )
        .await,
        (404, "BLOB_UPLOAD_UNKNOWN".to_owned())
    );
    // Nothing of it became a blob.
    let avail = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(sha256_digest(&data))
        .send()
        .await
        .unwrap();
    assert_eq!(
        avail.layers()[0].layer_availability(),
        Some(&LayerAvailability::Unavailable)
    );
}

#[tokio::test]
async fn ranged_reads_take_suffix_open_and_unsatisfiable_ranges() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let oci = server.oci().await;
    let data = random_bytes(1000, 41);
    let d = oci.push_blob("team/app", &data).await;
    let empty = oci.push_blob("team/app", b"").await;
    let blob = format!("/v2/team/app/blobs/{d}");

    // (Range, expected Content-Range, first byte, last byte).
    for (range, content_range, first, last) in [
        ("bytes=0-9", "bytes 0-9/1000", 0, 9),
        ("bytes=990-", "bytes 990-999/1000", 990, 999),
        ("bytes=0-", "bytes 0-999/1000", 0, 999),
        ("bytes=-10", "bytes 990-999/1000", 990, 999),
        ("bytes=-1", "bytes 999-999/1000", 999, 999),
        ("bytes=-5000", "bytes 0-999/1000", 0, 999),
        ("bytes=995-2000", "bytes 995-999/1000", 995, 999),
    ] {
        let r = oci
            .req(Method::GET, &blob)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(r.headers()["content-range"], content_range, "{range}");
        let len = (last - first + 1).to_string();
        assert_eq!(r.headers()["content-length"], len.as_str(), "{range}");
        assert_eq!(r.bytes().await.unwrap(), &data[first..=last], "{range}");
        let r = oci
            .req(Method::HEAD, &blob)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "HEAD {range}");
        assert_eq!(r.headers()["content-range"], content_range, "HEAD {range}");
        assert_eq!(r.headers()["content-length"], len.as_str(), "HEAD {range}");
    }
    for (path, range, size) in [
        (&blob, "bytes=1000-", 1000),
        (&blob, "bytes=1000-1005", 1000),
        (&blob, "bytes=-0", 1000),
        (&format!("/v2/team/app/blobs/{empty}"), "bytes=0-", 0),
        (&format!("/v2/team/app/blobs/{empty}"), "bytes=-5", 0),
    ] {
        let r = oci
            .req(Method::GET, path)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 416, "{range} of {size} bytes");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes */{size}").as_str(),
            "{range}"
        );
    }
    // Not a range berth understands (several, or invalid): the whole blob, as RFC 9110 allows.
    for range in ["bytes=0-1,5-6", "bytes=5-1", "items=0-1"] {
        let r = oci
            .req(Method::GET, &blob)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{range}");
        assert_eq!(r.bytes().await.unwrap(), &data[..], "{range}");
    }

    // The self-authorising download URL of GetDownloadUrlForLayer serves ranges the same way.
    let (_, _, layer) = push_small_image(&ecr, "team/app", "v1", 42).await;
    let layer_bytes = random_bytes(1042, 42);
    assert_eq!(sha256_digest(&layer_bytes), layer);
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap()
        .download_url()
        .unwrap()
        .to_owned();
    let http = server.http();
    for (range, status, content_range, body) in [
        (
            "bytes=-42",
            206,
            "bytes 1000-1041/1042",
            &layer_bytes[1000..],
        ),
        (
            "bytes=1040-",
            206,
            "bytes 1040-1041/1042",
            &layer_bytes[1040..],
        ),
        ("bytes=1042-", 416, "bytes */1042", &b""[..]),
        ("bytes=-0", 416, "bytes */1042", &b""[..]),
    ] {
        let r = http.get(&url).header("range", range).send().await.unwrap();
        assert_eq!(r.status(), status, "{range}");
        assert_eq!(r.headers()["content-range"], content_range, "{range}");
        if status == 206 {
            assert_eq!(r.bytes().await.unwrap(), body, "{range}");
        }
    }
}

#[tokio::test]
async fn cancelling_an_upload_mid_part_acknowledges_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let oci = server.oci().await;
    let r = oci
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let id = r.headers()["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_owned();
    let data = random_bytes(2 * MIB, 51);

    // Half of a PATCH body, so that the part is being written when the cancel comes.
    let addr = server.endpoint.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        oci.auth,
        data.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&data[..MIB]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = oci.req(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(r.status(), 204);
    conn.write_all(&data[MIB..]).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut resp),
    )
    .await
    .expect("the PATCH is answered")
    .unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(
        resp.starts_with("HTTP/1.1 404") && resp.contains("BLOB_UPLOAD_UNKNOWN"),
        "the part of a cancelled upload is not acknowledged: {resp}"
    );
    // Neither API continues it, and nothing of it stays staged.
    let e = ecr
        .upload_layer_part()
        .repository_name("team/app")
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(MIB as i64 - 1)
        .layer_part_blob(Blob::new(&data[..MIB]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "UploadNotFoundException");
    assert!(
        !server.data_dir().join("uploads").join(&id).exists(),
        "no staging file is left behind"
    );
}
