//! The pull side: BatchGetImage and GetDownloadUrlForLayer.

use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier};

use crate::harness::*;

fn by_tag(t: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(t).build()
}

fn by_digest(d: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_digest(d).build()
}

#[tokio::test]
async fn batch_get_image_reports_per_image_failures() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let (manifest, digest, _) = push_small_image(&ecr, "team/app", "v1", 1).await;
    let (_, other, _) = push_small_image(&ecr, "team/app", "v2", 2).await;

    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag("v1"))
        .image_ids(by_digest(&digest))
        .image_ids(by_tag("missing"))
        .image_ids(by_digest("sha256:zz"))
        .image_ids(ImageIdentifier::builder().build())
        .image_ids(
            ImageIdentifier::builder()
                .image_tag("v1")
                .image_digest(&other)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.images().len(), 2);
    for img in got.images() {
        assert_eq!(
            img.image_manifest(),
            Some(manifest.as_str()),
            "stored bytes, byte for byte"
        );
    }
    let codes: Vec<_> = got
        .failures()
        .iter()
        .map(|f| f.failure_code().cloned().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            ImageFailureCode::ImageNotFound,
            ImageFailureCode::InvalidImageDigest,
            ImageFailureCode::MissingDigestAndTag,
            ImageFailureCode::ImageTagDoesNotMatchDigest
        ]
    );
    assert_eq!(
        got.failures()[0].failure_reason(),
        Some("Requested image not found")
    );

    // A media type the client does not accept is not found for it.
    let got = ecr
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(by_tag("v1"))
        .accepted_media_types("application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .await
        .unwrap();
    assert!(got.images().is_empty());
    assert_eq!(
        got.failures()[0].failure_code(),
        Some(&ImageFailureCode::ImageNotFound)
    );

    let e = ecr
        .batch_get_image()
        .repository_name("team/none")
        .image_ids(by_tag("v1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "RepositoryNotFoundException");
}

#[tokio::test]
async fn download_urls_authorise_themselves_support_range_and_expire_with_the_image() {
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let (_, digest, layer_digest) = push_small_image(&ecr, "team/app", "v1", 7).await;
    let layer = random_bytes(1007, 7);
    assert_eq!(sha256_digest(&layer), layer_digest);

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
    assert!(url.starts_with(&server.endpoint));
    let http = server.http();
    let r = http
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/1007");
    assert_eq!(r.bytes().await.unwrap(), &layer[100..200]);
    let r = http
        .get(&url)
        .header("range", "bytes=2000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);

    // A tampered URL is refused.
    let tampered = url.replace("signature=", "signature=00");
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);
    let other = url.replace("team/app", "team/other");
    assert_eq!(http.get(&other).send().await.unwrap().status(), 403);

    // Once no image references the layer, the URL stops working and no new one is issued.
    ecr.batch_delete_image()
        .repository_name("team/app")
        .image_ids(by_digest(&digest))
        .send()
        .await
        .unwrap();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    let e = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&layer_digest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LayerInaccessibleException");
    let e = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(sha256_digest(b"never uploaded"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LayersNotFoundException");
    let e = ecr
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest("bad")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}

/// Reads one HTTP/1.1 response (Content-Length framed) from `conn`: status and body.
async fn read_response(
    conn: &mut tokio::io::BufReader<tokio::net::TcpStream>,
    head_request: bool,
) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut status = 0;
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix("HTTP/1.1 ") {
            status = rest[..3].parse().unwrap();
        } else if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; if head_request { 0 } else { len }];
    conn.read_exact(&mut body).await.unwrap();
    (status, body)
}

/// On plain HTTP/1 blobs go out of their files zero-copy (see `blob_http::zero_copy`): byte
/// for byte, whole and ranged, on keep-alive and pipelined connections, between HEADs and
/// other responses; a file cut short under the server ends its response short, never padded.
#[tokio::test]
async fn blobs_are_served_zero_copy_byte_for_byte() {
    if skip_unless_local_blobs("sendfile serves local blob files only") {
        return;
    }
    use reqwest::Method;
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;
    let ecr = server.ecr();
    create_repo(&ecr, "team/app").await;
    let oci = server.oci().await;
    // Several placeholder frames (1 MiB each) and a partial one.
    let big = random_bytes(5 * 1024 * 1024 + 12_345, 11);
    let big_d = oci.push_blob("team/app", &big).await;
    let small = random_bytes(777, 12);
    let small_d = oci.push_blob("team/app", &small).await;
    let blob = |d: &str| format!("/v2/team/app/blobs/{d}");

    // One client: the requests share a keep-alive connection.
    for _ in 0..3 {
        for (d, data) in [(&big_d, &big), (&small_d, &small)] {
            let r = oci.req(Method::GET, &blob(d)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.bytes().await.unwrap(), &data[..]);
        }
        let r = oci
            .req(Method::GET, &blob(&big_d))
            .header("range", "bytes=1048570-3000000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap(), &big[1_048_570..=3_000_000]);
    }

    // Pipelined: every request written at once, the answers read back in order.
    let addr = server.endpoint.trim_start_matches("http://");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut conn = tokio::io::BufReader::new(tcp);
    let req = |method: &str, path: &str, extra: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\n{extra}\r\n",
            oci.auth
        )
    };
    let requests = [
        req("GET", &blob(&big_d), ""),
        req("HEAD", &blob(&big_d), ""),
        req("GET", &blob(&small_d), "range: bytes=-100\r\n"),
        req("GET", "/v2/team/app/manifests/missing", ""),
        req("GET", &blob(&big_d), "range: bytes=4000000-\r\n"),
        req("GET", &blob(&small_d), ""),
    ]
    .concat();
    conn.get_mut().write_all(requests.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut conn, false).await, (200, big.clone()));
    assert_eq!(read_response(&mut conn, true).await, (200, vec![]));
    assert_eq!(
        read_response(&mut conn, false).await,
        (206, small[677..].to_vec())
    );
    let (status, body) = read_response(&mut conn, false).await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_UNKNOWN"));
    assert_eq!(
        read_response(&mut conn, false).await,
        (206, big[4_000_000..].to_vec())
    );
    assert_eq!(read_response(&mut conn, false).await, (200, small.clone()));

    // A blob file truncated on disk: the response stops short of its Content-Length (the
    // client sees a failed transfer) and the server goes on serving.
    let path = server.blob_file(&big_d);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(2 * 1024 * 1024)
        .unwrap();
    let r = oci.req(Method::GET, &blob(&big_d)).send().await.unwrap();
    assert!(r.bytes().await.is_err(), "a short file is never padded");
    let r = oci.req(Method::GET, &blob(&small_d)).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), &small[..]);
}
