//! The streaming verbs against the fake agent, its side of each session played by
//! peapod-streams as the agent's is: exec and attach over WebSocket v5, cp's tar sessions both
//! ways, and port-forward over SPDY.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use peapod_streams::portforward::{Connection, Connections};
use peapod_streams::remotecommand::{Outcome as Ended, Session};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::fake::{Buf, Fake, Recorded, Reply};
use super::{run, run_at, Cli};
use crate::{run_with, Client, Console};

const POD_PATH: &str = "/api/v1/namespaces/default/pods/web";

fn web(phase: &str, containers: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
           "spec": {"containers": containers}, "status": {"phase": phase}})
}

fn running() -> Value {
    web("Running", json!([{"name": "app"}]))
}

/// Answers GETs of pod `web` with `pod`, every other request with `session`.
fn agent<F>(pod: Value, session: F) -> Fake
where
    F: Fn(&Recorded) -> Reply + Send + Sync + 'static,
{
    Fake::start(move |request| match request.path() {
        POD_PATH => Reply::json(200, pod.clone()),
        _ => session(request),
    })
}

async fn read_stdin(session: &mut Session) -> Vec<u8> {
    let mut stdin = session.stdin.take().expect("stdin was asked for");
    let mut all = Vec::new();
    while let Some(chunk) = stdin.recv().await {
        all.extend_from_slice(&chunk);
    }
    all
}

async fn send_stdout(session: &Session, data: &[u8]) {
    for chunk in data.chunks(32 * 1024) {
        session
            .output
            .stdout(Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn exec_streams_stdin_and_output_and_passes_the_exit_code_through() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let fake = agent(running(), move |_| {
        let sink = sink.clone();
        Reply::remote_command(move |mut session| async move {
            *sink.lock().unwrap() = read_stdin(&mut session).await;
            send_stdout(&session, b"got it\n").await;
            session
                .output
                .stderr(Bytes::from_static(b"warn\n"))
                .await
                .unwrap();
            let message = "error executing command [sh -c cat >/x], exit code 3".into();
            session
                .output
                .finish(Ended::ExitCode { code: 3, message })
                .await;
        })
    });
    let args = [
        "exec", "-i", "-c", "app", "web", "--", "sh", "-c", "cat >/x",
    ];
    let o = run_at(&fake.socket, &args, b"hello").await;
    assert_eq!(o.code, 3, "{}", o.err);
    assert_eq!(o.out, "got it\n");
    assert_eq!(o.err, "warn\ncommand terminated with exit code 3\n");
    assert_eq!(*received.lock().unwrap(), b"hello");
    assert_eq!(
        fake.uris(),
        [
            format!("GET {POD_PATH}"),
            format!("GET {POD_PATH}/exec?command=sh&command=-c&command=cat%20%3E%2Fx&container=app&stderr=true&stdin=true&stdout=true"),
        ]
    );
    let exec = &fake.requests()[1];
    assert_eq!(exec.header("upgrade"), "websocket");
    assert_eq!(exec.header("sec-websocket-protocol"), "v5.channel.k8s.io");
}

#[tokio::test]
async fn exec_defaults_the_container_and_reports_failures() {
    let containers = json!([{"name": "app"}, {"name": "side"}]);
    let fake = agent(web("Running", containers), |_| {
        Reply::remote_command(|session| async move {
            let failed = "exec: \"nope\": executable file not found in $PATH".into();
            session.output.finish(Ended::Internal(failed)).await;
        })
    });
    let o = run(&fake, &["exec", "web", "-t", "--", "nope"]).await;
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "Defaulted container \"app\" out of: app, side\nerror: Internal error occurred: exec: \"nope\": executable file not found in $PATH\n"
    );
    let exec = &fake.requests()[1];
    assert!(
        exec.uri
            .ends_with("?command=nope&container=app&stderr=true&stdout=true"),
        "-t without -i has no terminal: {}",
        exec.uri
    );

    let fake = agent(running(), |_| {
        Reply::remote_command(|session| async move { drop(session) })
    });
    let o = run(&fake, &["exec", "web", "--", "ls"]).await;
    assert_eq!(
        (o.code, o.err.as_str()),
        (1, "error: the stream was closed (1011) without an exit status: the session ended without an outcome\n")
    );
}

#[tokio::test]
async fn refusals_are_printed_as_kubectl_prints_them() {
    let fake = Fake::start(|_| Reply::not_found("pods", "web"));
    let o = run(&fake, &["exec", "web", "--", "ls"]).await;
    assert_eq!(
        (o.code, o.err.as_str()),
        (1, "Error from server (NotFound): pods \"web\" not found\n")
    );

    let fake = agent(
        web("Succeeded", json!([{"name": "app"}])),
        |_| unreachable!(),
    );
    let o = run(&fake, &["exec", "web", "--", "ls"]).await;
    let completed =
        "error: cannot exec into a container in a completed pod; current phase is Succeeded\n";
    assert_eq!((o.code, o.err.as_str()), (1, completed));

    let fake = agent(running(), |_| Reply::Full {
        status: 500,
        headers: vec![("content-type", "text/plain; charset=utf-8".into())],
        body: b"container not found (\"app\")".to_vec(),
    });
    let o = run(&fake, &["exec", "web", "--", "ls"]).await;
    let kubelet = "error: unable to upgrade connection: container not found (\"app\")\n";
    assert_eq!((o.code, o.err.as_str()), (1, kubelet));

    let fake = agent(running(), |_| {
        Reply::json(
            400,
            json!({"kind": "Status", "code": 400, "reason": "BadRequest",
            "message": "container nope is not valid for pod web"}),
        )
    });
    let o = run(&fake, &["exec", "web", "-c", "nope", "--", "ls"]).await;
    let apiserver = "Error from server (BadRequest): container nope is not valid for pod web\n";
    assert_eq!((o.code, o.err.as_str()), (1, apiserver));
}

#[tokio::test]
async fn attach_follows_the_containers_terminal_and_echoes() {
    let fake = agent(running(), |_| {
        Reply::remote_command(|mut session| async move {
            let input = read_stdin(&mut session).await;
            send_stdout(&session, &input).await;
            session.output.finish(Ended::Success).await;
        })
    });
    let o = run_at(&fake.socket, &["attach", "-it", "pod/web"], b"hi\n").await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(o.out, "hi\n");
    assert_eq!(
        o.err,
        "error: Unable to use a TTY - container app did not allocate one\nIf you don't see a command prompt, try pressing enter.\n"
    );
    assert_eq!(
        fake.uris()[1],
        format!("GET {POD_PATH}/attach?container=app&stderr=true&stdin=true&stdout=true")
    );

    let o = run(&fake, &["attach", "web", "-c", "nope"]).await;
    assert_eq!(
        o.err,
        "error: cannot attach to the container: container nope not found in pod web\n"
    );
    let done = agent(web("Failed", json!([{"name": "app"}])), |_| unreachable!());
    let o = run(&done, &["attach", "web", "-q"]).await;
    assert_eq!(
        o.err,
        "error: cannot attach a container in a completed pod; current phase is Failed\n"
    );
}

/// A tar archive as busybox writes `tar cf - /tmp/src`: names without the leading `/`.
fn remote_archive(big: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, link: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        if !link.is_empty() {
            header.set_link_name(link).unwrap();
        }
        builder.append_data(&mut header, name, data).unwrap();
    };
    add("tmp/src", tar::EntryType::Directory, "", b"");
    add("tmp/src/a.txt", tar::EntryType::Regular, "", b"text\n");
    add("tmp/src/sub/big.bin", tar::EntryType::Regular, "", big);
    add("tmp/src/link", tar::EntryType::Symlink, "a.txt", b"");
    builder.into_inner().unwrap()
}

