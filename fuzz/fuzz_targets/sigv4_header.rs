//! The SigV4 `Authorization` header parser and `X-Amz-Date`, then the canonical request and
//! signature over the parsed header with the same input as path, query and header value.
#![no_main]

use auth::sigv4::{
    Authorization, RequestParts, SigV4Error, expected_signature, format_amz_date, parse_amz_date,
    parse_authorization,
};
use libfuzzer_sys::fuzz_target;

fn render(a: &Authorization) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
        a.access_key_id,
        a.date,
        a.region,
        a.service,
        a.signed_headers.join(";"),
        a.signature
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match parse_authorization(Some(s)) {
        Ok(a) => {
            assert!(!a.access_key_id.is_empty());
            assert!(a.date.len() == 8 && a.date.bytes().all(|b| b.is_ascii_digit()));
            assert!(a.signature.len() == 64 && a.signature.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(a.signed_headers.iter().all(|h| !h.is_empty()));
            assert_eq!(parse_authorization(Some(&render(&a))).as_ref(), Ok(&a));
            let req = RequestParts {
                method: "POST",
                path: s,
                query: s,
                headers: a
                    .signed_headers
                    .iter()
                    .map(|h| (h.clone(), s.to_owned()))
                    .collect(),
                payload_sha256: a.signature.clone(),
            };
            let sig = expected_signature("secret", &a, s, &req);
            assert!(sig.len() == 64 && sig.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        Err(SigV4Error::Incomplete(_)) => {}
        Err(SigV4Error::Missing) => panic!("a header that is there is missing"),
    }
    if let Some(t) = parse_amz_date(s) {
        // A leap second (:60) is accepted and is the next minute's :00.
        if s.get(13..15) != Some("60") {
            assert_eq!(format_amz_date(t), s, "{t}");
        }
    }
});
