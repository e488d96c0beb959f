//! `kubectl describe pod` text, following kubectl's describePod section by section and laid out
//! by the same tabwriter settings (minwidth 0, padding 2).

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EnvVar, Event, Pod, Probe, ResourceRequirements,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as QuantityString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_api::quantity::Quantity;

use crate::duration::since;
use crate::events::{first_seen, sorted};
use crate::tabwriter::DESCRIBE;

const MAX_ANNOTATION_LEN: usize = 140;
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// How Go prints a zero `time.Time` in RFC1123Z, for timestamps that were never set.
const GO_ZERO_TIME: &str = "Mon, 01 Jan 0001 00:00:00 +0000";

type Labels = BTreeMap<String, String>;

/// `kubectl describe pod` text, with the Events section built from `events`
/// ("Events:  <none>" when empty). Times print in the system time zone, as kubectl's do.
pub fn describe_pod(pod: &Pod, events: &[Event], now: Timestamp) -> String {
    describe_pod_in(pod, events, now, &TimeZone::system())
}

/// `describe_pod` with absolute times (Start Time, Started, Finished) shown in `tz`.
pub fn describe_pod_in(pod: &Pod, events: &[Event], now: Timestamp, tz: &TimeZone) -> String {
    let mut d = Describer {
        text: String::new(),
        now,
        tz,
    };
    d.identity(pod);
    d.status(pod);
    d.network(pod);
    d.all_containers(pod);
    d.conditions(pod);
    d.volumes(
        pod.spec
            .as_ref()
            .and_then(|s| s.volumes.as_deref())
            .unwrap_or_default(),
    );
    d.scheduling(pod);
    d.events(events);
    DESCRIBE.format(&d.text)
}

/// kubectl's DescribeEvents section (`Events:  <none>`, or the table oldest first) as
/// tab-separated lines, for [`describe_layout`].
pub fn events_section(events: &[Event], now: Timestamp) -> String {
    let utc = TimeZone::UTC;
    let mut describer = Describer {
        text: String::new(),
        now,
        tz: &utc,
    };
    describer.events(events);
    describer.text
}

/// Lays out tab-separated describe text as kubectl describe's `tabbedString` does.
pub fn describe_layout(text: &str) -> String {
    DESCRIBE.format(text)
}

struct Describer<'a> {
    text: String,
    now: Timestamp,
    tz: &'a TimeZone,
}

