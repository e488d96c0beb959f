//! The kubelet's image manager: makes sure a container's image is in the store under its pull
//! policy (kubelet's EnsureImageExists, with its events and waiting reasons), pulls through
//! the registry puller with the pod's pull-secret credentials, one pull per normalized
//! reference and credentials however many pods and API callers ask at once, and records when
//! each image was last used for image GC.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use peapod_image::registry::{fingerprint, Credentials, PullError, PullEvent, Puller};
use peapod_image::{reference, Image, ImageStore, ReferenceError};

use super::events::EventType;
use super::flight::{Coalesce, FlightAborted, Flights, Subscription};
use super::format_go_duration;
use super::image_gc::ImageUsage;
use super::pull_secrets::{self, InvalidPullSecret};

impl Coalesce for PullEvent {
    fn coalesce_key(&self) -> Option<&str> {
        match self {
            PullEvent::Progress { digest, .. } => Some(digest),
            _ => None,
        }
    }
}

/// The result of one registry pull, shared by everyone who waited for it.
#[derive(Clone)]
pub struct Pulled {
    pub result: Result<Image, PullFailure>,
    /// How long the pull itself took.
    pub elapsed: Duration,
}

/// One caller's view of a pull: progress events, then the [`Pulled`] result.
pub type PullSubscription = Subscription<PullEvent, Pulled>;

/// Why a pull gave no image.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PullFailure {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Pull(Arc<PullError>),
    #[error(transparent)]
    PullSecret(#[from] InvalidPullSecret),
    #[error("failed to pull and unpack image \"{reference}\": {source}")]
    Aborted {
        reference: String,
        source: FlightAborted,
    },
}

impl PullFailure {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PullFailure::Pull(err) if err.is_unreachable())
    }
}

/// A container's image could not be made available: the waiting reason and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct EnsureError {
    /// ErrImagePull, ErrImageNeverPull or InvalidImageName.
    pub reason: &'static str,
    pub message: String,
}

/// Records one event about the container: type, reason, message.
pub type Recorder<'a> = &'a (dyn Fn(EventType, &str, &str) + Send + Sync);

/// A container's imagePullPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The container's policy; unset (or unknown) means the API server's default for `image`.
    pub fn of(image: &str, policy: Option<&str>) -> PullPolicy {
        let policy = policy
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| peapod_api::defaults::default_pull_policy(image));
        match policy {
            "Always" => PullPolicy::Always,
            "Never" => PullPolicy::Never,
            _ => PullPolicy::IfNotPresent,
        }
    }
}

/// What EnsureImageExists does before any pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    UsePresent,
    Pull,
    /// Policy Never and the image is absent: ErrImageNeverPull.
    NeverPull,
}

/// kubelet's shouldPullImage, with what follows from a no.
pub fn decide(policy: PullPolicy, present: bool) -> Decision {
    match (policy, present) {
        (PullPolicy::Always, _) | (PullPolicy::IfNotPresent, false) => Decision::Pull,
        (_, true) => Decision::UsePresent,
        (PullPolicy::Never, false) => Decision::NeverPull,
    }
}

/// peapod's documented deviation from kubelet: policy Always with the image present and the
/// registry unreachable runs the present image (podman's "newer" policy does the same).
pub fn falls_back_to_present(policy: PullPolicy, present: bool, unreachable: bool) -> bool {
    policy == PullPolicy::Always && present && unreachable
}

/// Pulls images for pods and the API, and keeps the image store's usage records.
pub struct ImageManager {
    store: ImageStore,
    puller: Puller,
    flights: Flights<PullEvent, Pulled>,
    usage: Arc<ImageUsage>,
}

impl ImageManager {
    pub fn new(store: ImageStore, puller: Puller) -> ImageManager {
        ImageManager {
            store,
            puller,
            flights: Flights::default(),
            usage: Arc::default(),
        }
    }

    /// When images were first seen and last used, for image GC.
    pub fn usage(&self) -> &Arc<ImageUsage> {
        &self.usage
    }

    /// Joins the pull of `reference` with the node's credentials in flight, or starts one.
    /// The pull runs to its end whether or not anyone still listens.
    pub fn subscribe(&self, reference: &str) -> Result<PullSubscription, ReferenceError> {
        self.subscribe_with(reference, Vec::new())
    }

