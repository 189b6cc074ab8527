use std::fmt;

/// An upload session id: a lower-case UUID, as ECR returns from InitiateLayerUpload and as the
/// OCI front end puts in `Docker-Upload-UUID`. Parsing accepts upper case, as the ECR model's
/// pattern does, and normalises it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadId(uuid::Uuid);

impl UploadId {
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Parses the hyphenated form `[0-9a-fA-F]{8}-...-[0-9a-fA-F]{12}` only.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 36 {
            return None;
        }
        uuid::Uuid::try_parse(s).ok().map(Self)
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_lower_case() {
        let id = UploadId::parse("0F0E7C1A-1B2C-4D5E-8F90-A1B2C3D4E5F6").unwrap();
        assert_eq!(id.to_string(), "0f0e7c1a-1b2c-4d5e-8f90-a1b2c3d4e5f6");
        assert!(UploadId::parse("0f0e7c1a1b2c4d5e8f90a1b2c3d4e5f6").is_none());
        assert!(UploadId::parse("nope").is_none());
    }
}
