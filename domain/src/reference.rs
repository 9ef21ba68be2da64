//! Reference data shipped in the repository (`domain/reference/v1/*.json`): lawful bases
//! and conditions, statutory gateways, classifications, partner kinds, data categories.
//!
//! The files are compiled into the binary so that what a command was checked against
//! cannot drift with the machine it runs on; each file carries a version, and every
//! event records the reference version it was checked against. An unknown code is
//! refused with the list of valid ones, so a user can correct it from the message alone.

use crate::refusal::Refusal;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The version of the reference data as a whole; events record it.
pub const REFERENCE_VERSION: &str = "v1/2026-11";

const LAWFUL_BASES: &str = include_str!("../reference/v1/lawful-bases.json");
const GATEWAYS: &str = include_str!("../reference/v1/gateways.json");
const CLASSIFICATIONS: &str = include_str!("../reference/v1/classifications.json");
const PARTNER_KINDS: &str = include_str!("../reference/v1/partner-kinds.json");
const DATA_CATEGORIES: &str = include_str!("../reference/v1/data-categories.json");

/// One code of a reference list.
#[derive(Debug, Clone, Deserialize)]
pub struct Code {
    pub code: String,
    pub title: String,
    #[serde(default)]
    pub citation: Option<String>,
    /// For lawful bases: which part of the law the code belongs to.
    #[serde(default)]
    pub group: Option<String>,
    /// For Art 9 conditions whose use also needs a DPA 2018 Schedule 1 condition.
    #[serde(default)]
    pub needs_schedule_1: bool,
    /// For DPA 2018 s35(5): sensitive processing also needs a Schedule 8 condition.
    #[serde(default)]
    pub needs_schedule_8: bool,
    /// For classifications: false for the legacy GPMS markings.
    #[serde(default)]
    pub current: Option<bool>,
    /// For legacy classifications: the current marking that handles them.
    #[serde(default)]
    pub maps_to: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CodeList {
    kind: String,
    version: String,
    entries: Vec<Code>,
}

/// A loaded list, indexed by code.
#[derive(Debug)]
pub struct Codes {
    pub kind: String,
    pub version: String,
    by_code: BTreeMap<String, Code>,
    order: Vec<String>,
}

impl Codes {
    fn parse(text: &str) -> Result<Codes, ReferenceError> {
        let list: CodeList =
            serde_json::from_str(text).map_err(|e| ReferenceError(e.to_string()))?;
        let mut by_code = BTreeMap::new();
        let mut order = Vec::new();
        for entry in list.entries {
            order.push(entry.code.clone());
            if by_code.insert(entry.code.clone(), entry).is_some() {
                return Err(ReferenceError(format!("{} list repeats a code", list.kind)));
            }
        }
        Ok(Codes {
            kind: list.kind,
            version: list.version,
            by_code,
            order,
        })
    }

    /// The code's entry, or a refusal listing every valid code.
    pub fn check(&self, code: &str) -> Result<&Code, Refusal> {
        self.by_code.get(code).ok_or_else(|| Refusal::UnknownCode {
            kind: self.kind.clone(),
            code: code.to_string(),
            valid: self.order.clone(),
        })
    }

    pub fn get(&self, code: &str) -> Option<&Code> {
        self.by_code.get(code)
    }

    /// Every entry, in the file's order.
    pub fn entries(&self) -> impl Iterator<Item = &Code> {
        self.order.iter().filter_map(|c| self.by_code.get(c))
    }
}

/// All the reference lists.
#[derive(Debug)]
pub struct Reference {
    pub lawful_bases: Codes,
    pub gateways: Codes,
    pub classifications: Codes,
    pub partner_kinds: Codes,
    pub data_categories: Codes,
}

/// The shipped reference data did not parse: a build defect, caught by the tests.
#[derive(Debug, thiserror::Error)]
#[error("the shipped reference data is malformed: {0}")]
pub struct ReferenceError(String);

impl Reference {
    /// The reference data compiled into this binary.
    pub fn shipped() -> Result<Reference, ReferenceError> {
        Ok(Reference {
            lawful_bases: Codes::parse(LAWFUL_BASES)?,
            gateways: Codes::parse(GATEWAYS)?,
            classifications: Codes::parse(CLASSIFICATIONS)?,
            partner_kinds: Codes::parse(PARTNER_KINDS)?,
            data_categories: Codes::parse(DATA_CATEGORIES)?,
        })
    }

    /// The group of a lawful-basis code (`article-6`, `article-9`, `schedule-1`, ...).
    pub fn basis_group(&self, code: &str) -> Option<&str> {
        self.lawful_bases.get(code)?.group.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_list_parses_with_the_codes_the_protocols_cite() {
        let r = Reference::shipped().unwrap();
        for code in [
            "uk-gdpr-6-1-e",
            "uk-gdpr-9-2-g",
            "uk-gdpr-10",
            "dpa-2018-sch-1-para-10",
        ] {
            r.lawful_bases.check(code).unwrap();
        }
        for code in [
            "dpa-2018-s35-2-b",
            "dpa-2018-sch-8-para-4",
            "dpa-2018-sch-2-pt-1-para-2",
        ] {
            r.lawful_bases.check(code).unwrap();
        }
        for code in [
            "cda-1998-s115",
            "cda-1998-s17a",
            "ca-1989-s47",
            "ca-2004-s10",
            "ca-2004-s11",
            "care-act-2014-s45",
            "cja-2003-s325",
            "police-common-law",
            "hsc-sq-2015-s3",
        ] {
            r.gateways.check(code).unwrap();
        }
        assert_eq!(r.partner_kinds.entries().count(), 4);
        assert_eq!(r.data_categories.entries().count(), 5);
        let legacy = r.classifications.check("RESTRICTED").unwrap();
        assert_eq!(legacy.current, Some(false));
        assert_eq!(legacy.maps_to.as_deref(), Some("OFFICIAL-SENSITIVE"));
        for legacy in r
            .classifications
            .entries()
            .filter(|c| c.current == Some(false))
        {
            let target = legacy.maps_to.as_deref().unwrap();
            assert_eq!(r.classifications.check(target).unwrap().current, Some(true));
        }
    }

    #[test]
    fn an_unknown_code_is_refused_with_the_valid_ones() {
        let r = Reference::shipped().unwrap();
        let refusal = r.classifications.check("SECRETISH").unwrap_err();
        let message = refusal.to_string();
        assert!(
            message.contains("unknown classification \"SECRETISH\""),
            "{message}"
        );
        for valid in [
            "OFFICIAL",
            "OFFICIAL-SENSITIVE",
            "SECRET",
            "TOP SECRET",
            "PROTECT",
        ] {
            assert!(message.contains(valid), "{message}");
        }
    }
}
