//! The ISA Ledger log: a signed, hash-chained, Merkle-proven sequence of entries.
//!
//! Layers, from the bytes up: [`canonical`] (RFC 8785), [`hash`], [`merkle`] (RFC 9162),
//! [`keys`] and [`checkpoint`] (C2SP signed notes), [`entry`] (what is hashed and signed),
//! [`store`] (SQLite and PostgreSQL behind one trait), [`pipeline`] (the sequencer with
//! group commit), and [`audit`] (offline verification of an export).
#![forbid(unsafe_code)]

pub mod audit;
pub mod batch_verify;
pub mod canonical;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod hash;
pub mod keyring;
pub mod keys;
pub mod merkle;
pub mod pipeline;
pub mod store;
pub mod timestamp;
