//! The key the server signs its own tokens and URLs with. Kept in the data directory so that
//! tokens outlive a restart; every node of one deployment must share it.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const KEY_LEN: usize = 32;

#[derive(Clone)]
pub struct SigningKey([u8; KEY_LEN]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads the key at `path`, creating it (random, mode 0600, written atomically) if absent.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a {KEY_LEN}-byte key", path.display()),
                    )
                })?;
                Ok(Self(arr))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                getrandom::getrandom(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
                let tmp = path.with_extension("tmp");
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(&tmp)?;
                f.write_all(&key)?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)?;
                if let Some(dir) = path.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok(Self(key))
            }
            Err(e) => Err(e),
        }
    }

    fn mac(&self, purpose: &str, message: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // The purpose separates token and URL signatures, so one can never stand for the other.
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(message);
        mac
    }

    /// HMAC-SHA256 of `message` for `purpose`.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        self.mac(purpose, message).finalize().into_bytes().into()
    }

    /// Constant-time check of a signature made by [`SigningKey::sign`].
    pub fn verify(&self, purpose: &str, message: &[u8], signature: &[u8]) -> bool {
        self.mac(purpose, message).verify_slice(signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("signing.key");
        let a = SigningKey::load_or_create(&p).unwrap();
        let b = SigningKey::load_or_create(&p).unwrap();
        let sig = a.sign("x", b"m");
        assert!(b.verify("x", b"m", &sig));
        assert!(!b.verify("y", b"m", &sig));
        assert!(!b.verify("x", b"n", &sig));
    }
}
