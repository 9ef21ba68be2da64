//! Data subjects as keyed pseudonyms.
//!
//! The log never holds a direct identifier. A partner's system gives the identifiers it
//! has (name and date of birth, NHS number, PNC id, postcode); each is normalised (as
//! `docs/pseudonyms.md` specifies) and turned into HMAC-SHA-256 under the partnership
//! secret, with a label per kind of identifier. Two partners that record the same
//! person with the same identifier therefore produce the same pseudonym, and no one
//! without the secret can test a guess against the log.
//!
//! A subject is logged as its *primary* pseudonym (the strongest identifier given: NHS
//! number, then PNC id, then name and date of birth) plus the pseudonyms of every other
//! identifier given, so records made by partners that hold different identifiers can
//! still be linked.

use crate::refusal::Refusal;
use hmac::{Hmac, Mac};
use ledger::keys::{read_private, write_private, KeyError};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::Path;

/// Domain separation for every pseudonym; a new normalisation would be `v2`.
const LABEL_PREFIX: &str = "isa-ledger/v1/subject/";

/// The partnership's pseudonymisation secret: 32 random bytes.
#[derive(Clone)]
pub struct PartnershipSecret([u8; 32]);

impl std::fmt::Debug for PartnershipSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret itself never reaches a log line.
        f.write_str("PartnershipSecret(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    File(#[from] KeyError),
    #[error("the partnership secret {0} is not 64 hex digits")]
    Malformed(String),
}

impl PartnershipSecret {
    pub fn generate() -> PartnershipSecret {
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        PartnershipSecret(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> PartnershipSecret {
        PartnershipSecret(bytes)
    }

    /// Parses 64 hex digits (as the file holds, or configuration gives).
    pub fn from_hex(text: &str, source: &str) -> Result<PartnershipSecret, SecretError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| SecretError::Malformed(source.to_string()))?;
        Ok(PartnershipSecret(bytes))
    }

    /// Writes the secret to a new file, mode 0600. Never overwrites.
    pub fn write_new(&self, path: &Path) -> Result<(), SecretError> {
        Ok(write_private(
            path,
            format!("{}\n", hex::encode(self.0)).as_bytes(),
        )?)
    }

    /// Reads the secret, refusing a file that group or others may read.
    pub fn read(path: &Path) -> Result<PartnershipSecret, SecretError> {
        let text = read_private(path)?;
        PartnershipSecret::from_hex(&text, &path.display().to_string())
    }

    fn pseudonym(&self, kind: &str, normalised: &str) -> String {
        // HMAC accepts a key of any length; 32 bytes cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(LABEL_PREFIX.as_bytes());
        mac.update(kind.as_bytes());
        mac.update(b"\n");
        mac.update(normalised.as_bytes());
        format!("{kind}:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The pseudonyms of a subject. Fails on a malformed identifier, naming it.
    pub fn subject(&self, identifiers: &SubjectIdentifiers) -> Result<SubjectRef, Refusal> {
        let mut all = Vec::new();
        if let Some(nhs) = &identifiers.nhs_number {
            all.push(self.pseudonym("nhs", &normalise_nhs_number(nhs)?));
        }
        if let Some(pnc) = &identifiers.pnc_id {
            all.push(self.pseudonym("pnc", &normalise_pnc_id(pnc)?));
        }
        match (
            &identifiers.given_name,
            &identifiers.family_name,
            &identifiers.date_of_birth,
        ) {
            (Some(given), Some(family), Some(dob)) => {
                let person = format!(
                    "{}\n{}\n{}",
                    normalise_name("given_name", first_word(given))?,
                    normalise_name("family_name", family)?,
                    normalise_date_of_birth(dob)?
                );
                all.push(self.pseudonym("person", &person));
            }
            (None, None, None) => {}
            _ => {
                return Err(Refusal::invalid(
                    "subject",
                    "a name is used only with given name, family name and date of birth together",
                ))
            }
        }
        if let Some(postcode) = &identifiers.postcode {
            all.push(self.pseudonym("postcode", &normalise_postcode(postcode)?));
        }
        // A postcode alone names a household, not a person.
        if all.is_empty() || all.iter().all(|p| p.starts_with("postcode:")) {
            return Err(Refusal::invalid(
                "subject",
                "give an NHS number, a PNC id, or given name + family name + date of birth",
            ));
        }
        let primary = all.remove(0);
        Ok(SubjectRef {
            pseudonym: primary,
            linked: all,
        })
    }
}

/// What a partner's system knows of a person. Never logged: only its pseudonyms are.
#[derive(schemars::JsonSchema, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectIdentifiers {
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    /// `YYYY-MM-DD` or `DD/MM/YYYY`.
    #[serde(default)]
    pub date_of_birth: Option<String>,
    #[serde(default)]
    pub nhs_number: Option<String>,
    #[serde(default)]
    pub pnc_id: Option<String>,
    #[serde(default)]
    pub postcode: Option<String>,
}

/// A data subject as the log holds it.
#[derive(
    schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct SubjectRef {
    /// The strongest identifier's pseudonym (`nhs:`, `pnc:` or `person:` + 64 hex).
    pub pseudonym: String,
    /// The pseudonyms of the other identifiers given (including `postcode:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked: Vec<String>,
}

impl SubjectRef {
    /// Checks that a subject given directly as pseudonyms (by a partner that computed
    /// them itself) has their form, so no identifier slips into the log as one.
    pub fn check_form(&self) -> Result<(), Refusal> {
        for (i, p) in std::iter::once(&self.pseudonym)
            .chain(&self.linked)
            .enumerate()
        {
            let ok = p.split_once(':').is_some_and(|(kind, digest)| {
                ["nhs", "pnc", "person", "postcode"].contains(&kind)
                    && digest.len() == 64
                    && digest
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            });
            if !ok || (i == 0 && p.starts_with("postcode:")) {
                return Err(Refusal::invalid(
                    "subjects",
                    format!("{p:?} is not a pseudonym (kind:64 lowercase hex, kind one of nhs, pnc, person; postcode only as linked)"),
                ));
            }
        }
        Ok(())
    }

