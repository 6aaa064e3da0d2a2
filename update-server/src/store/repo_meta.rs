//! The signed metadata every replica serves, kept in the database: each
//! publication is a generation (`repo_generations`) with every metadata
//! file of the repository (`repo_metadata`); the newest generation is the
//! one served. A publication writes its generation in one transaction, so
//! no replica ever sees half of one, and every metadata request reads the
//! newest committed generation, so a replica never serves an older
//! timestamp than another one already served. Publications are serialised
//! across replicas by an advisory lock and refused unless their timestamp
//! version is above the served one.

use jiff::Timestamp;

use super::{Db, StoreError, Tx, millis};

/// The served generation: number and the versions of its online roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    /// Publication number, growing by one.
    pub number: i64,
    /// Version of its `timestamp.json`.
    pub timestamp_version: u64,
    /// Version of its snapshot.
    pub snapshot_version: u64,
}

/// A publication that came too late: another one, at least as new, is
/// already served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superseded {
    /// What is served now.
    pub served: Generation,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Db {
    /// The generation served now, if anything was published.
    pub async fn served_generation(&self) -> Result<Option<Generation>, StoreError> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT generation, timestamp_version, snapshot_version FROM repo_generations \
             ORDER BY generation DESC LIMIT 1",
        )
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(|(number, t, s)| Generation {
            number,
            timestamp_version: to_u64(t),
            snapshot_version: to_u64(s),
        }))
    }

    /// One metadata file of the served generation, with the generation's
    /// number. One statement: it reads one committed generation.
    pub async fn served_metadata_file(
        &self,
        name: &str,
    ) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT generation, bytes FROM repo_metadata WHERE name = $1 AND generation = \
             (SELECT MAX(generation) FROM repo_generations)",
        )
        .bind(name)
        .fetch_optional(self.reader())
        .await?)
    }

    /// Every metadata file of the served generation.
    pub async fn served_metadata(
        &self,
    ) -> Result<Option<(Generation, Vec<(String, Vec<u8>)>)>, StoreError> {
        let mut tx = self.reader().begin().await?;
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT generation, timestamp_version, snapshot_version FROM repo_generations \
             ORDER BY generation DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((number, t, s)) = row else {
            return Ok(None);
        };
        let files: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT name, bytes FROM repo_metadata WHERE generation = $1 ORDER BY name",
        )
        .bind(number)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let generation = Generation {
            number,
            timestamp_version: to_u64(t),
            snapshot_version: to_u64(s),
        };
        Ok(Some((generation, files)))
    }

    /// Inside `tx`: waits for (and then holds off, until `tx` ends) every
    /// other publication on any replica; returns the served generation.
    pub async fn lock_publications(&self, tx: &mut Tx) -> Result<Option<Generation>, StoreError> {
        self.lock(tx, "moho.repo.publish").await?;
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT generation, timestamp_version, snapshot_version FROM repo_generations \
             ORDER BY generation DESC LIMIT 1",
        )
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.map(|(number, t, s)| Generation {
            number,
            timestamp_version: to_u64(t),
            snapshot_version: to_u64(s),
        }))
    }

    /// Inside `tx`: serialises with every other publication (all
    /// replicas), then stores `files` as the next generation unless the
    /// served timestamp version is already `timestamp_version` or newer.
    /// Older generations are dropped. Commit `tx` to make it served.
    pub async fn publish_metadata(
        &self,
        tx: &mut Tx,
        files: &[(String, Vec<u8>)],
        timestamp_version: u64,
        snapshot_version: u64,
        now: Timestamp,
    ) -> Result<Result<Generation, Superseded>, StoreError> {
        let served = self.lock_publications(tx).await?;
        if let Some(served) = served
            && served.timestamp_version >= timestamp_version
        {
            // The same publication again (the same timestamp): nothing to do.
            let ours = files.iter().find(|(n, _)| n == "timestamp.json");
            let theirs: Option<(Vec<u8>,)> = sqlx::query_as(
                "SELECT bytes FROM repo_metadata WHERE generation = $1 AND name = 'timestamp.json'",
            )
            .bind(served.number)
            .fetch_optional(&mut **tx)
            .await?;
            if served.timestamp_version == timestamp_version
                && ours.is_some_and(|(_, b)| theirs.is_some_and(|(t,)| &t == b))
            {
                return Ok(Ok(served));
            }
            return Ok(Err(Superseded { served }));
        }
        let number = served.map_or(1, |g| g.number + 1);
        for (name, bytes) in files {
            sqlx::query("INSERT INTO repo_metadata (generation, name, bytes) VALUES ($1, $2, $3)")
                .bind(number)
                .bind(name.as_str())
                .bind(bytes.as_slice())
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO repo_generations (generation, timestamp_version, snapshot_version, published_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(number)
        .bind(to_i64(timestamp_version))
        .bind(to_i64(snapshot_version))
        .bind(millis(now))
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM repo_metadata WHERE generation < $1")
            .bind(number)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM repo_generations WHERE generation < $1")
            .bind(number)
            .execute(&mut **tx)
            .await?;
        Ok(Ok(Generation {
            number,
            timestamp_version,
            snapshot_version,
        }))
    }
}