impl Describer<'_> {
    /// kubectl's PrefixWriter: two spaces per level, terminal escapes neutralised.
    fn write(&mut self, level: usize, text: &str) {
        self.text.push_str(&"  ".repeat(level));
        self.text
            .push_str(&text.replace('\x1b', "^[").replace('\r', "\\r"));
    }

    fn line(&mut self, level: usize, text: &str) {
        self.write(level, text);
        self.text.push('\n');
    }

    fn time(&self, time: Option<&Time>) -> String {
        match time {
            Some(time) => time
                .0
                .to_zoned(self.tz.clone())
                .strftime("%a, %d %b %Y %H:%M:%S %z")
                .to_string(),
            None => GO_ZERO_TIME.to_string(),
        }
    }

    fn identity(&mut self, pod: &Pod) {
        let meta = &pod.metadata;
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        self.line(
            0,
            &format!("Name:\t{}", meta.name.as_deref().unwrap_or_default()),
        );
        self.line(
            0,
            &format!(
                "Namespace:\t{}",
                meta.namespace.as_deref().unwrap_or_default()
            ),
        );
        if let Some(priority) = spec.priority {
            self.line(0, &format!("Priority:\t{priority}"));
        }
        if let Some(class) = non_empty(spec.priority_class_name.as_deref()) {
            self.line(0, &format!("Priority Class Name:\t{class}"));
        }
        if let Some(class) = non_empty(spec.runtime_class_name.as_deref()) {
            self.line(0, &format!("Runtime Class Name:\t{class}"));
        }
        if let Some(account) = non_empty(spec.service_account_name.as_deref()) {
            self.line(0, &format!("Service Account:\t{account}"));
        }
        match non_empty(spec.node_name.as_deref()) {
            None => self.line(0, "Node:\t<none>"),
            Some(node) => {
                let host_ip = status.host_ip.as_deref().unwrap_or_default();
                self.line(0, &format!("Node:\t{node}/{host_ip}"));
            }
        }
        if status.start_time.is_some() {
            let start = self.time(status.start_time.as_ref());
            self.line(0, &format!("Start Time:\t{start}"));
        }
        self.labels("Labels", meta.labels.as_ref());
        self.annotations(meta.annotations.as_ref());
    }

    fn status(&mut self, pod: &Pod) {
        let status = pod.status.clone().unwrap_or_default();
        let phase = status.phase.unwrap_or_default();
        let terminal = phase == "Failed" || phase == "Succeeded";
        match &pod.metadata.deletion_timestamp {
            Some(deleted) if !terminal => {
                let lasts = since(Some(deleted.0), self.now);
                self.line(0, &format!("Status:\tTerminating (lasts {lasts})"));
                if let Some(grace) = pod.metadata.deletion_grace_period_seconds {
                    self.line(0, &format!("Termination Grace Period:\t{grace}s"));
                }
            }
            _ => self.line(0, &format!("Status:\t{phase}")),
        }
        if let Some(reason) = non_empty(status.reason.as_deref()) {
            self.line(0, &format!("Reason:\t{reason}"));
        }
        if let Some(message) = non_empty(status.message.as_deref()) {
            self.line(0, &format!("Message:\t{message}"));
        }
        let security = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
        if let Some(profile) = security.and_then(|s| s.seccomp_profile.as_ref()) {
            self.line(0, &format!("SeccompProfile:\t{}", profile.type_));
            if profile.type_ == "Localhost" {
                let local = profile.localhost_profile.as_deref().unwrap_or_default();
                self.line(0, &format!("LocalhostProfile:\t{local}"));
            }
        }
    }

    fn network(&mut self, pod: &Pod) {
        let status = pod.status.clone().unwrap_or_default();
        self.line(
            0,
            &format!("IP:\t{}", status.pod_ip.as_deref().unwrap_or_default()),
        );
        let ips = status.pod_ips.unwrap_or_default();
        if ips.is_empty() {
            self.line(0, "IPs:\t<none>");
        } else {
            self.line(0, "IPs:");
            for ip in ips {
                self.line(1, &format!("IP:\t{}", ip.ip));
            }
        }
        let owners = pod.metadata.owner_references.iter().flatten();
        if let Some(owner) = owners.into_iter().find(|o| o.controller == Some(true)) {
            self.line(0, &format!("Controlled By:\t{}/{}", owner.kind, owner.name));
        }
        if let Some(nominated) = non_empty(status.nominated_node_name.as_deref()) {
            self.line(0, &format!("NominatedNodeName:\t{nominated}"));
        }
        if let Some(resources) = pod.spec.as_ref().and_then(|s| s.resources.as_ref()) {
            self.line(0, "Resources:");
            self.resources(resources, 1);
        }
    }

    fn all_containers(&mut self, pod: &Pod) {
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let init = spec.init_containers.unwrap_or_default();
        if !init.is_empty() {
            let statuses = status.init_container_statuses.unwrap_or_default();
            self.containers("Init Containers", &init, &statuses, pod);
        }
        let statuses = status.container_statuses.unwrap_or_default();
        self.containers("Containers", &spec.containers, &statuses, pod);
    }

    fn containers(
        &mut self,
        label: &str,
        containers: &[Container],
        statuses: &[ContainerStatus],
        pod: &Pod,
    ) {
        let none = if containers.is_empty() { " <none>" } else { "" };
        self.line(0, &format!("{label}:{none}"));
        for container in containers {
            let status = statuses.iter().find(|s| s.name == container.name);
            self.container_basics(container, status);
            self.command(container);
            if let Some(status) = status {
                self.container_state(status);
            }
            if let Some(resources) = &container.resources {
                self.resources(resources, 2);
            }
            self.probes(container);
            self.env_from(container);
            self.env(container, pod);
            self.mounts(container);
        }
    }

    fn container_basics(&mut self, container: &Container, status: Option<&ContainerStatus>) {
        self.line(1, &format!("{}:", container.name));
        if let Some(status) = status {
            let id = status.container_id.as_deref().unwrap_or_default();
            self.line(2, &format!("Container ID:\t{id}"));
        }
        self.line(
            2,
            &format!("Image:\t{}", container.image.as_deref().unwrap_or_default()),
        );
        if let Some(status) = status {
            self.line(2, &format!("Image ID:\t{}", status.image_id));
        }
        let ports = container.ports.as_deref().unwrap_or_default();
        let container_ports = port_list(ports.iter().map(|p| (p.container_port, p)));
        self.port_line("Port", &container_ports);
        let host_ports = port_list(ports.iter().map(|p| (p.host_port.unwrap_or(0), p)));
        self.port_line("Host Port", &host_ports);
        let security = container.security_context.as_ref();
        if let Some(profile) = security.and_then(|s| s.seccomp_profile.as_ref()) {
            self.line(2, &format!("SeccompProfile:\t{}", profile.type_));
            if profile.type_ == "Localhost" {
                let local = profile.localhost_profile.as_deref().unwrap_or_default();
                self.line(3, &format!("LocalhostProfile:\t{local}"));
            }
        }
    }

    fn port_line(&mut self, title: &str, ports: &str) {
        if ports.contains(',') {
            self.line(2, &format!("{title}s:\t{ports}"));
        } else {
            let ports = if ports.is_empty() { "<none>" } else { ports };
            self.line(2, &format!("{title}:\t{ports}"));
        }
    }

    fn command(&mut self, container: &Container) {
        for (title, words) in [("Command", &container.command), ("Args", &container.args)] {
            let words = words.as_deref().unwrap_or_default();
            if words.is_empty() {
                continue;
            }
            self.line(2, &format!("{title}:"));
            for line in words.iter().flat_map(|w| w.split('\n')) {
                self.line(3, line);
            }
        }
    }

    fn container_state(&mut self, status: &ContainerStatus) {
        self.state("State", status.state.as_ref());
        let last = status.last_state.as_ref();
        if last.is_some_and(|s| s.terminated.is_some()) {
            self.state("Last State", last);
        }
        self.line(2, &format!("Ready:\t{}", go_bool(status.ready)));
        self.line(2, &format!("Restart Count:\t{}", status.restart_count));
    }

    fn state(&mut self, name: &str, state: Option<&ContainerState>) {
        let state = state.cloned().unwrap_or_default();
        if let Some(running) = &state.running {
            self.line(2, &format!("{name}:\tRunning"));
            let started = self.time(running.started_at.as_ref());
            self.line(3, &format!("Started:\t{started}"));
        } else if let Some(waiting) = &state.waiting {
            self.line(2, &format!("{name}:\tWaiting"));
            if let Some(reason) = non_empty(waiting.reason.as_deref()) {
                self.line(3, &format!("Reason:\t{reason}"));
            }
        } else if let Some(terminated) = &state.terminated {
            self.line(2, &format!("{name}:\tTerminated"));
            if let Some(reason) = non_empty(terminated.reason.as_deref()) {
                self.line(3, &format!("Reason:\t{reason}"));
            }
            if let Some(message) = non_empty(terminated.message.as_deref()) {
                self.line(3, &format!("Message:\t{message}"));
            }
            self.line(3, &format!("Exit Code:\t{}", terminated.exit_code));
            if let Some(signal) = terminated.signal.filter(|s| *s > 0) {
                self.line(3, &format!("Signal:\t{signal}"));
            }
            let started = self.time(terminated.started_at.as_ref());
            self.line(3, &format!("Started:\t{started}"));
            let finished = self.time(terminated.finished_at.as_ref());
            self.line(3, &format!("Finished:\t{finished}"));
        } else {
            self.line(2, &format!("{name}:\tWaiting"));
        }
    }

    fn resources(&mut self, resources: &ResourceRequirements, level: usize) {
        for (title, amounts) in [
            ("Limits", &resources.limits),
            ("Requests", &resources.requests),
        ] {
            let Some(amounts) = amounts.as_ref().filter(|a| !a.is_empty()) else {
                continue;
            };
            self.line(level, &format!("{title}:"));
            for (name, quantity) in amounts {
                self.line(level + 1, &format!("{name}:\t{}", quantity.0));
            }
        }
    }

    fn probes(&mut self, container: &Container) {
        let probes = [
            ("Liveness", &container.liveness_probe),
            ("Readiness", &container.readiness_probe),
            ("Startup", &container.startup_probe),
        ];
        for (title, probe) in probes {
            if let Some(probe) = probe {
                self.line(2, &format!("{title}:\t{}", describe_probe(probe)));
            }
        }
    }

    fn env_from(&mut self, container: &Container) {
        let sources = container.env_from.as_deref().unwrap_or_default();
        if sources.is_empty() {
            return;
        }
        self.line(2, "Environment Variables from:");
        for source in sources {
            let (from, name, optional) = match (&source.config_map_ref, &source.secret_ref) {
                (Some(c), _) => ("ConfigMap", c.name.as_str(), c.optional.unwrap_or(false)),
                (None, Some(s)) => ("Secret", s.name.as_str(), s.optional.unwrap_or(false)),
                (None, None) => ("", "", false),
            };
            match non_empty(source.prefix.as_deref()) {
                None => self.line(3, &format!("{name}\t{from}\tOptional: {optional}")),
                Some(prefix) => self.line(
                    3,
                    &format!("{name}\t{from} with prefix '{prefix}'\tOptional: {optional}"),
                ),
            }
        }
    }

    fn env(&mut self, container: &Container, pod: &Pod) {
        let vars = container.env.as_deref().unwrap_or_default();
        let none = if vars.is_empty() { "\t<none>" } else { "" };
        self.line(2, &format!("Environment:{none}"));
        for var in vars {
            if var.value_from.is_none() {
                let value = var.value.as_deref().unwrap_or_default();
                for (i, part) in value.split('\n').enumerate() {
                    let name = if i == 0 {
                        format!("{}:", var.name)
                    } else {
                        String::new()
                    };
                    self.line(3, &format!("{name}\t{part}"));
                }
            } else if let Some(described) = describe_env_source(var, container, pod) {
                self.line(3, &format!("{}:\t{described}", var.name));
            }
        }
    }

    fn mounts(&mut self, container: &Container) {
        let mut mounts: Vec<&VolumeMount> = container.volume_mounts.iter().flatten().collect();
        let none = if mounts.is_empty() { "\t<none>" } else { "" };
        self.line(2, &format!("Mounts:{none}"));
        mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
        for mount in mounts {
            let mut flags = vec![if mount.read_only == Some(true) {
                "ro"
            } else {
                "rw"
            }
            .to_string()];
            if let Some(sub_path) = non_empty(mount.sub_path.as_deref()) {
                flags.push(format!("path={sub_path:?}"));
            }
            self.line(
                3,
                &format!(
                    "{} from {} ({})",
                    mount.mount_path,
                    mount.name,
                    flags.join(",")
                ),
            );
        }
        let mut devices: Vec<_> = container.volume_devices.iter().flatten().collect();
        if !devices.is_empty() {
            self.line(2, &format!("Devices:{none}"));
            devices.sort_by(|a, b| a.device_path.cmp(&b.device_path));
            for device in devices {
                self.line(3, &format!("{} from {}", device.device_path, device.name));
            }
        }
    }

    fn conditions(&mut self, pod: &Pod) {
        let gates = pod
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.clone())
            .unwrap_or_default();
        let conditions = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if !gates.is_empty() {
            self.line(0, "Readiness Gates:\n  Type\tStatus");
            for gate in gates {
                let found = conditions.iter().find(|c| c.type_ == gate.condition_type);
                let status = found.map_or("<none>", |c| c.status.as_str());
                self.line(1, &format!("{} \t{} ", gate.condition_type, status));
            }
        }
        if !conditions.is_empty() {
            self.line(0, "Conditions:\n  Type\tStatus");
            for condition in &conditions {
                self.line(1, &format!("{} \t{} ", condition.type_, condition.status));
            }
        }
    }

    fn volumes(&mut self, volumes: &[Volume]) {
        if volumes.is_empty() {
            self.line(0, "Volumes:\t<none>");
            return;
        }
        self.line(0, "Volumes:");
        for volume in volumes {
            self.line(1, &format!("{}:", volume.name));
            for line in volume_lines(volume) {
                self.line(2, &line);
            }
        }
    }

    fn scheduling(&mut self, pod: &Pod) {
        let spec = pod.spec.clone().unwrap_or_default();
        self.line(0, &format!("QoS Class:\t{}", qos_class(pod)));
        self.labels("Node-Selectors", spec.node_selector.as_ref());
        self.tolerations(spec.tolerations.unwrap_or_default());
    }

    fn labels(&mut self, title: &str, labels: Option<&Labels>) {
        self.write(0, &format!("{title}:\t"));
        let labels = labels.filter(|l| !l.is_empty());
        let Some(labels) = labels else {
            self.line(0, "<none>");
            return;
        };
        for (i, (key, value)) in labels.iter().enumerate() {
            if i != 0 {
                self.write(0, "\t");
            }
            self.line(0, &format!("{key}={value}"));
        }
    }

    fn annotations(&mut self, annotations: Option<&Labels>) {
        self.write(0, "Annotations:\t");
        let shown: Vec<_> = annotations
            .into_iter()
            .flatten()
            .filter(|(key, _)| key.as_str() != LAST_APPLIED_ANNOTATION)
            .collect();
        if shown.is_empty() {
            self.line(0, "<none>");
            return;
        }
        for (i, (key, value)) in shown.into_iter().enumerate() {
            if i != 0 {
                self.write(0, "\t");
            }
            let value = value.strip_suffix('\n').unwrap_or(value);
            if value.len() + key.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
                self.line(0, &format!("{key}:"));
                for part in value.split('\n') {
                    self.line(0, &format!("\t  {}", shorten(part, MAX_ANNOTATION_LEN - 2)));
                }
            } else {
                self.line(0, &format!("{key}: {value}"));
            }
        }
    }

    fn tolerations(&mut self, mut tolerations: Vec<Toleration>) {
        self.write(0, "Tolerations:\t");
        if tolerations.is_empty() {
            self.line(0, "<none>");
            return;
        }
        tolerations.sort_by(|a, b| a.key.cmp(&b.key));
        for (i, toleration) in tolerations.iter().enumerate() {
            if i != 0 {
                self.write(0, "\t");
            }
            self.line(0, &describe_toleration(toleration));
        }
    }

    fn events(&mut self, events: &[Event]) {
        if events.is_empty() {
            self.line(0, "Events:\t<none>");
            return;
        }
        self.line(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage");
        self.line(1, "----\t------\t----\t----\t-------");
        for event in sorted(events) {
            let row = describe_event(event, self.now);
            self.line(1, &row);
        }
    }
}

