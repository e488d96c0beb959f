//! autoscaling/v2 kinds.

pub mod horizontalpodautoscaler;
