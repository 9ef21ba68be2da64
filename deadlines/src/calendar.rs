//! The UK bank-holiday calendars, shipped in the repo and versioned
//! (`deadlines/calendars/uk-bank-holidays.json`, made by `generate.py` beside it):
//! England and Wales, Scotland, Northern Ireland, and the UK as a whole (a holiday in any
//! division), which FOI and EIR count in (FOIA s10(6)). Nothing is fetched at run time;
//! a date outside the table's years is an error, never a guess.

use crate::day::Day;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// A division of the UK with its own bank holidays; a partner's division is a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Division {
    EnglandAndWales,
    Scotland,
    NorthernIreland,
}

impl Division {
    pub const ALL: [Division; 3] = [
        Division::EnglandAndWales,
        Division::Scotland,
        Division::NorthernIreland,
    ];

    /// The code used in settings, on the command line and in the table.
    pub fn code(self) -> &'static str {
        match self {
            Division::EnglandAndWales => "england-and-wales",
            Division::Scotland => "scotland",
            Division::NorthernIreland => "northern-ireland",
        }
    }

    pub fn parse(code: &str) -> Option<Division> {
        Division::ALL.into_iter().find(|d| d.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Division::EnglandAndWales => "England and Wales",
            Division::Scotland => "Scotland",
            Division::NorthernIreland => "Northern Ireland",
        }
    }
}

/// Whose bank holidays make a day a non-working day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Division(Division),
    /// A bank holiday anywhere in the UK.
    Uk,
}

impl Region {
    pub fn name(self) -> &'static str {
        match self {
            Region::Division(d) => d.name(),
            Region::Uk => "any part of the UK",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("the bank-holiday calendar {version} covers {first}–{last}; {day} is outside it")]
    OutOfRange {
        version: String,
        first: i64,
        last: i64,
        day: Day,
    },
}

#[derive(Deserialize)]
struct Table {
    version: String,
    first_year: i64,
    last_year: i64,
    divisions: HashMap<String, Vec<Holiday>>,
}

#[derive(Deserialize)]
struct Holiday {
    date: String,
    title: String,
}

/// The bank holidays of every division over the table's years.
#[derive(Debug)]
pub struct Calendar {
    version: String,
    first_year: i64,
    last_year: i64,
    holidays: HashMap<Division, BTreeMap<Day, String>>,
}

const TABLE: &str = include_str!("../calendars/uk-bank-holidays.json");

