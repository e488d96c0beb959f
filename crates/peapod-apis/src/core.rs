//! The core group (`""`, served under `/api`).

pub mod v1;
