//! spec.dnsConfig validation (validatePodDNSConfig), with the RelaxedDNSSearchValidation
//! rules Kubernetes 1.33 enables by default.

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::PodDNSConfig;
use regex::Regex;

use super::errors::{go_quote, BadValue};
use super::names::{self, DNS1123_SUBDOMAIN_MAX};
use super::{FieldError, FieldPath};

pub const MAX_DNS_NAMESERVERS: usize = 3;
pub const MAX_DNS_SEARCH_PATHS: usize = 32;
pub const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;

const LABEL_WITH_UNDERSCORE_FMT: &str = "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?";
const SUBDOMAIN_WITH_UNDERSCORE_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character";

static SUBDOMAIN_WITH_UNDERSCORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^(?:{})$", subdomain_with_underscore_fmt())).expect("static regex")
});

fn subdomain_with_underscore_fmt() -> String {
    format!("{LABEL_WITH_UNDERSCORE_FMT}(\\.{LABEL_WITH_UNDERSCORE_FMT})*")
}

/// IsDNS1123SubdomainWithUnderscore
pub fn dns1123_subdomain_with_underscore(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(names::max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !SUBDOMAIN_WITH_UNDERSCORE.is_match(value) {
        errs.push(names::regex_error(
            SUBDOMAIN_WITH_UNDERSCORE_MSG,
            &subdomain_with_underscore_fmt(),
            &["example.com"],
        ));
    }
    errs
}

/// A string list printed as Go's `%#v` prints a `[]string`.
struct StringList<'a>(&'a [String]);

impl BadValue for StringList<'_> {
    fn render(&self) -> String {
        let quoted: Vec<String> = self.0.iter().map(|s| go_quote(s)).collect();
        format!("[]string{{{}}}", quoted.join(", "))
    }
}

/// validatePodDNSConfig: dnsPolicy None needs nameservers; then the config's limits.
pub fn validate_pod_dns_config(
    config: Option<&PodDNSConfig>,
    policy: Option<&str>,
    path: &FieldPath,
) -> Vec<FieldError> {
    if policy == Some("None") {
        let Some(config) = config else {
            let detail = "must provide `dnsConfig` when `dnsPolicy` is None";
            return vec![FieldError::required(path, detail)];
        };
        if config.nameservers.as_deref().unwrap_or_default().is_empty() {
            let detail = "must provide at least one DNS nameserver when `dnsPolicy` is None";
            return vec![FieldError::required(&path.child("nameservers"), detail)];
        }
    }
    let Some(config) = config else {
        return Vec::new();
    };
    let mut errs = validate_nameservers(config, &path.child("nameservers"));
    errs.extend(validate_searches(config, &path.child("searches")));
    errs.extend(validate_options(config, &path.child("options")));
    errs
}

fn validate_nameservers(config: &PodDNSConfig, path: &FieldPath) -> Vec<FieldError> {
    let servers = config.nameservers.as_deref().unwrap_or_default();
    let mut errs = Vec::new();
    if servers.len() > MAX_DNS_NAMESERVERS {
        let detail = format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers");
        errs.push(FieldError::invalid(path, StringList(servers), &detail));
    }
    for (i, server) in servers.iter().enumerate() {
        for msg in names::ip(server) {
            errs.push(FieldError::invalid(&path.index(i), server, &msg));
        }
    }
    errs
}

fn validate_searches(config: &PodDNSConfig, path: &FieldPath) -> Vec<FieldError> {
    let searches = config.searches.as_deref().unwrap_or_default();
    let mut errs = Vec::new();
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        let detail = format!("must not have more than {MAX_DNS_SEARCH_PATHS} search paths");
        errs.push(FieldError::invalid(path, StringList(searches), &detail));
    }
    if searches.join(" ").len() > MAX_DNS_SEARCH_LIST_CHARS {
        let detail = format!(
            "must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list"
        );
        errs.push(FieldError::invalid(path, StringList(searches), &detail));
    }
    for (i, search) in searches.iter().enumerate() {
        if search == "." {
            continue;
        }
        let trimmed = search.strip_suffix('.').unwrap_or(search);
        for msg in dns1123_subdomain_with_underscore(trimmed) {
            errs.push(FieldError::invalid(&path.index(i), trimmed, &msg));
        }
    }
    errs
}

