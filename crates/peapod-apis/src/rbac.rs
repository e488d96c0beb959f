//! The rbac.authorization.k8s.io group: roles, cluster roles and their bindings, which the
//! API server's RBAC authorizer reads to decide every request.

pub mod v1;
