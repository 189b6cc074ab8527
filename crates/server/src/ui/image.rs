//! One image: its manifest, config, layers with sizes, the platforms of an index, referrers
//! (signatures, SBOMs) and copy-paste pull commands.

use std::fmt::Write as _;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use model::{Digest, Reference};
use registry::{ImageIdInput, Principal, RegistryError, RepositoryRef, TagStatus};
use serde_json::Value;

use super::html::{self, esc};
use super::pages::{crumbs, platform_pills, refusal};
use super::session::Session;
use super::{Ui, error_page, html_response};

/// The most of a config blob the UI reads: configs are a few KiB; a larger blob is shown as
/// too large rather than held in memory.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// `os/architecture[/variant]` of a manifest's or config's platform fields.
fn platform(v: &Value) -> Option<String> {
    let os = v.get("os")?.as_str()?;
    let arch = v.get("architecture")?.as_str()?;
    if os == "unknown" && arch == "unknown" {
        return None; // BuildKit's attestation manifests
    }
    Some(match v.get("variant").and_then(Value::as_str) {
        Some(var) => format!("{os}/{arch}/{var}"),
        None => format!("{os}/{arch}"),
    })
}

/// A config blob's bytes, if the principal may download it from the repository
/// (GetDownloadUrlForLayer) and it is not larger than [`MAX_CONFIG_BYTES`].
async fn read_config(
    ui: &Ui,
    who: &Principal,
    r: &RepositoryRef,
    digest: &Digest,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let blob = ui.registry.downloadable_layer(who, r, digest).await?;
    if blob.size > MAX_CONFIG_BYTES as u64 {
        return Ok(None);
    }
    let mut reader = ui.registry.open_blob(digest, None).await?;
    let mut out = Vec::with_capacity(blob.size as usize);
    while let Some(chunk) = reader.body.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Storage(e.into()))?;
        if out.len() + chunk.len() > MAX_CONFIG_BYTES {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// The platforms of an image (its config's) or of an index (each manifest's), when the
/// principal may read them.
pub(super) async fn platforms(
    ui: &Ui,
    who: &Principal,
    r: &RepositoryRef,
    digest: &Digest,
) -> Option<Vec<String>> {
    let rec = ui
        .registry
        .get_manifest(who, r, &Reference::Digest(digest.clone()))
        .await
        .ok()?;
    let v: Value = serde_json::from_slice(&rec.manifest).ok()?;
    if let Some(list) = v.get("manifests").and_then(Value::as_array) {
        return Some(
            list.iter()
                .filter_map(|m| m.get("platform").and_then(platform))
                .collect(),
        );
    }
    let config = Digest::parse(v.get("config")?.get("digest")?.as_str()?).ok()?;
    let bytes = read_config(ui, who, r, &config).await.ok()??;
    let c: Value = serde_json::from_slice(&bytes).ok()?;
    platform(&c).map(|p| vec![p])
}

/// The size of a descriptor, if it has a sane one.
fn size_of(d: &Value) -> Option<u64> {
    d.get("size").and_then(Value::as_u64)
}

fn str_of<'a>(d: &'a Value, key: &str) -> &'a str {
    d.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) async fn image(
    ui: &Ui,
    s: &Session,
    headers: &HeaderMap,
    r: &RepositoryRef,
    reference: &Reference,
) -> Response {
    let who = &s.principal;
    let rec = match ui.registry.get_manifest(who, r, reference).await {
        Ok(rec) => rec,
        Err(e) => return error_page(Some(s), &e),
    };
    let digest = rec.digest.clone();
    // Its tags, as DescribeImages lists them (a principal without DescribeImages still sees
    // the manifest BatchGetImage gave it).
    let tags = ui
        .registry
        .describe_images(
            who,
            r,
            Some(&[ImageIdInput {
                digest: Some(digest.to_string()),
                tag: None,
            }]),
            TagStatus::Any,
            registry::StatusFilter::Any,
            registry::Page::default(),
        )
        .await
        .ok()
        .map(|(v, _)| v.into_iter().next().map(|i| i.tags).unwrap_or_default());
    let manifest_text = String::from_utf8_lossy(&rec.manifest).into_owned();
    let v: Value = serde_json::from_slice(&rec.manifest).unwrap_or(Value::Null);
    let name = r.name.as_str();
    let host = ui.registry_host(headers);

    let mut body = String::new();
    let title = match reference {
        Reference::Tag(t) => format!("{name}:{t}"),
        Reference::Digest(_) => format!("{name}@{}", html::short_text(digest.as_str())),
    };
    let tag_pills: String = match &tags {
        None => r#"<span class="muted" title="DescribeImages is not allowed">not shown</span>"#
            .to_owned(),
        Some(t) if t.is_empty() => r#"<span class="muted">untagged</span>"#.to_owned(),
        Some(t) => t
            .iter()
            .map(|t| format!(r#"<span class="tag">{}</span>"#, esc(t.as_str())))
            .collect(),
    };
    let tags = tags.unwrap_or_default();
    let _ = write!(
        body,
        r#"<h1>{title}</h1><p class="sub"><code>{digest}</code></p>
<div class="panel pad meta">
<div><span>Type</span><strong title="{mt}">{label}</strong></div>
<div><span>Size</span><strong>{size}</strong></div>
<div><span>Pushed</span><strong>{pushed}</strong></div>
<div><span>Tags</span><strong>{tag_pills}</strong></div>
</div>"#,
        title = esc(&title),
        digest = esc(digest.as_str()),
        mt = esc(&rec.media_type),
        label = esc(html::media_type_label(&rec.media_type)),
        size = html::bytes(rec.size),
        pushed = esc(&html::time(rec.pushed_at)),
    );

    // Pull commands, by the tag it was opened with (or its first tag) and by digest.
    let by_tag = match reference {
        Reference::Tag(t) => Some(t.to_string()),
        Reference::Digest(_) => tags.first().map(ToString::to_string),
    };
    let insecure = ui.config.scheme == "http";
    let image_ref = |suffix: &str| format!("{host}/{name}{suffix}");
    let mut cmds = String::new();
    let refs: Vec<String> = by_tag
        .iter()
        .map(|t| image_ref(&format!(":{t}")))
        .chain(std::iter::once(image_ref(&format!("@{digest}"))))
        .collect();
    let first = &refs[0];
    cmds.push_str(&html::copyable(&format!("docker pull {first}")));
    cmds.push_str(&html::copyable(&format!(
        "podman pull {}{first}",
        if insecure { "--tls-verify=false " } else { "" }
    )));
    cmds.push_str(&html::copyable(&format!(
        "skopeo copy {}docker://{first} oci:{}",
        if insecure {
            "--src-tls-verify=false "
        } else {
            ""
        },
        name.rsplit('/').next().unwrap_or(name)
    )));
    if refs.len() > 1 {
        cmds.push_str(&html::copyable(&format!("docker pull {}", refs[1])));
    }
    let _ = write!(
        body,
        r#"<h2>Pull</h2><div class="panel pad">{cmds}<p class="muted">Sign the client in first: <code>aws ecr get-login-password | docker login --username AWS --password-stdin {}</code></p></div>"#,
        esc(&host)
    );

    if let Some(list) = v.get("manifests").and_then(Value::as_array) {
        body.push_str(&index_section(r, list));
    } else {
        body.push_str(&image_sections(ui, who, r, &v).await);
    }

    // Referrers: signatures, SBOMs, attestations that name this image as their subject.
    let referrers = match ui.registry.referrers(who, r, &digest, None).await {
        Ok(list) if list.is_empty() => {
            r#"<div class="empty">No signatures, SBOMs or other artifacts refer to this image.</div>"#
                .to_owned()
        }
        Ok(list) => {
            let mut rows = String::new();
            for x in &list {
                let _ = write!(
                    rows,
                    r#"<tr><td><a href="/ui/r/{n}/-/image/{d}">{short}</a></td><td>{kind}</td><td>{mt}</td><td class="num">{size}</td></tr>"#,
                    n = esc(name),
                    d = esc(x.digest.as_str()),
                    short = html::short_digest(x.digest.as_str()),
                    kind = esc(x.artifact_type.as_deref().unwrap_or("")),
                    mt = esc(html::media_type_label(&x.media_type)),
                    size = html::bytes(x.size),
                );
            }
            format!(
                r#"<table><thead><tr><th>Digest</th><th>Artifact type</th><th>Type</th><th class="num">Size</th></tr></thead><tbody>{rows}</tbody></table>"#
            )
        }
        Err(e) => format!(r#"<div class="pad">{}</div>"#, refusal(&e)),
    };
    let _ = write!(
        body,
        r#"<h2>Referrers</h2><div class="panel">{referrers}</div>
<h2>Manifest</h2><details open><summary>{mt}</summary><p class="muted">Formatted for reading; the digest is over the bytes as pushed.</p>{json}</details>"#,
        mt = esc(&rec.media_type),
        json = html::json_block(&manifest_text),
    );
    let mut trail = crumbs(r);
    trail.push((String::new(), title.clone()));
    html_response(StatusCode::OK, html::page(&title, Some(s), &trail, &body))
}

/// An index's manifests, one row per platform.
fn index_section(r: &RepositoryRef, list: &[Value]) -> String {
    let mut rows = String::new();
    for m in list {
        let d = str_of(m, "digest");
        let p = m.get("platform").and_then(platform);
        let _ = write!(
            rows,
            r#"<tr><td>{p}</td><td><a href="/ui/r/{n}/-/image/{d}">{short}</a></td><td>{mt}</td><td class="num">{size}</td></tr>"#,
            p = platform_pills(p.as_ref().map(std::slice::from_ref)),
            n = esc(r.name.as_str()),
            d = esc(d),
            short = html::short_digest(d),
            mt = esc(html::media_type_label(str_of(m, "mediaType"))),
            size = size_of(m).map_or(String::new(), html::bytes),
        );
    }
    format!(
        r#"<h2>Platforms</h2><div class="panel"><table><thead><tr><th>Platform</th><th>Manifest</th><th>Type</th><th class="num">Size</th></tr></thead><tbody>{rows}</tbody></table></div>"#
    )
}

/// An image's config summary and its layers.
async fn image_sections(ui: &Ui, who: &Principal, r: &RepositoryRef, v: &Value) -> String {
    let mut out = String::new();
    let layers = v
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total: u64 = layers.iter().filter_map(size_of).sum();
    let mut rows = String::new();
    for (i, l) in layers.iter().enumerate() {
        let _ = write!(
            rows,
            r#"<tr class="layer"><td class="num">{n}</td><td><code class="digest">{d}</code></td><td>{mt}</td><td class="num size" data-bytes="{b}">{size}</td></tr>"#,
            n = i + 1,
            d = esc(str_of(l, "digest")),
            mt = esc(str_of(l, "mediaType")),
            b = size_of(l).unwrap_or(0),
            size = size_of(l).map_or(String::new(), html::bytes),
        );
    }
    let config = v.get("config");
    let config_digest = config
        .map(|c| str_of(c, "digest"))
        .and_then(|d| Digest::parse(d).ok());
    let config_html = match &config_digest {
        Some(d) => match read_config(ui, who, r, d).await {
            Ok(Some(bytes)) => {
                let c: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let cfg = c.get("config").cloned().unwrap_or(Value::Null);
                let field = |k: &str| -> String {
                    match cfg.get(k) {
                        Some(Value::Array(a)) => a
                            .iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(" "),
                        Some(Value::String(s)) => s.clone(),
                        _ => String::new(),
                    }
                };
                format!(
                    r#"<div class="panel pad meta">
<div><span>Platform</span><strong>{platform}</strong></div>
<div><span>Created</span><strong>{created}</strong></div>
<div><span>Entrypoint</span><strong class="mono">{entry}</strong></div>
<div><span>Command</span><strong class="mono">{cmd}</strong></div>
</div>
<details><summary>Config <code>{digest}</code></summary>{json}</details>"#,
                    platform = esc(&platform(&c).unwrap_or_default()),
                    created = esc(str_of(&c, "created")),
                    entry = esc(&field("Entrypoint")),
                    cmd = esc(&field("Cmd")),
                    digest = esc(d.as_str()),
                    json = html::json_block(&String::from_utf8_lossy(&bytes)),
                )
            }
            Ok(None) => r#"<p class="muted">The config is too large to show.</p>"#.to_owned(),
            Err(e) => refusal(&e),
        },
        None => String::new(),
    };
    let _ = write!(
        out,
        r#"<h2>Config</h2>{config_html}
<h2>Layers <span class="muted">{count} · {total}</span></h2>
<div class="panel"><table id="layers"><thead><tr><th class="num">#</th><th>Digest</th><th>Media type</th><th class="num">Size</th></tr></thead><tbody>{rows}</tbody></table></div>"#,
        count = layers.len(),
        total = html::bytes(total),
    );
    out
}
