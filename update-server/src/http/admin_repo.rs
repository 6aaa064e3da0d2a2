//! Admin API for the signed repository: re-sync releases, list served
//! files, and publish (`image-tools publish`): start an upload, PUT each
//! metadata/target file, commit. A commit is accepted only if the result
//! verifies against the server's trusted root, and it becomes visible to
//! nodes atomically.

use std::time::SystemTime;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt as _;
use moho_protocol::admin::Role;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::http::auth::authorize;
use crate::repository::{RepoError, publish, stored, sync};
use crate::state::AppState;

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NoTrustedRoot => ApiError::conflict("no_trusted_root", e.to_string()),
            RepoError::Verify(_) | RepoError::Target { .. } => {
                ApiError::unprocessable("verification_failed", e.to_string())
            }
            RepoError::BadUpload(_) => ApiError::bad_request("bad_upload", e.to_string()),
            RepoError::Superseded { .. } => ApiError::conflict("superseded", e.to_string()),
            RepoError::Store(s) => ApiError::from(s),
            RepoError::Io { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io_error", e.to_string())
            }
        }
    }
}

/// `POST /api/v1/releases/sync`.
pub async fn sync_releases(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let list = sync::sync_audited(&app, &actor.name).await?;
    let after = sync::releases_json(&list);
    Ok(Json(serde_json::json!({"releases": after})))
}

/// `GET /api/v1/repository/files`: `{"files": [{"path", "length"}]}`.
pub async fn list_files(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let dir = app.config.repo_dir.clone();
    let files = tokio::task::spawn_blocking(move || publish::list_files(&dir))
        .await
        .unwrap_or_default();
    let files: Vec<serde_json::Value> = files
        .into_iter()
        .map(|(path, length)| serde_json::json!({"path": path, "length": length}))
        .collect();
    Ok(Json(serde_json::json!({"files": files})))
}

/// `POST /api/v1/uploads`: `{"id": ...}`.
pub async fn create_upload(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    authorize(&app, &h, Role::Admin).await?;
    if app.config.trusted_root.is_none() {
        return Err(RepoError::NoTrustedRoot.into());
    }
    let dir = app.config.repo_dir.clone();
    let id = tokio::task::spawn_blocking(move || publish::new_upload(&dir))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "task_failed",
                e.to_string(),
            )
        })??;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id}))))
}

/// `PUT /api/v1/uploads/{id}/files/{*path}`: streams one file to staging.
pub async fn upload_file(
    State(app): State<AppState>,
    h: HeaderMap,
    Path((id, path)): Path<(String, String)>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app, &h, Role::Admin).await?;
    let dest = publish::staged_file(&app.config.repo_dir, &id, &path)?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| {
            ApiError::from(RepoError::Io {
                path: parent.to_owned(),
                source: e,
            })
        })?;
    }
    let io = |e: std::io::Error| {
        ApiError::from(RepoError::Io {
            path: dest.clone(),
            source: e,
        })
    };
    let mut file = tokio::fs::File::create(&dest).await.map_err(io)?;
    let mut stream = body.into_data_stream();
    let mut len = 0u64;
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "upload_interrupted",
                format!("upload of {path:?} broke off: {e}"),
            )
        })?;
        len += chunk.len() as u64;
        if len > app.config.max_upload {
            drop(file);
            let _ = tokio::fs::remove_file(&dest).await;
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("{path:?} exceeds {} bytes", app.config.max_upload),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    Ok(Json(
        serde_json::json!({"path": path, "length": len, "sha256": hex::encode(hasher.finalize())}),
    ))
}

/// `POST /api/v1/uploads/{id}/commit`.
pub async fn commit_upload(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let trusted_root = app
        .config
        .trusted_root
        .clone()
        .ok_or(RepoError::NoTrustedRoot)?;
    let _guard = app.publish_lock.lock().await;
    let trusted = app
        .repo_state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .unwrap_or_default();
    let dir = app.config.repo_dir.clone();
    let now = SystemTime::from(app.clock.now());
    let before = serde_json::to_value(app.db.releases().await?).ok();
    let base = app.db.served_metadata().await?.map(|(_, files)| files);
    let prepared = tokio::task::spawn_blocking(move || {
        publish::prepare(&dir, &id, base.as_deref(), &trusted_root, &trusted, now)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "task_failed",
            e.to_string(),
        )
    })??;
    let list = sync::releases(&prepared.repo);
    let mut change = app
        .db
        .change(
            &actor.name,
            "repository.publish",
            "repository",
            app.clock.now(),
        )
        .await?;
    stored::publish(&app, &mut change, &prepared).await?;
    let repo = prepared.repo;
    let after = sync::releases_json(&list);
    change.commit(before.as_ref(), Some(&after)).await?;
    app.remember_repo(&repo);
    app.caches.clear();
    Ok(Json(serde_json::json!({"releases": after})))
}
