//! The tokens controller: fills the Secrets of type `kubernetes.io/service-account-token` that
//! users create for a service account (annotation `kubernetes.io/service-account.name`) with a
//! legacy token, the cluster CA and the namespace, deletes those whose service account is gone
//! or was replaced, deletes an account's token Secrets with it, and takes a deleted Secret out
//! of its account's `secrets`, as kube-controller-manager's TokensController does (which, since
//! 1.27, no longer makes token Secrets by itself).

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::ByteString;
use peapod_apis::core::v1::serviceaccount::legacy_token::{
    self, secret_value, CA_KEY, NAMESPACE_KEY, SERVICE_ACCOUNT_NAME_ANNOTATION,
    SERVICE_ACCOUNT_TOKEN_TYPE, SERVICE_ACCOUNT_UID_ANNOTATION, TOKEN_KEY,
};
use peapod_apis::core::v1::serviceaccount::token::{TokenError, TokenSigner};
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use peapod_store::{Store, StoreError, WatchEvent, WatchEventType, WatchStream};
use serde_json::{json, Value};

/// How long a failed watch waits before it is opened again.
const REOPEN: Duration = Duration::from_secs(1);
/// How often a service account update that conflicts is tried (kube's `RemoveTokenBackoff`).
const UPDATE_ATTEMPTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountTokensError {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: ApiError,
    },
    #[error("signing the token of secret {secret}: {source}")]
    Sign {
        secret: String,
        #[source]
        source: TokenError,
    },
    #[error("reading a secret or service account: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("watching secrets and service accounts: {0}")]
    Watch(#[from] StoreError),
    #[error("opening the watches: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What a token Secret needs, given its service account.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decision<'a> {
    Keep,
    /// Its account is gone, or is not the one it was filled for.
    Delete,
    /// Its token, CA or namespace is missing (or its CA is not the cluster's).
    Fill(&'a ServiceAccount),
}

/// Keeps the token Secrets of service accounts filled, and removes those of gone accounts.
#[derive(Clone)]
pub struct ServiceAccountTokensController {
    client: LocalClient,
    store: Store,
    signer: Arc<TokenSigner>,
    /// The CA certificate (PEM) written as `ca.crt`.
    ca_pem: Option<String>,
}

/// The watches the controller follows.
struct Watches {
    secrets: WatchStream,
    accounts: WatchStream,
}

impl ServiceAccountTokensController {
    pub fn new(
        client: LocalClient,
        store: Store,
        signer: Arc<TokenSigner>,
        ca_pem: Option<String>,
    ) -> ServiceAccountTokensController {
        ServiceAccountTokensController {
            client,
            store,
            signer,
            ca_pem,
        }
    }

    /// Watches secrets and service accounts until the store goes away.
    pub async fn run(self) {
        loop {
            if let Err(err) = self.follow().await {
                tracing::warn!(%err, "service account tokens controller; watching again");
            }
            tokio::time::sleep(REOPEN).await;
        }
    }

    /// Syncs every token Secret, then reacts to each change, until a watch ends.
    async fn follow(&self) -> Result<(), ServiceAccountTokensError> {
        let (secrets, mut watches) = self.open().await?;
        for secret in &secrets {
            logged(self.sync(secret)).await;
        }
        loop {
            tokio::select! {
                change = watches.secrets.next() => {
                    let Some(event) = change.transpose()? else { return Ok(()) };
                    if event.object["type"] == SERVICE_ACCOUNT_TOKEN_TYPE {
                        logged(self.secret_changed(event)).await;
                    }
                }
                change = watches.accounts.next() => {
                    let Some(event) = change.transpose()? else { return Ok(()) };
                    if event.kind == WatchEventType::Deleted {
                        logged(self.account_deleted(event.object)).await;
                    }
                }
            }
        }
    }

    async fn secret_changed(&self, event: WatchEvent) -> Result<(), ServiceAccountTokensError> {
        let secret: Secret = serde_json::from_value(event.object)?;
        match event.kind {
            WatchEventType::Added | WatchEventType::Modified => self.sync(&secret).await,
            WatchEventType::Deleted => self.unreference(&secret).await,
            _ => Ok(()),
        }
    }

    async fn account_deleted(&self, account: Value) -> Result<(), ServiceAccountTokensError> {
        self.delete_tokens(&serde_json::from_value(account)?).await
    }

    /// The secrets now, and watches of secrets and service accounts from then on; accounts
    /// are watched first so that none goes unseen between the two.
    async fn open(&self) -> Result<(Vec<Secret>, Watches), ServiceAccountTokensError> {
        let store = self.store.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let (_, _, accounts) = store.list_watch::<ServiceAccount>(None)?;
            let (secrets, _, secret_watch) = store.list_watch::<Secret>(None)?;
            let watches = Watches {
                secrets: secret_watch,
                accounts,
            };
            Ok::<_, StoreError>((secrets, watches))
        })
        .await??;
        Ok(opened)
    }

    /// kube's `syncSecret` for a Secret that exists.
    async fn sync(&self, secret: &Secret) -> Result<(), ServiceAccountTokensError> {
        let Some(account_name) = account_name(secret) else {
            return Ok(());
        };
        let namespace = secret.metadata.namespace.as_deref().unwrap_or_default();
        let account = self.account(namespace, account_name).await?;
        match decide(secret, account.as_ref(), self.ca_pem.as_deref()) {
            Decision::Keep => Ok(()),
            Decision::Delete => self.delete_secret(secret).await,
            Decision::Fill(account) => self.fill(secret, account).await,
        }
    }

    /// The service account `name` in `namespace`, if there is one.
    async fn account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccount>, ServiceAccountTokensError> {
        match self.client.get(&account_path(namespace, name)).await {
            Ok(found) => Ok(Some(serde_json::from_value(found)?)),
            Err(err) if err.reason == "NotFound" => Ok(None),
            Err(source) => Err(ServiceAccountTokensError::Api {
                what: format!("reading service account {namespace}/{name}"),
                source,
            }),
        }
    }

    /// Writes what `secret` lacks into its current version, unless that is newer than the one
    /// seen (whose own event comes next) or already complete.
    async fn fill(
        &self,
        seen: &Secret,
        account: &ServiceAccount,
    ) -> Result<(), ServiceAccountTokensError> {
        let path = secret_path(seen);
        let live: Secret = match self.client.get(&path).await {
            Ok(live) => serde_json::from_value(live)?,
            Err(err) if err.reason == "NotFound" => return Ok(()),
            Err(source) => return Err(api_error(format!("reading secret {path}"), source)),
        };
        if live.metadata.resource_version != seen.metadata.resource_version {
            return Ok(());
        }
        let ca = self.ca_pem.as_deref();
        let filled = filled(live, account, ca, &self.signer).map_err(|source| {
            ServiceAccountTokensError::Sign {
                secret: path.clone(),
                source,
            }
        })?;
        let Some(filled) = filled else {
            return Ok(());
        };
        let body = serde_json::to_value(&filled)?;
        let written = self
            .client
            .send(Method::PUT, &path, Some(("application/json", body)))
            .await;
        match written {
            // Changed meanwhile (its event brings it back) or gone: nothing to do.
            Err(err) if !matches!(err.reason, "Conflict" | "NotFound") => {
                Err(api_error(format!("filling token secret {path}"), err))
            }
            _ => Ok(()),
        }
    }

    /// Deletes `secret` if it is still the same object.
    async fn delete_secret(&self, secret: &Secret) -> Result<(), ServiceAccountTokensError> {
        let path = secret_path(secret);
        let options = json!({"preconditions": {"uid": secret.metadata.uid}});
        match self.client.delete(&path, options).await {
            // Gone already, or replaced by another Secret of the same name.
            Err(err) if !matches!(err.reason, "Conflict" | "NotFound") => {
                Err(api_error(format!("deleting token secret {path}"), err))
            }
            _ => Ok(()),
        }
    }

    /// kube's `deleteTokens`: the token Secrets of a deleted service account go with it.
    async fn delete_tokens(
        &self,
        account: &ServiceAccount,
    ) -> Result<(), ServiceAccountTokensError> {
        let namespace = account.metadata.namespace.as_deref().unwrap_or_default();
        let path = format!("/api/v1/namespaces/{namespace}/secrets");
        let secrets = match self.client.list(&path).await {
            Ok(secrets) => secrets,
            Err(source) => return Err(api_error(format!("listing {path}"), source)),
        };
        for secret in secrets {
            let secret: Secret = serde_json::from_value(secret)?;
            if is_token_of(&secret, account) {
                self.delete_secret(&secret).await?;
            }
        }
        Ok(())
    }

    /// kube's `removeSecretReference`: a deleted token Secret leaves its account's `secrets`.
    async fn unreference(&self, secret: &Secret) -> Result<(), ServiceAccountTokensError> {
        let Some(account_name) = account_name(secret) else {
            return Ok(());
        };
        let namespace = secret.metadata.namespace.as_deref().unwrap_or_default();
        let secret_name = secret.metadata.name.as_deref().unwrap_or_default();
        let path = account_path(namespace, account_name);
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(mut account) = self.account(namespace, account_name).await? else {
                return Ok(());
            };
            if !uid_matches(secret, &account) || !without_reference(&mut account, secret_name) {
                return Ok(());
            }
            let body = serde_json::to_value(&account)?;
            let written = self
                .client
                .send(Method::PUT, &path, Some(("application/json", body)))
                .await;
            match written {
                Err(err) if err.reason == "Conflict" => continue,
                Err(err) if err.reason == "NotFound" => return Ok(()),
                Err(err) => {
                    let what = format!("removing secret {secret_name} from {path}");
                    return Err(api_error(what, err));
                }
                Ok(_) => return Ok(()),
            }
        }
        Ok(())
    }
}

