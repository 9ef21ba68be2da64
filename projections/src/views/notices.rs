//! Notices a partner must act on, per recipient: Article 19 notices (rectification,
//! erasure, restriction and its lifting, objection) to acknowledge, SAR consultations to
//! answer, onward-sharing requests for the originator to grant or refuse, and breach
//! alerts. Each has a response date (the settings' working days in the recipient's
//! division); "overdue" is worked out when the view is read.

use super::{narrative_entry, response_due, sub_key, DeadlineRecord, INDEX_STATUS};
use crate::logged::Logged;
use crate::view::{Columns, Context, Rows, Touch, View};
use domain::case::{CaseFact, NoticeKind};
use domain::event::DomainEvent;
use domain::sar::SarFact;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub struct Notices;

/// A notice, or the view's note of who originated a case (onward-sharing requests go
/// to the originator, which the request itself does not name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "row", rename_all = "kebab-case")]
pub enum NoticeRow {
    Notice(Box<Notice>),
    CaseIndex { originator: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// `article-19`, `breach-alert`, `sar-consultation` or `onward-sharing-request`.
    pub kind: String,
    /// For Article 19 notices: what happened to the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_19: Option<NoticeKind>,
    /// The stream it is about (`case/…`, `breach/…`, `sar/…`) and its id there.
    pub about: String,
    pub id: String,
    pub issuer: String,
    pub recipient: String,
    pub issued_at: String,
    pub issued_entry: u64,
    /// For onward-sharing requests: to whom, for what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub onward_to: Vec<String>,
    /// `None` for breach alerts, which ask for no reply.
    pub response: Option<DeadlineRecord>,
    /// pending, acknowledged, exempted, answered, granted, refused, alerted.
    pub status: String,
    pub settled_at: Option<String>,
    /// The SAR consultation's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// The entry holding the exemption's or refusal's reasons, or the answer's.
    pub reasons_entry: Option<u64>,
}

impl Notice {
    fn settle(&mut self, status: &str, at: &str, event: &Logged) {
        self.status = status.to_string();
        self.settled_at = Some(at.to_string());
        self.reasons_entry = narrative_entry(event);
    }
}

/// The event types for which [`changed_keys`] can be non-empty: a reader of raw
/// entries (the notice feed) decodes only those. Kept beside the match below; the views
/// suite checks every demo entry against it.
pub const CHANGING_EVENT_TYPES: [&str; 11] = [
    "InformationRequested",
    "DisclosureMade",
    "NoticeIssued",
    "NoticeAcknowledged",
    "NoticeExempted",
    "OnwardSharingRequested",
    "OnwardSharingGranted",
    "OnwardSharingRefused",
    "BreachPartnersAlerted",
    "SarPartnerConsulted",
    "SarConsultationAnswered",
];

/// Whether an entry's canonical bytes may change a notice row, without decoding them:
/// true if any `"event_type"` member in them names one of [`CHANGING_EVENT_TYPES`]
/// (canonical JSON has no space around `:`, and event types are alphanumeric). A
/// false positive only costs a decode.
pub fn may_change(entry_bytes: &[u8]) -> bool {
    const MEMBER: &[u8] = b"\"event_type\":\"";
    let mut rest = entry_bytes;
    while let Some(at) = find(rest, MEMBER) {
        rest = &rest[at + MEMBER.len()..];
        let name_len = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
        let name = &rest[..name_len];
        if CHANGING_EVENT_TYPES.iter().any(|t| t.as_bytes() == name) {
            return true;
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The rows an entry creates or changes: notices (`STREAM#notice-…`, `#alert-…`,
/// `#consult-…`, `#onward-…`) and the case's index row. What the notice feed follows.
/// An event type added here must be added to [`CHANGING_EVENT_TYPES`].
pub fn changed_keys(event: &Logged) -> Vec<String> {
    let Some(e) = &event.event else {
        return Vec::new();
    };
    match e {
        DomainEvent::Case(r) => match &r.fact {
            CaseFact::InformationRequested { .. } | CaseFact::DisclosureMade { .. } => {
                vec![event.stream.clone()]
            }
            CaseFact::NoticeIssued { notice, .. }
            | CaseFact::NoticeAcknowledged { notice }
            | CaseFact::NoticeExempted { notice, .. } => {
                vec![sub_key(event, &format!("notice-{notice}"))]
            }
            CaseFact::OnwardSharingRequested { onward, .. } => vec![
                event.stream.clone(),
                sub_key(event, &format!("onward-{onward}")),
            ],
            CaseFact::OnwardSharingGranted { onward }
            | CaseFact::OnwardSharingRefused { onward, .. } => {
                vec![sub_key(event, &format!("onward-{onward}"))]
            }
            _ => Vec::new(),
        },
        DomainEvent::Breach(r) => match &r.fact {
            domain::breach::BreachFact::BreachPartnersAlerted { partners } => partners
                .iter()
                .map(|p| sub_key(event, &format!("alert-{p}")))
                .collect(),
            _ => Vec::new(),
        },
        DomainEvent::Sar(r) => match &r.fact {
            SarFact::SarPartnerConsulted { partner } => {
                vec![sub_key(event, &format!("consult-{partner}"))]
            }
            SarFact::SarConsultationAnswered { .. } => {
                vec![sub_key(event, &format!("consult-{}", r.by.partner))]
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn notice<'r>(
    rows: &'r mut Rows<NoticeRow>,
    key: &str,
    event: &Logged,
) -> Result<&'r mut Notice, String> {
    match rows.expect_mut(key, event)? {
        NoticeRow::Notice(n) => Ok(n),
        NoticeRow::CaseIndex { .. } => Err(format!("{key:?} is not a notice")),
    }
}

impl View for Notices {
    const NAME: &'static str = "notices";
    const VERSION: u32 = 1;
    type Row = NoticeRow;

    fn touches(event: &Logged) -> Touch {
        let keys = changed_keys(event);
        if keys.is_empty() {
            Touch::Nothing
        } else {
            Touch::Keys(keys)
        }
    }

    fn apply(ctx: &Context<'_>, event: &Logged, rows: &mut Rows<NoticeRow>) -> Result<(), String> {
        let Some(e) = &event.event else {
            return Ok(());
        };
        let (actor, at) = match e {
            DomainEvent::Case(r) => (&r.by.partner, &r.at),
            DomainEvent::Breach(r) => (&r.by.partner, &r.at),
            DomainEvent::Sar(r) => (&r.by.partner, &r.at),
            _ => return Ok(()),
        };
        let new = |kind: &str, id: &str, recipient: &str, response: bool| {
            Box::new(Notice {
                kind: kind.to_string(),
                article_19: None,
                about: event.stream.clone(),
                id: id.to_string(),
                issuer: actor.clone(),
                recipient: recipient.to_string(),
                issued_at: at.clone(),
                issued_entry: event.seq,
                onward_to: Vec::new(),
                response: response.then(|| response_due(ctx, recipient, at)),
                status: if response { "pending" } else { "alerted" }.to_string(),
                settled_at: None,
                answer: None,
                reasons_entry: None,
            })
        };
        let key_list = changed_keys(event);
        let first = key_list.first().cloned().unwrap_or_default();
        match e {
            DomainEvent::Case(r) => match &r.fact {
                CaseFact::InformationRequested { holder, .. } => {
                    rows.insert(
                        first,
                        NoticeRow::CaseIndex {
                            originator: Some(holder.clone()),
                        },
                    );
                }
                CaseFact::DisclosureMade { .. } => match rows.get_mut(&first) {
                    Some(NoticeRow::CaseIndex { originator }) => {
                        originator.get_or_insert_with(|| actor.clone());
                    }
                    _ => rows.insert(
                        first,
                        NoticeRow::CaseIndex {
                            originator: Some(actor.clone()),
                        },
                    ),
                },
                CaseFact::NoticeIssued {
                    notice,
                    kind,
                    recipient,
                } => {
                    let mut n = new("article-19", notice, recipient, true);
                    n.article_19 = Some(*kind);
                    rows.insert(first, NoticeRow::Notice(n));
                }
                CaseFact::NoticeAcknowledged { .. } => {
                    notice(rows, &first, event)?.settle("acknowledged", at, event)
                }
                CaseFact::NoticeExempted { .. } => {
                    notice(rows, &first, event)?.settle("exempted", at, event)
                }
                CaseFact::OnwardSharingRequested { onward, to, .. } => {
                    let originator = match rows.get(&first) {
                        Some(NoticeRow::CaseIndex {
                            originator: Some(o),
                        }) => o.clone(),
                        _ => {
                            return Err(format!(
                                "onward-sharing request {onward:?} in a case with no originator"
                            ))
                        }
                    };
                    let mut n = new("onward-sharing-request", onward, &originator, true);
                    n.onward_to = to.clone();
                    let key = key_list.get(1).cloned().unwrap_or_default();
                    rows.insert(key, NoticeRow::Notice(n));
                }
                CaseFact::OnwardSharingGranted { .. } => {
                    notice(rows, &first, event)?.settle("granted", at, event)
                }
                CaseFact::OnwardSharingRefused { .. } => {
                    notice(rows, &first, event)?.settle("refused", at, event)
                }
                _ => {}
            },
            DomainEvent::Breach(_) => {
                for (key, partner) in key_list.iter().zip(match &e {
                    DomainEvent::Breach(r) => match &r.fact {
                        domain::breach::BreachFact::BreachPartnersAlerted { partners } => {
                            partners.as_slice()
                        }
                        _ => &[],
                    },
                    _ => &[],
                }) {
                    if rows.get(key).is_none() {
                        rows.insert(
                            key.clone(),
                            NoticeRow::Notice(new(
                                "breach-alert",
                                &format!("alert-{partner}"),
                                partner,
                                false,
                            )),
                        );
                    }
                }
            }
            DomainEvent::Sar(r) => match &r.fact {
                SarFact::SarPartnerConsulted { partner } => {
                    rows.insert(
                        first,
                        NoticeRow::Notice(new(
                            "sar-consultation",
                            &format!("consult-{partner}"),
                            partner,
                            true,
                        )),
                    );
                }
                SarFact::SarConsultationAnswered { answer, .. } => {
                    let n = notice(rows, &first, event)?;
                    n.settle("answered", at, event);
                    n.answer = serde_json::to_value(answer)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string));
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    fn columns(row: &NoticeRow) -> Columns {
        match row {
            NoticeRow::CaseIndex { originator } => Columns {
                partner: None,
                status: INDEX_STATUS.to_string(),
                due: None,
                subject: None,
                parties: originator.iter().cloned().collect(),
            },
            NoticeRow::Notice(n) => Columns {
                partner: Some(n.recipient.clone()),
                status: n.status.clone(),
                due: (n.status == "pending")
                    .then(|| n.response.as_ref().and_then(|r| r.due.clone()))
                    .flatten(),
                subject: None,
                parties: BTreeSet::from([n.issuer.clone(), n.recipient.clone()]),
            },
        }
    }
}

/// The notices stored under `keys`, as the view holds them now (index rows and keys
/// with no row are left out).
pub async fn load(
    db: &crate::db::ViewDb,
    chain_id: i64,
    keys: &[String],
) -> Result<Vec<(String, Notice)>, crate::db::DbError> {
    let table = crate::db::Names::live(<Notices as View>::NAME).table;
    let rows = db
        .load(&table, chain_id, crate::db::Select::Keys(keys))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (key, body) in rows {
        let row: NoticeRow = serde_json::from_str(&body)
            .map_err(|e| crate::db::DbError::Corrupt(format!("notice {key:?}: {e}")))?;
        if let NoticeRow::Notice(notice) = row {
            out.push((key, *notice));
        }
    }
    Ok(out)
}
