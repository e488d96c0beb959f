//! The checks a port's protocol and appProtocol get alike in Services, Endpoints and
//! EndpointSlices.

use peapod_api::validation::{names, FieldError, FieldPath};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// A port's protocol: required, and one kube supports.
pub fn protocol_errors(protocol: Option<&str>, path: &FieldPath) -> Vec<FieldError> {
    match protocol.unwrap_or_default() {
        "" => vec![FieldError::required(path, "")],
        known if PROTOCOLS.contains(&known) => Vec::new(),
        other => vec![FieldError::not_supported(path, other, PROTOCOLS)],
    }
}

/// A port's appProtocol, when set: a qualified name (`http`, `kubernetes.io/h2c`).
pub fn app_protocol_errors(app_protocol: Option<&str>, path: &FieldPath) -> Vec<FieldError> {
    let Some(app_protocol) = app_protocol else {
        return Vec::new();
    };
    names::qualified_name(app_protocol)
        .iter()
        .map(|message| FieldError::invalid(path, app_protocol, message))
        .collect()
}

/// A port's name: required when `require_name` (one of several ports), else a DNS-1123
/// label when given.
pub fn name_errors(name: &str, require_name: bool, path: &FieldPath) -> Vec<FieldError> {
    if name.is_empty() {
        return match require_name {
            true => vec![FieldError::required(path, "")],
            false => Vec::new(),
        };
    }
    names::dns1123_label(name)
        .iter()
        .map(|message| FieldError::invalid(path, name, message))
        .collect()
}

/// A port's number: 1 to 65535.
pub fn number_errors(port: i32, path: &FieldPath) -> Vec<FieldError> {
    names::port_num(i64::from(port))
        .iter()
        .map(|message| FieldError::invalid(path, port, message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn each_field_reads_as_kube_reports_it() {
        let path = FieldPath::new("ports");
        assert_eq!(
            messages(protocol_errors(Some("HTTP"), &path)),
            [r#"ports: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#]
        );
        assert_eq!(
            messages(protocol_errors(None, &path)),
            ["ports: Required value"]
        );
        assert!(protocol_errors(Some("UDP"), &path).is_empty());
        assert!(app_protocol_errors(None, &path).is_empty());
        assert!(app_protocol_errors(Some("kubernetes.io/h2c"), &path).is_empty());
        assert_eq!(app_protocol_errors(Some("not valid"), &path).len(), 1);
        assert_eq!(
            messages(name_errors("", true, &path)),
            ["ports: Required value"]
        );
        assert!(name_errors("", false, &path).is_empty());
        assert_eq!(name_errors("Web", false, &path).len(), 1);
        assert_eq!(number_errors(0, &path).len(), 1);
        assert!(number_errors(65535, &path).is_empty());
    }
}
