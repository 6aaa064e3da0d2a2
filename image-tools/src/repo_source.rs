//! Where `image-tools` reads a repository from: a directory (or `file://`
//! URL) or an `http(s)://` URL. Each implements `moho_release::MetadataSource`
//! for metadata and opens target files as readers, never reading past the
//! limit it is given. Target files are looked for where the TUF
//! specification puts them, then in the legacy layout of older repositories.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use moho_release::{FetchError, MetadataSource, TargetInfo};
use moho_repo::DirSource;
use url::Url;

/// A repository location.
#[derive(Debug)]
pub enum RepoLocation {
    /// A local directory holding `metadata/` and `targets/`.
    Dir(PathBuf),
    /// An `http(s)://` base URL holding `metadata/` and `targets/`.
    Http(Url),
}

impl RepoLocation {
    /// Parses `--repo`: a URL (`file://`, `http://`, `https://`) or a path.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.contains("://") {
            let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
            match url.scheme() {
                "file" => url
                    .to_file_path()
                    .map(RepoLocation::Dir)
                    .map_err(|()| format!("{s:?} is not a local file URL")),
                "http" | "https" => {
                    let mut url = url;
                    if !url.path().ends_with('/') {
                        url.set_path(&format!("{}/", url.path()));
                    }
                    Ok(RepoLocation::Http(url))
                }
                other => Err(format!(
                    "{s:?}: unsupported URL scheme {other:?} (use file, http or https)"
                )),
            }
        } else {
            Ok(RepoLocation::Dir(PathBuf::from(s)))
        }
    }

    /// The metadata source.
    pub fn metadata(&self) -> Result<Box<dyn MetadataSource>, FetchError> {
        Ok(match self {
            RepoLocation::Dir(d) => Box::new(DirSource::new(&d.join("metadata"))),
            RepoLocation::Http(u) => Box::new(HttpSource::new(join(u, "metadata/")?)?),
        })
    }

    /// Opens target `info` for reading, at most `max_len` bytes: its file at
    /// the TUF specification's path, else (a repository made by older
    /// tools) at the legacy path. Names the path it read from.
    pub fn open_target(
        &self,
        info: &TargetInfo,
        max_len: u64,
    ) -> Result<(String, Box<dyn Read>), FetchError> {
        let paths = info.paths();
        for path in &paths {
            if let Some(body) = self.open_path(path, max_len)? {
                return Ok((path.clone(), body));
            }
        }
        Err(FetchError::new(format!(
            "target {}: no file at {}",
            info.name(),
            paths
                .iter()
                .map(|p| self.describe(p))
                .collect::<Vec<_>>()
                .join(" nor at ")
        )))
    }

    /// Where `targets/PATH` is, for messages.
    fn describe(&self, path: &str) -> String {
        match self {
            RepoLocation::Dir(d) => d.join("targets").join(path).display().to_string(),
            RepoLocation::Http(u) => join(u, "targets/")
                .and_then(|t| join(&t, path))
                .map(|u| u.to_string())
                .unwrap_or_else(|_| path.to_owned()),
        }
    }

    /// Opens `targets/PATH`; `None` if there is no such file.
    fn open_path(&self, path: &str, max_len: u64) -> Result<Option<Box<dyn Read>>, FetchError> {
        match self {
            RepoLocation::Dir(d) => {
                let p = d.join("targets").join(path);
                match File::open(&p) {
                    Ok(f) => Ok(Some(Box::new(f.take(max_len)))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(FetchError::new(format!("{}: {e}", p.display()))),
                }
            }
            RepoLocation::Http(u) => {
                let url = join(&join(u, "targets/")?, path)?;
                let source = HttpSource::new(url.clone())?;
                Ok(source
                    .open(&url)?
                    .map(|body| Box::new(body.take(max_len)) as Box<dyn Read>))
            }
        }
    }
}

/// An error and its causes on one line (reqwest keeps the useful part,
/// e.g. "connection refused", in the causes).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

fn join(base: &Url, rel: &str) -> Result<Url, FetchError> {
    base.join(rel)
        .map_err(|e| FetchError::new(format!("{base} + {rel}: {e}")))
}

/// Metadata over HTTP(S), fetched on a private single-thread runtime.
#[derive(Debug)]
pub struct HttpSource {
    base: Url,
    client: reqwest::Client,
    rt: std::sync::Arc<tokio::runtime::Runtime>,
}

impl HttpSource {
    /// Files under `base` (a directory URL).
    pub fn new(base: Url) -> Result<Self, FetchError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(FetchError::new)?;
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(FetchError::new)?;
        Ok(Self {
            base,
            client,
            rt: std::sync::Arc::new(rt),
        })
    }

    /// Starts a GET; `None` on 404.
    fn open(&self, url: &Url) -> Result<Option<HttpBody>, FetchError> {
        let resp = self
            .rt
            .block_on(self.client.get(url.clone()).send())
            .map_err(|e| FetchError::new(format!("{url}: {}", with_causes(&e))))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(FetchError::new(format!("{url}: HTTP {}", resp.status())));
        }
        Ok(Some(HttpBody {
            resp,
            rt: self.rt.clone(),
            pending: Vec::new(),
            pos: 0,
        }))
    }
}

impl MetadataSource for HttpSource {
    fn fetch(&self, file: &str, max_len: u64) -> Result<Option<Vec<u8>>, FetchError> {
        let url = join(&self.base, file)?;
        let Some(body) = self.open(&url)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        body.take(max_len.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| FetchError::new(format!("{url}: {e}")))?;
        Ok(Some(bytes))
    }
}

/// A response body as a blocking reader.
struct HttpBody {
    resp: reqwest::Response,
    rt: std::sync::Arc<tokio::runtime::Runtime>,
    pending: Vec<u8>,
    pos: usize,
}

impl Read for HttpBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.pending.len() {
            match self
                .rt
                .block_on(self.resp.chunk())
                .map_err(io::Error::other)?
            {
                Some(chunk) => {
                    self.pending = chunk.to_vec();
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
