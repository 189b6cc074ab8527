//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve: both stores answer).
//!
//! Migrations run before the listener opens (`App::build`), so a process that answers at all
//! has its schema; readiness is then a matter of the two stores answering a cheap probe.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// How long each store has to answer the probe: a load balancer's check interval is a few
/// seconds, and a store slower than this would fail real requests too.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The stores the probe asks.
#[derive(Clone)]
pub struct Probe {
    pub storage: storage::Storage,
}

/// Always 200 while the process serves HTTP.
pub async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// 200 when the metadata store and the blob store both answer within [`PROBE_TIMEOUT`], else
/// 503 with the reason for each store that did not.
pub async fn readyz(State(probe): State<Probe>) -> Response {
    // A digest nothing is stored under, new each time so that no cache answers for the store.
    let absent = model::Digest::sha256_of(uuid::Uuid::new_v4().as_bytes());
    let meta = async {
        // One indexed read of a row that usually does not exist.
        check(probe.storage.meta.registry_policy("000000000000")).await
    };
    let blobs = check(probe.storage.blobs.stat(&absent));
    let (meta, blobs) = tokio::join!(meta, blobs);
    let ready = meta.is_ok() && blobs.is_ok();
    let state = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.clone(),
    };
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {"metadata": state(&meta), "blobs": state(&blobs)},
    });
    if !ready {
        tracing::warn!(metadata = %state(&meta), blobs = %state(&blobs), "not ready");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &body)
}

async fn check<T>(
    probe: impl Future<Output = Result<T, storage::StorageError>>,
) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{e}")),
        Err(_) => Err(format!(
            "no answer within {} s",
            PROBE_TIMEOUT.as_secs_f32()
        )),
    }
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}