    /// Joins or starts the pull of `reference` trying `credentials` before the node's. Pulls
    /// with other credentials are other flights: a pull that has the right ones is never
    /// handed the refusal of one that has not.
    pub fn subscribe_with(
        &self,
        reference: &str,
        credentials: Vec<Credentials>,
    ) -> Result<PullSubscription, ReferenceError> {
        let normalized = reference::parse(reference)?.normalized();
        let key = match fingerprint(&credentials) {
            Some(fingerprint) => format!("{normalized} {fingerprint}"),
            None => normalized.clone(),
        };
        let puller = self.puller.clone();
        Ok(self.flights.join(&key, move |emitter| async move {
            let started = Instant::now();
            let emit = move |event: PullEvent| emitter.emit(event);
            let result = puller
                .pull_with(&normalized, &credentials, &emit)
                .await
                .map_err(|err| PullFailure::Pull(Arc::new(err)));
            Pulled {
                result,
                elapsed: started.elapsed(),
            }
        }))
    }

    /// Pulls `reference` (sharing a pull in flight); the image and how long the pull took.
    pub async fn pull(&self, reference: &str) -> Result<(Image, Duration), PullFailure> {
        self.pull_with(reference, Vec::new()).await
    }

    /// kubelet's PullImage for a pod: the keyring of its pull secrets gives the credentials
    /// tried first.
    async fn pull_for_pod(
        &self,
        reference: &str,
        pull_secrets: &[Arc<Secret>],
    ) -> Result<(Image, Duration), PullFailure> {
        let name = reference::parse(reference)?.name();
        let credentials = pull_secrets::keyring(pull_secrets)?.lookup(&name);
        self.pull_with(reference, credentials).await
    }

    async fn pull_with(
        &self,
        reference: &str,
        credentials: Vec<Credentials>,
    ) -> Result<(Image, Duration), PullFailure> {
        let subscription = self.subscribe_with(reference, credentials)?;
        match subscription.result(|_| {}).await {
            Ok(Pulled { result, elapsed }) => result.map(|image| (image, elapsed)),
            Err(source) => Err(PullFailure::Aborted {
                reference: reference.to_string(),
                source,
            }),
        }
    }

    /// kubelet's EnsureImageExists for a container's `image` under `policy`, a pull trying
    /// the credentials of the pod's `pull_secrets` first: the image to run, or the waiting
    /// reason and message; events go through `record`.
    pub async fn ensure(
        &self,
        image: &str,
        policy: Option<&str>,
        pull_secrets: &[Arc<Secret>],
        record: Recorder<'_>,
    ) -> Result<Image, EnsureError> {
        if let Err(err) = reference::parse(image) {
            let message = format!("Failed to apply default image tag \"{image}\": {err}");
            record(EventType::Warning, "InspectFailed", &message);
            return Err(EnsureError {
                reason: "InvalidImageName",
                message,
            });
        }
        let policy = PullPolicy::of(image, policy);
        let present = self.store.get(image).ok();
        let found = match decide(policy, present.is_some()) {
            Decision::UsePresent => {
                let message = format!("Container image \"{image}\" already present on machine");
                record(EventType::Normal, "Pulled", &message);
                present.expect("decided on a present image")
            }
            Decision::NeverPull => {
                let message =
                    format!("Container image \"{image}\" is not present with pull policy of Never");
                record(EventType::Warning, "ErrImageNeverPull", &message);
                return Err(EnsureError {
                    reason: "ErrImageNeverPull",
                    message,
                });
            }
            Decision::Pull => {
                self.pull_for_container(image, policy, present, pull_secrets, record)
                    .await?
            }
        };
        self.usage.used(&found.id, Instant::now());
        Ok(found)
    }

