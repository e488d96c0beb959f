//! OpenAPI v3 as kube-apiserver serves it: `GET /openapi/v3` lists one document per group
//! version (`api/v1`, `apis/apps/v1`) under a URL carrying the document's hash, and each
//! document holds the paths of the served resources and the component schemas of their kinds,
//! generated from k8s-openapi's `JsonSchema` impls under Kubernetes' definition names
//! (`io.k8s.api.core.v1.Pod`).
//!
//! kubectl needs more from these than `explain`: before `apply`, `create -f`, `replace` and
//! `edit` it looks for a PATCH operation of the object's kind taking the `fieldValidation`
//! query parameter, and only then leaves validation to the server (with no document at all it
//! refuses to run); client-side `apply` builds its strategic merge patch from the components'
//! `x-kubernetes-patch-*` extensions.
//!
//! `/openapi/v2` serves the same paths and schemas as one Swagger 2.0 document ([`swagger`]),
//! as JSON or as gnostic's protobuf ([`gnostic`]): kubectl before 1.27 (Debian 12's 1.20) reads
//! only that one, for client-side validation, `explain` and `apply`'s patch strategies; later
//! kubectls read v3 and never ask for it.
//!
//! Documents are built once per distinct registry and cached for the process, v2 on first use.

mod document;
pub mod gnostic;
mod paths;
pub mod swagger;
pub mod v2;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

use crate::registry::{Kind, Registry};
use crate::status::ApiError;

pub use document::document;
pub use gnostic::GnosticError;
pub use v2::Swagger;

const V2: &str = "/openapi/v2";
const V3: &str = "/openapi/v3";

/// Why a document could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error("the schema of {kind} is not a reference to a component: {schema}")]
    NotAReference { kind: String, schema: Value },
    #[error("{reference} is referred to but not among the components")]
    Unresolved { reference: String },
    #[error("encoding the OpenAPI document {path}: {source}")]
    Encode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("re-reading the OpenAPI document {path} for v2: {source}")]
    Reread {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the Swagger document has no gnostic protobuf form: {0}")]
    Gnostic(#[from] GnosticError),
}

/// One group version's document, encoded once, and its hash.
#[derive(Debug)]
pub struct Document {
    pub body: Bytes,
    /// Upper-case hex SHA-512 of `body`, as kube-openapi computes its ETags.
    pub hash: String,
}

/// Every group version's document, keyed by `api/v1` or `apis/{group}/{version}`, and the
/// Swagger document of them all once asked for.
#[derive(Debug)]
pub struct OpenApi {
    documents: BTreeMap<String, Document>,
    swagger: OnceLock<Swagger>,
}

impl OpenApi {
    /// Documents for every group version with at least one kind that has a schema.
    pub fn build(registry: &Registry) -> Result<OpenApi, OpenApiError> {
        let mut documents = BTreeMap::new();
        for ((group, version), kinds) in schema_kinds(registry) {
            let path = gv_path(&group, &version);
            let value = document(&kinds)?;
            let body = serde_json::to_vec(&value).map_err(|source| OpenApiError::Encode {
                path: path.clone(),
                source,
            })?;
            let hash = hex::encode_upper(Sha512::digest(&body));
            let body = Bytes::from(body);
            documents.insert(path, Document { body, hash });
        }
        Ok(OpenApi {
            documents,
            swagger: OnceLock::new(),
        })
    }

    /// The `/openapi/v2` document, built from the v3 documents on first use.
    pub fn swagger(&self) -> Result<&Swagger, OpenApiError> {
        if let Some(built) = self.swagger.get() {
            return Ok(built);
        }
        let reread = |(path, doc): (&String, &Document)| {
            serde_json::from_slice(&doc.body).map_err(|source| OpenApiError::Reread {
                path: path.clone(),
                source,
            })
        };
        let documents: Vec<Value> = self
            .documents
            .iter()
            .map(reread)
            .collect::<Result<_, _>>()?;
        let built = Swagger::build(&documents)?;
        Ok(self.swagger.get_or_init(|| built))
    }

    /// The `/openapi/v3` discovery document.
    pub fn index(&self) -> Value {
        let paths: Map<String, Value> = self
            .documents
            .iter()
            .map(|(path, doc)| (path.clone(), json!({"serverRelativeURL": url(path, doc)})))
            .collect();
        json!({ "paths": paths })
    }

    /// The document at `api/v1` or `apis/{group}/{version}`.
    pub fn document(&self, path: &str) -> Option<&Document> {
        self.documents.get(path)
    }
}

fn url(path: &str, doc: &Document) -> String {
    format!("{V3}/{path}?hash={}", doc.hash)
}

/// `api/v1` for the core group, `apis/{group}/{version}` otherwise.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The kinds with schemas, by group version.
fn schema_kinds(registry: &Registry) -> BTreeMap<(String, String), Vec<&Kind>> {
    let mut by_gv: BTreeMap<(String, String), Vec<&Kind>> = BTreeMap::new();
    for kind in registry.kinds().iter().filter(|k| k.schema.is_some()) {
        let key = (kind.gvk.group.clone(), kind.gvk.version.clone());
        by_gv.entry(key).or_default().push(kind);
    }
    by_gv
}

/// The documents of `registry`, built on first use. Registries are told apart by what the
/// documents are made of, so the cache needs no hook in [`Registry`].
pub fn cached(registry: &Registry) -> Result<Arc<OpenApi>, OpenApiError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<OpenApi>>>> = OnceLock::new();
    let key = fingerprint(registry);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(found.clone());
    }
    let built = Arc::new(OpenApi::build(registry)?);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    Ok(cache.entry(key).or_insert(built).clone())
}

