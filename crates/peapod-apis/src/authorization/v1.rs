//! authorization.k8s.io/v1 kinds.

pub mod selfsubjectaccessreview;
pub mod selfsubjectrulesreview;
pub mod subjectaccessreview;
