//! Hot node state in memory: for every node this replica has seen (or
//! loaded at start), the last accepted request counter, a keyed hash of
//! the facts its check-ins report (key, channel, group, board, version,
//! slot, state, host name, fallback version) and its public key. A check-in
//! whose facts hash equals the stored one and whose counter rises is
//! accepted here, without waiting for the database; its row is written
//! behind, in the check-in batcher's next batch (`store/batch.rs`).
//! Anything else — a new node, changed facts, a node this replica does not
//! hold — is checked against the database as before and then remembered.
//! Where other replicas may share the database (PostgreSQL), memory only
//! refuses: a check-in it would accept is [`Admission::Confirm`], written
//! through and accepted only if the database's compare-and-set on the
//! counter takes it (another replica may have accepted a later counter).
//! A counter at or below the remembered one, signed with the remembered
//! key, is a replay whatever the database says (the remembered counter was
//! accepted from the node); another key is for the database to judge.
//!
//! The crash rules this supports are in ARCHITECTURE.md ("Hot node state and
//! write-behind"). Entries are dropped when a batch finds the row changed
//! behind this replica's back (deleted, re-keyed or advanced through another
//! replica), and by a delete or prune on this replica.

use std::collections::HashMap;
use std::collections::hash_map::{Entry as MapEntry, RandomState};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;

use super::NodeUpsert;

/// Nodes held at most by default (about 100 bytes each).
pub const DEFAULT_CAPACITY: usize = 2_000_000;

const SHARDS: usize = 16;

/// What this replica remembers of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    counter: u64,
    facts: u64,
    /// Last accepted request, Unix milliseconds.
    seen: i64,
    key: [u8; 32],
}

/// The answer to a signed request of a node, judged from memory alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Known node, same facts, rising counter: accepted (the counter is
    /// remembered); its row is to be written behind.
    Accepted,
    /// As `Accepted`, but other replicas may share the database and have
    /// accepted a later counter: write through, accept only if the row took
    /// it (else forget the node).
    Confirm,
    /// The counter is not above one already accepted from this node.
    Replayed,
    /// Not decidable from memory (unknown node or changed facts): ask the
    /// database.
    Ask,
}

/// Hot node state, sharded by node id.
#[derive(Debug)]
pub struct HotNodes {
    per_shard: usize,
    /// Whether other replicas may write the same rows (memory then never
    /// accepts a check-in by itself).
    shared: bool,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Box<str>, Entry>>>,
}

impl Default for HotNodes {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl HotNodes {
    /// Holds at most about `capacity` nodes (0: none, every request asks
    /// the database).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            per_shard: capacity.div_ceil(SHARDS),
            shared: false,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The same, for a database other replicas may share (PostgreSQL):
    /// memory refuses replays but accepts nothing by itself.
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// The keyed hash of what a check-in reports about its node (the same
    /// for a check-in and for the stored row that says the same).
    pub fn facts(&self, n: &NodeUpsert<'_>) -> u64 {
        self.hasher.hash_one((
            n.public_key,
            n.channel,
            n.group,
            n.board,
            n.version,
            n.slot,
            n.state,
            n.hostname,
            n.fallback_version,
        ))
    }

    /// A check-in of `id` with `counter` reporting `facts`, signed with
    /// `key` (another key than the remembered one: the database decides).
    pub fn admit_check_in(
        &self,
        id: &str,
        counter: u64,
        facts: u64,
        key: &[u8; 32],
        now: Timestamp,
    ) -> Admission {
        let mut shard = self.shard(id);
        match shard.get_mut(id) {
            Some(e) if e.key != *key => Admission::Ask,
            Some(e) if counter <= e.counter => Admission::Replayed,
            Some(e) if e.facts == facts => {
                e.counter = counter;
                e.seen = e.seen.max(now.as_millisecond());
                if self.shared {
                    Admission::Confirm
                } else {
                    Admission::Accepted
                }
            }
            _ => Admission::Ask,
        }
    }

    /// The remembered public key of `id` and whether `counter` rises above
    /// the remembered counter (`None`: not held).
    pub fn key(&self, id: &str, counter: u64) -> Option<([u8; 32], bool)> {
        self.shard(id).get(id).map(|e| (e.key, counter > e.counter))
    }

