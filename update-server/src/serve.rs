//! Running the HTTP surface: plain HTTP or TLS (rustls) on a bound
//! listener, with graceful shutdown, and the TLS certificate reloaded in
//! place (new connections get the new one, open ones keep theirs).
//! Background work is in [`crate::jobs`]; signals in [`crate::service`].

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

impl TlsFiles {
    fn error(&self, source: std::io::Error) -> ServeError {
        ServeError::Tls {
            cert: self.cert.clone(),
            key: self.key.clone(),
            source,
        }
    }

    /// Reads the certificate and key into a rustls configuration.
    pub async fn load(&self) -> Result<RustlsConfig, ServeError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        RustlsConfig::from_pem_file(&self.cert, &self.key)
            .await
            .map_err(|e| self.error(e))
    }

    /// Reads the files again and swaps them into `config`: connections
    /// accepted from now on are served with the new certificate. On an
    /// error the old certificate stays in use.
    pub async fn reload(&self, config: &RustlsConfig) -> Result<(), ServeError> {
        config
            .reload_from_pem_file(&self.cert, &self.key)
            .await
            .map_err(|e| self.error(e))
    }
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

/// Serves until `handle` is told to shut down (and, with a graceful
/// shutdown, until the requests in flight are answered).
pub async fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    tls: Option<RustlsConfig>,
    handle: Handle<SocketAddr>,
) -> Result<(), ServeError> {
    listener.set_nonblocking(true)?;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(config) => {
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
