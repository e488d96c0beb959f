//! The pod a streaming verb works on and the container in it, found as kubectl finds them:
//! the pod is fetched first, completed pods are refused, and without `-c` the container is the
//! one the `kubectl.kubernetes.io/default-container` annotation names, else the first one.

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::client::Client;
use crate::console::Console;
use crate::error::CliError;
use crate::query::pod_path;

/// kubectl's annotation naming the container verbs default to.
const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// Why the pod or its container cannot be used, in kubectl's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    #[error("cannot {action} in a completed pod; current phase is {phase}")]
    Completed { action: &'static str, phase: String },
    #[error("container {container} not found in pod {pod}")]
    ContainerNotFound { container: String, pod: String },
    #[error("pod {namespace}/{pod} does not have any containers")]
    NoContainers { namespace: String, pod: String },
    #[error("unable to forward port because pod is not running. Current status={phase}")]
    NotRunning { phase: String },
}

/// The container a verb works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenContainer {
    pub name: String,
    /// The container was given a terminal (`tty: true`).
    pub tty: bool,
}

pub async fn fetch(client: &Client, namespace: &str, name: &str) -> Result<Pod, CliError> {
    Ok(client.get_json(&pod_path(namespace, name)).await?)
}

/// The pod's `status.phase`, empty when it has none.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        .unwrap_or_default()
}

/// Refuses a pod that has Succeeded or Failed; `action` is the verb's (`exec into a
/// container`, `attach a container`).
pub fn refuse_completed(pod: &Pod, action: &'static str) -> Result<(), PodError> {
    match phase(pod) {
        phase @ ("Succeeded" | "Failed") => Err(PodError::Completed {
            action,
            phase: phase.to_string(),
        }),
        _ => Ok(()),
    }
}

/// kubectl's `FindOrDefaultContainerByName`: the named container (regular, init or
/// ephemeral), else the default one; `warn` hears which was defaulted to when there was a
/// choice.
pub fn choose_container(
    pod: &Pod,
    name: Option<&str>,
    warn: Option<&mut Console>,
) -> Result<ChosenContainer, PodError> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    if let Some(name) = name.filter(|name| !name.is_empty()) {
        return find(pod, name).ok_or_else(|| PodError::ContainerNotFound {
            container: name.to_string(),
            pod: pod_name,
        });
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let Some(first) = spec.containers.first() else {
        return Err(PodError::NoContainers {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod: pod_name,
        });
    };
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(DEFAULT_CONTAINER_ANNOTATION))
        .and_then(|name| find(pod, name));
    if let Some(annotated) = annotated {
        return Ok(annotated);
    }
    let ephemeral = spec.ephemeral_containers.as_deref().unwrap_or_default();
    let init = spec.init_containers.as_deref().unwrap_or_default();
    if let Some(console) =
        warn.filter(|_| spec.containers.len() > 1 || !init.is_empty() || !ephemeral.is_empty())
    {
        let names = all_container_names(&spec.containers, init, ephemeral);
        console.eprintln(&format!(
            "Defaulted container {:?} out of: {names}",
            first.name
        ));
    }
    Ok(chosen(first))
}

fn find(pod: &Pod, name: &str) -> Option<ChosenContainer> {
    let spec = pod.spec.as_ref()?;
    let regular = spec.containers.iter();
    let init = spec.init_containers.iter().flatten();
    if let Some(container) = regular.chain(init).find(|c| c.name == name) {
        return Some(chosen(container));
    }
    let ephemeral = spec.ephemeral_containers.iter().flatten();
    ephemeral
        .filter(|c| c.name == name)
        .map(|c| ChosenContainer {
            name: c.name.clone(),
            tty: c.tty.unwrap_or(false),
        })
        .next()
}

fn chosen(container: &Container) -> ChosenContainer {
    ChosenContainer {
        name: container.name.clone(),
        tty: container.tty.unwrap_or(false),
    }
}

/// kubectl's `AllContainerNames`: regular, then ephemeral, then init containers.
fn all_container_names(
    containers: &[Container],
    init: &[Container],
    ephemeral: &[k8s_openapi::api::core::v1::EphemeralContainer],
) -> String {
    let regular = containers.iter().map(|c| c.name.clone());
    let ephemeral = ephemeral.iter().map(|c| format!("{} (ephem)", c.name));
    let init = init.iter().map(|c| format!("{} (init)", c.name));
    regular
        .chain(ephemeral)
        .chain(init)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fake::Buf;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn two_containers() -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"containers": [{"name": "app"}, {"name": "side", "tty": true}],
                     "initContainers": [{"name": "setup"}]},
            "status": {"phase": "Running"}
        }))
    }

    #[test]
    fn the_first_container_is_the_default_and_the_choice_is_told() {
        let err = Buf::default();
        let mut console = Console::new(
            Box::new(Buf::default()),
            Box::new(err.clone()),
            Box::new(std::io::empty()),
        );
        let chosen = choose_container(&two_containers(), None, Some(&mut console)).unwrap();
        assert_eq!(chosen.name, "app");
        assert_eq!(
            err.text(),
            "Defaulted container \"app\" out of: app, side, setup (init)\n"
        );
        let side = choose_container(&two_containers(), Some("side"), None).unwrap();
        assert!(side.tty);
        assert_eq!(
            choose_container(&two_containers(), Some("setup"), None)
                .unwrap()
                .name,
            "setup"
        );
    }

    #[test]
    fn the_annotation_names_the_default() {
        let mut annotated = two_containers();
        annotated.metadata.annotations =
            Some([(DEFAULT_CONTAINER_ANNOTATION.to_string(), "side".to_string())].into());
        assert_eq!(
            choose_container(&annotated, None, None).unwrap().name,
            "side"
        );
    }

    #[test]
    fn missing_containers_and_completed_pods_are_refused() {
        let missing = choose_container(&two_containers(), Some("nope"), None).unwrap_err();
        assert_eq!(missing.to_string(), "container nope not found in pod web");
        let empty = pod(
            serde_json::json!({"metadata": {"name": "e", "namespace": "n"}, "spec": {"containers": []}}),
        );
        let none = choose_container(&empty, None, None).unwrap_err();
        assert_eq!(none.to_string(), "pod n/e does not have any containers");
        let done =
            pod(serde_json::json!({"metadata": {"name": "d"}, "status": {"phase": "Succeeded"}}));
        let refused = refuse_completed(&done, "exec into a container").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "cannot exec into a container in a completed pod; current phase is Succeeded"
        );
        assert!(refuse_completed(&two_containers(), "exec into a container").is_ok());
    }
}
