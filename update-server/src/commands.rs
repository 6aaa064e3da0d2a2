//! What each command does, given parsed arguments.

use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use jiff::SignedDuration;

use crate::cli::ServeArgs;
use crate::clock::{Clock, SystemClock};
use crate::config::{OmahaConfig, ServerConfig};
use crate::serve::{ServeError, TlsFiles, serve};
use crate::state::AppState;
use crate::store::{Db, StoreError};

/// A command that failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad argument.
    #[error("{0}")]
    Usage(String),
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serving.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A token change that was refused.
    #[error(transparent)]
    Token(#[from] crate::tokens::TokenError),
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// Path concerned.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// `update-server serve`.
pub async fn run_serve(args: ServeArgs) -> Result<(), CommandError> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    if tls.is_none() {
        if !args.listen.ip().is_loopback() && !args.allow_plain_http {
            return Err(CommandError::Usage(format!(
                "refusing plain HTTP on {}: give --tls-cert and --tls-key, or --allow-plain-http",
                args.listen
            )));
        }
        tracing::warn!(
            "serving plain HTTP on {} (no --tls-cert): use TLS for anything but local tests",
            args.listen
        );
    }
    let check_interval: SignedDuration = args.check_interval.parse().map_err(|_| {
        CommandError::Usage(format!(
            "invalid --check-interval {:?}: use e.g. 10m",
            args.check_interval
        ))
    })?;
    let summary_ttl: SignedDuration = args.summary_ttl.parse().map_err(|_| {
        CommandError::Usage(format!(
            "invalid --summary-ttl {:?}: use e.g. 10s",
            args.summary_ttl
        ))
    })?;
    std::fs::create_dir_all(&args.data.data_dir).map_err(|source| CommandError::Io {
        path: args.data.data_dir.display().to_string(),
        source,
    })?;
    let repo_dir = args
        .repo
        .clone()
        .unwrap_or_else(|| args.data.data_dir.join("repo"));
    let mut config = ServerConfig::new(repo_dir);
    config.check_interval = check_interval;
    config.summary_ttl = summary_ttl;
    config.enrollment_token = args.enrollment_token.clone();
    config.repo_url = args.repo_url.clone();
    config.tls = tls.is_some();
    config.online_keys = args.online_keys.clone();
    config.omaha = omaha_config(&args)?;
    config.node_retention = args
        .node_retention_days
        .map(|d| SignedDuration::from_hours(i64::from(d) * 24));
    let default_root = args.data.data_dir.join("trusted-root.json");
    let root_file = args
        .trusted_root
        .clone()
        .or_else(|| default_root.exists().then_some(default_root));
    if let Some(path) = &root_file {
        config.trusted_root = Some(std::fs::read(path).map_err(|source| CommandError::Io {
            path: path.display().to_string(),
            source,
        })?);
    } else {
        tracing::warn!(
            "no --trusted-root: no release can be synced, published or offered until one is given"
        );
    }
    let db = Db::connect(&args.data.database_url()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = AppState::new(db.clone(), clock, config);
    if state.config.trusted_root.is_some() {
        match crate::repository::sync::sync(&state).await {
            Ok(list) => tracing::info!("{} release(s) in the signed repository", list.len()),
            Err(e) => tracing::error!("repository not synced: {e}"),
        }
    }
    let listener = std::net::TcpListener::bind(args.listen).map_err(|source| CommandError::Io {
        path: args.listen.to_string(),
        source,
    })?;
    tracing::info!(
        "listening on {} ({})",
        args.listen,
        if tls.is_some() { "https" } else { "http" }
    );
    let handle = Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let jobs = crate::jobs::spawn(&state, crate::jobs::Schedule::default());
    let warm_state = state.clone();
    tokio::spawn(async move { crate::dashboard::summary::warm(&warm_state).await });
    let result = serve(listener, state, tls.as_ref(), handle).await;
    jobs.stop().await;
    db.close().await;
    Ok(result?)
}

/// The Omaha settings from `--omaha` and `--omaha-app-id`.
fn omaha_config(args: &ServeArgs) -> Result<Option<OmahaConfig>, CommandError> {
    if !args.omaha && args.omaha_app_id.is_empty() {
        return Ok(None);
    }
    if args.omaha_app_id.is_empty() {
        return Ok(Some(OmahaConfig::default()));
    }
    let mut app_ids = Vec::new();
    for id in &args.omaha_app_id {
        let n = crate::omaha::request::normalize_app_id(id);
        if uuid::Uuid::try_parse(&n).is_err() {
            return Err(CommandError::Usage(format!(
                "invalid --omaha-app-id {id:?}: use a UUID such as {}",
                crate::omaha::request::FLATCAR_APP_ID
            )));
        }
        app_ids.push(n);
    }
    Ok(Some(OmahaConfig { app_ids }))
}
