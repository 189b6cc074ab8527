//! Manifest parsing and validation (PutImage, `/v2` manifest PUT) with an arbitrary declared
//! media type: `<declared media type, empty for none>\n<manifest bytes>`.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use model::MediaType;
use registry::RegistryError;
use registry::fuzzing::parse_manifest;

fuzz_target!(|data: &[u8]| {
    let Some(i) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(declared) = std::str::from_utf8(&data[..i]) else {
        return;
    };
    let declared = Some(declared).filter(|d| !d.is_empty());
    let bytes = &data[i + 1..];
    match parse_manifest(bytes, declared) {
        Ok(p) => {
            assert!(serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok());
            assert!(MediaType::is_supported_manifest(&p.media_type));
            if let Some(d) = declared {
                assert_eq!(p.media_type, d);
            }
            let unique: HashSet<_> = p.blobs.iter().map(|(d, _)| d).collect();
            assert_eq!(unique.len(), p.blobs.len(), "a blob listed twice");
            if MediaType::is_index(&p.media_type) {
                assert!(p.blobs.is_empty() && p.size == 0, "{p:?}");
            } else {
                assert!(p.children.is_empty(), "{p:?}");
            }
            if p.media_type == MediaType::OCI_MANIFEST
                || p.media_type == MediaType::DOCKER_MANIFEST_V2
            {
                assert!(!p.blobs.is_empty(), "an image manifest without its config");
            }
        }
        // Every refusal is the client's fault: InvalidParameterException.
        Err(RegistryError::InvalidParameter(_)) => {}
        Err(e) => panic!("unexpected error {e:?}"),
    }
});
