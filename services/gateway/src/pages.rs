//! The gateway's pages, compiled into the binary and served from its own origin:
//!
//! - the storefront at `/app/` (`/` leads there): plain HTML, CSS and one JavaScript
//!   module in `assets/app/`, with no framework and no build step, so what runs is what
//!   is in the repository; it calls the public API with a token it keeps in memory;
//! - the public API's interactive page at `GET /docs`: Swagger UI (vendored, unchanged, in
//!   `assets/swagger-ui/`) over the gateway's own `/openapi.json`.
//!
//! Nothing is fetched from anywhere but this origin, which the Content-Security-Policy
//! holds the pages to: no inline script, no other origin, no framing.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// What the page may load and do: its own scripts, styles and calls only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const PAGE: &str = include_str!("../assets/docs.html");
const START: &str = include_str!("../assets/docs.js");
const BUNDLE: &str = include_str!("../assets/swagger-ui/swagger-ui-bundle.js");
const STYLE: &str = include_str!("../assets/swagger-ui/swagger-ui.css");
const STORE: &str = include_str!("../assets/app/index.html");
const STORE_SCRIPT: &str = include_str!("../assets/app/app.js");
const STORE_STYLE: &str = include_str!("../assets/app/app.css");

/// The storefront and its assets: path, content type, body.
const STOREFRONT: [(&str, &str, &str); 3] = [
    ("/app/", "text/html; charset=utf-8", STORE),
    (
        "/app/app.js",
        "text/javascript; charset=utf-8",
        STORE_SCRIPT,
    ),
    ("/app/app.css", "text/css; charset=utf-8", STORE_STYLE),
];

/// The API page and its three assets: path, content type, body.
const ASSETS: [(&str, &str, &str); 4] = [
    ("/docs", "text/html; charset=utf-8", PAGE),
    ("/docs/docs.js", "text/javascript; charset=utf-8", START),
    (
        "/docs/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        BUNDLE,
    ),
    ("/docs/swagger-ui.css", "text/css; charset=utf-8", STYLE),
];

/// A route for each of [`ASSETS`] and [`STOREFRONT`]; `/` and `/app` lead to `/app/`.
pub fn router() -> Router {
    ASSETS
        .into_iter()
        .chain(STOREFRONT)
        .fold(Router::new(), |router, (path, kind, body)| {
            router.route(path, get(move || async move { asset(kind, body) }))
        })
        .route("/", get(|| async { Redirect::to("/app/") }))
        .route("/app", get(|| async { Redirect::to("/app/") }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            // Revalidated each time: the assets change with the binary, and are small
            // beside a round trip on the local network; a CDN in front may cache them.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_under_the_policy() {
        for (path, kind) in [
            ("/docs", "text/html"),
            ("/docs/docs.js", "text/javascript"),
            ("/docs/swagger-ui-bundle.js", "text/javascript"),
            ("/docs/swagger-ui.css", "text/css"),
        ] {
            let res = router()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let h = res.headers();
            assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind));
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
        // Each page loads what the router serves, and runs no inline script.
        for (page, assets) in [(PAGE, &ASSETS[1..]), (STORE, &STOREFRONT[1..])] {
            for (src, _, _) in assets {
                assert!(page.contains(&format!("\"{src}\"")), "{src}");
            }
            assert!(!page.contains("<script>"), "no inline script");
            let handler = page.split(" on").skip(1).any(|rest| {
                let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
                !name.is_empty() && rest[name.len()..].starts_with('=')
            });
            assert!(!handler, "no inline event handler");
        }
    }

    #[tokio::test]
    async fn the_storefront_is_served_under_the_policy_and_the_root_leads_to_it() {
        for (path, _, _) in STOREFRONT {
            let res = router()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(
                res.headers()[header::CONTENT_SECURITY_POLICY],
                CSP,
                "{path}"
            );
        }
        for path in ["/", "/app"] {
            let res = router()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(res.status().is_redirection(), "{path}");
            assert_eq!(res.headers()[header::LOCATION], "/app/");
        }
    }

    /// The storefront puts every name into the page as text: no API for HTML from
    /// strings, no eval, and the token kept in memory only.
    #[test]
    fn the_storefront_builds_the_page_from_text_and_keeps_the_token_in_memory() {
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "localStorage",
            "sessionStorage",
            "document.cookie",
        ] {
            let code: String = STORE_SCRIPT
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            assert!(!code.contains(banned), "app.js uses {banned}");
        }
    }

    /// The vendored files are the package's, unchanged: their digests are the ones
    /// `assets/swagger-ui/VERSION` records.
    #[test]
    fn the_vendored_swagger_ui_is_the_package_unchanged() {
        let record = include_str!("../assets/swagger-ui/VERSION");
        for (name, text) in [("swagger-ui-bundle.js", BUNDLE), ("swagger-ui.css", STYLE)] {
            let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            assert!(
                record.contains(&format!("sha256 {hex}  {name}")),
                "{name}: {hex} is not recorded"
            );
        }
    }
}
