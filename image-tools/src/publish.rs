//! `image-tools publish`: uploads a signed repository directory to an update
//! server through its admin API (`/api/v1/uploads`): every metadata file,
//! and every target file the server does not already serve with the same
//! length, streamed; then a commit. The server serves the result only if it
//! verifies against its trusted root, atomically, and says which releases it
//! now holds.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why a publication failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The directory has no `metadata/timestamp.json`.
    #[error("{0} is not a TUF repository: metadata/timestamp.json is missing")]
    NotARepository(PathBuf),
    /// A local file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A server URL that does not parse.
    #[error("invalid server url {0:?}")]
    BadUrl(String),
    /// The server could not be reached.
    #[error("{url}: {source}")]
    Http {
        /// Request URL.
        url: String,
        /// Cause.
        source: reqwest::Error,
    },
    /// The server refused (e.g. the upload does not verify against its trusted root).
    #[error("{url}: server refused with {status}: {code}: {message}")]
    Refused {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Server's message.
        message: String,
    },
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// Files sent.
    pub uploaded: usize,
    /// Target files the server already had.
    pub skipped: usize,
    /// Bytes sent.
    pub bytes: u64,
    /// Releases the server now serves, as `board/version [channels]`.
    pub releases: Vec<String>,
}

impl fmt::Display for PublishReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "published: {} file(s) uploaded ({} bytes), {} already on the server",
            self.uploaded, self.bytes, self.skipped
        )?;
        write!(f, "server now serves {} release(s)", self.releases.len())?;
        for r in &self.releases {
            write!(f, "\n  {r}")?;
        }
        Ok(())
    }
}

/// Files below `root/part`, as (repository path, local path, length).
fn walk(root: &Path, part: &str) -> Result<Vec<(String, PathBuf, u64)>, PublishError> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(part)];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(PublishError::Io { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| PublishError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|source| PublishError::Io {
                path: path.clone(),
                source,
            })?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file()
                && let Ok(rel) = path.strip_prefix(root)
            {
                out.push((rel.to_string_lossy().into_owned(), path.clone(), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

struct Api {
    client: reqwest::Client,
    base: url::Url,
    token: String,
}

impl Api {
    fn url(&self, segments: &[&str]) -> Result<url::Url, PublishError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| PublishError::BadUrl(self.base.to_string()))?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments.iter().flat_map(|s| s.split('/')));
        Ok(url)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &url::Url,
    ) -> Result<Value, PublishError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| PublishError::Http {
                url: url.to_string(),
                source,
            })?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(PublishError::Refused {
                url: url.to_string(),
                status,
                code: body["error"]["code"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned(),
                message: body["error"]["message"]
                    .as_str()
                    .unwrap_or("no error message")
                    .to_owned(),
            });
        }
        Ok(body)
    }
}

/// Publishes `repo` to `server` with admin token `token`.
pub async fn publish(
    server: &str,
    token: &str,
    repo: &Path,
) -> Result<PublishReport, PublishError> {
    if !repo.join("metadata/timestamp.json").is_file() {
        return Err(PublishError::NotARepository(repo.to_owned()));
    }
    let base = url::Url::parse(server).map_err(|_| PublishError::BadUrl(server.to_owned()))?;
    let api = Api {
        client: reqwest::Client::new(),
        base,
        token: token.to_owned(),
    };

    let url = api.url(&["repository", "files"])?;
    let served = api.send(api.client.get(url.clone()), &url).await?;
    let on_server: std::collections::BTreeSet<(String, u64)> = served["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["path"].as_str()?.to_owned(), f["length"].as_u64()?)))
        .collect();

    let url = api.url(&["uploads"])?;
    let upload = api.send(api.client.post(url.clone()), &url).await?;
    let id = upload["id"].as_str().unwrap_or_default().to_owned();

    let mut report = PublishReport {
        uploaded: 0,
        skipped: 0,
        bytes: 0,
        releases: Vec::new(),
    };
    let mut files = walk(repo, "targets")?;
    files.extend(walk(repo, "metadata")?);
    for (rel, local, len) in files {
        if rel.starts_with("targets/") && on_server.contains(&(rel.clone(), len)) {
            report.skipped += 1;
            continue;
        }
        let file = tokio::fs::File::open(&local)
            .await
            .map_err(|source| PublishError::Io {
                path: local.clone(),
                source,
            })?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let url = api.url(&["uploads", &id, "files", &rel])?;
        api.send(api.client.put(url.clone()).body(body), &url)
            .await?;
        report.uploaded += 1;
        report.bytes += len;
    }

    let url = api.url(&["uploads", &id, "commit"])?;
    let done = api.send(api.client.post(url.clone()), &url).await?;
    report.releases = done["releases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let channels: Vec<&str> = r["channels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "{}/{} [{}]",
                r["board"].as_str().unwrap_or("?"),
                r["version"].as_str().unwrap_or("?"),
                channels.join(", ")
            )
        })
        .collect();
    Ok(report)
}

/// `image-tools publish` (blocking: runs its own runtime).
pub fn run(args: &crate::cli::PublishArgs) -> Result<PublishReport, PublishError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| PublishError::Io {
            path: args.repo.clone(),
            source,
        })?;
    rt.block_on(publish(&args.server, &args.token, &args.repo))
}
