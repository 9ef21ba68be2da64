//! Every rule of DESIGN §3, each with a case it accepts and a case it refuses, written
//! as given (events already recorded) / when (a command) / then (events, or a refusal
//! naming the rule) with cqrs-es's test framework.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use cqrs_es::test::TestFramework;
use deadlines::Settings;
use domain::breach::{Breach, BreachFact, IcoReportKind};
use domain::case::{Case, CaseFact, CaseServices, Decision, NoticeKind, OnwardSharing};
use domain::consent::{Consent, ConsentFact, GivenBy};
use domain::partnership::{AgreementKind, Partnership, PartnershipFact, RetentionRule};
use domain::pseudonym::{PartnershipSecret, SubjectIdentifiers, SubjectRef};
use domain::recorded::{Actor, Command, Recorded};
use domain::reference::Reference;
use domain::refusal::Refusal;
use domain::sar::{Sar, SarFact};
use std::collections::BTreeMap;
use std::sync::Arc;

const ISA: &str = "csp-isa-01";

fn actor(partner: &str) -> Actor {
    Actor {
        partner: partner.into(),
        user: format!("{partner}-dpo"),
        role: "data-protection-officer".into(),
    }
}

fn command<F>(partner: &str, at: &str, action: F) -> Command<F> {
    Command {
        by: actor(partner),
        at: at.into(),
        action,
    }
}

fn event<F>(partner: &str, at: &str, fact: F) -> Recorded<F> {
    Recorded {
        by: actor(partner),
        at: at.into(),
        fact,
    }
}

fn reference() -> Arc<Reference> {
    Arc::new(Reference::shipped().unwrap())
}

fn subject() -> SubjectRef {
    PartnershipSecret::from_bytes([1; 32])
        .subject(&SubjectIdentifiers {
            given_name: Some("Ann".into()),
            family_name: Some("Lee".into()),
            date_of_birth: Some("2001-02-03".into()),
            ..Default::default()
        })
        .unwrap()
}

/// Police, council and health signed the ISA; housing signed but is suspended; the
/// voluntary body signed only meeting m1's confidentiality declaration.
fn partnership_events() -> Vec<Recorded<PartnershipFact>> {
    let at = "2025-01-06T09:00:00Z";
    let mut events = Vec::new();
    for (p, kind) in [
        ("police", "responsible-authority"),
        ("council", "responsible-authority"),
        ("health", "responsible-authority"),
        ("housing", "co-operating-body"),
        ("voluntary", "co-operating-body"),
    ] {
        events.push(event(
            "police",
            at,
            PartnershipFact::PartnerRegistered {
                partner: p.into(),
                organisation: format!("{p} organisation"),
                kind: kind.into(),
                ico_registration: "Z1234567".into(),
                dpo_contact: format!("dpo@{p}.example"),
            },
        ));
    }
    events.push(event(
        "police",
        at,
        PartnershipFact::AgreementAdopted {
            agreement: ISA.into(),
            kind: AgreementKind::Isa,
            title: "Community safety ISA".into(),
            under: None,
            purposes: vec!["reducing crime and disorder".into()],
            lawful_bases: vec!["uk-gdpr-6-1-e".into()],
            gateways: vec!["cda-1998-s115".into()],
            data_categories: vec![
                "personal".into(),
                "special-category".into(),
                "criminal-offence".into(),
            ],
            retention: vec![RetentionRule {
                data_category: "personal".into(),
                review_after_months: 12,
            }],
            review_interval_months: 12,
        },
    ));
    for p in ["police", "council", "health", "housing"] {
        events.push(event(
            p,
            at,
            PartnershipFact::AgreementSigned {
                agreement: ISA.into(),
                signatory: p.into(),
                signed_as: "chief officer".into(),
            },
        ));
    }
    events.push(event(
        "police",
        at,
        PartnershipFact::MeetingHeld {
            meeting: "m1".into(),
            agreement: ISA.into(),
            chair: "police".into(),
            classification: "OFFICIAL-SENSITIVE".into(),
            declarations_signed_by: vec!["police".into(), "voluntary".into()],
        },
    ));
    events.push(event(
        "police",
        at,
        PartnershipFact::PartnerSuspended {
            partner: "housing".into(),
            report: None,
            reason: Some("failed audit".into()),
        },
    ));
    events
}

