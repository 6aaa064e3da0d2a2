//! Request bodies: read up to a limit (413 beyond it) and parsed as JSON
//! (400 naming the parse error), so every refusal has a JSON body.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Reads at most `limit` bytes. A larger body is refused with 413 after
/// reading (and discarding) up to 8 × `limit` of it, so that an ordinary
/// client gets the JSON answer instead of a connection reset mid-upload.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    };
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("body_read_failed", format!("could not read body: {e}"))
        })?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit.saturating_mul(8) {
            return Err(too_large());
        }
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        Err(too_large())
    } else {
        Ok(Bytes::from(buf))
    }
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
