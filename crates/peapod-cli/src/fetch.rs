//! Reading objects of any served type: a selection's list, or each of its named objects,
//! plain or as the server's Table; refusals of single objects are collected as kubectl
//! prints them after what it found.

use serde_json::Value;

use crate::client::{ApiError, Call, Client, ClientError};
use crate::output::with_type_meta;
use crate::query::Query;
use crate::resource::ApiResource;
use crate::target::Selected;

/// Where and what a verb lists: the namespace (-n, else default), -A, -l and --field-selector.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub namespace: String,
    pub all_namespaces: bool,
    pub labels: Option<String>,
    pub fields: Option<String>,
}

impl Scope {
    pub fn new(namespace: Option<&str>, all_namespaces: bool) -> Self {
        Self {
            namespace: namespace.unwrap_or("default").to_string(),
            all_namespaces,
            ..Self::default()
        }
    }

    pub fn selectors(mut self, labels: Option<&str>, fields: Option<&str>) -> Self {
        self.labels = labels.map(str::to_string);
        self.fields = fields.map(str::to_string);
        self
    }

    /// The namespace a list reads; `None` is every namespace.
    pub fn list_namespace(&self) -> Option<&str> {
        (!self.all_namespaces).then_some(self.namespace.as_str())
    }

    /// The collection of `resource` with the selectors and `extra` parameters first.
    pub fn list_path(&self, resource: &ApiResource, mut query: Query) -> String {
        query
            .opt("labelSelector", self.labels.as_deref())
            .opt("fieldSelector", self.fields.as_deref());
        format!("{}{query}", resource.collection(self.list_namespace()))
    }

    /// kubectl's empty-result line: namespaced types in one namespace name it.
    pub fn no_resources(&self, resources: &[&ApiResource]) -> String {
        if !self.all_namespaces && resources.iter().all(|r| r.namespaced) {
            format!("No resources found in {} namespace.", self.namespace)
        } else {
            "No resources found".to_string()
        }
    }
}

/// What the agent answered for one selection: the list, or each named object it found.
#[derive(Debug, Default)]
pub struct Fetched {
    pub answers: Vec<(String, Value)>,
    pub errors: Vec<ApiError>,
}

impl Fetched {
    /// The objects, apiVersion and kind filled in.
    pub fn items(self, resource: &ApiResource) -> Vec<Value> {
        let (api_version, kind) = (resource.api_version(), resource.kind.clone());
        let mut items = Vec::new();
        for (_, answer) in self.answers {
            match answer {
                Value::Object(mut map) if map.get("items").is_some_and(Value::is_array) => {
                    if let Some(Value::Array(listed)) = map.remove("items") {
                        items.extend(listed);
                    }
                }
                object => items.push(object),
            }
        }
        items
            .into_iter()
            .map(|item| with_type_meta(item, &api_version, &kind))
            .collect()
    }

    /// The resourceVersion of the last answer (a list's, or the object's).
    pub fn resource_version(&self) -> String {
        let answer = self.answers.last().map(|(_, a)| a);
        answer
            .and_then(|a| a.pointer("/metadata/resourceVersion"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

/// Lists `selected` in `scope`, or reads each of its names; `accept` asks for a Table.
pub async fn fetch(
    client: &Client,
    selected: &Selected,
    scope: &Scope,
    accept: Option<&'static str>,
) -> Result<Fetched, ClientError> {
    let call = |path: String| match accept {
        Some(accept) => Call::get(path).header("accept", accept),
        None => Call::get(path),
    };
    let mut fetched = Fetched::default();
    if selected.names.is_empty() {
        let path = scope.list_path(&selected.resource, Query::new());
        let answer = client.send(call(path.clone())).await?.json().await?;
        fetched.answers.push((path, answer));
        return Ok(fetched);
    }
    for name in &selected.names {
        let path = selected.resource.object(&scope.namespace, name);
        match client.send(call(path.clone())).await?.json().await {
            Ok(answer) => fetched.answers.push((path, answer)),
            Err(ClientError::Api(error)) => fetched.errors.push(error),
            Err(other) => return Err(other),
        }
    }
    Ok(fetched)
}

/// Every object of `resource` in `scope` (for delete --all and describe without names).
pub async fn list(
    client: &Client,
    resource: &ApiResource,
    scope: &Scope,
) -> Result<Vec<Value>, ClientError> {
    let selected = Selected {
        resource: resource.clone(),
        names: Vec::new(),
    };
    Ok(fetch(client, &selected, scope, None).await?.items(resource))
}
