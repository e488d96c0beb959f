//! kube's `GetDefaultClass`, shared by the DefaultStorageClass and DefaultIngressClass
//! admission plugins: of the classes marked default, the newest, by name when created together.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The name of the newest class whose metadata `is_default` accepts.
pub fn newest_default<'a>(
    classes: impl IntoIterator<Item = &'a ObjectMeta>,
    is_default: impl Fn(&ObjectMeta) -> bool,
) -> Option<String> {
    classes
        .into_iter()
        .filter(|meta| is_default(meta))
        .max_by(|a, b| {
            let created = |m: &ObjectMeta| m.creation_timestamp.clone().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| b.name.cmp(&a.name))
        })
        .and_then(|meta| meta.name.clone())
}
