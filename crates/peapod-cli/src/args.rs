//! The client verbs' command lines, shaped like kubectl's (and crictl's for images).

use std::path::PathBuf;

use clap::{ArgAction, Args, Subcommand, ValueEnum};
use peapod_api::field_validation::FieldValidation;

/// One client verb with its flags; the lead's `main` embeds this in the `peapod` command.
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Apply a configuration to a resource by file name or stdin.
    Apply(ApplyArgs),
    /// Display one or many resources.
    Get(GetArgs),
    /// Show details of a specific resource or group of resources.
    Describe(DescribeArgs),
    /// Print the logs for a container in a pod.
    Logs(LogsArgs),
    /// Execute a command in a container.
    Exec(ExecArgs),
    /// Attach to a running container.
    Attach(AttachArgs),
    /// Copy files and directories to and from containers.
    Cp(CpArgs),
    /// Forward one or more local ports to a pod.
    PortForward(PortForwardArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector.
    Delete(DeleteArgs),
    /// List events.
    Events(EventsArgs),
    /// List images.
    Images(ImagesArgs),
    /// Load images from an OCI or docker archive.
    Load(LoadArgs),
    /// Import a root filesystem tarball as an image.
    Import(ImportArgs),
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Manage images.
    Image(ImageArgs),
    /// Display resource (CPU/memory) usage.
    Top(TopArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The files (or directories of .yaml/.yml/.json files) that contain the configuration; "-" is stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,
    /// The namespace for objects that do not name one.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Unknown or duplicate fields: strict (or true) refuses the input, warn warns about them,
    /// ignore (or false) drops them silently.
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value = "strict",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "strict",
        ignore_case = true
    )]
    pub validate: Validate,
}

/// kubectl's `--validate` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Validate {
    #[value(alias = "true")]
    Strict,
    Warn,
    #[value(alias = "false")]
    Ignore,
}

impl From<Validate> for FieldValidation {
    fn from(validate: Validate) -> Self {
        match validate {
            Validate::Strict => FieldValidation::Strict,
            Validate::Warn => FieldValidation::Warn,
            Validate::Ignore => FieldValidation::Ignore,
        }
    }
}

/// `-o` formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Wide,
    Yaml,
    Json,
    Name,
}

#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...`: any served type by plural, singular,
    /// short name or `type.group` (pods, pod, po, configmaps, cm, ns, ...).
    #[arg(required = true, value_name = "TYPE[/NAME] | TYPE NAME...")]
    pub targets: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// List the resources across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector to filter on, e.g. -l app=web,tier!=cache.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector to filter on, e.g. --field-selector status.phase=Running.
    #[arg(long)]
    pub field_selector: Option<String>,
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
    /// After listing, watch for changes.
    #[arg(short, long)]
    pub watch: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DescribeArgs {
    /// `TYPE NAME...`, `TYPE` (every object of the type) or `TYPE/NAME`.
    #[arg(required = true, value_name = "TYPE[/NAME] | TYPE NAME...")]
    pub targets: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// NAME or pod/NAME.
    pub pod: String,
    /// The container, as an alternative to -c.
    #[arg(value_name = "CONTAINER")]
    pub container_arg: Option<String>,
    #[arg(short, long)]
    pub container: Option<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Stream the logs.
    #[arg(short, long)]
    pub follow: bool,
    /// Print the logs of the previous instance of the container.
    #[arg(short, long)]
    pub previous: bool,
    /// Lines of recent log to show; -1 shows all.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Prefix each line with its RFC3339 timestamp.
    #[arg(long)]
    pub timestamps: bool,
}

