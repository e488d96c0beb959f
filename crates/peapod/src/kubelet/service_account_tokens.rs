//! The kubelet's token manager: the service account tokens of pods' projected volumes, asked of
//! the API server as the node (serviceaccounts/token, bound to the pod) and kept until 80% of
//! their life or 24 hours have passed, as kubelet's token.Manager. A token whose refresh fails
//! is still handed out while it is valid; a pod's tokens are forgotten with the pod.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::Method;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, ServiceAccountTokenProjection};
use peapod_apiserver::client::LocalClient;
use serde_json::{json, Value};

/// kubelet's `maxTTL`: a token is renewed at least once a day, however long it lives.
const MAX_TTL_SECONDS: i64 = 24 * 3600;
/// What `expirationSeconds` defaults to in a projection (`SetDefaults_ServiceAccountTokenProjection`).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// The request a token answers: kubelet's cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey {
    namespace: String,
    account: String,
    audiences: Vec<String>,
    expiration_seconds: i64,
    pod_name: String,
    pod_uid: String,
}

impl TokenKey {
    pub fn of(pod: &Pod, projection: &ServiceAccountTokenProjection) -> TokenKey {
        let spec = pod.spec.as_ref();
        TokenKey {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            account: spec
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_default(),
            audiences: projection.audience.iter().cloned().collect(),
            expiration_seconds: projection
                .expiration_seconds
                .unwrap_or(DEFAULT_EXPIRATION_SECONDS),
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
        }
    }

    fn path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/serviceaccounts/{}/token",
            self.namespace, self.account
        )
    }

    fn request(&self) -> Value {
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": self.audiences,
                "expirationSeconds": self.expiration_seconds,
                "boundObjectRef": {
                    "apiVersion": "v1", "kind": "Pod", "name": self.pod_name, "uid": self.pod_uid
                }
            }
        })
    }
}

/// Why a projected token cannot be written, worded as kubelet's token manager words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFetchError {
    #[error("failed to fetch token: {0}")]
    Fetch(String),
    #[error("token {key} expired and refresh failed: {reason}")]
    Expired { key: String, reason: String },
}

#[derive(Clone, Debug)]
struct Issued {
    token: String,
    /// The status' expirationTimestamp: the life asked for, even where the token lives longer.
    expires: Timestamp,
    refresh_at: Timestamp,
}

impl Issued {
    /// kubelet's `requiresRefresh` without its jitter: 24 hours after issue, or when 80% of
    /// the life asked for has passed.
    fn new(token: String, expires: Timestamp, expiration_seconds: i64) -> Issued {
        let issued = expires.as_second() - expiration_seconds;
        let refresh = (issued + MAX_TTL_SECONDS).min(expires.as_second() - expiration_seconds / 5);
        Issued {
            token,
            expires,
            refresh_at: Timestamp::from_second(refresh).unwrap_or(expires),
        }
    }
}

#[derive(Default)]
struct Cache {
    issued: HashMap<TokenKey, Issued>,
    /// The last failure of a key that has no valid token.
    failed: HashMap<TokenKey, TokenFetchError>,
}

pub struct TokenManager {
    client: LocalClient,
    cache: Mutex<Cache>,
}

impl TokenManager {
    pub fn new(client: LocalClient) -> TokenManager {
        TokenManager {
            client,
            cache: Mutex::default(),
        }
    }

    /// Asks for the tokens `pod`'s projected volumes need and lack, or must renew.
    pub async fn fetch_for(&self, pod: &Pod) {
        let now = Timestamp::now();
        for key in keys(pod) {
            let due = self
                .lock()
                .issued
                .get(&key)
                .is_none_or(|issued| now >= issued.refresh_at);
            if due {
                let answer = self
                    .client
                    .send(
                        Method::POST,
                        &key.path(),
                        Some(("application/json", key.request())),
                    )
                    .await;
                self.record(key, answer.map_err(|err| err.message), now);
            }
        }
    }

    pub(crate) fn record(&self, key: TokenKey, answer: Result<Value, String>, now: Timestamp) {
        let issued = answer.and_then(|answer| issued_from(&answer, key.expiration_seconds));
        let mut cache = self.lock();
        match issued {
            Ok(issued) => {
                cache.failed.remove(&key);
                cache.issued.insert(key, issued);
            }
            Err(reason) => match cache.issued.get(&key) {
                Some(kept) if now < kept.expires => {
                    tracing::warn!(?key, %reason, "renewing a service account token; the current one is kept");
                }
                Some(_) => {
                    let failure = TokenFetchError::Expired {
                        key: format!("{key:?}"),
                        reason,
                    };
                    cache.issued.remove(&key);
                    cache.failed.insert(key, failure);
                }
                None => {
                    cache.failed.insert(key, TokenFetchError::Fetch(reason));
                }
            },
        }
    }

