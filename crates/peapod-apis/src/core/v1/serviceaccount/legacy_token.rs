//! Legacy service account tokens, the long-lived JWTs kube-controller-manager writes into
//! Secrets of type `kubernetes.io/service-account-token` (`pkg/serviceaccount/legacy.go`):
//! their claims, signed with the bound tokens' key, and kube's legacy validator, which accepts
//! one only while its Secret still holds it and its service account is the one it names, and
//! labels the Secret with the day it was last used (LegacyServiceAccountTokenTracking).

use jiff::tz::TimeZone;
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, Validation};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_apiserver::authn::User;
use peapod_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use super::token::{username, TokenError, TokenSigner};

/// The issuer of legacy tokens (`serviceaccount.LegacyIssuer`).
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// The type of the Secrets holding them.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotations naming a token Secret's service account.
pub const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const SERVICE_ACCOUNT_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
/// The keys of a filled token Secret.
pub const TOKEN_KEY: &str = "token";
pub const CA_KEY: &str = "ca.crt";
pub const NAMESPACE_KEY: &str = "namespace";
/// The label with the day (UTC) a Secret's token was last used.
pub const LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";
/// The label the legacy token cleaner sets on tokens it will delete; they no longer work.
pub const INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";
const SUBJECT_PREFIX: &str = "system:serviceaccount:";

