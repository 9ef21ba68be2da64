//! The worked examples of DESIGN §4, edge cases around them, and properties checked over
//! every day the calendar covers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use deadlines::rules::{compute, From, Part3Start};
use deadlines::{Calendar, Day, Division, Inputs, Region, Rule};
use ledger::timestamp::parse_utc;

fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

fn due(rule: Rule, inputs: &Inputs) -> String {
    compute(rule, inputs, Calendar::shipped())
        .unwrap()
        .due
        .text()
}

fn on(received: &str) -> Inputs {
    Inputs::new(From::Day(day(received)))
}

#[test]
fn design_worked_examples() {
    let aware = |s: &str| Inputs::new(From::Instant(parse_utc(s).unwrap()));
    // Spring clock change: aware 16:30 GMT, due 17:30 BST (72 elapsed hours).
    let spring = compute(
        Rule::Breach,
        &aware("2026-03-27T16:30:00Z"),
        Calendar::shipped(),
    )
    .unwrap();
    assert_eq!(spring.due.text(), "2026-03-30T16:30:00Z");
    assert!(
        spring
            .explanation
            .starts_with("due Mon 30 Mar 2026 17:30 BST: 72 hours from Fri 27 Mar 2026 16:30 GMT"),
        "{}",
        spring.explanation
    );
    // Christmas does not stretch it.
    assert_eq!(
        due(Rule::Breach, &aware("2025-12-23T15:00:00Z")),
        "2025-12-26T15:00:00Z"
    );
    // SAR, the ICO's own example: 25 Dec and 26 Dec are bank holidays.
    assert_eq!(due(Rule::Sar, &on("2024-11-25")), "2024-12-27");
    // From the 31st: the month's last day; extended, three months from the start.
    assert_eq!(due(Rule::Sar, &on("2025-01-31")), "2025-02-28");
    let mut extended = on("2025-01-31");
    extended.extended = true;
    assert_eq!(due(Rule::Sar, &extended), "2025-04-30");
    // Leap year.
    assert_eq!(due(Rule::Sar, &on("2024-01-31")), "2024-02-29");
    // FOI across Christmas, and received on a Saturday (2 January is Scotland's).
    assert_eq!(due(Rule::Foi, &on("2025-12-01")), "2025-12-31");
    assert_eq!(due(Rule::Foi, &on("2025-12-13")), "2026-01-15");
    // Complaint acknowledgement.
    assert_eq!(due(Rule::Complaint, &on("2026-06-23")), "2026-07-23");
}

#[test]
fn the_explanation_says_why_in_one_sentence() {
    let d = compute(Rule::Sar, &on("2025-01-01"), Calendar::shipped()).unwrap();
    assert_eq!(
        d.explanation,
        "due Mon 3 Feb 2025: one month from Wed 1 Jan 2025 is Sat 1 Feb 2025, which is not a working day, moved to the next working day in England and Wales"
    );
    assert_eq!(d.rule_version, "deadline-rules/1");
    assert_eq!(d.calendar_version, Calendar::shipped().version());
    assert_eq!(d.inputs["from"], "2025-01-01");
}

