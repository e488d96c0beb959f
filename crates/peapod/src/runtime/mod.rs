//! Turning a pod's container into something the shim can run: the OCI bundle, its spec, and
//! the pod's managed /etc files.

pub mod bundle;
pub mod cgroupfs;
pub mod etc_files;
pub mod resources;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod sysctls;
