//! Image garbage collection, as kubelet's image GC manager does it: when the image store's
//! filesystem is used at or above the high threshold, remove images no pod uses, least
//! recently used first, until usage is back at the low threshold; images first seen less than
//! the minimum age ago are spared.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use peapod_image::{Image, ImageStore};

/// When and how far image GC frees space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGcPolicy {
    /// Usage (percent of the filesystem) at which GC starts; 100 disables it.
    pub high_threshold_percent: u8,
    /// Usage GC frees down to.
    pub low_threshold_percent: u8,
    pub period: Duration,
    /// Images first seen less than this long ago are not removed.
    pub minimum_age: Duration,
}

impl Default for ImageGcPolicy {
    /// kubelet's defaults: 85 %, 80 %, every 5 minutes, a 2-minute minimum age.
    fn default() -> Self {
        ImageGcPolicy {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            period: Duration::from_secs(300),
            minimum_age: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GcConfigError {
    #[error("{variable}={value:?}: {reason}")]
    Invalid {
        variable: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("PEAPOD_IMAGE_GC_LOW_THRESHOLD ({low}) must be less than PEAPOD_IMAGE_GC_HIGH_THRESHOLD ({high})")]
    Order { low: u8, high: u8 },
}

const HIGH: &str = "PEAPOD_IMAGE_GC_HIGH_THRESHOLD";
const LOW: &str = "PEAPOD_IMAGE_GC_LOW_THRESHOLD";
const PERIOD: &str = "PEAPOD_IMAGE_GC_PERIOD";
const MINIMUM_AGE: &str = "PEAPOD_IMAGE_GC_MINIMUM_AGE";

impl ImageGcPolicy {
    /// PEAPOD_IMAGE_GC_HIGH_THRESHOLD and _LOW_THRESHOLD (percent), PEAPOD_IMAGE_GC_PERIOD and
    /// _MINIMUM_AGE (seconds); kubelet's defaults where unset.
    pub fn from_env() -> Result<ImageGcPolicy, GcConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, GcConfigError> {
        let defaults = ImageGcPolicy::default();
        let percent = |variable: &'static str, default: u8| -> Result<u8, GcConfigError> {
            let Some(value) = lookup(variable) else {
                return Ok(default);
            };
            match value.trim().parse::<u8>() {
                Ok(p) if p <= 100 => Ok(p),
                _ => Err(GcConfigError::Invalid {
                    variable,
                    value,
                    reason: "must be a whole percentage from 0 to 100",
                }),
            }
        };
        let seconds = |variable: &'static str, default: Duration| {
            let Some(value) = lookup(variable) else {
                return Ok(default);
            };
            match value.trim().parse::<u64>() {
                Ok(s) => Ok(Duration::from_secs(s)),
                Err(_) => Err(GcConfigError::Invalid {
                    variable,
                    value,
                    reason: "must be a whole number of seconds",
                }),
            }
        };
        let policy = ImageGcPolicy {
            high_threshold_percent: percent(HIGH, defaults.high_threshold_percent)?,
            low_threshold_percent: percent(LOW, defaults.low_threshold_percent)?,
            period: seconds(PERIOD, defaults.period)?,
            minimum_age: seconds(MINIMUM_AGE, defaults.minimum_age)?,
        };
        if policy.period.is_zero() {
            return Err(GcConfigError::Invalid {
                variable: PERIOD,
                value: "0".into(),
                reason: "must be at least 1 second",
            });
        }
        if policy.low_threshold_percent >= policy.high_threshold_percent {
            return Err(GcConfigError::Order {
                low: policy.low_threshold_percent,
                high: policy.high_threshold_percent,
            });
        }
        Ok(policy)
    }

    /// kubelet's arithmetic: usage is `100 - available * 100 / capacity` (whole percent); at
    /// or above the high threshold, free what brings available up to `100 - low` percent.
    pub fn bytes_to_free(&self, capacity: u64, available: u64) -> Option<u64> {
        if capacity == 0 || self.high_threshold_percent >= 100 {
            return None;
        }
        let usage = 100 - (available as u128 * 100 / capacity as u128) as u64;
        if usage < u64::from(self.high_threshold_percent) {
            return None;
        }
        let target = capacity as u128 * (100 - u128::from(self.low_threshold_percent)) / 100;
        let needed = target.saturating_sub(available as u128) as u64;
        (needed > 0).then_some(needed)
    }
}

/// When each image was first seen and last used by a container, in this agent's lifetime
/// (kubelet keeps the same in memory).
#[derive(Debug, Default)]
pub struct ImageUsage {
    records: Mutex<HashMap<String, UsageRecord>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UsageRecord {
    first_detected: Instant,
    last_used: Option<Instant>,
}

impl ImageUsage {
    /// A container started from image `id` now.
    pub fn used(&self, id: &str, now: Instant) {
        let mut records = self.records.lock().expect("image usage lock");
        let record = records.entry(id.to_string()).or_insert(UsageRecord {
            first_detected: now,
            last_used: None,
        });
        record.last_used = Some(now);
    }