fn validate_options(config: &PodDNSConfig, path: &FieldPath) -> Vec<FieldError> {
    config
        .options
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, option)| option.name.as_deref().unwrap_or_default().is_empty())
        .map(|(i, _)| FieldError::required(&path.index(i), "must not be empty"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::default_pod;
    use crate::validation::validate_pod;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::{json, Value};

    fn config(value: Value) -> PodDNSConfig {
        serde_json::from_value(value).unwrap()
    }

    fn errors(config: Option<PodDNSConfig>, policy: &str) -> Vec<String> {
        let path = FieldPath::new("spec").child("dnsConfig");
        validate_pod_dns_config(config.as_ref(), Some(policy), &path)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn none_policy_requires_dns_config() {
        assert_eq!(
            errors(None, "None"),
            vec![
                "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
            ]
        );
        assert!(errors(None, "ClusterFirst").is_empty());
    }

    #[test]
    fn none_policy_requires_a_nameserver() {
        let c = config(json!({"searches": ["a.example"]}));
        assert_eq!(
            errors(Some(c.clone()), "None"),
            vec!["spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"]
        );
        assert!(errors(Some(c), "Default").is_empty());
    }

    #[test]
    fn at_most_three_nameservers() {
        let c = config(json!({"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]}));
        assert_eq!(
            errors(Some(c), "None"),
            vec![
                r#"spec.dnsConfig.nameservers: Invalid value: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"}: must not have more than 3 nameservers"#
            ]
        );
    }

    #[test]
    fn nameservers_must_be_ips() {
        let c = config(json!({"nameservers": ["1.1.1.1", "dns.example"]}));
        assert_eq!(
            errors(Some(c), "None"),
            vec![
                r#"spec.dnsConfig.nameservers[1]: Invalid value: "dns.example": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#
            ]
        );
    }

    #[test]
    fn at_most_thirty_two_search_paths() {
        let searches: Vec<String> = (0..33).map(|i| format!("d{i}")).collect();
        let errs = errors(Some(config(json!({"searches": searches}))), "Default");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(r#"spec.dnsConfig.searches: Invalid value: []string{"d0", "d1","#)
        );
        assert!(errs[0].ends_with(": must not have more than 32 search paths"));
    }

    #[test]
    fn search_list_at_most_2048_chars() {
        let searches: Vec<String> = (0..9).map(|i| format!("{i}{}", "x".repeat(249))).collect();
        let errs = errors(Some(config(json!({"searches": searches}))), "Default");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].ends_with(
            ": must not have more than 2048 characters (including spaces) in the search list"
        ));
    }

    #[test]
    fn search_paths_are_relaxed_subdomains() {
        let c = config(json!({"searches": [".", "_sip._tcp.example.com.", "Bad.example", "a..b"]}));
        let errs = errors(Some(c), "Default");
        let msg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')";
        assert_eq!(
            errs,
            vec![
                format!(r#"spec.dnsConfig.searches[2]: Invalid value: "Bad.example": {msg}"#),
                format!(r#"spec.dnsConfig.searches[3]: Invalid value: "a..b": {msg}"#),
            ]
        );
    }

    #[test]
    fn search_path_length() {
        let long = format!("{}.example", "a".repeat(250));
        let errs = errors(Some(config(json!({"searches": [long]}))), "Default");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].ends_with(": must be no more than 253 characters"));
    }

    #[test]
    fn option_names_are_required() {
        let c = config(json!({"options": [{"name": "ndots", "value": "2"}, {"value": "1"}]}));
        assert_eq!(
            errors(Some(c), "Default"),
            vec!["spec.dnsConfig.options[1]: Required value: must not be empty"]
        );
    }

    #[test]
    fn validate_pod_checks_dns_config() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "dnsPolicy": "None"}
        }))
        .unwrap();
        default_pod(&mut pod);
        let err = validate_pod(&pod).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Pod \"p\" is invalid: spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
        );
        pod.spec.as_mut().unwrap().dns_config = Some(config(
            json!({"nameservers": ["1.1.1.1"], "searches": ["ns.svc.cluster.local"]}),
        ));
        assert!(validate_pod(&pod).is_ok());
    }
}
