//! Logging in and out. The login form takes an admin or viewer API token;
//! it is protected against cross-site posting by a double-submit cookie
//! (there is no session yet to hold a CSRF secret), and attempts are
//! limited per source address (`429` with `Retry-After`).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::SignedDuration;
use maud::html;
use serde::Deserialize;

use crate::dashboard::error::DashError;
use crate::dashboard::layout::bare_page;
use crate::dashboard::session::{
    LOGIN_COOKIE, SESSION_COOKIE, SESSION_LIFETIME, close_session, cookie, current_user,
    open_session, random_secret, same_secret, set_cookie,
};
use crate::state::AppState;
use crate::tokens::Refusal;

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The API token.
    #[serde(default)]
    pub token: String,
    /// The double-submit secret.
    #[serde(default)]
    pub csrf: String,
}

/// A form that carries only the CSRF secret.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

fn login_page(app: &AppState, secret: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        h1 { "Moho" }
        p { "Log in with an admin or viewer API token ("
            code { "update-server token create --role viewer" } ")." }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(secret);
            p { label { "API token" br; input #token type="password" name="token" autocomplete="off" required size="40"; } }
            p { button.primary type="submit" { "Log in" } }
        }
    };
    let cookie = set_cookie(
        LOGIN_COOKIE,
        secret,
        SignedDuration::from_mins(30),
        app.config.tls,
    );
    (
        status,
        [(header::SET_COOKIE, cookie)],
        bare_page("Log in", body),
    )
        .into_response()
}

fn login_secret(headers: &HeaderMap) -> String {
    cookie(headers, LOGIN_COOKIE)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(random_secret, str::to_owned)
}

/// `GET /ui/login`.
pub async fn form(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, DashError> {
    if current_user(&app, &headers).await?.is_some() {
        return Ok(Redirect::to("/ui/").into_response());
    }
    Ok(login_page(
        &app,
        &login_secret(&headers),
        None,
        StatusCode::OK,
    ))
}

/// `POST /ui/login`.
pub async fn submit(
    State(app): State<AppState>,
    source: crate::http::limits::Source,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, DashError> {
    let Form(f) = form.map_err(|e| DashError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_secret(expected, &f.csrf) {
        return Err(DashError::csrf());
    }
    // Guessing tokens: a few attempts per minute per source.
    if let Err(t) = app
        .limits
        .check(crate::http::limits::Limited::Login, source.0)
    {
        let mut resp = login_page(
            &app,
            &login_secret(&headers),
            Some(&format!(
                "Too many log-in attempts from this address: try again in {} s.",
                t.retry_after_secs
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, t.retry_after_secs.into());
        return Ok(resp);
    }
    let id = match open_session(&app, &f.token, app.clock.now()).await? {
        Ok(id) => id,
        Err(refusal) => {
            let message = match refusal {
                Refusal::Unknown => "unknown or revoked token".to_owned(),
                other => other.message(),
            };
            return Ok(login_page(
                &app,
                &login_secret(&headers),
                Some(&message),
                StatusCode::UNAUTHORIZED,
            ));
        }
    };
    let tls = app.config.tls;
    let mut resp = Redirect::to("/ui/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, SESSION_LIFETIME, tls),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", SignedDuration::ZERO, tls),
    );
    Ok(resp)
}

/// `POST /ui/logout`.
pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, DashError> {
    let Form(f) = form.map_err(|e| DashError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let user = crate::dashboard::require_user(&app, &headers, false).await?;
    if !same_secret(&user.csrf, &f.csrf) {
        return Err(DashError::csrf());
    }
    close_session(&app, &headers).await?;
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", SignedDuration::ZERO, app.config.tls),
        )],
        Redirect::to("/ui/login"),
    )
        .into_response())
}
