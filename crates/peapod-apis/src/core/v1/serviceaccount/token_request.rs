//! serviceaccounts/token: a TokenRequest (authentication.k8s.io/v1) answered with a signed
//! token for the service account, defaulted, validated and bound as kube-apiserver's
//! `TokenREST` does it.

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{
    BoundObjectReference, TokenRequest, TokenRequestSpec, TokenRequestStatus,
};
use k8s_openapi::api::core::v1::{Node, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::status::ApiError;
use peapod_store::Store;
use serde_json::Value;

use super::token::{claims, reference, Binding, TokenSigner};

/// Seconds a token lives when the request does not say (`SetDefaults_TokenRequestSpec`).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest life a token may ask for (`MinTokenAgeSec`).
const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The life kube-apiserver's admission asks for pods' tokens (`WarnOnlyBoundTokenExpirationSeconds`):
/// such a pod-bound token for the API's own audiences lives a year (`ExpirationExtensionSeconds`,
/// `--service-account-extend-token-expiration`, on by default) and carries `warnafter`.
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
const EXPIRATION_EXTENSION_SECONDS: i64 = 365 * 24 * 3600;
const GROUP: &str = "authentication.k8s.io";

/// The answer to a TokenRequest posted for `account` (as served).
pub fn answer(
    signer: &TokenSigner,
    account: &Value,
    body: &Value,
    store: &Store,
) -> Result<Value, ApiError> {
    let account: ServiceAccount = serde_json::from_value(account.clone())
        .map_err(|err| ApiError::internal(format!("stored service account: {err}")))?;
    // The status is the server's to fill: kubectl posts an empty one k8s-openapi cannot read.
    let mut body = body.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.remove("status");
    }
    let (mut request, _unknown) =
        peapod_api::object::decode_typed::<TokenRequest>(&body).map_err(|err| {
            ApiError::bad_request(format!(
                "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: {err}"
            ))
        })?;
    let name = account.metadata.name.clone().unwrap_or_default();
    let namespace = account.metadata.namespace.clone().unwrap_or_default();
    let spec = &mut request.spec;
    spec.expiration_seconds
        .get_or_insert(DEFAULT_EXPIRATION_SECONDS);
    let errors = validate(&request, &name, &namespace);
    if !errors.is_empty() {
        return Err(ApiError::invalid(GROUP, "TokenRequest", &name, errors));
    }
    let spec = &mut request.spec;
    let binding = match &spec.bound_object_ref {
        Some(bound) => bind(bound, &name, &namespace, store)?,
        None => Binding::default(),
    };
    if spec.audiences.is_empty() {
        spec.audiences = signer.api_audiences().to_vec();
    }
    let expiration = spec
        .expiration_seconds
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    let extended = expiration == WARN_ONLY_EXPIRATION_SECONDS
        && binding.pod.is_some()
        && spec.audiences == signer.api_audiences();
    let lifetime = if extended {
        EXPIRATION_EXTENSION_SECONDS
    } else {
        expiration
    };
    let mut claims = claims(
        &account,
        binding,
        lifetime,
        spec.audiences.clone(),
        Timestamp::now(),
    );
    if extended {
        claims.kubernetes.warnafter = Some(claims.iat + expiration);
    }
    let token = signer
        .sign(&claims)
        .map_err(|err| ApiError::internal(format!("failed to generate token: {err}")))?;
    // An extended token's status still shows the life asked for: kubelet refreshes by it.
    let expires = Timestamp::from_second(claims.iat + expiration)
        .map_err(|err| ApiError::internal(format!("token expiry: {err}")))?;
    request.metadata.name.get_or_insert(name);
    request.metadata.namespace.get_or_insert(namespace);
    request.status = Some(TokenRequestStatus {
        token,
        expiration_timestamp: Time(expires),
    });
    let mut answer =
        serde_json::to_value(&request).map_err(|err| ApiError::internal(err.to_string()))?;
    answer["apiVersion"] = Value::from("authentication.k8s.io/v1");
    answer["kind"] = Value::from("TokenRequest");
    Ok(answer)
}

/// `ValidateTokenRequest`, and the body's name and namespace against the URL's.
fn validate(request: &TokenRequest, name: &str, namespace: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let metadata = FieldPath::new("metadata");
    if let Some(named) = request
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty() && *n != name)
    {
        let detail = "must match the service account name if specified";
        errors.push(FieldError::invalid(&metadata.child("name"), named, detail));
    }
    let other_namespace = request.metadata.namespace.as_deref();
    if let Some(other) = other_namespace.filter(|n| !n.is_empty() && *n != namespace) {
        let detail = "must match the service account namespace if specified";
        errors.push(FieldError::invalid(
            &metadata.child("namespace"),
            other,
            detail,
        ));
    }
    errors.extend(validate_spec(&request.spec));
    errors
}

