//! Lists of raw objects: filtering by a caller's predicate and paging with kube's `limit` and
//! opaque `continue` tokens.

use std::ops::ControlFlow;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::{self, Row};
use crate::key::ResourceKey;
use crate::StoreError;

/// A filter on whole objects, e.g. built from label and field selectors.
pub type Predicate = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// What to list.
#[derive(Clone, Default)]
pub struct ListOptions {
    /// One namespace, or all when `None` (ignored for cluster-scoped kinds).
    pub namespace: Option<String>,
    pub predicate: Option<Predicate>,
    /// At most this many items (0 or `None`: all).
    pub limit: Option<usize>,
    /// The `continue_token` of the previous page.
    pub continue_token: Option<String>,
}

impl std::fmt::Debug for ListOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListOptions")
            .field("namespace", &self.namespace)
            .field("predicate", &self.predicate.as_ref().map(|_| "<fn>"))
            .field("limit", &self.limit)
            .field("continue_token", &self.continue_token)
            .finish()
    }
}

/// One page of objects, sorted by namespace then name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawList {
    pub items: Vec<Value>,
    /// The list's revision; later pages report the first page's, as kube-apiserver does.
    pub resource_version: u64,
    /// Set when more matching objects follow: pass it back for the next page.
    pub continue_token: Option<String>,
    /// Objects after this page, known only for lists without a predicate (as in kube).
    pub remaining_item_count: Option<i64>,
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// Where a paged list goes on: its revision and the last object returned.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    namespace: String,
    name: String,
}

impl ContinueToken {
    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a token serializes");
        URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(token: &str) -> Result<ContinueToken, StoreError> {
        let invalid = |detail: &dyn std::fmt::Display| StoreError::BadContinue {
            message: format!("continue key is not valid: {detail}"),
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|err| invalid(&err))?;
        let token: ContinueToken = serde_json::from_slice(&bytes).map_err(|err| invalid(&err))?;
        if token.v != TOKEN_VERSION {
            return Err(invalid(&"server does not recognize this encoded version"));
        }
        if token.rv == 0 {
            return Err(invalid(&format_args!(
                "incorrect encoded start resourceVersion (version {TOKEN_VERSION})"
            )));
        }
        if token.name.is_empty() {
            return Err(invalid(&format_args!(
                "encoded start key empty (version {TOKEN_VERSION})"
            )));
        }
        Ok(token)
    }
}

/// Reads one page of `options` with `conn`, which should be in one read transaction.
pub(crate) fn read_page(
    conn: &Connection,
    ty: &ResourceKey,
    options: &ListOptions,
) -> Result<RawList, StoreError> {
    let token = options
        .continue_token
        .as_deref()
        .filter(|token| !token.is_empty())
        .map(ContinueToken::decode)
        .transpose()?;
    let namespace = ty.namespace_filter(options.namespace.as_deref());
    let resource_version = match &token {
        Some(token) => token.rv,
        None => db::revision(conn)?,
    };
    let after = token
        .as_ref()
        .map(|t| (t.namespace.as_str(), t.name.as_str()));
    let limit = options.limit.filter(|&limit| limit > 0);
    let (rows, more) = matching_rows(conn, ty, namespace.as_deref(), after, options, limit)?;
    let mut list = RawList {
        items: Vec::new(),
        resource_version,
        continue_token: None,
        remaining_item_count: None,
    };
    if let (true, Some(last)) = (more, rows.last()) {
        let last = (last.key.namespace.as_str(), last.key.name.as_str());
        list.continue_token = Some(
            ContinueToken {
                v: TOKEN_VERSION.into(),
                rv: resource_version,
                namespace: last.0.into(),
                name: last.1.into(),
            }
            .encode(),
        );
        if options.predicate.is_none() {
            let remaining = db::count_after(conn, ty, namespace.as_deref(), last)?;
            list.remaining_item_count = Some(remaining as i64);
        }
    }
    list.items = rows.into_iter().map(|row| row.value).collect();
    Ok(list)
}

/// Up to `limit` rows after `after` that match the predicate, and whether another one follows.
fn matching_rows(
    conn: &Connection,
    ty: &ResourceKey,
    namespace: Option<&str>,
    after: Option<(&str, &str)>,
    options: &ListOptions,
    limit: Option<usize>,
) -> Result<(Vec<Row>, bool), StoreError> {
    let mut rows = Vec::new();
    let mut more = false;
    db::scan(conn, ty, namespace, after, |row| {
        if !options
            .predicate
            .as_ref()
            .is_none_or(|keep| keep(&row.value))
        {
            return ControlFlow::Continue(());
        }
        if limit.is_some_and(|limit| rows.len() == limit) {
            more = true;
            return ControlFlow::Break(());
        }
        rows.push(row);
        ControlFlow::Continue(())
    })?;
    Ok((rows, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(rv: u64, name: &str) -> ContinueToken {
        ContinueToken {
            v: TOKEN_VERSION.into(),
            rv,
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn tokens_round_trip() {
        let encoded = token(7, "web").encode();
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ContinueToken::decode(&encoded).unwrap(), token(7, "web"));
    }

    #[test]
    fn malformed_tokens_are_bad_requests() {
        let message = |token: &str| match ContinueToken::decode(token) {
            Err(StoreError::BadContinue { message }) => message,
            other => panic!("expected BadContinue, got {other:?}"),
        };
        assert!(message("!!!").starts_with("continue key is not valid: "));
        assert!(message(&URL_SAFE_NO_PAD.encode("{")).starts_with("continue key is not valid: "));
        assert!(message(&token(0, "web").encode()).contains("start resourceVersion"));
        assert!(message(&token(3, "").encode()).contains("start key empty"));
        let mut other = token(3, "web");
        other.v = "v2".into();
        assert!(message(&other.encode()).contains("does not recognize"));
    }
}
