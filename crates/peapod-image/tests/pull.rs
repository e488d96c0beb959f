//! Pulls from a real registry (docker-registry on 127.0.0.1, images pushed with skopeo):
//! formats, platforms, auth, bad input, and interrupted or concurrent pulls.

#[path = "support/registry.rs"]
mod registry;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use peapod_image::registry::{Credentials, PullError, PullEvent, Puller, RegistryConfig};
use peapod_image::{Image, ImageStore};
use registry::Registry;

struct Store {
    _dir: tempfile::TempDir,
    store: ImageStore,
    puller: Puller,
}

fn store_with(config: RegistryConfig) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("images")).unwrap();
    let puller = Puller::new(store.clone(), config);
    Store {
        _dir: dir,
        store,
        puller,
    }
}

fn store() -> Store {
    store_with(RegistryConfig::default())
}

async fn pull(store: &Store, reference: &str) -> (Result<Image, PullError>, Vec<PullEvent>) {
    let events = Mutex::new(Vec::new());
    let result = store
        .puller
        .pull(reference, &|e| events.lock().unwrap().push(e))
        .await;
    (result, events.into_inner().unwrap())
}

async fn pull_ok(store: &Store, reference: &str) -> (Image, Vec<PullEvent>) {
    let (result, events) = pull(store, reference).await;
    (
        result.unwrap_or_else(|e| panic!("pull {reference}: {e}")),
        events,
    )
}