fn binary(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 % 256) as u8).collect()
}

#[tokio::test]
async fn cp_from_a_pod_unpacks_the_remote_tar_stream() {
    let big = binary(300 * 1024);
    let archive = remote_archive(&big);
    let fake = agent(running(), move |_| {
        let archive = archive.clone();
        Reply::remote_command(move |session| async move {
            let removing = Bytes::from_static(b"tar: removing leading '/' from member names\n");
            session.output.stderr(removing).await.unwrap();
            send_stdout(&session, &archive).await;
            session.output.finish(Ended::Success).await;
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run(&fake, &["cp", "web:/tmp/src/", out.to_str().unwrap()]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out, "tar: removing leading '/' from member names\n",
        "tar's stderr goes to stdout, as kubectl's"
    );
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"text\n");
    assert!(std::fs::read(out.join("sub/big.bin")).unwrap() == big);
    assert!(
        o.err.starts_with(&format!(
            "warning: skipping symlink: \"{}/link\" -> \"a.txt\"",
            out.display()
        )),
        "{}",
        o.err
    );
    let exec = &fake.requests()[1];
    assert!(exec.uri.ends_with("/exec?command=tar&command=cf&command=-&command=%2Ftmp%2Fsrc&container=app&stderr=true&stdout=true"), "{}", exec.uri);
}

/// The names and contents of an archive's regular files.
fn archived_files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(archive);
    let mut files = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.push((name, data));
    }
    files
}

/// A pod whose `test -d` says whether `directory` is one, and whose `tar -x` keeps its input.
fn tar_receiver(directory: bool, received: Arc<Mutex<Vec<u8>>>) -> Fake {
    agent(running(), move |request| {
        let testing = request.uri.contains("command=test");
        let received = received.clone();
        Reply::remote_command(move |mut session| async move {
            if testing {
                let outcome = match directory {
                    true => Ended::Success,
                    false => Ended::ExitCode {
                        code: 1,
                        message: "exit code 1".into(),
                    },
                };
                return session.output.finish(outcome).await;
            }
            *received.lock().unwrap() = read_stdin(&mut session).await;
            session.output.finish(Ended::Success).await;
        })
    })
}

fn local_tree(root: &Path, big: &[u8]) -> PathBuf {
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "text\n").unwrap();
    std::fs::write(src.join("sub/big.bin"), big).unwrap();
    src
}

