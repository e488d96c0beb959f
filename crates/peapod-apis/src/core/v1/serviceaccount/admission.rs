//! kube-apiserver's ServiceAccount admission plugin: a new pod runs as `default` unless it
//! names an account, the account must exist (the `default` account is waited for a moment, as
//! its controller may be creating it), its API credentials are mounted ([`token_volume`]), and
//! a pod without imagePullSecrets takes its account's. Mirror pods may name no account and no
//! secret.

use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use peapod_apiserver::admission::{Admission, NewObject};
use peapod_apiserver::status::ApiError;
use peapod_store::Store;
use serde_json::{json, Value};

use super::token_volume;

/// The account a pod that names none runs as.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Lookups of `default` before giving up (kube's `numAttempts`), 100 to 200 ms apart.
const DEFAULT_ATTEMPTS: u32 = 10;

pub struct ServiceAccountAdmission;

impl Admission for ServiceAccountAdmission {
    fn admit_create(&self, new: NewObject<'_>, store: &Store) -> Result<(), ApiError> {
        if !new.kind.group.is_empty() || new.resource != "pods" {
            return Ok(());
        }
        if new.object["metadata"]["annotations"]
            .get(MIRROR_POD_ANNOTATION)
            .is_some()
        {
            return admit_mirror_pod(&new);
        }
        let spec = &mut new.object["spec"];
        let name = match spec["serviceAccountName"]
            .as_str()
            .filter(|n| !n.is_empty())
        {
            Some(name) => name.to_owned(),
            None => DEFAULT_SERVICE_ACCOUNT.to_owned(),
        };
        spec["serviceAccountName"] = json!(name);
        spec["serviceAccount"] = json!(name);
        let account = match find_account(store, new.namespace, &name)? {
            Some(account) => account,
            None => {
                let why = format!(
                    "error looking up service account {}/{name}: serviceaccount \"{name}\" not found",
                    new.namespace
                );
                return Err(new.forbidden(&why));
            }
        };
        if token_volume::should_automount(&new.object["spec"], &account) {
            token_volume::mount(&mut new.object["spec"]);
        }
        inherit_image_pull_secrets(&mut new.object["spec"], &account);
        Ok(())
    }
}

/// The account, looked up again for a while when it is `default`.
fn find_account(
    store: &Store,
    namespace: &str,
    name: &str,
) -> Result<Option<ServiceAccount>, ApiError> {
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
        DEFAULT_ATTEMPTS
    } else {
        1
    };
    let pause = retry_interval();
    for attempt in 0..attempts {
        if attempt > 0 {
            std::thread::sleep(pause);
        }
        if let Some(account) = store.get::<ServiceAccount>(namespace, name)? {
            return Ok(Some(account));
        }
    }
    Ok(None)
}

/// 100 ms plus up to 100 ms of jitter.
fn retry_interval() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(100 + u64::from(nanos % 100))
}

fn inherit_image_pull_secrets(spec: &mut Value, account: &ServiceAccount) {
    let has_own = spec["imagePullSecrets"]
        .as_array()
        .is_some_and(|s| !s.is_empty());
    let inherited = account.image_pull_secrets.as_deref().unwrap_or_default();
    if has_own || inherited.is_empty() {
        return;
    }
    let names: Vec<Value> = inherited
        .iter()
        .map(|secret| json!({"name": secret.name}))
        .collect();
    spec["imagePullSecrets"] = Value::Array(names);
}

/// kube's rules for the mirror pods of static pods: no account, no secret.
fn admit_mirror_pod(new: &NewObject<'_>) -> Result<(), ApiError> {
    let spec = &new.object["spec"];
    if spec["serviceAccountName"]
        .as_str()
        .is_some_and(|n| !n.is_empty())
    {
        return Err(new.forbidden("a mirror pod may not reference service accounts"));
    }
    if references_secrets(spec) {
        return Err(new.forbidden("a mirror pod may not reference secrets"));
    }
    let projects_token = volumes(spec)
        .filter_map(|v| v["projected"]["sources"].as_array())
        .flatten()
        .any(|source| source.get("serviceAccountToken").is_some());
    if projects_token {
        return Err(
            new.forbidden("a mirror pod may not use ServiceAccountToken volume projections")
        );
    }
    Ok(())
}

/// The pod spec's volumes (none when it lists none).
pub(super) fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["volumes"].as_array().into_iter().flatten()
}

