//! The live event stream's fan-out: one tailer task per server reads the
//! events stored since its last read (one primary-key range query per tick
//! for every subscriber together, never one per event or per subscriber),
//! and hands them to the subscribers through one bounded broadcast ring.
//! Each subscriber applies its own filter in memory, on the server, and
//! keeps only a cursor into the ring: a subscriber that reads too slowly
//! (a stalled browser, a client behind a thin link) is overtaken by the
//! ring and told how many events it missed, instead of blocking the
//! tailer or growing the server's memory. The tailer reads the database,
//! not the reports this replica received, so with several replicas every
//! subscriber sees every replica's events. While nobody subscribes it only
//! keeps its cursor current (`SELECT MAX(id)`), so a new subscriber that
//! read its backlog from the store misses nothing in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::store::{Db, StoreError, StreamEvent, StreamFilter};

/// Events the ring holds by default (rounded up to a power of two): what a
/// subscriber may fall behind before it misses events.
pub const DEFAULT_BUFFER: usize = 4096;
/// How often the tailer reads the new events.
pub const TICK: Duration = Duration::from_millis(500);
/// Most events one tailer read fetches; it reads again at once while a
/// read comes back full.
const BATCH: u32 = 5_000;
/// Most reads per tick: a tailer far behind catches up over several ticks
/// instead of holding a reader connection.
const READS_PER_TICK: usize = 20;

/// What a subscriber receives next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An event that passes the subscriber's filter.
    Event(Arc<StreamEvent>),
    /// The subscriber read too slowly: this many events (of any kind,
    /// before filtering) passed it by.
    Missed(u64),
}

/// The fan-out shared by every handler (cheap to clone).
#[derive(Debug, Clone)]
pub struct LiveEvents {
    tx: broadcast::Sender<Arc<StreamEvent>>,
    closed: Arc<watch::Sender<bool>>,
    counts: Arc<Counts>,
}

/// What `/metrics` shows of the fan-out.
#[derive(Debug, Default)]
struct Counts {
    published: AtomicU64,
    missed: AtomicU64,
}

impl LiveEvents {
    /// A fan-out whose ring holds `buffer` events (at least 1, rounded up
    /// to a power of two).
    pub fn new(buffer: usize) -> Self {
        let (tx, _) = broadcast::channel(buffer.max(1).next_power_of_two());
        Self {
            tx,
            closed: Arc::new(watch::Sender::new(false)),
            counts: Arc::default(),
        }
    }

    /// Events the tailer handed to the subscribers so far.
    pub fn published(&self) -> u64 {
        self.counts.published.load(Ordering::Relaxed)
    }

    /// Events that passed a slow subscriber by, summed over subscribers.
    pub fn missed(&self) -> u64 {
        self.counts.missed.load(Ordering::Relaxed)
    }

    /// A subscription to the events after id `after` that pass `filter`
    /// (events at or below `after` are skipped: the subscriber had them
    /// from the store).
    pub fn subscribe(&self, filter: StreamFilter, after: i64) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
            closed: self.closed.subscribe(),
            counts: self.counts.clone(),
            filter,
            seen: after,
        }
    }

    /// Hands `events` (oldest first) to every subscriber; never waits.
    pub fn publish(&self, events: Vec<StreamEvent>) {
        for e in events {
            // No subscriber: nobody to tell.
            if self.tx.send(Arc::new(e)).is_ok() {
                self.counts.published.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// How many subscriptions are open.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Ends every subscription (a server shutting down: open streams must
    /// not hold the drain of requests in flight).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Starts the tailer for `db`, reading every `tick` (needs a tokio
    /// runtime); it stops when the fan-out is closed.
    pub fn start_tailer(&self, db: Db, tick: Duration) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut closed = hub.closed.subscribe();
            let mut cursor: Option<i64> = None;
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = closed.wait_for(|c| *c) => return,
                }
                if let Err(e) = hub.step(&db, &mut cursor).await {
                    tracing::warn!("live event stream: reading new events failed: {e}");
                }
            }
        });
    }

    /// One tick of the tailer: publishes what arrived after `cursor`, or,
    /// with nobody listening, only moves `cursor` to the newest event.
    async fn step(&self, db: &Db, cursor: &mut Option<i64>) -> Result<(), StoreError> {
        let from = match *cursor {
            Some(c) if self.subscribers() > 0 => c,
            _ => {
                *cursor = Some(db.newest_event_id().await?);
                return Ok(());
            }
        };
        let mut from = from;
        for _ in 0..READS_PER_TICK {
            let batch = db.events_after(from, BATCH).await?;
            let full = batch.len() >= BATCH as usize;
            if let Some(last) = batch.last() {
                from = last.event.id;
            }
            self.publish(batch);
            *cursor = Some(from);
            if !full {
                break;
            }
        }
        Ok(())
    }
}

