//! `/v2/...` path routing: `oci_api::route::parse` of the path after `/v2/`. A route must
//! account for every byte of the path, so rendering it back gives the path again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::RepositoryName;
use oci_api::route::{Route, RouteError, parse};

fn render(r: &Route) -> String {
    match r {
        Route::Base => String::new(),
        Route::Catalog => "_catalog".into(),
        Route::Blob(n, d) => format!("{n}/blobs/{d}"),
        Route::Uploads(n) => format!("{n}/blobs/uploads/"),
        Route::Upload(n, id) => format!("{n}/blobs/uploads/{id}"),
        Route::Manifest(n, r) => format!("{n}/manifests/{r}"),
        Route::Tags(n) => format!("{n}/tags/list"),
        Route::Referrers(n, d) => format!("{n}/referrers/{d}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(rest) = std::str::from_utf8(data) else {
        return;
    };
    match parse(rest) {
        Ok(route) => {
            let path = render(&route);
            let uploads_without_slash =
                matches!(route, Route::Uploads(_)) && path.strip_suffix('/') == Some(rest);
            assert!(
                path == rest || uploads_without_slash,
                "{rest:?} -> {route:?}"
            );
            if let Route::Blob(_, last)
            | Route::Upload(_, last)
            | Route::Manifest(_, last)
            | Route::Referrers(_, last) = &route
            {
                assert!(!last.is_empty() && !last.contains('/'), "{route:?}");
            }
            assert_eq!(parse(&path), Ok(route));
        }
        Err(RouteError::NameInvalid(n)) => {
            assert!(RepositoryName::parse(&n).is_err(), "{n:?} is a valid name");
            assert!(rest.starts_with(&n), "{n:?} is not from {rest:?}");
        }
        Err(RouteError::NotFound) => {}
    }
});
