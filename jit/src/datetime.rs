//! Calendar arithmetic on days/microseconds since the epoch (UTC, proleptic Gregorian), shared by
//! the interpreter and mirrored by the Cranelift lowering. Owns date parsing/formatting helpers;
//! must not know about Arrow arrays.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Microseconds per day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// (year, month, day) of a day number (Howard Hinnant's civil_from_days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day number of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// date_trunc units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncUnit {
    /// year
    Year,
    /// quarter
    Quarter,
    /// month
    Month,
    /// week (Monday)
    Week,
    /// day
    Day,
    /// hour
    Hour,
    /// minute
    Minute,
    /// second
    Second,
    /// millisecond
    Millisecond,
    /// microsecond
    Microsecond,
}

impl TruncUnit {
    /// Parses a Spark unit name (case-insensitive; also yyyy/yy/mon/mm/dd).
    pub fn parse(s: &str) -> Option<TruncUnit> {
        Some(match s.to_ascii_lowercase().as_str() {
            "year" | "yyyy" | "yy" => TruncUnit::Year,
            "quarter" => TruncUnit::Quarter,
            "month" | "mon" | "mm" => TruncUnit::Month,
            "week" => TruncUnit::Week,
            "day" | "dd" => TruncUnit::Day,
            "hour" => TruncUnit::Hour,
            "minute" => TruncUnit::Minute,
            "second" => TruncUnit::Second,
            "millisecond" => TruncUnit::Millisecond,
            "microsecond" => TruncUnit::Microsecond,
            _ => return None,
        })
    }
}

/// Truncates a timestamp (µs, UTC) to a unit; None when the result is below the i64 range.
pub fn trunc_micros(ts: i64, unit: TruncUnit) -> Option<i64> {
    let floor = |m: i64| ts.checked_sub(ts.rem_euclid(m));
    let days = ts.div_euclid(MICROS_PER_DAY);
    let (y, mo, _) = civil_from_days(days);
    let day_start = |d: i64| d.checked_mul(MICROS_PER_DAY);
    match unit {
        TruncUnit::Microsecond => Some(ts),
        TruncUnit::Millisecond => floor(1_000),
        TruncUnit::Second => floor(1_000_000),
        TruncUnit::Minute => floor(60_000_000),
        TruncUnit::Hour => floor(3_600_000_000),
        TruncUnit::Day => floor(MICROS_PER_DAY),
        // 1970-01-01 was a Thursday; Monday-based weeks.
        TruncUnit::Week => day_start(days - (days + 3).rem_euclid(7)),
        TruncUnit::Month => day_start(days_from_civil(y, mo, 1)),
        TruncUnit::Quarter => day_start(days_from_civil(y, (mo - 1) / 3 * 3 + 1, 1)),
        TruncUnit::Year => day_start(days_from_civil(y, 1, 1)),
    }
}

/// Translates a Spark datetime pattern (yyyy-MM-dd HH:mm:ss.SSS) into a chrono format string.
pub fn spark_pattern_to_chrono(p: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y".to_string(),
            ('y', _) => "%Y".to_string(),
            ('M', 1) => "%-m".to_string(),
            ('M', 2) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('M', _) => "%B".to_string(),
            ('d', 1) => "%-d".to_string(),
            ('d', _) => "%d".to_string(),
            ('H', 1) => "%-H".to_string(),
            ('H', _) => "%H".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', 1) => "%-M".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', 1) => "%-S".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', 3) => "%3f".to_string(),
            ('S', 6) => "%6f".to_string(),
            ('S', 9) => "%9f".to_string(),
            ('a', _) => "%p".to_string(),
            ('E', 1..=3) => "%a".to_string(),
            ('E', _) => "%A".to_string(),
            ('%', _) => "%%".repeat(n),
            ('\'', _) => {
                // quoted literal text
                let mut j = i + 1;
                let mut lit = String::new();
                while j < chars.len() && chars[j] != '\'' {
                    lit.push(chars[j]);
                    j += 1;
                }
                out += &lit.replace('%', "%%");
                i = j + 1;
                continue;
            }
            (c, n) => c.to_string().repeat(n),
        };
        out += &piece;
        i += n;
    }
    out
}

