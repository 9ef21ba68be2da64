//! Read models fed from the log (later issues).
#![forbid(unsafe_code)]