fn fingerprint(registry: &Registry) -> String {
    let mut key = String::new();
    for kind in registry.kinds() {
        let Some(schema) = kind.schema else { continue };
        let subresources: Vec<&str> = kind.subresources.iter().map(|s| s.name).collect();
        key.push_str(&format!(
            "{:?}|{}|{}|{:?}|{:?}|{:x};",
            kind.gvk, kind.plural, kind.namespaced, kind.verbs, subresources, schema as usize
        ));
    }
    key
}

/// A ready answer: status, headers and body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// The answer to an `/openapi/...` path, or `None` for any other path. A v3 document asked
/// for with its current hash is immutable; with a stale hash it redirects to the current one,
/// as kube-openapi does. v2 negotiates its format from `headers` (see [`v2`]).
pub fn respond(
    registry: &Registry,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Result<Reply, ApiError>> {
    let path = path.trim_end_matches('/');
    if path == V2 {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let answer = cached(registry)
            .and_then(|openapi| {
                let swagger = openapi.swagger()?;
                Ok(swagger.reply(header("accept"), header("if-none-match")))
            })
            .map_err(|err| ApiError::internal(err.to_string()));
        return Some(answer);
    }
    let rest = path.strip_prefix(V3)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let answer = cached(registry)
        .map_err(|err| ApiError::internal(err.to_string()))
        .and_then(|openapi| match rest.strip_prefix('/') {
            None => Ok(json_reply(Bytes::from(openapi.index().to_string()))),
            Some(gv) => document_reply(&openapi, gv, query),
        });
    Some(answer)
}

fn json_reply(body: Bytes) -> Reply {
    Reply {
        status: StatusCode::OK,
        headers: vec![("content-type", "application/json".to_owned())],
        body,
    }
}

fn document_reply(openapi: &OpenApi, gv: &str, query: Option<&str>) -> Result<Reply, ApiError> {
    let doc = openapi.document(gv).ok_or_else(ApiError::no_route)?;
    let asked = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(key, _)| key == "hash")
            .map(|(_, value)| value.into_owned())
    });
    let mut reply = json_reply(doc.body.clone());
    reply.headers.push(("etag", format!("\"{}\"", doc.hash)));
    match asked {
        Some(hash) if hash == doc.hash => {
            reply
                .headers
                .push(("cache-control", "public, immutable".to_owned()));
            reply.headers.push(("vary", "Accept".to_owned()));
            reply.headers.push(("expires", a_year_from_now()));
        }
        Some(_) => {
            reply.status = StatusCode::MOVED_PERMANENTLY;
            reply.headers = vec![("location", url(gv, doc))];
            reply.body = Bytes::new();
        }
        None => {}
    }
    Ok(reply)
}

/// An HTTP date a year ahead, as kube-openapi sends: without it client-go's disk cache asks
/// again on every run.
fn a_year_from_now() -> String {
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(365 * 24);
    later.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests;
