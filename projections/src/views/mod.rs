//! The views people work from (issue 4 part 4), each a [`View`](crate::view::View):
//!
//! | view          | one row per                         | the partner who must act |
//! |---------------|-------------------------------------|--------------------------|
//! | `breaches`    | personal-data breach                | the reporting controller |
//! | `sars`        | subject access request              | the partner answering it |
//! | `foi`         | FOI or EIR request                  | the partner answering it |
//! | `complaints`  | data protection complaint           | the partner answering it |
//! | `retention`   | case × partner holding its data     | the holder               |
//! | `notices`     | notice a partner must act on        | the recipient            |
//! | `disclosures` | disclosure or request (s62 log)     | —                        |
//! | `consents`    | consent recorded                    | the recording partner    |
//! | `agreements`  | protocol, ISA or DSA                | —                        |
//!
//! Views hold dates computed from event times and the settings; "now" (overdue, time
//! left) is applied only when a view is read ([`crate::query`]). No view holds the
//! redactable free text of an entry: where a row has any (a rationale, reasons for
//! delay), it names the entry (`…_entry`) whose content the reader may fetch while it
//! still exists.

pub mod agreements;
pub mod breaches;
pub mod consents;
pub mod disclosures;
pub mod notices;
pub mod requests;
pub mod retention;
pub mod sars;

use crate::logged::Logged;
use crate::view::{projection, Context, Projection};
use deadlines::rules::{self, Deadline, From, Inputs, Rule};
use deadlines::{london, Day, Region};
use serde::{Deserialize, Serialize};

/// Every view, in the order the runner feeds them.
pub fn all() -> Vec<Box<dyn Projection>> {
    vec![
        projection::<breaches::Breaches>(),
        projection::<sars::Sars>(),
        projection::<requests::FoiRequests>(),
        projection::<requests::Complaints>(),
        projection::<retention::Retention>(),
        projection::<notices::Notices>(),
        projection::<disclosures::Disclosures>(),
        projection::<consents::Consents>(),
        projection::<agreements::Agreements>(),
    ]
}

/// The status of a view's own bookkeeping rows (e.g. who originated a case), which
/// queries never list.
pub const INDEX_STATUS: &str = "index";

/// A deadline as a row keeps it: what was computed, under which rule and calendar
/// versions, from which inputs, and why — or why it could not be computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadlineRecord {
    pub rule: String,
    /// `YYYY-MM-DD` (ends 23:59:59 London time) or an RFC 3339 UTC instant.
    pub due: Option<String>,
    pub explanation: String,
    pub rule_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_version: Option<String>,
    pub inputs: serde_json::Value,
}

impl DeadlineRecord {
    fn computed(rule: Rule, inputs: &Inputs, ctx: &Context<'_>) -> DeadlineRecord {
        match rules::compute(rule, inputs, ctx.calendar) {
            Ok(deadline) => DeadlineRecord::from(&deadline),
            Err(e) => DeadlineRecord {
                rule: rule.code().to_string(),
                due: None,
                explanation: format!("no due date could be worked out: {e}"),
                rule_version: rules::RULES_VERSION.to_string(),
                calendar_version: Some(ctx.calendar.version().to_string()),
                inputs: serde_json::Value::Null,
            },
        }
    }
}

impl std::convert::From<&Deadline> for DeadlineRecord {
    fn from(d: &Deadline) -> Self {
        DeadlineRecord {
            rule: d.rule.code().to_string(),
            due: Some(d.due.text()),
            explanation: d.explanation.clone(),
            rule_version: d.rule_version.to_string(),
            calendar_version: Some(d.calendar_version.clone()),
            inputs: d.inputs.clone(),
        }
    }
}

/// The London date of an RFC 3339 instant (validated when the command was accepted).
pub fn day_of(at: &str) -> Day {
    london::day(ledger::timestamp::parse_utc(at).unwrap_or(0))
}

/// When `partner` must answer something issued at `issued_at`: the settings' number of
/// working days in its division.
pub fn response_due(ctx: &Context<'_>, partner: &str, issued_at: &str) -> DeadlineRecord {
    let issued = day_of(issued_at);
    let division = ctx.settings.division(partner);
    let days = ctx.settings.response_working_days;
    let inputs = serde_json::json!({
        "issued": issued.to_string(),
        "division": division.code(),
        "working_days": days,
    });
    match ctx
        .calendar
        .working_days_after(Region::Division(division), issued, days)
    {
        Ok(due) => DeadlineRecord {
            rule: "response".into(),
            due: Some(due.to_string()),
            explanation: format!(
                "answer due {}: {days} working days in {} after it was issued on {}",
                due.long(),
                division.name(),
                issued.long()
            ),
            rule_version: RESPONSE_RULE_VERSION.into(),
            calendar_version: Some(ctx.calendar.version().to_string()),
            inputs,
        },
        Err(e) => DeadlineRecord {
            rule: "response".into(),
            due: None,
            explanation: format!("no due date could be worked out: {e}"),
            rule_version: RESPONSE_RULE_VERSION.into(),
            calendar_version: Some(ctx.calendar.version().to_string()),
            inputs,
        },
    }
}

const RESPONSE_RULE_VERSION: &str = "response/1";

/// A review date `months` calendar months after `from` (clamped to the month's end).
pub fn review_due(from: Day, months: u32, why: &str) -> DeadlineRecord {
    let due = from.plus_months(i64::from(months));
    DeadlineRecord {
        rule: "retention-review".into(),
        due: Some(due.to_string()),
        explanation: format!(
            "review due {}: {months} months after {why} on {}",
            due.long(),
            from.long()
        ),
        rule_version: "retention-review/1".into(),
        calendar_version: None,
        inputs: serde_json::json!({"from": from.to_string(), "months": months}),
    }
}

/// A review date set by whoever last reviewed (a date they chose).
pub fn review_set(due: &str, reviewed_at: &str) -> DeadlineRecord {
    let (text, long) = match Day::parse(due) {
        Some(d) => (Some(d.to_string()), d.long()),
        None => (None, due.to_string()),
    };
    DeadlineRecord {
        rule: "retention-review".into(),
        due: text,
        explanation: format!(
            "review due {long}: the date set by the review on {}",
            day_of(reviewed_at).long()
        ),
        rule_version: "retention-review/1".into(),
        calendar_version: None,
        inputs: serde_json::json!({"next_review_due": due, "reviewed_at": reviewed_at}),
    }
}

/// Inputs for a request rule received on `day` by `partner`.
pub fn request_inputs(ctx: &Context<'_>, partner: &str, day: Day) -> Inputs {
    let mut inputs = Inputs::new(From::Day(day));
    inputs.division = ctx.settings.division(partner);
    inputs.part3_start = ctx.settings.part3_start;
    inputs
}

/// The key of a row about one thing within a stream: `case/C-1#n2`.
pub fn sub_key(event: &Logged, id: &str) -> String {
    format!("{}#{id}", event.stream)
}

/// The entry whose content holds an event's free text, if it had any.
pub fn narrative_entry(event: &Logged) -> Option<u64> {
    event.has_content.then_some(event.seq)
}
