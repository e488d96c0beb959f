//! `peapod completion bash|zsh|fish`: the completion script of the whole `peapod` command
//! (the binary hands its clap command over), written by clap_complete.

use clap::{Args, ValueEnum};
use clap_complete::Shell;

#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell the script is for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells kubectl writes completion for, but PowerShell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl From<CompletionShell> for Shell {
    fn from(shell: CompletionShell) -> Self {
        match shell {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }
}

/// The completion script of `command` for `shell` (built in memory: clap_complete panics
/// when its output fails, and a closed pipe is no reason to).
pub fn script(shell: CompletionShell, command: &mut clap::Command) -> String {
    let name = command.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(Shell::from(shell), command, name, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    #[command(name = "peapod")]
    struct Cli {
        #[command(subcommand)]
        command: crate::ClientCommand,
    }

    #[test]
    fn scripts_name_the_verbs() {
        for (shell, marker) in [
            (CompletionShell::Bash, "complete -F _peapod"),
            (CompletionShell::Zsh, "#compdef peapod"),
            (CompletionShell::Fish, "complete -c peapod"),
        ] {
            let script = script(shell, &mut Cli::command());
            assert!(script.contains(marker), "{shell:?}: {script}");
            assert!(script.contains("describe"), "{shell:?}");
        }
    }
}
