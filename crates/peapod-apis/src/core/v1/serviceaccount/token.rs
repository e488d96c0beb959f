//! Service account tokens as kube-apiserver issues and checks them (`pkg/serviceaccount`):
//! the signing key, the claims of a TokenRequest (`claims.go` `Claims`), and the validator
//! that turns a bearer token back into its service account, refusing it when its signature,
//! issuer, expiry or audience is wrong or when what it is bound to is gone (`Validate`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use k8s_openapi::api::core::v1::{Node, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_apiserver::authn::User;
use peapod_store::Store;
use serde::{Deserialize, Serialize};

/// kube-apiserver's default `--service-account-issuer`, also the API's audience.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Seconds a deleted bound object's tokens stay valid after its deletion time, and the clock
/// skew allowed on `exp` and `nbf` (go-jose's default leeway).
const LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("reading the service account signing key: {0}")]
    Key(#[source] jsonwebtoken::errors::Error),
    #[error("generating the service account signing key: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("signing the token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    /// Not one of our tokens: another authenticator may know it.
    #[error("not a service account token of this issuer: {0}")]
    Foreign(#[source] jsonwebtoken::errors::Error),
    #[error("service account token has expired")]
    Expired,
    #[error("token audiences are invalid")]
    Audience,
    #[error("service account token has been invalidated")]
    Invalidated,
    #[error("{kind} UID ({stored}) does not match claim ({claimed})")]
    Uid {
        kind: &'static str,
        stored: String,
        claimed: String,
    },
    #[error("reading the objects the token is bound to: {0}")]
    Store(#[from] peapod_store::StoreError),
}

/// A reference to an object in the private claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` private claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
    /// When a token whose life the API server extended should have expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// Every claim of a service account token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

/// What a token is bound to besides its service account.
#[derive(Clone, Debug, Default)]
pub struct Binding {
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    pub node: Option<Ref>,
}

/// The username of a service account (`serviceaccount.MakeUsername`).
pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// An object's name and uid as a claim reference.
pub fn reference(metadata: &ObjectMeta) -> Ref {
    Ref {
        name: metadata.name.clone().unwrap_or_default(),
        uid: metadata.uid.clone().unwrap_or_default(),
    }
}

/// The claims of a token for `account` valid `expiration_seconds` from `now`.
pub fn claims(
    account: &ServiceAccount,
    binding: Binding,
    expiration_seconds: i64,
    audiences: Vec<String>,
    now: Timestamp,
) -> Claims {
    let namespace = account.metadata.namespace.clone().unwrap_or_default();
    let account_ref = reference(&account.metadata);
    let now = now.as_second();
    Claims {
        iss: ISSUER.to_owned(),
        sub: username(&namespace, &account_ref.name),
        aud: audiences,
        exp: now + expiration_seconds,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes: KubernetesClaims {
            namespace,
            serviceaccount: account_ref,
            pod: binding.pod,
            secret: binding.secret,
            node: binding.node,
            warnafter: None,
        },
    }
}

/// The key tokens are signed (ES256) and checked with, and the audiences the API accepts.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_id: String,
    audiences: Vec<String>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A new P-256 private key, PKCS#8 PEM.
    pub fn generate_key_pem() -> Result<String, TokenError> {
        Ok(rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?.serialize_pem())
    }

    /// The signer of a private key (PKCS#8 PEM, as [`TokenSigner::generate_key_pem`] makes).
    pub fn from_key_pem(private_pem: &str) -> Result<TokenSigner, TokenError> {
        let pair = rcgen::KeyPair::from_pem(private_pem)?;
        let encoding = EncodingKey::from_ec_pem(private_pem.as_bytes()).map_err(TokenError::Key)?;
        let decoding =
            DecodingKey::from_ec_pem(pair.public_key_pem().as_bytes()).map_err(TokenError::Key)?;
        Ok(TokenSigner {
            encoding,
            decoding,
            key_id: key_id(&rcgen::PublicKeyData::subject_public_key_info(&pair)),
            audiences: vec![ISSUER.to_owned()],
        })
    }

    /// A signer with a key of its own, for API servers whose tokens need outlive nothing.
    pub fn ephemeral() -> TokenSigner {
        let pem = TokenSigner::generate_key_pem().expect("P-256 key generation");
        TokenSigner::from_key_pem(&pem).expect("a freshly generated key")
    }

    /// Signs claims of another shape with this key: [`super::legacy_token`]'s.
    pub(super) fn sign_claims(&self, claims: &impl Serialize) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(TokenError::Sign)
    }

    /// The key tokens are checked with.
    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The audiences a token gets when its request names none.
    pub fn api_audiences(&self) -> &[String] {
        &self.audiences
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(TokenError::Sign)
    }

    /// The claims of a token signed by this key for this issuer, if it is still in date and
    /// meant for the API.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(TokenError::Foreign)?
            .claims;
        let now = now.as_second();
        if now > claims.exp + LEEWAY_SECONDS || now < claims.nbf - LEEWAY_SECONDS {
            return Err(TokenError::Expired);
        }
        if !claims.aud.iter().any(|aud| self.audiences.contains(aud)) {
            return Err(TokenError::Audience);
        }
        Ok(claims)
    }
}