/// One subscriber's view of the fan-out: a cursor into the ring and a
/// filter.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<StreamEvent>>,
    closed: watch::Receiver<bool>,
    counts: Arc<Counts>,
    filter: StreamFilter,
    seen: i64,
}

impl Subscription {
    /// Skips the events up to id `id` too (the subscriber read them from
    /// the store after subscribing).
    pub fn skip_to(&mut self, id: i64) {
        self.seen = self.seen.max(id);
    }

    /// The next matching event or missed notice; `None` once the server
    /// closes the stream.
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            let received = tokio::select! {
                r = self.rx.recv() => r,
                _ = self.closed.wait_for(|c| *c) => return None,
            };
            match received {
                Ok(e) => {
                    if e.event.id <= self.seen || !self.filter.matches(&e) {
                        continue;
                    }
                    self.seen = e.event.id;
                    return Some(Delivery::Event(e));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.counts.missed.fetch_add(n, Ordering::Relaxed);
                    return Some(Delivery::Missed(n));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::EventRow;
    use moho_protocol::admin::Severity;

    fn event(id: i64, kind: &str, group: &str) -> StreamEvent {
        StreamEvent {
            event: EventRow {
                id,
                at: jiff::Timestamp::UNIX_EPOCH,
                received_at: jiff::Timestamp::UNIX_EPOCH,
                kind: kind.to_owned(),
                version: None,
                body: "{}".to_owned(),
            },
            node_id: format!("node-{id}"),
            scope: Some(("stable".to_owned(), group.to_owned())),
            hostname: None,
        }
    }

    async fn ids(s: &mut Subscription, n: usize) -> Vec<Delivery> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(s.next().await.unwrap());
        }
        out
    }

    fn id(d: &Delivery) -> i64 {
        match d {
            Delivery::Event(e) => e.event.id,
            Delivery::Missed(_) => -1,
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_what_it_missed_and_goes_on_with_the_newest() {
        let hub = LiveEvents::new(8);
        let mut slow = hub.subscribe(StreamFilter::default(), 0);
        hub.publish((1..=20).map(|i| event(i, "installed", "web")).collect());
        let got = ids(&mut slow, 9).await;
        assert_eq!(got[0], Delivery::Missed(12));
        assert_eq!((hub.published(), hub.missed()), (20, 12));
        assert_eq!(
            got[1..].iter().map(id).collect::<Vec<_>>(),
            (13..=20).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn filters_apply_to_each_subscriber_and_old_ids_are_skipped() {
        let hub = LiveEvents::new(64);
        let mut errors_in_db = hub.subscribe(
            StreamFilter {
                min_severity: Some(Severity::Error),
                group: Some("db".to_owned()),
                ..StreamFilter::default()
            },
            0,
        );
        let mut after_two = hub.subscribe(StreamFilter::default(), 2);
        hub.publish(vec![
            event(1, "rollback", "db"),
            event(2, "installed", "db"),
            event(3, "rollback", "web"),
            event(4, "error", "db"),
            event(5, "cancelled", "db"),
        ]);
        let got = ids(&mut errors_in_db, 2).await;
        assert_eq!(got.iter().map(id).collect::<Vec<_>>(), vec![1, 4]);
        let got = ids(&mut after_two, 3).await;
        assert_eq!(got.iter().map(id).collect::<Vec<_>>(), vec![3, 4, 5]);
    }

    #[tokio::test]
    async fn closing_ends_every_subscription() {
        let hub = LiveEvents::new(4);
        let mut s = hub.subscribe(StreamFilter::default(), 0);
        hub.close();
        assert_eq!(s.next().await, None);
    }
}