async fn logged(work: impl std::future::Future<Output = Result<(), ServiceAccountTokensError>>) {
    if let Err(err) = work.await {
        tracing::warn!(%err, "service account tokens controller");
    }
}

fn api_error(what: String, source: ApiError) -> ServiceAccountTokensError {
    ServiceAccountTokensError::Api { what, source }
}

fn account_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
}

fn secret_path(secret: &Secret) -> String {
    let namespace = secret.metadata.namespace.as_deref().unwrap_or_default();
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    format!("/api/v1/namespaces/{namespace}/secrets/{name}")
}

fn annotation<'a>(secret: &'a Secret, key: &str) -> &'a str {
    let annotations = secret.metadata.annotations.as_ref();
    annotations
        .and_then(|a| a.get(key))
        .map_or("", String::as_str)
}

/// The service account a token Secret is for; None for other Secrets.
fn account_name(secret: &Secret) -> Option<&str> {
    let name = annotation(secret, SERVICE_ACCOUNT_NAME_ANNOTATION);
    let token = secret.type_.as_deref() == Some(SERVICE_ACCOUNT_TOKEN_TYPE);
    (token && !name.is_empty()).then_some(name)
}

/// kube's `IsServiceAccountToken`: a token Secret naming `account`, and its uid if any.
fn is_token_of(secret: &Secret, account: &ServiceAccount) -> bool {
    let named =
        account_name(secret).is_some_and(|name| account.metadata.name.as_deref() == Some(name));
    named && uid_matches(secret, account)
}

