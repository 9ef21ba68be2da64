//! A calendar date (proleptic Gregorian), as days since 1970-01-01, and the date
//! arithmetic the rules need: adding days and months, weekdays, `YYYY-MM-DD`.

use ledger::timestamp::{civil_from_days, days_from_civil, days_in_month};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Day {
    /// The date of a year, month (1–12) and day of month, if it exists.
    pub fn from_ymd(y: i64, m: i64, d: i64) -> Option<Day> {
        ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m))
            .then(|| Day(days_from_civil(y, m, d)))
    }

    /// Parses `YYYY-MM-DD`; `None` if it is not a date that exists.
    pub fn parse(text: &str) -> Option<Day> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |s: &str| {
            s.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| s.parse::<i64>().ok())
                .flatten()
        };
        Day::from_ymd(num(&text[..4])?, num(&text[5..7])?, num(&text[8..])?)
    }

    pub fn ymd(self) -> (i64, i64, i64) {
        civil_from_days(self.0)
    }

    pub fn year(self) -> i64 {
        self.ymd().0
    }

    /// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
    pub fn weekday(self) -> usize {
        // rem_euclid(7) is in 0..7, so the cast cannot truncate.
        (self.0 + 3).rem_euclid(7) as usize
    }

    pub fn is_weekend(self) -> bool {
        self.weekday() >= 5
    }

    pub fn plus_days(self, days: i64) -> Day {
        Day(self.0 + days)
    }

    /// The same date `months` later, or that month's last day if it has no such date
    /// (31 Jan + 1 month = 28 or 29 Feb), as the ICO counts a month.
    pub fn plus_months(self, months: i64) -> Day {
        let (y, m, d) = self.ymd();
        let index = y * 12 + (m - 1) + months;
        let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
        Day(days_from_civil(y, m, d.min(days_in_month(y, m))))
    }

    /// `Mon 3 Feb 2025`: how a person reads a date.
    pub fn long(self) -> String {
        let (y, m, d) = self.ymd();
        // m is 1..=12 by construction of civil_from_days.
        let month = MONTHS[(m - 1).clamp(0, 11) as usize];
        format!("{} {d} {month} {y}", WEEKDAYS[self.weekday()])
    }
}

/// `YYYY-MM-DD`.
impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_clamp_to_the_month_end_and_cross_years() {
        let d = |s: &str| Day::parse(s).unwrap();
        assert_eq!(d("2025-01-31").plus_months(1), d("2025-02-28"));
        assert_eq!(d("2024-01-31").plus_months(1), d("2024-02-29"));
        assert_eq!(d("2025-01-31").plus_months(3), d("2025-04-30"));
        assert_eq!(d("2025-12-15").plus_months(1), d("2026-01-15"));
        assert_eq!(d("2025-11-30").plus_months(3), d("2026-02-28"));
        assert_eq!(d("2025-02-03").long(), "Mon 3 Feb 2025");
    }

    #[test]
    fn only_real_dates_parse() {
        assert!(Day::parse("2025-02-29").is_none());
        assert!(Day::parse("2024-02-29").is_some());
        assert!(Day::parse("2025-13-01").is_none());
        assert!(Day::parse("25-01-01").is_none());
        assert!(Day::parse("2025-1-011").is_none());
    }
}
