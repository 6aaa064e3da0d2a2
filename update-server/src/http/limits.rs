//! Per-source rate limits on what a stranger can call without a node key or
//! a token: a node's first check-in (registration), unsigned FleetLock
//! requests, and dashboard log-ins. One GCRA limiter per kind keyed by the
//! source address (`governor`); IPv6 sources count per /64, the smallest
//! block one party usually holds. A refused request gets `429` with
//! `Retry-After`; other sources are not affected.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Extensions;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Requests per minute per source for each limited kind (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// First check-ins (registrations).
    pub registrations: Option<NonZeroU32>,
    /// Unsigned FleetLock requests.
    pub fleetlock: Option<NonZeroU32>,
    /// Dashboard log-in attempts.
    pub logins: Option<NonZeroU32>,
}

impl Default for RateLimitConfig {
    /// 60 registrations, 120 unsigned FleetLock calls and 10 log-ins per
    /// minute per source, each as a burst that refills evenly.
    fn default() -> Self {
        Self {
            registrations: NonZeroU32::new(60),
            fleetlock: NonZeroU32::new(120),
            logins: NonZeroU32::new(10),
        }
    }
}

impl RateLimitConfig {
    /// No limits at all.
    pub const NONE: Self = Self {
        registrations: None,
        fleetlock: None,
        logins: None,
    };
}

/// What a request is, for its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// A node's first check-in.
    Registration,
    /// A FleetLock request not signed by a Moho node key.
    FleetLock,
    /// A dashboard log-in.
    Login,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany {
    /// Whole seconds (at least 1), as `Retry-After` carries it.
    pub retry_after_secs: u64,
}

/// Above this many sources remembered, forget those whose limit has fully
/// refilled (they would be allowed anyway).
const SHRINK_ABOVE: usize = 100_000;

/// The limiters.
#[derive(Debug)]
pub struct RateLimits {
    clock: DefaultClock,
    registrations: Option<DefaultKeyedRateLimiter<IpAddr>>,
    fleetlock: Option<DefaultKeyedRateLimiter<IpAddr>>,
    logins: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(RateLimitConfig::default())
    }
}

impl RateLimits {
    /// Limiters for `config`.
    pub fn new(config: RateLimitConfig) -> Self {
        let make =
            |n: Option<NonZeroU32>| n.map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)));
        Self {
            clock: DefaultClock::default(),
            registrations: make(config.registrations),
            fleetlock: make(config.fleetlock),
            logins: make(config.logins),
        }
    }

    /// Counts one request of kind `what` from `source`; refuses it if the
    /// source is over its limit. A request whose source is unknown (no
    /// connection info, as in some in-process tests) is not limited.
    pub fn check(&self, what: Limited, source: Option<IpAddr>) -> Result<(), TooMany> {
        let limiter = match what {
            Limited::Registration => &self.registrations,
            Limited::FleetLock => &self.fleetlock,
            Limited::Login => &self.logins,
        };
        let (Some(limiter), Some(ip)) = (limiter, source) else {
            return Ok(());
        };
        if limiter.len() > SHRINK_ABOVE {
            limiter.retain_recent();
        }
        limiter.check_key(&source_key(ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            TooMany {
                retry_after_secs: whole_seconds(wait),
            }
        })
    }
}

/// The key a source counts under: an IPv4 address (or an IPv4-mapped IPv6
/// one) as itself, any other IPv6 address by its /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// `Retry-After` seconds: rounded up, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// The peer address of a request, from the connection info the listener
/// attaches (`None` without it).
pub fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Extractor: the request's source address, if known.
#[derive(Debug, Clone, Copy)]
pub struct Source(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(peer(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_sources_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_key(mapped), IpAddr::V4([192, 0, 2, 7].into()));
    }

    #[test]
    fn a_burst_is_refused_with_a_retry_time_and_other_sources_pass() {
        let limits = RateLimits::new(RateLimitConfig {
            registrations: NonZeroU32::new(3),
            fleetlock: None,
            logins: NonZeroU32::new(1),
        });
        let one = Some(IpAddr::V4([192, 0, 2, 1].into()));
        let two = Some(IpAddr::V4([192, 0, 2, 2].into()));
        for _ in 0..3 {
            assert_eq!(limits.check(Limited::Registration, one), Ok(()));
        }
        let refused = limits.check(Limited::Registration, one).unwrap_err();
        // 3 per minute: the next one is allowed within 20 seconds.
        assert!((1..=20).contains(&refused.retry_after_secs), "{refused:?}");
        assert_eq!(limits.check(Limited::Registration, two), Ok(()));
        // Kinds are counted apart; a kind without a limit is never refused.
        assert_eq!(limits.check(Limited::Login, one), Ok(()));
        assert!(limits.check(Limited::Login, one).is_err());
        for _ in 0..1000 {
            assert_eq!(limits.check(Limited::FleetLock, one), Ok(()));
        }
        assert_eq!(limits.check(Limited::Registration, None), Ok(()));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }
}
