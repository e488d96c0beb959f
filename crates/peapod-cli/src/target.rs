//! Which pods a verb's positional arguments name: `pods`, `pod NAME...`, `pod/NAME...`.

/// Why the arguments name no pods.
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

/// The names given (empty: the verb applies to every pod it lists).
pub fn pod_names(verb: &'static str, args: &[String]) -> Result<Vec<String>, TargetError> {
    let Some(first) = args.first() else {
        return Err(TargetError::Missing);
    };
    if first.contains('/') {
        return args.iter().map(|a| slash_form(a)).collect();
    }
    check_type(first)?;
    let names = &args[1..];
    if names.iter().any(|n| n.contains('/')) {
        return Err(TargetError::MixedForms { verb });
    }
    Ok(names.to_vec())
}

/// One pod as logs and exec take it: `NAME` or `pod/NAME`.
pub fn single_pod(arg: &str) -> Result<String, TargetError> {
    if arg.contains('/') {
        slash_form(arg)
    } else {
        Ok(arg.to_string())
    }
}

fn slash_form(arg: &str) -> Result<String, TargetError> {
    match arg.split_once('/') {
        Some((kind, name)) if !name.is_empty() && !name.contains('/') => {
            check_type(kind)?;
            Ok(name.to_string())
        }
        _ => Err(TargetError::BadSlashForm(arg.to_string())),
    }
}

fn check_type(kind: &str) -> Result<(), TargetError> {
    match kind.to_ascii_lowercase().as_str() {
        "pods" | "pod" | "po" => Ok(()),
        _ => Err(TargetError::UnknownType(kind.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn type_then_names() {
        assert_eq!(
            pod_names("get", &args(&["pods"])).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            pod_names("get", &args(&["po", "a", "b"])).unwrap(),
            args(&["a", "b"])
        );
        assert_eq!(
            pod_names("get", &args(&["Pod", "a"])).unwrap(),
            args(&["a"])
        );
    }

    #[test]
    fn slash_forms() {
        assert_eq!(
            pod_names("get", &args(&["pod/a", "pods/b"])).unwrap(),
            args(&["a", "b"])
        );
        assert_eq!(single_pod("pod/web").unwrap(), "web");
        assert_eq!(single_pod("web").unwrap(), "web");
    }

    #[test]
    fn rejects_other_types_and_mixed_forms() {
        assert_eq!(
            pod_names("get", &args(&["svc"])).unwrap_err().to_string(),
            "the server doesn't have a resource type \"svc\""
        );
        assert_eq!(
            single_pod("deployment/web").unwrap_err(),
            TargetError::UnknownType("deployment".into())
        );
        assert!(matches!(
            pod_names("delete", &args(&["pod", "pod/a"])),
            Err(TargetError::MixedForms { verb: "delete" })
        ));
        assert!(matches!(
            pod_names("get", &args(&["pod/a", "b"])),
            Err(TargetError::BadSlashForm(_))
        ));
        assert_eq!(pod_names("get", &[]), Err(TargetError::Missing));
    }
}
