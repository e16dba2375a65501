//! Time: the [`Clock`] trait, the real clock, a manual clock for tests, and the
//! API's timestamp format (SPEC section 1: UTC, `YYYY-MM-DDThh:mm:ssZ`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time, in whole seconds since the Unix epoch.
///
/// Every time-driven behaviour (deletion windows, material expiry, rotation,
/// token expiry, signature windows) reads this clock, so tests can control time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now(&self) -> i64;

    /// Milliseconds since 1970-01-01T00:00:00Z, for intervals shorter than a
    /// second (the key cache's `cache_ttl`). By default `now() * 1000`.
    fn now_millis(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The operating system's clock. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }

    fn now_millis(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// A clock that moves only when told to. Clones share the same time, so a test
/// keeps one clone and hands another to the builder.
///
/// ```
/// use localkms::ManualClock;
/// let clock = ManualClock::new(1_700_000_000);
/// clock.advance(86_400);
/// assert_eq!(localkms::format_timestamp(clock.now_unix()), "2023-11-15T22:13:20Z");
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock that reads `unix_seconds` until moved.
    pub fn new(unix_seconds: i64) -> Self {
        Self(Arc::new(AtomicI64::new(unix_seconds.saturating_mul(1000))))
    }

    /// Sets the time.
    pub fn set(&self, unix_seconds: i64) {
        self.0
            .store(unix_seconds.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the time forward by `seconds` (backward if negative).
    pub fn advance(&self, seconds: i64) {
        self.0
            .fetch_add(seconds.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the time forward by `millis` milliseconds (backward if negative).
    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    /// The current time of this clock, in whole seconds.
    pub fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst).div_euclid(1000)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.now_unix()
    }

    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats Unix seconds as `YYYY-MM-DDThh:mm:ssZ` (UTC).
pub fn format_timestamp(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Parses `YYYY-MM-DDThh:mm:ssZ` (UTC) into Unix seconds. `None` if malformed.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days <-> civil date algorithms (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_timestamp(1_459_135_988), "2016-03-28T03:33:08Z");
        assert_eq!(format_timestamp(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parse_is_the_inverse_of_format() {
        for t in [
            0,
            1,
            951_782_400,
            1_459_135_988,
            1_795_000_000,
            4_102_444_799,
            -86_401,
        ] {
            assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t), "{t}");
        }
        for bad in [
            "",
            "2016-03-28T03:33:08",
            "2016-02-30T00:00:00Z",
            "2016-13-01T00:00:00Z",
            "2016-03-28 03:33:08Z",
            "+016-03-28T03:33:08Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(10);
        let b = a.clone();
        a.advance(5);
        assert_eq!(b.now(), 15);
        b.set(3);
        assert_eq!(a.now(), 3);
    }
}
