//! policy/v1 kinds.

pub mod poddisruptionbudget;
