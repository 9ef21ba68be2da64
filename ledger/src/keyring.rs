//! Which key was valid for which entries. The log itself is the authority: the operator
//! entries `LedgerInitialised`, `LedgerKeyRotated`, `PartnerKeyRegistered`,
//! `PartnerKeyRotated` and `PartnerKeyRevoked` open and close validity ranges, and both
//! the sequencer (before accepting a submission) and the offline auditor (replaying an
//! export) apply them through this one type, so they cannot disagree.
//!
//! A key is valid for the entries with `from_seq <= seq < until_seq`:
//! - a partner key registered (or rotated in) by entry r: from r + 1;
//! - a partner key revoked (or rotated out) by entry x: until x;
//! - the genesis ledger key: from 0; a ledger key rotated out by entry r (which it
//!   signs itself): until r + 1, and the incoming key from r + 1.
//!
//! The checkpoint for tree size n is signed by the ledger key valid for seq n.

use crate::entry::{Submission, LEDGER_AUTHOR, POSSESSION_DOMAIN};
use crate::keys::{key_id, VerifierKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

pub const LEDGER_INITIALISED: &str = "LedgerInitialised";
pub const LEDGER_KEY_ROTATED: &str = "LedgerKeyRotated";
pub const PARTNER_KEY_REGISTERED: &str = "PartnerKeyRegistered";
pub const PARTNER_KEY_ROTATED: &str = "PartnerKeyRotated";
pub const PARTNER_KEY_REVOKED: &str = "PartnerKeyRevoked";

/// The event types only the ledger operator may author.
pub const OPERATOR_EVENTS: [&str; 5] = [
    LEDGER_INITIALISED,
    LEDGER_KEY_ROTATED,
    PARTNER_KEY_REGISTERED,
    PARTNER_KEY_ROTATED,
    PARTNER_KEY_REVOKED,
];

/// Who holds a partner's private key. Written and read only as the plain strings
/// `custodial` and `partner-held` (serde's derived form would also take `{"custodial":null}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Custody {
    /// The service holds it and signs for the partner's users.
    Custodial,
    /// The partner holds it and signs its own submissions.
    PartnerHeld,
}

impl<'de> Deserialize<'de> for Custody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Custody::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "custody must be custodial or partner-held, not {text:?}"
            ))
        })
    }
}

impl Custody {
    pub fn parse(text: &str) -> Option<Custody> {
        match text {
            "custodial" => Some(Custody::Custodial),
            "partner-held" => Some(Custody::PartnerHeld),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Custody::Custodial => "custodial",
            Custody::PartnerHeld => "partner-held",
        }
    }
}

/// One key and its validity range: a line of `keys.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Partner id, or `ledger` for the ledger's own keys.
    pub partner: String,
    pub key_id: String,
    /// The key in verifier-key text form `name+hexid+base64(0x01||key)`.
    pub verifier_key: String,
    pub custody: Custody,
    pub from_seq: u64,
    /// First entry the key is no longer valid for; `None` while it is current.
    pub until_seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("{author} has no key {key_id} valid for entry {seq}")]
    NoValidKey {
        author: String,
        key_id: String,
        seq: u64,
    },
    #[error("the author signature does not verify against {author}'s key {key_id}")]
    BadSignature { author: String, key_id: String },
    #[error("{event_type} may only be written by the ledger operator")]
    OperatorOnly { event_type: String },
    #[error("entry 0 must be LedgerInitialised, and only entry 0")]
    Genesis,
    #[error("{event_type} payload is invalid: {why}")]
    Payload { event_type: String, why: String },
    #[error("{partner} already has key {key_id}")]
    DuplicateKey { partner: String, key_id: String },
    #[error("{partner} has no current key {key_id} to retire")]
    NotCurrent { partner: String, key_id: String },
    #[error("the proof of possession for {key} does not verify")]
    Possession { key: String },
}

#[derive(Debug, Clone)]
struct Held {
    record: KeyRecord,
    key: VerifierKey,
}

/// All keys of one log, in the order they were registered.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    origin: String,
    keys: Vec<Held>,
    /// Positions in `keys` by partner, so a lookup by `&str` allocates nothing.
    index: HashMap<String, Vec<usize>>,
}

/// The message a new key signs to prove its holder registered it for this log.
pub fn possession_message(verifier_key: &str, origin: &str) -> Vec<u8> {
    [
        POSSESSION_DOMAIN,
        verifier_key.as_bytes(),
        b"\n",
        origin.as_bytes(),
        b"\n",
    ]
    .concat()
}

