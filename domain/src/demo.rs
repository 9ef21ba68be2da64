//! The demo partnership: a Community Safety Partnership's first months, as commands.
//!
//! Fixed clock (every `at` is written out) and no randomness in the script, so every run
//! asks for the same facts in the same order, each under an idempotency key derived from
//! its position: running the demo twice records everything once. (Entry hashes still
//! differ between data directories: keys, the pseudonym secret and content salts are
//! random by design.)
//!
//! The people are fictional; they reach the log only as pseudonyms.

use serde_json::{json, Value};

/// The partners, their kinds and organisations.
pub const PARTNERS: [(&str, &str, &str); 7] = [
    ("police", "responsible-authority", "Northshire Constabulary"),
    (
        "council",
        "responsible-authority",
        "Northshire Borough Council",
    ),
    (
        "fire-rescue",
        "responsible-authority",
        "Northshire Fire and Rescue Service",
    ),
    (
        "health-board",
        "responsible-authority",
        "Northshire Integrated Care Board",
    ),
    (
        "probation",
        "responsible-authority",
        "Probation Service, Northshire region",
    ),
    (
        "housing",
        "co-operating-body",
        "Northshire Homes (registered provider)",
    ),
    ("voluntary", "co-operating-body", "Northshire Women's Aid"),
];

const PROTOCOL: &str = "csp-protocol-2025";
const ISA: &str = "csp-isa-asb-2025";
const PURPOSE: &str = "prevention and reduction of crime, disorder and anti-social behaviour";

/// One scripted command: who submits it, and the command.
pub struct Step {
    pub partner: &'static str,
    pub command: Value,
}

fn step(partner: &'static str, stream: &str, at: &str, fact: Value) -> Step {
    let mut command = json!({
        "stream": stream,
        "by": {"partner": partner, "user": format!("{partner}-dpo-01"), "role": "data-protection-officer"},
        "at": at,
    });
    if let (Some(c), Value::Object(f)) = (command.as_object_mut(), fact) {
        c.extend(f);
    }
    Step { partner, command }
}

fn as_user(mut s: Step, user: &str, role: &str) -> Step {
    s.command["by"]["user"] = json!(user);
    s.command["by"]["role"] = json!(role);
    s
}

fn person(given: &str, family: &str, dob: &str) -> Value {
    json!({"given_name": given, "family_name": family, "date_of_birth": dob})
}

fn disclosure(id: &str, recipients: &[&str], subject: Value, extra: Value) -> Value {
    let mut d = json!({
        "type": "DisclosureMade",
        "disclosure": id,
        "agreement": ISA,
        "recipients": recipients,
        "subjects": [subject],
        "data_categories": ["personal"],
        "purpose": PURPOSE,
        "classification": "OFFICIAL-SENSITIVE",
        "channel": "secure email",
        "lawful_bases": ["uk-gdpr-6-1-e"],
        "gateways": ["cda-1998-s115"],
        "onward_sharing": "not-without-permission",
        "review_after_months": 12,
    });
    if let (Some(d), Value::Object(e)) = (d.as_object_mut(), extra) {
        d.extend(e);
    }
    d
}