/// The container exec and attach join, and the streams they join it with.
#[derive(Debug, Clone, Args)]
pub struct ContainerStreams {
    /// NAME or pod/NAME.
    pub pod: String,
    /// The container; by default the pod's default container.
    #[arg(short, long)]
    pub container: Option<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub target: ContainerStreams,
    /// The command, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub target: ContainerStreams,
    /// Only print output from the remote session.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CpArgs {
    /// The source: a local path, or [[NAMESPACE/]POD:]PATH in a container.
    #[arg(value_name = "SRC")]
    pub src: String,
    /// The destination: a local path, or [[NAMESPACE/]POD:]PATH in a container.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// The container; by default the pod's default container.
    #[arg(short, long)]
    pub container: Option<String>,
    /// The namespace of a POD that does not name one.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// The copied file/directory's ownership and permissions will not be preserved in the
    /// container.
    #[arg(long)]
    pub no_preserve: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PortForwardArgs {
    /// NAME or pod/NAME.
    pub pod: String,
    /// `[LOCAL_PORT:]REMOTE_PORT`: `8080:80`, `80` (the same port locally), `:80` (a random
    /// local port); the remote port may be a named container port.
    #[arg(required = true, value_name = "[LOCAL_PORT:]REMOTE_PORT")]
    pub ports: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Addresses to listen on (comma separated): IP addresses or localhost (both 127.0.0.1 and
    /// ::1, failing only if neither can be bound).
    #[arg(long, value_delimiter = ',', default_value = "localhost")]
    pub address: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// `TYPE NAME...`, `TYPE --all`, `TYPE -l SEL` or `TYPE/NAME...`.
    #[arg(value_name = "TYPE[/NAME] | TYPE NAME...")]
    pub targets: Vec<String>,
    /// Files (or directories) naming the objects to delete; "-" is stdin.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Delete every object of the types in the namespace.
    #[arg(long)]
    pub all: bool,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete the objects matching this field selector.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Seconds given to the pod to terminate gracefully; -1 uses the pod's own.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Same as --grace-period=1.
    #[arg(long)]
    pub now: bool,
    /// With --grace-period=0: remove the pod at once, without waiting for termination.
    #[arg(long)]
    pub force: bool,
    /// Wait until the objects are gone before returning.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The image archive (docker save or OCI layout tar).
    #[arg(short, long, required = true)]
    pub input: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The root filesystem tarball; "-" reads it from stdin.
    pub file: String,
    /// The image name, e.g. example.com/app:1.0.
    pub name: String,
    /// Dockerfile instructions for the image config: ENV, CMD, ENTRYPOINT, WORKDIR, USER.
    #[arg(short, long)]
    pub change: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RmiArgs {
    /// Image names or IDs.
    #[arg(required = true)]
    pub refs: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// The image, e.g. busybox:1.36 or registry.example:5000/app@sha256:...
    pub reference: String,
}

#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    #[command(subcommand)]
    pub command: TopCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TopCommand {
    /// Display resource (CPU/memory) usage of pods.
    ///
    /// Memory is the working set; CPU the rate since the last look, or over half a second
    /// when the last look is too recent or too old.
    #[command(visible_alias = "pods", alias = "po")]
    Pod(TopPodArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TopPodArgs {
    /// Show only this pod.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// List pods across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector to filter on, e.g. -l app=web.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Print usage of containers within a pod.
    #[arg(long)]
    pub containers: bool,
    /// Print output without headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Sort pods by "cpu" or "memory".
    #[arg(long, value_name = "cpu|memory")]
    pub sort_by: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ImageCommand {
    /// Remove every image no pod uses.
    Prune,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<ClientCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("peapod").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn exec_command_comes_after_double_dash() {
        let ClientCommand::Exec(a) =
            parse(&["exec", "web", "-it", "-c", "app", "--", "sh", "-c", "ls -l"]).unwrap()
        else {
            panic!("not exec")
        };
        assert_eq!(a.target.pod, "web");
        assert!(a.target.stdin && a.target.tty);
        assert_eq!(a.target.container.as_deref(), Some("app"));
        assert_eq!(a.command, vec!["sh", "-c", "ls -l"]);
    }

    #[test]
    fn apply_validates_strictly_unless_told_otherwise_as_kubectl_does() {
        let validate = |args: &[&str]| match parse(args).unwrap() {
            ClientCommand::Apply(a) => a.validate,
            other => panic!("not apply: {other:?}"),
        };
        assert_eq!(validate(&["apply", "-f", "x.yaml"]), Validate::Strict);
        assert_eq!(
            validate(&["apply", "--validate", "-f", "x.yaml"]),
            Validate::Strict
        );
        for (flag, expected) in [
            ("--validate=strict", Validate::Strict),
            ("--validate=true", Validate::Strict),
            ("--validate=warn", Validate::Warn),
            ("--validate=Ignore", Validate::Ignore),
            ("--validate=false", Validate::Ignore),
        ] {
            assert_eq!(
                validate(&["apply", flag, "-f", "x.yaml"]),
                expected,
                "{flag}"
            );
        }
        assert!(parse(&["apply", "--validate=maybe", "-f", "x.yaml"]).is_err());
    }

    #[test]
    fn attach_cp_and_port_forward_flags() {
        let ClientCommand::Attach(a) =
            parse(&["attach", "pod/cat", "-it", "-c", "main", "-q"]).unwrap()
        else {
            panic!("not attach")
        };
        let target = &a.target;
        assert_eq!(
            (target.pod.as_str(), target.container.as_deref()),
            ("pod/cat", Some("main"))
        );
        assert!(target.stdin && target.tty && a.quiet);
        let ClientCommand::Cp(a) =
            parse(&["cp", "team/web:/tmp/x", "./x", "-c", "app", "--no-preserve"]).unwrap()
        else {
            panic!("not cp")
        };
        assert_eq!(
            (a.src.as_str(), a.dest.as_str()),
            ("team/web:/tmp/x", "./x")
        );
        assert!(a.no_preserve);
        assert!(parse(&["cp", "only-one"]).is_err());
        let ClientCommand::PortForward(a) = parse(&[
            "port-forward",
            "pod/web",
            "8080:80",
            ":443",
            "--address",
            "127.0.0.1,::1",
        ])
        .unwrap() else {
            panic!("not port-forward")
        };
        assert_eq!(a.ports, vec!["8080:80", ":443"]);
        assert_eq!(a.address, vec!["127.0.0.1", "::1"]);
        let ClientCommand::PortForward(a) = parse(&["port-forward", "web", "80"]).unwrap() else {
            panic!("not port-forward")
        };
        assert_eq!(a.address, vec!["localhost"]);
        assert!(parse(&["port-forward", "web"]).is_err());
    }

    #[test]
    fn exec_without_double_dash_is_rejected() {
        assert!(parse(&["exec", "web", "ls"]).is_err());
        assert!(parse(&["exec", "web"]).is_err());
    }

    #[test]
    fn get_flags() {
        let ClientCommand::Get(a) = parse(&[
            "get", "po", "a", "b", "-A", "-l", "app=x", "-o", "wide", "-w",
        ])
        .unwrap() else {
            panic!("not get")
        };
        assert_eq!(a.targets, vec!["po", "a", "b"]);
        assert!(a.all_namespaces && a.watch);
        assert_eq!(a.selector.as_deref(), Some("app=x"));
        assert_eq!(a.output, Some(OutputFormat::Wide));
        assert!(parse(&["get", "pods", "-o", "table"]).is_err());
    }

    #[test]
    fn delete_wait_defaults_to_true_and_takes_false() {
        let ClientCommand::Delete(a) = parse(&["delete", "pod/a", "--grace-period", "0"]).unwrap()
        else {
            panic!("not delete")
        };
        assert!(a.wait);
        assert_eq!(a.grace_period, 0);
        let ClientCommand::Delete(a) = parse(&["delete", "pod", "a", "--wait=false"]).unwrap()
        else {
            panic!("not delete")
        };
        assert!(!a.wait);
        assert_eq!(a.grace_period, -1);
    }

    #[test]
    fn logs_flags_and_positional_container() {
        let ClientCommand::Logs(a) = parse(&[
            "logs",
            "pod/web",
            "app",
            "-f",
            "-p",
            "--tail",
            "5",
            "--timestamps",
        ])
        .unwrap() else {
            panic!("not logs")
        };
        assert_eq!(a.pod, "pod/web");
        assert_eq!(a.container_arg.as_deref(), Some("app"));
        assert!(a.follow && a.previous && a.timestamps);
        assert_eq!(a.tail, 5);
    }

    #[test]
    fn apply_and_import_repeatable_flags() {
        let ClientCommand::Apply(a) =
            parse(&["apply", "-f", "a.yaml", "-f", "-", "-n", "ns"]).unwrap()
        else {
            panic!("not apply")
        };
        assert_eq!(a.filenames, vec!["a.yaml", "-"]);
        let ClientCommand::Import(a) = parse(&[
            "import",
            "-",
            "app:1",
            "--change",
            "ENV A=1",
            "-c",
            "CMD [\"sh\"]",
        ])
        .unwrap() else {
            panic!("not import")
        };
        assert_eq!((a.file.as_str(), a.name.as_str()), ("-", "app:1"));
        assert_eq!(a.change, vec!["ENV A=1", "CMD [\"sh\"]"]);
        assert!(parse(&["apply"]).is_err());
    }

    #[test]
    fn pull_and_image_prune() {
        let ClientCommand::Pull(a) = parse(&["pull", "busybox:1.36"]).unwrap() else {
            panic!("not pull")
        };
        assert_eq!(a.reference, "busybox:1.36");
        assert!(parse(&["pull"]).is_err());
        let ClientCommand::Image(a) = parse(&["image", "prune"]).unwrap() else {
            panic!("not image")
        };
        assert!(matches!(a.command, ImageCommand::Prune));
        assert!(parse(&["image"]).is_err());
    }
}