    /// The token for `key` as last fetched.
    pub fn token(&self, key: &TokenKey) -> Result<String, TokenFetchError> {
        let cache = self.lock();
        if let Some(issued) = cache.issued.get(key) {
            return Ok(issued.token.clone());
        }
        Err(cache
            .failed
            .get(key)
            .cloned()
            .unwrap_or_else(|| TokenFetchError::Fetch("not requested yet".into())))
    }

    /// How long until one of the pod's tokens is due for renewal.
    pub fn next_refresh(&self, pod_uid: &str) -> Option<Duration> {
        let now = Timestamp::now().as_second();
        let cache = self.lock();
        let soonest = cache
            .issued
            .iter()
            .filter(|(key, _)| key.pod_uid == pod_uid)
            .map(|(_, issued)| issued.refresh_at.as_second())
            .min()?;
        Some(Duration::from_secs(
            soonest.saturating_sub(now).max(1) as u64
        ))
    }

    /// Drops the pod's tokens (kubelet's `DeleteServiceAccountToken`).
    pub fn forget(&self, pod_uid: &str) {
        let mut cache = self.lock();
        cache.issued.retain(|key, _| key.pod_uid != pod_uid);
        cache.failed.retain(|key, _| key.pod_uid != pod_uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().expect("token cache lock")
    }
}

/// The keys of every serviceAccountToken source of the pod's projected volumes.
pub fn keys(pod: &Pod) -> Vec<TokenKey> {
    pod.spec
        .iter()
        .flat_map(|spec| spec.volumes.iter().flatten())
        .filter_map(|volume| volume.projected.as_ref())
        .flat_map(|projected| projected.sources.iter().flatten())
        .filter_map(|source| source.service_account_token.as_ref())
        .map(|projection| TokenKey::of(pod, projection))
        .collect()
}

fn issued_from(answer: &Value, expiration_seconds: i64) -> Result<Issued, String> {
    let status = &answer["status"];
    let token = status["token"].as_str().filter(|t| !t.is_empty());
    let expires = status["expirationTimestamp"]
        .as_str()
        .and_then(|at| at.parse::<Timestamp>().ok());
    match (token, expires) {
        (Some(token), Some(expires)) => {
            Ok(Issued::new(token.to_owned(), expires, expiration_seconds))
        }
        _ => Err(format!("the TokenRequest answer has no token: {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey {
            namespace: "ns".into(),
            account: "default".into(),
            audiences: vec![],
            expiration_seconds: 3607,
            pod_name: "web".into(),
            pod_uid: "u1".into(),
        }
    }

    fn answer(token: &str, expires: Timestamp) -> Result<Value, String> {
        Ok(json!({"status": {"token": token, "expirationTimestamp": expires.to_string()}}))
    }

    fn manager() -> TokenManager {
        let router = axum::Router::new();
        TokenManager::new(LocalClient::new(router))
    }

    #[test]
    fn tokens_are_renewed_at_eighty_percent_or_after_a_day() {
        let expires = Timestamp::from_second(1_000_000).unwrap();
        let hour = Issued::new("t".into(), expires, 3600);
        assert_eq!(hour.refresh_at.as_second(), 1_000_000 - 720);
        let week = Issued::new("t".into(), expires, 7 * 24 * 3600);
        assert_eq!(
            week.refresh_at.as_second(),
            1_000_000 - 7 * 24 * 3600 + MAX_TTL_SECONDS
        );
    }

    #[test]
    fn a_failed_renewal_keeps_a_valid_token_and_reports_an_expired_one() {
        let tokens = manager();
        let now = Timestamp::now();
        let later = Timestamp::from_second(now.as_second() + 3607).unwrap();
        tokens.record(key(), answer("first", later), now);
        tokens.record(
            key(),
            Err("serviceaccounts \"default\" not found".into()),
            now,
        );
        assert_eq!(tokens.token(&key()).unwrap(), "first");
        assert!(tokens.next_refresh("u1").is_some());

        let after_expiry = Timestamp::from_second(later.as_second() + 1).unwrap();
        tokens.record(key(), Err("forbidden".into()), after_expiry);
        let err = tokens.token(&key()).unwrap_err().to_string();
        assert!(
            err.contains("expired and refresh failed: forbidden"),
            "{err}"
        );

        tokens.forget("u1");
        let never = tokens.token(&key()).unwrap_err();
        assert_eq!(never, TokenFetchError::Fetch("not requested yet".into()));
    }

    #[test]
    fn a_first_failure_is_kubelets_fetch_error() {
        let tokens = manager();
        tokens.record(
            key(),
            Err("pods \"web\" not found".into()),
            Timestamp::now(),
        );
        assert_eq!(
            tokens.token(&key()).unwrap_err().to_string(),
            "failed to fetch token: pods \"web\" not found"
        );
    }
}
