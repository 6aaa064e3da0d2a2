//! A response body that cannot hang: together with the client's read
//! timeout (no bytes at all for that long), [`StallGuard`] breaks off a
//! transfer that trickles — fewer than a minimum number of bytes per second
//! over a sliding window — with an error naming the URL and the rate, so
//! the caller can resume it (with a byte range, from the last verified
//! chunk) or give up within its bounds.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use url::Url;

/// How slow a transfer may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallPolicy {
    /// Fewest bytes per second, averaged over `window` (0: no minimum).
    pub min_bytes_per_sec: u64,
    /// The window.
    pub window: Duration,
}

impl Default for StallPolicy {
    fn default() -> Self {
        Self {
            min_bytes_per_sec: 1024,
            window: Duration::from_secs(60),
        }
    }
}

/// `inner`, broken off when it gets slower than the policy allows.
#[derive(Debug)]
pub struct StallGuard<R> {
    inner: R,
    url: Url,
    policy: StallPolicy,
    started: Instant,
    /// Reads of the last window: when, how many bytes.
    recent: VecDeque<(Instant, u64)>,
    in_window: u64,
}

impl<R: Read> StallGuard<R> {
    /// Guards `inner`, the body of `url`; the clock starts now.
    pub fn new(inner: R, url: Url, policy: StallPolicy) -> Self {
        Self {
            inner,
            url,
            policy,
            started: Instant::now(),
            recent: VecDeque::new(),
            in_window: 0,
        }
    }

    fn check(&mut self, now: Instant) -> io::Result<()> {
        let window = self.policy.window;
        while let Some(&(at, n)) = self.recent.front() {
            if now.duration_since(at) > window {
                self.recent.pop_front();
                self.in_window -= n;
            } else {
                break;
            }
        }
        if self.policy.min_bytes_per_sec == 0 || now.duration_since(self.started) < window {
            return Ok(());
        }
        let needed = self
            .policy
            .min_bytes_per_sec
            .saturating_mul(window.as_secs().max(1));
        if self.in_window < needed {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{}: stalled: {} bytes in the last {}, below the minimum of {} bytes/s",
                    self.url,
                    self.in_window,
                    humantime::format_duration(window),
                    self.policy.min_bytes_per_sec
                ),
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for StallGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let now = Instant::now();
        if n > 0 {
            self.recent.push_back((now, n as u64));
            self.in_window += n as u64;
        }
        self.check(now)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One byte per read, `gap` apart.
    struct Trickle {
        gap: Duration,
        left: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Ok(0);
            }
            std::thread::sleep(self.gap);
            buf[0] = b'x';
            self.left -= 1;
            Ok(1)
        }
    }

    fn url() -> Url {
        "https://repo.example/metadata/timestamp.json"
            .parse()
            .unwrap()
    }

    #[test]
    fn a_trickle_is_broken_off_after_one_window_with_a_clear_error() {
        let policy = StallPolicy {
            min_bytes_per_sec: 100,
            window: Duration::from_millis(300),
        };
        let mut g = StallGuard::new(
            Trickle {
                gap: Duration::from_millis(50),
                left: 1000,
            },
            url(),
            policy,
        );
        let started = Instant::now();
        let mut out = Vec::new();
        let err = g.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            err.to_string()
                .starts_with("https://repo.example/metadata/timestamp.json: stalled:"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(out.len() < 20, "{}", out.len());
    }

    #[test]
    fn a_fast_body_and_a_policy_without_minimum_are_left_alone() {
        let mut g = StallGuard::new(&b"hello world"[..], url(), StallPolicy::default());
        let mut out = String::new();
        g.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
        let mut g = StallGuard::new(
            Trickle {
                gap: Duration::from_millis(20),
                left: 10,
            },
            url(),
            StallPolicy {
                min_bytes_per_sec: 0,
                window: Duration::from_millis(10),
            },
        );
        let mut out = Vec::new();
        g.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 10);
    }
}