fn describe_event(event: &Event, now: Timestamp) -> String {
    let first = since(first_seen(event), now);
    let count = event.count.unwrap_or(0);
    let interval = match &event.series {
        Some(series) => {
            let last = since(series.last_observed_time.as_ref().map(|t| t.0), now);
            format!("{last} (x{} over {first})", series.count.unwrap_or(0))
        }
        None if count > 1 => {
            let last = since(event.last_timestamp.as_ref().map(|t| t.0), now);
            format!("{last} (x{count} over {first})")
        }
        None => first,
    };
    let component = event
        .source
        .as_ref()
        .and_then(|s| non_empty(s.component.as_deref()));
    let source = component
        .or(event.reporting_component.as_deref())
        .unwrap_or_default();
    // kubectl's describe prints the message alone (the field path is not shown).
    let message = event.message.as_deref().unwrap_or_default().trim();
    let kind = event.type_.as_deref().unwrap_or_default();
    let reason = event.reason.as_deref().unwrap_or_default();
    format!("{kind}\t{reason}\t{interval}\t{source}\t{message}")
}

fn describe_toleration(toleration: &Toleration) -> String {
    let key = toleration.key.as_deref().unwrap_or_default();
    let value = toleration.value.as_deref().unwrap_or_default();
    let effect = toleration.effect.as_deref().unwrap_or_default();
    let mut text = key.to_string();
    if !value.is_empty() {
        text.push_str(&format!("={value}"));
    }
    if !effect.is_empty() {
        text.push_str(&format!(":{effect}"));
    }
    if toleration.operator.as_deref() == Some("Exists") && value.is_empty() {
        let separator = if key.is_empty() && effect.is_empty() {
            ""
        } else {
            " "
        };
        text.push_str(&format!("{separator}op=Exists"));
    }
    if let Some(seconds) = toleration.toleration_seconds {
        text.push_str(&format!(" for {seconds}s"));
    }
    text
}

