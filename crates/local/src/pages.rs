//! The hosted pages of `web/`, compiled into the binary, sent with a strict CSP and no referrer.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Web;

/// The Content-Security-Policy of every page and asset: nothing inline, nothing from elsewhere
/// (but `elsewhere`, the origins the registration page signs in at when it signs in through an
/// issuer: its discovery document, and its token endpoint; space-separated).
pub fn csp(elsewhere: Option<&str>) -> String {
    let connect = elsewhere.map_or_else(|| "'self'".to_owned(), |origins| format!("'self' {origins}"));
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )
}

fn asset(name: &str) -> Response {
    let Some(file) = Web::get(name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    ([(header::CONTENT_TYPE, mime)], file.data.into_owned()).into_response()
}

/// The pages, under the policy [`csp`] gives for `elsewhere`.
pub fn router(elsewhere: Option<&str>) -> Router {
    let csp = HeaderValue::from_str(&csp(elsewhere)).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    Router::new()
        .route("/", get(|| async { Redirect::to("/reset") }))
        .route("/reset", get(|| async { asset("reset.html") }))
        .route("/register", get(|| async { asset("register.html") }))
        .route("/web/{file}", get(|Path(file): Path<String>| async move { asset(&file) }))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, csp))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
}
