//! The batch group: workloads that run to completion (Job) and on a schedule (CronJob).

pub mod v1;