/// kube's key id: the unpadded base64url SHA-256 of the public key's DER.
fn key_id(public_der: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(public_der))
}

/// The user a verified token's claims stand for, once its service account and the objects it
/// is bound to are checked to still be there (kube's `validator.Validate`).
pub fn authenticate(claims: &Claims, store: &Store, now: Timestamp) -> Result<User, TokenError> {
    let k8s = &claims.kubernetes;
    let namespace = k8s.namespace.as_str();
    let account: Option<ServiceAccount> = store.get(namespace, &k8s.serviceaccount.name)?;
    let account = live(account.map(|a| a.metadata), now)?;
    check_uid("service account", &account, &k8s.serviceaccount)?;
    if let Some(secret) = &k8s.secret {
        let stored: Option<Secret> = store.get(namespace, &secret.name)?;
        check_uid("Secret", &live(stored.map(|s| s.metadata), now)?, secret)?;
    }
    if let Some(pod) = &k8s.pod {
        let stored: Option<Pod> = store.get(namespace, &pod.name)?;
        check_uid("Pod", &live(stored.map(|p| p.metadata), now)?, pod)?;
    }
    if let Some(node) = &k8s.node {
        // A pod-bound token names its node for information; only a node-bound one needs it.
        if k8s.pod.is_none() {
            let stored: Option<Node> = store.get("", &node.name)?;
            check_uid("Node", &live(stored.map(|n| n.metadata), now)?, node)?;
        }
    }
    let groups = [
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{namespace}"),
    ];
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let mut user = User::new(claims.sub.clone(), &groups);
    user.extra = extra(claims);
    Ok(user)
}

/// What kube's authenticator adds about a token: its bound pod and node, and its id.
fn extra(claims: &Claims) -> BTreeMap<String, Vec<String>> {
    let mut extra = BTreeMap::new();
    let mut add = |key: &str, value: &str| {
        extra.insert(
            format!("authentication.kubernetes.io/{key}"),
            vec![value.to_owned()],
        );
    };
    if let Some(pod) = &claims.kubernetes.pod {
        add("pod-name", &pod.name);
        add("pod-uid", &pod.uid);
    }
    if let Some(node) = &claims.kubernetes.node {
        add("node-name", &node.name);
        add("node-uid", &node.uid);
    }
    if !claims.jti.is_empty() {
        add("credential-id", &format!("JTI={}", claims.jti));
    }
    extra
}

/// An object's metadata unless it is gone or was deleted more than the leeway ago.
fn live(metadata: Option<ObjectMeta>, now: Timestamp) -> Result<ObjectMeta, TokenError> {
    let metadata = metadata.ok_or(TokenError::Invalidated)?;
    let deleted_long_ago = metadata
        .deletion_timestamp
        .as_ref()
        .is_some_and(|at| at.0.as_second() < now.as_second() - LEEWAY_SECONDS);
    if deleted_long_ago {
        return Err(TokenError::Invalidated);
    }
    Ok(metadata)
}

