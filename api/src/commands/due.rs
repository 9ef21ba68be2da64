//! `isa-ledger due`: one deadline worked out by hand, for a DPO checking a date and an
//! auditor checking the rules. Reads no store: only the shipped calendar and the rules.

use anyhow::{anyhow, bail, Result};
use deadlines::rules::{compute, From, Part3Start};
use deadlines::{Calendar, Day, Division, Inputs, Rule};
use std::process::ExitCode;

pub struct Request {
    pub rule: String,
    pub from: String,
    pub division: String,
    pub identity_received: Option<String>,
    pub fee_received: Option<String>,
    pub paused: Vec<String>,
    pub extended: bool,
    pub part3_day_after: bool,
    pub json: bool,
}

fn date(flag: &str, text: &str) -> Result<Day> {
    Day::parse(text).ok_or_else(|| anyhow!("{flag} {text:?} is not a date (YYYY-MM-DD)"))
}

pub fn run(request: Request) -> Result<ExitCode> {
    let codes = || Rule::ALL.map(Rule::code).join(", ");
    let rule = Rule::parse(&request.rule)
        .ok_or_else(|| anyhow!("unknown rule {:?}; one of {}", request.rule, codes()))?;
    let from = if rule == Rule::Breach {
        let at = ledger::timestamp::parse_utc(&request.from).ok_or_else(|| {
            anyhow!(
                "--from {:?}: a breach starts from when the controller became aware, an RFC 3339 instant such as 2026-03-27T16:30:00Z",
                request.from
            )
        })?;
        From::Instant(at)
    } else {
        From::Day(date("--from", &request.from)?)
    };
    let mut inputs = Inputs::new(from);
    inputs.division = Division::parse(&request.division).ok_or_else(|| {
        anyhow!(
            "unknown division {:?}; one of {}",
            request.division,
            Division::ALL.map(Division::code).join(", ")
        )
    })?;
    if let Some(d) = &request.identity_received {
        inputs.identity_received = Some(date("--identity-received", d)?);
    }
    if let Some(d) = &request.fee_received {
        inputs.fee_received = Some(date("--fee-received", d)?);
    }
    for pause in &request.paused {
        let Some((a, b)) = pause.split_once("..") else {
            bail!("--paused {pause:?}: give FROM..TO, e.g. 2025-03-10..2025-03-14");
        };
        inputs
            .paused
            .push((date("--paused", a)?, date("--paused", b)?));
    }
    inputs.extended = request.extended;
    if request.part3_day_after {
        if rule != Rule::SarPart3 {
            bail!("--part3-day-after only applies to sar-part3");
        }
        inputs.part3_start = Part3Start::DayAfter;
    }
    let deadline = compute(rule, &inputs, Calendar::shipped())?;
    if request.json {
        println!("{}", deadline.to_json());
    } else {
        println!("{}", deadline.explanation);
    }
    Ok(ExitCode::SUCCESS)
}