impl Keyring {
    pub fn new(origin: &str) -> Keyring {
        Keyring {
            origin: origin.to_string(),
            ..Keyring::default()
        }
    }

    /// Rebuilds a keyring from stored records (as the store or `keys.jsonl` hold them).
    pub fn from_records(origin: &str, records: Vec<KeyRecord>) -> Result<Keyring, KeyringError> {
        let mut ring = Keyring::new(origin);
        for record in records {
            let key =
                VerifierKey::parse(&record.verifier_key).map_err(|e| KeyringError::Payload {
                    event_type: "key record".into(),
                    why: e.to_string(),
                })?;
            ring.insert(record, key);
        }
        Ok(ring)
    }

    fn insert(&mut self, record: KeyRecord, key: VerifierKey) {
        self.index
            .entry(record.partner.clone())
            .or_default()
            .push(self.keys.len());
        self.keys.push(Held { record, key });
    }

    fn position(&self, partner: &str, key_id: &str) -> Option<usize> {
        self.index
            .get(partner)?
            .iter()
            .copied()
            .find(|&i| self.keys[i].record.key_id == key_id)
    }

    pub fn records(&self) -> impl Iterator<Item = &KeyRecord> {
        self.keys.iter().map(|h| &h.record)
    }

    /// The key `author` must have signed entry `seq` with, if `key_id` names one valid then.
    pub fn key_for(
        &self,
        author: &str,
        key_id: &str,
        seq: u64,
    ) -> Result<&VerifierKey, KeyringError> {
        self.position(author, key_id)
            .map(|i| &self.keys[i])
            .filter(|h| h.record.from_seq <= seq && h.record.until_seq.is_none_or(|u| seq < u))
            .map(|h| &h.key)
            .ok_or_else(|| KeyringError::NoValidKey {
                author: author.to_string(),
                key_id: key_id.to_string(),
                seq,
            })
    }

    /// The ledger key valid for entry `seq` (and so for the checkpoint of size `seq`).
    pub fn ledger_key_for(&self, seq: u64) -> Option<&VerifierKey> {
        self.keys
            .iter()
            .filter(|h| h.record.partner == LEDGER_AUTHOR)
            .find(|h| h.record.from_seq <= seq && h.record.until_seq.is_none_or(|u| seq < u))
            .map(|h| &h.key)
    }

    /// Checks who may write `submission` as entry `seq` and, for operator events, that
    /// the key change is well formed. Call before [`Keyring::apply`].
    pub fn check(&self, seq: u64, submission: &Submission) -> Result<(), KeyringError> {
        let event = submission.event_type.as_str();
        let operator_event = OPERATOR_EVENTS.contains(&event);
        if operator_event && submission.author != LEDGER_AUTHOR {
            return Err(KeyringError::OperatorOnly {
                event_type: event.to_string(),
            });
        }
        if (seq == 0) != (event == LEDGER_INITIALISED) {
            return Err(KeyringError::Genesis);
        }
        if event == LEDGER_INITIALISED {
            let p = Payload {
                event,
                value: &submission.payload,
            };
            if p.verifier_key("ledger_key")?.id_hex() != submission.key_id {
                return Err(
                    p.bad("the genesis entry must be signed by the ledger key it registers")
                );
            }
        }
        if operator_event {
            self.clone().apply(seq, submission)?;
        }
        Ok(())
    }