/// The Secret names no account uid, or `account`'s: it was not filled for an earlier account
/// of the same name.
fn uid_matches(secret: &Secret, account: &ServiceAccount) -> bool {
    let uid = annotation(secret, SERVICE_ACCOUNT_UID_ANNOTATION);
    uid.is_empty() || account.metadata.uid.as_deref() == Some(uid)
}

fn decide<'a>(
    secret: &Secret,
    account: Option<&'a ServiceAccount>,
    ca: Option<&str>,
) -> Decision<'a> {
    let Some(account) = account else {
        return Decision::Delete;
    };
    if !uid_matches(secret, account) {
        return Decision::Delete;
    }
    if needs_ca(secret, ca) || needs(secret, NAMESPACE_KEY) || needs(secret, TOKEN_KEY) {
        return Decision::Fill(account);
    }
    Decision::Keep
}

fn needs(secret: &Secret, key: &str) -> bool {
    secret_value(secret, key).is_empty()
}

fn needs_ca(secret: &Secret, ca: Option<&str>) -> bool {
    ca.is_some_and(|ca| !ca.is_empty() && secret_value(secret, CA_KEY) != ca.as_bytes())
}

/// `secret` with what it lacks for `account` and its annotations set (kube's
/// `generateTokenIfNeeded`); None when it lacks nothing.
fn filled(
    mut secret: Secret,
    account: &ServiceAccount,
    ca: Option<&str>,
    signer: &TokenSigner,
) -> Result<Option<Secret>, TokenError> {
    let needs_ca = needs_ca(&secret, ca);
    let (needs_namespace, needs_token) = (needs(&secret, NAMESPACE_KEY), needs(&secret, TOKEN_KEY));
    if !(needs_ca || needs_namespace || needs_token) {
        return Ok(None);
    }
    let secret_name = secret.metadata.name.clone().unwrap_or_default();
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let data = secret.data.get_or_insert_with(Default::default);
    if let (true, Some(ca)) = (needs_ca, ca) {
        data.insert(CA_KEY.to_owned(), ByteString(ca.as_bytes().to_vec()));
    }
    if needs_namespace {
        data.insert(NAMESPACE_KEY.to_owned(), ByteString(namespace.into_bytes()));
    }
    if needs_token {
        let token = legacy_token::sign(signer, account, &secret_name)?;
        data.insert(TOKEN_KEY.to_owned(), ByteString(token.into_bytes()));
    }
    let annotations = secret
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    let name = account.metadata.name.clone().unwrap_or_default();
    let uid = account.metadata.uid.clone().unwrap_or_default();
    annotations.insert(SERVICE_ACCOUNT_NAME_ANNOTATION.to_owned(), name);
    annotations.insert(SERVICE_ACCOUNT_UID_ANNOTATION.to_owned(), uid);
    Ok(Some(secret))
}

