//! The partnership's settings that deadlines depend on: each partner's UK division (whose
//! bank holidays count), where a Part 3 SAR's clock starts, and how long a partner has
//! to answer a notice, a consultation or an onward-sharing request.
//!
//! Views store dates computed under these settings, so each projection's checkpoint
//! records the settings' fingerprint; when the settings change, the projection is
//! rebuilt (into a shadow table, swapped in) rather than left half old, half new. The
//! domain decides with them too (a SAR extension must come before the deadline the SAR
//! queue shows), so they live here, beside the rules, for both.

use crate::rules::Part3Start;
use crate::Division;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The settings as written in `settings.json` (every member optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    #[serde(default = "default_division")]
    pub default_division: String,
    /// Partner id → division code, for partners outside the default division.
    #[serde(default)]
    pub divisions: BTreeMap<String, String>,
    /// `day-of-receipt` or `day-after`.
    #[serde(default = "default_part3_start")]
    pub part3_start: String,
    /// Working days a recipient has to acknowledge an Article 19 notice, a consulted
    /// partner to answer a SAR consultation, and an originator to answer an onward-sharing
    /// request. Protocols set their own; ten working days is a common choice.
    #[serde(default = "default_response_days")]
    pub response_working_days: u32,
}

fn default_division() -> String {
    Division::EnglandAndWales.code().to_string()
}
fn default_part3_start() -> String {
    "day-of-receipt".to_string()
}
fn default_response_days() -> u32 {
    10
}

impl Default for SettingsFile {
    fn default() -> Self {
        SettingsFile {
            default_division: default_division(),
            divisions: BTreeMap::new(),
            part3_start: default_part3_start(),
            response_working_days: default_response_days(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{field}: {value:?} is not a division; one of england-and-wales, scotland, northern-ireland")]
    Division { field: String, value: String },
    #[error("part3_start: {0:?} is not day-of-receipt or day-after")]
    Part3Start(String),
    #[error("response_working_days: must be between 1 and 60, not {0}")]
    ResponseDays(u32),
    #[error("settings: {0}")]
    Syntax(String),
}

/// Checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    file: SettingsFile,
    default_division: Division,
    divisions: BTreeMap<String, Division>,
    pub part3_start: Part3Start,
    pub response_working_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        // The default file is valid by construction.
        Settings::from_file(SettingsFile::default()).unwrap_or_else(|_| unreachable!())
    }
}

impl Settings {
    pub fn from_file(file: SettingsFile) -> Result<Settings, SettingsError> {
        let division = |field: String, code: &str| {
            Division::parse(code).ok_or(SettingsError::Division {
                field,
                value: code.to_string(),
            })
        };
        let default_division = division("default_division".into(), &file.default_division)?;
        let mut divisions = BTreeMap::new();
        for (partner, code) in &file.divisions {
            divisions.insert(
                partner.clone(),
                division(format!("divisions.{partner}"), code)?,
            );
        }
        let part3_start = match file.part3_start.as_str() {
            "day-of-receipt" => Part3Start::DayOfReceipt,
            "day-after" => Part3Start::DayAfter,
            other => return Err(SettingsError::Part3Start(other.to_string())),
        };
        if !(1..=60).contains(&file.response_working_days) {
            return Err(SettingsError::ResponseDays(file.response_working_days));
        }
        Ok(Settings {
            response_working_days: file.response_working_days,
            file,
            default_division,
            divisions,
            part3_start,
        })
    }

    /// Parses `settings.json` text.
    pub fn parse(text: &str) -> Result<Settings, SettingsError> {
        let file: SettingsFile =
            serde_json::from_str(text).map_err(|e| SettingsError::Syntax(e.to_string()))?;
        Settings::from_file(file)
    }

    /// The division whose bank holidays count for this partner.
    pub fn division(&self, partner: &str) -> Division {
        self.divisions
            .get(partner)
            .copied()
            .unwrap_or(self.default_division)
    }

    /// What a checkpoint records: the settings as canonical JSON. Comparing it tells
    /// whether a view was built under the settings in force.
    pub fn fingerprint(&self) -> String {
        // Serialising plain strings, maps and numbers cannot fail; an empty fingerprint
        // would only force a rebuild.
        let value = serde_json::to_value(&self.file).unwrap_or_default();
        ledger::canonical::to_canonical(&value)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partners_default_to_the_default_division() {
        let s = Settings::parse(r#"{"divisions": {"police-scotland": "scotland"}}"#).unwrap();
        assert_eq!(s.division("police-scotland"), Division::Scotland);
        assert_eq!(s.division("council"), Division::EnglandAndWales);
        assert_eq!(s.response_working_days, 10);
    }

    #[test]
    fn a_wrong_setting_is_named() {
        assert_eq!(
            Settings::parse(r#"{"divisions": {"psni": "ulster"}}"#),
            Err(SettingsError::Division {
                field: "divisions.psni".into(),
                value: "ulster".into()
            })
        );
        assert!(matches!(
            Settings::parse(r#"{"part3_start": "tomorrow"}"#),
            Err(SettingsError::Part3Start(_))
        ));
        assert!(matches!(
            Settings::parse(r#"{"colour": "red"}"#),
            Err(SettingsError::Syntax(_))
        ));
    }

    #[test]
    fn the_fingerprint_changes_with_the_settings() {
        let a = Settings::default().fingerprint();
        let b = Settings::parse(r#"{"response_working_days": 5}"#)
            .unwrap()
            .fingerprint();
        assert_ne!(a, b);
        assert_eq!(a, Settings::parse("{}").unwrap().fingerprint());
    }
}
