//! kube's batch validation of a Job (ValidateJob and ValidateJobUpdate with the options
//! kube-apiserver 1.32's strategy passes), of a job spec (shared with a CronJob's job
//! template), and the create warnings.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule, SuccessPolicyRule,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use peapod_api::label_selector;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::names;
use peapod_api::validation::{validate_pod_template_spec, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};

pub const INDEXED: &str = "Indexed";
const NON_INDEXED: &str = "NonIndexed";
const NEGATIVE: &str = "must be greater than or equal to 0";
const IMMUTABLE: &str = "field is immutable";
const MAX_PARALLELISM_FOR_INDEXED_JOB: i32 = 100_000;
const MAX_FAILED_INDEXES_FOR_INDEXED_JOB: i32 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i32 = 100_000;
const PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_POD_FAILURE_POLICY_RULES: usize = 20;
const MAX_ON_EXIT_CODES_VALUES: usize = 255;
const MAX_ON_POD_CONDITIONS_PATTERNS: usize = 20;
const MAX_MANAGED_BY_LENGTH: usize = 63;
const MAX_SUCCEEDED_INDEXES_LENGTH: usize = 64 * 1024;
const MAX_SUCCESS_POLICY_RULES: usize = 20;
const HTTP_PATH_FMT: &str = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+";

