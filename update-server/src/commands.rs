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
    /// An enrolment token change that was refused.
    #[error(transparent)]
    Enrollment(#[from] crate::enrollment::EnrollmentError),
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
    if args.timestamp_expiry < args.resign_check * 2 || args.resign_check.is_zero() {
        return Err(CommandError::Usage(format!(
            "--timestamp-expiry {} must be at least twice --resign-check {} (and that above 0s): \
             a timestamp would expire between two checks",
            humantime::format_duration(args.timestamp_expiry),
            humantime::format_duration(args.resign_check)
        )));
    }
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
    config.hot_nodes = args.hot_nodes;
    config.live_events_buffer = args.live_events_buffer;
    config.enrollment_token = args.enrollment_token.clone();
    config.open_registration = args.open_registration;
    config.repo_url = args.repo_url.clone();
    config.tls = tls.is_some();
    // Re-signing is on whenever the online keys are at hand: given, or in
    // the data directory's `online-keys/`.
    let default_keys = args.data.data_dir.join("online-keys");
    config.online_keys = args
        .online_keys
        .clone()
        .or_else(|| default_keys.is_dir().then_some(default_keys));
    config.timestamp_expiry = args.timestamp_expiry;
    config.omaha = omaha_config(&args)?;
    config.rate_limits = crate::http::limits::RateLimitConfig {
        registrations: std::num::NonZeroU32::new(args.rate_limit_registrations),
        fleetlock: std::num::NonZeroU32::new(args.rate_limit_fleetlock),
        logins: std::num::NonZeroU32::new(args.rate_limit_logins),
    };
    let days = |d: u32| SignedDuration::from_hours(i64::from(d) * 24);
    config.node_retention = args.node_retention_days.map(days);
    config.event_retention =
        (args.event_retention_days > 0).then(|| days(args.event_retention_days));
    config.audit_retention = args.audit_retention_days.filter(|d| *d > 0).map(days);
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
    let db_url = args.data.database_url();
    let db = Db::connect(&db_url).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = AppState::new(db.clone(), clock, config);
    // With PostgreSQL there may be other replicas: the jobs wait for the
    // lease. SQLite has one replica, which always leads.
    let lease: Arc<dyn crate::jobs::leader::Lease> = match db.backend() {
        crate::store::Backend::Sqlite => Arc::new(crate::jobs::leader::AlwaysLeader),
        crate::store::Backend::Postgres => Arc::new(crate::jobs::leader::PgAdvisoryLease::new(
            &db_url,
            args.lease_check.max(Duration::from_secs(1)),
        )),
    };
    if state.config.trusted_root.is_some() {
        match crate::repository::sync::sync(&state).await {
            Ok(list) => tracing::info!("{} release(s) in the signed repository", list.len()),
            Err(e) => tracing::error!("repository not synced: {e}"),
        }
        warn_about_expiry(&state);
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
    let drain: Duration = args.drain_timeout;
    // Installed before READY=1: a SIGTERM or SIGHUP from then on is ours.
    let mut signals = crate::service::Signals::install().map_err(|source| CommandError::Io {
        path: "signal handlers".to_owned(),
        source,
    })?;
    let rustls = match &tls {
        Some(files) => Some(files.load().await?),
        None => None,
    };
    let handle = Handle::new();
    let schedule = crate::jobs::Schedule {
        lease: args.lease_check,
        follow: args.lease_check,
        refresh: args.resign_check,
        ..crate::jobs::Schedule::default()
    };
    let jobs = crate::jobs::spawn(&state, schedule, lease);
    let warm_state = state.clone();
    tokio::spawn(async move { crate::dashboard::summary::warm(&warm_state).await });
    if state.config.hot_nodes > 0 {
        // In the background: check-ins are served meanwhile (the ones of
        // nodes not loaded yet ask the database, as they would anyway).
        let hot_state = state.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match hot_state.db.load_hot(&hot_state.hot).await {
                Ok(n) => tracing::info!(
                    "hot state of {} of {n} nodes loaded in {:.1}s",
                    hot_state.hot.len(),
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => tracing::warn!("hot node state not loaded: {e}"),
            }
        });
    }
    let batcher = state.check_ins.clone();
    let live = state.live.clone();
    let server = serve(listener, state, rustls.clone(), handle.clone());
    tokio::pin!(server);
    let status = format!("serving on {}", args.listen);
    crate::service::ready(&status);
    let ended = loop {
        tokio::select! {
            signal = signals.next() => match signal {
                crate::service::Signal::Stop => break None,
                crate::service::Signal::Reload => reload_tls(tls.as_ref(), rustls.as_ref(), &status).await,
            },
            result = &mut server => break Some(result),
        }
    };
    let result = match ended {
        // The listener failed by itself: nothing to drain.
        Some(result) => {
            jobs.stop().await;
            result
        }
        None => {
            tracing::info!(
                "shutting down: answering the requests in flight (at most {})",
                humantime::format_duration(drain)
            );
            crate::service::stopping();
            // Open event streams end now instead of holding the drain.
            live.close();
            handle.graceful_shutdown(Some(drain));
            let (result, ()) = tokio::join!(server, jobs.stop());
            result
        }
    };
    // Check-ins accepted from memory are in the database before we stop.
    if let Err(e) = batcher.flush().await {
        tracing::error!("check-ins written behind not stored: {e}");
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(result?)
}

/// At start: says when the served metadata expires if nobody here will
/// re-sign it, and flags roles that expire soon.
fn warn_about_expiry(state: &AppState) {
    let Some(expiry) = state.repo_expiry() else {
        return;
    };
    let stamp = |t: std::time::SystemTime| {
        jiff::Timestamp::try_from(t).map_or_else(|_| format!("{t:?}"), |t| t.to_string())
    };
    match &state.config.online_keys {
        Some(dir) => tracing::info!(
            "re-signing snapshot and timestamp before they expire with the keys in {}",
            dir.display()
        ),
        None => tracing::warn!(
            "no online keys (--online-keys, or DATA_DIR/online-keys): the timestamp expires at {} \
             and the snapshot at {}; nodes refuse expired metadata, so re-sign them before then \
             (image-tools repo refresh)",
            stamp(expiry.timestamp),
            stamp(expiry.snapshot)
        ),
    }
    let now = std::time::SystemTime::from(state.clock.now());
    for w in
        crate::repository::refresh::expiry_warnings(&expiry, now, state.config.timestamp_margin())
    {
        tracing::warn!(
            "the served {} metadata {} at {}",
            w.role,
            if w.expired { "expired" } else { "expires" },
            stamp(w.expires)
        );
    }
}

/// SIGHUP: reads the certificate and key again; new connections get them.
/// A bad file leaves the old certificate in use (and says so).
async fn reload_tls(
    files: Option<&TlsFiles>,
    config: Option<&axum_server::tls_rustls::RustlsConfig>,
    status: &str,
) {
    let (Some(files), Some(config)) = (files, config) else {
        tracing::info!("SIGHUP: nothing to reload (plain HTTP)");
        return;
    };
    crate::service::reloading();
    match files.reload(config).await {
        Ok(()) => {
            tracing::info!(
                "SIGHUP: reloaded TLS certificate {} and key {}",
                files.cert.display(),
                files.key.display()
            );
            crate::service::reloaded(status);
        }
        Err(e) => {
            tracing::error!("SIGHUP: {e}; still serving the previous certificate");
            crate::service::reloaded(&format!(
                "{status}; TLS reload failed, previous certificate in use"
            ));
        }
    }
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
