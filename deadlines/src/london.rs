//! Europe/London civil time: GMT in winter, BST (UTC+1) from 01:00 UTC on the last
//! Sunday of March to 01:00 UTC on the last Sunday of October (the rule since 1996).
//! Instants are stored in UTC; dates are worked out here.

use crate::day::Day;
use ledger::timestamp::{days_from_civil, Micros};

const DAY: Micros = 86_400_000_000;
const HOUR: Micros = 3_600_000_000;

fn last_sunday(year: i64, month: i64) -> i64 {
    let last = Day(days_from_civil(year, month, 31));
    last.0 - ((last.weekday() + 1) % 7) as i64
}

/// The offset of London from UTC at an instant.
pub fn offset(at: Micros) -> Micros {
    let year = Day(at.div_euclid(DAY)).year();
    let start = last_sunday(year, 3) * DAY + HOUR;
    let end = last_sunday(year, 10) * DAY + HOUR;
    if (start..end).contains(&at) {
        HOUR
    } else {
        0
    }
}

/// The London date of an instant.
pub fn day(at: Micros) -> Day {
    Day((at + offset(at)).div_euclid(DAY))
}

/// `Fri 27 Mar 2026 16:30 GMT`: an instant as a person in the UK reads it.
pub fn long(at: Micros) -> String {
    let local = at + offset(at);
    let minutes = local.rem_euclid(DAY) / 60_000_000;
    let zone = if offset(at) == 0 { "GMT" } else { "BST" };
    format!(
        "{} {:02}:{:02} {zone}",
        day(at).long(),
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::timestamp::parse_utc;

    #[test]
    fn london_follows_british_summer_time() {
        let at = |s: &str| parse_utc(s).unwrap();
        assert_eq!(
            long(at("2026-03-29T00:59:00Z")),
            "Sun 29 Mar 2026 00:59 GMT"
        );
        assert_eq!(
            long(at("2026-03-29T01:00:00Z")),
            "Sun 29 Mar 2026 02:00 BST"
        );
        assert_eq!(
            long(at("2026-10-25T00:59:00Z")),
            "Sun 25 Oct 2026 01:59 BST"
        );
        assert_eq!(
            long(at("2026-10-25T01:00:00Z")),
            "Sun 25 Oct 2026 01:00 GMT"
        );
        assert_eq!(
            day(at("2026-06-30T23:30:00Z")),
            Day::parse("2026-07-01").unwrap()
        );
    }
}