    /// Applies an operator event at `seq` to the key ranges. Other events are ignored.
    pub fn apply(&mut self, seq: u64, submission: &Submission) -> Result<(), KeyringError> {
        let event = submission.event_type.as_str();
        let p = Payload {
            event,
            value: &submission.payload,
        };
        match event {
            LEDGER_INITIALISED => {
                let key = p.verifier_key("ledger_key")?;
                if key.name != self.origin {
                    return Err(p.bad("ledger_key must be named after the log origin"));
                }
                self.register(LEDGER_AUTHOR, key, Custody::Custodial, seq)
            }
            LEDGER_KEY_ROTATED => {
                let key = p.verifier_key("ledger_key")?;
                if key.name != self.origin {
                    return Err(p.bad("ledger_key must be named after the log origin"));
                }
                p.check_possession(&key, &self.origin)?;
                self.retire(LEDGER_AUTHOR, &submission.key_id, seq + 1)?;
                self.register(LEDGER_AUTHOR, key, Custody::Custodial, seq + 1)
            }
            PARTNER_KEY_REGISTERED | PARTNER_KEY_ROTATED => {
                let partner = p.string("partner")?;
                if partner == LEDGER_AUTHOR {
                    return Err(p.bad("partner may not be `ledger`"));
                }
                let public = p.string("public_key")?;
                let raw = BASE64
                    .decode(public)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                    .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                    .ok_or_else(|| p.bad("public_key must be a 32-byte Ed25519 key in base64"))?;
                let key = VerifierKey::new(partner, raw).map_err(|e| p.bad(&e.to_string()))?;
                if p.string("key_id")? != hex::encode(key_id(partner, raw.as_bytes())) {
                    return Err(p.bad("key_id does not match partner and public_key"));
                }
                let custody: Custody = serde_json::from_value(p.field("custody")?.clone())
                    .map_err(|_| p.bad("custody must be custodial or partner-held"))?;
                p.check_possession(&key, &self.origin)?;
                if event == PARTNER_KEY_ROTATED {
                    self.retire(partner, p.string("old_key_id")?, seq)?;
                }
                self.register(partner, key, custody, seq + 1)
            }
            PARTNER_KEY_REVOKED => {
                let partner = p.string("partner")?;
                if partner == LEDGER_AUTHOR {
                    return Err(
                        p.bad("the ledger key is replaced with LedgerKeyRotated, not revoked")
                    );
                }
                p.string("reason")?;
                self.retire(partner, p.string("key_id")?, seq)
            }
            _ => Ok(()),
        }
    }

    fn register(
        &mut self,
        partner: &str,
        key: VerifierKey,
        custody: Custody,
        from_seq: u64,
    ) -> Result<(), KeyringError> {
        let key_id = key.id_hex();
        if self.position(partner, &key_id).is_some() {
            return Err(KeyringError::DuplicateKey {
                partner: partner.to_string(),
                key_id,
            });
        }
        let record = KeyRecord {
            partner: partner.to_string(),
            key_id,
            verifier_key: key.to_string(),
            custody,
            from_seq,
            until_seq: None,
        };
        self.insert(record, key);
        Ok(())
    }

    fn retire(&mut self, partner: &str, key_id: &str, until: u64) -> Result<(), KeyringError> {
        let not_current = || KeyringError::NotCurrent {
            partner: partner.to_string(),
            key_id: key_id.to_string(),
        };
        let i = self.position(partner, key_id).ok_or_else(not_current)?;
        let record = &mut self.keys[i].record;
        if record.until_seq.is_some() {
            return Err(not_current());
        }
        record.until_seq = Some(until);
        Ok(())
    }
}

/// Typed access to an operator event's payload, with errors that name the field.
struct Payload<'a> {
    event: &'a str,
    value: &'a Value,
}

impl<'a> Payload<'a> {
    fn bad(&self, why: &str) -> KeyringError {
        KeyringError::Payload {
            event_type: self.event.to_string(),
            why: why.to_string(),
        }
    }

    fn field(&self, name: &str) -> Result<&'a Value, KeyringError> {
        self.value
            .get(name)
            .ok_or_else(|| self.bad(&format!("missing `{name}`")))
    }

    fn string(&self, name: &str) -> Result<&'a str, KeyringError> {
        self.field(name)?
            .as_str()
            .ok_or_else(|| self.bad(&format!("`{name}` must be a string")))
    }

    fn verifier_key(&self, name: &str) -> Result<VerifierKey, KeyringError> {
        VerifierKey::parse(self.string(name)?).map_err(|e| self.bad(&e.to_string()))
    }

    fn check_possession(&self, key: &VerifierKey, origin: &str) -> Result<(), KeyringError> {
        let signature = BASE64
            .decode(self.string("proof_of_possession")?)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| self.bad("proof_of_possession must be a 64-byte signature in base64"))?;
        if !key.verify(&possession_message(&key.to_string(), origin), &signature) {
            return Err(KeyringError::Possession {
                key: key.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custody_is_only_ever_a_plain_string() {
        let ok: Custody = serde_json::from_str("\"partner-held\"").unwrap();
        assert_eq!(ok, Custody::PartnerHeld);
        assert!(serde_json::from_str::<Custody>("{\"custodial\":null}").is_err());
        assert!(serde_json::from_str::<Custody>("\"Custodial\"").is_err());
    }
}
