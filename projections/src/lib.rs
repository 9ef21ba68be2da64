//! Read models fed from the log in global order: the deadlines, queues and registers
//! people work from (breach board, SAR/FOI queues, complaint acknowledgements, retention
//! queue, notices, disclosure register, consent state, agreements).
//!
//! - [`views`]: what each view holds and how events change it.
//! - [`runner`]: follows the log, batch by batch, rows and checkpoint in one
//!   transaction; stops at a gap or hash mismatch; rebuilds into a shadow and swaps.
//! - [`db`]: the views' tables, on SQLite (`views.db`) or PostgreSQL (schema `views`).
//! - [`query`]: reading a view with "now" applied (overdue, time left), and the
//!   deadlines across all views.
//! - [`settings`]: partner divisions, the Part 3 SAR start, response periods (defined
//!   in `deadlines`, which the domain shares).
#![forbid(unsafe_code)]

pub mod db;
pub mod logged;
mod migrations;
pub mod query;
mod read_ahead;
pub mod runner;
pub mod view;
pub mod views;

pub use db::{Filter, ViewDb};
pub use deadlines::settings;
pub use deadlines::Settings;
pub use runner::{Pace, ProjectionError, Projector, Rebuilt, ViewStatus};
