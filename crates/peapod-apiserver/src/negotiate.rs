//! Content negotiation as kube-apiserver does it: the `Accept` header picks the response
//! encoding and any transformation (`as=Table`, `as=PartialObjectMetadataList`, aggregated
//! discovery), the `Content-Type` header names the body's encoding or patch type.

use crate::status::ApiError;
use crate::table::IncludeObject;

/// The encodings the server reads and writes, in kube's order of preference.
pub const MEDIA_TYPES: &[&str] = &[JSON, YAML, PROTOBUF];

/// The patch types kube-apiserver 1.32 names when it refuses a patch's content type.
pub const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const DISCOVERY_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const DISCOVERY_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// What a response is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Protobuf,
    /// A `meta.k8s.io/v1 Table` in JSON; `include_object` comes from the query.
    Table {
        include_object: IncludeObject,
    },
    PartialObjectMetadata,
    PartialObjectMetadataList,
    /// An `apidiscovery.k8s.io/v2 APIGroupDiscoveryList`.
    DiscoveryV2,
    DiscoveryV2Beta1,
}

impl Output {
    /// The `Content-Type` to answer with, as kube-apiserver sets it: transformed objects are
    /// plain JSON except aggregated discovery, which names its kind.
    pub fn content_type(&self) -> &'static str {
        match self {
            Output::Json
            | Output::Table { .. }
            | Output::PartialObjectMetadata
            | Output::PartialObjectMetadataList => JSON,
            Output::Yaml => YAML,
            Output::Protobuf => PROTOBUF,
            Output::DiscoveryV2 => DISCOVERY_V2,
            Output::DiscoveryV2Beta1 => DISCOVERY_V2BETA1,
        }
    }

    pub fn is_aggregated_discovery(&self) -> bool {
        matches!(self, Output::DiscoveryV2 | Output::DiscoveryV2Beta1)
    }
}

/// The output for an `Accept` header: the first acceptable clause, clauses ordered by quality
/// then specificity (goautoneg's order), `as=` targets the server cannot produce skipped. No
/// header means JSON.
pub fn output(accept: Option<&str>) -> Result<Output, ApiError> {
    output_where(accept, |_| true)
}

/// [`output`] among the outputs `allowed` by the endpoint (say, no protobuf encoder). The 406
/// lists the allowed plain encodings.
pub fn output_where(
    accept: Option<&str>,
    allowed: impl Fn(&Output) -> bool,
) -> Result<Output, ApiError> {
    let encodings = [Encoding::Json, Encoding::Yaml, Encoding::Protobuf];
    let header = accept.map(str::trim).unwrap_or("");
    if header.is_empty() && allowed(&Output::Json) {
        return Ok(Output::Json);
    }
    for clause in parse_accept(header) {
        for encoding in encodings {
            if !clause.matches(encoding) {
                continue;
            }
            match clause.output(encoding) {
                Some(output) if allowed(&output) => return Ok(output),
                _ => {}
            }
        }
    }
    let accepted: Vec<&str> = encodings
        .iter()
        .filter(|encoding| allowed(&encoding.plain()))
        .map(|encoding| encoding.media_type())
        .collect();
    Err(ApiError::not_acceptable(&accepted))
}

/// What a request body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Json,
    Yaml,
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatchYaml,
    ApplyPatchCbor,
}

impl Input {
    pub fn is_patch(&self) -> bool {
        !matches!(self, Input::Json | Input::Yaml | Input::Protobuf)
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Input::Json => JSON,
            Input::Yaml => YAML,
            Input::Protobuf => PROTOBUF,
            Input::JsonPatch => "application/json-patch+json",
            Input::MergePatch => "application/merge-patch+json",
            Input::StrategicMergePatch => "application/strategic-merge-patch+json",
            Input::ApplyPatchYaml => "application/apply-patch+yaml",
            Input::ApplyPatchCbor => "application/apply-patch+cbor",
        }
    }

    fn from_media_type(media_type: &str) -> Option<Input> {
        let input = match media_type {
            JSON => Input::Json,
            YAML => Input::Yaml,
            PROTOBUF => Input::Protobuf,
            "application/json-patch+json" => Input::JsonPatch,
            "application/merge-patch+json" => Input::MergePatch,
            "application/strategic-merge-patch+json" => Input::StrategicMergePatch,
            "application/apply-patch+yaml" => Input::ApplyPatchYaml,
            "application/apply-patch+cbor" => Input::ApplyPatchCbor,
            _ => return None,
        };
        Some(input)
    }
}

