//! When things are due: the UK bank-holiday calendars and the deadline rules of DESIGN §4
//! (personal-data breach, subject access and other rights requests, FOI and EIR,
//! complaint acknowledgements).
//!
//! Every deadline records the rule and its version, the calendar and its version, and
//! the inputs, and explains itself in one sentence, so a DPO can see why a date is what
//! it is and an auditor can check it by hand. Nothing here reads a clock or the network:
//! "now" belongs to whoever asks.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod day;
pub mod london;
pub mod rules;
pub mod settings;

pub use calendar::{Calendar, CalendarError, Division, Region};
pub use day::Day;
pub use rules::{Deadline, Due, Inputs, Rule, RuleError};
pub use settings::{Settings, SettingsError};
