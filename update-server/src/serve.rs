//! Running the HTTP surface: plain HTTP or TLS (rustls) on a bound
//! listener, with graceful shutdown. Background work is in [`crate::jobs`].

use std::net::SocketAddr;
use std::path::PathBuf;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;

use crate::router::router;
use crate::state::AppState;

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