    /// Whether two references may be the same person: they share a pseudonym other
    /// than a postcode.
    pub fn matches(&self, other: &SubjectRef) -> bool {
        let mine = std::iter::once(&self.pseudonym).chain(&self.linked);
        mine.filter(|p| !p.starts_with("postcode:"))
            .any(|p| other.pseudonym == *p || other.linked.iter().any(|q| q == p))
    }
}

fn first_word(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or("")
}

/// Letters only, lower case, common Latin accents folded, so "O'Brien", "OBRIEN" and
/// "O Brien" agree, as do "Zoë" and "Zoe".
fn normalise_name(field: &str, name: &str) -> Result<String, Refusal> {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
            'ñ' | 'ń' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
            'ý' | 'ÿ' => 'y',
            'ś' | 'š' => 's',
            'ź' | 'ż' | 'ž' => 'z',
            'ł' => 'l',
            other => other,
        };
        if folded.is_alphabetic() {
            out.push(folded);
        }
    }
    if out.is_empty() {
        return Err(Refusal::invalid(field, "has no letters"));
    }
    Ok(out)
}

/// `YYYY-MM-DD`, from `YYYY-MM-DD` or `DD/MM/YYYY` (day and month may have one digit),
/// a real calendar date between 1850 and 2200.
fn normalise_date_of_birth(text: &str) -> Result<String, Refusal> {
    let text = text.trim();
    let bad = || {
        Refusal::invalid(
            "date_of_birth",
            format!("{text:?} is not a date (YYYY-MM-DD or DD/MM/YYYY)"),
        )
    };
    let (y, m, d) = if let [y, m, d] = text.split('-').collect::<Vec<_>>()[..] {
        (y, m, d)
    } else if let [d, m, y] = text.split('/').collect::<Vec<_>>()[..] {
        (y, m, d)
    } else {
        return Err(bad());
    };
    let iso = format!("{y}-{m:0>2}-{d:0>2}");
    let day = crate::recorded::parse_day("date_of_birth", &iso).map_err(|_| bad())?;
    let (year, _, _) = ledger::timestamp::civil_from_days(day);
    if !(1850..=2200).contains(&year) {
        return Err(bad());
    }
    Ok(crate::recorded::format_day(day))
}

/// Ten digits, spaces and dashes removed, with a valid Modulus 11 check digit.
fn normalise_nhs_number(text: &str) -> Result<String, Refusal> {
    let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let bad = |why: &str| Refusal::invalid("nhs_number", format!("{text:?} {why}"));
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not ten digits"));
    }
    let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return Err(bad("has no valid check digit")),
        c => c,
    };
    if check != d[9] {
        return Err(bad("fails the NHS number check digit"));
    }
    Ok(digits)
}

/// `YY/N...NL`: two-digit year, the serial without leading zeros, the check letter, all
/// upper case, so "01/0012345A" and "01/12345a" agree. A four-digit year is cut to two.
fn normalise_pnc_id(text: &str) -> Result<String, Refusal> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    let bad = || Refusal::invalid("pnc_id", format!("{text:?} is not a PNC id (YY/NNNNNNNL)"));
    let (year, rest) = compact.split_once('/').ok_or_else(bad)?;
    let year = match year.len() {
        2 => year,
        4 => &year[2..],
        _ => return Err(bad()),
    };
    let (serial, letter) = rest.split_at(rest.len().saturating_sub(1));
    let serial = serial.trim_start_matches('0');
    if !year.bytes().all(|b| b.is_ascii_digit())
        || serial.is_empty()
        || serial.len() > 7
        || !serial.bytes().all(|b| b.is_ascii_digit())
        || !letter.bytes().all(|b| b.is_ascii_uppercase())
        || letter.is_empty()
    {
        return Err(bad());
    }
    Ok(format!("{year}/{serial}{letter}"))
}

