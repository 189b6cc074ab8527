//! Who is calling and what proves it: the SigV4 `Authorization` header, the server's signing
//! key, registry passwords (GetAuthorizationToken) and self-authorising download URLs.
//! Pure functions over bytes and strings; depends on no other berth crate.

pub mod credentials;
pub mod signing_key;
pub mod sigv4;
pub mod token;

pub use credentials::{CredentialStore, Identity, Secret, StaticCredentials};
pub use signing_key::SigningKey;
