//! autoscaling/v1 kinds.

pub mod horizontalpodautoscaler;
