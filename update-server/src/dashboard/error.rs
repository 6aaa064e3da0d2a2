//! What a dashboard request answers when it cannot show its page: a
//! redirect to the login page, or an HTML page saying what was refused and
//! why (a viewer posting a change, a stale form, an unknown rollout).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::bare_page;
use crate::error::ApiError;
use crate::store::StoreError;

/// A dashboard refusal.
#[derive(Debug, thiserror::Error)]
pub enum DashError {
    /// No valid session: log in first (a page redirects, a live fragment
    /// answers 401 so the script can say so).
    #[error("not logged in")]
    LoggedOut {
        /// Whether the request was for a live fragment.
        fragment: bool,
    },
    /// Anything else, with its HTTP status.
    #[error("{status}: {message}")]
    Refused {
        /// Status.
        status: StatusCode,
        /// What to tell the user.
        message: String,
        /// The form field to blame, if one is.
        field: Option<&'static str>,
    },
}

impl DashError {
    /// A refusal with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        DashError::Refused {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 blaming form field `field`.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        DashError::Refused {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field),
        }
    }

    /// 403: a viewer tried to change something.
    pub fn viewer() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "your token has the viewer role: viewers can look but not change anything",
        )
    }

    /// 403: the form's CSRF secret is missing or wrong.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "this form is stale or was not sent from this dashboard; reload the page and try again",
        )
    }
}

impl From<ApiError> for DashError {
    fn from(e: ApiError) -> Self {
        DashError::Refused {
            status: e.status,
            message: e.message,
            field: e.field,
        }
    }
}

impl From<StoreError> for DashError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        match self {
            DashError::LoggedOut { fragment: true } => (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "logged out",
            )
                .into_response(),
            DashError::LoggedOut { fragment: false } => Redirect::to("/ui/login").into_response(),
            DashError::Refused {
                status,
                message,
                field,
            } => {
                let title = status.canonical_reason().unwrap_or("Refused");
                let body = html! {
                    h1 { (title) }
                    p.error data-error=(status.as_u16()) data-field=[field] {
                        @if let Some(f) = field { "Field " strong { (f) } ": " }
                        (message)
                    }
                    p { a href="/ui/" { "Back to the overview" } }
                };
                (status, bare_page(title, body)).into_response()
            }
        }
    }
}
