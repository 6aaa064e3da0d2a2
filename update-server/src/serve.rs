//! Running the server: plain HTTP or TLS (rustls) on a bound listener, with
//! graceful shutdown, and the background ticker that moves rollouts on
//! (auto-pause, ramp steps) even when no node checks in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;

use crate::app::{AppState, router};

/// Certificate and key files (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Certificate or key unreadable or invalid.
    #[error("cannot load TLS certificate {cert} / key {key}: {source}")]
    Tls {
        /// Certificate path.
        cert: PathBuf,
        /// Key path.
        key: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Listener or connection failure.
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves until `handle` is told to shut down.
pub async fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    tls: Option<&TlsFiles>,
    handle: Handle<SocketAddr>,
) -> Result<(), ServeError> {
    listener.set_nonblocking(true)?;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(files) => {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let config = RustlsConfig::from_pem_file(&files.cert, &files.key)
                .await
                .map_err(|source| ServeError::Tls {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                    source,
                })?;
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(app)
                .await?;
        }
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(app)
                .await?
        }
    }
    Ok(())
}

/// Checks every `every` whether the online metadata needs re-signing.
pub async fn refresher(state: AppState, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        match crate::repository::sync::refresh_if_due(&state).await {
            Ok(true) => tracing::info!("re-signed snapshot and timestamp metadata"),
            Ok(false) => {}
            Err(e) => tracing::error!("re-signing the online metadata failed: {e}"),
        }
    }
}

/// Forgets nodes not seen for the configured retention, every `every`.
pub async fn retention(state: AppState, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        if let Err(e) = prune_stale(&state).await {
            tracing::error!("pruning stale nodes failed: {e}");
        }
    }
}

/// One retention pass: removes nodes last seen before now − retention and
/// audits it as actor `system`. Returns how many were removed.
pub async fn prune_stale(state: &AppState) -> Result<u64, crate::store::StoreError> {
    let Some(keep) = state.config.node_retention else {
        return Ok(0);
    };
    let now = state.clock.now();
    let before = now.checked_sub(keep).unwrap_or(jiff::Timestamp::MIN);
    let removed = state.db.prune_nodes(before).await?;
    if removed > 0 {
        let mut tx = state.db.begin().await?;
        let after = serde_json::json!({"retention_secs": keep.as_secs(), "removed": removed});
        state
            .db
            .audit(
                &mut tx,
                "system",
                "nodes.retention",
                "nodes",
                None,
                Some(&after),
                now,
            )
            .await?;
        tx.commit().await?;
        tracing::info!("forgot {removed} node(s) not seen for {keep:#}");
    }
    Ok(removed)
}

/// Ticks every rollout every `every`, so that auto-pause and ramp steps
/// happen on time. Runs until the task is dropped.
pub async fn ticker(state: AppState, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        let now = state.clock.now();
        let Ok(rollouts) = state.db.rollouts().await else {
            continue;
        };
        for r in rollouts
            .iter()
            .filter(|r| r.state.status == moho_rollout::RolloutStatus::Active)
        {
            if let Err(e) = state.caches.live(&state.db, &state.config, r.id, now).await {
                tracing::warn!(rollout = r.id, "tick failed: {e}");
            }
        }
    }
}
