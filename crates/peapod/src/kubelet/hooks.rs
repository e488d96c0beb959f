//! Lifecycle hooks (postStart, preStop) run as kubelet's handler runner does: exec in the
//! container, an HTTP GET whose answer is not judged, or a sleep; a failure comes back as
//! kubelet's message for the container's waiting state and the logs.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};

use super::prober::{exec, http, LIFECYCLE_USER_AGENT};
use crate::shim::client::ShimClient;

/// The container a hook runs for.
pub struct HookTarget<'a> {
    pub shim: &'a ShimClient,
    pub container_id: &'a str,
    pub container: &'a Container,
    pub pod_ip: Option<&'a str>,
    /// `name_namespace(uid)`, as kubelet names the pod in hook messages.
    pub pod: &'a str,
}

/// Runs the handler to its end; Err carries kubelet's failure message.
pub async fn run(handler: &LifecycleHandler, target: &HookTarget<'_>) -> Result<(), String> {
    let container = &target.container.name;
    let pod = target.pod;
    if let Some(action) = &handler.exec {
        let command = exec::expand_static(
            action.command.as_deref().unwrap_or_default(),
            target.container,
        );
        let failed = |error: String, output: &str| {
            format!(
                "Exec lifecycle hook ([{}]) for Container {container:?} in Pod {pod:?} failed - \
                 error: {error}, message: {output:?}",
                command.join(" ")
            )
        };
        return match exec::exec_in_container(target.shim, target.container_id, &command, None).await
        {
            Ok(out) => match out.exit_error(&command) {
                None => Ok(()),
                Some(error) => Err(failed(error, &out.output)),
            },
            Err(err) => Err(failed(err.to_string(), "")),
        };
    }
    if let Some(action) = &handler.http_get {
        // kubelet does not judge the answer: any response is a success.
        return http::get_as(
            LIFECYCLE_USER_AGENT,
            action,
            target.container,
            target.pod_ip,
            None,
        )
        .await
        .map(|_| ())
        .map_err(|err| {
            format!(
                "HTTP lifecycle hook ({}) for Container {container:?} in Pod {pod:?} failed - \
                     error: {err}",
                action.path.as_deref().unwrap_or("/")
            )
        });
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        return Ok(());
    }
    Err(
        "Cannot run handler: invalid handler: only exec, httpGet and sleep can run as \
         lifecycle hooks"
            .into(),
    )
}
