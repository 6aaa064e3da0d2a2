//! A small HTTPS file server for end-to-end tests: serves a directory with
//! single byte ranges (206), counts the bytes it sends per path, can
//! throttle, and can corrupt or cut off a file on purpose. Its certificate
//! is signed by a throwaway CA whose PEM the tests hand to the agent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// What to do to a file while serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Flip the byte at this file offset.
    FlipByte(u64),
    /// Stop sending once this file offset is reached (the connection then
    /// ends short of its Content-Length).
    TruncateAt(u64),
    /// Like `TruncateAt`, for the next request of the file only (a dropped
    /// connection).
    TruncateOnceAt(u64),
    /// Send up to this file offset, then nothing more while keeping the
    /// connection open (a server or network that stops mid-transfer).
    StallAt(u64),
    /// Like `StallAt`, for the next request of the file only.
    StallOnceAt(u64),
}

#[derive(Debug, Default)]
struct Shared {
    root: PathBuf,
    faults: Mutex<HashMap<String, Fault>>,
    served: Mutex<HashMap<String, u64>>,
    requests: Mutex<Vec<(String, Option<String>)>>,
    rate: Mutex<Option<u64>>,
}

/// A running server; stopped on drop.
#[derive(Debug)]
pub struct HttpsServer {
    /// `https://127.0.0.1:PORT/`.
    pub base: String,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    shared: Arc<Shared>,
    handle: axum_server::Handle<SocketAddr>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpsServer {
    /// Serves `root` on a free loopback port.
    pub fn start(root: &Path) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "moho test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
            .expect("ca cert");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf cert");
        let cert_pem = leaf.pem();
        let key_pem = leaf_key.serialize_pem();
        let shared = Arc::new(Shared {
            root: root.to_owned(),
            ..Shared::default()
        });
        let handle = axum_server::Handle::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let shared = shared.clone();
            let handle = handle.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
                        cert_pem.into_bytes(),
                        key_pem.into_bytes(),
                    )
                    .await
                    .expect("tls config");
                    let app = Router::new().fallback(serve).with_state(shared);
                    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                    listener.set_nonblocking(true).expect("nonblocking");
                    let _ = tx.send(listener.local_addr().expect("addr"));
                    axum_server::from_tcp_rustls(listener, tls)
                        .expect("server")
                        .handle(handle)
                        .serve(app.into_make_service())
                        .await
                        .expect("serve");
                });
            })
        };
        let addr = rx.recv().expect("server address");
        Self {
            base: format!("https://127.0.0.1:{}/", addr.port()),
            ca_pem: ca.pem(),
            shared,
            handle,
            thread: Some(thread),
        }
    }

    /// Applies `fault` to the file at `path` (relative to the root).
    pub fn set_fault(&self, path: &str, fault: Option<Fault>) {
        let mut f = self.shared.faults.lock().expect("lock");
        match fault {
            Some(x) => f.insert(path.to_owned(), x),
            None => f.remove(path),
        };
    }

    /// Limits sending to `bytes_per_sec` (None: unlimited).
    pub fn throttle(&self, bytes_per_sec: Option<u64>) {
        *self.shared.rate.lock().expect("lock") = bytes_per_sec;
    }

    /// Bytes sent so far for paths ending with `suffix`.
    pub fn bytes_served(&self, suffix: &str) -> u64 {
        self.shared
            .served
            .lock()
            .expect("lock")
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Every request so far: path and Range header.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.shared.requests.lock().expect("lock").clone()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn parse_range(h: &str, len: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let end = if b.is_empty() {
        len - 1
    } else {
        b.parse::<u64>().ok()?.min(len - 1)
    };
    (start <= end && start < len).then_some((start, end + 1))
}

async fn serve(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let rel = uri.path().trim_start_matches('/').to_owned();
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared
        .requests
        .lock()
        .expect("lock")
        .push((rel.clone(), range_header.clone()));
    let path = shared.root.join(&rel);
    if rel.contains("..") {
        return status(StatusCode::BAD_REQUEST);
    }
    let Ok(file) = tokio::fs::File::open(&path).await else {
        return status(StatusCode::NOT_FOUND);
    };
    let Ok(meta) = file.metadata().await else {
        return status(StatusCode::NOT_FOUND);
    };
    if !meta.is_file() {
        return status(StatusCode::NOT_FOUND);
    }
    let fault = {
        let mut faults = shared.faults.lock().expect("lock");
        let f = faults.get(&rel).copied();
        if matches!(f, Some(Fault::TruncateOnceAt(_) | Fault::StallOnceAt(_))) {
            faults.remove(&rel);
        }
        f
    };
    let (flip, cut, stall) = match fault {
        Some(Fault::FlipByte(at)) => (Some(at), None, None),
        Some(Fault::TruncateAt(at) | Fault::TruncateOnceAt(at)) => (None, Some(at), None),
        Some(Fault::StallAt(at) | Fault::StallOnceAt(at)) => (None, None, Some(at)),
        None => (None, None, None),
    };
    let len = meta.len();
    let (code, start, end) = match range_header.as_deref().map(|h| parse_range(h, len)) {
        Some(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Some(None) => return status(StatusCode::RANGE_NOT_SATISFIABLE),
        None => (StatusCode::OK, 0, len),
    };
    let send_end = cut.map_or(end, |c| c.clamp(start, end));
    let rate = *shared.rate.lock().expect("lock");
    // Stream the file piece by piece: constant memory whatever its size.
    let state = Piece {
        file,
        pos: start,
        end: send_end,
        flip,
        stall,
        shared: shared.clone(),
        rel: rel.clone(),
        started: false,
    };
    let stream = futures_util::stream::unfold(state, move |mut st| async move {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        if st.pos >= st.end {
            return None;
        }
        if st.stall.is_some_and(|at| st.pos >= at) {
            // Headers and the bytes before the stall point are out; the
            // rest never comes, the connection stays open.
            std::future::pending::<()>().await;
        }
        if !st.started {
            st.started = true;
            if let Err(e) = st.file.seek(std::io::SeekFrom::Start(st.pos)).await {
                return Some((Err(e), st));
            }
        }
        let limit = st.stall.filter(|at| *at > st.pos).unwrap_or(st.end);
        let n = usize::try_from((limit.min(st.end) - st.pos).min(PIECE as u64)).unwrap_or(PIECE);
        let mut buf = vec![0u8; n];
        if let Err(e) = st.file.read_exact(&mut buf).await {
            return Some((Err(e), st));
        }
        if let Some(at) = st.flip
            && (st.pos..st.pos + n as u64).contains(&at)
        {
            buf[usize::try_from(at - st.pos).unwrap_or(0)] ^= 0xff;
        }
        if let Some(r) = rate {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / r as f64)).await;
        }
        *st.shared
            .served
            .lock()
            .expect("lock")
            .entry(st.rel.clone())
            .or_default() += n as u64;
        st.pos += n as u64;
        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), st))
    });
    let mut resp = Response::builder()
        .status(code)
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::ACCEPT_RANGES, "bytes");
    if code == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    resp.body(Body::from_stream(stream))
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR))
}

const PIECE: usize = 256 * 1024;

struct Piece {
    file: tokio::fs::File,
    pos: u64,
    end: u64,
    flip: Option<u64>,
    stall: Option<u64>,
    shared: Arc<Shared>,
    rel: String,
    started: bool,
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap_or_default()
}
