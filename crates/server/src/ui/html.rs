//! HTML by hand: every page is a `String` built with `format!`, and every value that did not
//! come from this file goes through [`esc`] (text and attribute values alike) or [`url`]
//! (query values). A template crate would add a proc-macro build to a 2-core CI for a dozen
//! small pages; the rule "esc() on every interpolation" is easy to review, and the tests push
//! hostile names, annotations and policies through every page.

use std::fmt::Write as _;

use registry::{ImageState, ImageStatus};

use super::Here;
use super::session::Session;

/// The stylesheet, the copy-button script and the icon, compiled into the binary.
pub(super) const STYLE: &str = include_str!("style.css");
pub(super) const SCRIPT: &str = include_str!("app.js");
pub(super) const ICON: &str = include_str!("icon.svg");

/// Escapes text for an HTML text node or a quoted attribute value.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub(super) fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Bytes in binary units, as `docker images` and registries' consoles show sizes.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A timestamp (epoch milliseconds) as `2026-12-07 03:35 UTC`.
pub(super) fn time(millis: i64) -> String {
    let iso = registry::format_date(millis);
    // `2026-12-07T03:35:34Z` -> date and minutes.
    match (iso.get(..10), iso.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t} UTC"),
        _ => iso,
    }
}

/// A short name for the manifest media types registries hold; others as they are.
pub(super) fn media_type_label(mt: &str) -> &str {
    match mt {
        "application/vnd.oci.image.manifest.v1+json" => "OCI image",
        "application/vnd.oci.image.index.v1+json" => "OCI index",
        "application/vnd.docker.distribution.manifest.v2+json" => "Docker image",
        "application/vnd.docker.distribution.manifest.list.v2+json" => "Docker manifest list",
        "application/vnd.docker.distribution.manifest.v1+prettyjws"
        | "application/vnd.docker.distribution.manifest.v1+json" => "Docker schema 1",
        other => other,
    }
}

/// A digest shortened for tables (`sha256:0123456789ab`), with the whole in a tooltip.
pub(super) fn short_digest(d: &str) -> String {
    format!("<code title=\"{}\">{}</code>", esc(d), esc(&short_text(d)))
}

/// A digest shortened for titles (`sha256:0123456789ab`).
pub(super) fn short_text(d: &str) -> String {
    d.chars().take(19).collect()
}

/// A UI path (with or without a query) that keeps `region` (`None`: the default region, whose
/// URLs carry none).
pub(super) fn in_region(path: &str, region: Option<&str>) -> String {
    match region {
        None => path.to_owned(),
        Some(r) => {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}region={}", url(r))
        }
    }
}

/// `<account>.dkr.ecr.<region>.<domain>`, with the port clients reach berth on (that of
/// `host`), as `repositoryUri` names a registry when `registry-domain` is set.
pub(super) fn regional_host(account: &str, region: &str, domain: &str, host: &str) -> String {
    let port = host
        .rsplit_once(':')
        .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(String::new(), |(_, p)| format!(":{p}"));
    format!(
        "{account}.dkr.ecr.{region}.{}{port}",
        domain.trim_end_matches('.')
    )
}

/// An image's status (ECR's `imageStatus`) as a badge.
pub(super) fn status_badge(status: ImageStatus) -> String {
    let (class, label) = match status {
        ImageStatus::Active => ("active", "Active"),
        ImageStatus::Archived => ("archived", "Archived"),
        ImageStatus::Activating => ("activating", "Activating"),
    };
    format!(
        r#"<span class="status {class}" data-status="{}">{label}</span>"#,
        status.as_str()
    )
}

/// The storage class an image is in, as UpdateImageStorageClass names them: an image being
/// restored is on its way to STANDARD.
pub(super) fn storage_class(status: ImageStatus) -> &'static str {
    match status {
        ImageStatus::Active | ImageStatus::Activating => "STANDARD",
        ImageStatus::Archived => "ARCHIVE",
    }
}