#[tokio::test]
async fn cp_to_a_pod_streams_a_local_tar_to_tar_x() {
    let dir = tempfile::tempdir().unwrap();
    let big = binary(200 * 1024);
    let src = local_tree(dir.path(), &big);
    let received = Arc::new(Mutex::new(Vec::new()));
    let fake = tar_receiver(false, received.clone());
    let o = run(&fake, &["cp", src.to_str().unwrap(), "web:/tmp/dest"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    let uris = fake.uris();
    assert!(uris[1].ends_with("/exec?command=test&command=-d&command=%2Ftmp%2Fdest&container=app&stderr=true&stdout=true"), "{}", uris[1]);
    assert!(uris[3].ends_with("/exec?command=tar&command=-xmf&command=-&command=-C&command=%2Ftmp&container=app&stderr=true&stdin=true&stdout=true"), "{}", uris[3]);
    let files = archived_files(&received.lock().unwrap());
    assert_eq!(
        files,
        [
            ("dest/a.txt".to_string(), b"text\n".to_vec()),
            ("dest/sub/big.bin".into(), big.clone())
        ]
    );

    let fake = tar_receiver(true, received.clone());
    let o = run(
        &fake,
        &[
            "cp",
            src.to_str().unwrap(),
            "web:/tmp/dest",
            "--no-preserve",
        ],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(fake.uris()[3].contains("command=--no-same-permissions&command=--no-same-owner&command=-xmf&command=-&command=-C&command=%2Ftmp%2Fdest&"));
    let names: Vec<_> = archived_files(&received.lock().unwrap())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        ["src/a.txt", "src/sub/big.bin"],
        "into the directory"
    );
}

#[tokio::test]
async fn cp_refuses_what_kubectl_refuses() {
    let fake = agent(running(), |_| unreachable!());
    for (args, error) in [
        (
            ["a:x", "b:y"],
            "error: one of src or dest must be a local file specification\n",
        ),
        (
            ["x", "y"],
            "error: one of src or dest must be a remote file specification\n",
        ),
        (["web:", "y"], "error: filepath can not be empty\n"),
        (
            [":x", "y"],
            "error: filespec must match the canonical format: [[namespace/]pod:]file/path\n",
        ),
        (
            ["/no/such/file", "web:/tmp"],
            "error: /no/such/file doesn't exist in local filesystem\n",
        ),
    ] {
        let o = run(&fake, &["cp", args[0], args[1]]).await;
        assert_eq!((o.code, o.err.as_str()), (1, error), "{args:?}");
    }
}

/// The CLI running in a task of its own; its stdout and stderr readable meanwhile.
fn spawn_cli(socket: PathBuf, args: &[&str]) -> (tokio::task::JoinHandle<i32>, Buf, Buf) {
    let cli = Cli::try_parse_from(std::iter::once("peapod").chain(args.iter().copied())).unwrap();
    let (out, err) = (Buf::default(), Buf::default());
    let mut console = Console::new(
        Box::new(out.clone()),
        Box::new(err.clone()),
        Box::new(std::io::empty()),
    );
    let task =
        tokio::spawn(
            async move { run_with(&Client::new(socket), cli.command, &mut console).await },
        );
    (task, out, err)
}

async fn wait_for(buf: &Buf, what: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        let text = buf.text();
        if what(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never printed what was expected: {:?}", buf.text());
}

/// kubelet's side, as the agent serves it: connections to port 80 are echoed, every other
/// port is refused; the session ends at `stop`.
async fn serve_ports(mut connections: Connections, stop: Arc<Notify>) {
    loop {
        tokio::select! {
            connection = connections.next() => match connection {
                Some(connection) => tokio::spawn(serve_connection(connection)),
                None => return,
            },
            () = stop.notified() => return,
        };
    }
}

async fn serve_connection(connection: Connection) {
    if connection.port != 80 {
        return connection.fail("connection refused").await;
    }
    let (mut from_client, mut to_client) = tokio::io::split(connection.data);
    tokio::io::copy(&mut from_client, &mut to_client)
        .await
        .unwrap();
    to_client.shutdown().await.unwrap();
}

fn local_port(out: &str, remote: u16) -> u16 {
    let suffix = format!(" -> {remote}");
    let line = out.lines().find(|line| line.ends_with(&suffix)).unwrap();
    let address = line
        .trim_start_matches("Forwarding from ")
        .trim_end_matches(&suffix);
    address.rsplit(':').next().unwrap().parse().unwrap()
}

async fn echo(port: u16, text: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(text.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut echoed = String::new();
    stream.read_to_string(&mut echoed).await.unwrap();
    echoed
}

#[tokio::test]
async fn port_forward_carries_connections_until_the_session_ends() {
    let stop = Arc::new(Notify::new());
    let stopper = stop.clone();
    let fake = agent(running(), move |_| {
        let stop = stopper.clone();
        Reply::port_forward(move |connections| serve_ports(connections, stop))
    });
    let args = [
        "port-forward",
        "pod/web",
        ":80",
        ":81",
        "--address",
        "127.0.0.1",
    ];
    let (cli, out, err) = spawn_cli(fake.socket.clone(), &args);
    let printed = wait_for(&out, |out| out.lines().count() >= 2).await;
    let (echoing, refusing) = (local_port(&printed, 80), local_port(&printed, 81));
    assert!(
        printed.starts_with(&format!("Forwarding from 127.0.0.1:{echoing} -> 80\n")),
        "{printed}"
    );
    let texts: Vec<String> = (0..5)
        .map(|i| format!("request {i} ").repeat(1000 * i + 1))
        .collect();
    let echoes = futures::future::join_all(texts.iter().map(|text| echo(echoing, text))).await;
    assert_eq!(echoes, texts);
    assert_eq!(echo(refusing, "hello").await, "");
    let refused = format!("an error occurred forwarding {refusing} -> 81: connection refused");
    wait_for(&err, |err| err.contains(&refused)).await;
    assert_eq!(
        echo(echoing, "still there").await,
        "still there",
        "one refused connection ends only itself"
    );
    stop.notify_one();
    assert_eq!(cli.await.unwrap(), 1);
    assert!(
        err.text().ends_with("error: lost connection to pod\n"),
        "{}",
        err.text()
    );
    assert!(out
        .text()
        .contains(&format!("Handling connection for {echoing}\n")));
    let upgrade = &fake.requests()[1];
    assert_eq!(
        (upgrade.method.as_str(), upgrade.uri.as_str()),
        ("POST", "/api/v1/namespaces/default/pods/web/portforward")
    );
    assert_eq!(
        upgrade.header("x-stream-protocol-version"),
        "portforward.k8s.io"
    );
}

#[tokio::test]
async fn port_forward_ends_when_a_failed_connection_finds_the_pod_gone() {
    let gone = Arc::new(AtomicBool::new(false));
    let deleted = gone.clone();
    let fake = Fake::start(move |request| match request.path() {
        POD_PATH if deleted.load(Ordering::SeqCst) => Reply::not_found("pods", "web"),
        POD_PATH => Reply::json(200, running()),
        _ => Reply::port_forward(|connections| serve_ports(connections, Arc::new(Notify::new()))),
    });
    let args = ["port-forward", "web", ":81", "--address", "127.0.0.1"];
    let (cli, out, err) = spawn_cli(fake.socket.clone(), &args);
    let port = local_port(&wait_for(&out, |out| out.contains(" -> 81")).await, 81);
    gone.store(true, Ordering::SeqCst);
    assert_eq!(echo(port, "hello").await, "");
    assert_eq!(cli.await.unwrap(), 1);
    assert!(
        err.text()
            .ends_with("connection refused\nerror: lost connection to pod\n"),
        "{}",
        err.text()
    );
}

#[tokio::test]
async fn port_forward_needs_a_running_pod_and_valid_ports() {
    let fake = agent(web("Pending", json!([{"name": "app"}])), |_| unreachable!());
    let o = run(&fake, &["port-forward", "web", "8080:80"]).await;
    let pending =
        "error: unable to forward port because pod is not running. Current status=Pending\n";
    assert_eq!((o.code, o.err.as_str()), (1, pending));
    let fake = agent(running(), |_| unreachable!());
    let o = run(&fake, &["port-forward", "web", "http"]).await;
    assert_eq!(
        o.err,
        "error: Pod 'web' does not have a named port 'http'\n"
    );
    let o = run(
        &fake,
        &["port-forward", "web", "80", "--address", "nowhere"],
    )
    .await;
    assert_eq!(o.err, "error: nowhere is not a valid IP\n");
}