/// ValidateJob: metadata, the generated selector, the spec, and the longest pod hostname an
/// Indexed job makes. `prefixed_labels` is kube's RequirePrefixedLabels.
pub fn validate_job(job: &Job, prefixed_labels: bool) -> Vec<FieldError> {
    let mut errors = validate_meta(job, true);
    let spec = job.spec.clone().unwrap_or_default();
    errors.extend(validate_generated_selector(job, &spec, prefixed_labels));
    errors.extend(validate_job_spec(&spec, &FieldPath::new("spec")));
    let completions = spec.completions.unwrap_or(0);
    if spec.completion_mode.as_deref() == Some(INDEXED) && completions > 0 {
        let name = job.metadata.name.as_deref().unwrap_or_default();
        let hostname = format!("{name}-{}", completions - 1);
        if !names::dns1123_label(&hostname).is_empty() {
            errors.push(FieldError::invalid(
                &FieldPath::new("metadata").child("name"),
                name,
                &format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    errors
}

pub fn validate(job: &Job) -> Vec<FieldError> {
    validate_job(job, true)
}

/// The strategy's ValidateUpdate: the new job valid (the prefixed labels required only when
/// the old template had them), then ValidateJobUpdate's immutable fields.
pub fn validate_update(new: &Job, old: &Job) -> Vec<FieldError> {
    let old_spec = old.spec.clone().unwrap_or_default();
    let old_labels = old_spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    let prefixed = old_labels
        .is_some_and(|l| l.contains_key(JOB_NAME_LABEL) && l.contains_key(CONTROLLER_UID_LABEL));
    let mut errors = validate_job(new, prefixed);
    let path = FieldPath::new("metadata");
    errors.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &path,
    ));
    let spec = new.spec.clone().unwrap_or_default();
    let spec_path = FieldPath::new("spec");
    errors.extend(validate_completions(&spec, &old_spec, &spec_path));
    errors.extend(immutable(
        &spec.selector,
        &old_spec.selector,
        &spec_path.child("selector"),
    ));
    errors.extend(validate_template_update(&spec, old, &spec_path));
    let immutable_fields = [
        (
            "completionMode",
            json!(spec.completion_mode),
            json!(old_spec.completion_mode),
        ),
        (
            "podFailurePolicy",
            json!(spec.pod_failure_policy),
            json!(old_spec.pod_failure_policy),
        ),
        (
            "backoffLimitPerIndex",
            json!(spec.backoff_limit_per_index),
            json!(old_spec.backoff_limit_per_index),
        ),
        (
            "managedBy",
            json!(spec.managed_by),
            json!(old_spec.managed_by),
        ),
        (
            "successPolicy",
            json!(spec.success_policy),
            json!(old_spec.success_policy),
        ),
    ];
    for (field, new_value, old_value) in immutable_fields {
        errors.extend(immutable(&new_value, &old_value, &spec_path.child(field)));
    }
    errors
}

/// validateGeneratedSelector: unless manual, the template carries the job's name and uid and
/// the selector selects them.
fn validate_generated_selector(
    job: &Job,
    spec: &JobSpec,
    prefixed_labels: bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(selector) = spec.selector.as_ref() else {
        return errors;
    };
    if spec.manual_selector == Some(true) {
        return errors;
    }
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let name = job.metadata.name.as_deref().unwrap_or_default();
    if uid.is_empty() {
        errors.push(FieldError::required(
            &FieldPath::new("metadata").child("uid"),
            "",
        ));
    }
    let labels = template_labels(&spec.template);
    let path = FieldPath::new("spec").child("template").child("metadata");
    let mut expected = BTreeMap::new();
    let mut required = vec![
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
    ];
    if prefixed_labels {
        required.extend([(CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name)]);
    }
    for (key, value) in required {
        errors.extend(validate_has_label(&labels, &path, key, value));
        expected.insert(key.to_owned(), value.to_owned());
    }
    if label_selector::as_selector(selector).is_ok()
        && !label_selector::matches(selector, &expected)
    {
        errors.push(FieldError::invalid(
            &FieldPath::new("spec").child("selector"),
            json!(selector),
            "`selector` not auto-generated",
        ));
    }
    errors
}

/// ValidateHasLabel.
fn validate_has_label(
    labels: &BTreeMap<String, String>,
    path: &FieldPath,
    key: &str,
    expected: &str,
) -> Option<FieldError> {
    let label_path = path.child("labels").key(key);
    let detail = format!("must be '{expected}'");
    match labels.get(key) {
        None => Some(FieldError::required(&label_path, &detail)),
        Some(value) if value != expected => {
            Some(FieldError::invalid(&label_path, json!(labels), &detail))
        }
        Some(_) => None,
    }
}

/// ValidateJobSpec: the spec, a selector required and matching the template's labels.
fn validate_job_spec(spec: &JobSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = validate_spec(spec, path);
    let selector_path = path.child("selector");
    match &spec.selector {
        None => errors.push(FieldError::required(&selector_path, "")),
        Some(selector) => errors.extend(label_selector::validate_label_selector(
            selector,
            &selector_path,
        )),
    }
    let labels = template_labels(&spec.template);
    let matches = match &spec.selector {
        None => Some(false),
        Some(selector) => label_selector::as_selector(selector)
            .ok()
            .map(|_| label_selector::matches(selector, &labels)),
    };
    if matches == Some(false) {
        errors.push(FieldError::invalid(
            &path.child("template").child("metadata").child("labels"),
            json!(labels),
            "`selector` does not match template `labels`",
        ));
    }
    errors
}

/// validateJobSpec: what a Job's spec and a CronJob's job template share.
pub(crate) fn validate_spec(spec: &JobSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let counts = [
        ("parallelism", spec.parallelism.map(i64::from)),
        ("completions", spec.completions.map(i64::from)),
        ("activeDeadlineSeconds", spec.active_deadline_seconds),
        ("backoffLimit", spec.backoff_limit.map(i64::from)),
        (
            "ttlSecondsAfterFinished",
            spec.ttl_seconds_after_finished.map(i64::from),
        ),
        (
            "backoffLimitPerIndex",
            spec.backoff_limit_per_index.map(i64::from),
        ),
        ("maxFailedIndexes", spec.max_failed_indexes.map(i64::from)),
    ];
    for (field, value) in counts {
        errors.extend(value.and_then(|v| non_negative(v, &path.child(field))));
    }
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        errors.push(FieldError::required(
            &path.child("backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    if let Some(managed_by) = &spec.managed_by {
        errors.extend(validate_managed_by(managed_by, &path.child("managedBy")));
    }
    errors.extend(validate_completion_mode(spec, path));
    if spec.pod_failure_policy.is_some() {
        errors.extend(validate_pod_failure_policy(
            spec,
            &path.child("podFailurePolicy"),
        ));
    }
    if let Some(policy) = &spec.success_policy {
        let policy_path = path.child("successPolicy");
        if spec.completion_mode.as_deref() != Some(INDEXED) {
            errors.push(FieldError::invalid(
                &policy_path,
                json!(policy),
                "requires indexed completion mode",
            ));
        } else {
            errors.extend(validate_success_policy(spec, &policy.rules, &policy_path));
        }
    }
    errors.extend(validate_pod_replacement_policy(
        spec,
        &path.child("podReplacementPolicy"),
    ));
    let template_path = path.child("template");
    errors.extend(validate_pod_template_spec(&spec.template, &template_path));
    errors.extend(validate_restart_policy(spec, &template_path));
    errors
}

/// The completion mode's own rules: a known mode, Indexed's limits, and the per-index fields
/// only for Indexed jobs.
fn validate_completion_mode(spec: &JobSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mode = spec.completion_mode.as_deref();
    if let Some(mode) = mode {
        if mode != NON_INDEXED && mode != INDEXED {
            errors.push(FieldError::not_supported(
                &path.child("completionMode"),
                mode,
                &[NON_INDEXED, INDEXED],
            ));
        }
    }
    if mode == Some(INDEXED) {
        errors.extend(validate_indexed(spec, path));
    }
    if mode.is_none() || mode == Some(NON_INDEXED) {
        for (field, value) in [
            ("backoffLimitPerIndex", spec.backoff_limit_per_index),
            ("maxFailedIndexes", spec.max_failed_indexes),
        ] {
            if let Some(value) = value {
                errors.push(FieldError::invalid(
                    &path.child(field),
                    value,
                    "requires indexed completion mode",
                ));
            }
        }
    }
    errors
}

fn validate_indexed(spec: &JobSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let (parallelism_path, max_failed_path) =
        (path.child("parallelism"), path.child("maxFailedIndexes"));
    if spec.completions.is_none() {
        errors.push(FieldError::required(
            &path.child("completions"),
            "when completion mode is Indexed",
        ));
    }
    if let Some(parallelism) = spec
        .parallelism
        .filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED_JOB)
    {
        let detail = format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed");
        errors.push(FieldError::invalid(&parallelism_path, parallelism, &detail));
    }
    if let (Some(completions), Some(max_failed)) = (spec.completions, spec.max_failed_indexes) {
        if max_failed > completions {
            errors.push(FieldError::invalid(
                &max_failed_path,
                max_failed,
                "must be less than or equal to completions",
            ));
        }
    }
    if let Some(max_failed) = spec
        .max_failed_indexes
        .filter(|m| *m > MAX_FAILED_INDEXES_FOR_INDEXED_JOB)
    {
        let detail = format!("must be less than or equal to {MAX_FAILED_INDEXES_FOR_INDEXED_JOB}");
        errors.push(FieldError::invalid(&max_failed_path, max_failed, &detail));
    }
    let high = spec.completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT);
    if !high || spec.backoff_limit_per_index.is_none() {
        return errors;
    }
    if spec.max_failed_indexes.is_none() {
        let detail =
            format!("must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}");
        errors.push(FieldError::required(&max_failed_path, &detail));
    }
    let suffix = format!(
        "when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
    );
    if let Some(parallelism) = spec
        .parallelism
        .filter(|p| *p > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS)
    {
        let detail = format!(
            "must be less than or equal to {PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS} {suffix}"
        );
        errors.push(FieldError::invalid(&parallelism_path, parallelism, &detail));
    }
    if let Some(max_failed) = spec
        .max_failed_indexes
        .filter(|m| *m > MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS)
    {
        let detail = format!("must be less than or equal to {MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS} {suffix}");
        errors.push(FieldError::invalid(&max_failed_path, max_failed, &detail));
    }
    errors
}

/// A Job's pods run to completion: OnFailure or Never (Never alone with a pod failure policy).
fn validate_restart_policy(spec: &JobSpec, template_path: &FieldPath) -> Option<FieldError> {
    let path = template_path.child("spec").child("restartPolicy");
    let policy = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or_default();
    match policy {
        "" | "Always" => Some(FieldError::required(
            &path,
            r#"valid values: "OnFailure", "Never""#,
        )),
        "OnFailure" if spec.pod_failure_policy.is_some() => Some(FieldError::invalid(
            &path,
            policy,
            r#"only "Never" is supported when podFailurePolicy is specified"#,
        )),
        "OnFailure" | "Never" => None,
        other => Some(FieldError::not_supported(
            &path,
            other,
            &["OnFailure", "Never"],
        )),
    }
}

/// IsDomainPrefixedPath and the length limit.
fn validate_managed_by(managed_by: &str, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match managed_by.split_once('/') {
        _ if managed_by.is_empty() => errors.push(FieldError::required(path, "")),
        Some((host, rest)) if !host.is_empty() && !rest.is_empty() => {
            for problem in names::dns1123_subdomain(host) {
                errors.push(FieldError::invalid(path, host, &problem));
            }
            let valid_path = rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c));
            if !valid_path {
                errors.push(FieldError::invalid(
                    path,
                    rest,
                    &names::regex_error("Invalid path", HTTP_PATH_FMT, &[]),
                ));
            }
        }
        _ => errors.push(FieldError::invalid(
            path,
            managed_by,
            r#"must be a domain-prefixed path (such as "acme.io/foo")"#,
        )),
    }
    if managed_by.len() > MAX_MANAGED_BY_LENGTH {
        errors.push(FieldError::too_long(path, MAX_MANAGED_BY_LENGTH));
    }
    errors
}

