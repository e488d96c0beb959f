//! What the descriptor does not say and gnostic's compiler checks: each message's required keys
//! and the values its enumerated keys allow (`requiredKeys` and `StringArrayContainsValue` in
//! OpenAPIv2.go, from the Swagger 2.0 JSON schema). They decide the oneofs: a parameter with
//! `in: query` is no `BodyParameter`, a schema without `type: file` no `FileSchema`.

use serde_json::{Map, Value};

use super::{GnosticError, Problem};

/// gnostic's checks of one message.
pub(super) struct Rule {
    message: &'static str,
    required: &'static [&'static str],
    enums: &'static [(&'static str, &'static [&'static str])],
    /// Whether keys no field takes are ignored rather than refused (`JsonReference`).
    pub open: bool,
}

const fn rule(
    message: &'static str,
    required: &'static [&'static str],
    enums: &'static [(&'static str, &'static [&'static str])],
) -> Rule {
    Rule {
        message,
        required,
        enums,
        open: false,
    }
}

const NO_RULE: Rule = rule("", &[], &[]);

const SCHEMES: &[&str] = &["http", "https", "ws", "wss"];
const PRIMITIVES: &[&str] = &["string", "number", "boolean", "integer", "array"];
const FORM_TYPES: &[&str] = &["string", "number", "boolean", "integer", "array", "file"];
const FORMATS: &[&str] = &["csv", "ssv", "tsv", "pipes"];
const QUERY_FORMATS: &[&str] = &["csv", "ssv", "tsv", "pipes", "multi"];

const RULES: &[Rule] = &[
    rule(
        "ApiKeySecurity",
        &["in", "name", "type"],
        &[("type", &["apiKey"]), ("in", &["header", "query"])],
    ),
    rule(
        "BasicAuthenticationSecurity",
        &["type"],
        &[("type", &["basic"])],
    ),
    rule(
        "BodyParameter",
        &["in", "name", "schema"],
        &[("in", &["body"])],
    ),
    rule(
        "Document",
        &["info", "paths", "swagger"],
        &[("swagger", &["2.0"]), ("schemes", SCHEMES)],
    ),
    rule("ExternalDocs", &["url"], &[]),
    rule("FileSchema", &["type"], &[("type", &["file"])]),
    rule(
        "FormDataParameterSubSchema",
        &[],
        &[
            ("in", &["formData"]),
            ("type", FORM_TYPES),
            ("collectionFormat", QUERY_FORMATS),
        ],
    ),
    rule(
        "Header",
        &["type"],
        &[("type", PRIMITIVES), ("collectionFormat", FORMATS)],
    ),
    rule(
        "HeaderParameterSubSchema",
        &[],
        &[
            ("in", &["header"]),
            ("type", PRIMITIVES),
            ("collectionFormat", FORMATS),
        ],
    ),
    rule("Info", &["title", "version"], &[]),
    Rule {
        open: true,
        ..rule("JsonReference", &["$ref"], &[])
    },
    rule("License", &["name"], &[]),
    rule(
        "Oauth2AccessCodeSecurity",
        &["authorizationUrl", "flow", "tokenUrl", "type"],
        &[("type", &["oauth2"]), ("flow", &["accessCode"])],
    ),
    rule(
        "Oauth2ApplicationSecurity",
        &["flow", "tokenUrl", "type"],
        &[("type", &["oauth2"]), ("flow", &["application"])],
    ),
    rule(
        "Oauth2ImplicitSecurity",
        &["authorizationUrl", "flow", "type"],
        &[("type", &["oauth2"]), ("flow", &["implicit"])],
    ),
    rule(
        "Oauth2PasswordSecurity",
        &["flow", "tokenUrl", "type"],
        &[("type", &["oauth2"]), ("flow", &["password"])],
    ),
    rule("Operation", &["responses"], &[("schemes", SCHEMES)]),
    rule(
        "PathParameterSubSchema",
        &["required"],
        &[
            ("in", &["path"]),
            ("type", PRIMITIVES),
            ("collectionFormat", FORMATS),
        ],
    ),
    rule(
        "PrimitivesItems",
        &[],
        &[("type", PRIMITIVES), ("collectionFormat", FORMATS)],
    ),
    rule(
        "QueryParameterSubSchema",
        &[],
        &[
            ("in", &["query"]),
            ("type", PRIMITIVES),
            ("collectionFormat", QUERY_FORMATS),
        ],
    ),
    rule("Response", &["description"], &[]),
    rule("Tag", &["name"], &[]),
];

/// The checks of the message named `message` (its short name); none for most.
pub(super) fn of(message: &str) -> &'static Rule {
    RULES
        .iter()
        .find(|rule| rule.message == message)
        .unwrap_or(&NO_RULE)
}

impl Rule {
    /// Fails on a missing required key or an enumerated key with another value (each value
    /// of a list); values of the wrong type are left to the field's conversion.
    pub fn check(&self, object: &Map<String, Value>) -> Result<(), GnosticError> {
        if let Some(missing) = self.required.iter().find(|key| !object.contains_key(**key)) {
            return Err(GnosticError::new(Problem::MissingKey(missing)));
        }
        for (key, allowed) in self.enums {
            let values = match object.get(*key) {
                Some(Value::String(value)) => vec![value.as_str()],
                Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
                _ => continue,
            };
            if let Some(value) = values.into_iter().find(|v| !allowed.contains(v)) {
                let value = value.to_owned();
                return Err(GnosticError::new(Problem::NotAllowed {
                    key,
                    value,
                    allowed,
                }));
            }
        }
        Ok(())
    }
}