    async fn pull_for_container(
        &self,
        image: &str,
        policy: PullPolicy,
        present: Option<Image>,
        pull_secrets: &[Arc<Secret>],
        record: Recorder<'_>,
    ) -> Result<Image, EnsureError> {
        record(
            EventType::Normal,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        );
        let waiting_since = Instant::now();
        match self.pull_for_pod(image, pull_secrets).await {
            Ok((pulled, elapsed)) => {
                let message = format!(
                    "Successfully pulled image \"{image}\" in {} ({} including waiting). Image size: {} bytes.",
                    format_go_duration(elapsed),
                    format_go_duration(waiting_since.elapsed()),
                    pulled.size
                );
                record(EventType::Normal, "Pulled", &message);
                Ok(pulled)
            }
            Err(err) => match present {
                Some(present) if falls_back_to_present(policy, true, err.is_unreachable()) => {
                    let message = format!(
                        "Failed to pull image \"{image}\": {err}; using the image present on the machine"
                    );
                    record(EventType::Warning, "Failed", &message);
                    // What follows is what IfNotPresent would have said: the container runs
                    // the image the machine has.
                    let message = format!("Container image \"{image}\" already present on machine");
                    record(EventType::Normal, "Pulled", &message);
                    Ok(present)
                }
                _ => {
                    let message = format!("Failed to pull image \"{image}\": {err}");
                    record(EventType::Warning, "Failed", &message);
                    Err(EnsureError {
                        reason: "ErrImagePull",
                        message: err.to_string(),
                    })
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use peapod_image::registry::RegistryConfig;

    use super::*;

    #[tokio::test]
    async fn pulls_with_other_credentials_are_other_flights() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let puller = Puller::new(store.clone(), RegistryConfig::default());
        let manager = ImageManager::new(store, puller);
        // Nothing listens on port 1: every pull fails, after the joins below.
        let reference = "127.0.0.1:1/private:1";
        let alice = || {
            vec![Credentials {
                username: "alice".into(),
                password: "pw".into(),
            }]
        };
        let anonymous = manager.subscribe(reference).unwrap();
        let anonymous_again = manager.subscribe(reference).unwrap();
        let with_alice = manager.subscribe_with(reference, alice()).unwrap();
        let alice_again = manager.subscribe_with(reference, alice()).unwrap();
        assert!(anonymous.started && !anonymous_again.started);
        assert!(with_alice.started && !alice_again.started);
        assert_eq!(manager.flights.len(), 2);
        let pulled = with_alice.result(|_| {}).await.unwrap();
        assert!(pulled.result.is_err());
    }

    #[tokio::test]
    async fn an_invalid_pull_secret_fails_the_pull_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let puller = Puller::new(store.clone(), RegistryConfig::default());
        let manager = ImageManager::new(store, puller);
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "broken"},
            "type": "kubernetes.io/dockercfg",
            "data": {".dockercfg": "bm90IGpzb24="}
        }))
        .unwrap();
        let events = std::sync::Mutex::new(Vec::new());
        let record = |_: EventType, reason: &str, message: &str| {
            events.lock().unwrap().push(format!("{reason}: {message}"));
        };
        let err = manager
            .ensure("127.0.0.1:1/x:1", None, &[Arc::new(secret)], &record)
            .await
            .unwrap_err();
        assert_eq!(err.reason, "ErrImagePull");
        assert!(
            err.message
                .starts_with("invalid image pull secret \"broken\": .dockercfg: "),
            "{err}"
        );
        let events = events.into_inner().unwrap();
        assert_eq!(events[0], "Pulling: Pulling image \"127.0.0.1:1/x:1\"");
        assert_eq!(
            events[1],
            format!(
                "Failed: Failed to pull image \"127.0.0.1:1/x:1\": {}",
                err.message
            )
        );
    }

    #[test]
    fn policy_defaults_follow_the_tag() {
        assert_eq!(PullPolicy::of("busybox", None), PullPolicy::Always);
        assert_eq!(
            PullPolicy::of("busybox:1.36", None),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::of("busybox:1.36", Some("")),
            PullPolicy::IfNotPresent
        );
        assert_eq!(PullPolicy::of("busybox", Some("Never")), PullPolicy::Never);
        assert_eq!(
            PullPolicy::of("busybox", Some("IfNotPresent")),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::of("busybox:1", Some("Always")),
            PullPolicy::Always
        );
    }

    #[test]
    fn decision_table() {
        use Decision::*;
        use PullPolicy::*;
        let table = [
            (Always, true, Pull),
            (Always, false, Pull),
            (IfNotPresent, true, UsePresent),
            (IfNotPresent, false, Pull),
            (Never, true, UsePresent),
            (Never, false, NeverPull),
        ];
        for (policy, present, expected) in table {
            assert_eq!(
                decide(policy, present),
                expected,
                "{policy:?} present={present}"
            );
        }
    }

    #[test]
    fn only_always_with_a_present_image_and_an_unreachable_registry_falls_back() {
        use PullPolicy::*;
        assert!(falls_back_to_present(Always, true, true));
        assert!(!falls_back_to_present(Always, true, false));
        assert!(!falls_back_to_present(Always, false, true));
        assert!(!falls_back_to_present(IfNotPresent, true, true));
        assert!(!falls_back_to_present(IfNotPresent, false, true));
    }
}
