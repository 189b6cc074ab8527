//! HTML by hand: every page is a `String` built with `format!`, and every value that did not
//! come from this file goes through [`esc`] (text and attribute values alike) or [`url`]
//! (query values). A template crate would add a proc-macro build to a 2-core CI for a dozen
//! small pages; the rule "esc() on every interpolation" is easy to review, and the tests push
//! hostile names, annotations and policies through every page.

use std::fmt::Write as _;

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

/// A link in the breadcrumb trail: (href, label), both raw.
pub(super) type Crumb = (String, String);

/// A whole page: head, header with the signed-in principal and a logout button, breadcrumbs,
/// then `body` (already HTML).
pub(super) fn page(title: &str, session: Option<&Session>, crumbs: &[Crumb], body: &str) -> String {
    let mut header = String::new();
    if let Some(s) = session {
        let _ = write!(
            header,
            r#"<div class="who"><span title="{arn}">{arn}</span>
<form method="post" action="/ui/logout"><button class="link" type="submit">Sign out</button></form></div>"#,
            arn = esc(&s.principal.arn)
        );
    }
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
<header class="top"><a class="brand" href="/ui/"><img src="/ui/static/icon.svg" alt="" width="22" height="22">berth</a>{header}</header>
<main>
{trail}
{body}
</main>
<footer>berth {version}</footer>
</body>
</html>
"#,
        title = esc(title),
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
}