/// Whether the pod names a secret anywhere kube's `VisitPodSecretNames` looks.
fn references_secrets(spec: &Value) -> bool {
    let pull = spec["imagePullSecrets"]
        .as_array()
        .is_some_and(|s| !s.is_empty());
    let in_volumes = volumes(spec).any(|v| {
        v.get("secret").is_some()
            || v["projected"]["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s.get("secret").is_some())
    });
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| spec[*list].as_array())
        .flatten();
    let in_env = containers.clone().any(|c| {
        c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["valueFrom"].get("secretKeyRef").is_some())
            || c["envFrom"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e.get("secretRef").is_some())
    });
    pull || in_volumes || in_env
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use peapod_apiserver::registry::GroupVersionKind;
    use peapod_store::StoreOptions;

    use super::*;

    fn store_with(accounts: &[(&str, &[&str])]) -> Store {
        let store = Store::open_with(None, StoreOptions::default()).unwrap();
        for (name, pull_secrets) in accounts {
            store.create(account(name, pull_secrets)).unwrap();
        }
        store
    }

    fn account(name: &str, pull_secrets: &[&str]) -> ServiceAccount {
        let references = pull_secrets
            .iter()
            .map(|s| k8s_openapi::api::core::v1::LocalObjectReference {
                name: s.to_string(),
            })
            .collect::<Vec<_>>();
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                ..ObjectMeta::default()
            },
            image_pull_secrets: (!references.is_empty()).then_some(references),
            ..ServiceAccount::default()
        }
    }

    /// Admits `pod` into namespace `team`: the pod as admitted, or the error's message.
    fn admit(store: &Store, mut pod: Value) -> Result<Value, String> {
        let kind = GroupVersionKind::new("", "v1", "Pod");
        let new = NewObject {
            kind: &kind,
            resource: "pods",
            namespace: "team",
            object: &mut pod,
        };
        match ServiceAccountAdmission.admit_create(new, store) {
            Ok(()) => Ok(pod),
            Err(err) => Err(err.message),
        }
    }

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": spec})
    }

    #[test]
    fn pods_run_as_default_unless_they_name_an_account() {
        let store = store_with(&[("default", &[]), ("builder", &["regcred"])]);
        let admitted = admit(&store, pod(json!({"containers": []}))).unwrap();
        assert_eq!(admitted["spec"]["serviceAccountName"], "default");
        assert_eq!(admitted["spec"]["serviceAccount"], "default");
        assert_eq!(admitted["spec"].get("imagePullSecrets"), None);

        let named = admit(&store, pod(json!({"serviceAccountName": "builder"}))).unwrap();
        assert_eq!(named["spec"]["serviceAccount"], "builder");
        assert_eq!(
            named["spec"]["imagePullSecrets"],
            json!([{"name": "regcred"}])
        );
        let own = json!({"serviceAccountName": "builder", "imagePullSecrets": [{"name": "mine"}]});
        let own = admit(&store, pod(own)).unwrap();
        assert_eq!(own["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
    }

    #[test]
    fn a_missing_account_is_refused_with_the_plugins_message() {
        let store = store_with(&[("default", &[])]);
        assert_eq!(
            admit(&store, pod(json!({"serviceAccountName": "ghost"}))).unwrap_err(),
            r#"pods "web" is forbidden: error looking up service account team/ghost: serviceaccount "ghost" not found"#
        );
        let generated =
            json!({"metadata": {"generateName": "web-"}, "spec": {"serviceAccountName": "ghost"}});
        assert!(admit(&store, generated)
            .unwrap_err()
            .starts_with(r#"pods "web-" is forbidden: "#));
    }

    #[test]
    fn the_default_account_is_waited_for() {
        let store = store_with(&[]);
        let started = std::time::Instant::now();
        assert_eq!(
            admit(&store, pod(json!({}))).unwrap_err(),
            r#"pods "web" is forbidden: error looking up service account team/default: serviceaccount "default" not found"#
        );
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "ten lookups"
        );

        let creator = store.clone();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            creator.create(account("default", &[])).unwrap();
        });
        let admitted = admit(&store, pod(json!({}))).unwrap();
        assert_eq!(admitted["spec"]["serviceAccountName"], "default");
        late.join().unwrap();
    }

    #[test]
    fn mirror_pods_name_no_account_and_no_secret() {
        let store = store_with(&[]);
        let mirror = |spec: Value| {
            json!({"metadata": {"name": "web", "annotations": {MIRROR_POD_ANNOTATION: "x"}},
                   "spec": spec})
        };
        let admitted = admit(&store, mirror(json!({"containers": []}))).unwrap();
        assert_eq!(admitted["spec"].get("serviceAccountName"), None);
        let refusals = [
            (
                json!({"serviceAccountName": "default"}),
                "a mirror pod may not reference service accounts",
            ),
            (
                json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]}),
                "a mirror pod may not reference secrets",
            ),
            (
                json!({"containers": [{"envFrom": [{"secretRef": {"name": "x"}}]}]}),
                "a mirror pod may not reference secrets",
            ),
            (
                json!({"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}),
                "a mirror pod may not use ServiceAccountToken volume projections",
            ),
        ];
        for (spec, why) in refusals {
            assert_eq!(
                admit(&store, mirror(spec)).unwrap_err(),
                format!(r#"pods "web" is forbidden: {why}"#)
            );
        }
    }

    #[test]
    fn other_resources_are_left_alone() {
        let store = store_with(&[]);
        let kind = GroupVersionKind::new("", "v1", "ConfigMap");
        let mut object = json!({"metadata": {"name": "c"}});
        let new = NewObject {
            kind: &kind,
            resource: "configmaps",
            namespace: "team",
            object: &mut object,
        };
        ServiceAccountAdmission.admit_create(new, &store).unwrap();
        assert_eq!(object, json!({"metadata": {"name": "c"}}));
    }
}
