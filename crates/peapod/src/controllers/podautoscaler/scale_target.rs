//! An HPA's target found through discovery as kube's REST mapper and scale client find it:
//! the kind's resource in each version its group serves (the preferred first), then the first
//! of those whose scale subresource answers.

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};

use crate::controllers::api_errors::error_message;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// `schema.ParseGroupVersion`'s refusal.
    #[error("unexpected GroupVersion string: {0}")]
    GroupVersion(String),
    /// The REST mapper's `NoKindMatchError`.
    #[error("no matches for kind {kind:?} in group {group:?}")]
    NoKindMatch { kind: String, group: String },
    #[error("unrecognized resource")]
    Unrecognized,
    #[error("{}", error_message(.0))]
    Api(#[from] kube::Error),
}

/// The target's resource and its scale.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: ApiResource,
    pub scale: Scale,
}

/// `schema.ParseGroupVersion`: "" and "v1" are the core group.
pub fn parse_group_version(api_version: &str) -> Result<(String, String), TargetError> {
    match api_version.split('/').collect::<Vec<_>>()[..] {
        [""] => Ok((String::new(), String::new())),
        [version] => Ok((String::new(), version.to_owned())),
        [group, version] => Ok((group.to_owned(), version.to_owned())),
        _ => Err(TargetError::GroupVersion(api_version.to_owned())),
    }
}

/// `RESTMappings` of the reference's group and kind: one resource per served version.
pub async fn mappings(
    client: &Client,
    reference: &CrossVersionObjectReference,
) -> Result<Vec<ApiResource>, TargetError> {
    let (group, _) = parse_group_version(reference.api_version.as_deref().unwrap_or_default())?;
    let versions = if group.is_empty() {
        client.list_core_api_versions().await?.versions
    } else {
        let groups = client.list_api_groups().await?.groups;
        let served = groups.into_iter().find(|g| g.name == group);
        served.map_or_else(Vec::new, |g| {
            let preferred = g.preferred_version.map(|v| v.version);
            let mut versions: Vec<String> = g.versions.into_iter().map(|v| v.version).collect();
            versions.sort_by_key(|v| Some(v) != preferred.as_ref());
            versions
        })
    };
    let mut found = Vec::new();
    for version in versions {
        let gvk = GroupVersionKind::gvk(&group, &version, &reference.kind);
        let resources = if group.is_empty() {
            client.list_core_api_resources(&version).await?
        } else {
            client.list_api_group_resources(&gvk.api_version()).await?
        };
        let resource = resources
            .resources
            .iter()
            .find(|r| r.kind == reference.kind && !r.name.contains('/'));
        if let Some(resource) = resource {
            found.push(ApiResource::from_gvk_with_plural(&gvk, &resource.name));
        }
    }
    if found.is_empty() {
        return Err(TargetError::NoKindMatch {
            kind: reference.kind.clone(),
            group,
        });
    }
    Ok(found)
}

/// `scaleForResourceMappings`: the first mapping whose scale answers; else the first error.
pub async fn scale_for_mappings(
    client: &Client,
    namespace: &str,
    name: &str,
    mappings: Vec<ApiResource>,
) -> Result<Target, TargetError> {
    let mut first_error = None;
    for resource in mappings {
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
        match api.get_scale(name).await {
            Ok(scale) => return Ok(Target { resource, scale }),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(first_error.map_or(TargetError::Unrecognized, TargetError::Api))
}

/// Writes the scale of the target `name` in `namespace` with `replicas`.
pub async fn update_scale(
    client: &Client,
    target: &Target,
    (namespace, name): (&str, &str),
    replicas: i32,
) -> Result<Scale, TargetError> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &target.resource);
    let mut scale = target.scale.clone();
    scale.spec.get_or_insert_default().replicas = Some(replicas);
    Ok(api
        .replace_scale(name, &PostParams::default(), &scale)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_versions_parse_as_kube_s() {
        let parsed = |text| parse_group_version(text).ok();
        assert_eq!(parsed(""), Some((String::new(), String::new())));
        assert_eq!(parsed("v1"), Some((String::new(), "v1".into())));
        assert_eq!(parsed("apps/v1"), Some(("apps".into(), "v1".into())));
        let err = parse_group_version("a/b/c").unwrap_err();
        assert_eq!(err.to_string(), "unexpected GroupVersion string: a/b/c");
    }
}
