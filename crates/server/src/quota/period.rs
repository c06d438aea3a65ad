//! Quota periods in UTC calendar arithmetic over Unix seconds (no time
//! zones, so no daylight-saving gaps). A monthly period starts at 00:00 UTC
//! on its reset day (1-28, which every month has); a quota that never
//! resets has one period, from when it was set. An end date is inclusive:
//! the quota stops allowing traffic at 00:00 UTC of the day after.

use time::{Date, Month, OffsetDateTime, Time};

const DAY: i64 = 86_400;

/// When a quota's periods begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Each month on this day (1-28).
    Monthly(u8),
    /// Never: one period for the life of the quota.
    Never,
}

fn date_of(unix: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date())
        .unwrap_or(Date::MIN)
}

fn midnight(d: Date) -> i64 {
    d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp()
}

/// The reset day `day` of the month before (y, m).
fn previous_month(year: i32, month: Month) -> (i32, Month) {
    match month {
        Month::January => (year - 1, Month::December),
        m => (year, m.previous()),
    }
}

fn next_month(year: i32, month: Month) -> (i32, Month) {
    match month {
        Month::December => (year + 1, Month::January),
        m => (year, m.next()),
    }
}

fn on_day(year: i32, month: Month, day: u8) -> i64 {
    Date::from_calendar_date(year, month, day)
        .map(midnight)
        .unwrap_or(0)
}

/// The start of the period that holds `now`. `set_at` is when a quota
/// that never resets was set (its one period starts there).
pub fn period_start(reset: Reset, set_at: i64, now: i64) -> i64 {
    match reset {
        Reset::Never => set_at,
        Reset::Monthly(day) => {
            let today = date_of(now);
            if today.day() >= day {
                on_day(today.year(), today.month(), day)
            } else {
                let (y, m) = previous_month(today.year(), today.month());
                on_day(y, m, day)
            }
        }
    }
}

/// When the period that starts at `start` ends (the next one starts);
/// None when it never does.
pub fn next_reset(reset: Reset, start: i64) -> Option<i64> {
    match reset {
        Reset::Never => None,
        Reset::Monthly(day) => {
            let d = date_of(start);
            let (y, m) = next_month(d.year(), d.month());
            Some(on_day(y, m, day))
        }
    }
}

/// Parses an end date `YYYY-MM-DD` into the moment the quota stops
/// allowing traffic: 00:00 UTC of the next day.
pub fn end_of_day(date: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = Date::parse(date, &format).ok()?;
    Some(midnight(d) + DAY)
}

/// The end date (`YYYY-MM-DD`, inclusive) of an `ends_at` moment.
pub fn end_date(ends_at: i64) -> String {
    let d = date_of(ends_at - DAY);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC calendar time.
    fn t(s: &str) -> i64 {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    }

    #[test]
    fn monthly_period_starts() {
        let cases = [
            // (reset day, now, period start, next reset)
            (
                1,
                "2026-03-15T12:00:00Z",
                "2026-03-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
            ),
            (
                1,
                "2026-03-01T00:00:00Z",
                "2026-03-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
            ),
            (
                1,
                "2026-02-28T23:59:59Z",
                "2026-02-01T00:00:00Z",
                "2026-03-01T00:00:00Z",
            ),
            (
                15,
                "2026-03-14T23:59:59Z",
                "2026-02-15T00:00:00Z",
                "2026-03-15T00:00:00Z",
            ),
            (
                15,
                "2026-03-15T00:00:00Z",
                "2026-03-15T00:00:00Z",
                "2026-04-15T00:00:00Z",
            ),
            // Across the year end, both ways.
            (
                10,
                "2026-01-05T08:00:00Z",
                "2025-12-10T00:00:00Z",
                "2026-01-10T00:00:00Z",
            ),
            (
                10,
                "2025-12-31T23:59:59Z",
                "2025-12-10T00:00:00Z",
                "2026-01-10T00:00:00Z",
            ),
            // Day 28 exists in every February, leap or not.
            (
                28,
                "2028-02-29T12:00:00Z",
                "2028-02-28T00:00:00Z",
                "2028-03-28T00:00:00Z",
            ),
            (
                28,
                "2027-03-01T00:00:00Z",
                "2027-02-28T00:00:00Z",
                "2027-03-28T00:00:00Z",
            ),
            (
                28,
                "2027-02-27T23:59:59Z",
                "2027-01-28T00:00:00Z",
                "2027-02-28T00:00:00Z",
            ),
            // A leap day is inside its period like any other.
            (
                1,
                "2024-02-29T23:59:59Z",
                "2024-02-01T00:00:00Z",
                "2024-03-01T00:00:00Z",
            ),
            // Long and short months: the 31st and the 30th.
            (
                20,
                "2026-01-31T10:00:00Z",
                "2026-01-20T00:00:00Z",
                "2026-02-20T00:00:00Z",
            ),
            (
                20,
                "2026-04-30T10:00:00Z",
                "2026-04-20T00:00:00Z",
                "2026-05-20T00:00:00Z",
            ),
        ];
        for (day, now, start, next) in cases {
            let reset = Reset::Monthly(day);
            let got = period_start(reset, 0, t(now));
            assert_eq!(got, t(start), "day {day} at {now}");
            assert_eq!(next_reset(reset, got), Some(t(next)), "day {day} at {now}");
            assert!(got <= t(now) && t(now) < t(next));
        }
    }

    #[test]
    fn never_reset_has_one_period() {
        let set = t("2026-01-31T10:11:12Z");
        assert_eq!(
            period_start(Reset::Never, set, t("2030-06-01T00:00:00Z")),
            set
        );
        assert_eq!(next_reset(Reset::Never, set), None);
    }

    #[test]
    fn end_dates_are_inclusive_days() {
        let cases = [
            ("2026-12-31", "2027-01-01T00:00:00Z"),
            ("2028-02-29", "2028-03-01T00:00:00Z"),
            ("2027-02-28", "2027-03-01T00:00:00Z"),
            ("2026-04-30", "2026-05-01T00:00:00Z"),
        ];
        for (date, end) in cases {
            assert_eq!(end_of_day(date), Some(t(end)), "{date}");
            assert_eq!(end_date(t(end)), date);
        }
        for bad in [
            "2027-02-29",
            "2026-13-01",
            "26-01-01",
            "2026-1-1",
            "tomorrow",
            "",
        ] {
            assert_eq!(end_of_day(bad), None, "{bad}");
        }
    }
}
