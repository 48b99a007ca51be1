//! Wall-clock time as rdv stores and reports it: Unix seconds or milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` in Unix seconds (negative before 1970).
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    unix_seconds(SystemTime::now())
}

/// Now, in Unix milliseconds (0 on a clock set before 1970).
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn seconds_count_from_1970_both_ways() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(90)), 90);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(90)), -90);
        let (seconds, millis) = (unix_now(), unix_now_ms());
        assert!((millis / 1000 - seconds).abs() <= 1, "{seconds} {millis}");
    }
}
