//! Lists of raw objects: filtering by a caller's predicate and paging with kube's `limit` and
//! opaque `continue` tokens, every page read at the first page's revision.

use std::ops::ControlFlow;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db;
use crate::history::History;
use crate::key::ResourceKey;
use crate::snapshot::{Changed, ListKey, Rewind};
use crate::watch::WatchFilter;
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
    /// The list's revision; later pages are read at the first page's, as kube-apiserver does.
    pub resource_version: u64,
    /// Set when more matching objects follow: pass it back for the next page.
    pub continue_token: Option<String>,
    /// Objects after this page, known only for lists without a predicate (as in kube).
    pub remaining_item_count: Option<i64>,
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// Where a paged list goes on: its revision and the last object returned. A negative revision
/// goes on at the latest one (kube's token for an inconsistent continuation).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    namespace: String,
    name: String,
}

impl ContinueToken {
    fn new(rv: i64, (namespace, name): (&str, &str)) -> ContinueToken {
        ContinueToken {
            v: TOKEN_VERSION.into(),
            rv,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

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

    /// The revision the list is read at: the token's, or the latest (`current`).
    fn revision(&self, current: u64) -> u64 {
        u64::try_from(self.rv).unwrap_or(current)
    }

    fn after(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }

    /// kube's answer to a token older than the kept history: 410 with a token that goes on
    /// from the same place at the latest revision.
    fn expired(&self) -> StoreError {
        StoreError::ContinueExpired {
            continue_token: ContinueToken::new(-1, self.after()).encode(),
        }
    }
}

/// Reads one page of `options` with `conn`, which should be in one read transaction. Later
/// pages show the objects as they were at the first page's revision, rewound with `history`.
pub(crate) fn read_page(
    conn: &Connection,
    history: &History,
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
    let current = db::revision(conn)?;
    let resource_version = token.as_ref().map_or(current, |t| t.revision(current));
    let rewind = match &token {
        Some(token) if resource_version < current => {
            let filter = WatchFilter {
                type_key: ty.storage_kind().to_owned(),
                namespace: namespace.clone(),
            };
            rewind_to(token, history, &filter, current)?
        }
        _ => Rewind::default(),
    };
    let source = Source {
        conn,
        ty,
        namespace: namespace.as_deref(),
        rewind: &rewind,
    };
    let mut page = Page {
        predicate: options.predicate.as_ref(),
        limit: options.limit.filter(|&limit| limit > 0),
        items: Vec::new(),
        more: false,
    };
    source.fill(token.as_ref().map(ContinueToken::after), &mut page)?;
    let mut list = RawList {
        items: Vec::new(),
        resource_version,
        continue_token: None,
        remaining_item_count: None,
    };
    if let (true, Some((last, _))) = (page.more, page.items.last()) {
        let last = (last.0.as_str(), last.1.as_str());
        list.continue_token = Some(ContinueToken::new(resource_version as i64, last).encode());
        if options.predicate.is_none() {
            list.remaining_item_count = Some(source.count_after(last)?);
        }
    }
    list.items = page.items.into_iter().map(|(_, value)| value).collect();
    Ok(list)
}

/// What to undo of the changes `filter` wants since `token`'s revision up to `current`; 410
/// with an inconsistent token when the history no longer reaches back to it.
fn rewind_to(
    token: &ContinueToken,
    history: &History,
    filter: &WatchFilter,
    current: u64,
) -> Result<Rewind, StoreError> {
    let since = token.revision(current);
    match history.changes_between(filter, since, current) {
        Ok(changes) => Ok(Rewind::new(&changes)),
        Err(StoreError::Expired { .. }) => Err(token.expired()),
        Err(err) => Err(err),
    }
}

/// The objects a list reads: the stored rows of one kind (and namespace), rewound to the
/// list's revision.
struct Source<'a> {
    conn: &'a Connection,
    ty: &'a ResourceKey,
    namespace: Option<&'a str>,
    rewind: &'a Rewind,
}

impl Source<'_> {
    /// Offers `page` the objects after `after` in list order, the stored rows merged with the
    /// rewound ones, until it is full.
    fn fill(&self, after: Option<(&str, &str)>, page: &mut Page<'_>) -> Result<(), StoreError> {
        let mut changed = self.rewind.after(after).peekable();
        db::scan(self.conn, self.ty, self.namespace, after, |row| {
            let key = (row.key.namespace, row.key.name);
            while let Some((earlier, rewound)) = changed.next_if(|(changed, _)| **changed < key) {
                page.offer_rewound(earlier, rewound)?;
            }
            match changed.next_if(|(changed, _)| **changed == key) {
                Some((_, rewound)) => page.offer_rewound(&key, rewound),
                None => page.offer(key, row.value),
            }
        })?;
        for (key, rewound) in changed {
            if page.more || page.offer_rewound(key, rewound).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// How many objects come after `after` at the list's revision.
    fn count_after(&self, after: (&str, &str)) -> Result<i64, StoreError> {
        let now = db::count_after(self.conn, self.ty, self.namespace, after)? as i64;
        Ok(now + self.rewind.count_difference_after(after))
    }
}

/// One page being filled: up to `limit` objects that match the predicate, and whether another
/// one follows.
struct Page<'a> {
    predicate: Option<&'a Predicate>,
    limit: Option<usize>,
    items: Vec<(ListKey, Value)>,
    more: bool,
}

impl Page<'_> {
    /// Takes `value` if it matches; breaks on the first match past a full page.
    fn offer(&mut self, key: ListKey, value: Value) -> ControlFlow<()> {
        if !self.predicate.is_none_or(|keep| keep(&value)) {
            return ControlFlow::Continue(());
        }
        if self.limit.is_some_and(|limit| self.items.len() == limit) {
            self.more = true;
            return ControlFlow::Break(());
        }
        self.items.push((key, value));
        ControlFlow::Continue(())
    }

    /// Takes a changed object as it was at the list's revision, if it existed then.
    fn offer_rewound(&mut self, key: &ListKey, changed: &Changed) -> ControlFlow<()> {
        match &changed.then {
            Some(then) => self.offer(key.clone(), then.clone()),
            None => ControlFlow::Continue(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(rv: i64, name: &str) -> ContinueToken {
        ContinueToken::new(rv, ("default", name))
    }

    #[test]
    fn tokens_round_trip() {
        let encoded = token(7, "web").encode();
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ContinueToken::decode(&encoded).unwrap(), token(7, "web"));
        let latest = ContinueToken::decode(&token(-1, "web").encode()).unwrap();
        assert_eq!(latest.revision(12), 12);
        assert_eq!(token(7, "web").revision(12), 7);
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
