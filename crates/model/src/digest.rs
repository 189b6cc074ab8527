use std::fmt;
use std::str::FromStr;

use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest as _, Sha256, Sha512};

/// The hash algorithms a digest may name. ECR computes only sha256; the OCI front end may also
/// accept sha512 (OCI image spec, "Registered Algorithms").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest is empty")]
    Empty,
    #[error("digest '{0}' is not of the form <algorithm>:<hex>")]
    Malformed(String),
    #[error("digest algorithm '{0}' is not supported")]
    UnsupportedAlgorithm(String),
}

/// A content digest `<algorithm>:<lower-case hex>`, always well-formed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses a digest in the OCI grammar `algorithm ":" encoded`, accepting only registered
    /// algorithms with an encoded part of the right length. Upper-case hex is refused: the OCI
    /// spec requires lower case, and accepting both would give one blob two names.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        if s.is_empty() {
            return Err(DigestError::Empty);
        }
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(s.to_owned()))?;
        let valid_alg = !alg.is_empty()
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        if !valid_alg || hex.is_empty() {
            return Err(DigestError::Malformed(s.to_owned()));
        }
        let algorithm = match alg {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            other => return Err(DigestError::UnsupportedAlgorithm(other.to_owned())),
        };
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Malformed(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// Parses and additionally requires sha256, the only algorithm of the ECR API.
    pub fn parse_sha256(s: &str) -> Result<Self, DigestError> {
        let d = Self::parse(s)?;
        match d.algorithm() {
            DigestAlgorithm::Sha256 => Ok(d),
            other => Err(DigestError::UnsupportedAlgorithm(other.as_str().to_owned())),
        }
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::from_sha256_bytes(&Sha256::digest(bytes))
    }

    /// The digest of `bytes` with `algorithm`.
    pub fn of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Self::sha256_of(bytes),
            DigestAlgorithm::Sha512 => {
                Self(format!("sha512:{}", hex::encode(Sha512::digest(bytes))))
            }
        }
    }

    fn from_sha256_bytes(raw: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(raw)))
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        if self.0.starts_with("sha512:") {
            DigestAlgorithm::Sha512
        } else {
            DigestAlgorithm::Sha256
        }
    }

    /// The encoded (hex) part after the colon.
    pub fn hex(&self) -> &str {
        &self.0[self.0.find(':').map_or(0, |i| i + 1)..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An incremental digest of either registered algorithm, for reading a blob back (fsck,
/// verified downloads, the rare sha512 upload). Uploads use [`ResumableSha256`] instead,
/// whose state can be saved between parts.
#[derive(Clone)]
pub enum DigestHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl DigestHasher {
    pub fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Self::Sha256(Sha256::new()),
            DigestAlgorithm::Sha512 => Self::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Self::Sha256(h) => Digest::from_sha256_bytes(&h.finalize()),
            Self::Sha512(h) => Digest(format!("sha512:{}", hex::encode(h.finalize()))),
        }
    }
}

/// A sha256 computation whose intermediate state can be saved after each acknowledged part
/// and restored on any node after a restart, so that completing an upload never reads the
/// layer back to hash it.
#[derive(Clone, Default)]
pub struct ResumableSha256(Sha256);

impl ResumableSha256 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The opaque saved state (the chaining value, the block count and the partial block).
    pub fn save(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    /// Restores a state produced by [`ResumableSha256::save`]; `None` if it is not one.
    pub fn restore(state: &[u8]) -> Option<Self> {
        let arr = state.try_into().ok()?;
        Sha256::deserialize(arr).ok().map(Self)
    }

    pub fn finish(self) -> Digest {
        Digest::from_sha256_bytes(&self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_sha256_and_sha512() {
        assert_eq!(Digest::parse(EMPTY).unwrap().hex().len(), 64);
        let s512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(
            Digest::parse(&s512).unwrap().algorithm(),
            DigestAlgorithm::Sha512
        );
        assert!(Digest::parse_sha256(&s512).is_err());
    }

    #[test]
    fn rejects_malformed_digests() {
        assert_eq!(Digest::parse(""), Err(DigestError::Empty));
        for bad in [
            "sha256",
            "sha256:",
            "sha256:abc",
            ":abcd",
            "SHA256:00",
            &EMPTY.to_uppercase(),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e"),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn resumable_hash_survives_save_and_restore() {
        let mut h = ResumableSha256::new();
        h.update(b"hello ");
        let mut resumed = ResumableSha256::restore(&h.save()).unwrap();
        resumed.update(b"world");
        assert_eq!(resumed.finish(), Digest::sha256_of(b"hello world"));
        assert!(ResumableSha256::restore(b"junk").is_none());
        assert_eq!(ResumableSha256::new().finish().as_str(), EMPTY);
    }

    #[test]
    fn sha512_digests() {
        let mut h = DigestHasher::new(DigestAlgorithm::Sha512);
        h.update(b"ab");
        h.update(b"c");
        let d = h.finish();
        assert_eq!(d, Digest::of(DigestAlgorithm::Sha512, b"abc"));
        assert!(d.as_str().starts_with("sha512:ddaf35a193617aba"));
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
    }
}