fn validate_pod_replacement_policy(spec: &JobSpec, path: &FieldPath) -> Option<FieldError> {
    let policy = spec.pod_replacement_policy.as_deref()?;
    let supported: &[&str] = if spec.pod_failure_policy.is_some() {
        &["Failed"]
    } else {
        &["Failed", "TerminatingOrFailed"]
    };
    (!supported.contains(&policy)).then(|| FieldError::not_supported(path, policy, supported))
}

fn validate_pod_failure_policy(spec: &JobSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let rules = spec
        .pod_failure_policy
        .as_ref()
        .map(|p| p.rules.as_slice())
        .unwrap_or_default();
    let rules_path = path.child("rules");
    if rules.len() > MAX_POD_FAILURE_POLICY_RULES {
        errors.push(FieldError::too_many(
            &rules_path,
            rules.len(),
            MAX_POD_FAILURE_POLICY_RULES,
        ));
    }
    let pod_spec = spec.template.spec.clone().unwrap_or_default();
    let init = pod_spec.init_containers.iter().flatten();
    let containers: BTreeSet<&str> = pod_spec
        .containers
        .iter()
        .chain(init)
        .map(|c| c.name.as_str())
        .collect();
    for (i, rule) in rules.iter().enumerate() {
        errors.extend(validate_pod_failure_policy_rule(
            spec,
            rule,
            &rules_path.index(i),
            &containers,
        ));
    }
    errors
}

