//! Parsing the SigV4 `Authorization` header (ecr-api.md section 1.4).
//!
//! Issue 2 learns the caller's access key from it; verifying the signature itself is a later
//! step that will plug in where the front end calls [`parse_authorization`].

/// The parts of `AWS4-HMAC-SHA256 Credential=<akid>/<date>/<region>/<service>/aws4_request,
/// SignedHeaders=<h1;h2>, Signature=<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    Missing,
    /// A header that is not a complete SigV4 authorization; the text names what is wrong.
    #[error("{0}")]
    Incomplete(String),
}

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

pub fn parse_authorization(header: Option<&str>) -> Result<Authorization, SigV4Error> {
    let header = header.ok_or(SigV4Error::Missing)?.trim();
    let rest = header
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| {
            SigV4Error::Incomplete(format!(
                "Authorization header requires the '{ALGORITHM}' algorithm"
            ))
        })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let Some((k, v)) = part.split_once('=') else {
            return Err(SigV4Error::Incomplete(format!(
                "Authorization header requires each component to be of the form key=value: '{part}'"
            )));
        };
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let missing = |name: &str| {
        SigV4Error::Incomplete(format!("Authorization header requires '{name}' parameter."))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = scope[..] else {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            scope.get(2).copied().unwrap_or("")
        )));
    };
    if akid.is_empty()
        || terminator != "aws4_request"
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SigV4Error::Incomplete(format!(
            "Credential is malformed: '{credential}'"
        )));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigV4Error::Incomplete(
            "Signature must be 64 hexadecimal characters".into(),
        ));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(SigV4Error::Incomplete("SignedHeaders is malformed".into()));
    }
    Ok(Authorization {
        access_key_id: akid.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURED: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=cc80b12e5205077afb1128a499e015621a1a267fe63142d60b063cff72896fbd";

    #[test]
    fn parses_the_captured_cli_header() {
        let a = parse_authorization(Some(CAPTURED)).unwrap();
        assert_eq!(a.access_key_id, "AKIDEXAMPLE");
        assert_eq!(
            (a.date.as_str(), a.region.as_str(), a.service.as_str()),
            ("20261122", "us-east-1", "ecr")
        );
        assert_eq!(
            a.signed_headers,
            ["content-type", "host", "x-amz-date", "x-amz-target"]
        );
    }

    #[test]
    fn refuses_incomplete_headers() {
        assert_eq!(parse_authorization(None), Err(SigV4Error::Missing));
        for bad in [
            "Basic QVdTOng=",
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/ecr/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AKID/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=cc80b12e5205077afb1128a499e015621a1a267fe63142d60b063cff72896fbd",
            "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=xyz",
            "AWS4-HMAC-SHA256Credential=AKID",
        ] {
            assert!(
                matches!(
                    parse_authorization(Some(bad)),
                    Err(SigV4Error::Incomplete(_))
                ),
                "{bad}"
            );
        }
    }
}
