//! Spend-control arithmetic both planes share: budget periods and their calendar windows (UTC),
//! the OpenAI-style reset durations of `x-ratelimit-reset-*`, and the model glob of `model_limits`.
//!
//! The data plane charges budgets per window; `tokenrouter keys show` sums stored usage over the
//! same window. Both call [`window`], so they always agree where a period starts and ends.

use std::time::Duration;

use crate::v1::Limits;

/// Milliseconds in one UTC day (no leap seconds, as in Unix time).
const DAY_MS: i64 = 86_400_000;

/// The period a budget is spent over. Calendar periods are in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetPeriod {
    /// From 00:00 UTC to the next 00:00 UTC.
    Day,
    /// From Monday 00:00 UTC to the next Monday 00:00 UTC.
    Week,
    /// From the first of the month 00:00 UTC to the first of the next month.
    Month,
    /// Never resets.
    Total,
}

impl BudgetPeriod {
    /// Every period, in the order help texts list them.
    pub const ALL: [BudgetPeriod; 4] = [Self::Day, Self::Week, Self::Month, Self::Total];

    /// The period a `budget_period` string names (`day`, `week`, `month`, `total`), if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The name stored in `Limits.budget_period`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Total => "total",
        }
    }
}

impl std::fmt::Display for BudgetPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Limits {
    /// Whether no field sets a limit (`rpm_burst` and `budget_period` only qualify other fields).
    pub fn is_unlimited(&self) -> bool {
        self.rpm == 0 && self.tpm == 0 && self.max_concurrent == 0 && self.budget_usd == 0.0
    }

    /// The parsed `budget_period`, if it names one.
    pub fn period(&self) -> Option<BudgetPeriod> {
        BudgetPeriod::parse(&self.budget_period)
    }
}