fn validate_pod_failure_policy_rule(
    spec: &JobSpec,
    rule: &PodFailurePolicyRule,
    path: &FieldPath,
    containers: &BTreeSet<&str>,
) -> Vec<FieldError> {
    const ACTIONS: [&str; 4] = ["Count", "FailIndex", "FailJob", "Ignore"];
    let mut errors = Vec::new();
    let action_path = path.child("action");
    match rule.action.as_str() {
        "" => errors.push(FieldError::required(
            &action_path,
            &format!("valid values: {}", go_list(&ACTIONS)),
        )),
        "FailIndex" if spec.backoff_limit_per_index.is_none() => errors.push(FieldError::invalid(
            &action_path,
            "FailIndex",
            "requires the backoffLimitPerIndex to be set",
        )),
        action if !ACTIONS.contains(&action) => {
            errors.push(FieldError::not_supported(&action_path, action, &ACTIONS))
        }
        _ => {}
    }
    if let Some(on_exit_codes) = &rule.on_exit_codes {
        errors.extend(validate_on_exit_codes(
            on_exit_codes,
            &path.child("onExitCodes"),
            containers,
        ));
    }
    let patterns = rule.on_pod_conditions.as_deref().unwrap_or_default();
    if !patterns.is_empty() {
        errors.extend(validate_on_pod_conditions(
            patterns,
            &path.child("onPodConditions"),
        ));
    }
    match (rule.on_exit_codes.is_some(), patterns.is_empty()) {
        (true, false) => errors.push(FieldError::invalid_omitting_value(
            path,
            "specifying both OnExitCodes and OnPodConditions is not supported",
        )),
        (false, true) => errors.push(FieldError::invalid_omitting_value(
            path,
            "specifying one of OnExitCodes and OnPodConditions is required",
        )),
        _ => {}
    }
    errors
}

