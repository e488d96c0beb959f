//! The store's error type, worded like the Kubernetes API server's status messages.

use std::path::PathBuf;

/// Everything a store operation can fail with.
///
/// `kind` is the qualified API resource (`pods`, `deployments.apps`), as in the API server's
/// messages and `Status.details`; `namespace` is empty for cluster-scoped objects.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} \"{name}\" not found")]
    NotFound {
        kind: String,
        namespace: String,
        name: String,
    },
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists {
        kind: String,
        namespace: String,
        name: String,
    },
    #[error(
        "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified; \
         please apply your changes to the latest version and try again"
    )]
    Conflict {
        kind: String,
        namespace: String,
        name: String,
    },
    /// A delete precondition (uid or resourceVersion) did not match the stored object.
    #[error(
        "Operation cannot be fulfilled on {kind} \"{name}\": StorageError: invalid object, \
         Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: {message}"
    )]
    PreconditionFailed {
        kind: String,
        namespace: String,
        name: String,
        key: String,
        message: String,
    },
    #[error("{kind} \"{name}\" is invalid: {message}")]
    Invalid {
        kind: String,
        name: String,
        message: String,
    },
    /// A watch asked for (or fell behind to) changes older than the kept history; the caller
    /// must list and watch again. `oldest` is the oldest revision a watch can start from.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
    /// A list's continue token could not be decoded.
    #[error("{message}")]
    BadContinue { message: String },
    /// A list's continue token names a revision older than the kept history, so the list
    /// cannot go on consistently (etcd's compaction); `continue_token` goes on from the same
    /// place at the latest revision.
    #[error(
        "The provided continue parameter is too old to display a consistent list result. \
         You can start a new list without the continue parameter, or use the continue token \
         in this response to retrieve the remainder of the results. Continuing with the \
         provided token results in an inconsistent list - objects that were created, \
         modified, or deleted between the time the first chunk was returned and now may show \
         up in the list."
    )]
    ContinueExpired { continue_token: String },
    #[error("opening store database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("restricting store database file {path}: {source}")]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("encoding object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("decoding stored {kind} \"{namespace}/{name}\": {source}")]
    Decode {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// The HTTP status code the API server answers this error with.
    pub fn code(&self) -> u16 {
        match self {
            StoreError::NotFound { .. } => 404,
            StoreError::AlreadyExists { .. }
            | StoreError::Conflict { .. }
            | StoreError::PreconditionFailed { .. } => 409,
            StoreError::Invalid { .. } => 422,
            StoreError::Expired { .. } | StoreError::ContinueExpired { .. } => 410,
            StoreError::BadContinue { .. } => 400,
            _ => 500,
        }
    }

    /// The `Status.reason` the API server reports for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "NotFound",
            StoreError::AlreadyExists { .. } => "AlreadyExists",
            StoreError::Conflict { .. } | StoreError::PreconditionFailed { .. } => "Conflict",
            StoreError::Invalid { .. } => "Invalid",
            StoreError::Expired { .. } | StoreError::ContinueExpired { .. } => "Expired",
            StoreError::BadContinue { .. } => "BadRequest",
            _ => "InternalError",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (String, String, String) {
        ("pods".into(), "default".into(), "web".into())
    }

    #[test]
    fn messages_match_the_api_server() {
        let (kind, namespace, name) = key();
        let not_found = StoreError::NotFound {
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        assert_eq!(not_found.to_string(), r#"pods "web" not found"#);
        let exists = StoreError::AlreadyExists {
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        assert_eq!(exists.to_string(), r#"pods "web" already exists"#);
        let conflict = StoreError::Conflict {
            kind,
            namespace,
            name,
        };
        assert_eq!(
            conflict.to_string(),
            "Operation cannot be fulfilled on pods \"web\": the object has been modified; \
             please apply your changes to the latest version and try again"
        );
    }

    #[test]
    fn codes_and_reasons() {
        let (kind, namespace, name) = key();
        let conflict = StoreError::Conflict {
            kind,
            namespace,
            name,
        };
        assert_eq!((conflict.code(), conflict.reason()), (409, "Conflict"));
        let expired = StoreError::Expired {
            requested: 3,
            oldest: 10,
        };
        assert_eq!((expired.code(), expired.reason()), (410, "Expired"));
        assert_eq!(expired.to_string(), "too old resource version: 3 (10)");
        let bad = StoreError::BadContinue {
            message: "continue key is not valid: x".into(),
        };
        assert_eq!((bad.code(), bad.reason()), (400, "BadRequest"));
    }

    #[test]
    fn precondition_failures_are_conflicts_worded_like_kube() {
        let (kind, namespace, name) = key();
        let failed = StoreError::PreconditionFailed {
            kind,
            namespace,
            name,
            key: "/registry/pods/default/web".into(),
            message: "Precondition failed: UID in precondition: a, UID in object meta: b".into(),
        };
        assert_eq!((failed.code(), failed.reason()), (409, "Conflict"));
        assert_eq!(
            failed.to_string(),
            "Operation cannot be fulfilled on pods \"web\": StorageError: invalid object, \
             Code: 4, Key: /registry/pods/default/web, ResourceVersion: 0, \
             AdditionalErrorMsg: Precondition failed: UID in precondition: a, UID in object meta: b"
        );
    }
}
