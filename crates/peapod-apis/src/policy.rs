//! The policy group: PodDisruptionBudgets, which evictions honour.

pub mod v1;
