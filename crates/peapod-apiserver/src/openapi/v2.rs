//! `/openapi/v2` as kube-openapi serves it: the Swagger document as JSON (also for `*/*` and
//! no `Accept`) or as gnostic protobuf, whichever `Accept` clause comes first in goautoneg's
//! order, a bare 406 when none matches. Both carry the JSON's SHA-512 as their ETag (kube-openapi
//! has one for both; its `Vary: Accept` keeps caches apart), and a matching `If-None-Match` gets
//! 304.

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha512};

use super::swagger::swagger;
use super::{gnostic, OpenApiError, Reply};

pub const JSON: &str = "application/json";
/// The protobuf media type kube-openapi answers with, whichever of the two was asked for.
pub const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
const PROTOBUF_SUBTYPE: &str = "com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// What client-go before 1.27 asks for.
const PROTOBUF_SUBTYPE_DEPRECATED: &str = "com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The Swagger document, encoded both ways once.
#[derive(Debug)]
pub struct Swagger {
    pub json: Bytes,
    pub protobuf: Bytes,
    /// Upper-case hex SHA-512 of `json`.
    pub etag: String,
    last_modified: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Protobuf,
}

impl Swagger {
    /// The Swagger document of the group versions' v3 `documents`.
    pub fn build<'a>(
        documents: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Swagger, OpenApiError> {
        let document = swagger(documents);
        let json = serde_json::to_vec(&document).map_err(|source| OpenApiError::Encode {
            path: "openapi/v2".into(),
            source,
        })?;
        let protobuf = gnostic::encode(&document)?;
        let now = jiff::Timestamp::now();
        Ok(Swagger {
            etag: hex::encode_upper(Sha512::digest(&json)),
            json: Bytes::from(json),
            protobuf: Bytes::from(protobuf),
            last_modified: now.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        })
    }

    /// The answer to a GET with these `Accept` and `If-None-Match` headers.
    pub fn reply(&self, accept: Option<&str>, if_none_match: Option<&str>) -> Reply {
        let vary = ("vary", "Accept".to_owned());
        let Some(format) = negotiate(accept) else {
            return Reply {
                status: StatusCode::NOT_ACCEPTABLE,
                headers: vec![vary],
                body: Bytes::new(),
            };
        };
        let mut headers = vec![vary, ("etag", format!("\"{}\"", self.etag))];
        if if_none_match.is_some_and(|tags| matches_etag(tags, &self.etag)) {
            return Reply {
                status: StatusCode::NOT_MODIFIED,
                headers,
                body: Bytes::new(),
            };
        }
        let (content_type, body) = match format {
            Format::Json => (JSON, self.json.clone()),
            Format::Protobuf => (PROTOBUF, self.protobuf.clone()),
        };
        headers.push(("content-type", content_type.to_owned()));
        headers.push(("last-modified", self.last_modified.clone()));
        Reply {
            status: StatusCode::OK,
            headers,
            body,
        }
    }
}

/// The format of the first clause of `accept` that one of ours matches.
fn negotiate(accept: Option<&str>) -> Option<Format> {
    const OFFERED: [(Format, &str); 3] = [
        (Format::Json, "json"),
        (Format::Protobuf, PROTOBUF_SUBTYPE_DEPRECATED),
        (Format::Protobuf, PROTOBUF_SUBTYPE),
    ];
    let accept = accept.map(str::trim).filter(|a| !a.is_empty());
    for (kind, subtype) in clauses(accept.unwrap_or("*/*")) {
        let offered = OFFERED.iter().find(|(_, offered)| {
            (kind == "application" || kind == "*") && (subtype == *offered || subtype == "*")
        });
        if let Some((format, _)) = offered {
            return Some(*format);
        }
    }
    None
}

/// The media ranges of an `Accept` header, best first as goautoneg orders them: by quality,
/// then concrete types before wildcards.
fn clauses(accept: &str) -> Vec<(&str, &str)> {
    let mut ranked: Vec<(f32, &str, &str)> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';').map(str::trim);
            let range = parts.next()?;
            let (kind, subtype) = range.split_once('/').unwrap_or((range, "*"));
            let quality = parts
                .filter_map(|param| param.strip_prefix("q="))
                .find_map(|q| q.parse().ok())
                .unwrap_or(1.0);
            (!kind.is_empty()).then_some((quality, kind, subtype))
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| (a.1 == "*").cmp(&(b.1 == "*")))
            .then_with(|| (a.2 == "*").cmp(&(b.2 == "*")))
    });
    ranked
        .into_iter()
        .map(|(_, kind, subtype)| (kind, subtype))
        .collect()
}

/// Whether an `If-None-Match` list names `etag` (weakly) or is `*`, as Go's `ServeContent`
/// compares.
fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    let quoted = format!("\"{etag}\"");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_format_as_kube_openapi_does() {
        let protobuf = Some(Format::Protobuf);
        assert_eq!(negotiate(None), Some(Format::Json));
        assert_eq!(negotiate(Some("*/*")), Some(Format::Json));
        assert_eq!(negotiate(Some("application/json")), Some(Format::Json));
        let deprecated = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        assert_eq!(negotiate(Some(deprecated)), protobuf);
        assert_eq!(negotiate(Some(PROTOBUF)), protobuf);
        let ranked = format!("application/json;q=0.5, {PROTOBUF}");
        assert_eq!(negotiate(Some(&ranked)), protobuf);
        let wildcard_last = format!("*/*, {deprecated}");
        assert_eq!(negotiate(Some(&wildcard_last)), protobuf);
        assert_eq!(negotiate(Some("application/yaml")), None);
        assert_eq!(negotiate(Some("text/plain")), None);
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_a_star() {
        assert!(matches_etag("\"AB\"", "AB"));
        assert!(matches_etag("\"XY\", W/\"AB\"", "AB"));
        assert!(matches_etag("*", "AB"));
        assert!(!matches_etag("\"ABC\"", "AB"));
        assert!(!matches_etag("AB", "AB"));
    }
}
