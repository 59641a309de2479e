//! Days and minutes of the UTC calendar, as usage is kept: a day is `YYYY-MM-DD` (what the
//! store keys rows by and the API takes), a minute is the minute of that day (0..1440). Pure
//! arithmetic on milliseconds since the Unix epoch (no clock read here).

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;

/// The UTC day of `ms` as `YYYY-MM-DD`.
pub fn day_of(ms: u64) -> String {
    let days = i64::try_from(ms / DAY_MS).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The minute of its UTC day `ms` falls in (0..1440).
pub fn minute_of_day(ms: u64) -> u32 {
    // < 1440: the cast cannot truncate.
    ((ms % DAY_MS) / 60_000) as u32
}

/// Parses a `YYYY-MM-DD` day (a real date of the Gregorian calendar, years 1970..=9999) into
/// days since the Unix epoch; `None` for anything else.
pub fn parse_day(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if y < 1970 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// The `YYYY-MM-DD` of a day number (days since the Unix epoch).
pub fn format_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_minutes_of_known_instants() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(minute_of_day(0), 0);
        // 2024-02-29T23:59:59.999Z
        assert_eq!(day_of(1_709_251_199_999), "2024-02-29");
        assert_eq!(minute_of_day(1_709_251_199_999), 1439);
        assert_eq!(day_of(1_709_251_200_000), "2024-03-01");
        // 2026-12-06T10:30:00Z
        assert_eq!(day_of(1_796_553_000_000), "2026-12-06");
        assert_eq!(minute_of_day(1_796_553_000_000), 630);
    }

    #[test]
    fn parsing_accepts_real_dates_only_and_round_trips() {
        for day in [
            "1970-01-01",
            "2000-02-29",
            "2024-12-31",
            "2026-12-06",
            "9999-12-31",
        ] {
            let n = parse_day(day).expect(day);
            assert_eq!(format_day(n), day);
        }
        for bad in [
            "",
            "2024-1-01",
            "2023-02-29",
            "1900-02-28",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "20240101xx",
            "+024-01-01",
            "2024/01/01",
            "1969-12-31",
            "２０２４-01-01",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        // Every day of a leap span round-trips.
        let start = parse_day("1999-12-25").expect("valid");
        for n in start..start + 800 {
            assert_eq!(parse_day(&format_day(n)), Some(n));
        }
    }
}
