//! The seed scenarios (shared/SCENARIOS.md) run for real, each ending with a leak check.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn s1_web_content_sidecar_serves_the_current_time() {
    let agent = Agent::start();
    let out = agent.apply_file(&example("s1-web-content-sidecar.yaml"));
    assert_eq!(out.trim(), "pod/example-pod created");
    agent.wait_running("example-pod");
    let wide = agent.ok(&["get", "pod", "example-pod", "-o", "wide"]);
    let row = wide.lines().nth(1).expect("a table row");
    assert!(
        row.starts_with("example-pod") && row.contains("2/2") && row.contains("Running"),
        "{wide}"
    );

    let fetch = || {
        let (code, body, err) = agent.exec(
            "example-pod",
            "frontend",
            &["wget", "-qO-", "http://localhost:8080/index.html"],
        );
        assert_eq!(code, 0, "wget failed: {err}");
        body
    };
    let mut first = fetch();
    for _ in 0..20 {
        if !first.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        first = fetch();
    }
    let year = jiff::Timestamp::now().to_string()[..4].to_string();
    assert!(
        first.contains(&year),
        "the page should hold the current date: {first:?}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let second = fetch();
    assert_ne!(first, second, "a second later the page shows a newer time");

    agent.delete_and_check("example-pod", "1");
}
