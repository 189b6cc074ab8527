//! One image: its manifest, config, layers with sizes, the platforms of an index, referrers
//! (signatures, SBOMs) and copy-paste pull commands.

use std::fmt::Write as _;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use model::{Digest, Reference};
use registry::{
    ImageIdInput, ImageStatus, ImageSummary, Principal, Registry, RegistryError, RepositoryRef,
    TagStatus,
};
use serde_json::Value;

use super::html::{self, esc};
use super::pages::{crumbs, platform_pills, refusal};
use super::session::Session;
use super::{Here, Ui, error_page, html_response};

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
    registry: &Registry,
    who: &Principal,
    r: &RepositoryRef,
    digest: &Digest,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let blob = registry.downloadable_layer(who, r, digest).await?;
    if blob.size > MAX_CONFIG_BYTES as u64 {
        return Ok(None);
    }
    let mut reader = registry.open_blob(digest, None).await?;
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
    registry: &Registry,
    who: &Principal,
    r: &RepositoryRef,
    digest: &Digest,
) -> Option<Vec<String>> {
    let rec = registry
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
    let bytes = read_config(registry, who, r, &config).await.ok()??;
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

/// The image as DescribeImages describes it (tags, status, times); `None` when the principal
/// may not describe images (BatchGetImage alone still shows the manifest).
async fn describe(
    here: &Here,
    who: &Principal,
    r: &RepositoryRef,
    reference: &Reference,
) -> Option<ImageSummary> {
    let id = match reference {
        Reference::Digest(d) => ImageIdInput {
            digest: Some(d.to_string()),
            tag: None,
        },
        Reference::Tag(t) => ImageIdInput {
            digest: None,
            tag: Some(t.to_string()),
        },
    };
    here.registry
        .describe_images(
            who,
            r,
            Some(&[id]),
            TagStatus::Any,
            registry::StatusFilter::Any,
            registry::Page::default(),
        )
        .await
        .ok()
        .and_then(|(v, _)| v.into_iter().next())
}

/// The title of an image's page.
fn title_of(name: &str, reference: &Reference, digest: &Digest) -> String {
    match reference {
        Reference::Tag(t) => format!("{name}:{t}"),
        Reference::Digest(_) => format!("{name}@{}", html::short_text(digest.as_str())),
    }
}

fn tag_pills(summary: Option<&ImageSummary>) -> String {
    match summary.map(|i| &i.tags) {
        None => r#"<span class="muted" title="DescribeImages is not allowed">not shown</span>"#
            .to_owned(),
        Some(t) if t.is_empty() => r#"<span class="muted">untagged</span>"#.to_owned(),
        Some(t) => t
            .iter()
            .map(|t| format!(r#"<span class="tag">{}</span>"#, esc(t.as_str())))
            .collect(),
    }
}

/// The status, pull and archive cells of an image's summary panel.
fn state_cells(summary: Option<&ImageSummary>, now: i64) -> String {
    let Some(i) = summary else {
        return String::new();
    };
    let status = i.state.status(now);
    let mut out = format!(
        r#"<div><span>Status</span><strong id="image-status">{}</strong></div>
<div><span>Storage class</span><strong>{}</strong></div>
<div><span>Last pull</span><strong id="image-pulled">{}</strong></div>"#,
        html::status_badge(status),
        html::storage_class(status),
        html::last_pull(i.state.last_pulled_at),
    );
    if let Some(t) = i.state.last_archived_at {
        let _ = write!(
            out,
            r#"<div><span>Archived</span><strong>{}</strong></div>"#,
            esc(&html::time(t))
        );
    }
    if let Some(t) = i.state.last_activated_at {
        let _ = write!(
            out,
            r#"<div><span>{}</span><strong>{}</strong></div>"#,
            if status == ImageStatus::Activating {
                "Restore completes"
            } else {
                "Restored"
            },
            esc(&html::time(t))
        );
    }
    out
}

pub(super) async fn image(
    ui: &Ui,
    s: &Session,
    here: &Here,
    headers: &HeaderMap,
    r: &RepositoryRef,
    reference: &Reference,
) -> Response {
    let who = &s.principal;
    let chrome = Some((s, here));
    let rec = match here.registry.get_manifest(who, r, reference).await {
        Ok(rec) => rec,
        Err(e @ RegistryError::ImageArchived { .. }) => {
            return archived_image(s, here, r, reference, &e).await;
        }
        Err(e) => return error_page(chrome, &e),
    };
    let digest = rec.digest.clone();
    // Its tags and status, as DescribeImages lists them (a principal without DescribeImages
    // still sees the manifest BatchGetImage gave it).
    let summary = describe(here, who, r, &Reference::Digest(digest.clone())).await;
    let now = here.registry.now();
    let manifest_text = String::from_utf8_lossy(&rec.manifest).into_owned();
    let v: Value = serde_json::from_slice(&rec.manifest).unwrap_or(Value::Null);
    let name = r.name.as_str();
    let account = r.registry_id.as_deref().unwrap_or(&who.account_id);
    let host = ui.pull_host(headers, here, account);

    let mut body = String::new();
    let title = title_of(name, reference, &digest);
    let _ = write!(
        body,
        r#"<h1>{title}</h1><p class="sub"><code>{digest}</code></p>
<div class="panel pad meta">
<div><span>Type</span><strong title="{mt}">{label}</strong></div>
<div><span>Size</span><strong>{size}</strong></div>
<div><span>Pushed</span><strong>{pushed}</strong></div>
{state}
<div><span>Tags</span><strong>{tag_pills}</strong></div>
</div>"#,
        title = esc(&title),
        digest = esc(digest.as_str()),
        mt = esc(&rec.media_type),
        label = esc(html::media_type_label(&rec.media_type)),
        size = html::bytes(rec.size),
        pushed = esc(&html::time(rec.pushed_at)),
        state = state_cells(summary.as_ref(), now),
        tag_pills = tag_pills(summary.as_ref()),
    );
    let tags = summary.map(|i| i.tags).unwrap_or_default();

    // Pull commands, by the tag it was opened with (or its first tag) and by digest.
    let by_tag = match reference {
        Reference::Tag(t) => Some(t.to_string()),
        Reference::Digest(_) => tags.first().map(ToString::to_string),
    };
    body.push_str(&pull_section(
        ui,
        here,
        host.as_deref(),
        name,
        by_tag.as_deref(),
        &digest,
    ));

    if let Some(list) = v.get("manifests").and_then(Value::as_array) {
        body.push_str(&index_section(here, r, list));
    } else {
        body.push_str(&image_sections(&here.registry, who, r, &v).await);
    }

    // Referrers: signatures, SBOMs, attestations that name this image as their subject.
    let referrers = match here.registry.referrers(who, r, &digest, None).await {
        Ok(list) if list.is_empty() => {
            r#"<div class="empty">No signatures, SBOMs or other artifacts refer to this image.</div>"#
                .to_owned()
        }
        Ok(list) => {
            let mut rows = String::new();
            for x in &list {
                let _ = write!(
                    rows,
                    r#"<tr><td><a href="{href}">{short}</a></td><td>{kind}</td><td>{mt}</td><td class="num">{size}</td></tr>"#,
                    href = esc(&here.link(&format!("/ui/r/{name}/-/image/{}", x.digest))),
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
    let mut trail = crumbs(here, r);
    trail.push((String::new(), title.clone()));
    html_response(
        StatusCode::OK,
        html::page(&title, Some(s), Some(here), &trail, &body),
    )
}

/// Copy-paste pull commands for `host/name` by tag (if any) and by digest, and how to sign
/// the client in; or why there are none in this region.
fn pull_section(
    ui: &Ui,
    here: &Here,
    host: Option<&str>,
    name: &str,
    by_tag: Option<&str>,
    digest: &Digest,
) -> String {
    let Some(host) = host else {
        return format!(
            r#"<h2>Pull</h2><div class="panel pad"><p class="muted">This deployment sets no <code>registry-domain</code>, so <code>/v2</code> clients (docker, podman, skopeo) reach the default region's registry only; the ECR API serves {} as any region.</p></div>"#,
            esc(&here.region)
        );
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
    format!(
        r#"<h2>Pull</h2><div class="panel pad">{cmds}<p class="muted">Sign the client in first: <code>aws ecr get-login-password --region {} | docker login --username AWS --password-stdin {}</code></p></div>"#,
        esc(&here.region),
        esc(host)
    )
}

/// The page of an image out of the standard storage class: BatchGetImage refuses its
/// manifest (so no layers, config or referrers), DescribeImages still describes it.
async fn archived_image(
    s: &Session,
    here: &Here,
    r: &RepositoryRef,
    reference: &Reference,
    refused: &RegistryError,
) -> Response {
    let who = &s.principal;
    let Some(summary) = describe(here, who, r, reference).await else {
        // DescribeImages refused (or the image went meanwhile): BatchGetImage's refusal.
        return error_page(Some((s, here)), refused);
    };
    let now = here.registry.now();
    let status = summary.state.status(now);
    let name = r.name.as_str();
    let title = title_of(name, reference, &summary.digest);
    let (headline, detail) = match status {
        ImageStatus::Activating => (
            "This image is being restored",
            format!(
                "It cannot be pulled until the restore completes{}.",
                summary
                    .state
                    .last_activated_at
                    .map_or(String::new(), |t| format!(" ({})", html::time(t)))
            ),
        ),
        _ => (
            "This image is archived",
            "It cannot be pulled until it is restored to the standard storage class. Its manifest, config and layers are kept, and show here again once it is restored.".to_owned(),
        ),
    };
    let restore = format!(
        "aws ecr update-image-storage-class --region {} --repository-name {name} --image-id imageDigest={} --target-storage-class STANDARD",
        here.region, summary.digest
    );
    let body = format!(
        r#"<h1>{title}</h1><p class="sub"><code>{digest}</code></p>
<div class="notice info" role="status" id="archived-notice"><h2>{headline}</h2><p>{detail}</p></div>
<div class="panel pad meta">
<div><span>Type</span><strong title="{mt}">{label}</strong></div>
<div><span>Size</span><strong>{size}</strong></div>
<div><span>Pushed</span><strong>{pushed}</strong></div>
{state}
<div><span>Tags</span><strong>{tags}</strong></div>
</div>
{restore}"#,
        title = esc(&title),
        digest = esc(summary.digest.as_str()),
        headline = esc(headline),
        detail = esc(&detail),
        mt = esc(&summary.media_type),
        label = esc(html::media_type_label(&summary.media_type)),
        size = html::bytes(summary.size),
        pushed = esc(&html::time(summary.pushed_at)),
        state = state_cells(Some(&summary), now),
        tags = tag_pills(Some(&summary)),
        restore = if status == ImageStatus::Archived {
            format!(
                r#"<h2>Restore</h2><div class="panel pad">{}<p class="muted">Needs <code>ecr:UpdateImageStorageClass</code>. The image is ACTIVATING until the restore completes, then ACTIVE.</p></div>"#,
                html::copyable(&restore)
            )
        } else {
            String::new()
        },
    );
    let mut trail = crumbs(here, r);
    trail.push((String::new(), title.clone()));
    html_response(
        StatusCode::OK,
        html::page(&title, Some(s), Some(here), &trail, &body),
    )
}

/// An index's manifests, one row per platform.
fn index_section(here: &Here, r: &RepositoryRef, list: &[Value]) -> String {
    let mut rows = String::new();
    for m in list {
        let d = str_of(m, "digest");
        let p = m.get("platform").and_then(platform);
        let _ = write!(
            rows,
            r#"<tr><td>{p}</td><td><a href="{href}">{short}</a></td><td>{mt}</td><td class="num">{size}</td></tr>"#,
            p = platform_pills(p.as_ref().map(std::slice::from_ref)),
            href = esc(&here.link(&format!("/ui/r/{}/-/image/{d}", r.name))),
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
async fn image_sections(
    registry: &Registry,
    who: &Principal,
    r: &RepositoryRef,
    v: &Value,
) -> String {
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
        Some(d) => match read_config(registry, who, r, d).await {
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