fn validate_spec(spec: &TokenRequestSpec) -> Vec<FieldError> {
    let path = FieldPath::new("spec").child("expirationSeconds");
    let seconds = spec.expiration_seconds.unwrap_or(0);
    let mut errors = Vec::new();
    if seconds < MIN_EXPIRATION_SECONDS {
        let detail = "may not specify a duration less than 10 minutes";
        errors.push(FieldError::invalid(&path, seconds, detail));
    }
    if seconds > 1 << 32 {
        let detail = "may not specify a duration larger than 2^32 seconds";
        errors.push(FieldError::invalid(&path, seconds, detail));
    }
    errors
}

/// The object a token is bound to, checked as kube checks it: it exists, runs as the account
/// (a pod), and has the uid the reference names.
fn bind(
    bound: &BoundObjectReference,
    account: &str,
    namespace: &str,
    store: &Store,
) -> Result<Binding, ApiError> {
    let api_version = bound.api_version.as_deref().unwrap_or_default();
    let kind = bound.kind.as_deref().unwrap_or_default();
    let name = bound.name.as_deref().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let store_error = |err: peapod_store::StoreError| ApiError::internal(err.to_string());
    let mut binding = Binding::default();
    let uid = match (group, kind) {
        ("", "Pod") => {
            let pod: Pod = store
                .get(namespace, name)
                .map_err(store_error)?
                .ok_or_else(|| ApiError::not_found("", "pods", name))?;
            let runs_as = pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone());
            let runs_as = runs_as.unwrap_or_default();
            if runs_as != account {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount \"{account}\" to pod running with serviceaccount \"{runs_as}\""
                )));
            }
            let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            if let Some(node_name) = node_name.filter(|n| !n.is_empty()) {
                let node: Option<Node> = store.get("", &node_name).map_err(store_error)?;
                binding.node = node.map(|node| reference(&node.metadata));
            }
            binding.pod = Some(reference(&pod.metadata));
            binding.pod.as_ref().map(|p| p.uid.clone())
        }
        ("", "Secret") => {
            let secret: Secret = store
                .get(namespace, name)
                .map_err(store_error)?
                .ok_or_else(|| ApiError::not_found("", "secrets", name))?;
            binding.secret = Some(reference(&secret.metadata));
            binding.secret.as_ref().map(|s| s.uid.clone())
        }
        ("", "Node") => {
            let node: Node = store
                .get("", name)
                .map_err(store_error)?
                .ok_or_else(|| ApiError::not_found("", "nodes", name))?;
            binding.node = Some(reference(&node.metadata));
            binding.node.as_ref().map(|n| n.uid.clone())
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )))
        }
    };
    let uid = uid.unwrap_or_default();
    if let Some(claimed) = bound.uid.as_deref().filter(|u| !u.is_empty() && *u != uid) {
        let why = format!("the UID in the bound object reference ({claimed}) does not match the UID in record ({uid}). The object might have been deleted and then recreated");
        return Err(ApiError::conflict(group, kind, name, &why));
    }
    Ok(binding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::v1::serviceaccount::token;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        }
    }

    /// A store with ServiceAccount `default` and pod `web` running as `robot`; the account.
    fn store() -> (Store, Value) {
        let store = Store::open_in_memory().unwrap();
        let account = store
            .create(ServiceAccount {
                metadata: meta("default"),
                ..ServiceAccount::default()
            })
            .unwrap();
        let spec = PodSpec {
            service_account_name: Some("robot".into()),
            ..PodSpec::default()
        };
        store
            .create(Pod {
                metadata: meta("web"),
                spec: Some(spec),
                ..Pod::default()
            })
            .unwrap();
        (store, serde_json::to_value(account).unwrap())
    }

    fn request(spec: Value) -> Value {
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec,
               "status": {"token": "", "expirationTimestamp": null}})
    }

    fn refused(spec: Value) -> String {
        let (store, account) = store();
        let signer = TokenSigner::ephemeral();
        answer(&signer, &account, &request(spec), &store)
            .unwrap_err()
            .status()["message"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn an_answer_carries_a_token_of_the_defaults() {
        let (store, account) = store();
        let signer = TokenSigner::ephemeral();
        let answered = answer(&signer, &account, &request(json!({})), &store).unwrap();
        assert_eq!(answered["kind"], "TokenRequest");
        assert_eq!(answered["metadata"]["name"], "default");
        assert_eq!(answered["spec"]["expirationSeconds"], 3600);
        assert_eq!(answered["spec"]["audiences"], json!([token::ISSUER]));
        let token = answered["status"]["token"].as_str().unwrap();
        let claims = signer.verify(token, Timestamp::now()).unwrap();
        let expires: Timestamp = answered["status"]["expirationTimestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(expires.as_second(), claims.exp);
        let user = token::authenticate(&claims, &store, Timestamp::now()).unwrap();
        assert_eq!(user.name, "system:serviceaccount:default:default");
    }

    #[test]
    fn a_pod_token_of_the_admission_life_is_extended_with_a_warning_time() {
        let (store, account) = store();
        let spec = PodSpec {
            service_account_name: Some("default".into()),
            ..PodSpec::default()
        };
        store
            .create(Pod {
                metadata: meta("api"),
                spec: Some(spec),
                ..Pod::default()
            })
            .unwrap();
        let signer = TokenSigner::ephemeral();
        let bound = json!({"apiVersion": "v1", "kind": "Pod", "name": "api"});
        let ask = |spec: Value| {
            let answered = answer(&signer, &account, &request(spec), &store).unwrap();
            let token = answered["status"]["token"].as_str().unwrap();
            // Read, not verified: one token is for another audience.
            use base64::Engine as _;
            let payload = token.split('.').nth(1).unwrap();
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            let claims: token::Claims = serde_json::from_slice(&payload).unwrap();
            let expires: Timestamp = answered["status"]["expirationTimestamp"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            (claims, expires.as_second())
        };
        let (claims, expires) = ask(json!({"expirationSeconds": 3607, "boundObjectRef": bound}));
        assert_eq!(claims.exp - claims.iat, EXPIRATION_EXTENSION_SECONDS);
        assert_eq!(claims.kubernetes.warnafter, Some(claims.iat + 3607));
        assert_eq!(expires, claims.iat + 3607);
        let other_audience =
            json!({"expirationSeconds": 3607, "boundObjectRef": bound, "audiences": ["vault"]});
        for spec in [json!({"expirationSeconds": 3607}), other_audience] {
            let (claims, expires) = ask(spec);
            assert_eq!(
                (claims.exp - claims.iat, claims.kubernetes.warnafter),
                (3607, None)
            );
            assert_eq!(expires, claims.exp);
        }
    }

    #[test]
    fn bindings_are_refused_with_kubes_messages() {
        let pod = |name: &str| json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name}});
        assert_eq!(refused(pod("nope")), "pods \"nope\" not found");
        assert_eq!(
            refused(pod("web")),
            "cannot bind token for serviceaccount \"default\" to pod running with serviceaccount \"robot\""
        );
        let deployment =
            json!({"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}});
        assert_eq!(
            refused(deployment),
            "cannot bind token to object of type apps/v1, Kind=Deployment"
        );
        assert_eq!(
            refused(json!({"expirationSeconds": 60})),
            "TokenRequest.authentication.k8s.io \"default\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        );
    }

    #[test]
    fn a_secret_bound_token_lives_as_long_as_its_secret() {
        let (store, account) = store();
        let secret = store
            .create(Secret {
                metadata: meta("key"),
                ..Secret::default()
            })
            .unwrap();
        let uid = secret.metadata.uid.clone().unwrap();
        let signer = TokenSigner::ephemeral();
        let bound = |uid: &str| json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "key", "uid": uid}});
        let stale = answer(&signer, &account, &request(bound("old")), &store).unwrap_err();
        assert_eq!(
            stale.status()["message"],
            format!("Operation cannot be fulfilled on Secret \"key\": the UID in the bound object reference (old) does not match the UID in record ({uid}). The object might have been deleted and then recreated")
        );
        let answered = answer(&signer, &account, &request(bound(&uid)), &store).unwrap();
        let token = answered["status"]["token"].as_str().unwrap();
        let claims = signer.verify(token, Timestamp::now()).unwrap();
        assert_eq!(claims.kubernetes.secret.as_ref().unwrap().uid, uid);
        assert!(token::authenticate(&claims, &store, Timestamp::now()).is_ok());
        store.delete::<Secret>("default", "key").unwrap();
        let gone = token::authenticate(&claims, &store, Timestamp::now()).unwrap_err();
        assert_eq!(
            gone.to_string(),
            "service account token has been invalidated"
        );
    }

    #[test]
    fn a_token_of_a_recreated_account_is_refused() {
        let (store, account) = store();
        let signer = TokenSigner::ephemeral();
        let answered = answer(&signer, &account, &request(json!({})), &store).unwrap();
        let token = answered["status"]["token"].as_str().unwrap();
        let claims = signer.verify(token, Timestamp::now()).unwrap();
        store
            .delete::<ServiceAccount>("default", "default")
            .unwrap();
        let gone = token::authenticate(&claims, &store, Timestamp::now()).unwrap_err();
        assert_eq!(
            gone.to_string(),
            "service account token has been invalidated"
        );
        store
            .create(ServiceAccount {
                metadata: meta("default"),
                ..ServiceAccount::default()
            })
            .unwrap();
        let recreated = token::authenticate(&claims, &store, Timestamp::now()).unwrap_err();
        assert!(
            recreated.to_string().starts_with("service account UID ("),
            "{recreated}"
        );
    }

    fn messages(spec: TokenRequestSpec) -> Vec<String> {
        validate_spec(&spec)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn expiration_must_be_ten_minutes_to_two_to_the_32_seconds() {
        let spec = |seconds| TokenRequestSpec {
            expiration_seconds: Some(seconds),
            ..TokenRequestSpec::default()
        };
        assert_eq!(
            messages(spec(599)),
            ["spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"]
        );
        assert!(messages(spec(600)).is_empty());
        assert!(messages(spec(1 << 32)).is_empty());
        assert_eq!(
            messages(spec((1 << 32) + 1)),
            ["spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds"]
        );
    }
}
