//! The schema, applied in numbered steps inside one transaction. The only
//! dialect differences are how an auto-increment id column and a byte
//! string column are spelt.

use super::{Backend, Db, StoreError};

const V1: &str = "
CREATE TABLE channels (name TEXT PRIMARY KEY);
CREATE TABLE groups (
    name TEXT PRIMARY KEY,
    fleetlock_slots BIGINT NOT NULL,
    fleetlock_lease_secs BIGINT NOT NULL
);
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    counter BIGINT NOT NULL,
    channel TEXT NOT NULL,
    grp TEXT NOT NULL,
    board TEXT NOT NULL,
    version TEXT NOT NULL,
    slot TEXT NOT NULL,
    state TEXT NOT NULL,
    last_seen BIGINT NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE INDEX nodes_scope ON nodes (channel, grp, board);
CREATE INDEX nodes_last_seen ON nodes (last_seen);
CREATE TABLE releases (
    version TEXT NOT NULL,
    board TEXT NOT NULL,
    target TEXT NOT NULL,
    channels TEXT NOT NULL,
    min_version TEXT,
    present BIGINT NOT NULL,
    PRIMARY KEY (version, board)
);
CREATE TABLE rollouts (
    id {ID},
    version TEXT NOT NULL,
    board TEXT NOT NULL,
    channel TEXT NOT NULL,
    grp TEXT NOT NULL,
    policy TEXT NOT NULL,
    state TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX rollouts_scope ON rollouts (channel, grp, board);
CREATE TABLE attempts (
    rollout_id BIGINT NOT NULL,
    node_id TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (rollout_id, node_id)
);
CREATE INDEX attempts_status ON attempts (rollout_id, status, started_at);
CREATE TABLE holds (
    id {ID},
    target_kind TEXT NOT NULL,
    target_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    version TEXT,
    until BIGINT NOT NULL
);
CREATE TABLE fleetlock (
    grp TEXT NOT NULL,
    node_id TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (grp, node_id)
);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE audit (
    id {ID},
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
CREATE TABLE events (
    id {ID},
    node_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    type TEXT NOT NULL,
    version TEXT,
    body TEXT NOT NULL
);
CREATE INDEX events_node ON events (node_id, id);
INSERT INTO channels (name) VALUES ('alpha'), ('beta'), ('stable');
INSERT INTO groups (name, fleetlock_slots, fleetlock_lease_secs) VALUES ('default', 1, 3600);
";

/// The dashboard (issue 7): host names and fallback versions of nodes,
/// attempt phases, release sizes, browser sessions, and indexes for keyset
/// paging of the node table by each filter and for a rollout's audit trail.
/// The scope index grows to cover the fleet summary (one index-only pass in
/// group order); every check-in already rewrites its entry, since the
/// batched UPDATE assigns its columns.
const V2: &str = "
ALTER TABLE nodes ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN fallback_version TEXT;
ALTER TABLE attempts ADD COLUMN phase TEXT NOT NULL DEFAULT 'offered';
ALTER TABLE releases ADD COLUMN size BIGINT;
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
DROP INDEX nodes_scope;
CREATE INDEX nodes_scope ON nodes (channel, grp, board, version, state, last_seen);
CREATE INDEX nodes_channel_id ON nodes (channel, id);
CREATE INDEX nodes_grp_id ON nodes (grp, id);
CREATE INDEX nodes_version_id ON nodes (version, id);
CREATE INDEX nodes_state_id ON nodes (state, id);
CREATE INDEX audit_subject ON audit (subject, id);
";

/// Admin and viewer tokens (issue 16): a public id (the first 16 hex digits
/// of the secret's SHA-256, so existing tokens get one), an optional expiry,
/// revocation (the row stays, for the list and the audit trail) and when it
/// was last used.
const V3: &str = "
ALTER TABLE tokens ADD COLUMN id TEXT NOT NULL DEFAULT '';
UPDATE tokens SET id = substr(hash, 1, 16);
CREATE UNIQUE INDEX tokens_id ON tokens (id);
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN revoked_at BIGINT;
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
";

/// Flatcar nodes and releases (issue 17): a node's kind (`moho`, signed;
/// `flatcar`, unsigned Omaha) and its Omaha details (app id, OEM, ...), a
/// release's kind and a Flatcar release's payloads (JSON).
const V4: &str = "
ALTER TABLE nodes ADD COLUMN kind TEXT NOT NULL DEFAULT 'moho';
ALTER TABLE nodes ADD COLUMN omaha TEXT;
ALTER TABLE releases ADD COLUMN kind TEXT NOT NULL DEFAULT 'moho';
ALTER TABLE releases ADD COLUMN flatcar TEXT;
CREATE INDEX nodes_kind_id ON nodes (kind, id);
";

/// Retention (issue 16): events are pruned by when the server received
/// them, audit entries by when they were made; both need an index for that.
const V5: &str = "
CREATE INDEX events_received ON events (received_at);
CREATE INDEX audit_at ON audit (at);
";

/// Enrolment tokens (issue 16): like admin tokens only the SHA-256 of the
/// secret is kept, with a public id; each names the group (and optionally
/// the channel) its nodes register in, an optional expiry and use limit,
/// and how often it was used.
const V6: &str = "
CREATE TABLE enrollment_tokens (
    hash TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    grp TEXT NOT NULL,
    channel TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    max_uses BIGINT,
    uses BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE UNIQUE INDEX enrollment_tokens_id ON enrollment_tokens (id);
";

/// Several replicas (issue 16): the signed metadata every replica serves,
/// one generation per publication (see `store/repo_meta.rs`).
const V7: &str = "
CREATE TABLE repo_generations (
    generation BIGINT PRIMARY KEY,
    timestamp_version BIGINT NOT NULL,
    snapshot_version BIGINT NOT NULL,
    published_at BIGINT NOT NULL
);
CREATE TABLE repo_metadata (
    generation BIGINT NOT NULL,
    name TEXT NOT NULL,
    bytes {BLOB} NOT NULL,
    PRIMARY KEY (generation, name)
);
";

/// Enrolment pins (issue 16): the group, and the channel if the token named
/// one, that a node registered with an enrolment token was admitted to; a
/// later check-in naming another scope must pass the enrolment gate again
/// (`crate::enrollment::pin_holds`). NULL: registered without a group
/// token (open registration, the server-wide token), free to move.
const V8: &str = "
ALTER TABLE nodes ADD COLUMN enrolled_group TEXT;
ALTER TABLE nodes ADD COLUMN enrolled_channel TEXT;
";

const STEPS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8];

/// Applies the steps not applied yet.
pub(super) async fn migrate(db: &Db) -> Result<(), StoreError> {
    let id = match db.backend() {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    };
    let blob = match db.backend() {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    let mut tx = db.begin().await?;
    db.lock(&mut tx, "moho-schema").await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS moho_schema (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let done: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM moho_schema")
        .fetch_one(&mut *tx)
        .await?;
    let done = usize::try_from(done.unwrap_or(0)).unwrap_or(0);
    for (i, step) in STEPS.iter().enumerate().skip(done) {
        for stmt in step
            .replace("{ID}", id)
            .replace("{BLOB}", blob)
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned()))
                .execute(&mut *tx)
                .await?;
        }
        let v = i64::try_from(i + 1).unwrap_or(i64::MAX);
        sqlx::query("INSERT INTO moho_schema (version) VALUES ($1)")
            .bind(v)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