fn check_uid(kind: &'static str, stored: &ObjectMeta, claimed: &Ref) -> Result<(), TokenError> {
    let stored = stored.uid.clone().unwrap_or_default();
    if stored != claimed.uid {
        return Err(TokenError::Uid {
            kind,
            stored,
            claimed: claimed.uid.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some("robot".into()),
                namespace: Some("team".into()),
                uid: Some("sa-uid".into()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        }
    }

    fn pod_bound(audiences: &[&str], now: Timestamp) -> Claims {
        let binding = Binding {
            pod: Some(Ref {
                name: "web".into(),
                uid: "pod-uid".into(),
            }),
            node: Some(Ref {
                name: "n1".into(),
                uid: "node-uid".into(),
            }),
            secret: None,
        };
        let audiences = audiences.iter().map(|a| (*a).to_owned()).collect();
        claims(&account(), binding, 3600, audiences, now)
    }

    #[test]
    fn claims_are_kubes() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let claims = serde_json::to_value(pod_bound(&[ISSUER], now)).unwrap();
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["sub"], "system:serviceaccount:team:robot");
        assert_eq!(claims["aud"], serde_json::json!([ISSUER]));
        assert_eq!(
            (&claims["iat"], &claims["nbf"], &claims["exp"]),
            (
                &serde_json::json!(1_700_000_000),
                &serde_json::json!(1_700_000_000),
                &serde_json::json!(1_700_003_600)
            )
        );
        assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
        assert_eq!(
            claims["kubernetes.io"],
            serde_json::json!({
                "namespace": "team",
                "serviceaccount": {"name": "robot", "uid": "sa-uid"},
                "pod": {"name": "web", "uid": "pod-uid"},
                "node": {"name": "n1", "uid": "node-uid"},
            })
        );
    }

    #[test]
    fn signed_tokens_verify_until_they_expire() {
        let signer = TokenSigner::ephemeral();
        let now = Timestamp::now();
        let claims = pod_bound(&[ISSUER], now);
        let token = signer.sign(&claims).unwrap();
        assert_eq!(signer.verify(&token, now).unwrap(), claims);
        let later = Timestamp::from_second(claims.exp + LEEWAY_SECONDS + 1).unwrap();
        assert!(matches!(
            signer.verify(&token, later),
            Err(TokenError::Expired)
        ));
        let other = TokenSigner::ephemeral();
        assert!(matches!(
            other.verify(&token, now),
            Err(TokenError::Foreign(_))
        ));
    }

    #[test]
    fn tokens_for_another_audience_are_refused() {
        let signer = TokenSigner::ephemeral();
        let now = Timestamp::now();
        let token = signer.sign(&pod_bound(&["vault"], now)).unwrap();
        assert!(matches!(
            signer.verify(&token, now),
            Err(TokenError::Audience)
        ));
    }

    #[test]
    fn objects_deleted_over_a_minute_ago_invalidate_their_tokens() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let deleted = |seconds_ago: i64| ObjectMeta {
            deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::from_second(now.as_second() - seconds_ago).unwrap(),
            )),
            ..ObjectMeta::default()
        };
        assert!(live(Some(deleted(30)), now).is_ok());
        assert!(
            live(Some(deleted(-30)), now).is_ok(),
            "still in its grace period"
        );
        assert!(matches!(
            live(Some(deleted(61)), now),
            Err(TokenError::Invalidated)
        ));
        assert!(matches!(live(None, now), Err(TokenError::Invalidated)));
    }

    #[test]
    fn a_saved_key_signs_as_before() {
        let pem = TokenSigner::generate_key_pem().unwrap();
        let first = TokenSigner::from_key_pem(&pem).unwrap();
        let token = first.sign(&pod_bound(&[ISSUER], Timestamp::now())).unwrap();
        let second = TokenSigner::from_key_pem(&pem).unwrap();
        assert!(second.verify(&token, Timestamp::now()).is_ok());
        assert_eq!(first.key_id, second.key_id);
    }
}
