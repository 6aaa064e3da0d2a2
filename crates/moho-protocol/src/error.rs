//! The JSON body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
//! `code` is stable and machine-readable; `message` is for people and names
//! the offending value; `field`, when one field of the request is to blame,
//! names it (`board`, `booted.version`, ...).

use serde::{Deserialize, Serialize};

/// The error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code, e.g. `bad_signature`, `replayed_request`, `unknown_channel`.
    pub code: String,
    /// Human-readable explanation naming what was wrong.
    pub message: String,
    /// The request field that was refused, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The whole error document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The error.
    pub error: ErrorBody,
}

impl ApiError {
    /// Builds an error document.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorBody {
                code: code.into(),
                message: message.into(),
                field: None,
            },
        }
    }

    /// The same error, blaming one field of the request.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.error.field = Some(field.into());
        self
    }
}
