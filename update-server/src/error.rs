//! HTTP errors: every refusal is a 4xx (or 5xx) with the JSON body of
//! `moho_protocol::ApiError`, a stable code and a message naming the value.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use moho_protocol::ApiError as ErrorDoc;

use crate::store::StoreError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Message.
    pub message: String,
    /// The request field to blame, if one is.
    pub field: Option<&'static str>,
    /// `Retry-After` seconds (with 429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }
    /// 429 with `Retry-After`: the source sent too many requests of `what`.
    pub fn too_many(what: &str, too_many: crate::http::limits::TooMany) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many {what} from this address: retry in {} s",
                too_many.retry_after_secs
            ),
        );
        e.retry_after = Some(too_many.retry_after_secs);
        e
    }
    /// The same error, naming the request field that was refused.
    pub fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 401.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    /// 403.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// 422.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::NotStored(_) = e {
            return Self::new(StatusCode::CONFLICT, "check_in_not_stored", e.to_string());
        }
        tracing::error!("storage: {e}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            e.to_string(),
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::from(StoreError::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut doc = ErrorDoc::new(self.code, self.message);
        if let Some(field) = self.field {
            doc = doc.with_field(field);
        }
        let mut resp = (self.status, Json(doc)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