/// The lines under a volume's name, each written two levels deep.
fn volume_lines(volume: &Volume) -> Vec<String> {
    let nested = |title: &str, fields: &[(&str, String)]| {
        let mut lines = vec![format!("Type:\t{title}")];
        lines.extend(
            fields
                .iter()
                .map(|(name, value)| format!("{name}:\t{value}")),
        );
        lines
    };
    if let Some(host) = &volume.host_path {
        let kind = host.type_.clone().unwrap_or_else(|| "<none>".to_string());
        return nested(
            "HostPath (bare host directory volume)",
            &[("Path", host.path.clone()), ("HostPathType", kind)],
        );
    }
    if let Some(empty) = &volume.empty_dir {
        return nested(
            "EmptyDir (a temporary directory that shares a pod's lifetime)",
            &[
                ("Medium", empty.medium.clone().unwrap_or_default()),
                ("SizeLimit", size_limit(empty.size_limit.as_ref())),
            ],
        );
    }
    if let Some(secret) = &volume.secret {
        return nested(
            "Secret (a volume populated by a Secret)",
            &[
                ("SecretName", secret.secret_name.clone().unwrap_or_default()),
                ("Optional", secret.optional.unwrap_or(false).to_string()),
            ],
        );
    }
    if let Some(config_map) = &volume.config_map {
        return nested(
            "ConfigMap (a volume populated by a ConfigMap)",
            &[
                ("Name", config_map.name.clone()),
                ("Optional", config_map.optional.unwrap_or(false).to_string()),
            ],
        );
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        return nested(
            "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)",
            &[
                ("ClaimName", claim.claim_name.clone()),
                ("ReadOnly", claim.read_only.unwrap_or(false).to_string()),
            ],
        );
    }
    if let Some(image) = &volume.image {
        return nested(
            "Image (a container image or OCI artifact)",
            &[
                ("Reference", image.reference.clone().unwrap_or_default()),
                ("PullPolicy", image.pull_policy.clone().unwrap_or_default()),
            ],
        );
    }
    if let Some(projected) = &volume.projected {
        return projected_lines(projected);
    }
    if let Some(downward) = &volume.downward_api {
        let mut lines = vec![
            "Type:\tDownwardAPI (a volume populated by information about the pod)".to_string(),
            "Items:".to_string(),
        ];
        for item in downward.items.iter().flatten() {
            if let Some(field) = &item.field_ref {
                lines.push(format!("  {} -> {}", field.field_path, item.path));
            }
            if let Some(resource) = &item.resource_field_ref {
                lines.push(format!("  {} -> {}", resource.resource, item.path));
            }
        }
        return lines;
    }
    vec!["<unknown>".to_string()]
}