fn validate_on_pod_conditions(
    patterns: &[PodFailurePolicyOnPodConditionsPattern],
    path: &FieldPath,
) -> Vec<FieldError> {
    const STATUSES: [&str; 3] = ["False", "True", "Unknown"];
    let mut errors = Vec::new();
    if patterns.len() > MAX_ON_POD_CONDITIONS_PATTERNS {
        errors.push(FieldError::too_many(
            path,
            patterns.len(),
            MAX_ON_POD_CONDITIONS_PATTERNS,
        ));
    }
    for (j, pattern) in patterns.iter().enumerate() {
        let pattern_path = path.index(j);
        let type_path = pattern_path.child("type");
        for problem in names::qualified_name(&pattern.type_) {
            errors.push(FieldError::invalid(
                &type_path,
                pattern.type_.as_str(),
                &problem,
            ));
        }
        let status_path = pattern_path.child("status");
        match pattern.status.as_str() {
            "" => errors.push(FieldError::required(
                &status_path,
                &format!("valid values: {}", go_list(&STATUSES)),
            )),
            status if !STATUSES.contains(&status) => {
                errors.push(FieldError::not_supported(&status_path, status, &STATUSES))
            }
            _ => {}
        }
    }
    errors
}

fn validate_on_exit_codes(
    requirement: &PodFailurePolicyOnExitCodesRequirement,
    path: &FieldPath,
    containers: &BTreeSet<&str>,
) -> Vec<FieldError> {
    const OPERATORS: [&str; 2] = ["In", "NotIn"];
    let mut errors = Vec::new();
    let operator_path = path.child("operator");
    match requirement.operator.as_str() {
        "" => errors.push(FieldError::required(
            &operator_path,
            &format!("valid values: {}", go_list(&OPERATORS)),
        )),
        op if !OPERATORS.contains(&op) => {
            errors.push(FieldError::not_supported(&operator_path, op, &OPERATORS))
        }
        _ => {}
    }
    if let Some(name) = requirement
        .container_name
        .as_deref()
        .filter(|n| !containers.contains(n))
    {
        errors.push(FieldError::invalid(
            &path.child("containerName"),
            name,
            "must be one of the container or initContainer names in the pod template",
        ));
    }
    let values = &requirement.values;
    let values_path = path.child("values");
    if values.is_empty() {
        errors.push(FieldError::invalid(
            &values_path,
            json!(values),
            "at least one value is required",
        ));
    } else if values.len() > MAX_ON_EXIT_CODES_VALUES {
        errors.push(FieldError::too_many(
            &values_path,
            values.len(),
            MAX_ON_EXIT_CODES_VALUES,
        ));
    }
    let mut seen = BTreeSet::new();
    for (j, &value) in values.iter().enumerate() {
        let value_path = values_path.index(j);
        if requirement.operator == "In" && value == 0 {
            errors.push(FieldError::invalid(
                &value_path,
                value,
                "must not be 0 for the In operator",
            ));
        }
        if !seen.insert(value) {
            errors.push(FieldError::duplicate(&value_path, value));
        }
    }
    if values.windows(2).any(|pair| pair[0] > pair[1]) {
        errors.push(FieldError::invalid(
            &values_path,
            json!(values),
            "must be ordered",
        ));
    }
    errors
}