#[derive(Debug, thiserror::Error)]
pub enum LegacyTokenError {
    /// Not a legacy token of this key: another authenticator may know it.
    #[error("not a legacy service account token of this key: {0}")]
    Foreign(#[source] jsonwebtoken::errors::Error),
    #[error("{0} claim is missing")]
    MissingClaim(&'static str),
    #[error("sub claim is invalid")]
    InvalidSubject,
    #[error("Token has been invalidated")]
    Invalidated,
    #[error("Token does not match server's copy")]
    Mismatch,
    #[error("serviceaccounts \"{0}\" not found")]
    AccountNotFound(String),
    #[error("ServiceAccount {namespace}/{name} has been deleted")]
    AccountDeleted { namespace: String, name: String },
    #[error("ServiceAccount UID ({stored}) does not match claim ({claimed})")]
    Uid { stored: String, claimed: String },
    #[error("the token in secret {namespace}/{secret} for service account {namespace}/{account} has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the '{INVALID_SINCE_LABEL}' label from the secret to temporarily allow use of this token")]
    MarkedInvalid {
        namespace: String,
        secret: String,
        account: String,
    },
    #[error("reading the token's Secret and service account: {0}")]
    Store(#[from] StoreError),
}

/// The claims of a legacy token (`LegacyClaims`), in the order kube's JSON has them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyClaims {
    #[serde(default)]
    pub iss: String,
    #[serde(default, rename = "kubernetes.io/serviceaccount/namespace")]
    pub namespace: String,
    #[serde(default, rename = "kubernetes.io/serviceaccount/secret.name")]
    pub secret_name: String,
    #[serde(default, rename = "kubernetes.io/serviceaccount/service-account.name")]
    pub service_account_name: String,
    #[serde(default, rename = "kubernetes.io/serviceaccount/service-account.uid")]
    pub service_account_uid: String,
    #[serde(default)]
    pub sub: String,
}

/// The claims of the token of Secret `secret_name` for `account`.
pub fn claims(account: &ServiceAccount, secret_name: &str) -> LegacyClaims {
    let namespace = account.metadata.namespace.clone().unwrap_or_default();
    let name = account.metadata.name.clone().unwrap_or_default();
    LegacyClaims {
        iss: LEGACY_ISSUER.to_owned(),
        sub: username(&namespace, &name),
        namespace,
        secret_name: secret_name.to_owned(),
        service_account_name: name,
        service_account_uid: account.metadata.uid.clone().unwrap_or_default(),
    }
}

/// The signed token of Secret `secret_name` for `account`.
pub fn sign(
    signer: &TokenSigner,
    account: &ServiceAccount,
    secret_name: &str,
) -> Result<String, TokenError> {
    signer.sign_claims(&claims(account, secret_name))
}

/// The claims of a legacy token `signer`'s key signed; they never expire.
pub fn verify(signer: &TokenSigner, token: &str) -> Result<LegacyClaims, LegacyTokenError> {
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[LEGACY_ISSUER]);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<LegacyClaims>(token, signer.decoding_key(), &validation)
        .map(|data| data.claims)
        .map_err(LegacyTokenError::Foreign)
}

/// Who a legacy token authenticated as, and why its use could not be recorded on its Secret
/// (which does not refuse it), if it could not.
#[derive(Debug)]
pub struct LegacyLogin {
    pub user: User,
    pub unrecorded: Option<StoreError>,
}

/// kube's legacy validator: the user of verified `claims` of `token`, if its Secret still
/// holds it and its service account is still the one it was issued for. The use is recorded
/// on the Secret, also when it carries the invalid-since label and the token is refused.
pub fn authenticate(
    claims: &LegacyClaims,
    token: &str,
    store: &Store,
    now: Timestamp,
) -> Result<LegacyLogin, LegacyTokenError> {
    check_claims(claims)?;
    let namespace = claims.namespace.as_str();
    let secret: Option<Secret> = store.get(namespace, &claims.secret_name)?;
    let secret = secret
        .filter(|secret| secret.metadata.deletion_timestamp.is_none())
        .ok_or(LegacyTokenError::Invalidated)?;
    if !same_bytes(secret_value(&secret, TOKEN_KEY), token.as_bytes()) {
        return Err(LegacyTokenError::Mismatch);
    }
    let name = claims.service_account_name.as_str();
    let account: Option<ServiceAccount> = store.get(namespace, name)?;
    let account = account.ok_or_else(|| LegacyTokenError::AccountNotFound(name.to_owned()))?;
    check_account(&account.metadata, claims)?;
    let unrecorded = record_use(store, &secret, now).err();
    if label(&secret.metadata, INVALID_SINCE_LABEL).is_some_and(|since| !since.is_empty()) {
        return Err(LegacyTokenError::MarkedInvalid {
            namespace: namespace.to_owned(),
            secret: claims.secret_name.clone(),
            account: name.to_owned(),
        });
    }
    let groups = [
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{namespace}"),
    ];
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let user = User::new(username(namespace, name), &groups);
    Ok(LegacyLogin { user, unrecorded })
}

/// The claims the validator needs, present and agreeing with the subject.
fn check_claims(claims: &LegacyClaims) -> Result<(), LegacyTokenError> {
    let required = [
        ("sub", &claims.sub),
        ("namespace", &claims.namespace),
        ("secretName", &claims.secret_name),
        ("serviceAccountName", &claims.service_account_name),
        ("serviceAccountUID", &claims.service_account_uid),
    ];
    if let Some((claim, _)) = required.iter().find(|(_, value)| value.is_empty()) {
        return Err(LegacyTokenError::MissingClaim(claim));
    }
    let subject = claims.sub.strip_prefix(SUBJECT_PREFIX);
    let named = subject.and_then(|rest| rest.split_once(':'));
    match named {
        Some((namespace, name))
            if namespace == claims.namespace && name == claims.service_account_name =>
        {
            Ok(())
        }
        _ => Err(LegacyTokenError::InvalidSubject),
    }
}

/// The service account is not being deleted and is the one the token was issued for.
fn check_account(account: &ObjectMeta, claims: &LegacyClaims) -> Result<(), LegacyTokenError> {
    if account.deletion_timestamp.is_some() {
        return Err(LegacyTokenError::AccountDeleted {
            namespace: claims.namespace.clone(),
            name: claims.service_account_name.clone(),
        });
    }
    let stored = account.uid.clone().unwrap_or_default();
    if stored != claims.service_account_uid {
        return Err(LegacyTokenError::Uid {
            stored,
            claimed: claims.service_account_uid.clone(),
        });
    }
    Ok(())
}

/// Labels `secret` with today's date (UTC) unless it already has today's or tomorrow's (a
/// clock ahead of ours), so that a token is recorded at most once a day.
fn record_use(store: &Store, secret: &Secret, now: Timestamp) -> Result<(), StoreError> {
    let Some(today) = label_to_record(&secret.metadata, now) else {
        return Ok(());
    };
    let uid = secret.metadata.uid.clone();
    let namespace = secret.metadata.namespace.as_deref().unwrap_or_default();
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let labelled = store.modify::<Secret>(namespace, name, |stored| {
        if stored.metadata.uid != uid {
            return false;
        }
        let labels = stored.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(LAST_USED_LABEL.to_owned(), today);
        true
    });
    match labelled {
        Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

/// The date to label a Secret last used `now` with, if its label does not already say so.
fn label_to_record(secret: &ObjectMeta, now: Timestamp) -> Option<String> {
    let today = now.to_zoned(TimeZone::UTC).date();
    let tomorrow = today.tomorrow().ok().map(|date| date.to_string());
    let today = today.to_string();
    let recorded = label(secret, LAST_USED_LABEL);
    let current = recorded.is_some_and(|day| *day == today || Some(day) == tomorrow.as_ref());
    (!current).then_some(today)
}

fn label<'a>(metadata: &'a ObjectMeta, key: &str) -> Option<&'a String> {
    metadata.labels.as_ref()?.get(key)
}

/// The value of `key` in a Secret's data (empty when absent).
pub fn secret_value<'a>(secret: &'a Secret, key: &str) -> &'a [u8] {
    let value = secret.data.as_ref().and_then(|data| data.get(key));
    value.map_or(&[], |value| value.0.as_slice())
}

