//! What a verb's positional arguments name, kubectl's forms: `TYPE[,TYPE...] [NAME...]` or
//! `TYPE/NAME...`; each type resolved through discovery (a type named twice is asked once).
//! logs and exec take one pod.

use crate::resource::{ApiResource, Discovery};

/// Why the arguments name nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the server doesn't have a resource type \"{0}\"")]
    UnknownType(String),
    #[error("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'peapod {verb} resource/<resource_name>' instead of 'peapod {verb} resource resource/<resource_name>')")]
    MixedForms { verb: &'static str },
    #[error("arguments in resource/name form must have a single resource and name: \"{0}\"")]
    BadSlashForm(String),
    #[error("you must provide a resource type, e.g. pods")]
    Missing,
}

/// One type as written and the names asked of it (none: the verb lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub type_name: String,
    pub names: Vec<String>,
}

/// A resolved type and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub resource: ApiResource,
    pub names: Vec<String>,
}

/// The types and names in `args`, in the order given.
pub fn parse(verb: &'static str, args: &[String]) -> Result<Vec<Requested>, TargetError> {
    let Some(first) = args.first() else {
        return Err(TargetError::Missing);
    };
    if first.contains('/') {
        let mut requested: Vec<Requested> = Vec::new();
        for arg in args {
            let (type_name, name) = slash_form(arg)?;
            match requested.iter_mut().find(|r| r.type_name == type_name) {
                Some(same) => same.names.push(name),
                None => requested.push(Requested {
                    type_name,
                    names: vec![name],
                }),
            }
        }
        return Ok(requested);
    }
    let names = &args[1..];
    if names.iter().any(|n| n.contains('/')) {
        return Err(TargetError::MixedForms { verb });
    }
    let requested = first
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|type_name| Requested {
            type_name: type_name.to_string(),
            names: names.to_vec(),
        })
        .collect::<Vec<_>>();
    if requested.is_empty() {
        return Err(TargetError::Missing);
    }
    Ok(requested)
}

/// Each requested type as discovery knows it; a category (`all`) stands for its types.
pub fn resolve(
    discovery: &Discovery,
    requested: Vec<Requested>,
) -> Result<Vec<Selected>, TargetError> {
    let mut selected: Vec<Selected> = Vec::new();
    for Requested { type_name, names } in requested {
        let found: Vec<&ApiResource> = match discovery.resolve(&type_name) {
            Some(resource) => vec![resource],
            None if names.is_empty() => discovery.category(&type_name),
            None => Vec::new(),
        };
        if found.is_empty() {
            let resource = type_name.split('.').next().unwrap_or_default();
            return Err(TargetError::UnknownType(resource.to_string()));
        }
        for resource in found {
            match selected.iter_mut().find(|s| s.resource == *resource) {
                Some(same) => same.names.extend(names.iter().cloned()),
                None => selected.push(Selected {
                    resource: resource.clone(),
                    names: names.clone(),
                }),
            }
        }
    }
    Ok(selected)
}

/// One pod as logs and exec take it: `NAME` or `pod/NAME`.
pub fn single_pod(arg: &str) -> Result<String, TargetError> {
    if !arg.contains('/') {
        return Ok(arg.to_string());
    }
    let (kind, name) = slash_form(arg)?;
    match kind.to_ascii_lowercase().as_str() {
        "pods" | "pod" | "po" => Ok(name),
        _ => Err(TargetError::UnknownType(kind)),
    }
}

fn slash_form(arg: &str) -> Result<(String, String), TargetError> {
    match arg.split_once('/') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((kind.to_string(), name.to_string()))
        }
        _ => Err(TargetError::BadSlashForm(arg.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::discovery;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn names(selected: &[Selected]) -> Vec<(&str, Vec<&str>)> {
        selected
            .iter()
            .map(|s| {
                let names = s.names.iter().map(String::as_str).collect();
                (s.resource.plural.as_str(), names)
            })
            .collect()
    }

    fn select(list: &[&str]) -> Result<Vec<Selected>, TargetError> {
        resolve(&discovery(), parse("get", &args(list))?)
    }

    #[test]
    fn types_then_names() {
        assert_eq!(names(&select(&["pods"]).unwrap()), [("pods", vec![])]);
        assert_eq!(
            names(&select(&["po", "a", "b"]).unwrap()),
            [("pods", vec!["a", "b"])]
        );
        assert_eq!(
            names(&select(&["Pod,cm", "a"]).unwrap()),
            [("pods", vec!["a"]), ("configmaps", vec!["a"])]
        );
        assert_eq!(names(&select(&["all"]).unwrap()), [("pods", vec![])]);
    }

    #[test]
    fn slash_forms_group_by_type() {
        assert_eq!(
            names(&select(&["pod/a", "cm/c", "pods/b"]).unwrap()),
            [("pods", vec!["a", "b"]), ("configmaps", vec!["c"])]
        );
        assert_eq!(single_pod("pod/web").unwrap(), "web");
        assert_eq!(single_pod("web").unwrap(), "web");
    }

    #[test]
    fn rejects_unknown_types_and_mixed_forms() {
        assert_eq!(
            select(&["svc"]).unwrap_err().to_string(),
            "the server doesn't have a resource type \"svc\""
        );
        assert_eq!(
            select(&["foo.bar"]).unwrap_err(),
            TargetError::UnknownType("foo".into())
        );
        assert_eq!(
            single_pod("deployment/web").unwrap_err(),
            TargetError::UnknownType("deployment".into())
        );
        assert!(matches!(
            parse("delete", &args(&["pod", "pod/a"])),
            Err(TargetError::MixedForms { verb: "delete" })
        ));
        assert!(matches!(
            parse("get", &args(&["pod/a", "b"])),
            Err(TargetError::BadSlashForm(_))
        ));
        assert_eq!(parse("get", &[]), Err(TargetError::Missing));
    }
}
