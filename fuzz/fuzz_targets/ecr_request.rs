//! The awsJson request decoding of every ECR and ECR Public operation: `<X-Amz-Target>\n<body>`
//! goes through `ecr_api::decode_request`, the step the server takes once a request is
//! authenticated (with the generated model checks, where an operation has them).
#![no_main]

use axum::response::IntoResponse;
use ecr_api::ApiError;
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
const PUBLIC_PREFIX: &str = "SpencerFrontendService.";

fuzz_target!(|data: &[u8]| {
    let (target, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    // The server reads the header as a string (a non-UTF-8 one as no target at all).
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let no_body = body.iter().all(u8::is_ascii_whitespace);
    match ecr_api::decode_request(target, body) {
        Ok(()) => {
            assert!(
                target.starts_with(PREFIX) || target.starts_with(PUBLIC_PREFIX),
                "decoded for target {target:?}"
            );
            assert!(
                no_body || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
                "a body that is not JSON decoded"
            );
        }
        Err(e) => {
            match &e {
                ApiError::UnknownOperation(t) => assert_eq!(t, target),
                ApiError::Serialization(_) => {
                    assert!(target.starts_with(PREFIX) || target.starts_with(PUBLIC_PREFIX));
                    // Every member is optional: no body is `{}`, which every shape accepts.
                    assert!(!no_body, "a known operation refused an empty body");
                }
                // ECR Public's requests, and ECR's on generated shapes (TagResource, ...),
                // are checked against the model as they are decoded.
                ApiError::InvalidParameter(m) | ApiError::InvalidTagParameter(m) => {
                    assert!(
                        target.starts_with(PUBLIC_PREFIX) || target.starts_with(PREFIX),
                        "{target:?}: {m}"
                    );
                    assert!(
                        m.starts_with("Invalid parameter at '") && m.ends_with('\''),
                        "{m}"
                    );
                }
                other => panic!("decoding failed with {other:?}"),
            }
            let status = e.into_response().status();
            assert!(status.is_client_error(), "{status}");
        }
    }
});
