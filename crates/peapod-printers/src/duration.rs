//! kubectl's human durations (apimachinery `util/duration`) and "time since" cells.

use jiff::Timestamp;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// kubectl's HumanDuration ("5s", "2m3s", "10m", "3h4m", "5d", "2y"...) as used for AGE.
pub fn human_duration(d: std::time::Duration) -> String {
    human_nanos(d.as_nanos() as i128)
}

/// kubectl's ShortHumanDuration ("5s", "2m", "3h", "5d", "2y"): one unit only.
pub fn short_human_duration(d: std::time::Duration) -> String {
    short_human_nanos(d.as_nanos() as i128)
}

/// `translateTimestampSince`: the human age of `at` seen from `now`, "<unknown>" when unset.
pub fn since(at: Option<Timestamp>, now: Timestamp) -> String {
    match at {
        Some(at) => human_nanos(now.as_nanosecond() - at.as_nanosecond()),
        None => "<unknown>".to_string(),
    }
}

/// HumanDuration over a signed span, so clock skew gives "0s" or "<invalid>" as in Go.
pub(crate) fn human_nanos(nanos: i128) -> String {
    let seconds = nanos / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_remainder(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with_remainder(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

fn short_human_nanos(nanos: i128) -> String {
    let seconds = nanos / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

fn with_remainder(major: i128, major_unit: &str, minor: i128, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

/// Go's `time.Duration.String()`: "0s", "500ms", "1.5µs", "10.5s", "1m30s", "1h0m0s".
pub fn go_duration(d: std::time::Duration) -> String {
    let nanos = d.as_nanos();
    match nanos {
        0 => "0s".to_string(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", fraction(n, 3)),
        n if n < 1_000_000_000 => format!("{}ms", fraction(n, 6)),
        n => {
            let seconds = fraction(n % 60_000_000_000, 9);
            let minutes = n / 60_000_000_000;
            match (minutes / 60, minutes % 60) {
                (0, 0) => format!("{seconds}s"),
                (0, m) => format!("{m}m{seconds}s"),
                (h, m) => format!("{h}h{m}m{seconds}s"),
            }
        }
    }
}

/// `value / 10^digits` with the fraction's trailing zeros dropped.
fn fraction(value: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let (whole, part) = (value / scale, value % scale);
    if part == 0 {
        return whole.to_string();
    }
    let part = format!("{part:0width$}", width = digits as usize);
    format!("{whole}.{}", part.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    const YEAR: u64 = 365 * DAY;

    #[test]
    fn human_duration_matches_apimachinery_at_each_boundary() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (123, "2m3s"),
            (10 * MIN - 1, "9m59s"),
            (10 * MIN, "10m"),
            (3 * HOUR - 1, "179m"),
            (3 * HOUR, "3h"),
            (3 * HOUR + 4 * MIN, "3h4m"),
            (8 * HOUR - 1, "7h59m"),
            (8 * HOUR, "8h"),
            (48 * HOUR - 1, "47h"),
            (48 * HOUR, "2d"),
            (5 * DAY + 3 * HOUR, "5d3h"),
            (8 * DAY - 1, "7d23h"),
            (8 * DAY, "8d"),
            (2 * YEAR - 1, "729d"),
            (2 * YEAR, "2y"),
            (2 * YEAR + 10 * DAY, "2y10d"),
            (8 * YEAR - 1, "7y364d"),
            (8 * YEAR, "8y"),
            (20 * YEAR, "20y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(*secs)), *want, "{secs}s");
        }
    }

    #[test]
    fn human_duration_ignores_sub_second_part() {
        assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
    }

    #[test]
    fn negative_spans_tolerate_one_second_of_skew() {
        assert_eq!(human_nanos(-1_500_000_000), "0s");
        assert_eq!(human_nanos(-2_000_000_000), "<invalid>");
    }

    #[test]
    fn short_human_duration_uses_one_unit() {
        let cases: &[(u64, &str)] = &[
            (59, "59s"),
            (60, "1m"),
            (HOUR - 1, "59m"),
            (HOUR, "1h"),
            (DAY - 1, "23h"),
            (DAY, "1d"),
            (YEAR - 1, "364d"),
            (YEAR, "1y"),
        ];
        for (secs, want) in cases {
            assert_eq!(short_human_duration(Duration::from_secs(*secs)), *want);
        }
    }

    #[test]
    fn since_is_unknown_without_a_timestamp() {
        let now = Timestamp::from_second(1_000).unwrap();
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some(Timestamp::from_second(700).unwrap()), now), "5m");
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(go_duration(std::time::Duration::ZERO), "0s");
        assert_eq!(go_duration(std::time::Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(std::time::Duration::from_millis(501)), "501ms");
        assert_eq!(go_duration(std::time::Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(go_duration(std::time::Duration::from_nanos(999)), "999ns");
        assert_eq!(
            go_duration(std::time::Duration::from_millis(10_500)),
            "10.5s"
        );
        assert_eq!(
            go_duration(std::time::Duration::from_millis(90_000)),
            "1m30s"
        );
        assert_eq!(
            go_duration(std::time::Duration::from_millis(3_600_000)),
            "1h0m0s"
        );
        assert_eq!(
            go_duration(std::time::Duration::from_nanos(3_723_000_000_001)),
            "1h2m3.000000001s"
        );
    }
}
