//! Relative times ("5 minutes ago"): the bucketing is pure and tested here; the words are in
//! [`crate::i18n`].

/// How long ago something happened, in the unit a reader wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relative {
    /// Under a minute (or a clock slightly ahead of ours).
    JustNow,
    /// 1–59 minutes.
    Minutes(u64),
    /// 1–23 hours.
    Hours(u64),
    /// 1–6 days.
    Days(u64),
    /// A week or more: show the date instead.
    Date,
}

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Buckets the time between `then_ms` and `now_ms` (both milliseconds since the Unix epoch).
/// A timestamp in the future (the server's clock ahead of the browser's) reads as "just now".
pub fn relative(now_ms: u64, then_ms: u64) -> Relative {
    let age = now_ms.saturating_sub(then_ms);
    if age < MINUTE {
        Relative::JustNow
    } else if age < HOUR {
        Relative::Minutes(age / MINUTE)
    } else if age < DAY {
        Relative::Hours(age / HOUR)
    } else if age < 7 * DAY {
        Relative::Days(age / DAY)
    } else {
        Relative::Date
    }
}

/// How long until the text for `then_ms` changes, so a refresh timer can be set no sooner than
/// needed (capped at a minute).
pub fn next_change_in(now_ms: u64, then_ms: u64) -> u64 {
    let age = now_ms.saturating_sub(then_ms);
    let unit = if age < HOUR { MINUTE } else { HOUR };
    (unit - age % unit).min(MINUTE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        let now = 10 * DAY;
        assert_eq!(relative(now, now), Relative::JustNow);
        assert_eq!(relative(now, now + 5_000), Relative::JustNow);
        assert_eq!(relative(now, now - 59_999), Relative::JustNow);
        assert_eq!(relative(now, now - MINUTE), Relative::Minutes(1));
        assert_eq!(relative(now, now - 59 * MINUTE), Relative::Minutes(59));
        assert_eq!(relative(now, now - HOUR), Relative::Hours(1));
        assert_eq!(
            relative(now, now - 23 * HOUR - 59 * MINUTE),
            Relative::Hours(23)
        );
        assert_eq!(relative(now, now - DAY), Relative::Days(1));
        assert_eq!(relative(now, now - 6 * DAY), Relative::Days(6));
        assert_eq!(relative(now, now - 7 * DAY), Relative::Date);
        assert_eq!(relative(now, 0), Relative::Date);
    }

    #[test]
    fn refresh_interval() {
        assert_eq!(next_change_in(10_000, 0), 50_000);
        assert_eq!(next_change_in(MINUTE, 0), MINUTE);
        assert_eq!(next_change_in(2 * HOUR + 1, 0), MINUTE);
    }
}