fn projected_lines(projected: &k8s_openapi::api::core::v1::ProjectedVolumeSource) -> Vec<String> {
    let mut lines = vec![
        "Type:\tProjected (a volume that contains injected data from multiple sources)".to_string(),
    ];
    for source in projected.sources.iter().flatten() {
        if let Some(secret) = &source.secret {
            lines.push(format!("SecretName:\t{}", secret.name));
            lines.push(format!("Optional:\t{}", secret.optional.unwrap_or(false)));
        } else if source.downward_api.is_some() {
            lines.push("DownwardAPI:\ttrue".to_string());
        } else if let Some(config_map) = &source.config_map {
            lines.push(format!("ConfigMapName:\t{}", config_map.name));
            lines.push(format!(
                "Optional:\t{}",
                config_map.optional.unwrap_or(false)
            ));
        } else if let Some(token) = &source.service_account_token {
            let seconds = token.expiration_seconds.unwrap_or(3600);
            lines.push(format!("TokenExpirationSeconds:\t{seconds}"));
        }
    }
    lines
}

fn size_limit(limit: Option<&QuantityString>) -> String {
    let positive = limit.filter(|q| parse_quantity(&q.0).is_some_and(|v| !v.is_zero()));
    positive.map_or_else(|| "<unset>".to_string(), |q| q.0.clone())
}

/// kubectl's DescribeProbe, with the API server's defaults for unset fields.
fn describe_probe(probe: &Probe) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s successThreshold={} failureThreshold={}",
        probe.initial_delay_seconds.unwrap_or(0),
        probe.timeout_seconds.unwrap_or(1),
        probe.period_seconds.unwrap_or(10),
        probe.success_threshold.unwrap_or(1),
        probe.failure_threshold.unwrap_or(3),
    );
    if let Some(exec) = &probe.exec {
        let command = exec.command.as_deref().unwrap_or_default().join(" ");
        return format!("exec [{command}] {attrs}");
    }
    if let Some(http) = &probe.http_get {
        let scheme = http.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
        let host = join_host_port(
            http.host.as_deref().unwrap_or_default(),
            &int_or_string(&http.port),
        );
        let path = http.path.as_deref().unwrap_or_default();
        let slash = if path.is_empty() || path.starts_with('/') {
            ""
        } else {
            "/"
        };
        return format!("http-get {scheme}://{host}{slash}{path} {attrs}");
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = tcp.host.as_deref().unwrap_or_default();
        return format!("tcp-socket {host}:{} {attrs}", int_or_string(&tcp.port));
    }
    if let Some(grpc) = &probe.grpc {
        let service = grpc.service.as_deref().unwrap_or_default();
        return format!("grpc <pod>:{} {service} {attrs}", grpc.port);
    }
    format!("unknown {attrs}")
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn int_or_string(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(port) => port.to_string(),
        IntOrString::String(name) => name.clone(),
    }
}

/// The right-hand side of an env var set from elsewhere, or None for an empty `valueFrom`.
fn describe_env_source(var: &EnvVar, container: &Container, pod: &Pod) -> Option<String> {
    let source = var.value_from.as_ref()?;
    if let Some(field) = &source.field_ref {
        let version = field.api_version.as_deref().unwrap_or("v1");
        let value = pod_field(pod, &field.field_path).unwrap_or_default();
        return Some(format!("{value} ({version}:{})", field.field_path));
    }
    if let Some(resource) = &source.resource_field_ref {
        let value = container_resource(container, &resource.resource, resource.divisor.as_ref());
        return Some(format!("{value} ({})", resource.resource));
    }
    if let Some(secret) = &source.secret_key_ref {
        let optional = secret.optional.unwrap_or(false);
        return Some(format!(
            "<set to the key '{}' in secret '{}'>\tOptional: {optional}",
            secret.key, secret.name
        ));
    }
    if let Some(config_map) = &source.config_map_key_ref {
        let optional = config_map.optional.unwrap_or(false);
        return Some(format!(
            "<set to the key '{}' of config map '{}'>\tOptional: {optional}",
            config_map.key, config_map.name
        ));
    }
    None
}

