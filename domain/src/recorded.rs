//! What every event and command carries: who acted (partner, user, role) and when the
//! fact occurred, around the fact itself. Also the UK calendar arithmetic the rules
//! need (Europe/London dates, calendar months).

use crate::refusal::Refusal;
use deadlines::Day;
use ledger::timestamp::{self, Micros};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Who acted: the partner (the entry's author, whose key signs it), and the user and
/// role within that partner. User ids are the partner's staff ids, not names.
#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub partner: String,
    pub user: String,
    pub role: String,
}

/// A fact of one aggregate's catalogue: its event type is the variant name.
pub trait Fact:
    Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug + Send + Sync
{
    /// Schema version of the payload; bumped when a field changes meaning or shape.
    const VERSION: u64 = 1;
    /// The stream (aggregate) kind, e.g. `case`, `breach`.
    const STREAM_KIND: &'static str;
}

/// One event: who recorded what, when it occurred. The fact is flattened, so the stored
/// payload reads as the domain does: `{"by": …, "at": …, "type": "DisclosureMade", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded<F> {
    pub by: Actor,
    /// When it occurred (RFC 3339, UTC); may be earlier than when it was recorded.
    pub at: String,
    #[serde(flatten)]
    pub fact: F,
}

impl<F: Fact> cqrs_es::DomainEvent for Recorded<F> {
    fn event_type(&self) -> String {
        type_name(&self.fact)
    }
    fn event_version(&self) -> String {
        F::VERSION.to_string()
    }
}

impl<F> Recorded<F> {
    /// When it occurred, in microseconds. Checked when the command was accepted.
    pub fn micros(&self) -> Micros {
        timestamp::parse_utc(&self.at).unwrap_or(0)
    }
}

/// A command: who asks, when the fact occurred, and what they ask.
#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[schemars(rename = "{C}Command")]
pub struct Command<C> {
    pub by: Actor,
    pub at: String,
    #[serde(flatten)]
    pub action: C,
}

impl<C> Command<C> {
    /// The occurrence time, refused if not an RFC 3339 UTC instant.
    pub fn micros(&self) -> Result<Micros, Refusal> {
        timestamp::parse_utc(&self.at).ok_or_else(|| {
            Refusal::invalid(
                "at",
                format!(
                    "{:?} is not an RFC 3339 UTC instant like 2025-01-31T09:30:00Z",
                    self.at
                ),
            )
        })
    }

    /// The event recording `fact` as this command's actor, at its time.
    pub fn record<F>(&self, fact: F) -> Recorded<F> {
        Recorded {
            by: self.by.clone(),
            at: self.at.clone(),
            fact,
        }
    }
}

/// The `type` tag a fact serialises with (its variant name).
pub fn type_name<F: Serialize>(fact: &F) -> String {
    match serde_json::to_value(fact) {
        Ok(serde_json::Value::Object(map)) => map
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("Unknown")
            .to_string(),
        _ => "Unknown".to_string(),
    }
}

/// The Europe/London calendar date of an instant, as days since 1970-01-01.
pub fn london_day(at: Micros) -> i64 {
    deadlines::london::day(at).0
}

/// The same day number one calendar month on, clamped to the month's end (31 Jan →
/// 28 or 29 Feb), as the ICO counts a month for rights requests.
pub fn add_one_month(day: i64) -> i64 {
    Day(day).plus_months(1).0
}

/// Parses a `YYYY-MM-DD` date to days since 1970-01-01.
pub fn parse_day(field: &str, text: &str) -> Result<i64, Refusal> {
    Day::parse(text)
        .map(|d| d.0)
        .ok_or_else(|| Refusal::invalid(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: i64) -> String {
    Day(day).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn london_dates_follow_british_summer_time() {
        // 2025: BST from 30 March 01:00 UTC to 26 October 01:00 UTC.
        let at = |s: &str| timestamp::parse_utc(s).unwrap();
        assert_eq!(
            format_day(london_day(at("2025-03-30T00:59:59Z"))),
            "2025-03-30"
        );
        assert_eq!(
            format_day(london_day(at("2025-06-30T23:30:00Z"))),
            "2025-07-01"
        );
        assert_eq!(
            format_day(london_day(at("2025-10-26T00:30:00Z"))),
            "2025-10-26"
        );
        assert_eq!(
            format_day(london_day(at("2025-10-25T23:30:00Z"))),
            "2025-10-26"
        );
        assert_eq!(
            format_day(london_day(at("2025-12-31T23:30:00Z"))),
            "2025-12-31"
        );
    }

    #[test]
    fn a_month_on_clamps_to_the_month_end() {
        let day = |y, m, d| timestamp::days_from_civil(y, m, d);
        assert_eq!(format_day(add_one_month(day(2025, 1, 31))), "2025-02-28");
        assert_eq!(format_day(add_one_month(day(2024, 1, 31))), "2024-02-29");
        assert_eq!(format_day(add_one_month(day(2025, 12, 15))), "2026-01-15");
    }
}
