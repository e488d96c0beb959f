//! batch/v1 kinds.

pub mod cronjob;
pub mod job;
