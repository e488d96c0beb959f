//! Test fixture: a real `docker-registry` on 127.0.0.1 (plain HTTP, optionally behind bcrypt
//! htpasswd basic auth), skopeo pushes, and OCI layouts built for pull tests (busybox,
//! multi-arch indexes, big incompressible layers).
//!
//! Other crates reuse it with
//! `#[path = "../../peapod-image/tests/support/registry.rs"] mod registry;`; it depends only on
//! std, tempfile, serde_json, sha2 and hex.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// A running `docker-registry serve`, killed (and its storage removed) on drop.
pub struct Registry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
    creds: Option<String>,
}

impl Registry {
    /// A registry over plain HTTP on 127.0.0.1 at a free port.
    pub fn start() -> Registry {
        Registry::spawn(None)
    }

    /// A registry requiring basic auth with one bcrypt htpasswd user.
    pub fn start_with_htpasswd(user: &str, password: &str) -> Registry {
        Registry::spawn(Some((user, password)))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `skopeo copy` of the OCI layout `layout:tag` to `<addr>/<repo_tag>`, with extra skopeo
    /// arguments (e.g. `["--dest-compress-format", "zstd"]`, or `["--all"]` for indexes).
    pub fn push(&self, layout: &Path, tag: &str, repo_tag: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"]);
        if let Some(creds) = &self.creds {
            cmd.args(["--dest-creds", creds]);
        }
        cmd.args(extra)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.addr));
        let out = cmd.output().expect("running skopeo");
        assert!(
            out.status.success(),
            "skopeo copy to {}/{repo_tag} failed: {}",
            self.addr,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The registry's stored file of a blob, for tampering.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The registry's log (stdout and stderr), including one access line per request.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many `GET` requests for blobs the log shows so far.
    pub fn blob_gets(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .count()
    }

    fn spawn(htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("registry temp dir");
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).expect("registry storage dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            storage.display()
        );
        if let Some((user, password)) = htpasswd {
            let file = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("running htpasswd");
            assert!(out.status.success(), "htpasswd failed");
            fs::write(&file, &out.stdout).expect("writing htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: peapod-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).expect("writing registry config");
        let log = fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("registry log"))
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut registry = Registry {
            child,
            addr,
            dir,
            creds: htpasswd.map(|(u, p)| format!("{u}:{p}")),
        };
        registry.wait_ready();
        registry
    }

    /// Waits until `GET /v2/` answers 200 or 401.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("polling docker-registry") {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if matches!(http_status(&self.addr, "/v2/"), Some(200 | 401)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry on {} never answered: {}",
            self.addr,
            self.log()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// The status code of a plain `GET path`, or None when the server does not answer.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The busybox test image archives: `$PEAPOD_TEST_IMAGES` when set, otherwise the workspace's
/// `target/test-images`, built with tests/images/build.sh when missing.
pub fn images_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PEAPOD_TEST_IMAGES") {
            let dir = PathBuf::from(dir);
            if dir.join("busybox-oci.tar").exists() {
                return dir;
            }
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = repo.join("target/test-images");
        if !dir.join("busybox-oci.tar").exists() {
            let status = Command::new(repo.join("tests/images/build.sh"))
                .arg(&dir)
                .stdout(Stdio::null())
                .status()
                .expect("running tests/images/build.sh");
            assert!(status.success(), "building the test images failed");
        }
        dir
    })
}

/// The busybox OCI layout (tag `latest`) unpacked into a fresh temp dir.
pub fn busybox_layout() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("layout temp dir");
    let layout = dir.path().join("layout");
    fs::create_dir(&layout).expect("layout dir");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-xf")
        .arg(images_dir().join("busybox-oci.tar"))
        .status()
        .expect("running tar");
    assert!(status.success(), "unpacking busybox-oci.tar failed");
    (dir, layout)
}

/// The busybox image with its layer stored as a plain tar (tag `latest`): skopeo compresses
/// such layers with `--dest-compress-format` (it does not recompress gzip ones) and keeps
/// them plain with `--preserve-digests`.
pub fn uncompressed_busybox_layout() -> (tempfile::TempDir, PathBuf) {
    let (dir, layout) = busybox_layout();
    let base = Layout::open(&layout);
    let gzipped = blob_path(
        &layout,
        base.layer["digest"].as_str().expect("layer digest"),
    );
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&gzipped)
        .output()
        .expect("running gzip");
    assert!(out.status.success(), "gunzip of the busybox layer failed");
    let (manifest, size) = base.image_from("linux", "amd64", &[out.stdout]);
    base.tag(OCI_MANIFEST, &manifest, size, "latest");
    (dir, layout)
}