/// The downward-API fields a pod env var can name.
fn pod_field(pod: &Pod, path: &str) -> Option<String> {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str, map: Option<&Labels>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        map.and_then(|m| m.get(key)).cloned()
    };
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.podIPs" => {
            let ips = status.and_then(|s| s.pod_ips.as_ref())?;
            Some(
                ips.iter()
                    .map(|ip| ip.ip.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }
        "status.hostIPs" => {
            let ips = status.and_then(|s| s.host_ips.as_ref())?;
            Some(
                ips.iter()
                    .map(|ip| ip.ip.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }
        _ => keyed("metadata.labels['", meta.labels.as_ref())
            .or_else(|| keyed("metadata.annotations['", meta.annotations.as_ref())),
    }
}

/// A `resourceFieldRef` value: ceil(amount / divisor), "node allocatable" for unset limits.
fn container_resource(
    container: &Container,
    resource: &str,
    divisor: Option<&QuantityString>,
) -> String {
    let Some((kind, name)) = resource.split_once('.') else {
        return String::new();
    };
    let resources = container.resources.as_ref();
    let amounts = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return String::new(),
    };
    let amount = amounts
        .and_then(|a| a.get(name))
        .map_or("0", |q| q.0.as_str());
    let divisor = divisor.map_or("1", |d| d.0.as_str());
    let value = match (parse_quantity(amount), parse_quantity(divisor)) {
        (Some(amount), Some(divisor)) => amount.ceil_div(&divisor).map(|v| v.to_string()),
        _ => None,
    };
    match value.as_deref() {
        Some("0") if resource == "limits.cpu" || resource == "limits.memory" => {
            "node allocatable".to_string()
        }
        Some(value) => value.to_string(),
        None => String::new(),
    }
}

fn parse_quantity(text: &str) -> Option<Quantity> {
    text.trim().parse().ok()
}

/// Quantities compare by value, an unset one as zero; unparsable ones only equal the identical
/// string.
fn same_amount(a: Option<&str>, b: Option<&str>) -> bool {
    let amount = |q: Option<&str>| parse_quantity(q.unwrap_or("0"));
    match (amount(a), amount(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// `status.qosClass`, or the class Kubernetes would compute from cpu and memory.
fn qos_class(pod: &Pod) -> String {
    if let Some(class) = non_empty(pod.status.as_ref().and_then(|s| s.qos_class.as_deref())) {
        return class.to_string();
    }
    let spec = pod.spec.clone().unwrap_or_default();
    if let Some(pod_level) = spec.resources.as_ref().filter(|r| sets_cpu_or_memory(r)) {
        return requirements_qos(pod_level).to_string();
    }
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    let mut class: Option<&str> = None;
    for container in containers {
        let default = ResourceRequirements::default();
        let own = requirements_qos(container.resources.as_ref().unwrap_or(&default));
        match class {
            _ if own == "Burstable" => return own.to_string(),
            None => class = Some(own),
            Some(seen) if seen != own => return "Burstable".to_string(),
            Some(_) => {}
        }
    }
    class.unwrap_or("BestEffort").to_string()
}

fn sets_cpu_or_memory(resources: &ResourceRequirements) -> bool {
    let sets = |m: &Option<BTreeMap<String, QuantityString>>| {
        m.as_ref()
            .is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
    };
    sets(&resources.requests) || sets(&resources.limits)
}

/// An unset request defaults to the limit, as the API server's defaulting does.
fn requirements_qos(resources: &ResourceRequirements) -> &'static str {
    let empty =
        |m: &Option<BTreeMap<String, QuantityString>>| m.as_ref().is_none_or(|m| m.is_empty());
    if empty(&resources.requests) && empty(&resources.limits) {
        return "BestEffort";
    }
    let classes: Vec<&str> = ["cpu", "memory"]
        .into_iter()
        .map(|name| {
            let limit = resources
                .limits
                .as_ref()
                .and_then(|m| m.get(name))
                .map(|q| q.0.as_str());
            let request = resources
                .requests
                .as_ref()
                .and_then(|m| m.get(name))
                .map(|q| q.0.as_str());
            let request = request.or(limit);
            if !same_amount(request, limit) {
                "Burstable"
            } else if same_amount(request, Some("0")) {
                "BestEffort"
            } else {
                "Guaranteed"
            }
        })
        .collect();
    if classes.contains(&"Burstable") || classes[0] != classes[1] {
        "Burstable"
    } else {
        classes[0]
    }
}

fn port_list<'a>(
    ports: impl Iterator<Item = (i32, &'a k8s_openapi::api::core::v1::ContainerPort)>,
) -> String {
    let described: Vec<String> = ports
        .map(|(number, port)| {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            match non_empty(port.name.as_deref()) {
                Some(name) => format!("{number}/{protocol} ({name})"),
                None => format!("{number}/{protocol}"),
            }
        })
        .collect();
    described.join(", ")
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn go_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: i64 = 1_700_000_000;

    fn now() -> Timestamp {
        Timestamp::from_second(NOW).unwrap()
    }

    fn ago(seconds: i64) -> String {
        Timestamp::from_second(NOW - seconds).unwrap().to_string()
    }

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn event(value: Value) -> Event {
        serde_json::from_value(value).unwrap()
    }

    fn describe(pod: &Pod, events: &[Event]) -> String {
        describe_pod_in(pod, events, now(), &TimeZone::UTC)
    }

    #[test]
    fn equal_amounts_in_different_spellings_match() {
        assert!(same_amount(Some("1"), Some("1000m")));
        assert!(same_amount(Some("1Gi"), Some("1024Mi")));
        assert!(same_amount(None, Some("0")));
        assert!(!same_amount(Some("1"), None));
    }

    fn two_container_pod() -> Pod {
        pod(json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(600),
                "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "nodeName": "peapod-host",
                "initContainers": [{"name": "setup", "image": "busybox",
                    "command": ["sh", "-c"], "args": ["echo ready"]}],
                "containers": [
                    {"name": "nginx", "image": "nginx:1.25",
                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80}},
                     "env": [{"name": "MODE", "value": "prod"},
                             {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                     "volumeMounts": [{"name": "data", "mountPath": "/usr/share/nginx/html"},
                                      {"name": "logs", "mountPath": "/var/log", "readOnly": true}]},
                    {"name": "worker", "image": "busybox",
                     "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}
                ],
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "logs", "hostPath": {"path": "/var/log/web", "type": "DirectoryOrCreate"}}
                ]
            },
            "status": {
                "phase": "Running", "hostIP": "192.168.1.10", "podIP": "10.88.0.5",
                "podIPs": [{"ip": "10.88.0.5"}], "startTime": ago(600),
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "False"},
                    {"type": "ContainersReady", "status": "False"},
                    {"type": "PodScheduled", "status": "True"}
                ],
                "initContainerStatuses": [{"name": "setup", "image": "busybox", "imageID": "sha256:aa",
                    "containerID": "peapod://setup", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                        "startedAt": ago(590), "finishedAt": ago(589)}}}],
                "containerStatuses": [
                    {"name": "nginx", "image": "nginx:1.25", "imageID": "sha256:bb",
                     "containerID": "peapod://nginx", "ready": true, "restartCount": 1,
                     "state": {"running": {"startedAt": ago(120)}},
                     "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "signal": 9,
                        "startedAt": ago(580), "finishedAt": ago(121)}}},
                    {"name": "worker", "image": "busybox", "imageID": "sha256:cc",
                     "containerID": "peapod://worker", "ready": false, "restartCount": 4,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ]
            }
        }))
    }

    fn events() -> Vec<Event> {
        vec![
            event(
                json!({"metadata": {"name": "e2"}, "involvedObject": {"kind": "Pod", "name": "web",
                "fieldPath": "spec.containers{worker}"},
                "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
                "source": {"component": "kubelet"}, "count": 5,
                "firstTimestamp": ago(400), "lastTimestamp": ago(30)}),
            ),
            event(
                json!({"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "web"},
                "type": "Normal", "reason": "Scheduled", "message": "Successfully assigned default/web to peapod-host",
                "reportingComponent": "default-scheduler",
                "eventTime": "2023-11-14T22:03:20.000000Z"}),
            ),
        ]
    }

    const EXPECTED: &str = "\
Name:         web
Namespace:    default
Node:         peapod-host/192.168.1.10
Start Time:   Tue, 14 Nov 2023 22:03:20 +0000
Labels:       app=web
              tier=front