fn partnership() -> Arc<Partnership> {
    let mut state = Partnership::default();
    for e in partnership_events() {
        cqrs_es::Aggregate::apply(&mut state, e);
    }
    Arc::new(state)
}

fn services(consents: Vec<Consent>) -> CaseServices {
    CaseServices {
        reference: reference(),
        partnership: partnership(),
        consents: consents
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// A disclosure by the police to the council of personal data, without consent, with
/// everything the rules ask for. Tests change one thing each.
fn disclosure() -> CaseFact {
    CaseFact::DisclosureMade {
        disclosure: "d1".into(),
        agreement: ISA.into(),
        recipients: vec!["council".into()],
        subjects: vec![subject()],
        data_categories: vec!["personal".into()],
        purpose: "reducing crime and disorder".into(),
        classification: "OFFICIAL-SENSITIVE".into(),
        handled_as: None,
        channel: "secure email".into(),
        lawful_bases: vec!["uk-gdpr-6-1-e".into()],
        gateways: vec!["cda-1998-s115".into()],
        consent: None,
        without_consent_decided_by: Some("police-inspector-42".into()),
        without_consent_reason: Some(
            "seeking consent would prejudice the prevention of crime".into(),
        ),
        onward_sharing: OnwardSharing::NotWithoutPermission,
        review_after_months: 12,
        meeting: None,
    }
}

fn with(change: impl FnOnce(&mut CaseFact)) -> CaseFact {
    let mut d = disclosure();
    change(&mut d);
    d
}

macro_rules! field {
    ($fact:expr, $name:ident) => {
        match $fact {
            CaseFact::DisclosureMade { $name, .. } => $name,
            _ => unreachable!(),
        }
    };
}

const AT: &str = "2025-02-03T10:00:00Z";

async fn disclose(
    given: Vec<Recorded<CaseFact>>,
    by: &str,
    fact: CaseFact,
    consents: Vec<Consent>,
) -> Result<Vec<Recorded<CaseFact>>, Refusal> {
    TestFramework::<Case>::with(services(consents))
        .given(given)
        .when_async(command(by, AT, fact))
        .await
        .inspect_result()
}

fn refused_by(result: Result<Vec<impl std::fmt::Debug>, Refusal>, rule: &str) -> String {
    let refusal = result.expect_err("the command should have been refused");
    assert_eq!(refusal.rule_id(), Some(rule), "{refusal}");
    refusal.to_string()
}

#[tokio::test]
async fn a_disclosure_names_an_article_6_or_part_3_basis() {
    let only_art9 = with(|d| {
        *field!(d, lawful_bases) = vec!["uk-gdpr-9-2-g".into(), "dpa-2018-sch-1-para-18".into()]
    });
    let message = refused_by(
        disclose(vec![], "police", only_art9, vec![]).await,
        "lawful-basis-required",
    );
    assert!(
        message.contains("uk-gdpr-6-1-e"),
        "says what would satisfy it: {message}"
    );
    assert_eq!(
        disclose(vec![], "police", disclosure(), vec![])
            .await
            .unwrap()
            .len(),
        1
    );
    let part3 = with(|d| *field!(d, lawful_bases) = vec!["dpa-2018-s35-2-b".into()]);
    disclose(vec![], "police", part3, vec![]).await.unwrap();
}

#[tokio::test]
async fn special_category_data_names_its_condition_and_schedule_1() {
    let no_condition = with(|d| *field!(d, data_categories) = vec!["special-category".into()]);
    refused_by(
        disclose(vec![], "police", no_condition, vec![]).await,
        "special-category-condition",
    );
    let without_sch1 = with(|d| {
        *field!(d, data_categories) = vec!["special-category".into()];
        *field!(d, lawful_bases) = vec!["uk-gdpr-6-1-e".into(), "uk-gdpr-9-2-g".into()];
    });
    let message = refused_by(
        disclose(vec![], "police", without_sch1, vec![]).await,
        "special-category-condition",
    );
    assert!(message.contains("Schedule 1"), "{message}");
    let complete = with(|d| {
        *field!(d, data_categories) = vec!["special-category".into()];
        *field!(d, lawful_bases) = vec![
            "uk-gdpr-6-1-e".into(),
            "uk-gdpr-9-2-g".into(),
            "dpa-2018-sch-1-para-18".into(),
        ];
    });
    disclose(vec![], "police", complete, vec![]).await.unwrap();
    let part3_sensitive = with(|d| {
        *field!(d, data_categories) = vec!["special-category".into()];
        *field!(d, lawful_bases) = vec!["dpa-2018-s35-2-b".into(), "dpa-2018-s35-5".into()];
    });
    refused_by(
        disclose(vec![], "police", part3_sensitive.clone(), vec![]).await,
        "special-category-condition",
    );
    let with_sch8 = with(|d| {
        *d = part3_sensitive;
        field!(d, lawful_bases).push("dpa-2018-sch-8-para-4".into());
    });
    disclose(vec![], "police", with_sch8, vec![]).await.unwrap();
}

#[tokio::test]
async fn criminal_offence_data_names_its_article_10_authorisation() {
    let bare = with(|d| *field!(d, data_categories) = vec!["criminal-offence".into()]);
    refused_by(
        disclose(vec![], "police", bare, vec![]).await,
        "criminal-offence-condition",
    );
    let with_sch1 = with(|d| {
        *field!(d, data_categories) = vec!["criminal-offence".into()];
        field!(d, lawful_bases).push("dpa-2018-sch-1-para-10".into());
    });
    disclose(vec![], "police", with_sch1, vec![]).await.unwrap();
    let law_enforcement = with(|d| {
        *field!(d, data_categories) = vec!["criminal-offence".into()];
        *field!(d, lawful_bases) = vec!["dpa-2018-s35-2-b".into()];
    });
    disclose(vec![], "police", law_enforcement, vec![])
        .await
        .unwrap();
}

#[tokio::test]
async fn without_consent_the_reason_and_the_decision_maker_are_recorded() {
    let no_reason = with(|d| *field!(d, without_consent_reason) = None);
    refused_by(
        disclose(vec![], "police", no_reason, vec![]).await,
        "reason-without-consent",
    );
    let no_decider = with(|d| *field!(d, without_consent_decided_by) = Some("  ".into()));
    refused_by(
        disclose(vec![], "police", no_decider, vec![]).await,
        "reason-without-consent",
    );
}

fn consent(recipients: &[&str], status_events: Vec<ConsentFact>) -> Consent {
    let mut c = Consent::default();
    let recorded = ConsentFact::ConsentRecorded {
        consent: "c1".into(),
        subject: subject(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        purposes: vec!["reducing crime and disorder".into()],
        given_by: GivenBy::Subject,
        witnessed_by: None,
        expires_on: None,
    };
    for fact in std::iter::once(recorded).chain(status_events) {
        cqrs_es::Aggregate::apply(&mut c, event("police", "2025-01-10T09:00:00Z", fact));
    }
    c
}

#[tokio::test]
async fn relying_on_consent_needs_a_live_one_covering_recipient_and_purpose() {
    let relying = with(|d| {
        *field!(d, consent) = Some("c1".into());
        *field!(d, without_consent_reason) = None;
        *field!(d, without_consent_decided_by) = None;
    });
    disclose(
        vec![],
        "police",
        relying.clone(),
        vec![consent(&["council"], vec![])],
    )
    .await
    .unwrap();
    let withdrawn = consent(
        &["council"],
        vec![ConsentFact::ConsentWithdrawn {
            consent: "c1".into(),
        }],
    );
    let message = refused_by(
        disclose(vec![], "police", relying.clone(), vec![withdrawn]).await,
        "consent-live-and-covering",
    );
    assert!(message.contains("withdrawn"), "{message}");
    let other_recipient = consent(&["health"], vec![]);
    let message = refused_by(
        disclose(vec![], "police", relying.clone(), vec![other_recipient]).await,
        "consent-live-and-covering",
    );
    assert!(message.contains("council"), "{message}");
    let other_purpose = with(|d| {
        *d = relying.clone();
        *field!(d, purpose) = "housing allocation".into();
    });
    refused_by(
        disclose(
            vec![],
            "police",
            other_purpose,
            vec![consent(&["council"], vec![])],
        )
        .await,
        "consent-live-and-covering",
    );
    refused_by(
        disclose(vec![], "police", relying, vec![]).await,
        "consent-live-and-covering",
    );
}

#[test]
fn a_consent_is_withdrawn_only_while_live() {
    TestFramework::<Consent>::with(())
        .given_no_previous_events()
        .when(command("police", AT, ConsentFact::ConsentWithdrawn { consent: "c1".into() }))
        .then_expect_error_message("refused by rule process-order: consent \"\" is Unknown. To proceed: record a consent once; withdraw only a live one");
}

#[tokio::test]
async fn recipients_are_signatories_or_signed_the_meeting_declaration() {
    let to_voluntary = with(|d| *field!(d, recipients) = vec!["voluntary".into()]);
    let message = refused_by(
        disclose(vec![], "police", to_voluntary.clone(), vec![]).await,
        "recipient-is-signatory",
    );
    assert!(message.contains("voluntary"), "{message}");
    let at_meeting = with(|d| {
        *d = to_voluntary;
        *field!(d, meeting) = Some("m1".into());
    });
    disclose(vec![], "police", at_meeting, vec![])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_suspended_partner_receives_nothing() {
    let to_housing = with(|d| *field!(d, recipients) = vec!["housing".into(), "council".into()]);
    refused_by(
        disclose(vec![], "police", to_housing, vec![]).await,
        "recipient-not-suspended",
    );
}

#[tokio::test]
async fn a_recipient_passes_data_on_only_with_the_originators_permission() {
    let received = vec![event("police", AT, disclosure())];
    let onward = with(|d| {
        *field!(d, disclosure) = "d2".into();
        *field!(d, recipients) = vec!["health".into()];
    });
    let message = refused_by(
        disclose(received.clone(), "council", onward.clone(), vec![]).await,
        "onward-sharing-permission",
    );
    assert!(message.contains("OnwardSharingGranted"), "{message}");
    let mut granted = received;
    granted.push(event(
        "council",
        AT,
        CaseFact::OnwardSharingRequested {
            onward: "o1".into(),
            to: vec!["health".into()],
            purpose: "reducing crime and disorder".into(),
        },
    ));
    // Only the originator answers a request to pass its data on.
    let by_council = TestFramework::<Case>::with(services(vec![]))
        .given(granted.clone())
        .when_async(command(
            "council",
            AT,
            CaseFact::OnwardSharingGranted {
                onward: "o1".into(),
            },
        ))
        .await
        .inspect_result();
    refused_by(by_council, "onward-sharing-permission");
    granted.push(event(
        "police",
        AT,
        CaseFact::OnwardSharingGranted {
            onward: "o1".into(),
        },
    ));
    disclose(granted, "council", onward, vec![]).await.unwrap();
}

fn request() -> CaseFact {
    CaseFact::InformationRequested {
        agreement: ISA.into(),
        requester: "council".into(),
        holder: "police".into(),
        subjects: vec![subject()],
        data_categories: vec!["personal".into()],
        purpose: "reducing crime and disorder".into(),
        lawful_bases: vec!["uk-gdpr-6-1-e".into()],
        gateways: vec!["cda-1998-s115".into()],
        sub_judice: false,
        description: Some("address history for an ASB case".into()),
    }
}

fn decision(decision: Decision, proportionate: bool) -> CaseFact {
    CaseFact::SharingDecisionRecorded {
        decision,
        decided_by: "police-inspector-42".into(),
        necessary: true,
        proportionate,
        minimum_necessary: true,
        rationale: Some("necessary to manage the risk; address history only".into()),
    }
}

#[tokio::test]
async fn a_decision_is_the_holders_and_a_share_must_be_necessary_and_proportionate() {
    let given = vec![event("council", AT, request())];
    let decide = |by: &'static str, fact: CaseFact| {
        let given = given.clone();
        async move {
            TestFramework::<Case>::with(services(vec![]))
                .given(given)
                .when_async(command(by, AT, fact))
                .await
                .inspect_result()
        }
    };
    refused_by(
        decide("council", decision(Decision::Share, true)).await,
        "acting-partner-is-party",
    );
    refused_by(
        decide("police", decision(Decision::Share, false)).await,
        "necessary-and-proportionate",
    );
    decide("police", decision(Decision::Decline, false))
        .await
        .unwrap();
    decide("police", decision(Decision::Share, true))
        .await
        .unwrap();
    // A declined request is not disclosed.
    let mut declined = given.clone();
    declined.push(event("police", AT, decision(Decision::Decline, false)));
    refused_by(
        disclose(declined, "police", disclosure(), vec![]).await,
        "process-order",
    );
}

#[tokio::test]
async fn nothing_is_edited_a_correction_references_the_original() {
    let given = vec![
        event("council", AT, request()),
        event("police", AT, decision(Decision::Share, true)),
    ];
    let when = |fact: CaseFact| {
        let given = given.clone();
        async move {
            TestFramework::<Case>::with(services(vec![]))
                .given(given)
                .when_async(command("police", AT, fact))
                .await
                .inspect_result()
        }
    };
    refused_by(
        when(decision(Decision::Decline, false)).await,
        "correction-references-original",
    );
    let wrong = CaseFact::CorrectionRecorded {
        corrects_version: 7,
        correction: Some("x".into()),
    };
    refused_by(when(wrong).await, "correction-references-original");
    let right = CaseFact::CorrectionRecorded {
        corrects_version: 2,
        correction: Some("the decision was made by inspector 43".into()),
    };
    assert_eq!(when(right).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_rectification_raises_a_notice_to_every_recipient() {
    let given = vec![event(
        "police",
        AT,
        with(|d| *field!(d, recipients) = vec!["council".into(), "health".into()]),
    )];
    let events = TestFramework::<Case>::with(services(vec![]))
        .given(given)
        .when_async(command(
            "police",
            AT,
            CaseFact::RectificationApplied {
                fields: vec!["address".into()],
                description: None,
            },
        ))
        .await
        .inspect_result()
        .unwrap();
    let notices: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.fact {
            CaseFact::NoticeIssued {
                kind: NoticeKind::Rectification,
                recipient,
                ..
            } => Some(recipient.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(notices, ["council", "health"]);
}

#[tokio::test]
async fn unknown_codes_are_refused_with_the_valid_ones() {
    let bad = with(|d| *field!(d, classification) = "HUSH".into());
    let refusal = disclose(vec![], "police", bad, vec![]).await.unwrap_err();
    let Refusal::UnknownCode { valid, .. } = &refusal else {
        panic!("{refusal}")
    };
    assert!(valid.contains(&"OFFICIAL-SENSITIVE".to_string()));
    // A legacy marking is accepted and recorded with the marking that handles it.
    let legacy = with(|d| *field!(d, classification) = "RESTRICTED".into());
    let events = disclose(vec![], "police", legacy, vec![]).await.unwrap();
    assert_eq!(
        field!(&events[0].fact, handled_as).as_deref(),
        Some("OFFICIAL-SENSITIVE")
    );
}

fn detected(aware: &str) -> Recorded<BreachFact> {
    event(
        "council",
        aware,
        BreachFact::BreachDetected {
            became_aware_at: aware.into(),
            occurred_at: None,
            nature: vec![domain::breach::BreachNature::Confidentiality],
            data_categories: vec!["personal".into()],
            subject_categories: vec!["residents".into()],
            approximate_subjects: 40,
            approximate_records: 40,
            description: Some("email sent to the wrong distribution list".into()),
            likely_consequences: None,
            containment: None,
        },
    )
}

fn report(reasons: Option<&str>) -> BreachFact {
    BreachFact::BreachReportedToIco {
        report: IcoReportKind::Initial,
        ico_reference: "IC-12345-A1B2".into(),
        reasons_for_delay: reasons.map(str::to_string),
    }
}

#[tokio::test]
async fn a_late_ico_report_carries_reasons_for_delay() {
    let aware = "2025-03-03T09:00:00Z";
    let when = |at: &'static str, fact: BreachFact| async move {
        TestFramework::<Breach>::with(reference())
            .given(vec![detected(aware)])
            .when_async(command("council", at, fact))
            .await
            .inspect_result()
    };
    // 71 hours: in time, no reasons needed.
    when("2025-03-06T08:00:00Z", report(None)).await.unwrap();
    // 72 hours exactly is still in time.
    when("2025-03-06T09:00:00Z", report(None)).await.unwrap();
    let message = refused_by(
        when("2025-03-06T10:00:00Z", report(None)).await,
        "late-ico-report-reasons",
    );
    assert!(message.contains("73 hours"), "{message}");
    when(
        "2025-03-06T10:00:00Z",
        report(Some("the extent was only established on day 3")),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_sar_extension_is_recorded_before_the_first_deadline() {
    let received = event(
        "council",
        "2025-01-31T10:00:00Z",
        SarFact::SubjectAccessRequestReceived {
            subject: subject(),
            part_3: false,
            channel: "web form".into(),
        },
    );
    let extend = SarFact::SarExtended {
        reason: Some("complex: records held by three partners".into()),
        notice_sent_to_requester: true,
    };
    let when = |at: &'static str| {
        let (received, extend) = (received.clone(), extend.clone());
        async move {
            TestFramework::<Sar>::with(Arc::new(Settings::default()))
                .given(vec![received])
                .when_async(command("council", at, extend))
                .await
                .inspect_result()
        }
    };
    // One month from 31 January is 28 February (clamped).
    when("2025-02-28T16:00:00Z").await.unwrap();
    let message = refused_by(
        when("2025-03-01T09:00:00Z").await,
        "sar-extension-before-deadline",
    );
    assert!(message.contains("2025-02-28"), "{message}");
}

/// Whether an extension at `extend_at` is in time for a SAR received at `received_at`
/// with `later` events, under these settings: `Ok` or the refusal's message.
async fn extension_at(
    settings: &str,
    part_3: bool,
    received_at: &str,
    later: &[(&str, SarFact)],
    extend_at: &'static str,
) -> Result<(), String> {
    let mut given = vec![event(
        "council",
        received_at,
        SarFact::SubjectAccessRequestReceived {
            subject: subject(),
            part_3,
            channel: "letter".into(),
        },
    )];
    for (at, fact) in later {
        given.push(event("council", at, fact.clone()));
    }
    let result = TestFramework::<Sar>::with(Arc::new(Settings::parse(settings).unwrap()))
        .given(given)
        .when_async(command(
            "council",
            extend_at,
            SarFact::SarExtended {
                reason: Some("complex: records held by three partners".into()),
                notice_sent_to_requester: true,
            },
        ))
        .await
        .inspect_result();
    match result {
        Ok(_) => Ok(()),
        Err(_) => Err(refused_by(result, "sar-extension-before-deadline")),
    }
}

#[tokio::test]
async fn the_extension_deadline_is_the_one_the_sar_queue_shows() {
    // Received 1 February 2025: one month on is Saturday 1 March, so the deadline is
    // Monday 3 March, and an extension on the Sunday or the Monday is in time.
    let feb = "2025-02-01T10:00:00Z";
    extension_at("{}", false, feb, &[], "2025-03-02T12:00:00Z")
        .await
        .unwrap();
    extension_at("{}", false, feb, &[], "2025-03-03T16:00:00Z")
        .await
        .unwrap();
    let late = extension_at("{}", false, feb, &[], "2025-03-04T09:00:00Z")
        .await
        .unwrap_err();
    assert!(late.contains("2025-03-03"), "{late}");
    assert!(late.contains("not a working day"), "{late}");

    // One month from 2 December 2025 is Friday 2 January 2026: a working day in England
    // and Wales, a bank holiday in Scotland (the controller's division decides).
    let dec = "2025-12-02T10:00:00Z";
    let scottish = r#"{"divisions": {"council": "scotland"}}"#;
    extension_at(scottish, false, dec, &[], "2026-01-05T10:00:00Z")
        .await
        .unwrap();
    let late = extension_at("{}", false, dec, &[], "2026-01-05T10:00:00Z")
        .await
        .unwrap_err();
    assert!(late.contains("2026-01-02"), "{late}");

    // A clarification requested on the 10th and received on the 12th stops the clock
    // for three days, both ends counted, as the queue counts them: due 6 March, not 5th.
    let paused = [
        (
            "2025-02-10T10:00:00Z",
            SarFact::SarClarificationRequested { description: None },
        ),
        ("2025-02-12T10:00:00Z", SarFact::SarClarificationReceived {}),
    ];
    let feb3 = "2025-02-03T10:00:00Z";
    extension_at("{}", false, feb3, &paused, "2025-03-06T16:00:00Z")
        .await
        .unwrap();
    let late = extension_at("{}", false, feb3, &paused, "2025-03-07T09:00:00Z")
        .await
        .unwrap_err();
    assert!(late.contains("2025-03-06"), "{late}");

    // During a pause the clock is stopped: an extension is in time if the clock
    // stopped on or before the deadline (3 March), however long the pause has lasted.
    let asked = |on: &'static str| [(on, SarFact::SarClarificationRequested { description: None })];
    let stopped_in_time = asked("2025-03-03T12:00:00Z");
    extension_at("{}", false, feb3, &stopped_in_time, "2025-03-20T09:00:00Z")
        .await
        .unwrap();
    let stopped_late = asked("2025-03-04T12:00:00Z");
    let late = extension_at("{}", false, feb3, &stopped_late, "2025-03-04T13:00:00Z")
        .await
        .unwrap_err();
    assert!(
        late.contains("when the clock stopped on 2025-03-04"),
        "{late}"
    );

    // A Part 3 SAR received on 27 February: due 27 March, or 28 March where the
    // settings start its clock the day after.
    let part3 = "2025-02-27T10:00:00Z";
    let day_after = r#"{"part3_start": "day-after"}"#;
    extension_at(day_after, true, part3, &[], "2025-03-28T10:00:00Z")
        .await
        .unwrap();
    let late = extension_at("{}", true, part3, &[], "2025-03-28T10:00:00Z")
        .await
        .unwrap_err();
    assert!(late.contains("2025-03-27"), "{late}");
}

#[tokio::test]
async fn a_clarification_pause_runs_forwards_from_receipt() {
    let given = |later: Vec<(&str, SarFact)>| {
        let mut events = vec![event(
            "council",
            "2025-02-03T10:00:00Z",
            SarFact::SubjectAccessRequestReceived {
                subject: subject(),
                part_3: false,
                channel: "letter".into(),
            },
        )];
        events.extend(later.into_iter().map(|(at, f)| event("council", at, f)));
        events
    };
    let when = |history: Vec<Recorded<SarFact>>, at: &'static str, fact: SarFact| async move {
        TestFramework::<Sar>::with(Arc::new(Settings::default()))
            .given(history)
            .when_async(command("council", at, fact))
            .await
            .inspect_result()
    };
    let asked = SarFact::SarClarificationRequested { description: None };
    // Requested before the SAR arrived: refused.
    let early = when(given(vec![]), "2025-02-01T10:00:00Z", asked.clone()).await;
    assert!(refused_by(early, "process-order").contains("before the SAR was received"));
    // Received before it was requested: refused (it would run the clock backwards).
    let history = given(vec![("2025-02-10T10:00:00Z", asked)]);
    let backwards = when(
        history.clone(),
        "2025-02-09T10:00:00Z",
        SarFact::SarClarificationReceived {},
    )
    .await;
    assert!(refused_by(backwards, "process-order").contains("2025-02-10"));
    when(
        history,
        "2025-02-10T15:00:00Z",
        SarFact::SarClarificationReceived {},
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn partners_act_only_for_themselves_in_governance() {
    let result = TestFramework::<Partnership>::with(reference())
        .given(partnership_events())
        .when_async(command(
            "council",
            AT,
            PartnershipFact::AgreementSigned {
                agreement: ISA.into(),
                signatory: "voluntary".into(),
                signed_as: "chair".into(),
            },
        ))
        .await
        .inspect_result();
    refused_by(result, "acting-partner-is-party");
    let unknown_kind = TestFramework::<Partnership>::with(reference())
        .given(partnership_events())
        .when_async(command(
            "police",
            AT,
            PartnershipFact::PartnerRegistered {
                partner: "school".into(),
                organisation: "A school".into(),
                kind: "school".into(),
                ico_registration: "Z7654321".into(),
                dpo_contact: "dpo@school.example".into(),
            },
        ))
        .await
        .inspect_result();
    let refusal = unknown_kind.unwrap_err();
    assert!(
        refusal.to_string().contains("co-operating-body"),
        "{refusal}"
    );
}
