//! Limits failed authentication attempts per client, sans IO: time is an argument.
//!
//! Each client gets a fixed window that opens at its first failure. Once it has
//! [`MAX_FAILURES`] failures in the window, every authenticated request from it is answered
//! 429 until the window closes, whether or not its credentials are right, so that guessing
//! learns nothing while blocked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures allowed in one window.
pub(crate) const MAX_FAILURES: u32 = 10;
/// The window's length.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Clients tracked one by one; past this, new clients share one bucket.
const MAX_TRACKED: usize = 10_000;

/// Whom a failure is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    /// An IPv4 address, or the /64 prefix of an IPv6 one (one host usually has a whole /64).
    Client(IpAddr),
    /// Clients whose address is unknown, and overflow when too many are tracked.
    Shared,
}

impl Bucket {
    fn of(client: Option<IpAddr>) -> Self {
        match client.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self::Client(IpAddr::V6(prefix.into()))
            }
            Some(v4) => Self::Client(v4),
            None => Self::Shared,
        }
    }
}

/// One bucket's current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    failures: u32,
}

impl Window {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.opened) >= WINDOW
    }
}

/// Counts failed authentication attempts and says who is blocked.
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    windows: HashMap<Bucket, Window>,
}

impl FailureLimiter {
    /// A limiter with no failures recorded.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `Err(wait)` if `client` is blocked, with how long until it is not.
    pub(crate) fn check(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let Some(window) = self.windows.get(&self.bucket(client)) else {
            return Ok(());
        };
        if window.failures < MAX_FAILURES || window.expired(now) {
            return Ok(());
        }
        Err((window.opened + WINDOW).saturating_duration_since(now))
    }

    /// Counts a failed attempt by `client`.
    pub(crate) fn record_failure(&mut self, client: Option<IpAddr>, now: Instant) {
        if self.windows.len() >= MAX_TRACKED {
            self.windows.retain(|_, window| !window.expired(now));
        }
        let bucket = self.bucket(client);
        let window = self.windows.entry(bucket).or_insert(Window { opened: now, failures: 0 });
        if window.expired(now) {
            *window = Window { opened: now, failures: 0 };
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// The client's own bucket if it is tracked or there is room to track it, else the shared one.
    fn bucket(&self, client: Option<IpAddr>) -> Bucket {
        let bucket = Bucket::of(client);
        if self.windows.contains_key(&bucket) || self.windows.len() < MAX_TRACKED {
            bucket
        } else {
            Bucket::Shared
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));

    fn fail(limiter: &mut FailureLimiter, client: Option<IpAddr>, times: u32, now: Instant) {
        for _ in 0..times {
            limiter.record_failure(client, now);
        }
    }

    #[test]
    fn blocks_after_the_tenth_failure_for_the_rest_of_the_window() {
        let start = Instant::now();
        let mut limiter = FailureLimiter::new();
        fail(&mut limiter, A, MAX_FAILURES - 1, start);
        assert_eq!(limiter.check(A, start), Ok(()));
        let later = start + Duration::from_secs(20);
        limiter.record_failure(A, later);
        assert_eq!(limiter.check(A, later), Err(Duration::from_secs(40)));
        let almost = start + Duration::from_secs(59);
        assert_eq!(limiter.check(A, almost), Err(Duration::from_secs(1)));
        assert_eq!(limiter.check(A, start + WINDOW), Ok(()));
    }

    #[test]
    fn clients_are_counted_apart() {
        let now = Instant::now();
        let mut limiter = FailureLimiter::new();
        fail(&mut limiter, A, MAX_FAILURES, now);
        assert!(limiter.check(A, now).is_err());
        assert_eq!(limiter.check(B, now), Ok(()));
        assert_eq!(limiter.check(None, now), Ok(()));
    }

    #[test]
    fn unknown_clients_share_one_bucket() {
        let now = Instant::now();
        let mut limiter = FailureLimiter::new();
        fail(&mut limiter, None, MAX_FAILURES, now);
        assert!(limiter.check(None, now).is_err());
        assert_eq!(limiter.check(A, now), Ok(()));
    }

    #[test]
    fn a_new_window_starts_after_the_old_one_closes() {
        let start = Instant::now();
        let mut limiter = FailureLimiter::new();
        fail(&mut limiter, A, MAX_FAILURES - 1, start);
        let next = start + WINDOW;
        fail(&mut limiter, A, MAX_FAILURES - 1, next);
        assert_eq!(limiter.check(A, next), Ok(()));
        limiter.record_failure(A, next);
        assert!(limiter.check(A, next).is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_by_slash_64() {
        let now = Instant::now();
        let host = |last: u16| Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last)));
        let mut limiter = FailureLimiter::new();
        for i in 0..MAX_FAILURES {
            limiter.record_failure(host(i as u16), now);
        }
        assert!(limiter.check(host(999), now).is_err());
        let other_net = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)));
        assert_eq!(limiter.check(other_net, now), Ok(()));
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_ipv4() {
        let now = Instant::now();
        let mut limiter = FailureLimiter::new();
        fail(&mut limiter, A, MAX_FAILURES, now);
        let mapped = Some(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()));
        assert!(limiter.check(mapped, now).is_err());
    }

    #[test]
    fn past_the_tracking_limit_new_clients_share_a_bucket_and_expired_ones_are_pruned() {
        let start = Instant::now();
        let mut limiter = FailureLimiter::new();
        for i in 0..MAX_TRACKED as u32 {
            limiter.record_failure(Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))), start);
        }
        assert_eq!(limiter.windows.len(), MAX_TRACKED);
        fail(&mut limiter, A, MAX_FAILURES, start);
        // A is untracked and counted in the shared bucket, which B (also untracked) shares.
        assert!(limiter.check(A, start).is_err());
        assert!(limiter.check(B, start).is_err());
        // Once the old windows expire, the next failure prunes them.
        let later = start + WINDOW;
        limiter.record_failure(B, later);
        assert!(limiter.windows.len() <= 2);
        assert_eq!(limiter.check(A, later), Ok(()));
    }
}