/// Every path under the store's blobs, layers and tmp directories.
fn contents(store: &ImageStore) -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["blobs/sha256", "layers", "tmp"] {
        for entry in std::fs::read_dir(store.root().join(dir)).unwrap() {
            found.push(format!(
                "{dir}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    found.sort();
    found
}

fn assert_runs(store: &ImageStore, image: &Image) {
    let busybox = store.read_file(image, "/bin/busybox").unwrap().unwrap();
    assert!(
        busybox.len() > 100_000,
        "busybox binary read through layers"
    );
    assert_eq!(image.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
}

fn busybox_pushed(reg: &Registry, repo_tag: &str, extra: &[&str]) {
    let (_dir, layout) = registry::busybox_layout();
    reg.push(&layout, "latest", repo_tag, extra);
}

#[tokio::test]
async fn pull_then_repull_fetches_nothing_again() {
    let reg = Registry::start();
    busybox_pushed(&reg, "library/busybox:1.36", &[]);
    let s = store();
    let reference = format!("{}/library/busybox:1.36", reg.addr());
    let (image, events) = pull_ok(&s, &reference).await;
    assert_eq!(image.names, std::slice::from_ref(&reference));
    assert_eq!(image.layers.len(), 1);
    assert_runs(&s.store, &image);
    assert_eq!(s.store.get(&reference).unwrap(), image);

    let PullEvent::Resolved {
        reference: resolved,
        manifest_digest,
        layers,
    } = &events[0]
    else {
        panic!("first event is not resolved: {events:?}");
    };
    assert_eq!(
        (resolved, manifest_digest),
        (&reference, &image.manifest_digest)
    );
    assert_eq!(layers.len(), 1);
    assert!(!layers[0].cached);
    let progress: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            PullEvent::Progress {
                received, total, ..
            } => {
                assert_eq!(*total, layers[0].size);
                Some(*received)
            }
            _ => None,
        })
        .collect();
    assert!(progress.len() >= 2, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(progress.last(), Some(&layers[0].size));
    assert_eq!(
        events.last(),
        Some(&PullEvent::LayerReady {
            digest: layers[0].digest.clone(),
            cached: false
        })
    );

    let gets = reg.blob_gets();
    assert_eq!(gets, 2, "config and layer: {}", reg.log());
    let (again, events) = pull_ok(&s, &reference).await;
    assert_eq!(again, image);
    assert_eq!(reg.blob_gets(), gets, "a re-pull fetches no blob");
    assert!(events.contains(&PullEvent::LayerReady {
        digest: layers[0].digest.clone(),
        cached: true
    }));
    assert!(!events
        .iter()
        .any(|e| matches!(e, PullEvent::Progress { .. })));
    assert_eq!(s.store.list().unwrap().len(), 1);
    assert!(contents(&s.store).iter().all(|p| !p.starts_with("tmp/")));
}

#[tokio::test]
async fn pull_by_digest_verifies_the_manifest() {
    let reg = Registry::start();
    busybox_pushed(&reg, "busybox:1", &[]);
    let first = store();
    let (image, _) = pull_ok(&first, &format!("{}/busybox:1", reg.addr())).await;

    let s = store();
    let by_digest = format!("{}/busybox@{}", reg.addr(), image.manifest_digest);
    let (pulled, _) = pull_ok(&s, &by_digest).await;
    assert_eq!(pulled.id, image.id);
    assert_eq!(pulled.names, std::slice::from_ref(&by_digest));
    assert_runs(&s.store, &pulled);

    let unknown = format!("{}/busybox@sha256:{}", reg.addr(), "0".repeat(64));
    let (result, _) = pull(&s, &unknown).await;
    assert!(
        matches!(result, Err(PullError::NotFound { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn docker_schema2_zstd_and_uncompressed_layers() {
    let reg = Registry::start();
    busybox_pushed(&reg, "v2s2:1", &["--format", "v2s2"]);
    // skopeo reuses any copy of a layer it knows a registry has, whatever its compression.
    let reg2 = Registry::start();
    let (_plain, plain) = registry::uncompressed_busybox_layout();
    reg2.push(
        &plain,
        "latest",
        "zstd:1",
        &["--dest-compress-format", "zstd"],
    );
    reg2.push(&plain, "latest", "plain:1", &["--preserve-digests"]);
    let s = store();

    let (image, _) = pull_ok(&s, &format!("{}/v2s2:1", reg.addr())).await;
    assert_runs(&s.store, &image);
    let manifest = raw_manifest(&reg, "v2s2:1");
    assert!(
        manifest.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{manifest}"
    );

    let manifest = raw_manifest(&reg2, "zstd:1");
    assert!(manifest.contains("tar+zstd"), "{manifest}");
    let (zstd, _) = pull_ok(&s, &format!("{}/zstd:1", reg2.addr())).await;
    assert_eq!(
        zstd.layers, image.layers,
        "same diff_ids, another compression"
    );
    assert_runs(&s.store, &zstd);

    let manifest = raw_manifest(&reg2, "plain:1");
    assert!(manifest.contains("image.layer.v1.tar\""), "{manifest}");
    let (plain, _) = pull_ok(&s, &format!("{}/plain:1", reg2.addr())).await;
    assert_eq!(plain.layers, image.layers);
    assert_runs(&s.store, &plain);
    assert_eq!(s.store.list().unwrap().len(), 3);
    assert_eq!(
        s.store.layer_dirs(&plain).unwrap(),
        s.store.layer_dirs(&image).unwrap()
    );
}

fn raw_manifest(reg: &Registry, repo_tag: &str) -> String {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/{repo_tag}", reg.addr()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn multi_arch_index_resolves_to_this_platform() {
    let reg = Registry::start();
    let (_m, multi) = registry::multi_arch_layout(
        &[("linux", "arm64"), ("linux", "amd64"), ("linux", "s390x")],
        "v1",
    );
    reg.push(&multi, "v1", "multi:v1", &["--all"]);
    let (_f, foreign) =
        registry::multi_arch_layout(&[("linux", "arm64"), ("windows", "amd64")], "v1");
    reg.push(&foreign, "v1", "foreign:v1", &["--all"]);
    let s = store();

    let (image, _) = pull_ok(&s, &format!("{}/multi:v1", reg.addr())).await;
    let platform = s.store.read_file(&image, "/platform").unwrap().unwrap();
    assert_eq!(platform, b"linux/amd64");
    assert_runs(&s.store, &image);
    assert_eq!(
        reg.blob_gets(),
        3,
        "only the chosen platform's blobs: {}",
        reg.log()
    );

    let (result, _) = pull(&s, &format!("{}/foreign:v1", reg.addr())).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, PullError::NoMatchingPlatform { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "failed to pull and unpack image \"{}/foreign:v1\": no match for platform in manifest sha256:",
            reg.addr()
        )),
        "{message}"
    );
    assert!(message.ends_with(": not found (linux/amd64)"), "{message}");
    assert_eq!(s.store.list().unwrap().len(), 1);
}

#[tokio::test]
async fn htpasswd_registry_needs_the_right_credentials() {
    let reg = Registry::start_with_htpasswd("alice", "s3cret");
    busybox_pushed(&reg, "private:1", &[]);
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("config.json");
    let s = store_with(RegistryConfig {
        auth_file: Some(auth_file.clone()),
        ..RegistryConfig::default()
    });
    let reference = format!("{}/private:1", reg.addr());

    let (result, _) = pull(&s, &reference).await;
    let err = result.unwrap_err();
    assert!(matches!(err, PullError::Unauthorized { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": \
             pull access denied, repository does not exist or may require authorization: \
             authorization failed: 401 Unauthorized"
        )
    );

    let write_auth = |user: &str, pass: &str| {
        let json = format!(
            r#"{{"auths": {{"{}": {{"username": "{user}", "password": "{pass}"}}}}}}"#,
            reg.addr()
        );
        std::fs::write(&auth_file, json).unwrap();
    };
    write_auth("alice", "wrong");
    let (result, _) = pull(&s, &reference).await;
    assert!(
        matches!(result, Err(PullError::Unauthorized { .. })),
        "{result:?}"
    );

    write_auth("alice", "s3cret");
    let (image, _) = pull_ok(&s, &reference).await;
    assert_runs(&s.store, &image);
}

#[tokio::test]
async fn credentials_are_tried_in_order_the_pods_before_the_nodes() {
    let reg = Registry::start_with_htpasswd("alice", "s3cret");
    busybox_pushed(&reg, "private:1", &[]);
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("config.json");
    let node_entry = |user: &str, pass: &str| {
        let json = format!(
            r#"{{"auths": {{"{}": {{"username": "{user}", "password": "{pass}"}}}}}}"#,
            reg.addr()
        );
        std::fs::write(&auth_file, json).unwrap();
    };
    let s = store_with(RegistryConfig {
        auth_file: Some(auth_file.clone()),
        ..RegistryConfig::default()
    });
    let reference = format!("{}/private:1", reg.addr());
    let creds = |user: &str, pass: &str| Credentials {
        username: user.into(),
        password: pass.into(),
    };
    let noop = |_: PullEvent| {};

    // Two wrong credentials: both tried, one message for the two identical refusals.
    node_entry("alice", "wrong");
    let err = s
        .puller
        .pull_with(&reference, &[creds("bob", "nope")], &noop)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PullError::Attempts(e) if e.len() == 2),
        "{err:?}"
    );
    assert!(err.to_string().contains("401 Unauthorized"), "{err}");
    assert!(!err.to_string().starts_with('['), "{err}");

    // A wrong one first, then the pod's right one: the pull goes ahead.
    let image = s
        .puller
        .pull_with(
            &reference,
            &[creds("bob", "nope"), creds("alice", "s3cret")],
            &noop,
        )
        .await
        .unwrap();
    assert_runs(&s.store, &image);

    // The node's right credentials after the pod's wrong ones.
    node_entry("alice", "s3cret");
    s.puller
        .pull_with(&reference, &[creds("bob", "nope")], &noop)
        .await
        .unwrap();

    // An explicit anonymous pull ignores the node's file.
    let err = s.puller.pull_as(&reference, None, &noop).await.unwrap_err();
    assert!(matches!(err, PullError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn missing_tag_and_repository_are_not_found() {
    let reg = Registry::start();
    busybox_pushed(&reg, "busybox:1", &[]);
    let s = store();
    for reference in [
        format!("{}/busybox:nope", reg.addr()),
        format!("{}/nothing/here:1", reg.addr()),
    ] {
        let (result, events) = pull(&s, &reference).await;
        let err = result.unwrap_err();
        assert!(matches!(err, PullError::NotFound { .. }), "{err:?}");
        assert!(!err.is_unreachable());
        assert_eq!(
            err.to_string(),
            format!(
                "failed to pull and unpack image \"{reference}\": failed to resolve reference \
                 \"{reference}\": {reference}: not found"
            )
        );
        assert!(events.is_empty());
    }
    assert!(contents(&s.store).is_empty());
}

#[tokio::test]
async fn unknown_and_dead_hosts_are_unreachable() {
    let s = store();
    let (result, _) = pull(&s, "nosuch.invalid:5000/x:1").await;
    let err = result.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "failed to pull and unpack image \"nosuch.invalid:5000/x:1\": failed to resolve reference \"nosuch.invalid:5000/x:1\": dial tcp: lookup nosuch.invalid"
        ),
        "{message}"
    );

    let port = registry::free_port();
    let (result, _) = pull(&s, &format!("127.0.0.1:{port}/x:1")).await;
    let err = result.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(
        err.to_string().ends_with(&format!(
            "dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{err}"
    );
    assert!(contents(&s.store).is_empty());
}

#[tokio::test]
async fn a_tampered_blob_is_rejected_and_leaves_nothing() {
    let reg = Registry::start();
    busybox_pushed(&reg, "busybox:1", &[]);
    let layer = layer_digest(&reg, "busybox:1");
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();

    let s = store();
    let reference = format!("{}/busybox:1", reg.addr());
    let (result, _) = pull(&s, &reference).await;
    let err = result.unwrap_err();
    assert!(matches!(err, PullError::DigestMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "failed to pull and unpack image \"{reference}\": failed to copy: layer {layer}: digest mismatch: expected {layer}, got sha256:"
        )),
        "{message}"
    );
    assert!(s.store.list().unwrap().is_empty());
    assert!(contents(&s.store).is_empty(), "{:?}", contents(&s.store));
}

fn layer_digest(reg: &Registry, repo_tag: &str) -> String {
    let manifest: serde_json::Value = serde_json::from_str(&raw_manifest(reg, repo_tag)).unwrap();
    manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A TCP proxy to `upstream` that cuts every connection once it has sent `limit` bytes
/// towards the client.
struct CuttingProxy {
    addr: String,
    limit: Arc<AtomicU64>,
}

impl CuttingProxy {
    fn start(upstream: &str, limit: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let limit = Arc::new(AtomicU64::new(limit));
        let (upstream, shared) = (upstream.to_string(), Arc::clone(&limit));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let limit = Arc::clone(&shared);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || forward(c2, s2, None));
                std::thread::spawn(move || forward(server, client, Some(limit)));
            }
        });
        CuttingProxy { addr, limit }
    }
}

fn forward(mut from: TcpStream, mut to: TcpStream, limit: Option<Arc<AtomicU64>>) {
    let mut sent = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        sent += n as u64;
        if limit
            .as_ref()
            .is_some_and(|l| sent > l.load(Ordering::SeqCst))
        {
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

#[tokio::test]
async fn a_connection_cut_mid_blob_leaves_nothing_and_the_next_pull_works() {
    let reg = Registry::start();
    busybox_pushed(&reg, "busybox:1", &[]);
    let proxy = CuttingProxy::start(reg.addr(), 300_000);
    let s = store();
    let reference = format!("{}/busybox:1", proxy.addr);

    let (result, _) = pull(&s, &reference).await;
    let err = result.unwrap_err();
    assert!(matches!(err, PullError::Fetch { .. }), "{err:?}");
    assert!(
        err.to_string().contains(": failed to copy: layer sha256:"),
        "{err}"
    );
    assert!(s.store.list().unwrap().is_empty());
    assert!(contents(&s.store).is_empty(), "{:?}", contents(&s.store));

    proxy.limit.store(u64::MAX, Ordering::SeqCst);
    let (image, _) = pull_ok(&s, &reference).await;
    assert_runs(&s.store, &image);
}

#[tokio::test]
async fn concurrent_pulls_of_one_image_both_succeed() {
    let reg = Registry::start();
    let (_big, big) = registry::big_layout(3, 2);
    reg.push(&big, "latest", "big:1", &[]);
    let s = store();
    let reference = format!("{}/big:1", reg.addr());
    let ((a, _), (b, _)) = tokio::join!(pull(&s, &reference), pull(&s, &reference));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_eq!(s.store.list().unwrap(), std::slice::from_ref(&a));
    assert_eq!(s.store.layer_dirs(&a).unwrap().len(), 4);
    assert_runs(&s.store, &a);
    let expected_blobs = 2 + a.layers.len();
    let listed = contents(&s.store);
    assert_eq!(
        listed.iter().filter(|p| p.starts_with("blobs/")).count(),
        expected_blobs,
        "{listed:?}"
    );
    assert!(listed.iter().all(|p| !p.starts_with("tmp/")), "{listed:?}");
}

#[tokio::test]
async fn shared_layers_are_not_fetched_again_and_tags_move() {
    let reg = Registry::start();
    busybox_pushed(&reg, "busybox:1", &[]);
    let (_m, multi) = registry::multi_arch_layout(&[("linux", "amd64")], "v1");
    reg.push(&multi, "v1", "app:1", &["--all"]);
    let s = store();
    pull_ok(&s, &format!("{}/busybox:1", reg.addr())).await;
    let before = reg.blob_gets();
    let (app, events) = pull_ok(&s, &format!("{}/app:1", reg.addr())).await;
    assert_eq!(reg.blob_gets() - before, 2, "config and the new layer only");
    let PullEvent::Resolved { layers, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        layers.iter().map(|l| l.cached).collect::<Vec<_>>(),
        [true, false]
    );
    assert_runs(&s.store, &app);

    // The tag now names busybox: the name moves, the old image stays without names.
    busybox_pushed(&reg, "app:1", &[]);
    let (moved, _) = pull_ok(&s, &format!("{}/app:1", reg.addr())).await;
    assert_ne!(moved.id, app.id);
    let images = s.store.list().unwrap();
    assert_eq!(images.len(), 2);
    let old = images.iter().find(|i| i.id == app.id).unwrap();
    assert!(old.names.is_empty(), "{old:?}");
    let busybox = images.iter().find(|i| i.id == moved.id).unwrap();
    assert_eq!(busybox.names.len(), 2, "{busybox:?}");
}
