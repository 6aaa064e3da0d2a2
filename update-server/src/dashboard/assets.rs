//! The dashboard's two static files, compiled into the binary: the
//! stylesheet and the small script that refreshes live regions.

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

/// `GET /ui/static/app.css`.
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}

/// `GET /ui/static/app.js`.
pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
}
