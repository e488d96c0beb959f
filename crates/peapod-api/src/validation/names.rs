//! String-format checks from apimachinery `util/validation` (DNS labels and
//! subdomains, qualified names, label values, env var and port names, IPs), each
//! returning Kubernetes' messages.

use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_MSG: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";

const SYSCTL_SEGMENT_FMT: &str = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?";
const SYSCTL_MAX_LENGTH: usize = 253;

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;

fn anchored(fmt: &str) -> Regex {
    Regex::new(&format!("^(?:{fmt})$")).expect("static regex")
}

static DNS1123_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| anchored(&subdomain_fmt()));
static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE: LazyLock<Regex> =
    LazyLock::new(|| anchored(&format!("({QUALIFIED_NAME_FMT})?")));
static ENV_VAR_NAME: LazyLock<Regex> = LazyLock::new(|| anchored(ENV_VAR_NAME_FMT));
static SYSCTL_NAME: LazyLock<Regex> = LazyLock::new(|| {
    let segment = SYSCTL_SEGMENT_FMT;
    Regex::new(&format!("^({segment}[\\./])*{segment}$")).expect("static regex")
});
static PORT_NAME_CHARSET: LazyLock<Regex> = LazyLock::new(|| anchored("[-a-z0-9]+"));

fn subdomain_fmt() -> String {
    format!("{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*")
}

/// `must be no more than N characters`
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Kubernetes' `RegexError`: message, examples and the regex used.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let quoted: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        quoted.join(" or ")
    )
}

/// `must be between lo and hi, inclusive`
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// IsDNS1123Label
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !DNS1123_LABEL.is_match(value) {
        if DNS1123_SUBDOMAIN.is_match(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// IsDNS1123Subdomain
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !DNS1123_SUBDOMAIN.is_match(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            &subdomain_fmt(),
            &["example.com"],
        ));
    }
    errs
}

/// NameIsDNSSubdomain: with `prefix` (generateName) a trailing dash is allowed.
pub fn object_name(value: &str, prefix: bool) -> Vec<String> {
    if prefix && value.len() > 1 && value.ends_with('-') {
        return dns1123_subdomain(&format!("{}a", &value[..value.len() - 1]));
    }
    dns1123_subdomain(value)
}

fn qualified_name_error() -> String {
    regex_error(
        QUALIFIED_NAME_MSG,
        QUALIFIED_NAME_FMT,
        &["MyName", "my.name", "123-abc"],
    )
}

/// IsQualifiedName (label keys, annotation keys).
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                let msgs = dns1123_subdomain(prefix);
                errs.extend(msgs.into_iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                qualified_name_error()
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !QUALIFIED_NAME.is_match(name) {
        errs.push(format!("name part {}", qualified_name_error()));
    }
    errs
}

/// IsValidLabelValue
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !LABEL_VALUE.is_match(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// IsRelaxedEnvVarName: the rule of Kubernetes 1.32, whose RelaxedEnvironmentVariableValidation
/// gate is on (beta): any printable ASCII character but '='.
pub fn relaxed_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        );
    }
    errs
}

/// IsEnvVarName (the strict form).
pub fn env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if !ENV_VAR_NAME.is_match(value) {
        errs.push(regex_error(
            ENV_VAR_NAME_MSG,
            ENV_VAR_NAME_FMT,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    match value {
        "." => errs.push("must not be '.'".to_string()),
        ".." => errs.push("must not be '..'".to_string()),
        v if v.starts_with("..") => errs.push("must not start with '..'".to_string()),
        _ => {}
    }
    errs
}

/// IsValidPortName (IANA_SVC_NAME).
pub fn port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if !PORT_NAME_CHARSET.is_match(port) {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// IsValidPortNum
pub fn port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        return Vec::new();
    }
    vec![inclusive_range_error(1, 65535)]
}

/// IsValidSysctlName (dots or slashes between segments), with validateSysctls' message.
pub fn sysctl_name(value: &str) -> Vec<String> {
    if value.len() <= SYSCTL_MAX_LENGTH && SYSCTL_NAME.is_match(value) {
        return Vec::new();
    }
    vec![format!(
        "must have at most {SYSCTL_MAX_LENGTH} characters and match regex {}",
        SYSCTL_NAME.as_str()
    )]
}

/// IsValidIP
pub fn ip(value: &str) -> Vec<String> {
    if value.parse::<IpAddr>().is_ok() {
        return Vec::new();
    }
    vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_label_messages() {
        assert!(dns1123_label("web-1").is_empty());
        assert_eq!(dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            dns1123_label("Web"),
            vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            dns1123_label(&"a".repeat(64))[0],
            "must be no more than 63 characters"
        );
    }

    #[test]
    fn subdomain_messages() {
        assert!(dns1123_subdomain("my.pod-1").is_empty());
        assert_eq!(
            dns1123_subdomain("My_Pod"),
            vec![
                r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert!(object_name("web-", true).is_empty());
        assert!(!object_name("web-", false).is_empty());
    }

    #[test]
    fn qualified_names() {
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert_eq!(qualified_name("/x"), vec!["prefix part must be non-empty"]);
        let errs = qualified_name("a/b/c");
        assert!(
            errs[0].starts_with("a qualified name must consist of"),
            "{errs:?}"
        );
        let errs = qualified_name("-x");
        assert!(errs[0].starts_with("name part must consist of"), "{errs:?}");
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2_x").is_empty());
        assert!(label_value("bad value")[0].starts_with("a valid label must be an empty string"));
    }

    #[test]
    fn env_and_port_names() {
        assert!(relaxed_env_var_name("1BAD-name.x y").is_empty());
        assert_eq!(relaxed_env_var_name("A=B").len(), 1);
        assert_eq!(relaxed_env_var_name("tab\there").len(), 1);
        assert_eq!(relaxed_env_var_name("é").len(), 1);
        assert_eq!(relaxed_env_var_name("").len(), 1);
        assert!(env_var_name("MY_VAR.x-1").is_empty());
        assert_eq!(env_var_name("1X").len(), 1);
        assert_eq!(env_var_name("..a"), vec!["must not start with '..'"]);
        assert!(port_name("http").is_empty());
        assert_eq!(
            port_name("-8080-"),
            vec![
                "must contain at least one letter (a-z)",
                "must not begin or end with a hyphen"
            ]
        );
        assert_eq!(
            port_name("a--b"),
            vec!["must not contain consecutive hyphens"]
        );
        assert_eq!(
            port_name("averyveryverylongname")[0],
            "must be no more than 15 characters"
        );
        assert_eq!(port_num(0), vec!["must be between 1 and 65535, inclusive"]);
        assert!(ip("10.0.0.1").is_empty() && ip("::1").is_empty());
        assert!(sysctl_name("kernel.shm_rmid_forced").is_empty());
        assert!(sysctl_name("net/ipv4/conf/eno2.100/rp_filter").is_empty());
        assert_eq!(
            sysctl_name("bar.."),
            vec![
                r"must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"
            ]
        );
        assert_eq!(sysctl_name(&"a".repeat(254)).len(), 1);
        assert_eq!(ip("10.0.0").len(), 1);
    }
}
