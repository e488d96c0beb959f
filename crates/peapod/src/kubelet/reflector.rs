//! client-go's reflector over the API: a list, then a watch from the list's resourceVersion
//! that resumes from the last version seen whenever it ends, and a fresh list once that
//! version has expired (410) or listing failed.

use std::time::Duration;

use axum::http::StatusCode;
use peapod_apiserver::client::{LocalClient, Watch, WatchError};
use peapod_apiserver::status::ApiError;
use serde_json::Value;

/// How long the reflector waits after a failed request before the next one.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the reflector saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// Every object of the selection, after a (re)list.
    Listed(Vec<Value>),
    /// An object added to the selection, or changed in it.
    Changed(Value),
    /// An object deleted, or gone from the selection (as it is now).
    Deleted(Value),
}

#[derive(Debug, thiserror::Error)]
pub enum ReflectorError {
    #[error("listing {path}: {source}")]
    List {
        path: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error("the list of {path} has no resourceVersion")]
    NoResourceVersion { path: String },
    #[error("watching {path}: {source}")]
    Watch {
        path: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error(transparent)]
    Stream(#[from] WatchError),
}

/// A list and watch of one collection under one field selector.
pub struct Reflector {
    client: LocalClient,
    /// The collection's URL with its selector, e.g. `/api/v1/pods?fieldSelector=...`.
    list_path: String,
    /// The version to resume from; None when the next step lists.
    resource_version: Option<String>,
    watch: Option<Watch>,
}

impl Reflector {
    pub fn new(client: LocalClient, collection: &str, field_selector: &str) -> Reflector {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("fieldSelector", field_selector)
            .finish();
        Reflector {
            client,
            list_path: format!("{collection}?{query}"),
            resource_version: None,
            watch: None,
        }
    }