    /// Records first sight of `ids` and forgets images no longer stored; returns the
    /// records of `ids`.
    fn detect(&self, ids: &[&str], now: Instant) -> HashMap<String, UsageRecord> {
        let mut records = self.records.lock().expect("image usage lock");
        records.retain(|id, _| ids.contains(&id.as_str()));
        for id in ids {
            records.entry(id.to_string()).or_insert(UsageRecord {
                first_detected: now,
                last_used: None,
            });
        }
        records.clone()
    }
}

/// An image as GC weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub size: u64,
    pub first_detected: Instant,
    /// None: not used since the agent started, which sorts first.
    pub last_used: Option<Instant>,
    pub in_use: bool,
}

/// The images to remove to free `bytes_to_free`: not in use, old enough, least recently used
/// first (then first detected), until their sizes add up. Fewer when not enough qualify.
pub fn victims(
    candidates: &[Candidate],
    bytes_to_free: u64,
    now: Instant,
    minimum_age: Duration,
) -> Vec<&Candidate> {
    let mut eligible: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !c.in_use && now.saturating_duration_since(c.first_detected) >= minimum_age)
        .collect();
    eligible.sort_by_key(|c| (c.last_used, c.first_detected));
    let mut freed = 0u64;
    let mut chosen = Vec::new();
    for candidate in eligible {
        if freed >= bytes_to_free {
            break;
        }
        freed += candidate.size;
        chosen.push(candidate);
    }
    chosen
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("reading the usage of {}: {source}", path.display())]
    Statvfs { path: PathBuf, source: nix::Error },
    #[error("image gc: {0}")]
    Images(#[from] peapod_image::ImageError),
    #[error("image gc: listing pods: {0}")]
    Pods(#[from] ApiError),
    #[error("image gc task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("failed to garbage collect required amount of images: attempted to free {needed} bytes, but only found {freed} bytes eligible to free")]
    Short { needed: u64, freed: u64 },
}

/// The ids of images a pod names (a pod being deleted still uses its image).
pub fn images_in_use(pods: &[Pod], images: &ImageStore) -> HashSet<String> {
    pods.iter()
        .filter_map(|pod| pod.spec.as_ref())
        .flat_map(|spec| {
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
        })
        .filter_map(|c| c.image.as_deref())
        .filter_map(|reference| images.get(reference).ok())
        .map(|image| image.id)
        .collect()
}

/// (capacity, available) bytes of the filesystem holding `path`.
fn filesystem_usage(path: &Path) -> Result<(u64, u64), GcError> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(|source| GcError::Statvfs {
        path: path.to_path_buf(),
        source,
    })?;
    let unit = stat.fragment_size() as u64;
    Ok((
        stat.blocks() as u64 * unit,
        stat.blocks_available() as u64 * unit,
    ))
}

/// One GC pass; returns the images removed.
pub fn collect(
    images: &ImageStore,
    pods: &[Pod],
    usage: &ImageUsage,
    policy: &ImageGcPolicy,
) -> Result<Vec<Image>, GcError> {
    let (capacity, available) = filesystem_usage(images.root())?;
    let needed = policy.bytes_to_free(capacity, available);
    free(images, pods, usage, needed.unwrap_or(0), policy.minimum_age)
}

/// Removes images none of `pods` uses, least recently used first and none younger than
/// `minimum_age`, until `needed` bytes are free (nothing when 0, but usage is still recorded).
pub fn free(
    images: &ImageStore,
    pods: &[Pod],
    usage: &ImageUsage,
    needed: u64,
    minimum_age: Duration,
) -> Result<Vec<Image>, GcError> {
    let stored = images.list()?;
    let now = Instant::now();
    let ids: Vec<&str> = stored.iter().map(|i| i.id.as_str()).collect();
    let in_use = images_in_use(pods, images);
    for id in &in_use {
        usage.used(id, now);
    }
    let records = usage.detect(&ids, now);
    if needed == 0 {
        return Ok(Vec::new());
    }
    let candidates: Vec<Candidate> = stored
        .iter()
        .map(|image| {
            let record = records.get(&image.id);
            Candidate {
                id: image.id.clone(),
                size: image.size,
                first_detected: record.map_or(now, |r| r.first_detected),
                last_used: record.and_then(|r| r.last_used),
                in_use: in_use.contains(&image.id),
            }
        })
        .collect();
    let mut removed = Vec::new();
    let mut freed = 0;
    for victim in victims(&candidates, needed, now, minimum_age) {
        let image = stored.iter().find(|i| i.id == victim.id).cloned();
        images.remove(&victim.id)?;
        freed += victim.size;
        removed.extend(image);
    }
    if freed < needed {
        return Err(GcError::Short { needed, freed });
    }
    Ok(removed)
}

/// Runs a GC pass every period until the task is dropped, judging images by the pods the
/// API lists.
pub async fn run(
    images: ImageStore,
    client: LocalClient,
    usage: std::sync::Arc<ImageUsage>,
    policy: ImageGcPolicy,
) {
    let mut ticks = tokio::time::interval(policy.period);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match pass(&images, &client, &usage, policy).await {
            Ok(removed) => {
                for image in removed {
                    tracing::info!(id = %image.id, names = ?image.names, size = image.size, "image gc removed an image");
                }
            }
            Err(err) => tracing::warn!(%err, "image garbage collection"),
        }
    }
}

