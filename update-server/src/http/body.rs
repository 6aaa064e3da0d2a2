//! Request bodies: read up to a limit (413 beyond it) and parsed as JSON
//! (400 naming the parse error), so every refusal has a JSON body.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Reads at most `limit` bytes.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    })
}

/// Parses JSON.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("invalid JSON body: {e}")))
}

/// Reads and parses.
pub async fn json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    parse_json(&read_limited(body, limit).await?)
}

/// A path parameter that does not parse (e.g. a non-numeric id).
pub fn bad_path(e: PathRejection) -> ApiError {
    ApiError::bad_request(
        "invalid_path",
        format!("invalid path parameter: {}", e.body_text()),
    )
}

/// A query string that does not parse.
pub fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::bad_request(
        "invalid_query",
        format!("invalid query string: {}", e.body_text()),
    )
}