    /// The next change. Failures are retried after a pause, as client-go's reflector does.
    pub async fn next(&mut self) -> Delta {
        loop {
            match self.step().await {
                Ok(Some(delta)) => return delta,
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(%err, path = %self.list_path, "list and watch; retrying");
                    self.watch = None;
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    /// One list, or one watch event (None for a bookmark, an ended or expired watch).
    async fn step(&mut self) -> Result<Option<Delta>, ReflectorError> {
        let Some(version) = self.resource_version.clone() else {
            return self.list().await.map(Some);
        };
        if self.watch.is_none() {
            match self.client.watch(&self.watch_path(&version)).await {
                Ok(watch) => self.watch = Some(watch),
                Err(err) => return self.watch_failed(err),
            }
        }
        let watch = self.watch.as_mut().expect("opened above");
        let Some(event) = watch.next().await else {
            self.watch = None;
            return Ok(None);
        };
        let event = event?;
        if let Some(err) = event.error() {
            self.watch = None;
            return self.watch_failed(err);
        }
        if let Some(version) = resource_version(&event.object) {
            self.resource_version = Some(version.to_owned());
        }
        Ok(match event.kind.as_str() {
            "ADDED" | "MODIFIED" => Some(Delta::Changed(event.object)),
            "DELETED" => Some(Delta::Deleted(event.object)),
            _ => None,
        })
    }

    async fn list(&mut self) -> Result<Delta, ReflectorError> {
        let path = &self.list_path;
        let mut list = self
            .client
            .get(path)
            .await
            .map_err(|source| ReflectorError::List {
                path: path.clone(),
                source: Box::new(source),
            })?;
        let version = resource_version(&list)
            .ok_or_else(|| ReflectorError::NoResourceVersion { path: path.clone() })?;
        self.resource_version = Some(version.to_owned());
        Ok(match list["items"].take() {
            Value::Array(items) => Delta::Listed(items),
            _ => Delta::Listed(Vec::new()),
        })
    }

    /// A watch refused or ended in error: 410 means the version is gone and the next step
    /// lists; anything else is a failure to retry.
    fn watch_failed(&mut self, err: ApiError) -> Result<Option<Delta>, ReflectorError> {
        if err.code == StatusCode::GONE {
            tracing::debug!(path = %self.list_path, "watch expired; listing again");
            self.resource_version = None;
            return Ok(None);
        }
        Err(ReflectorError::Watch {
            path: self.list_path.clone(),
            source: Box::new(err),
        })
    }

    fn watch_path(&self, version: &str) -> String {
        format!(
            "{}&watch=true&allowWatchBookmarks=true&resourceVersion={version}",
            self.list_path
        )
    }
}

fn resource_version(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::extract::RawQuery;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use axum::Router;
    use serde_json::json;

    use super::*;

    /// A fake API answering each request with the next scripted body, recording the queries.
    #[derive(Clone, Default)]
    struct Script {
        answers: Arc<Mutex<VecDeque<String>>>,
        queries: Arc<Mutex<Vec<String>>>,
    }

    impl Script {
        fn answer(&self, body: String) {
            self.answers.lock().unwrap().push_back(body);
        }

        fn client(&self) -> LocalClient {
            let script = self.clone();
            let router = Router::new().route(
                "/api/v1/pods",
                get(move |RawQuery(query): RawQuery| async move {
                    script
                        .queries
                        .lock()
                        .unwrap()
                        .push(query.unwrap_or_default());
                    let body = script.answers.lock().unwrap().pop_front();
                    Body::from(body.expect("a scripted answer")).into_response()
                }),
            );
            LocalClient::new(router)
        }

        fn queries(&self) -> Vec<String> {
            self.queries.lock().unwrap().clone()
        }
    }

    fn pod(name: &str, version: &str) -> Value {
        json!({"metadata": {"name": name, "resourceVersion": version}})
    }

    fn list(version: &str, items: &[Value]) -> String {
        json!({"metadata": {"resourceVersion": version}, "items": items}).to_string()
    }

    fn events(lines: &[(&str, Value)]) -> String {
        lines
            .iter()
            .map(|(kind, object)| format!("{}\n", json!({"type": kind, "object": object})))
            .collect()
    }

    #[tokio::test]
    async fn resumes_from_the_last_version_and_lists_again_once_it_expired() {
        let script = Script::default();
        script.answer(list("5", &[pod("a", "4")]));
        let bookmark = json!({"kind": "Pod", "metadata": {"resourceVersion": "7"}});
        script.answer(events(&[
            ("MODIFIED", pod("a", "6")),
            ("BOOKMARK", bookmark),
        ]));
        let expired = json!({"kind": "Status", "code": 410, "reason": "Expired"});
        script.answer(events(&[("ERROR", expired)]));
        script.answer(list("9", &[pod("b", "8")]));
        script.answer(events(&[("DELETED", pod("b", "10"))]));
        let mut reflector = Reflector::new(script.client(), "/api/v1/pods", "spec.nodeName=n1");

        assert_eq!(reflector.next().await, Delta::Listed(vec![pod("a", "4")]));
        assert_eq!(reflector.next().await, Delta::Changed(pod("a", "6")));
        assert_eq!(reflector.next().await, Delta::Listed(vec![pod("b", "8")]));
        assert_eq!(reflector.next().await, Delta::Deleted(pod("b", "10")));

        let selector = "fieldSelector=spec.nodeName%3Dn1";
        let watch = |version: &str| {
            format!("{selector}&watch=true&allowWatchBookmarks=true&resourceVersion={version}")
        };
        assert_eq!(
            script.queries(),
            [
                selector.to_owned(),
                watch("5"),
                // The first watch ended after its bookmark: resumed from there, expired.
                watch("7"),
                selector.to_owned(),
                watch("9"),
            ]
        );
    }

    #[tokio::test]
    async fn a_watch_refused_with_410_lists_again() {
        let script = Script::default();
        script.answer(list("5", &[]));
        let refused = json!({"kind": "Status", "code": 410, "reason": "Expired"});
        script.answer(events(&[("ERROR", refused)]));
        script.answer(list("12", &[pod("c", "11")]));
        let mut reflector = Reflector::new(script.client(), "/api/v1/pods", "spec.nodeName=");
        assert_eq!(reflector.next().await, Delta::Listed(vec![]));
        assert_eq!(reflector.next().await, Delta::Listed(vec![pod("c", "11")]));
        assert_eq!(script.queries().len(), 3);
    }
}
