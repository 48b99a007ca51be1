//! Per-source and global request rate limits (opendht-wire.md §9.5): over-limit requests are
//! dropped silently. IPv6 sources are grouped by their /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// Counts requests in one-second windows.
#[derive(Debug)]
pub(super) struct RateLimiter {
    per_source: u32,
    global: u32,
    window_start: Instant,
    global_count: u32,
    counts: HashMap<[u8; 8], u32>,
}

impl RateLimiter {
    /// At most `global` requests a second in all, `global / 8` from one source.
    pub(super) fn new(global: u32, now: Instant) -> Self {
        Self {
            per_source: (global / 8).max(1),
            global,
            window_start: now,
            global_count: 0,
            counts: HashMap::new(),
        }
    }

    /// Whether a request from `source` may be processed.
    pub(super) fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) >= WINDOW {
            self.window_start = now;
            self.global_count = 0;
            self.counts.clear();
        }
        let count = self.counts.entry(source_key(source)).or_insert(0);
        if *count >= self.per_source || self.global_count >= self.global {
            return false;
        }
        *count += 1;
        self.global_count += 1;
        true
    }
}

/// The source a request counts against: an IPv4 address, or an IPv6 /64.
pub(super) fn source_key(source: IpAddr) -> [u8; 8] {
    match source {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            [a, b, c, d, 0, 0, 0, 0]
        }
        IpAddr::V6(ip) => {
            let octets = ip.octets();
            let mut prefix = [0; 8];
            prefix.copy_from_slice(&octets[..8]);
            prefix
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_source_and_the_total() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(80, start);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let allowed = (0..100).filter(|_| limiter.allow(one, start)).count();
        assert_eq!(allowed, 10);
        let same_64a: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64b: IpAddr = "2001:db8::2".parse().unwrap();
        let allowed = (0..20)
            .filter(|i| limiter.allow(if i % 2 == 0 { same_64a } else { same_64b }, start))
            .count();
        assert_eq!(allowed, 10, "an IPv6 /64 counts as one source");
        let total =
            (0..255u8).filter(|n| limiter.allow(IpAddr::from([10, 1, 0, *n]), start)).count();
        assert_eq!(total, 60, "the global budget is shared");
        assert!(limiter.allow(one, start + WINDOW), "a new window");
    }
}
