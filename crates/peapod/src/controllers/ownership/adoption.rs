//! `ClaimObjects` with its I/O: the adopt and release patches sent through the API, the
//! owner re-read once before the first adoption, and the objects the controller manages.

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

use super::claims::{self, Claim, ClaimError};
use peapod_api::selector::LabelSelector as Selector;

#[derive(Debug, thiserror::Error)]
pub enum AdoptionError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Claim(#[from] ClaimError),
}

/// The candidates `owner` owns or adopts (as the API returned them after the adoption),
/// releasing the ones it owns that no longer match `selector`.
pub async fn claim_all<K, O>(
    owner: &K,
    selector: &Selector,
    candidates: &[&O],
    api: &Api<O>,
) -> Result<Vec<O>, AdoptionError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    O: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let mut claimed = Vec::new();
    let mut rechecked = false;
    for object in candidates {
        match claims::claim(owner, selector, *object) {
            Claim::Owned => claimed.push((*object).clone()),
            Claim::Adopt(patch) => {
                if !rechecked {
                    recheck(owner, *object, api.clone().into_client()).await?;
                    rechecked = true;
                }
                match patch_object(api, *object, patch).await {
                    Ok(adopted) => claimed.push(adopted),
                    Err(kube::Error::Api(status))
                        if claims::adoption_failure_ignored(status.code) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Claim::Release(patch) => match patch_object(api, *object, patch).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if claims::release_failure_ignored(status.code) => {}
                Err(err) => return Err(err.into()),
            },
            Claim::Ignore => {}
        }
    }
    Ok(claimed)
}

/// `RecheckDeletionTimestamp`: a fresh read of the owner before the first adoption.
async fn recheck<K, O>(owner: &K, object: &O, client: kube::Client) -> Result<(), ClaimError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    O: Resource<DynamicType = ()>,
{
    let namespace = owner.namespace().unwrap_or_default();
    let owners = Api::<K>::namespaced(client, &namespace);
    let fresh = owners
        .get(&owner.name_any())
        .await
        .map_err(|err| ClaimError::Recheck(err.to_string()));
    let allowed = fresh.and_then(|fresh| claims::can_adopt(owner, &fresh));
    allowed.map_err(|reason| claims::cannot_adopt(object, reason))
}

async fn patch_object<O>(api: &Api<O>, object: &O, patch: serde_json::Value) -> kube::Result<O>
where
    O: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let params = PatchParams::default();
    api.patch(&object.name_any(), &params, &Patch::Strategic(patch))
        .await
}