#[test]
fn sar_edge_cases() {
    // The clock starts on the latest of request, identity and fee, even a Sunday.
    let mut late_id = on("2025-03-03");
    late_id.identity_received = Some(day("2025-03-09"));
    let d = compute(Rule::Sar, &late_id, Calendar::shipped()).unwrap();
    assert_eq!(d.due.text(), "2025-04-09");
    assert!(
        d.explanation.contains("when the identity evidence arrived"),
        "{}",
        d.explanation
    );
    // Clarification pauses add their days (both ends included) before the roll.
    let mut paused = on("2025-03-03");
    paused.paused = vec![(day("2025-03-10"), day("2025-03-14"))];
    assert_eq!(due(Rule::Sar, &paused), "2025-04-08");
    // Overlapping pauses count each day once: 10–14 and 12–16 are 7 days.
    paused.paused.push((day("2025-03-12"), day("2025-03-16")));
    assert_eq!(due(Rule::Sar, &paused), "2025-04-10");
    // Easter 2025: 3 April + 15 paused days is Good Friday 18 April; Easter Monday next.
    let mut easter = on("2025-03-03");
    easter.paused = vec![(day("2025-03-03"), day("2025-03-17"))];
    assert_eq!(due(Rule::Sar, &easter), "2025-04-22");
    // Scotland: 2 January is a holiday there, not in England.
    let mut scot = on("2025-12-02");
    assert_eq!(due(Rule::Sar, &scot), "2026-01-02");
    scot.division = Division::Scotland;
    assert_eq!(due(Rule::Sar, &scot), "2026-01-05");
    // Northern Ireland: St Patrick's Day.
    let mut ni = on("2026-02-17");
    assert_eq!(due(Rule::Sar, &ni), "2026-03-17");
    ni.division = Division::NorthernIreland;
    assert_eq!(due(Rule::Sar, &ni), "2026-03-18");
    // Part 3, started the day after receipt.
    let mut part3 = on("2025-01-30");
    assert_eq!(due(Rule::SarPart3, &part3), "2025-02-28");
    part3.part3_start = Part3Start::DayAfter;
    assert_eq!(due(Rule::SarPart3, &part3), "2025-02-28");
    part3.from = From::Day(day("2025-02-27"));
    assert_eq!(due(Rule::SarPart3, &part3), "2025-03-28");
    // An extension from a 30 November start ends on the last day of February.
    let mut ext = on("2025-11-30");
    ext.extended = true;
    // 28 Feb 2026 is a Saturday: rolled forward into March, never back.
    assert_eq!(due(Rule::Sar, &ext), "2026-03-02");
}

#[test]
fn eir_extension_and_bad_input() {
    let mut eir = on("2025-12-01");
    assert_eq!(due(Rule::Eir, &eir), "2025-12-31");
    eir.extended = true;
    assert_eq!(due(Rule::Eir, &eir), "2026-01-30");
    let c = Calendar::shipped();
    let mut foi = on("2025-12-01");
    foi.extended = true;
    assert!(compute(Rule::Foi, &foi, c)
        .unwrap_err()
        .to_string()
        .contains("only applies to sar, sar-part3 and eir"));
    let backwards = Inputs {
        paused: vec![(day("2025-03-10"), day("2025-03-01"))],
        ..on("2025-03-01")
    };
    assert!(compute(Rule::Sar, &backwards, c)
        .unwrap_err()
        .to_string()
        .contains("ends before it starts"));
    let breach_by_day = on("2025-03-01");
    assert!(compute(Rule::Breach, &breach_by_day, c)
        .unwrap_err()
        .to_string()
        .contains("an instant"));
    let too_late = on("2033-06-01");
    assert!(compute(Rule::Sar, &too_late, c)
        .unwrap_err()
        .to_string()
        .contains("outside"));
}

/// Over every start date the table allows: a SAR is never due before 28 days, nor more
/// than a month and a week later; FOI and EIR always fall on a UK working day, after
/// exactly 20 of them; a complaint acknowledgement is on a working day, 30–34 days on.
#[test]
fn properties_over_every_day() {
    let c = Calendar::shipped();
    let first = day("2018-01-01");
    let last = day("2032-09-30");
    let mut d = first;
    while d <= last {
        for division in Division::ALL {
            let mut sar = Inputs::new(From::Day(d));
            sar.division = division;
            let Ok(computed) = compute(Rule::Sar, &sar, c) else {
                panic!("{d}")
            };
            let deadlines::Due::Day(due) = computed.due else {
                unreachable!()
            };
            let days = due.0 - d.0;
            assert!(
                (28..=38).contains(&days),
                "SAR from {d} due {due} ({days} days)"
            );
            assert!(c.is_working_day(Region::Division(division), due).unwrap());
            let deadlines::Due::Day(ack) = compute(Rule::Complaint, &sar, c).unwrap().due else {
                unreachable!()
            };
            assert!((30..=34).contains(&(ack.0 - d.0)), "complaint from {d}");
            assert!(c.is_working_day(Region::Division(division), ack).unwrap());
        }
        let deadlines::Due::Day(foi) = compute(Rule::Foi, &Inputs::new(From::Day(d)), c)
            .unwrap()
            .due
        else {
            unreachable!()
        };
        assert!(
            c.is_working_day(Region::Uk, foi).unwrap(),
            "FOI from {d} due {foi}"
        );
        let working = (1..=(foi.0 - d.0))
            .filter(|k| c.is_working_day(Region::Uk, d.plus_days(*k)).unwrap())
            .count();
        assert_eq!(working, 20, "FOI from {d}");
        d = d.plus_days(1);
    }
}
