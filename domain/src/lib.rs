//! The ISA Ledger domain: every event the information sharing protocols oblige partners
//! to record (DESIGN §3), the commands that ask for them, and the rules that guard them.
//!
//! Each process is a cqrs-es [`Aggregate`](cqrs_es::Aggregate) whose events live in one
//! stream of the ledger: [`partnership`] (governance), [`case`] (requests, decisions,
//! disclosures, rights and their notices), [`consent`], [`sar`], [`breach`] and
//! [`requests`] (FOI/EIR, complaints). Commands are decided against the state replayed
//! from the stream (and, for disclosures, the partnership and the consent relied on);
//! the events they produce are appended through the ledger's own pipeline by
//! [`service`], never through cqrs-es's in-process dispatch.
//!
//! Subjects appear only as keyed pseudonyms ([`pseudonym`]); free text that may hold
//! personal data goes to the entry's redactable content ([`narrative`]).
#![forbid(unsafe_code)]

pub mod breach;
pub mod case;
pub mod consent;
pub mod demo;
pub mod event;
pub mod partnership;
pub mod pseudonym;
pub mod recorded;
pub mod reference;
pub mod refusal;
pub mod requests;
pub mod sar;
pub mod service;
