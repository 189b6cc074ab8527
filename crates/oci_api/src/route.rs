//! `/v2/...` paths to routes. Repository names contain `/`, so the path is split from the
//! right on the last keyword (`blobs`, `manifests`, `tags`, `referrers`), which a name
//! component cannot be followed by in a valid route.

use model::RepositoryName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/blobs/<digest>`
    Blob(RepositoryName, String),
    /// `/v2/<name>/blobs/uploads/`
    Uploads(RepositoryName),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(RepositoryName, String),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(RepositoryName, String),
    /// `/v2/<name>/tags/list`
    Tags(RepositoryName),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(RepositoryName, String),
}

/// Why a path is not a route: unknown shape (404) or an invalid repository name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    NameInvalid(String),
}

fn name(s: &str) -> Result<RepositoryName, RouteError> {
    RepositoryName::parse(s).map_err(|_| RouteError::NameInvalid(s.to_owned()))
}

/// Parses the part of the path after `/v2/`.
pub fn parse(rest: &str) -> Result<Route, RouteError> {
    match rest {
        "" => return Ok(Route::Base),
        "_catalog" => return Ok(Route::Catalog),
        _ => {}
    }
    if let Some(n) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags(name(n)?));
    }
    if let Some(n) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Ok(Route::Uploads(name(n)?));
    }
    if let Some((n, id)) = rest.rsplit_once("/blobs/uploads/")
        && !id.is_empty()
        && !id.contains('/')
    {
        return Ok(Route::Upload(name(n)?, id.to_owned()));
    }
    for (kw, make) in [
        (
            "/blobs/",
            Route::Blob as fn(RepositoryName, String) -> Route,
        ),
        ("/manifests/", Route::Manifest),
        ("/referrers/", Route::Referrers),
    ] {
        if let Some((n, last)) = rest.rsplit_once(kw)
            && !last.is_empty()
            && !last.contains('/')
        {
            return Ok(make(name(n)?, last.to_owned()));
        }
    }
    Err(RouteError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    #[test]
    fn routes_from_the_spec() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(parse(""), Ok(Route::Base));
        assert_eq!(parse("_catalog"), Ok(Route::Catalog));
        assert_eq!(parse("team/app/tags/list"), Ok(Route::Tags(n("team/app"))));
        assert_eq!(
            parse(&format!("a/b/c/blobs/{d}")),
            Ok(Route::Blob(n("a/b/c"), d.clone()))
        );
        assert_eq!(parse("app/blobs/uploads/"), Ok(Route::Uploads(n("app"))));
        assert_eq!(parse("app/blobs/uploads"), Ok(Route::Uploads(n("app"))));
        assert_eq!(
            parse("org/app/blobs/uploads/0f0e7c1a-1b2c-4d5e-8f90-a1b2c3d4e5f6"),
            Ok(Route::Upload(
                n("org/app"),
                "0f0e7c1a-1b2c-4d5e-8f90-a1b2c3d4e5f6".into()
            ))
        );
        assert_eq!(
            parse("org/app/manifests/v1"),
            Ok(Route::Manifest(n("org/app"), "v1".into()))
        );
        assert_eq!(
            parse(&format!("org/app/referrers/{d}")),
            Ok(Route::Referrers(n("org/app"), d))
        );
        // Names that contain a keyword as a component still route on the last one.
        assert_eq!(
            parse("blobs/manifests/manifests/latest"),
            Ok(Route::Manifest(n("blobs/manifests"), "latest".into()))
        );
    }

    #[test]
    fn rejects_other_paths() {
        assert_eq!(parse("app"), Err(RouteError::NotFound));
        assert_eq!(parse("app/manifests/"), Err(RouteError::NotFound));
        assert_eq!(parse("app/other/x"), Err(RouteError::NotFound));
        assert_eq!(
            parse("Bad/Name/manifests/v1"),
            Err(RouteError::NameInvalid("Bad/Name".into()))
        );
        assert_eq!(
            parse("../etc/manifests/v1"),
            Err(RouteError::NameInvalid("../etc".into()))
        );
    }
}