impl Calendar {
    /// The calendar shipped with this build.
    pub fn shipped() -> &'static Calendar {
        static SHIPPED: OnceLock<Calendar> = OnceLock::new();
        SHIPPED.get_or_init(|| {
            // The table is compiled in and checked by this crate's tests; failing to
            // read it is a build defect, not an input error.
            #[allow(clippy::expect_used)]
            Calendar::from_json(TABLE).expect("the shipped bank-holiday table is valid")
        })
    }

    fn from_json(text: &str) -> Result<Calendar, String> {
        let table: Table = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut holidays = HashMap::new();
        for division in Division::ALL {
            let listed = table
                .divisions
                .get(division.code())
                .ok_or_else(|| format!("no {} in the table", division.code()))?;
            let mut days = BTreeMap::new();
            for h in listed {
                let day = Day::parse(&h.date).ok_or_else(|| format!("bad date {}", h.date))?;
                days.insert(day, h.title.clone());
            }
            holidays.insert(division, days);
        }
        Ok(Calendar {
            version: table.version,
            first_year: table.first_year,
            last_year: table.last_year,
            holidays,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn years(&self) -> (i64, i64) {
        (self.first_year, self.last_year)
    }

    fn check(&self, day: Day) -> Result<(), CalendarError> {
        if (self.first_year..=self.last_year).contains(&day.year()) {
            Ok(())
        } else {
            Err(CalendarError::OutOfRange {
                version: self.version.clone(),
                first: self.first_year,
                last: self.last_year,
                day,
            })
        }
    }

    /// The bank holiday on `day` in `region`, by name (in the UK calendar, the first
    /// division's, with the division named).
    pub fn holiday(&self, region: Region, day: Day) -> Result<Option<String>, CalendarError> {
        self.check(day)?;
        let in_division = |d: Division| self.holidays.get(&d).and_then(|m| m.get(&day));
        Ok(match region {
            Region::Division(d) => in_division(d).cloned(),
            Region::Uk => Division::ALL
                .into_iter()
                .find_map(|d| in_division(d).map(|t| format!("{t}, {}", d.name()))),
        })
    }

    /// Monday to Friday and not a bank holiday in `region`.
    pub fn is_working_day(&self, region: Region, day: Day) -> Result<bool, CalendarError> {
        Ok(!day.is_weekend() && self.holiday(region, day)?.is_none())
    }

    /// `day` if it is a working day, else the next one.
    pub fn on_or_after(&self, region: Region, day: Day) -> Result<Day, CalendarError> {
        let mut d = day;
        while !self.is_working_day(region, d)? {
            d = d.plus_days(1);
        }
        Ok(d)
    }

    /// The `n`th working day after `day` (day 1 is the first working day after it).
    pub fn working_days_after(
        &self,
        region: Region,
        day: Day,
        n: u32,
    ) -> Result<Day, CalendarError> {
        let mut d = day;
        let mut counted = 0;
        while counted < n {
            d = d.plus_days(1);
            if self.is_working_day(region, d)? {
                counted += 1;
            }
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn holidays(division: Division, year: i64) -> Vec<String> {
        Calendar::shipped().holidays[&division]
            .keys()
            .filter(|d| d.year() == year)
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn the_one_off_days_are_there() {
        let c = Calendar::shipped();
        for division in Division::ALL {
            let r = Region::Division(division);
            for one_off in [
                "2020-05-08",
                "2022-06-02",
                "2022-06-03",
                "2022-09-19",
                "2023-05-08",
            ] {
                assert!(
                    c.holiday(r, day(one_off)).unwrap().is_some(),
                    "{one_off} {division:?}"
                );
            }
            // The days they replaced are ordinary working days.
            for moved in ["2020-05-04", "2022-05-30"] {
                assert!(
                    c.is_working_day(r, day(moved)).unwrap(),
                    "{moved} {division:?}"
                );
            }
        }
    }

    #[test]
    fn divisions_differ_as_published() {
        // England and Wales 2022, as on www.gov.uk/bank-holidays.
        assert_eq!(
            holidays(Division::EnglandAndWales, 2022),
            [
                "2022-01-03",
                "2022-04-15",
                "2022-04-18",
                "2022-05-02",
                "2022-06-02",
                "2022-06-03",
                "2022-08-29",
                "2022-09-19",
                "2022-12-26",
                "2022-12-27"
            ]
        );
        // Scotland 2021: 2 January on a Saturday moves to Monday 4th; summer holiday in
        // early August; St Andrew's Day; no Easter Monday.
        assert_eq!(
            holidays(Division::Scotland, 2021),
            [
                "2021-01-01",
                "2021-01-04",
                "2021-04-02",
                "2021-05-03",
                "2021-05-31",
                "2021-08-02",
                "2021-11-30",
                "2021-12-27",
                "2021-12-28"
            ]
        );
        // Northern Ireland 2026: St Patrick's Day, and the Boyne (Sunday 12 July) on
        // Monday 13th.
        let ni = holidays(Division::NorthernIreland, 2026);
        assert!(ni.contains(&"2026-03-17".to_string()));
        assert!(ni.contains(&"2026-07-13".to_string()));
        // St Andrew's Day 2025 fell on a Sunday: Monday 1 December.
        assert_eq!(
            Calendar::shipped()
                .holiday(Region::Division(Division::Scotland), day("2025-12-01"))
                .unwrap()
                .as_deref(),
            Some("St Andrew's Day (substitute day)")
        );
    }

    #[test]
    fn every_year_has_its_standing_holidays() {
        for year in 2018..=2032 {
            for division in Division::ALL {
                let n = holidays(division, year).len();
                let extra = match year {
                    2022 => 2,
                    2023 => 1,
                    _ => 0,
                };
                let standing = match division {
                    Division::EnglandAndWales => 8,
                    Division::Scotland => 9,
                    Division::NorthernIreland => 10,
                };
                assert_eq!(n, standing + extra, "{division:?} {year}");
            }
        }
    }

    #[test]
    fn the_uk_calendar_is_the_union() {
        let c = Calendar::shipped();
        // 2 January is a holiday only in Scotland, so not an FOI working day.
        assert!(c
            .is_working_day(
                Region::Division(Division::EnglandAndWales),
                day("2026-01-02")
            )
            .unwrap());
        assert!(!c.is_working_day(Region::Uk, day("2026-01-02")).unwrap());
        assert_eq!(
            c.holiday(Region::Uk, day("2026-03-17")).unwrap().as_deref(),
            Some("St Patrick's Day, Northern Ireland")
        );
    }

    #[test]
    fn dates_outside_the_table_are_refused() {
        let c = Calendar::shipped();
        let err = c.is_working_day(Region::Uk, day("2040-01-02")).unwrap_err();
        assert!(err.to_string().contains("covers 2018–2032"), "{err}");
    }
}