/// The budget window holding `now_unix_ms`: its start, and its end (exclusive) unless the period
/// is [`BudgetPeriod::Total`], which starts at 0 and never ends.
pub fn window(period: BudgetPeriod, now_unix_ms: i64) -> (i64, Option<i64>) {
    let day = now_unix_ms.div_euclid(DAY_MS);
    let at = |days: i64| days.saturating_mul(DAY_MS);
    match period {
        BudgetPeriod::Day => (at(day), Some(at(day + 1))),
        BudgetPeriod::Week => {
            // 1970-01-01 was a Thursday: day 0 is 3 days after a Monday.
            let monday = day - (day + 3).rem_euclid(7);
            (at(monday), Some(at(monday + 7)))
        }
        BudgetPeriod::Month => {
            let (year, month, _) = civil_from_days(day);
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            (
                at(days_from_civil(year, month, 1)),
                Some(at(days_from_civil(next_year, next_month, 1))),
            )
        }
        BudgetPeriod::Total => (0, None),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date (year, month 1–12, day 1–31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both fit in u32: day 1–31, month 1–12.
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A Unix time in milliseconds as RFC 3339 UTC to the second, e.g. `2026-12-01T00:00:00Z`.
pub fn format_utc(unix_ms: i64) -> String {
    let (year, month, day) = civil_from_days(unix_ms.div_euclid(DAY_MS));
    let secs = unix_ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A time until reset in the form of OpenAI's `x-ratelimit-reset-*` headers (Go durations):
/// `20ms` under a second, else hours, minutes and seconds with milliseconds as a decimal
/// fraction (`1s`, `1.5s`, `6m0s`, `1h2m3s`). Rounded up to the millisecond so a client never
/// retries early; zero is `0s`.
pub fn format_reset(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let ms = nanos.div_ceil(1_000_000);
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, minutes) = (ms / 3_600_000, ms / 60_000 % 60);
    let (secs, frac) = (ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&secs.to_string());
    if frac > 0 {
        let digits = format!("{frac:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// Whole-string match where `*` stands for any run of characters (the data plane's matching of
/// `allowed_models`, routing rules and `model_limits`).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC date and time.
    fn utc(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        days_from_civil(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000
    }

    #[test]
    fn periods_parse_and_print() {
        for p in BudgetPeriod::ALL {
            assert_eq!(BudgetPeriod::parse(p.as_str()), Some(p));
        }
        assert_eq!(BudgetPeriod::parse("monthly"), None);
        assert_eq!(BudgetPeriod::parse("Day"), None);
        assert_eq!(BudgetPeriod::parse(""), None);
        assert_eq!(BudgetPeriod::Week.to_string(), "week");
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(
            format_utc(utc(2026, 12, 2, 10, 25, 31) + 999),
            "2026-12-02T10:25:31Z"
        );
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn days_start_at_midnight_utc() {
        let now = utc(2026, 12, 2, 10, 25, 31);
        let (start, end) = window(BudgetPeriod::Day, now);
        assert_eq!(start, utc(2026, 12, 2, 0, 0, 0));
        assert_eq!(end, Some(utc(2026, 12, 3, 0, 0, 0)));
        // The last millisecond of a day belongs to it; midnight starts the next one.
        let midnight = utc(2026, 12, 3, 0, 0, 0);
        assert_eq!(window(BudgetPeriod::Day, midnight - 1).0, start);
        assert_eq!(window(BudgetPeriod::Day, midnight).0, midnight);
        // Before 1970 too.
        assert_eq!(window(BudgetPeriod::Day, -1).0, -DAY_MS);
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-12-02 is a Wednesday; its week began Monday 2026-11-30.
        let (start, end) = window(BudgetPeriod::Week, utc(2026, 12, 2, 10, 0, 0));
        assert_eq!(start, utc(2026, 11, 30, 0, 0, 0));
        assert_eq!(end, Some(utc(2026, 12, 7, 0, 0, 0)));
        // Sunday 23:59:59 is still the old week; Monday 00:00 a new one.
        let sunday = utc(2026, 12, 6, 23, 59, 59);
        assert_eq!(window(BudgetPeriod::Week, sunday).0, start);
        let monday = utc(2026, 12, 7, 0, 0, 0);
        assert_eq!(window(BudgetPeriod::Week, monday).0, monday);
        // A week across the year boundary: Monday 2024-12-30 to Monday 2025-01-06.
        let (start, end) = window(BudgetPeriod::Week, utc(2025, 1, 1, 12, 0, 0));
        assert_eq!(start, utc(2024, 12, 30, 0, 0, 0));
        assert_eq!(end, Some(utc(2025, 1, 6, 0, 0, 0)));
        // The epoch's week (1970-01-01 was a Thursday).
        assert_eq!(window(BudgetPeriod::Week, 0).0, utc(1969, 12, 29, 0, 0, 0));
    }

    #[test]
    fn months_are_calendar_months() {
        let (start, end) = window(BudgetPeriod::Month, utc(2026, 12, 2, 10, 0, 0));
        assert_eq!(start, utc(2026, 12, 1, 0, 0, 0));
        assert_eq!(
            end,
            Some(utc(2027, 1, 1, 0, 0, 0)),
            "December ends in a new year"
        );
        // Month ends: 31, 30, and February in leap and common years.
        for (y, m, last) in [
            (2026, 1, 31),
            (2026, 4, 30),
            (2024, 2, 29),
            (2025, 2, 28),
            (2000, 2, 29),
            (1900, 2, 28),
        ] {
            let late = utc(y, m, last, 23, 59, 59) + 999;
            let (start, end) = window(BudgetPeriod::Month, late);
            assert_eq!(start, utc(y, m, 1, 0, 0, 0), "{y}-{m}");
            assert_eq!(end, Some(late + 1), "{y}-{m} ends after day {last}");
            assert_eq!(window(BudgetPeriod::Month, late + 1).0, late + 1);
        }
    }

    #[test]
    fn total_never_resets() {
        assert_eq!(
            window(BudgetPeriod::Total, utc(2026, 12, 2, 0, 0, 0)),
            (0, None)
        );
    }

    #[test]
    fn reset_durations_look_like_openai_headers() {
        let ms = Duration::from_millis;
        assert_eq!(format_reset(Duration::ZERO), "0s");
        assert_eq!(format_reset(Duration::from_micros(300)), "1ms");
        assert_eq!(format_reset(ms(20)), "20ms");
        assert_eq!(format_reset(ms(999)), "999ms");
        assert_eq!(format_reset(ms(1000)), "1s");
        assert_eq!(format_reset(ms(1500)), "1.5s");
        assert_eq!(format_reset(ms(8640)), "8.64s");
        assert_eq!(format_reset(ms(59_999)), "59.999s");
        assert_eq!(format_reset(ms(360_000)), "6m0s");
        assert_eq!(format_reset(ms(3_723_000)), "1h2m3s");
        assert_eq!(format_reset(ms(3_600_000)), "1h0m0s");
        assert_eq!(format_reset(Duration::from_secs(49 * 3600)), "49h0m0s");
        // Rounded up: 1.0000001 s waits 1.001 s.
        assert_eq!(format_reset(Duration::from_nanos(1_000_000_100)), "1.001s");
    }

    #[test]
    fn globs_match_whole_strings() {
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_match("gpt-4o*", "gpt-4o"));
        assert!(!glob_match("gpt-4o*", "openai:gpt-4o"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXbYcd"));
        assert!(glob_match("*-mini", "gpt-4o-mini"));
        assert!(!glob_match("ab*ba", "aba"), "pieces may not overlap");
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn limits_know_when_they_set_nothing() {
        let mut limits = Limits {
            budget_period: "day".into(),
            rpm_burst: 5,
            ..Default::default()
        };
        assert!(limits.is_unlimited());
        assert_eq!(limits.period(), Some(BudgetPeriod::Day));
        limits.tpm = 1;
        assert!(!limits.is_unlimited());
    }
}