/// The body's encoding from its `Content-Type` (parameters ignored; none means JSON). Patch types
/// are recognised too: callers refuse them outside PATCH with [`Input::is_patch`].
pub fn input(content_type: Option<&str>) -> Result<Input, ApiError> {
    let given = content_type.map(str::trim).unwrap_or("");
    if given.is_empty() {
        return Ok(Input::Json);
    }
    Input::from_media_type(&media_type(given))
        .ok_or_else(|| ApiError::unsupported_media_type(given, MEDIA_TYPES))
}

/// The patch type of a PATCH body; a missing or non-patch content type is a 415 naming the
/// patch types, as kube's patch handler answers.
pub fn patch_input(content_type: Option<&str>) -> Result<Input, ApiError> {
    let given = content_type.map(str::trim).unwrap_or("");
    Input::from_media_type(&media_type(given))
        .filter(Input::is_patch)
        .ok_or_else(|| ApiError::unsupported_media_type(given, PATCH_TYPES))
}

/// `type/subtype` of a media type, lower case, parameters dropped.
fn media_type(value: &str) -> String {
    let base = value.split(';').next().unwrap_or("");
    base.trim().to_ascii_lowercase()
}

/// A serializer the server has, which an Accept clause may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

impl Encoding {
    fn media_type(self) -> &'static str {
        match self {
            Encoding::Json => JSON,
            Encoding::Yaml => YAML,
            Encoding::Protobuf => PROTOBUF,
        }
    }

    fn plain(self) -> Output {
        match self {
            Encoding::Json => Output::Json,
            Encoding::Yaml => Output::Yaml,
            Encoding::Protobuf => Output::Protobuf,
        }
    }

    /// YAML has no stream framing in kube; watches cannot be written in it.
    fn streams(self) -> bool {
        self != Encoding::Yaml
    }
}

/// One clause of an `Accept` header.
#[derive(Debug, PartialEq)]
struct Clause {
    kind: String,
    subtype: String,
    quality: f32,
    params: Vec<(String, String)>,
}

