//! The container's argv from the pod spec and the image config, by Kubernetes' rules.

use crate::{ImageConfig, ImageError};

/// Kubernetes rules: `command` given → command + args (the image's Entrypoint and Cmd are
/// ignored); only `args` → Entrypoint + args; neither → Entrypoint + Cmd.
/// An empty result is an error.
pub fn process_args(
    config: &ImageConfig,
    command: &[String],
    args: &[String],
) -> Result<Vec<String>, ImageError> {
    let entrypoint = config.entrypoint.as_deref().unwrap_or_default();
    let cmd = config.cmd.as_deref().unwrap_or_default();
    let argv: Vec<String> = match (command.is_empty(), args.is_empty()) {
        (false, _) => [command, args].concat(),
        (true, false) => [entrypoint, args].concat(),
        (true, true) => [entrypoint, cmd].concat(),
    };
    if argv.is_empty() {
        return Err(ImageError::NoCommand);
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.map(strings),
            cmd: cmd.map(strings),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn kubernetes_command_and_args_rules() {
        let config = image(Some(&["/entry"]), Some(&["--default"]));
        let run = |command: &[&str], args: &[&str]| {
            process_args(&config, &strings(command), &strings(args)).unwrap()
        };
        assert_eq!(run(&[], &[]), ["/entry", "--default"]);
        assert_eq!(run(&[], &["--flag"]), ["/entry", "--flag"]);
        assert_eq!(run(&["/bin/sh", "-c"], &[]), ["/bin/sh", "-c"]);
        assert_eq!(
            run(&["/bin/sh", "-c"], &["echo hi"]),
            ["/bin/sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn cmd_only_and_empty_images() {
        let cmd_only = image(None, Some(&["sh"]));
        assert_eq!(process_args(&cmd_only, &[], &[]).unwrap(), ["sh"]);
        // args replace Cmd even when there is no Entrypoint.
        assert_eq!(
            process_args(&cmd_only, &[], &strings(&["ls"])).unwrap(),
            ["ls"]
        );
        let empty = image(None, None);
        assert!(matches!(
            process_args(&empty, &[], &[]),
            Err(ImageError::NoCommand)
        ));
        let empty_lists = image(Some(&[]), Some(&[]));
        assert!(matches!(
            process_args(&empty_lists, &[], &[]),
            Err(ImageError::NoCommand)
        ));
    }
}
