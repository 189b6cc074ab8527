//! Reading what a manifest references. Only the fields the registry acts on are parsed; the
//! stored bytes are always the bytes received.

use model::{Digest, MediaType};
use serde_json::Value;

use crate::{RegistryError, Result};

/// What a manifest tells the registry.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedManifest {
    pub media_type: String,
    /// Blobs the repository must hold: config and non-foreign layers, with their media types.
    pub blobs: Vec<(Digest, String)>,
    /// Manifests an index lists, with their sizes.
    pub children: Vec<(Digest, u64)>,
    pub artifact_media_type: Option<String>,
    pub subject: Option<Digest>,
    /// Config plus layers for an image manifest.
    pub size: u64,
}

fn invalid(what: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'ImageManifest' failed to satisfy constraint: '{what}'"
    ))
}

/// Layers a registry does not hold: Docker foreign layers and OCI non-distributable layers.
fn is_foreign(media_type: &str) -> bool {
    media_type.contains("foreign") || media_type.contains("nondistributable")
}

fn descriptor(v: &Value, field: &str) -> Result<(Digest, String, u64)> {
    let digest = v
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{field} descriptor has no digest")))?;
    let digest = Digest::parse(digest)
        .map_err(|_| invalid(&format!("{field} descriptor has an invalid digest")))?;
    let media_type = v
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let size = v.get("size").and_then(Value::as_u64).unwrap_or(0);
    Ok((digest, media_type, size))
}

/// Parses `bytes` as a manifest whose media type is `declared` (from the request) or, failing
/// that, its own `mediaType` field. Checks follow ecr-api.md section 2.6.
pub(crate) fn parse(bytes: &[u8], declared: Option<&str>) -> Result<ParsedManifest> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| invalid("Invalid JSON syntax"))?;
    if !v.is_object() {
        return Err(invalid("Invalid JSON syntax"));
    }
    let own = v.get("mediaType").and_then(Value::as_str);
    let media_type = match (declared, own) {
        (Some(d), Some(o)) if d != o => {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'imageManifestMediaType' failed to satisfy constraint: 'the media type {d} does not match the manifest's mediaType {o}'"
            )));
        }
        (Some(d), _) => d,
        (None, Some(o)) => o,
        (None, None) if v.get("schemaVersion").and_then(Value::as_u64) == Some(1) => {
            MediaType::DOCKER_MANIFEST_V1
        }
        (None, None) => {
            return Err(RegistryError::InvalidParameter(
                "Invalid parameter at 'imageManifestMediaType' failed to satisfy constraint: 'the manifest has no mediaType and none was given'".into(),
            ));
        }
    };
    if !MediaType::is_supported_manifest(media_type) {
        return Err(RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'imageManifestMediaType' failed to satisfy constraint: 'unsupported manifest media type {media_type}'"
        )));
    }
    let mut out = ParsedManifest {
        media_type: media_type.to_owned(),
        ..Default::default()
    };
    if let Some(s) = v.get("subject") {
        out.subject = Some(descriptor(s, "subject")?.0);
    }
    if media_type == MediaType::DOCKER_MANIFEST_V1
        || media_type == MediaType::DOCKER_MANIFEST_V1_SIGNED
    {
        // Schema 1 names its layers in fsLayers[].blobSum and has no config.
        for l in v
            .get("fsLayers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let d = l
                .get("blobSum")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("fsLayers entry has no blobSum"))?;
            let d =
                Digest::parse(d).map_err(|_| invalid("fsLayers entry has an invalid blobSum"))?;
            if !out.blobs.iter().any(|(x, _)| *x == d) {
                out.blobs.push((
                    d,
                    "application/vnd.docker.container.image.rootfs.diff+x-gtar".into(),
                ));
            }
        }
        return Ok(out);
    }
    if v.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    if MediaType::is_index(media_type) {
        let manifests = v
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("an index must list manifests"))?;
        for m in manifests {
            let (d, _, size) = descriptor(m, "manifests")?;
            out.children.push((d, size));
        }
        out.artifact_media_type = v
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Ok(out);
    }
    let config = v
        .get("config")
        .ok_or_else(|| invalid("an image manifest must have a config"))?;
    let (cd, cmt, csize) = descriptor(config, "config")?;
    out.artifact_media_type = Some(cmt.clone());
    out.size = csize;
    out.blobs.push((cd, cmt));
    let layers = v
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("an image manifest must have layers"))?;
    for l in layers {
        let (d, mt, size) = descriptor(l, "layers")?;
        out.size = out
            .size
            .checked_add(size)
            .ok_or_else(|| invalid("the sizes of the config and layers overflow"))?;
        if !is_foreign(&mt) && !out.blobs.iter().any(|(x, _)| *x == d) {
            out.blobs.push((d, mt));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn reads_an_oci_manifest() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":10}},
               "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":100}},
                         {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":5}}],
               "subject":{{"mediaType":"{}","digest":"{}","size":1}}}}"#,
            MediaType::OCI_MANIFEST,
            d('a'),
            d('b'),
            d('c'),
            MediaType::OCI_MANIFEST,
            d('e')
        );
        let p = parse(m.as_bytes(), None).unwrap();
        assert_eq!(p.blobs.len(), 2, "the foreign layer need not be uploaded");
        assert_eq!(p.size, 115);
        assert_eq!(
            p.artifact_media_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert_eq!(p.subject, Some(Digest::parse(&d('e')).unwrap()));
    }

    #[test]
    fn reads_an_index() {
        let m = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":7}}]}}"#,
            d('a')
        );
        let p = parse(m.as_bytes(), Some(MediaType::OCI_INDEX)).unwrap();
        assert_eq!(p.children, vec![(Digest::parse(&d('a')).unwrap(), 7)]);
    }

    #[test]
    fn refuses_bad_manifests() {
        assert!(parse(b"not json", Some(MediaType::OCI_MANIFEST)).is_err());
        assert!(parse(b"[]", Some(MediaType::OCI_MANIFEST)).is_err());
        assert!(
            parse(br#"{"schemaVersion":2}"#, None).is_err(),
            "no media type anywhere"
        );
        assert!(parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None).is_err());
        let mismatch = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}"}}"#,
            MediaType::OCI_INDEX
        );
        assert!(parse(mismatch.as_bytes(), Some(MediaType::OCI_MANIFEST)).is_err());
        assert!(
            parse(
                br#"{"schemaVersion":2,"config":{"digest":"nope"},"layers":[]}"#,
                Some(MediaType::OCI_MANIFEST)
            )
            .is_err()
        );
    }

    #[test]
    fn refuses_sizes_that_overflow() {
        // A config and layers whose sizes add up past u64::MAX: an overflow panic in debug
        // builds (the fuzz target's), a wrapped image size otherwise.
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":18446744073709551615}},
               "layers":[{{"digest":"{}","size":1}}]}}"#,
            d('a'),
            d('b')
        );
        assert!(matches!(
            parse(m.as_bytes(), Some(MediaType::OCI_MANIFEST)),
            Err(RegistryError::InvalidParameter(_))
        ));
    }
}