    /// A request of `id` (any kind) with `counter`, after its signature was
    /// checked with the remembered key: raises the counter.
    pub fn admit_request(&self, id: &str, counter: u64) -> Admission {
        let mut shard = self.shard(id);
        match shard.get_mut(id) {
            Some(e) if counter <= e.counter => Admission::Replayed,
            Some(e) => {
                e.counter = counter;
                Admission::Accepted
            }
            None => Admission::Ask,
        }
    }

    /// The database accepted a request of `id` with `counter`, and the
    /// node's row now says `facts` with `key`, last seen at `seen`:
    /// remember it (an entry with a higher counter is kept as it is).
    pub fn remember(&self, id: &str, counter: u64, facts: u64, key: [u8; 32], seen: Timestamp) {
        let mut shard = self.shard(id);
        let full = shard.len() >= self.per_shard;
        let new = Entry {
            counter,
            facts,
            seen: seen.as_millisecond(),
            key,
        };
        match shard.entry(id.into()) {
            MapEntry::Occupied(mut o) => {
                if o.get().counter < counter {
                    o.insert(new);
                }
            }
            MapEntry::Vacant(v) => {
                if !full {
                    v.insert(new);
                }
            }
        }
    }

    /// Forgets `id` (deleted, or its row changed behind this replica).
    pub fn forget(&self, id: &str) {
        self.shard(id).remove(id);
    }

    /// Forgets the nodes last seen before `before` (a prune of the rows).
    pub fn forget_seen_before(&self, before: Timestamp) {
        let before = before.as_millisecond();
        for s in &self.shards {
            lock(s).retain(|_, e| e.seen >= before);
        }
    }

    /// Nodes held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no node is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, HashMap<Box<str>, Entry>> {
        // SHARDS is small: the remainder fits any usize.
        #[allow(clippy::cast_possible_truncation)]
        let i = (self.hasher.hash_one(id) % SHARDS as u64) as usize;
        lock(&self.shards[i])
    }
}

/// The raw key of a key text in its canonical form (standard base64 of the
/// 32 bytes, as agents send it), else `None`: such a node is not held, as
/// reports written behind compare the row's key text with the canonical one.
pub fn canonical_key(text: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let raw = <[u8; 32]>::try_from(engine.decode(text).ok()?.as_slice()).ok()?;
    (engine.encode(raw) == text).then_some(raw)
}