fn validate_success_policy(
    spec: &JobSpec,
    rules: &[SuccessPolicyRule],
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let rules_path = path.child("rules");
    if rules.is_empty() {
        errors.push(FieldError::required(
            &rules_path,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    }
    if rules.len() > MAX_SUCCESS_POLICY_RULES {
        errors.push(FieldError::too_many(
            &rules_path,
            rules.len(),
            MAX_SUCCESS_POLICY_RULES,
        ));
    }
    let completions = spec.completions.unwrap_or(0);
    for (i, rule) in rules.iter().enumerate() {
        errors.extend(validate_success_policy_rule(
            rule,
            completions,
            &rules_path.index(i),
        ));
    }
    errors
}

fn validate_success_policy_rule(
    rule: &SuccessPolicyRule,
    completions: i32,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if rule.succeeded_count.is_none() && rule.succeeded_indexes.is_none() {
        errors.push(FieldError::required(
            path,
            "at least one of succeededCount or succeededIndexes must be specified",
        ));
    }
    let mut total_indexes = 0;
    if let Some(indexes) = &rule.succeeded_indexes {
        let indexes_path = path.child("succeededIndexes");
        if indexes.len() > MAX_SUCCEEDED_INDEXES_LENGTH {
            errors.push(FieldError::too_long(
                &indexes_path,
                MAX_SUCCEEDED_INDEXES_LENGTH,
            ));
        }
        match parse_indexes(indexes, completions) {
            Ok(total) => total_indexes = total,
            Err(err) => errors.push(FieldError::invalid(
                &indexes_path,
                indexes.as_str(),
                &format!("error parsing succeededIndexes: {err}"),
            )),
        }
    }
    if let Some(count) = rule.succeeded_count {
        let count_path = path.child("succeededCount");
        errors.extend(non_negative(count.into(), &count_path));
        if count > completions {
            let detail = format!(
                "must be less than or equal to {completions} (the number of specified completions)"
            );
            errors.push(FieldError::invalid(&count_path, count, &detail));
        }
        if rule.succeeded_indexes.is_some() && count > total_indexes {
            let detail = format!(
                "must be less than or equal to {total_indexes} (the number of indexes in the specified succeededIndexes field)"
            );
            errors.push(FieldError::invalid(&count_path, count, &detail));
        }
    }
    errors
}

/// validateIndexesFormat: increasing intervals (`1,3-5`) below `completions`; their size.
pub(crate) fn parse_indexes(indexes: &str, completions: i32) -> Result<i32, String> {
    if indexes.is_empty() {
        return Ok(0);
    }
    let mut last: Option<i64> = None;
    let mut total = 0;
    for interval in indexes.split(',') {
        let (x, y) = parse_interval(interval, completions)?;
        if let Some(last) = last.filter(|last| *last >= x) {
            return Err(format!(
                "non-increasing order, previous: {last}, current: {x}"
            ));
        }
        total += (y - x + 1) as i32;
        last = Some(y);
    }
    Ok(total)
}

fn parse_interval(interval: &str, completions: i32) -> Result<(i64, i64), String> {
    let limits: Vec<&str> = interval.split('-').collect();
    if limits.len() > 2 {
        return Err(format!(
            "the fragment {interval:?} violates the requirement that an index interval can have at most two parts separated by '-'"
        ));
    }
    let parse = |limit: &str| -> Result<i64, String> {
        let index: i64 = limit
            .parse()
            .map_err(|_| format!("cannot convert string to integer for index: {limit:?}"))?;
        if index >= i64::from(completions) {
            return Err(format!("too large index: {limit:?}"));
        }
        Ok(index)
    };
    let x = parse(limits[0])?;
    let Some(second) = limits.get(1) else {
        return Ok((x, x));
    };
    let y = parse(second)?;
    if x >= y {
        return Err(format!("non-increasing order, previous: {x}, current: {y}"));
    }
    Ok((x, y))
}

/// validateCompletions: immutable, but an Indexed job's may change along with parallelism.
fn validate_completions(spec: &JobSpec, old: &JobSpec, path: &FieldPath) -> Option<FieldError> {
    let path = path.child("completions");
    if spec.completion_mode.as_deref() != Some(INDEXED) {
        return immutable(&spec.completions, &old.completions, &path);
    }
    let completions = spec.completions?;
    if spec.completions == old.completions || Some(completions) == spec.parallelism {
        return None;
    }
    Some(FieldError::invalid(
        &path,
        completions,
        "can only be modified in tandem with spec.parallelism",
    ))
}

/// validatePodTemplateUpdate: the template is immutable, except the scheduling directives of
/// a suspended job that never started (node affinity, node selector, tolerations, labels,
/// annotations and scheduling gates).
fn validate_template_update(spec: &JobSpec, old: &Job, path: &FieldPath) -> Option<FieldError> {
    let old_spec = old.spec.clone().unwrap_or_default();
    let mut old_template = serde_json::to_value(&old_spec.template).unwrap_or(Value::Null);
    let new_template = serde_json::to_value(&spec.template).unwrap_or(Value::Null);
    let suspended = old_spec.suspend == Some(true);
    let never_started = old
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .is_none();
    if suspended && never_started {
        allow_scheduling_changes(&mut old_template, &new_template);
    }
    immutable(&new_template, &old_template, &path.child("template"))
}

/// Copies onto `old` the mutable scheduling directives of `new`, so only other changes differ.
fn allow_scheduling_changes(old: &mut Value, new: &Value) {
    for (section, field) in [
        ("metadata", "labels"),
        ("metadata", "annotations"),
        ("spec", "nodeSelector"),
        ("spec", "tolerations"),
        ("spec", "schedulingGates"),
    ] {
        set_field(old, section, field, new[section].get(field).cloned());
    }
    let new_node_affinity = new.pointer("/spec/affinity/nodeAffinity").cloned();
    let old_affinity = old.pointer("/spec/affinity").cloned();
    let affinity = match (new.pointer("/spec/affinity"), old_affinity) {
        (None, Some(mut affinity)) => {
            remove_key(&mut affinity, "nodeAffinity");
            (!is_semantically_empty(&affinity)).then_some(affinity)
        }
        (Some(_), None) => Some(json!({ "nodeAffinity": new_node_affinity })),
        (Some(_), Some(mut affinity)) => {
            affinity["nodeAffinity"] = new_node_affinity.unwrap_or(Value::Null);
            Some(affinity)
        }
        (None, None) => None,
    };
    set_field(old, "spec", "affinity", affinity);
}

fn set_field(value: &mut Value, section: &str, field: &str, new: Option<Value>) {
    if !value[section].is_object() {
        value[section] = json!({});
    }
    match new {
        Some(new) => value[section][field] = new,
        None => remove_key(&mut value[section], field),
    }
}

fn remove_key(value: &mut Value, key: &str) {
    if let Some(map) = value.as_object_mut() {
        map.remove(key);
    }
}

/// ValidateImmutableField under Go's semantic equality (nil and empty alike).
fn immutable<T: Serialize>(new: &T, old: &T, path: &FieldPath) -> Option<FieldError> {
    let (new, old) = (json!(new), json!(old));
    (semantic(&new) != semantic(&old)).then(|| FieldError::invalid(path, new, IMMUTABLE))
}

/// A value with nulls, empty lists and empty maps dropped, as Go's semantic equality sees it.
fn semantic(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !is_semantically_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

fn is_semantically_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.values().all(is_semantically_empty),
        _ => false,
    }
}

fn template_labels(template: &PodTemplateSpec) -> BTreeMap<String, String> {
    template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn non_negative(value: i64, path: &FieldPath) -> Option<FieldError> {
    (value < 0).then(|| FieldError::invalid(path, value, NEGATIVE))
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| peapod_api::validation::go_quote(v))
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// kube's create warning for a name that is no DNS label (pods and hostnames are named after it).
pub(crate) fn name_warnings(name: Option<&str>) -> Vec<String> {
    let name = name.unwrap_or_default();
    let problems = names::dns1123_label(name);
    if name.is_empty() || problems.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [{}]",
        problems.join(" ")
    )]
}

/// The pod template's warnings (fields peapod does not implement, kube's pod warnings), each
/// under `prefix` (`spec.template.`).
pub(crate) fn template_warnings(template: Option<&PodTemplateSpec>, prefix: &str) -> Vec<String> {
    let Some(template) = template else {
        return Vec::new();
    };
    let pod = Pod {
        metadata: template.metadata.clone().unwrap_or_default(),
        spec: template.spec.clone(),
        status: None,
    };
    let value = serde_json::to_value(&pod).unwrap_or(Value::Null);
    peapod_api::support::unsupported_pod_fields(&value)
        .into_iter()
        .chain(peapod_api::warnings::pod_warnings(&pod))
        .map(|warning| {
            if warning.starts_with("spec") || warning.starts_with("metadata") {
                format!("{prefix}{warning}")
            } else {
                warning
            }
        })
        .collect()
}
