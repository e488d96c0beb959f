//! The kubelet's image manager: makes sure a container's image is in the store under its pull
//! policy (kubelet's EnsureImageExists, with its events and waiting reasons), pulls through
//! the registry puller with one pull per normalized reference however many pods and API
//! callers ask at once, and records when each image was last used for image GC.

use std::sync::Arc;
use std::time::{Duration, Instant};

use peapod_image::registry::{PullError, PullEvent, Puller};
use peapod_image::{reference, Image, ImageStore, ReferenceError};

use super::events::EventType;
use super::flight::{Coalesce, FlightAborted, Flights, Subscription};
use super::format_go_duration;
use super::image_gc::ImageUsage;

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

    /// Joins the pull of `reference` in flight, or starts one. The pull runs to its end
    /// whether or not anyone still listens.
    pub fn subscribe(&self, reference: &str) -> Result<PullSubscription, ReferenceError> {
        let normalized = reference::parse(reference)?.normalized();
        let puller = self.puller.clone();
        let name = normalized.clone();
        Ok(self.flights.join(&normalized, move |emitter| async move {
            let started = Instant::now();
            let emit = move |event: PullEvent| emitter.emit(event);
            let result = puller
                .pull(&name, &emit)
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
        let subscription = self.subscribe(reference)?;
        match subscription.result(|_| {}).await {
            Ok(Pulled { result, elapsed }) => result.map(|image| (image, elapsed)),
            Err(source) => Err(PullFailure::Aborted {
                reference: reference.to_string(),
                source,
            }),
        }
    }

    /// kubelet's EnsureImageExists for a container's `image` under `policy`: the image to
    /// run, or the waiting reason and message; events go through `record`.
    pub async fn ensure(
        &self,
        image: &str,
        policy: Option<&str>,
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
                self.pull_for_container(image, policy, present, record)
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
        record: Recorder<'_>,
    ) -> Result<Image, EnsureError> {
        record(
            EventType::Normal,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        );
        let waiting_since = Instant::now();
        match self.pull(image).await {
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
    use super::*;

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