/// Parses a timestamp string (µs since epoch, UTC). Without a pattern accepts
/// `yyyy-MM-dd`, `yyyy-MM-dd HH:mm[:ss[.ffffff]]`, the `T` separator and a trailing `Z`.
pub fn parse_timestamp(s: &str, pattern: Option<&str>) -> Option<i64> {
    let s = s.trim();
    if let Some(p) = pattern {
        let f = spark_pattern_to_chrono(p);
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, &f) {
            return Some(dt.and_utc().timestamp_micros());
        }
        return NaiveDate::parse_from_str(s, &f)
            .ok()
            .and_then(|d| days_from_naive(d).checked_mul(MICROS_PER_DAY));
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    parse_date(s).map(|d| d as i64 * MICROS_PER_DAY)
}

fn days_from_naive(d: NaiveDate) -> i64 {
    use chrono::Datelike;
    days_from_civil(d.year() as i64, d.month(), d.day())
}

/// Parses `yyyy-MM-dd` (also `yyyy-M-d`) into days since the epoch.
pub fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    i32::try_from(days_from_naive(d)).ok()
}

/// Formats a date as `yyyy-MM-dd`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Formats a timestamp as Spark does when casting to string: `yyyy-MM-dd HH:mm:ss[.fraction]`.
pub fn format_timestamp(ts: i64) -> String {
    let days = ts.div_euclid(MICROS_PER_DAY);
    let rem = ts.rem_euclid(MICROS_PER_DAY);
    let (h, mi, s, us) = (
        rem / 3_600_000_000,
        rem / 60_000_000 % 60,
        rem / 1_000_000 % 60,
        rem % 1_000_000,
    );
    let mut out = format!("{} {h:02}:{mi:02}:{s:02}", format_date(days));
    if us != 0 {
        let frac = format!("{us:06}");
        out.push('.');
        out += frac.trim_end_matches('0');
    }
    out
}

/// Formats a timestamp (µs, UTC) with a Spark pattern; None if out of chrono's range.
pub fn format_with_pattern(ts: i64, pattern: &str) -> Option<String> {
    let dt: DateTime<Utc> = Utc.timestamp_micros(ts).single()?;
    let f = spark_pattern_to_chrono(pattern);
    let mut out = String::new();
    use std::fmt::Write;
    write!(out, "{}", dt.format(&f)).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn civil_round_trip() {
        for d in [
            -1_000_000i64,
            -719_468,
            -1,
            0,
            1,
            59,
            365,
            10_957,
            2_932_896,
        ] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
    #[test]
    fn trunc_and_format() {
        let ts = parse_timestamp("2024-05-17 13:45:12.5", None).unwrap();
        assert_eq!(format_timestamp(ts), "2024-05-17 13:45:12.5");
        assert_eq!(
            format_timestamp(trunc_micros(ts, TruncUnit::Month).unwrap()),
            "2024-05-01 00:00:00"
        );
        assert_eq!(
            format_timestamp(trunc_micros(ts, TruncUnit::Week).unwrap()),
            "2024-05-13 00:00:00"
        );
        assert_eq!(
            format_timestamp(trunc_micros(ts, TruncUnit::Quarter).unwrap()),
            "2024-04-01 00:00:00"
        );
        assert_eq!(
            format_with_pattern(ts, "yyyy/MM/dd HH").unwrap(),
            "2024/05/17 13"
        );
        assert_eq!(
            parse_timestamp("17.05.2024", Some("dd.MM.yyyy")),
            trunc_micros(ts, TruncUnit::Day)
        );
    }
}