/// Equality that takes as long whichever byte differs (kube's `ConstantTimeCompare`).
fn same_bytes(stored: &[u8], presented: &[u8]) -> bool {
    stored.len() == presented.len()
        && stored
            .iter()
            .zip(presented)
            .fold(0u8, |differs, (a, b)| differs | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::ByteString;

    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn now() -> Timestamp {
        Timestamp::from_second(NOW).unwrap()
    }

    fn account() -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some("robot".into()),
                namespace: Some("team".into()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        }
    }

    fn token_secret(token: &str) -> Secret {
        let annotations = BTreeMap::from([(
            SERVICE_ACCOUNT_NAME_ANNOTATION.to_owned(),
            "robot".to_owned(),
        )]);
        Secret {
            metadata: ObjectMeta {
                name: Some("robot-token".into()),
                namespace: Some("team".into()),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            type_: Some(SERVICE_ACCOUNT_TOKEN_TYPE.into()),
            data: Some(BTreeMap::from([(
                TOKEN_KEY.to_owned(),
                ByteString(token.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    /// A store with the account, and the Secret holding a token signed for it.
    fn stored(signer: &TokenSigner) -> (Store, ServiceAccount, String) {
        let store = Store::open_in_memory().unwrap();
        let account = store.create(account()).unwrap();
        let token = sign(signer, &account, "robot-token").unwrap();
        store.create(token_secret(&token)).unwrap();
        (store, account, token)
    }

    fn login(signer: &TokenSigner, store: &Store, token: &str) -> Result<User, LegacyTokenError> {
        let claims = verify(signer, token)?;
        let login = authenticate(&claims, token, store, now())?;
        assert!(login.unrecorded.is_none());
        Ok(login.user)
    }

    #[test]
    fn claims_are_kubes() {
        let mut account = account();
        account.metadata.uid = Some("sa-uid".into());
        let json = serde_json::to_string(&claims(&account, "robot-token")).unwrap();
        assert_eq!(
            json,
            r#"{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/namespace":"team","kubernetes.io/serviceaccount/secret.name":"robot-token","kubernetes.io/serviceaccount/service-account.name":"robot","kubernetes.io/serviceaccount/service-account.uid":"sa-uid","sub":"system:serviceaccount:team:robot"}"#
        );
    }

    #[test]
    fn tokens_are_only_legacy_ones_of_our_key() {
        let signer = TokenSigner::ephemeral();
        let (_, account, token) = stored(&signer);
        assert_eq!(
            verify(&signer, &token).unwrap(),
            claims(&account, "robot-token")
        );
        let other = TokenSigner::ephemeral();
        assert!(matches!(
            verify(&other, &token),
            Err(LegacyTokenError::Foreign(_))
        ));
        let bound = super::super::token::claims(
            &account,
            Default::default(),
            3600,
            vec!["api".into()],
            now(),
        );
        let bound = signer.sign(&bound).unwrap();
        assert!(matches!(
            verify(&signer, &bound),
            Err(LegacyTokenError::Foreign(_))
        ));
    }

    #[test]
    fn a_held_token_is_its_service_account_and_labels_its_secret_once_a_day() {
        let signer = TokenSigner::ephemeral();
        let (store, _, token) = stored(&signer);
        let user = login(&signer, &store, &token).unwrap();
        assert_eq!(user.name, "system:serviceaccount:team:robot");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:team",
                "system:authenticated"
            ]
        );
        let secret: Secret = store.get("team", "robot-token").unwrap().unwrap();
        assert_eq!(
            label(&secret.metadata, LAST_USED_LABEL).unwrap(),
            "2023-11-14"
        );
        login(&signer, &store, &token).unwrap();
        let again: Secret = store.get("team", "robot-token").unwrap().unwrap();
        assert_eq!(
            again.metadata.resource_version, secret.metadata.resource_version,
            "labelled once a day"
        );
    }

    #[test]
    fn the_last_used_label_is_written_unless_it_says_today_or_tomorrow() {
        let labelled = |day: &str| ObjectMeta {
            labels: Some(BTreeMap::from([(LAST_USED_LABEL.into(), day.into())])),
            ..ObjectMeta::default()
        };
        let today = Some("2023-11-14".to_owned());
        assert_eq!(label_to_record(&ObjectMeta::default(), now()), today);
        assert_eq!(label_to_record(&labelled("2023-11-13"), now()), today);
        assert_eq!(label_to_record(&labelled("2023-11-14"), now()), None);
        assert_eq!(label_to_record(&labelled("2023-11-15"), now()), None);
    }

    #[test]
    fn a_token_its_secret_no_longer_holds_is_refused() {
        let signer = TokenSigner::ephemeral();
        let (store, _, token) = stored(&signer);
        store
            .modify::<Secret>("team", "robot-token", |secret| {
                secret.data = Some(BTreeMap::from([(
                    TOKEN_KEY.to_owned(),
                    ByteString(b"tampered".to_vec()),
                )]));
                true
            })
            .unwrap();
        let refused = login(&signer, &store, &token).unwrap_err();
        assert_eq!(refused.to_string(), "Token does not match server's copy");
        store.delete::<Secret>("team", "robot-token").unwrap();
        let refused = login(&signer, &store, &token).unwrap_err();
        assert_eq!(refused.to_string(), "Token has been invalidated");
    }

    #[test]
    fn a_token_of_a_gone_or_replaced_account_is_refused() {
        let signer = TokenSigner::ephemeral();
        let (store, account, token) = stored(&signer);
        store.delete::<ServiceAccount>("team", "robot").unwrap();
        let refused = login(&signer, &store, &token).unwrap_err();
        assert_eq!(refused.to_string(), "serviceaccounts \"robot\" not found");
        let again = store.create(self::account()).unwrap();
        let refused = login(&signer, &store, &token).unwrap_err();
        let expected = format!(
            "ServiceAccount UID ({}) does not match claim ({})",
            again.metadata.uid.unwrap(),
            account.metadata.uid.unwrap()
        );
        assert_eq!(refused.to_string(), expected);
    }

    #[test]
    fn a_token_marked_invalid_is_refused_but_its_use_recorded() {
        let signer = TokenSigner::ephemeral();
        let (store, _, token) = stored(&signer);
        store
            .modify::<Secret>("team", "robot-token", |secret| {
                let labels = BTreeMap::from([(INVALID_SINCE_LABEL.into(), "2023-10-01".into())]);
                secret.metadata.labels = Some(labels);
                true
            })
            .unwrap();
        let refused = login(&signer, &store, &token).unwrap_err();
        assert!(
            matches!(refused, LegacyTokenError::MarkedInvalid { .. }),
            "{refused}"
        );
        let secret: Secret = store.get("team", "robot-token").unwrap().unwrap();
        assert!(label(&secret.metadata, LAST_USED_LABEL).is_some());
    }

    #[test]
    fn claims_must_be_complete_and_agree_with_the_subject() {
        let mut account = account();
        account.metadata.uid = Some("sa-uid".into());
        let complete = claims(&account, "robot-token");
        assert!(check_claims(&complete).is_ok());
        let without_secret = LegacyClaims {
            secret_name: String::new(),
            ..complete.clone()
        };
        assert_eq!(
            check_claims(&without_secret).unwrap_err().to_string(),
            "secretName claim is missing"
        );
        let elsewhere = LegacyClaims {
            sub: "system:serviceaccount:other:robot".into(),
            ..complete
        };
        assert!(matches!(
            check_claims(&elsewhere),
            Err(LegacyTokenError::InvalidSubject)
        ));
    }

    #[test]
    fn an_account_being_deleted_refuses_its_tokens() {
        let mut metadata = account().metadata;
        metadata.uid = Some("sa-uid".into());
        metadata.deletion_timestamp = Some(Time(now()));
        let claims = claims(&account(), "robot-token");
        assert_eq!(
            check_account(&metadata, &claims).unwrap_err().to_string(),
            "ServiceAccount team/robot has been deleted"
        );
    }

    #[test]
    fn bytes_compare_whole() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"abcd"));
    }
}