Annotations:  <none>
Status:       Running
IP:           10.88.0.5
IPs:
  IP:  10.88.0.5
Init Containers:
  setup:
    Container ID:  peapod://setup
    Image:         busybox
    Image ID:      sha256:aa
    Port:          <none>
    Host Port:     <none>
    Command:
      sh
      -c
    Args:
      echo ready
    State:          Terminated
      Reason:       Completed
      Exit Code:    0
      Started:      Tue, 14 Nov 2023 22:03:30 +0000
      Finished:     Tue, 14 Nov 2023 22:03:31 +0000
    Ready:          False
    Restart Count:  0
    Environment:    <none>
    Mounts:         <none>
Containers:
  nginx:
    Container ID:   peapod://nginx
    Image:          nginx:1.25
    Image ID:       sha256:bb
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Tue, 14 Nov 2023 22:11:20 +0000
    Last State:     Terminated
      Reason:       OOMKilled
      Exit Code:    137
      Signal:       9
      Started:      Tue, 14 Nov 2023 22:03:40 +0000
      Finished:     Tue, 14 Nov 2023 22:11:19 +0000
    Ready:          True
    Restart Count:  1
    Readiness:      http-get http://:80/healthz delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3
    Environment:
      MODE:  prod
      POD:   web (v1:metadata.name)
    Mounts:
      /usr/share/nginx/html from data (rw)
      /var/log from logs (ro)
  worker:
    Container ID:   peapod://worker
    Image:          busybox
    Image ID:       sha256:cc
    Port:           <none>
    Host Port:      <none>
    State:          Waiting
      Reason:       CrashLoopBackOff
    Ready:          False
    Restart Count:  4
    Limits:
      cpu:        500m
      memory:     64Mi
    Environment:  <none>
    Mounts:       <none>
Conditions:
  Type              Status
  Initialized       True 
  Ready             False 
  ContainersReady   False 
  PodScheduled      True 
Volumes:
  data:
    Type:       EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:     
    SizeLimit:  <unset>
  logs:
    Type:          HostPath (bare host directory volume)
    Path:          /var/log/web
    HostPathType:  DirectoryOrCreate
QoS Class:         Burstable
Node-Selectors:    <none>
Tolerations:       <none>
Events:
  Type     Reason     Age                  From               Message
  ----     ------     ----                 ----               -------
  Normal   Scheduled  10m                  default-scheduler  Successfully assigned default/web to peapod-host
  Warning  BackOff    30s (x5 over 6m40s)  kubelet            Back-off restarting failed container
