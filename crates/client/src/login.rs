//! `berth login`: GetAuthorizationToken's token as docker/podman credentials. The token is
//! base64 of `AWS:<password>`, which is exactly the `auth` member of docker's
//! `config.json` (`{"auths": {"<host>": {"auth": "<base64>"}}}`); podman's `auth.json` has
//! the same format.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::LoginArgs;
use crate::push::describe;

pub async fn run(ecr: &aws_sdk_ecr::Client, args: &LoginArgs) -> anyhow::Result<()> {
    let out = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GetAuthorizationToken: {}", describe(&e)))?;
    let data = out
        .authorization_data()
        .first()
        .context("GetAuthorizationToken gave no authorization data")?;
    let token = data
        .authorization_token()
        .context("no authorizationToken")?;
    let decoded = base64_simd::STANDARD
        .decode_to_vec(token)
        .context("authorizationToken is not base64")?;
    let decoded = String::from_utf8(decoded).context("authorizationToken is not text")?;
    let (_, password) = decoded
        .split_once(':')
        .context("authorizationToken is not user:password")?;
    let host = match &args.registry {
        Some(r) => host_of(r),
        None => host_of(
            data.proxy_endpoint()
                .context("no proxyEndpoint; pass --registry")?,
        ),
    };
    if args.print {
        println!("{password}");
        return Ok(());
    }
    let path = match &args.authfile {
        Some(p) => p.clone(),
        None => default_authfile()?,
    };
    let mut config: Value = match std::fs::read(&path) {
        Ok(b) if !b.is_empty() => {
            serde_json::from_slice(&b).with_context(|| format!("{} is not JSON", path.display()))?
        }
        Ok(_) => json!({}),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let auths = config
        .as_object_mut()
        .with_context(|| format!("{} is not a JSON object", path.display()))?
        .entry("auths")
        .or_insert_with(|| json!({}));
    auths
        .as_object_mut()
        .context("`auths` is not an object")?
        .insert(host.clone(), json!({"auth": token}));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::layout::write_atomic(&path, &serde_json::to_vec_pretty(&config)?)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    let expires = data
        .expires_at()
        .map(|t| format!(", valid until {t}"))
        .unwrap_or_default();
    eprintln!("Login Succeeded: {host} in {}{expires}", path.display());
    Ok(())
}

/// `https://host:port/...` -> `host:port`, as docker keys `auths`.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// podman's `REGISTRY_AUTH_FILE`, else docker's `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
fn default_authfile() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return Ok(p.into());
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".docker/config.json"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of_drops_scheme_and_path() {
        assert_eq!(
            super::host_of("https://1.dkr.ecr.x.amazonaws.com"),
            "1.dkr.ecr.x.amazonaws.com"
        );
        assert_eq!(
            super::host_of("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(super::host_of("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
