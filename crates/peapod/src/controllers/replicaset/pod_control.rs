//! The words of kube's `RealPodControl` as the ReplicaSet controller uses it: the events it
//! records on the ReplicaSet for each create and delete, and the error a failed delete
//! becomes (the ReplicaFailure condition's message).

use super::status::{FAILED_CREATE, FAILED_DELETE};
use crate::controllers::events::Event;

/// `controller.SuccessfulCreatePodReason`.
pub const SUCCESSFUL_CREATE: &str = "SuccessfulCreate";
/// `controller.SuccessfulDeletePodReason`.
pub const SUCCESSFUL_DELETE: &str = "SuccessfulDelete";

pub fn created(pod_name: &str) -> Event {
    Event::normal(SUCCESSFUL_CREATE, format!("Created pod: {pod_name}"))
}

pub fn create_failed(error: &str) -> Event {
    Event::warning(FAILED_CREATE, format!("Error creating: {error}"))
}

pub fn deleted(pod_name: &str) -> Event {
    Event::normal(SUCCESSFUL_DELETE, format!("Deleted pod: {pod_name}"))
}

pub fn delete_failed(error: &str) -> Event {
    Event::warning(FAILED_DELETE, format!("Error deleting: {error}"))
}

/// What `manageReplicas` returns for a failed delete (a 404 is no failure).
pub fn delete_error(error: &str) -> String {
    format!("unable to delete pods: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_use_kube_reasons_and_messages() {
        assert_eq!(created("web-x7k2p").message, "Created pod: web-x7k2p");
        assert_eq!(created("web-x7k2p").reason, "SuccessfulCreate");
        let failed = create_failed("pods \"web-\" is forbidden: exceeded quota: q");
        assert_eq!(failed.type_, "Warning");
        assert_eq!(failed.reason, "FailedCreate");
        assert_eq!(
            failed.message,
            "Error creating: pods \"web-\" is forbidden: exceeded quota: q"
        );
        assert_eq!(deleted("web-x7k2p").reason, "SuccessfulDelete");
        assert_eq!(delete_failed("boom").message, "Error deleting: boom");
        assert_eq!(delete_error("boom"), "unable to delete pods: boom");
    }
}