/// Upper case, one space before the inward code: "sw1a2aa" → "SW1A 2AA".
fn normalise_postcode(text: &str) -> Result<String, Refusal> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    let bad = || Refusal::invalid("postcode", format!("{text:?} is not a UK postcode"));
    if !(5..=7).contains(&compact.len()) || !compact.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let inward_ok = inward.as_bytes()[0].is_ascii_digit()
        && inward.as_bytes()[1..].iter().all(u8::is_ascii_alphabetic);
    if !inward_ok || !outward.as_bytes()[0].is_ascii_alphabetic() {
        return Err(bad());
    }
    Ok(format!("{outward} {inward}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> PartnershipSecret {
        PartnershipSecret::from_bytes([7; 32])
    }

    fn person(given: &str, family: &str, dob: &str) -> SubjectIdentifiers {
        SubjectIdentifiers {
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            date_of_birth: Some(dob.into()),
            ..Default::default()
        }
    }

    #[test]
    fn two_partners_recording_the_same_person_differently_get_one_pseudonym() {
        let police = secret()
            .subject(&person("Siobhán Mary", "O'Brien", "03/07/1984"))
            .unwrap();
        let council = secret()
            .subject(&person("SIOBHAN", "OBrien", "1984-07-03"))
            .unwrap();
        assert_eq!(police, council);
        assert!(police.pseudonym.starts_with("person:"));
        assert_eq!(police.pseudonym.len(), "person:".len() + 64);
        let other = secret()
            .subject(&person("Siobhan", "O'Brien", "1984-07-04"))
            .unwrap();
        assert_ne!(police.pseudonym, other.pseudonym);
    }

    #[test]
    fn a_different_partnership_secret_gives_an_unlinkable_pseudonym() {
        let a = secret()
            .subject(&person("Ann", "Lee", "2001-02-03"))
            .unwrap();
        let b = PartnershipSecret::from_bytes([8; 32])
            .subject(&person("Ann", "Lee", "2001-02-03"))
            .unwrap();
        assert_ne!(a.pseudonym, b.pseudonym);
    }

    #[test]
    fn the_strongest_identifier_is_primary_and_the_rest_link() {
        let health = secret()
            .subject(&SubjectIdentifiers {
                nhs_number: Some("943 476 5919".into()),
                postcode: Some("sw1a2aa".into()),
                ..person("Ann", "Lee", "2001-02-03")
            })
            .unwrap();
        assert!(health.pseudonym.starts_with("nhs:"));
        assert_eq!(health.linked.len(), 2);
        let council = secret()
            .subject(&person("ann", "LEE", "03/02/2001"))
            .unwrap();
        assert!(health.matches(&council) && council.matches(&health));
        let neighbour = secret()
            .subject(&SubjectIdentifiers {
                postcode: Some("SW1A 2AA".into()),
                ..person("Bob", "Lee", "1970-01-01")
            })
            .unwrap();
        assert!(
            !health.matches(&neighbour),
            "a shared postcode alone is not a match"
        );
    }

    #[test]
    fn malformed_identifiers_are_refused_by_name() {
        let s = secret();
        let refuse = |ids: SubjectIdentifiers| s.subject(&ids).unwrap_err().to_string();
        assert!(refuse(SubjectIdentifiers {
            nhs_number: Some("943 476 5918".into()),
            ..Default::default()
        })
        .contains("nhs_number"));
        assert!(refuse(person("Ann", "Lee", "2001-02-30")).contains("date_of_birth"));
        assert!(refuse(SubjectIdentifiers {
            pnc_id: Some("1234".into()),
            ..Default::default()
        })
        .contains("pnc_id"));
        assert!(refuse(SubjectIdentifiers {
            postcode: Some("SW1A 2AA".into()),
            ..Default::default()
        })
        .contains("NHS number"));
        assert!(refuse(SubjectIdentifiers {
            given_name: Some("Ann".into()),
            ..Default::default()
        })
        .contains("together"));
    }

    #[test]
    fn normalisations_are_as_documented() {
        assert_eq!(normalise_nhs_number("943-476-5919").unwrap(), "9434765919");
        assert_eq!(normalise_pnc_id(" 2001/0012345a ").unwrap(), "01/12345A");
        assert_eq!(normalise_postcode("m11ae").unwrap(), "M1 1AE");
        assert_eq!(normalise_name("n", "Zoë-Jane").unwrap(), "zoejane");
        assert_eq!(normalise_date_of_birth("29/02/2000").unwrap(), "2000-02-29");
        assert!(normalise_date_of_birth("29/02/1900").is_err());
    }

    #[test]
    fn a_pseudonym_given_directly_must_look_like_one() {
        let good = secret()
            .subject(&person("Ann", "Lee", "2001-02-03"))
            .unwrap();
        good.check_form().unwrap();
        let smuggled = SubjectRef {
            pseudonym: "person:Ann Lee 2001-02-03".into(),
            linked: vec![],
        };
        assert!(smuggled.check_form().is_err());
    }

    #[test]
    fn the_secret_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partnership.secret");
        let s = PartnershipSecret::generate();
        s.write_new(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = PartnershipSecret::read(&path).unwrap();
        assert_eq!(back.0, s.0);
        assert!(s.write_new(&path).is_err(), "never overwrites");
        assert!(!format!("{s:?}").contains(&hex::encode(s.0)[..8]));
    }
}