/// A new OCI layout holding one image per (os, arch) in an index tagged `tag`; each image has
/// the busybox layer plus a small uncompressed layer with /platform containing "<os>/<arch>".
pub fn multi_arch_layout(platforms: &[(&str, &str)], tag: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, layout) = busybox_layout();
    let base = Layout::open(&layout);
    let mut manifests = Vec::new();
    for (os, arch) in platforms {
        let extra = tar_with_file("platform", format!("{os}/{arch}").as_bytes());
        let (manifest, size) = base.image_with(os, arch, &[extra]);
        manifests.push(json!({
            "mediaType": OCI_MANIFEST, "digest": manifest, "size": size,
            "platform": {"os": os, "architecture": arch},
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let (digest, size) = base.put_json(&index);
    base.tag(OCI_INDEX, &digest, size, tag);
    (dir, layout)
}

/// A layout tagged `latest` with `layers` layers of `layer_mb` MiB of incompressible data
/// each (uncompressed tar) on top of busybox.
pub fn big_layout(layers: usize, layer_mb: usize) -> (tempfile::TempDir, PathBuf) {
    let (dir, layout) = busybox_layout();
    let base = Layout::open(&layout);
    let extra: Vec<Vec<u8>> = (0..layers)
        .map(|i| tar_with_file(&format!("big{i}"), &noise(layer_mb << 20, i as u64 + 1)))
        .collect();
    let (manifest, size) = base.image_with("linux", "amd64", &extra);
    base.tag(OCI_MANIFEST, &manifest, size, "latest");
    (dir, layout)
}

/// The sha256 digest (`sha256:<hex>`) of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An OCI layout directory whose first manifest is the busybox image.
struct Layout {
    dir: PathBuf,
    /// The busybox layer's descriptor and diff_id.
    layer: Value,
    diff_id: Value,
}

impl Layout {
    fn open(dir: &Path) -> Layout {
        let index = read_json(&dir.join("index.json"));
        let manifest_digest = index["manifests"][0]["digest"].as_str().expect("digest");
        let manifest = read_json(&blob_path(dir, manifest_digest));
        let config_digest = manifest["config"]["digest"].as_str().expect("config");
        let config = read_json(&blob_path(dir, config_digest));
        Layout {
            dir: dir.to_path_buf(),
            layer: manifest["layers"][0].clone(),
            diff_id: config["rootfs"]["diff_ids"][0].clone(),
        }
    }

    /// Writes a busybox-based image for `os/arch` with `extra` uncompressed layers on top;
    /// returns its manifest's digest and size.
    fn image_with(&self, os: &str, arch: &str, extra: &[Vec<u8>]) -> (String, usize) {
        self.image_on(
            vec![self.layer.clone()],
            vec![self.diff_id.clone()],
            os,
            arch,
            extra,
        )
    }

    /// Like `image_with`, without the busybox layer.
    fn image_from(&self, os: &str, arch: &str, tars: &[Vec<u8>]) -> (String, usize) {
        self.image_on(Vec::new(), Vec::new(), os, arch, tars)
    }

    fn image_on(
        &self,
        mut layers: Vec<Value>,
        mut diff_ids: Vec<Value>,
        os: &str,
        arch: &str,
        extra: &[Vec<u8>],
    ) -> (String, usize) {
        for tar in extra {
            let (digest, size) = self.put(tar);
            layers.push(json!({"mediaType": OCI_LAYER_TAR, "digest": digest, "size": size}));
            diff_ids.push(json!(digest));
        }
        let config = json!({
            "architecture": arch, "os": os,
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let (config_digest, config_size) = self.put_json(&config);
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        self.put_json(&manifest)
    }

    fn put(&self, bytes: &[u8]) -> (String, usize) {
        let digest = sha256(bytes);
        fs::write(blob_path(&self.dir, &digest), bytes).expect("writing blob");
        (digest, bytes.len())
    }

    fn put_json(&self, value: &Value) -> (String, usize) {
        self.put(&serde_json::to_vec(value).expect("json"))
    }

    /// Points index.json's tag `tag` (and only it) at a manifest or index.
    fn tag(&self, media_type: &str, digest: &str, size: usize, tag: &str) {
        let index = json!({"schemaVersion": 2, "manifests": [{
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }]});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("writing index.json");
    }
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// An uncompressed tar archive holding one regular file (mode 0644, owned by root).
pub fn tar_with_file(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}

/// `len` pseudo-random bytes (xorshift64*), which no compressor shrinks.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}
