//! `GET /_berth/public-logos/<alias>/<name>`: the logo of a public repository, which ECR
//! Public's catalog data points at with `logoUrl`. Public, like the catalog data itself: no
//! authentication.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::RepositoryName;

use crate::{OciApi, OciError};

pub(crate) async fn get_logo(State(api): State<OciApi>, Path(rest): Path<String>) -> Response {
    let not_found = || StatusCode::NOT_FOUND.into_response();
    let Some((alias, name)) = rest.split_once('/') else {
        return not_found();
    };
    let Ok(name) = RepositoryName::parse(name) else {
        return not_found();
    };
    match api
        .registries
        .default_region()
        .public_logo(alias, &name)
        .await
    {
        Ok(Some(logo)) => {
            let mut resp = logo.bytes.into_response();
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&logo.content_type) {
                h.insert(header::CONTENT_TYPE, v);
            }
            // The bytes are the uploader's: never let a browser read them as anything else.
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'"),
            );
            resp
        }
        Ok(None) => not_found(),
        Err(e) => OciError::Registry(e).into_response(),
    }
}