/// The clauses of an `Accept` header, best first; a clause that is no media range is dropped.
fn parse_accept(header: &str) -> Vec<Clause> {
    let mut clauses: Vec<Clause> = header.split(',').filter_map(parse_clause).collect();
    // Stable, so clauses of equal rank keep the client's order.
    clauses.sort_by(|a, b| {
        b.quality
            .total_cmp(&a.quality)
            .then_with(|| (a.kind == "*").cmp(&(b.kind == "*")))
            .then_with(|| (a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    clauses
}

fn parse_clause(text: &str) -> Option<Clause> {
    let mut pieces = text.split(';');
    let range = pieces.next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = match range.split_once('/') {
        Some((kind, subtype)) if !subtype.contains('/') => {
            (kind.trim().to_owned(), subtype.trim().to_owned())
        }
        None if range == "*" => ("*".to_owned(), "*".to_owned()),
        _ => return None,
    };
    let mut clause = Clause {
        kind,
        subtype,
        quality: 1.0,
        params: Vec::new(),
    };
    for param in pieces {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim().trim_matches('"'));
        if key == "q" {
            clause.quality = value.parse().unwrap_or(0.0);
        } else {
            clause.params.push((key.to_owned(), value.to_owned()));
        }
    }
    Some(clause)
}

impl Clause {
    fn matches(&self, encoding: Encoding) -> bool {
        let (kind, subtype) = encoding
            .media_type()
            .split_once('/')
            .expect("media types have a subtype");
        (self.kind == kind && (self.subtype == subtype || self.subtype == "*"))
            || (self.kind == "*" && self.subtype == "*")
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// What this clause asks of `encoding`, or `None` when its parameters ask for something the
    /// server does not do (kube's `acceptMediaTypeOptions`).
    fn output(&self, encoding: Encoding) -> Option<Output> {
        if let Some(stream) = self.param("stream") {
            if !stream.is_empty() && (stream != "watch" || !encoding.streams()) {
                return None;
            }
        }
        if self.param("sv").is_some_and(|v| !v.is_empty()) {
            return None;
        }
        let (group, version, kind) = (self.param("g"), self.param("v"), self.param("as"));
        if group.is_none() && version.is_none() && kind.is_none() {
            return Some(encoding.plain());
        }
        if encoding != Encoding::Json {
            return None;
        }
        transform(
            group.unwrap_or(""),
            version.unwrap_or(""),
            kind.unwrap_or(""),
        )
    }
}

/// The transformed outputs the server produces (JSON only).
fn transform(group: &str, version: &str, kind: &str) -> Option<Output> {
    match (group, version, kind) {
        ("meta.k8s.io", "v1" | "v1beta1", "Table") => Some(Output::Table {
            include_object: IncludeObject::default(),
        }),
        ("meta.k8s.io", "v1" | "v1beta1", "PartialObjectMetadata") => {
            Some(Output::PartialObjectMetadata)
        }
        ("meta.k8s.io", "v1" | "v1beta1", "PartialObjectMetadataList") => {
            Some(Output::PartialObjectMetadataList)
        }
        ("apidiscovery.k8s.io", "v2", "APIGroupDiscoveryList") => Some(Output::DiscoveryV2),
        ("apidiscovery.k8s.io", "v2beta1", "APIGroupDiscoveryList") => {
            Some(Output::DiscoveryV2Beta1)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn table() -> Output {
        Output::Table {
            include_object: IncludeObject::Metadata,
        }
    }

    #[test]
    fn no_accept_header_is_json() {
        assert_eq!(output(None), Ok(Output::Json));
        assert_eq!(output(Some("")), Ok(Output::Json));
    }

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(output(Some(accept)), Ok(table()));
        let v1beta1 = "application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json";
        assert_eq!(output(Some(v1beta1)), Ok(table()));
        let spaced = "application/json; as=Table; v=v1; g=meta.k8s.io";
        assert_eq!(output(Some(spaced)), Ok(table()));
    }

    #[test]
    fn discovery_clients_ask_for_aggregated_v2() {
        let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        let chosen = output(Some(accept)).unwrap();
        assert_eq!(chosen, Output::DiscoveryV2);
        assert_eq!(
            chosen.content_type(),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        let beta = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
        assert_eq!(output(Some(beta)), Ok(Output::DiscoveryV2Beta1));
        assert!(Output::DiscoveryV2Beta1.is_aggregated_discovery());
    }

    #[test]
    fn unknown_targets_are_skipped_for_the_next_clause() {
        let accept = "application/json;as=Table;v=v2;g=meta.k8s.io,application/json;as=Foo;g=x;v=v1,application/yaml";
        assert_eq!(output(Some(accept)), Ok(Output::Yaml));
        // `as` without group and version is no known target either
        assert_eq!(
            output(Some("application/json;as=Table, */*")),
            Ok(Output::Json)
        );
        // transforms are produced as JSON only
        let proto = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(output(Some(proto)), Ok(Output::PartialObjectMetadataList));
        let single = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
        assert_eq!(output(Some(single)), Ok(Output::PartialObjectMetadata));
    }

    #[test]
    fn typed_clients_prefer_protobuf() {
        let accept = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(output(Some(accept)), Ok(Output::Protobuf));
        let no_protobuf = output_where(Some(accept), |o| *o != Output::Protobuf);
        assert_eq!(no_protobuf, Ok(Output::Json));
    }

    #[test]
    fn wildcards_pick_the_servers_first_encoding() {
        assert_eq!(output(Some("*/*")), Ok(Output::Json));
        assert_eq!(output(Some("*")), Ok(Output::Json));
        assert_eq!(output(Some("application/*")), Ok(Output::Json));
        assert_eq!(output(Some("application/json, */*")), Ok(Output::Json));
        assert_eq!(output(Some("APPLICATION/YAML")), Ok(Output::Yaml));
    }

    #[test]
    fn quality_orders_clauses_then_specificity() {
        let accept = "application/json;q=0.5,application/yaml;q=0.9";
        assert_eq!(output(Some(accept)), Ok(Output::Yaml));
        // equal quality: a concrete type before a wildcard, otherwise the client's order
        assert_eq!(output(Some("*/*,application/yaml")), Ok(Output::Yaml));
        let equal = "application/yaml,application/json";
        assert_eq!(output(Some(equal)), Ok(Output::Yaml));
    }

    #[test]
    fn stream_parameter() {
        let watch = "application/json;stream=watch";
        assert_eq!(output(Some(watch)), Ok(Output::Json));
        assert!(output(Some("application/json;stream=other")).is_err());
        assert!(output(Some("application/yaml;stream=watch")).is_err());
        assert!(output(Some("application/json;sv=v1")).is_err());
    }

    #[test]
    fn nothing_acceptable_is_406_with_kubes_wording() {
        let err = output(Some("text/html,image/png")).unwrap_err();
        assert_eq!(err.code, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(err.reason, "NotAcceptable");
        assert_eq!(
            err.message,
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
        let err = output_where(Some("text/html"), |o| *o != Output::Protobuf).unwrap_err();
        assert_eq!(
            err.message,
            "only the following media types are accepted: application/json, application/yaml"
        );
    }

    #[test]
    fn content_types_of_outputs() {
        assert_eq!(Output::Json.content_type(), "application/json");
        assert_eq!(Output::Yaml.content_type(), "application/yaml");
        assert_eq!(
            Output::Protobuf.content_type(),
            "application/vnd.kubernetes.protobuf"
        );
        assert_eq!(table().content_type(), "application/json");
        assert_eq!(
            Output::DiscoveryV2Beta1.content_type(),
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn body_content_types() {
        assert_eq!(input(None), Ok(Input::Json));
        assert_eq!(
            input(Some("application/json;charset=utf-8")),
            Ok(Input::Json)
        );
        assert_eq!(input(Some("Application/YAML")), Ok(Input::Yaml));
        assert_eq!(
            input(Some("application/vnd.kubernetes.protobuf")),
            Ok(Input::Protobuf)
        );
        let patch = input(Some("application/strategic-merge-patch+json")).unwrap();
        assert_eq!(patch, Input::StrategicMergePatch);
        assert!(patch.is_patch());
        assert!(!Input::Yaml.is_patch());
        assert_eq!(
            input(Some("application/apply-patch+yaml")),
            Ok(Input::ApplyPatchYaml)
        );
    }

    #[test]
    fn unknown_body_is_415_naming_the_encodings() {
        let err = input(Some("text/plain")).unwrap_err();
        assert_eq!(err.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            err.message,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
    }

    #[test]
    fn patch_bodies_must_name_a_patch_type() {
        assert_eq!(
            patch_input(Some("application/merge-patch+json; charset=utf-8")),
            Ok(Input::MergePatch)
        );
        assert_eq!(
            patch_input(Some("application/json-patch+json")),
            Ok(Input::JsonPatch)
        );
        for refused in [None, Some("application/json")] {
            let err = patch_input(refused).unwrap_err();
            assert_eq!(err.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(err.message.ends_with(
                "application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
            ));
        }
    }
}