async fn pass(
    images: &ImageStore,
    client: &LocalClient,
    usage: &std::sync::Arc<ImageUsage>,
    policy: ImageGcPolicy,
) -> Result<Vec<Image>, GcError> {
    let pods = super::list_pods(client).await?;
    let (images, usage) = (images.clone(), usage.clone());
    tokio::task::spawn_blocking(move || collect(&images, &pods, &usage, &policy)).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(
        id: &str,
        size: u64,
        age: u64,
        used_ago: Option<u64>,
        in_use: bool,
        now: Instant,
    ) -> Candidate {
        Candidate {
            id: id.into(),
            size,
            first_detected: now - Duration::from_secs(age),
            last_used: used_ago.map(|s| now - Duration::from_secs(s)),
            in_use,
        }
    }

    fn ids(chosen: Vec<&Candidate>) -> Vec<&str> {
        chosen.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn least_recently_used_go_first_until_enough_is_freed() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let all = [
            candidate("recent", 100, 5000, Some(10), false, now),
            candidate("old", 100, 5000, Some(3000), false, now),
            candidate("never", 100, 5000, None, false, now),
            candidate("middle", 100, 5000, Some(500), false, now),
        ];
        let min_age = Duration::from_secs(120);
        assert_eq!(ids(victims(&all, 150, now, min_age)), ["never", "old"]);
        assert_eq!(ids(victims(&all, 1, now, min_age)), ["never"]);
        assert_eq!(
            ids(victims(&all, 10_000, now, min_age)),
            ["never", "old", "middle", "recent"]
        );
        assert!(victims(&all, 0, now, min_age).is_empty());
    }

    #[test]
    fn images_in_use_or_too_young_are_spared() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let all = [
            candidate("used-by-pod", 100, 5000, None, true, now),
            candidate("young", 100, 60, None, false, now),
            candidate("eligible", 100, 5000, Some(1), false, now),
        ];
        let chosen = victims(&all, 1000, now, Duration::from_secs(120));
        assert_eq!(ids(chosen), ["eligible"]);
        let chosen = victims(&all, 1000, now, Duration::ZERO);
        assert_eq!(ids(chosen), ["young", "eligible"]);
    }

    #[test]
    fn ties_on_last_use_break_on_first_detection() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let all = [
            candidate("later", 10, 200, None, false, now),
            candidate("earlier", 10, 900, None, false, now),
        ];
        assert_eq!(
            ids(victims(&all, 20, now, Duration::ZERO)),
            ["earlier", "later"]
        );
    }

    #[test]
    fn thresholds_decide_how_much_to_free() {
        let policy = ImageGcPolicy::default();
        // 84 % used: below the high threshold.
        assert_eq!(policy.bytes_to_free(1000, 160), None);
        // 85 % used: free down to 80 %, i.e. 200 available.
        assert_eq!(policy.bytes_to_free(1000, 150), Some(50));
        assert_eq!(policy.bytes_to_free(1000, 0), Some(200));
        let off = ImageGcPolicy {
            high_threshold_percent: 100,
            ..policy
        };
        assert_eq!(off.bytes_to_free(1000, 0), None);
        assert_eq!(policy.bytes_to_free(0, 0), None);
    }

    #[test]
    fn policy_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            ImageGcPolicy::from_lookup(env(&[])),
            Ok(ImageGcPolicy::default())
        );
        let custom = ImageGcPolicy::from_lookup(env(&[
            (HIGH, "60"),
            (LOW, "50"),
            (PERIOD, "5"),
            (MINIMUM_AGE, "0"),
        ]))
        .unwrap();
        assert_eq!(custom.high_threshold_percent, 60);
        assert_eq!(custom.low_threshold_percent, 50);
        assert_eq!(custom.period, Duration::from_secs(5));
        assert_eq!(custom.minimum_age, Duration::ZERO);
        let err = ImageGcPolicy::from_lookup(env(&[(HIGH, "101")])).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("PEAPOD_IMAGE_GC_HIGH_THRESHOLD=\"101\""));
        let err = ImageGcPolicy::from_lookup(env(&[(PERIOD, "5m")])).unwrap_err();
        assert!(err.to_string().starts_with("PEAPOD_IMAGE_GC_PERIOD=\"5m\""));
        assert_eq!(
            ImageGcPolicy::from_lookup(env(&[(HIGH, "70"), (LOW, "70")])),
            Err(GcConfigError::Order { low: 70, high: 70 })
        );
    }

    #[test]
    fn usage_tracks_first_sight_and_last_use_and_forgets_removed_images() {
        let usage = ImageUsage::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(5);
        let records = usage.detect(&["a", "b"], t0);
        assert_eq!(records["a"].first_detected, t0);
        usage.used("a", t1);
        let records = usage.detect(&["a"], t1);
        assert_eq!(records["a"].first_detected, t0);
        assert_eq!(records["a"].last_used, Some(t1));
        assert!(!records.contains_key("b"));
    }
}