/// The canonical text of a raw key.
pub fn key_text(raw: &[u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::UNIX_EPOCH;
    const K: [u8; 32] = [1; 32];

    fn upsert<'a>(key: &'a str, version: &'a str) -> NodeUpsert<'a> {
        NodeUpsert {
            id: "n1",
            public_key: key,
            channel: "stable",
            group: "default",
            board: "amd64",
            version,
            slot: "a",
            state: "idle",
            hostname: "",
            fallback_version: None,
        }
    }

    #[test]
    fn an_unknown_node_is_asked_of_the_database() {
        let hot = HotNodes::default();
        let f = hot.facts(&upsert("k", "1.0.0"));
        assert_eq!(hot.admit_check_in("n1", 5, f, &[1; 32], T), Admission::Ask);
        assert_eq!(hot.key("n1", 5), None);
    }

    #[test]
    fn a_known_node_with_the_same_facts_is_accepted_once_per_counter() {
        let hot = HotNodes::default();
        let f = hot.facts(&upsert("k", "1.0.0"));
        hot.remember("n1", 5, f, [1; 32], T);
        assert_eq!(hot.admit_check_in("n1", 6, f, &K, T), Admission::Accepted);
        assert_eq!(hot.admit_check_in("n1", 6, f, &K, T), Admission::Replayed);
        assert_eq!(hot.admit_check_in("n1", 4, f, &K, T), Admission::Replayed);
        assert_eq!(hot.admit_check_in("n1", 7, f, &K, T), Admission::Accepted);
    }

    #[test]
    fn changed_facts_or_another_key_go_to_the_database_but_an_old_counter_of_this_key_never_does() {
        let hot = HotNodes::default();
        let f = hot.facts(&upsert("k", "1.0.0"));
        hot.remember("n1", 5, f, [1; 32], T);
        let upgraded = hot.facts(&upsert("k", "1.1.0"));
        let rekeyed = hot.facts(&upsert("other", "1.0.0"));
        assert_ne!(upgraded, f);
        assert_ne!(rekeyed, f);
        assert_eq!(hot.admit_check_in("n1", 6, upgraded, &K, T), Admission::Ask);
        assert_eq!(hot.admit_check_in("n1", 6, rekeyed, &K, T), Admission::Ask);
        assert_eq!(
            hot.admit_check_in("n1", 5, upgraded, &K, T),
            Admission::Replayed
        );
        // Another key is not this node's: the database tells why (403).
        assert_eq!(hot.admit_check_in("n1", 5, f, &[9; 32], T), Admission::Ask);
    }

    #[test]
    fn on_a_shared_database_memory_refuses_replays_but_never_accepts_alone() {
        let hot = HotNodes::default().shared(true);
        let f = hot.facts(&upsert("k", "1.0.0"));
        hot.remember("n1", 5, f, K, T);
        assert_eq!(hot.admit_check_in("n1", 6, f, &K, T), Admission::Confirm);
        assert_eq!(hot.admit_check_in("n1", 6, f, &K, T), Admission::Replayed);
        assert_eq!(hot.admit_check_in("n1", 4, f, &K, T), Admission::Replayed);
        assert_eq!(hot.admit_check_in("n1", 7, f, &K, T), Admission::Confirm);
        let upgraded = hot.facts(&upsert("k", "1.1.0"));
        assert_eq!(hot.admit_check_in("n1", 8, upgraded, &K, T), Admission::Ask);
    }

    #[test]
    fn a_report_raises_the_counter_a_later_check_in_must_beat() {
        let hot = HotNodes::default();
        let f = hot.facts(&upsert("k", "1.0.0"));
        hot.remember("n1", 5, f, K, T);
        assert_eq!(hot.key("n1", 9), Some((K, true)));
        assert_eq!(hot.admit_request("n1", 9), Admission::Accepted);
        assert_eq!(hot.key("n1", 9), Some((K, false)));
        assert_eq!(hot.admit_check_in("n1", 8, f, &K, T), Admission::Replayed);
    }

    #[test]
    fn remembering_never_lowers_a_counter_and_forgetting_sends_back_to_the_database() {
        let hot = HotNodes::default();
        let f = hot.facts(&upsert("k", "1.0.0"));
        hot.remember("n1", 9, f, [1; 32], T);
        hot.remember("n1", 3, f, [1; 32], T);
        assert_eq!(hot.admit_check_in("n1", 8, f, &K, T), Admission::Replayed);
        hot.forget("n1");
        assert_eq!(hot.admit_check_in("n1", 8, f, &K, T), Admission::Ask);
    }

    #[test]
    fn a_prune_forgets_exactly_the_nodes_not_seen_since() {
        let hot = HotNodes::default();
        let f = hot.facts(&upsert("k", "1.0.0"));
        let day = jiff::SignedDuration::from_hours(24);
        hot.remember("old", 1, f, [0; 32], T);
        hot.remember("new", 1, f, [0; 32], T + day);
        hot.forget_seen_before(T + day);
        assert_eq!(hot.key("old", 2), None);
        assert!(hot.key("new", 2).is_some());
    }

    #[test]
    fn only_canonical_key_texts_are_held() {
        let text = key_text(&[3; 32]);
        assert_eq!(canonical_key(&text), Some([3; 32]));
        assert_eq!(canonical_key(&format!(" {text}")), None);
        assert_eq!(canonical_key("not base64"), None);
    }

    #[test]
    fn a_full_table_takes_no_new_nodes_but_keeps_serving_the_ones_it_holds() {
        let hot = HotNodes::with_capacity(SHARDS);
        let f = hot.facts(&upsert("k", "1.0.0"));
        for i in 0..1000 {
            hot.remember(&format!("n{i}"), 1, f, [0; 32], T);
        }
        assert!(hot.len() <= SHARDS);
        let held: Vec<String> = (0..1000)
            .map(|i| format!("n{i}"))
            .filter(|id| hot.key(id, 2).is_some())
            .collect();
        assert!(!held.is_empty());
        assert_eq!(
            hot.admit_check_in(&held[0], 2, f, &[0; 32], T),
            Admission::Accepted
        );
    }
}