/// What the archive times say of an image at `now` (epoch milliseconds), in words: when it
/// was archived, when its restore completes or completed; empty for an image never archived.
pub(super) fn archive_note(state: &ImageState, now: i64) -> String {
    let archived = state.last_archived_at.map(time);
    match (
        state.status(now),
        archived,
        state.last_activated_at.map(time),
    ) {
        (ImageStatus::Archived, Some(a), _) => format!("Archived {a}"),
        (ImageStatus::Archived, None, _) => "Archived".to_owned(),
        (ImageStatus::Activating, _, Some(r)) => format!("Restoring, pullable from {r}"),
        (ImageStatus::Activating, _, None) => "Restoring".to_owned(),
        (ImageStatus::Active, Some(a), Some(r)) => format!("Archived {a}, restored {r}"),
        (ImageStatus::Active, Some(a), None) => format!("Archived {a}"),
        (ImageStatus::Active, None, Some(r)) => format!("Restored {r}"),
        (ImageStatus::Active, None, None) => String::new(),
    }
}

/// `lastRecordedPullTime`, or a dash with a tooltip when no pull is recorded.
pub(super) fn last_pull(at: Option<i64>) -> String {
    match at {
        Some(t) => format!(r#"<span class="pulled">{}</span>"#, esc(&time(t))),
        None => r#"<span class="muted" title="No pull recorded">—</span>"#.to_owned(),
    }
}

/// The header's region picker: a GET form to the repository list of the region chosen, a
/// list of the configured regions, or a field for any region name with suggestions.
pub(super) fn region_picker(here: &Here) -> String {
    if here.pinned {
        return format!(
            r#"<span class="region" title="A registry token opens the registries of its own region">Region <strong>{}</strong></span>"#,
            esc(&here.region)
        );
    }
    let control = if here.free_text {
        let options: String = here
            .choices
            .iter()
            .map(|c| format!(r#"<option value="{}">"#, esc(c)))
            .collect();
        format!(
            r#"<input type="text" id="region" name="region" value="{}" list="regions" size="13" spellcheck="false" autocomplete="off" aria-label="Region"><datalist id="regions">{options}</datalist>"#,
            esc(&here.region)
        )
    } else {
        let options: String = here
            .choices
            .iter()
            .map(|c| {
                format!(
                    r#"<option value="{c}"{sel}>{c}</option>"#,
                    c = esc(c),
                    sel = if *c == here.region { " selected" } else { "" }
                )
            })
            .collect();
        format!(r#"<select id="region" name="region" aria-label="Region">{options}</select>"#)
    };
    format!(
        r#"<form class="region" method="get" action="/ui/"><label for="region">Region</label>{control}<button type="submit" class="quiet">Go</button></form>"#
    )
}

/// A link in the breadcrumb trail: (href, label), both raw.
pub(super) type Crumb = (String, String);

/// A whole page: head, header with the region, the signed-in principal and a logout button,
/// breadcrumbs, then `body` (already HTML).
pub(super) fn page(
    title: &str,
    session: Option<&Session>,
    here: Option<&Here>,
    crumbs: &[Crumb],
    body: &str,
) -> String {
    let mut header = String::new();
    if let Some(s) = session {
        let _ = write!(
            header,
            r#"<div class="who">{picker}<span title="{arn}">{arn}</span>
<form method="post" action="/ui/logout"><button class="link" type="submit">Sign out</button></form></div>"#,
            picker = here.map_or(String::new(), region_picker),
            arn = esc(&s.principal.arn)
        );
    }
    let home = here.map_or("/ui/".to_owned(), |h| h.link("/ui/"));
    let mut trail = String::new();
    if !crumbs.is_empty() {
        trail.push_str(r#"<nav class="crumbs" aria-label="Breadcrumb">"#);
        for (i, (href, label)) in crumbs.iter().enumerate() {
            if i > 0 {
                trail.push_str(r#"<span class="sep">/</span>"#);
            }
            if i + 1 == crumbs.len() {
                let _ = write!(trail, "<span>{}</span>", esc(label));
            } else {
                let _ = write!(trail, r#"<a href="{}">{}</a>"#, esc(href), esc(label));
            }
        }
        trail.push_str("</nav>");
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title} · berth</title>
<link rel="stylesheet" href="/ui/static/style.css">
<link rel="icon" href="/ui/static/icon.svg" type="image/svg+xml">
<script src="/ui/static/app.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="{home}"><img src="/ui/static/icon.svg" alt="" width="22" height="22">berth</a>{header}</header>
<main>
{trail}
{body}
</main>
<footer>berth {version}</footer>
</body>
</html>
"#,
        title = esc(title),
        home = esc(&home),
        version = esc(crate::VERSION),
    )
}

/// A `<pre>` block with a copy button (the script copies the text of the block).
pub(super) fn copyable(text: &str) -> String {
    format!(
        r#"<div class="copy"><pre><code>{}</code></pre><button type="button" class="copy-btn" aria-label="Copy">Copy</button></div>"#,
        esc(text)
    )
}

/// JSON pretty-printed (or the text as it is when it is not JSON), escaped, in a `<pre>`.
pub(super) fn json_block(text: &str) -> String {
    let pretty = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned());
    format!(r#"<pre class="json"><code>{}</code></pre>"#, esc(&pretty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(url("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn sizes_and_times_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn links_keep_a_region_other_than_the_default() {
        assert_eq!(in_region("/ui/r/a/b", None), "/ui/r/a/b");
        assert_eq!(
            in_region("/ui/r/a/b", Some("eu-west-1")),
            "/ui/r/a/b?region=eu-west-1"
        );
        assert_eq!(
            in_region("/ui/r/a?tab=tags&after=x", Some("eu-west-1")),
            "/ui/r/a?tab=tags&after=x&region=eu-west-1"
        );
    }

    #[test]
    fn regional_hosts_keep_the_port_clients_use() {
        assert_eq!(
            regional_host("123456789012", "eu-west-1", "example.com", "127.0.0.1:5000"),
            "123456789012.dkr.ecr.eu-west-1.example.com:5000"
        );
        assert_eq!(
            regional_host("123456789012", "us-east-1", "localhost.", "berth.example"),
            "123456789012.dkr.ecr.us-east-1.localhost"
        );
        // A bracketed IPv6 literal has no port after its last colon.
        assert_eq!(
            regional_host("123456789012", "us-east-1", "d", "[::1]"),
            "123456789012.dkr.ecr.us-east-1.d"
        );
    }

    #[test]
    fn archive_states_read_as_the_console_words_them() {
        const HOUR: i64 = 3_600_000;
        let archived = ImageState {
            archived: true,
            last_archived_at: Some(HOUR),
            ..Default::default()
        };
        assert_eq!(
            archive_note(&archived, 2 * HOUR),
            "Archived 1970-01-01 01:00 UTC"
        );
        assert!(status_badge(archived.status(2 * HOUR)).contains(r#"data-status="ARCHIVED""#));
        assert_eq!(storage_class(archived.status(2 * HOUR)), "ARCHIVE");
        let restoring = ImageState {
            archived: false,
            last_activated_at: Some(3 * HOUR),
            ..archived
        };
        assert_eq!(
            archive_note(&restoring, 2 * HOUR),
            "Restoring, pullable from 1970-01-01 03:00 UTC"
        );
        assert_eq!(restoring.status(2 * HOUR), ImageStatus::Activating);
        assert_eq!(storage_class(ImageStatus::Activating), "STANDARD");
        assert_eq!(
            archive_note(&restoring, 4 * HOUR),
            "Archived 1970-01-01 01:00 UTC, restored 1970-01-01 03:00 UTC"
        );
        assert_eq!(archive_note(&ImageState::default(), 0), "");
        assert!(status_badge(ImageStatus::Active).contains(">Active<"));
    }

    #[test]
    fn pull_times_show_or_say_none_was_recorded() {
        assert_eq!(
            last_pull(Some(0)),
            r#"<span class="pulled">1970-01-01 00:00 UTC</span>"#
        );
        assert!(last_pull(None).contains("No pull recorded"));
    }
}
