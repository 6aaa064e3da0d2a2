//! Hosting of the TUF repository under `/repo/metadata/...` (from the
//! database's served generation, see `repository::stored`, else from the
//! directory) and `/repo/targets/...` (files), with `ETag`, `If-None-Match`, single `Range`
//! requests, `If-Range` and exact `Content-Length`, so agents can resume
//! downloads. Bodies are streamed from disk in large reads
//! ([`super::file_body`]). Targets are found at the TUF specification's
//! paths, or in the legacy layout of repositories made by older tools.

use std::path::{Component, Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Maps a request path to a file under the repository, refusing anything
/// outside `metadata/` and `targets/` or with `..`.
pub fn resolve(root: &FsPath, path: &str) -> Option<PathBuf> {
    let rel = FsPath::new(path);
    let mut comps = rel.components();
    match comps.next() {
        Some(Component::Normal(top)) if top == "metadata" || top == "targets" => {}
        _ => return None,
    }
    if !comps.clone().all(|c| matches!(c, Component::Normal(_))) || comps.next().is_none() {
        return None;
    }
    Some(root.join(rel))
}

fn etag_of(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "\"{:x}-{:x}-{:x}\"",
        meta.len(),
        meta.mtime_nsec() ^ (meta.mtime() << 20),
        meta.ino()
    )
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `metadata/NAME` from the database's served generation: the same on
/// every replica, and always the newest committed one. `None` when nothing
/// was published into the database yet (the directory's files are served
/// then). Small files: a `Range` is answered with the whole file.
async fn stored_metadata(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<Response>, ApiError> {
    let file = app.db.served_metadata_file(name).await?;
    let bytes = match file {
        Some((_, bytes)) => bytes,
        None => {
            if app.db.served_generation().await?.is_none() {
                return Ok(None);
            }
            return Err(ApiError::not_found(
                "not_found",
                format!("no repository file \"metadata/{name}\""),
            ));
        }
    };
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
    let etag = format!("\"{}\"", hex::encode(&digest[..16]));
    if header_str(headers, header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok(Some(
            (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response(),
        ));
    }
    let len = bytes.len();
    let mut resp = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(bytes))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Some(resp))
}

/// `GET`/`HEAD /repo/{*path}`.
pub async fn serve_file(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("not_found", format!("no repository file {path:?}"));
    if let Some(name) = path.strip_prefix("metadata/")
        && let Some(answer) = stored_metadata(&app, &method, &headers, name).await?
    {
        return Ok(answer);
    }
    let root = crate::repository::served_root(&app.config.repo_dir);
    let file_path = resolve(&root, &path).ok_or_else(not_found)?;
    // A repository made by older tools has its targets in the legacy
    // layout only: a request for the TUF specification's path is answered
    // from there (moho_release::layout).
    let legacy = path
        .strip_prefix("targets/")
        .and_then(moho_release::layout::legacy_path_of)
        .and_then(|p| resolve(&root, &format!("targets/{p}")));
    // Opening and stat-ing are one hand-off to the blocking pool.
    let opened = tokio::task::spawn_blocking(move || {
        let file = match (std::fs::File::open(&file_path), legacy) {
            (Err(e), Some(old)) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::File::open(old)?
            }
            (opened, _) => opened?,
        };
        let meta = file.metadata()?;
        Ok::<_, std::io::Error>((file, meta))
    })
    .await;
    let Ok(Ok((file, meta))) = opened else {
        return Err(not_found());
    };
    if !meta.is_file() {
        return Err(not_found());
    }
    let len = meta.len();
    let etag = etag_of(&meta);
    if header_str(&headers, header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let if_range_ok = header_str(&headers, header::IF_RANGE).is_none_or(|v| v.trim() == etag);
    let range = match header_str(&headers, header::RANGE) {
        Some(r) if if_range_ok => {
            match http_range_header::parse_range_header(r).and_then(|p| p.validate(len)) {
                Ok(ranges) if ranges.len() == 1 => ranges.into_iter().next(),
                // Several ranges: answer with the whole file (allowed by RFC 9110).
                Ok(_) => None,
                Err(_) => {
                    return Ok((
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        [
                            (header::CONTENT_RANGE, format!("bytes */{len}")),
                            (header::ETAG, etag),
                        ],
                        axum::Json(moho_protocol::ApiError::new(
                            "bad_range",
                            format!("range {r:?} does not fit a {len}-byte file"),
                        )),
                    )
                        .into_response());
                }
            }
        }
        _ => None,
    };
    let (status, start, count) = match &range {
        Some(r) => (
            StatusCode::PARTIAL_CONTENT,
            *r.start(),
            r.end() - r.start() + 1,
        ),
        None => (StatusCode::OK, 0, len),
    };
    let mut resp = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(super::file_body::file_range_body(file, start, count))
    };
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let ctype = if path.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Some(r) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start(), r.end()))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_metadata_and_targets_below_the_root_resolve() {
        let root = FsPath::new("/srv/repo");
        assert_eq!(
            resolve(root, "metadata/1.root.json"),
            Some(PathBuf::from("/srv/repo/metadata/1.root.json"))
        );
        assert!(resolve(root, "targets/amd64/1.0.0/image").is_some());
        assert_eq!(resolve(root, "targets/../../etc/passwd"), None);
        assert_eq!(resolve(root, "keys/root.pem"), None);
        assert_eq!(resolve(root, "metadata"), None);
        assert_eq!(resolve(root, "/etc/passwd"), None);
    }
}
