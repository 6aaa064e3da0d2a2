//! The daemon's clock, the only place it learns the time (DESIGN style:
//! decisions take `now` as an argument). [`SystemClock`] is the wall clock;
//! [`TestClock`] starts at an injected instant and either runs at real
//! speed from there or stands still until moved.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// Where the time comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
    /// The longest the daemon sleeps before looking at the clock again.
    fn tick(&self) -> Duration;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
    fn tick(&self) -> Duration {
        // Wall-clock jumps (NTP, suspend) are noticed within this.
        Duration::from_secs(30)
    }
}

/// A clock that runs at real speed from an injected start (or stands
/// still) and can jump; clones share the time.
#[derive(Debug, Clone)]
pub struct TestClock {
    inner: Arc<Mutex<(Timestamp, Instant)>>,
    frozen: bool,
}

impl TestClock {
    /// Starts at `start` and runs at real speed.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            inner: Arc::new(Mutex::new((start, Instant::now()))),
            frozen: false,
        }
    }

    /// Stands at `start` until moved ([`TestClock::set`], [`TestClock::advance`]).
    pub fn frozen_at(start: Timestamp) -> Self {
        Self {
            frozen: true,
            ..Self::starting_at(start)
        }
    }

    /// Moves the clock to `t` (it runs on from there unless frozen).
    pub fn set(&self, t: Timestamp) {
        *self.lock() = (t, Instant::now());
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let now = self.now();
        let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
        self.set(now.checked_add(d).unwrap_or(Timestamp::MAX));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Timestamp, Instant)> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let (t, at) = *self.lock();
        if self.frozen {
            return t;
        }
        let elapsed = SignedDuration::try_from(at.elapsed()).unwrap_or(SignedDuration::ZERO);
        t.checked_add(elapsed).unwrap_or(t)
    }
    fn tick(&self) -> Duration {
        Duration::from_millis(100)
    }
}