";

    #[test]
    fn describes_a_two_container_pod_like_kubectl() {
        assert_eq!(describe(&two_container_pod(), &events()), EXPECTED);
    }

    fn minimal(spec: Value, status: Value) -> Pod {
        pod(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec, "status": status}))
    }

    fn tail_from(out: &str, marker: &str) -> String {
        out[out.find(marker).unwrap()..].to_string()
    }

    #[test]
    fn no_events_prints_none_aligned_with_the_block_above() {
        let out = describe(
            &minimal(json!({"containers": []}), json!({"phase": "Pending"})),
            &[],
        );
        let want =
            "QoS Class:       BestEffort\nNode-Selectors:  <none>\nTolerations:     <none>\n\
                    Events:          <none>\n";
        assert_eq!(tail_from(&out, "QoS Class:"), want);
        assert!(out.contains("Containers: <none>\n"), "{out}");
        assert!(
            out.contains("IPs:          <none>\n") || out.contains("IPs:"),
            "{out}"
        );
    }

    #[test]
    fn deleting_pod_shows_terminating_and_grace_period() {
        let mut p = minimal(json!({"containers": []}), json!({"phase": "Running"}));
        p.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(NOW - 20).unwrap()));
        p.metadata.deletion_grace_period_seconds = Some(30);
        let out = describe(&p, &[]);
        assert!(
            out.contains("Status:                    Terminating (lasts 20s)\n"),
            "{out}"
        );
        assert!(out.contains("Termination Grace Period:  30s\n"), "{out}");
    }

    #[test]
    fn tolerations_and_node_selectors_are_listed_sorted() {
        let spec = json!({"containers": [], "nodeSelector": {"disk": "ssd"}, "tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"},
            {"operator": "Exists"}
        ]});
        let out = describe(&minimal(spec, json!({})), &[]);
        let want = "QoS Class:       BestEffort\n\
                    Node-Selectors:  disk=ssd\n\
                    Tolerations:     op=Exists\n                 \
                    dedicated=web:NoSchedule\n                 \
                    node.kubernetes.io/unreachable:NoExecute op=Exists for 300s\n\
                    Events:          <none>\n";
        assert_eq!(tail_from(&out, "QoS Class:"), want);
    }

    #[test]
    fn long_annotations_wrap_and_last_applied_is_hidden() {
        let long = "x".repeat(200);
        let p = pod(json!({"metadata": {"name": "p", "annotations": {
            "a": "short", "b": long, LAST_APPLIED_ANNOTATION: "{}"}}, "spec": {"containers": []}}));
        let out = describe(&p, &[]);
        let shortened = format!("{}...", "x".repeat(138));
        assert!(
            out.contains("Annotations:  a: short\n              b:\n"),
            "{out}"
        );
        assert!(
            out.contains(&format!("                {shortened}\n")),
            "{out}"
        );
        assert!(!out.contains("last-applied"), "{out}");
    }

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let with = |resources: Value| {
            let p = minimal(
                json!({"containers": [{"name": "c", "resources": resources}]}),
                json!({}),
            );
            qos_class(&p)
        };
        assert_eq!(with(json!({})), "BestEffort");
        assert_eq!(
            with(json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
            "Guaranteed"
        );
        assert_eq!(
            with(json!({"limits": {"cpu": "1", "memory": "1Gi"},
                        "requests": {"cpu": "1000m", "memory": "1024Mi"}})),
            "Guaranteed"
        );
        assert_eq!(with(json!({"requests": {"cpu": "100m"}})), "Burstable");
        assert_eq!(with(json!({"limits": {"cpu": "1"}})), "Burstable");
        let recorded = minimal(
            json!({"containers": [{"name": "c"}]}),
            json!({"qosClass": "Guaranteed"}),
        );
        assert_eq!(qos_class(&recorded), "Guaranteed");
    }

    #[test]
    fn probes_are_described_with_defaults() {
        let probe = |value: Value| describe_probe(&serde_json::from_value(value).unwrap());
        let attrs = "delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3";
        assert_eq!(
            probe(json!({"exec": {"command": ["cat", "/tmp/ok"]}})),
            format!("exec [cat /tmp/ok] {attrs}")
        );
        assert_eq!(
            probe(json!({"tcpSocket": {"port": "web"}})),
            format!("tcp-socket :web {attrs}")
        );
        assert_eq!(
            probe(
                json!({"httpGet": {"port": 8443, "scheme": "HTTPS", "host": "::1", "path": "ready"},
                         "periodSeconds": 5})
            ),
            "http-get https://[::1]:8443/ready delay=0s timeout=1s period=5s successThreshold=1 \
             failureThreshold=3"
        );
    }

    #[test]
    fn env_sources_are_described() {
        let spec = json!({"containers": [{"name": "c",
        "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "250m"}},
        "env": [
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
            {"name": "TEXT", "value": "one\ntwo"}
        ]}]});
        let out = describe(&minimal(spec, json!({})), &[]);
        let want = "    Environment:\n\
                    \x20     MEM:       128 (limits.memory)\n\
                    \x20     CPU:       node allocatable (limits.cpu)\n\
                    \x20     REQ:       1 (requests.cpu)\n\
                    \x20     PASS:      <set to the key 'pw' in secret 'db'>  Optional: false\n\
                    \x20     TEXT:      one\n\
                    \x20                two\n\
                    \x20   Mounts:      <none>\n\
                    Volumes:         <none>\n";
        assert!(out.contains(want), "{out}");
    }

    #[test]
    fn config_volumes_are_described() {
        let volumes: Vec<Volume> = serde_json::from_value(json!([
            {"name": "cfg", "configMap": {"name": "settings"}},
            {"name": "tok", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt"}},
                {"downwardAPI": {}}]}}
        ]))
        .unwrap();
        assert_eq!(
            volume_lines(&volumes[0]),
            [
                "Type:\tConfigMap (a volume populated by a ConfigMap)",
                "Name:\tsettings",
                "Optional:\tfalse"
            ]
        );
        assert_eq!(
            volume_lines(&volumes[1])[1..],
            [
                "TokenExpirationSeconds:\t3607",
                "ConfigMapName:\tkube-root-ca.crt",
                "Optional:\tfalse",
                "DownwardAPI:\ttrue"
            ]
        );
    }

    #[test]
    fn terminal_escapes_are_neutralised() {
        let p = pod(json!({"metadata": {"name": "evil\u{1b}[31m"}, "spec": {"containers": []}}));
        assert!(describe(&p, &[]).starts_with("Name:         evil^[[31m\n"));
    }

    #[test]
    fn system_time_zone_variant_describes_the_same_pod() {
        let out = describe_pod(&two_container_pod(), &[], now());
        assert!(out.starts_with("Name:         web\n"), "{out}");
        let last = out.lines().last().unwrap();
        assert!(
            last.starts_with("Events:") && last.ends_with(" <none>"),
            "{out}"
        );
    }
}
