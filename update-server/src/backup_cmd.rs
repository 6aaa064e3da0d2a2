//! `update-server backup` and `restore`. SQLite: an online copy of the
//! database (the server may keep running), checked after it is written;
//! a restore checks the copy and puts it in place of a data directory's
//! missing database, so a server started there resumes where the backup
//! was taken. PostgreSQL: the `pg_dump` / `pg_restore` commands to run
//! (the database's own tools do it better than we could).

use std::path::{Path, PathBuf};

use crate::cli::{BackupArgs, DataArgs, RestoreArgs};
use crate::commands::CommandError;
use crate::store::{BackupInfo, Db, check_sqlite_backup};

fn io(path: &Path) -> impl Fn(std::io::Error) -> CommandError + '_ {
    move |source| CommandError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The PostgreSQL URL without its password (printed, not kept secret).
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Single-quotes `s` for a POSIX shell.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn sqlite_file(data: &DataArgs) -> Option<PathBuf> {
    match &data.database {
        None => Some(data.data_dir.join("moho.db")),
        Some(url) => url
            .strip_prefix("sqlite://")
            .map(|rest| PathBuf::from(rest.split('?').next().unwrap_or(rest))),
    }
}

fn summary(file: &Path, info: &BackupInfo) -> String {
    format!(
        "{}: {} node(s), {} rollout(s), schema version {}",
        file.display(),
        info.nodes,
        info.rollouts,
        info.schema_version
    )
}

/// `update-server backup --out FILE`.
pub async fn backup(args: BackupArgs) -> Result<String, CommandError> {
    let url = args.data.database_url();
    let Some(db_file) = sqlite_file(&args.data) else {
        let shown = shown_url(&url);
        return Ok(format!(
            "PostgreSQL is backed up with its own tools; run (password from PGPASSWORD or ~/.pgpass):\n\
             pg_dump --format=custom --file={} {}\n\
             and to restore into a new, empty database, with the servers stopped:\n\
             pg_restore --no-owner --exit-on-error --dbname=postgres://.../NEW_DATABASE {}",
            quoted(&args.out.display().to_string()),
            quoted(&shown),
            quoted(&args.out.display().to_string()),
        ));
    };
    if !db_file.is_file() {
        return Err(CommandError::Usage(format!(
            "no database at {}: check --data-dir / --database",
            db_file.display()
        )));
    }
    if args.out.exists() {
        return Err(CommandError::Usage(format!(
            "{} exists: give a new file to back up into",
            args.out.display()
        )));
    }
    let db = Db::connect(&url).await?;
    let result = db.backup_sqlite(&args.out).await;
    db.close().await;
    result?;
    let info = check_sqlite_backup(&args.out).await?;
    Ok(format!("backed up {}", summary(&args.out, &info)))
}

/// `update-server restore --from FILE`.
pub async fn restore(args: RestoreArgs) -> Result<String, CommandError> {
    let Some(target) = sqlite_file(&args.data) else {
        return Ok(format!(
            "PostgreSQL is restored with its own tools: create an empty database, stop the servers, \
             run\npg_restore --no-owner --exit-on-error --dbname={} {}\nand start the servers \
             with --database pointing at it",
            quoted(&shown_url(&args.data.database_url())),
            quoted(&args.from.display().to_string())
        ));
    };
    for f in [
        target.clone(),
        target.with_extension("db-wal"),
        target.with_extension("db-shm"),
    ] {
        if f.exists() {
            return Err(CommandError::Usage(format!(
                "{} exists: stop the server and move the current database away before restoring",
                f.display()
            )));
        }
    }
    let info = check_sqlite_backup(&args.from).await?;
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // Copy under a temporary name, flush, then rename: a crash leaves no
    // half-restored database under the real name.
    let tmp = target.with_extension("db.restoring");
    std::fs::copy(&args.from, &tmp).map_err(io(&tmp))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(format!(
        "restored {} from {}",
        summary(&target, &info),
        args.from.display()
    ))
}
