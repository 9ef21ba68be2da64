//! The deadline rules of DESIGN §4. Each takes its inputs, works out the due date (or,
//! for a breach, the due instant) and says how, in one sentence.
//!
//! Rule versions change when a rule's reading changes (a new statute, new ICO
//! guidance); a stored deadline keeps the version it was computed under.

use crate::calendar::{Calendar, CalendarError, Division, Region};
use crate::day::Day;
use crate::london;
use ledger::timestamp::{format_micros, Micros};
use serde::Serialize;
use serde_json::{json, Value};

/// The version of the rules in this module.
pub const RULES_VERSION: &str = "deadline-rules/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Art 33 UK GDPR / DPA 2018 s67: report to the ICO within 72 hours of awareness.
    Breach,
    /// Art 12(3) UK GDPR: one month, extendable by two further months.
    Sar,
    /// DPA 2018 Part 3 (law enforcement): as `Sar`, with the start convention a setting.
    SarPart3,
    /// FOIA s10: 20 working days.
    Foi,
    /// EIR reg 5(2) and 7: 20 working days, up to 40 when extended.
    Eir,
    /// DPA 2018 s164A: acknowledge a complaint within 30 days.
    Complaint,
}

impl Rule {
    pub const ALL: [Rule; 6] = [
        Rule::Breach,
        Rule::Sar,
        Rule::SarPart3,
        Rule::Foi,
        Rule::Eir,
        Rule::Complaint,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Rule::Breach => "breach",
            Rule::Sar => "sar",
            Rule::SarPart3 => "sar-part3",
            Rule::Foi => "foi",
            Rule::Eir => "eir",
            Rule::Complaint => "complaint",
        }
    }

    pub fn parse(code: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// Where a Part 3 SAR's clock starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part3Start {
    /// On the day the request (and identity, fee) arrived, as for UK GDPR requests.
    DayOfReceipt,
    /// On the day after.
    DayAfter,
}

/// When a deadline's clock starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// The instant the controller became aware (breach).
    Instant(Micros),
    /// The day a request or complaint was received.
    Day(Day),
}

/// Everything a rule may take into account.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub from: From,
    pub division: Division,
    pub identity_received: Option<Day>,
    pub fee_received: Option<Day>,
    /// Clarification pauses, inclusive of both days.
    pub paused: Vec<(Day, Day)>,
    /// SAR: the three-month extension; EIR: 40 working days instead of 20.
    pub extended: bool,
    pub part3_start: Part3Start,
}

impl Inputs {
    pub fn new(from: From) -> Inputs {
        Inputs {
            from,
            division: Division::EnglandAndWales,
            identity_received: None,
            fee_received: None,
            paused: Vec::new(),
            extended: false,
            part3_start: Part3Start::DayOfReceipt,
        }
    }
}

/// The due point: a date (ending 23:59:59 London time) or, for a breach, an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Day(Day),
    Instant(Micros),
}

impl Due {
    /// `YYYY-MM-DD`, or an RFC 3339 instant in UTC (fractions only when there are).
    pub fn text(&self) -> String {
        match self {
            Due::Day(d) => d.to_string(),
            Due::Instant(at) => instant_text(*at),
        }
    }
}

/// A computed deadline, with what it was computed from and under.
#[derive(Debug, Clone)]
pub struct Deadline {
    pub rule: Rule,
    pub due: Due,
    pub explanation: String,
    pub rule_version: &'static str,
    pub calendar_version: String,
    pub inputs: Value,
}

