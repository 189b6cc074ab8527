//! The audit trail: one CloudTrail-shaped JSON record per mutating call and per denied call,
//! appended to a local file that rotates by size, and `berth audit` to read it back.
//!
//! Records carry what CloudTrail's do (eventVersion, eventTime, eventSource, eventName,
//! awsRegion, sourceIPAddress, userAgent, userIdentity, requestParameters, errorCode,
//! errorMessage, requestID, eventID, readOnly, eventType, recipientAccountId). The request
//! parameters are what authorization saw (registry id, repository name): never a secret, a
//! signature, a token, a manifest or a layer's bytes.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};

/// How much one file holds before it is rotated, and how many rotated files are kept.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
pub const KEEP: usize = 5;

/// The response facts a record needs besides the note.
pub(crate) struct Outcome<'a> {
    pub source_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// The error's name: the ECR API's `x-amzn-errortype`, `/v2`'s error code.
    pub error_code: Option<String>,
}

#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    max_bytes: u64,
    file: Mutex<Option<(File, u64)>>,
}

impl AuditLog {
    /// A file berth cannot write (a read-only data directory still serves reads) does not stop
    /// the start: the error is logged, and each record tries the file again.
    pub fn new(path: PathBuf, max_bytes: u64) -> anyhow::Result<Self> {
        let log = Self {
            path,
            max_bytes: max_bytes.max(1024),
            file: Mutex::new(None),
        };
        match Self::open_file(&log.path) {
            Ok(opened) => *log.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(opened),
            Err(e) => tracing::error!(
                path = %log.path.display(),
                error = %e,
                "cannot open the audit log; each record will try again"
            ),
        }
        Ok(log)
    }

    fn open_file(path: &Path) -> std::io::Result<(File, u64)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        let len = f.metadata()?.len();
        Ok((f, len))
    }

    /// The record of one call.
    pub(crate) fn record(&self, note: &registry::AuditNote, out: &Outcome<'_>) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let (kind, user_name) = match note.principal_arn.rsplit_once(":user/") {
            Some((_, path)) => ("IAMUser", path.rsplit('/').next()),
            None if note.principal_arn.ends_with(":root") => ("Root", None),
            None if note.principal_arn.contains(":assumed-role/") => ("AssumedRole", None),
            None => ("Unknown", None),
        };
        let mut identity = json!({
            "type": kind,
            "principalId": note.access_key_id,
            "arn": note.principal_arn,
            "accountId": note.account_id,
            "accessKeyId": note.access_key_id,
        });
        if let Some(u) = user_name {
            identity["userName"] = json!(u);
        }
        let mut params = json!({ "registryId": note.registry_id });
        if let Some(r) = &note.repository {
            params["repositoryName"] = json!(r);
        }
        let error_code = if note.denied.is_some() {
            Some("AccessDeniedException".to_owned())
        } else {
            out.error_code.clone()
        };
        let mut r = json!({
            "eventVersion": "1.08",
            "userIdentity": identity,
            // ISO 8601 UTC with seconds, as CloudTrail writes it.
            "eventTime": registry::format_date(now),
            "eventSource": format!("{}.amazonaws.com", note.service),
            "eventName": note.event_name,
            "awsRegion": note.region,
            "sourceIPAddress": out.source_ip.map(|i| i.to_string()),
            "userAgent": out.user_agent,
            "requestParameters": params,
            "responseElements": null,
            "requestID": out.request_id,
            "eventID": uuid::Uuid::new_v4().to_string(),
            "readOnly": !registry::is_mutating(&note.event_name),
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": note.registry_id,
        });
        if let Some(code) = error_code {
            r["errorCode"] = json!(code);
            r["errorMessage"] = json!(note.denied.clone().unwrap_or_default());
        }
        r
    }

    /// Appends one record and syncs it to disk before the response leaves, rotating the file
    /// past its size. A failure to write is logged, never a failed request.
    pub(crate) fn append(&self, record: &Value) {
        let mut line = record.to_string();
        line.push('\n');
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard
            .as_ref()
            .is_some_and(|(_, len)| *len + line.len() as u64 > self.max_bytes)
        {
            *guard = None;
            if let Err(e) = rotate(&self.path) {
                tracing::error!(error = %e, "rotating the audit log");
            }
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => *guard = Some((f, 0)),
                Err(e) => tracing::error!(error = %e, "reopening the audit log"),
            }
        }
        if guard.is_none() {
            match Self::open_file(&self.path) {
                Ok(opened) => *guard = Some(opened),
                Err(e) => {
                    tracing::error!(error = %e, "opening the audit log: a record is lost");
                    return;
                }
            }
        }
        let Some((f, len)) = guard.as_mut() else {
            return;
        };
        match f.write_all(line.as_bytes()).and_then(|()| f.sync_data()) {
            Ok(()) => *len += line.len() as u64,
            Err(e) => tracing::error!(error = %e, "writing the audit log"),
        }
    }
}

/// `audit.log` -> `audit.log.1` -> ... -> `audit.log.<KEEP>` (dropped).
fn rotate(path: &Path) -> std::io::Result<()> {
    let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
    for n in (1..KEEP).rev() {
        if numbered(n).exists() {
            std::fs::rename(numbered(n), numbered(n + 1))?;
        }
    }
    std::fs::rename(path, numbered(1))
}

/// What `berth audit` selects.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Filter {
    /// Only records at or after this time (ISO 8601, e.g. 2026-12-07T00:00:00Z; compared as text).
    #[arg(long)]
    pub since: Option<String>,
    /// Only records before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Only records whose principal ARN, access key id or user name contains this.
    #[arg(long)]
    pub principal: Option<String>,
    /// Only records about this repository.
    #[arg(long)]
    pub repository: Option<String>,
    /// Only records of this event (operation), e.g. PutImage.
    #[arg(long)]
    pub event: Option<String>,
    /// Only denied or failed calls.
    #[arg(long)]
    pub errors: bool,
}

impl Filter {
    fn matches(&self, r: &Value) -> bool {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let time = s(&r["eventTime"]);
        let id = &r["userIdentity"];
        self.since
            .as_ref()
            .is_none_or(|t| time.as_str() >= t.as_str())
            && self
                .until
                .as_ref()
                .is_none_or(|t| time.as_str() < t.as_str())
            && self.principal.as_ref().is_none_or(|p| {
                [&id["arn"], &id["accessKeyId"], &id["userName"]]
                    .iter()
                    .any(|v| s(v).contains(p.as_str()))
            })
            && self
                .repository
                .as_ref()
                .is_none_or(|n| s(&r["requestParameters"]["repositoryName"]) == *n)
            && self.event.as_ref().is_none_or(|e| s(&r["eventName"]) == *e)
            && (!self.errors || r.get("errorCode").is_some())
    }
}

/// Writes the records of `path` and its rotated files, oldest first, that `filter` selects, one
/// JSON object a line. Answers how many.
pub fn search(path: &Path, filter: &Filter, out: &mut impl Write) -> anyhow::Result<usize> {
    let mut files: Vec<PathBuf> = (1..=KEEP)
        .rev()
        .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
        .collect();
    files.push(path.to_path_buf());
    let mut n = 0;
    for f in files.iter().filter(|f| f.exists()) {
        let reader =
            BufReader::new(File::open(f).with_context(|| format!("reading {}", f.display()))?);
        for line in reader.lines() {
            let line = line?;
            let Ok(r) = serde_json::from_str::<Value>(&line) else {
                continue; // a torn last line after a crash
            };
            if filter.matches(&r) {
                writeln!(out, "{line}")?;
                n += 1;
            }
        }
    }
    Ok(n)
}
