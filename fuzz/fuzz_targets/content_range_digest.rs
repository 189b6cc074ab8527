//! The small parsers of request parts: `Content-Range` (/v2 chunked uploads), digests,
//! repository names, tags, manifest references, upload ids, registry ids, `nextToken`s and
//! wildcard patterns. Each value that parses renders back to what was parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::{
    Digest, DigestAlgorithm, DigestError, ImageTag, Reference, RepositoryName, RepositoryNameError,
    TagError, UploadId, is_registry_id, wildcard_match,
};
use registry::PageToken;

fn content_range(s: &str) {
    if let Ok((first, last)) = oci_api::parse_content_range(s) {
        assert!(first <= last, "{s:?}");
        for canonical in [format!("{first}-{last}"), format!("bytes {first}-{last}/*")] {
            assert_eq!(
                oci_api::parse_content_range(&canonical).ok(),
                Some((first, last))
            );
        }
    }
}

fn digest(s: &str) {
    match Digest::parse(s) {
        Ok(d) => {
            assert_eq!(d.as_str(), s);
            assert_eq!(d.to_string(), s);
            assert_eq!(s.parse::<Digest>().as_ref(), Ok(&d));
            let hex_len = match d.algorithm() {
                DigestAlgorithm::Sha256 => 64,
                DigestAlgorithm::Sha512 => 128,
            };
            assert_eq!(d.hex().len(), hex_len);
            assert_eq!(format!("{}:{}", d.algorithm().as_str(), d.hex()), s);
            assert_eq!(
                Digest::parse_sha256(s).is_ok(),
                d.algorithm() == DigestAlgorithm::Sha256
            );
        }
        Err(e) => {
            assert_eq!(s.is_empty(), e == DigestError::Empty);
            assert!(Digest::parse_sha256(s).is_err());
        }
    }
}

fn names(s: &str) {
    match RepositoryName::parse(s) {
        Ok(n) => {
            assert_eq!(n.as_str(), s);
            assert_eq!(n.to_string(), s);
            assert!(s.split('/').all(|c| !c.is_empty()));
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
            );
        }
        Err(e) => assert_eq!(
            e == RepositoryNameError::Length,
            !(2..=256).contains(&s.len())
        ),
    }
    match ImageTag::parse(s) {
        Ok(t) => {
            assert_eq!(t.as_str(), s);
            assert!(!s.contains(':') && !s.contains('/'));
        }
        Err(e) => assert_eq!(e == TagError::Length, !(1..=300).contains(&s.len())),
    }
    match Reference::parse(s) {
        Some(r) => {
            assert_eq!(r.to_string(), s);
            match r {
                Reference::Tag(t) => assert!(t.as_str().len() <= 128),
                Reference::Digest(d) => assert_eq!(Digest::parse(s).as_ref(), Ok(&d)),
            }
        }
        None => assert!(Digest::parse(s).is_err()),
    }
}

fn ids(s: &str) {
    if let Some(id) = UploadId::parse(s) {
        let lower = id.to_string();
        assert!(lower.eq_ignore_ascii_case(s), "{s:?} -> {lower}");
        assert_eq!(UploadId::parse(&lower), Some(id));
    }
    if is_registry_id(s) {
        assert!(s.len() == 12 && s.parse::<u64>().is_ok());
    }
    if let Ok(t) = PageToken::decode(s) {
        assert_eq!(PageToken::decode(&t.encode()).ok(), Some(t));
    }
}

fn wildcards(s: &str) {
    let (pattern, name) = s.split_once('\n').unwrap_or((s, s));
    let matched = wildcard_match(pattern, name);
    if !pattern.contains('*') {
        assert_eq!(matched, pattern == name);
    }
    if pattern == name {
        assert!(matched);
    }
    assert!(wildcard_match("*", name));
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    content_range(s);
    digest(s);
    names(s);
    ids(s);
    wildcards(s);
});