impl Deadline {
    pub fn to_json(&self) -> Value {
        json!({
            "rule": self.rule,
            "due": self.due.text(),
            "explanation": self.explanation,
            "rule_version": self.rule_version,
            "calendar_version": self.calendar_version,
            "inputs": self.inputs,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("the {rule} rule starts from {wanted}")]
    WrongStart {
        rule: &'static str,
        wanted: &'static str,
    },
    #[error("a pause from {from} to {to} ends before it starts")]
    BackwardsPause { from: Day, to: Day },
    #[error("{what} only applies to {applies_to}")]
    NotApplicable {
        what: &'static str,
        applies_to: &'static str,
    },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

fn instant_text(at: Micros) -> String {
    let full = format_micros(at);
    match full.strip_suffix(".000000Z") {
        Some(whole_seconds) => format!("{whole_seconds}Z"),
        None => full,
    }
}

const HOURS_72: Micros = 72 * 3_600_000_000;

/// Works out one deadline.
pub fn compute(rule: Rule, inputs: &Inputs, calendar: &Calendar) -> Result<Deadline, RuleError> {
    let (due, explanation) = match rule {
        Rule::Breach => breach(inputs)?,
        Rule::Sar | Rule::SarPart3 => rights_request(rule, inputs, calendar)?,
        Rule::Foi | Rule::Eir => working_days(rule, inputs, calendar)?,
        Rule::Complaint => complaint(inputs, calendar)?,
    };
    let applies = |flag: bool, what, applies_to, ok: bool| {
        if flag && !ok {
            Err(RuleError::NotApplicable { what, applies_to })
        } else {
            Ok(())
        }
    };
    let rights = matches!(rule, Rule::Sar | Rule::SarPart3);
    applies(
        !inputs.paused.is_empty(),
        "a clarification pause",
        "sar and sar-part3",
        rights,
    )?;
    applies(
        inputs.identity_received.is_some() || inputs.fee_received.is_some(),
        "identity or fee received",
        "sar and sar-part3",
        rights,
    )?;
    applies(
        inputs.extended,
        "an extension",
        "sar, sar-part3 and eir",
        rights || rule == Rule::Eir,
    )?;
    let from = match inputs.from {
        From::Instant(at) => Value::from(instant_text(at)),
        From::Day(d) => Value::from(d.to_string()),
    };
    let day_list = |d: Option<Day>| d.map(|d| d.to_string());
    Ok(Deadline {
        rule,
        due,
        explanation,
        rule_version: RULES_VERSION,
        calendar_version: calendar.version().to_string(),
        inputs: json!({
            "from": from,
            "division": inputs.division.code(),
            "identity_received": day_list(inputs.identity_received),
            "fee_received": day_list(inputs.fee_received),
            "paused": inputs.paused.iter().map(|(a, b)| format!("{a}..{b}")).collect::<Vec<_>>(),
            "extended": inputs.extended,
            "part3_start": inputs.part3_start,
        }),
    })
}

fn start_day(rule: Rule, inputs: &Inputs) -> Result<Day, RuleError> {
    match inputs.from {
        From::Day(d) => Ok(d),
        From::Instant(_) => Err(RuleError::WrongStart {
            rule: rule.code(),
            wanted: "a date (YYYY-MM-DD)",
        }),
    }
}

fn breach(inputs: &Inputs) -> Result<(Due, String), RuleError> {
    let From::Instant(aware) = inputs.from else {
        return Err(RuleError::WrongStart {
            rule: "breach",
            wanted: "an instant (RFC 3339): when the controller became aware",
        });
    };
    let due = aware + HOURS_72;
    let mut why = format!(
        "due {}: 72 hours from {}, counted in elapsed time",
        london::long(due),
        london::long(aware)
    );
    if london::offset(due) != london::offset(aware) {
        let change = if london::offset(due) > london::offset(aware) {
            "the clocks go forward in between, so the local time is an hour later"
        } else {
            "the clocks go back in between, so the local time is an hour earlier"
        };
        why.push_str(&format!(" ({change})"));
    }
    Ok((Due::Instant(due), why))
}

/// Moves `day` to a working day in `region`, saying so in `why` when it moves.
fn roll(calendar: &Calendar, region: Region, day: Day, why: &mut String) -> Result<Day, RuleError> {
    let due = calendar.on_or_after(region, day)?;
    if due != day {
        let reason = match calendar.holiday(region, day)? {
            Some(h) => format!("a bank holiday ({h})"),
            None => "not a working day".to_string(),
        };
        why.push_str(&format!(
            ", which is {reason}, moved to the next working day in {}",
            region.name()
        ));
    }
    Ok(due)
}

fn rights_request(
    rule: Rule,
    inputs: &Inputs,
    calendar: &Calendar,
) -> Result<(Due, String), RuleError> {
    let received = start_day(rule, inputs)?;
    // The clock starts on the latest of request, identity and fee.
    let mut start = received;
    let mut start_why = String::new();
    for (day, what) in [
        (inputs.identity_received, "the identity evidence"),
        (inputs.fee_received, "the fee"),
    ] {
        if let Some(d) = day.filter(|d| *d > start) {
            start = d;
            start_why = format!(", when {what} arrived (the latest of request, identity and fee)");
        }
    }
    if rule == Rule::SarPart3 && inputs.part3_start == Part3Start::DayAfter {
        start = start.plus_days(1);
        start_why.push_str(", counting from the day after (the Part 3 setting)");
    }
    let months = if inputs.extended { 3 } else { 1 };
    let later = start.plus_months(months);
    let span = if inputs.extended {
        "three months (extended)"
    } else {
        "one month"
    };
    if !start_why.is_empty() {
        start_why.push(',');
    }
    let mut why = format!(
        "{span} from {}{start_why} is {}",
        start.long(),
        later.long()
    );
    let mut pauses = inputs.paused.clone();
    for &(from, to) in &pauses {
        if to < from {
            return Err(RuleError::BackwardsPause { from, to });
        }
    }
    // Overlapping pauses count each day once.
    pauses.sort();
    let mut paused_days = 0;
    let mut counted_to: Option<Day> = None;
    for (from, to) in pauses {
        let from = match counted_to {
            Some(c) if c >= from => c.plus_days(1),
            _ => from,
        };
        if to >= from {
            paused_days += to.0 - from.0 + 1;
        }
        counted_to = Some(counted_to.map_or(to, |c| c.max(to)));
    }
    let paused = later.plus_days(paused_days);
    if paused_days > 0 {
        why.push_str(&format!(
            ", plus {paused_days} paused day{} for clarification is {}",
            if paused_days == 1 { "" } else { "s" },
            paused.long()
        ));
    }
    let due = roll(
        calendar,
        Region::Division(inputs.division),
        paused,
        &mut why,
    )?;
    Ok((Due::Day(due), format!("due {}: {why}", due.long())))
}

fn working_days(
    rule: Rule,
    inputs: &Inputs,
    calendar: &Calendar,
) -> Result<(Due, String), RuleError> {
    let received = start_day(rule, inputs)?;
    let n = if rule == Rule::Eir && inputs.extended {
        40
    } else {
        20
    };
    let due = calendar.working_days_after(Region::Uk, received, n)?;
    let day1 = calendar.working_days_after(Region::Uk, received, 1)?;
    let why = format!(
        "due {}: the {n}th working day after receipt on {} (day 1 is {}; weekends and bank holidays in any part of the UK do not count)",
        due.long(),
        received.long(),
        day1.long()
    );
    Ok((Due::Day(due), why))
}

fn complaint(inputs: &Inputs, calendar: &Calendar) -> Result<(Due, String), RuleError> {
    let received = start_day(Rule::Complaint, inputs)?;
    let day30 = received.plus_days(30);
    let mut why = format!(
        "30 days from receipt on {} (day 1 the day after) is {}",
        received.long(),
        day30.long()
    );
    let due = roll(calendar, Region::Division(inputs.division), day30, &mut why)?;
    Ok((Due::Day(due), format!("due {}: {why}", due.long())))
}
