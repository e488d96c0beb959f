//! Running nftables for a table of ours: a script applied as one transaction, and the JSON
//! listing of the table or one of its chains. The agent's firewall and the service proxy both
//! go through here: in process through libnftables when it loads, else through the `nft`
//! binary, one process per call.

mod libnftables;
mod process;

use std::sync::OnceLock;

pub use libnftables::{Libnftables, LoadError, LIBRARY};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running nft (install the nftables package): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft refused the rules of table ip {table} while {action}: {stderr}")]
    Refused {
        table: String,
        action: String,
        stderr: String,
    },
    #[error("reading table ip {table} from nft: {detail}")]
    Listing { table: String, detail: String },
}

/// What nftables answered to one call.
struct Answer {
    succeeded: bool,
    output: String,
    error: String,
}

/// How commands reach nftables.
#[derive(Clone, Copy)]
pub enum Runner {
    /// libnftables in this process.
    Library(&'static Libnftables),
    /// The `nft` binary.
    Process,
}

impl Runner {
    /// libnftables when it loads, else the `nft` binary; why the library did not load is
    /// logged once.
    pub fn shared() -> Runner {
        static LOADED: OnceLock<Option<Libnftables>> = OnceLock::new();
        let loaded = LOADED.get_or_init(|| match Libnftables::load(libnftables::LIBRARY) {
            Ok(library) => Some(library),
            Err(err) => {
                tracing::warn!(%err, "running the nft binary for each nftables change instead");
                None
            }
        });
        loaded.as_ref().map_or(Runner::Process, Runner::Library)
    }

    /// Applies `script`, a change to table ip `table`, as one transaction: all of it or
    /// nothing. `action` says what the change is for in the error.
    pub fn apply(self, table: &str, action: &str, script: &str) -> Result<(), NftError> {
        let answer = match self {
            Runner::Library(library) => library.run(script, false),
            Runner::Process => process::apply(script)?,
        };
        if answer.succeeded {
            return Ok(());
        }
        Err(NftError::Refused {
            table: table.to_string(),
            action: action.to_string(),
            stderr: answer.error.trim().to_string(),
        })
    }

    /// The objects (`{"chain": …}`, `{"rule": …}`, …) of table ip `table`, or of its chain
    /// `chain` only, with their handles.
    pub fn list(
        self,
        table: &str,
        chain: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, NftError> {
        let listing = |detail: String| NftError::Listing {
            table: table.to_string(),
            detail,
        };
        let answer = match self {
            Runner::Library(library) => {
                let command = match chain {
                    Some(chain) => format!("list chain ip {table} {chain}"),
                    None => format!("list table ip {table}"),
                };
                library.run(&command, true)
            }
            Runner::Process => process::list(table, chain)?,
        };
        if !answer.succeeded {
            return Err(listing(answer.error.trim().to_string()));
        }
        let mut json: serde_json::Value =
            serde_json::from_str(&answer.output).map_err(|e| listing(e.to_string()))?;
        match json["nftables"].take() {
            serde_json::Value::Array(objects) => Ok(objects),
            _ => Err(listing("no \"nftables\" array in its output".to_string())),
        }
    }
}

/// [`Runner::apply`] with the [shared](Runner::shared) runner.
pub fn apply(table: &str, action: &str, script: &str) -> Result<(), NftError> {
    Runner::shared().apply(table, action, script)
}

/// [`Runner::list`] with the [shared](Runner::shared) runner.
pub fn list(table: &str, chain: Option<&str>) -> Result<Vec<serde_json::Value>, NftError> {
    Runner::shared().list(table, chain)
}

/// Against the kernel, through both runners: each test's table is its own, removed on drop.
#[cfg(test)]
mod tests {
    use super::*;

    fn runners() -> [(&'static str, Runner); 2] {
        let library = match Runner::shared() {
            Runner::Library(library) => library,
            Runner::Process => panic!("{LIBRARY} does not load (install libnftables1)"),
        };
        [
            ("library", Runner::Library(library)),
            ("process", Runner::Process),
        ]
    }

    struct TestTable(String);

    impl TestTable {
        fn new(name: &str) -> TestTable {
            let table = TestTable(name.to_string());
            let script = format!("add table ip {name}\nadd chain ip {name} base\n");
            Runner::Process.apply(name, "testing", &script).unwrap();
            table
        }

        fn chains(&self, runner: Runner) -> Vec<String> {
            let objects = runner.list(&self.0, None).unwrap();
            objects
                .iter()
                .filter_map(|o| o.get("chain").and_then(|c| c["name"].as_str()))
                .map(str::to_string)
                .collect()
        }
    }

    impl Drop for TestTable {
        fn drop(&mut self) {
            let script = format!("delete table ip {}\n", self.0);
            let _ = Runner::Process.apply(&self.0, "cleaning up", &script);
        }
    }

    #[test]
    fn a_missing_table_is_a_listing_error_naming_it() {
        for (name, runner) in runners() {
            let err = runner.list("nfttest-missing", None).unwrap_err();
            assert!(matches!(err, NftError::Listing { .. }), "{name}: {err}");
            assert!(
                err.to_string().contains("table ip nfttest-missing"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn a_refused_script_names_the_table_and_the_action() {
        for (name, runner) in runners() {
            let script = "add rule ip nfttest-missing x drop\n";
            let err = runner
                .apply("nfttest-missing", "testing", script)
                .unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(
                    "nft refused the rules of table ip nfttest-missing while testing: "
                ) && text.contains("No such file or directory"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn a_script_applies_whole_or_not_at_all_and_lists_with_handles() {
        for (name, runner) in runners() {
            let table = TestTable::new(&format!("nfttest-tx-{name}"));
            let t = &table.0;
            let good = format!("add chain ip {t} kept\nadd rule ip {t} kept counter accept\n");
            runner.apply(t, "testing", &good).unwrap();
            let bad = format!("add chain ip {t} never\nadd rule ip {t} missing drop\n");
            assert!(runner.apply(t, "testing", &bad).is_err(), "{name}");
            assert_eq!(table.chains(runner), ["base", "kept"], "{name}");
            let rules = runner.list(t, Some("kept")).unwrap();
            let rule = rules.iter().find_map(|o| o.get("rule")).expect("a rule");
            assert!(rule["handle"].as_u64().is_some(), "{name}: {rule}");
        }
    }

    #[test]
    fn the_library_serves_threads_at_once() {
        let (_, library) = runners()[0];
        let table = TestTable::new("nfttest-threads");
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let t = &table.0;
                scope.spawn(move || {
                    for i in 0..20 {
                        let script = format!("add chain ip {t} c{thread}-{i}\n");
                        library.apply(t, "testing", &script).unwrap();
                        assert!(library.list(t, Some(&format!("c{thread}-{i}"))).is_ok());
                        let refused = library.apply(t, "testing", "add rule ip nope x drop\n");
                        assert!(refused.is_err());
                    }
                });
            }
        });
        assert_eq!(table.chains(library).len(), 1 + 8 * 20);
    }

    #[test]
    fn a_library_that_does_not_load_says_why() {
        let err = Libnftables::load("libnftables-missing.so.0")
            .err()
            .expect("no such library");
        assert!(
            err.to_string()
                .starts_with("loading libnftables-missing.so.0: "),
            "{err}"
        );
    }
}