/// The whole script, in order.
pub fn script() -> Vec<Step> {
    let mut s = Vec::new();
    let day0 = "2025-01-06T09:00:00Z";

    // Governance: partners, the protocol and the ISA, signatures, liaison officers.
    for (partner, kind, organisation) in PARTNERS {
        s.push(step(
            "police",
            "partnership",
            day0,
            json!({
                "type": "PartnerRegistered", "partner": partner, "organisation": organisation,
                "kind": kind, "ico_registration": format!("Z{:07}", organisation.len() * 7919),
                "dpo_contact": format!("dpo@{partner}.northshire.example"),
            }),
        ));
    }
    s.push(step("police", "partnership", day0, json!({
        "type": "AgreementAdopted", "agreement": PROTOCOL, "kind": "protocol",
        "title": "Northshire Community Safety Partnership information sharing protocol",
        "purposes": [PURPOSE],
        "lawful_bases": ["uk-gdpr-6-1-e", "uk-gdpr-9-2-g", "dpa-2018-sch-1-para-10", "dpa-2018-s35-2-b"],
        "gateways": ["cda-1998-s115", "cda-1998-s17a", "ca-2004-s11", "care-act-2014-s45"],
        "data_categories": ["personal", "special-category", "criminal-offence", "depersonalised", "aggregate"],
        "retention": [{"data_category": "personal", "review_after_months": 12},
                      {"data_category": "criminal-offence", "review_after_months": 12}],
        "review_interval_months": 24,
    })));
    s.push(step(
        "council",
        "partnership",
        "2025-01-06T10:00:00Z",
        json!({
            "type": "AgreementAdopted", "agreement": ISA, "kind": "isa", "under": PROTOCOL,
            "title": "Anti-social behaviour case management ISA",
            "purposes": [PURPOSE],
            "lawful_bases": ["uk-gdpr-6-1-e", "dpa-2018-sch-1-para-10"],
            "gateways": ["cda-1998-s115"],
            "data_categories": ["personal", "criminal-offence", "special-category"],
            "retention": [{"data_category": "personal", "review_after_months": 12}],
            "review_interval_months": 12,
        }),
    ));
    for (partner, _, _) in PARTNERS {
        s.push(step(partner, "partnership", "2025-01-07T09:00:00Z", json!({
            "type": "AgreementSigned", "agreement": PROTOCOL, "signatory": partner, "signed_as": "chief officer",
        })));
        if partner != "voluntary" {
            s.push(step(partner, "partnership", "2025-01-07T09:30:00Z", json!({
                "type": "AgreementSigned", "agreement": ISA, "signatory": partner, "signed_as": "head of service",
            })));
            s.push(step(partner, "partnership", "2025-01-07T10:00:00Z", json!({
                "type": "LiaisonOfficerDesignated", "agreement": ISA, "partner": partner,
                "officer": format!("{partner}-dlo-01"), "officer_role": "designated liaison officer",
            })));
        }
    }

    // A multi-agency meeting; the voluntary body attends under a signed declaration.
    s.push(step("police", "partnership", "2025-01-15T14:00:00Z", json!({
        "type": "MeetingHeld", "meeting": "asb-panel-2025-01", "agreement": ISA, "chair": "police",
        "classification": "OFFICIAL-SENSITIVE",
        "declarations_signed_by": ["police", "council", "housing", "voluntary"],
    })));

    // A request shared with rationale (council asks police).
    let subject_a = person("Jordan", "Examplefield", "14/03/1990");
    let case1 = "case/asb-2025-0001";
    s.push(step("council", case1, "2025-01-20T09:15:00Z", json!({
        "type": "InformationRequested", "agreement": ISA, "requester": "council", "holder": "police",
        "subjects": [subject_a], "data_categories": ["personal", "criminal-offence"],
        "purpose": PURPOSE, "lawful_bases": ["uk-gdpr-6-1-e", "dpa-2018-sch-1-para-10"],
        "gateways": ["cda-1998-s115"],
        "description": "Call-out history at the tenancy to support an ASB injunction application.",
    })));
    s.push(as_user(step("police", case1, "2025-01-21T11:00:00Z", json!({
        "type": "SharingDecisionRecorded", "decision": "share-in-part", "decided_by": "police-inspector-0042",
        "necessary": true, "proportionate": true, "minimum_necessary": true,
        "rationale": "Call-outs relevant to the ASB are necessary for the application; unrelated intelligence withheld.",
    })), "police-inspector-0042", "inspector"));
    s.push(step("police", case1, "2025-01-21T15:30:00Z", disclosure(
        "asb-2025-0001-d1", &["council"], subject_a.clone(),
        json!({"data_categories": ["personal", "criminal-offence"],
               "lawful_bases": ["uk-gdpr-6-1-e", "dpa-2018-sch-1-para-10"],
               "without_consent_decided_by": "police-inspector-0042",
               "without_consent_reason": "Seeking consent would prejudice the prevention of further anti-social behaviour."}),
    )));
    // Retention: the council reviews what it received a year on and keeps it, with reasons.
    s.push(step(
        "council",
        case1,
        "2026-01-22T10:00:00Z",
        json!({
            "type": "RetentionReviewed", "outcome": "keep", "next_review_due": "2026-07-22",
            "reason": "Injunction proceedings are still open.",
        }),
    ));

    // A request declined with rationale (housing asks health).
    let case2 = "case/asb-2025-0002";
    s.push(step("housing", case2, "2025-02-03T10:00:00Z", json!({
        "type": "InformationRequested", "agreement": ISA, "requester": "housing", "holder": "health-board",
        "subjects": [person("Casey", "Samplewood", "1978-11-02")], "data_categories": ["special-category"],
        "purpose": PURPOSE, "lawful_bases": ["uk-gdpr-6-1-e", "uk-gdpr-9-2-g", "dpa-2018-sch-1-para-10"],
        "description": "Mental health history to inform a tenancy decision.",
    })));
    s.push(step("health-board", case2, "2025-02-05T16:00:00Z", json!({
        "type": "SharingDecisionRecorded", "decision": "decline", "decided_by": "health-caldicott-guardian",
        "necessary": false, "proportionate": false, "minimum_necessary": false,
        "rationale": "A tenancy decision does not make health records necessary; the tenant can be asked directly.",
    })));

    // Consent: recorded, relied on by a disclosure; another recorded and withdrawn.
    let subject_b = person("Riley", "Placeholder", "2003-07-09");
    s.push(step(
        "health-board",
        "consent/c-2025-0001",
        "2025-02-10T11:00:00Z",
        json!({
            "type": "ConsentRecorded", "consent": "c-2025-0001", "subject": subject_b,
            "recipients": ["council", "voluntary"], "purposes": [PURPOSE],
            "given_by": "subject", "witnessed_by": "health-board-nurse-17",
        }),
    ));
    s.push(step(
        "health-board",
        "case/asb-2025-0003",
        "2025-02-11T09:00:00Z",
        disclosure(
            "asb-2025-0003-d1",
            &["council"],
            subject_b.clone(),
            json!({"consent": "c-2025-0001"}),
        ),
    ));
    s.push(step("council", "consent/c-2025-0002", "2025-02-12T09:00:00Z", json!({
        "type": "ConsentRecorded", "consent": "c-2025-0002", "subject": person("Sam", "Illustration", "1995-05-20"),
        "recipients": ["housing"], "purposes": [PURPOSE], "given_by": "subject",
    })));
    s.push(step(
        "council",
        "consent/c-2025-0002",
        "2025-03-01T09:00:00Z",
        json!({
            "type": "ConsentWithdrawn", "consent": "c-2025-0002",
        }),
    ));

    // Shared at the meeting with the voluntary body (declaration signed).
    s.push(step("police", "case/asb-2025-0004", "2025-01-15T15:00:00Z", disclosure(
        "asb-2025-0004-d1", &["voluntary"], person("Morgan", "Testcase", "1988-01-30"),
        json!({"meeting": "asb-panel-2025-01",
               "without_consent_decided_by": "police-inspector-0042",
               "without_consent_reason": "Risk to a third party; shared with the support worker only."}),
    )));

    // A rectification reaching three recipients: police corrects an address it shared.
    let case5 = "case/asb-2025-0005";
    let subject_c = person("Taylor", "Fictitious", "1972-12-25");
    s.push(step(
        "police",
        case5,
        "2025-03-10T10:00:00Z",
        disclosure(
            "asb-2025-0005-d1",
            &["council", "housing", "probation"],
            subject_c.clone(),
            json!({"without_consent_decided_by": "police-inspector-0042",
               "without_consent_reason": "Managing an identified risk of harm to neighbours."}),
        ),
    ));
    s.push(step("police", case5, "2025-03-20T10:00:00Z", json!({
        "type": "RectificationApplied", "fields": ["address"],
        "description": "The address disclosed was a previous one; corrected to the current tenancy.",
    })));
    s.push(step(
        "council",
        case5,
        "2025-03-21T09:00:00Z",
        json!({"type": "NoticeAcknowledged", "notice": "n1"}),
    ));
    s.push(step(
        "housing",
        case5,
        "2025-03-24T09:00:00Z",
        json!({"type": "NoticeAcknowledged", "notice": "n2"}),
    ));

    // Retention: a record a year old is reviewed and disposed of (content removed).
    let case6 = "case/asb-2025-0006";
    s.push(step("council", case6, "2025-01-10T10:00:00Z", disclosure(
        "asb-2025-0006-d1", &["fire-rescue"], person("Jamie", "Sampleton", "1960-08-08"),
        json!({"without_consent_decided_by": "council-asb-manager",
               "without_consent_reason": "Hoarding creating a fire risk; home fire safety visit needed."}),
    )));
    s.push(step(
        "council",
        case6,
        "2026-01-12T10:00:00Z",
        json!({
            "type": "RetentionReviewed", "outcome": "dispose",
        }),
    ));
    s.push(step("council", case6, "2026-01-12T11:00:00Z", json!({
        "type": "RecordDisposed", "method": "deleted from the case management system; backups expire in 30 days",
    })));

    // A SAR: the council consults the police, whose data it holds, before responding.
    let sar = "sar/sar-2025-0001";
    s.push(step(
        "council",
        sar,
        "2025-04-01T10:00:00Z",
        json!({
            "type": "SubjectAccessRequestReceived", "subject": subject_a, "channel": "web form",
        }),
    ));
    s.push(step(
        "council",
        sar,
        "2025-04-02T10:00:00Z",
        json!({"type": "SarIdentityVerified"}),
    ));
    s.push(step(
        "council",
        sar,
        "2025-04-03T10:00:00Z",
        json!({"type": "SarPartnerConsulted", "partner": "police"}),
    ));
    s.push(step(
        "police",
        sar,
        "2025-04-10T10:00:00Z",
        json!({
            "type": "SarConsultationAnswered", "answer": "release-redacted",
            "reasons": "Third-party details withheld (DPA 2018 Sch 2 Pt 3 para 16).",
        }),
    ));
    s.push(step(
        "council",
        sar,
        "2025-04-28T10:00:00Z",
        json!({"type": "SarResponded", "outcome": "disclosed with redactions"}),
    ));

    // Two breaches: one reported within 72 hours, one late with reasons.
    let b1 = "breach/br-2025-0001";
    s.push(step("council", b1, "2025-05-05T10:00:00Z", json!({
        "type": "BreachDetected", "became_aware_at": "2025-05-05T09:30:00Z", "occurred_at": "2025-05-05T08:50:00Z",
        "nature": ["confidentiality"], "data_categories": ["personal"], "subject_categories": ["residents"],
        "approximate_subjects": 42, "approximate_records": 42,
        "description": "A case list was emailed to an external distribution list.",
        "containment": "Recall requested; recipients asked to delete and confirm.",
    })));
    s.push(step("council", b1, "2025-05-05T15:00:00Z", json!({
        "type": "BreachAssessed", "risk": "risk", "rationale": "Names and addresses of ASB complainants; possible reprisals.",
    })));
    s.push(step(
        "council",
        b1,
        "2025-05-05T16:00:00Z",
        json!({"type": "BreachPartnersAlerted", "partners": ["police", "housing"]}),
    ));
    s.push(step(
        "council",
        b1,
        "2025-05-06T15:00:00Z",
        json!({
            "type": "BreachReportedToIco", "report": "initial", "ico_reference": "IC-2025-000101",
        }),
    ));
    let b2 = "breach/br-2025-0002";
    s.push(step("housing", b2, "2025-06-06T17:00:00Z", json!({
        "type": "BreachDetected", "became_aware_at": "2025-06-06T16:00:00Z",
        "nature": ["confidentiality", "availability"], "data_categories": ["personal", "special-category"],
        "subject_categories": ["tenants"], "approximate_subjects": 300, "approximate_records": 1200,
        "description": "An unencrypted laptop with tenancy support notes was stolen from a vehicle.",
    })));
    s.push(step("housing", b2, "2025-06-09T12:00:00Z", json!({
        "type": "BreachAssessed", "risk": "high-risk", "rationale": "Support notes include health information.",
    })));
    s.push(step("housing", b2, "2025-06-10T11:00:00Z", json!({
        "type": "BreachReportedToIco", "report": "initial", "ico_reference": "IC-2025-000202",
        "reasons_for_delay": "The laptop's contents were only established from backups on 9 June.",
    })));
    s.push(step("housing", b2, "2025-06-11T10:00:00Z", json!({
        "type": "BreachSubjectsNotified", "method": "letter and phone call", "subjects_notified": 300,
    })));

    // Other requests.
    s.push(step(
        "council",
        "foi/foi-2025-0001",
        "2025-07-01T09:00:00Z",
        json!({
            "type": "FoiRequestReceived", "regime": "foi", "channel": "email",
        }),
    ));
    s.push(step(
        "council",
        "complaint/cmp-2025-0001",
        "2025-07-02T09:00:00Z",
        json!({
            "type": "ComplaintReceived", "channel": "letter",
            "description": "Complains that their data was shared with the housing provider.",
        }),
    ));
    s.push(step(
        "council",
        "complaint/cmp-2025-0001",
        "2025-07-03T09:00:00Z",
        json!({"type": "ComplaintAcknowledged"}),
    ));
    s
}