/// Takes `secret_name` out of the account's `secrets`; false when it was not there.
fn without_reference(account: &mut ServiceAccount, secret_name: &str) -> bool {
    let Some(secrets) = account.secrets.as_mut() else {
        return false;
    };
    let before = secrets.len();
    secrets.retain(|reference| reference.name.as_deref() != Some(secret_name));
    secrets.len() != before
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn account(uid: &str) -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some("robot".into()),
                namespace: Some("team".into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        }
    }

    fn token_secret(annotations: &[(&str, &str)], data: &[(&str, &str)]) -> Secret {
        let pairs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let data = pairs(data)
            .into_iter()
            .map(|(k, v)| (k, ByteString(v.into_bytes())))
            .collect();
        Secret {
            metadata: ObjectMeta {
                name: Some("robot-token".into()),
                namespace: Some("team".into()),
                annotations: Some(pairs(annotations)),
                ..ObjectMeta::default()
            },
            type_: Some(SERVICE_ACCOUNT_TOKEN_TYPE.into()),
            data: Some(data),
            ..Secret::default()
        }
    }

    const NAMED: (&str, &str) = (SERVICE_ACCOUNT_NAME_ANNOTATION, "robot");
    const COMPLETE: [(&str, &str); 3] = [("token", "t"), ("ca.crt", "CA"), ("namespace", "team")];

    #[test]
    fn secrets_of_gone_or_replaced_accounts_are_deleted() {
        let secret = token_secret(&[NAMED], &[]);
        assert_eq!(decide(&secret, None, Some("CA")), Decision::Delete);
        let filled_for_old =
            token_secret(&[NAMED, (SERVICE_ACCOUNT_UID_ANNOTATION, "old")], &COMPLETE);
        let account = account("new");
        assert_eq!(
            decide(&filled_for_old, Some(&account), Some("CA")),
            Decision::Delete
        );
        let filled_for_new =
            token_secret(&[NAMED, (SERVICE_ACCOUNT_UID_ANNOTATION, "new")], &COMPLETE);
        assert_eq!(
            decide(&filled_for_new, Some(&account), Some("CA")),
            Decision::Keep
        );
    }

    #[test]
    fn secrets_lacking_token_namespace_or_the_ca_are_filled() {
        let account = account("uid");
        for missing in ["token", "ca.crt", "namespace"] {
            let data: Vec<_> = COMPLETE
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            let secret = token_secret(&[NAMED], &data);
            assert_eq!(
                decide(&secret, Some(&account), Some("CA")),
                Decision::Fill(&account),
                "{missing}"
            );
        }
        let other_ca = token_secret(
            &[NAMED],
            &[("token", "t"), ("ca.crt", "X"), ("namespace", "team")],
        );
        assert_eq!(
            decide(&other_ca, Some(&account), Some("CA")),
            Decision::Fill(&account)
        );
        let no_ca = token_secret(&[NAMED], &[("token", "t"), ("namespace", "team")]);
        assert_eq!(decide(&no_ca, Some(&account), None), Decision::Keep);
    }

    #[test]
    fn filling_writes_what_lacks_and_names_the_account() {
        let signer = TokenSigner::ephemeral();
        let account = account("uid");
        let secret = token_secret(&[NAMED], &[("namespace", "mine")]);
        let complete = filled(secret, &account, Some("CA"), &signer)
            .unwrap()
            .unwrap();
        assert_eq!(secret_value(&complete, "namespace"), b"mine", "kept");
        assert_eq!(secret_value(&complete, "ca.crt"), b"CA");
        let token = std::str::from_utf8(secret_value(&complete, "token")).unwrap();
        let claims = legacy_token::verify(&signer, token).unwrap();
        assert_eq!(claims, legacy_token::claims(&account, "robot-token"));
        assert_eq!(annotation(&complete, SERVICE_ACCOUNT_UID_ANNOTATION), "uid");
        assert_eq!(
            filled(complete.clone(), &account, Some("CA"), &signer).unwrap(),
            None
        );
    }

    #[test]
    fn only_token_secrets_naming_the_account_and_its_uid_are_its_tokens() {
        let account = account("uid");
        assert!(is_token_of(&token_secret(&[NAMED], &[]), &account));
        let same_uid = token_secret(&[NAMED, (SERVICE_ACCOUNT_UID_ANNOTATION, "uid")], &[]);
        assert!(is_token_of(&same_uid, &account));
        let other_uid = token_secret(&[NAMED, (SERVICE_ACCOUNT_UID_ANNOTATION, "old")], &[]);
        assert!(!is_token_of(&other_uid, &account));
        let other = token_secret(&[(SERVICE_ACCOUNT_NAME_ANNOTATION, "other")], &[]);
        assert!(!is_token_of(&other, &account));
        let mut opaque = token_secret(&[NAMED], &[]);
        opaque.type_ = Some("Opaque".into());
        assert!(!is_token_of(&opaque, &account));
    }

    #[test]
    fn a_deleted_secret_leaves_the_accounts_references() {
        let mut account = account("uid");
        let reference = |name: &str| ObjectReference {
            name: Some(name.into()),
            ..ObjectReference::default()
        };
        account.secrets = Some(vec![reference("robot-token"), reference("pull")]);
        assert!(without_reference(&mut account, "robot-token"));
        assert_eq!(account.secrets, Some(vec![reference("pull")]));
        assert!(!without_reference(&mut account, "robot-token"));
    }
}
