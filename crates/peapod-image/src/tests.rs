//! Store-level tests: fixtures (OCI layouts, docker-save archives) are built here with the
//! `tar` crate and loaded through the public API.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::digest::Digest;
use crate::unpack::tests::TarBuilder;
use crate::{resolve_user, Image, ImageConfig, ImageError, ImageStore};

/// An image's blobs, ready to be written in either archive format.
struct Fixture {
    blobs: BTreeMap<String, Vec<u8>>,
    manifest: Value,
    manifest_digest: Digest,
    config_digest: Digest,
    layer_paths: Vec<String>,
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn cmd_config(cmd: &str, diff_ids: &[String]) -> Value {
    json!({
        "architecture": crate::spec::host_platform().1, "os": "linux",
        "config": {"Cmd": [cmd], "Env": ["PATH=/bin"], "User": "app"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
}

/// Builds an image from uncompressed layer tars; `gz` compresses the layer blobs.
fn fixture(cmd: &str, layers: &[Vec<u8>], gz: bool) -> Fixture {
    fixture_with(layers, gz, |diff_ids| cmd_config(cmd, diff_ids))
}

fn fixture_with(layers: &[Vec<u8>], gz: bool, config: impl Fn(&[String]) -> Value) -> Fixture {
    let mut blobs = BTreeMap::new();
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let config = serde_json::to_vec(&config(&diff_ids)).unwrap();
    let config_digest = Digest::of(&config);
    let mut layer_descs = Vec::new();
    let mut layer_paths = Vec::new();
    for layer in layers {
        let blob = if gz { gzip(layer) } else { layer.clone() };
        let digest = Digest::of(&blob);
        let media_type = if gz {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        layer_descs.push(
            json!({"mediaType": media_type, "digest": digest.to_string(), "size": blob.len()}),
        );
        layer_paths.push(format!("blobs/sha256/{}", digest.hex()));
        blobs.insert(digest.hex().to_string(), blob);
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": layer_descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = Digest::of(&manifest_bytes);
    blobs.insert(config_digest.hex().to_string(), config);
    blobs.insert(manifest_digest.hex().to_string(), manifest_bytes.clone());
    let manifest = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest.to_string(),
        "size": manifest_bytes.len(),
    });
    Fixture {
        blobs,
        manifest,
        manifest_digest,
        config_digest,
        layer_paths,
    }
}

fn described(fixture: &Fixture, annotations: Value) -> Value {
    let mut descriptor = fixture.manifest.clone();
    descriptor["annotations"] = annotations;
    descriptor
}

/// The files of an OCI layout holding `images` (descriptor per image).
fn oci_files(fixtures: &[&Fixture], descriptors: Vec<Value>) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (
            "index.json".to_string(),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": descriptors})).unwrap(),
        ),
    ];
    for fixture in fixtures {
        for (hex, blob) in &fixture.blobs {
            files.push((format!("blobs/sha256/{hex}"), blob.clone()));
        }
    }
    files
}

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
}

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = TarBuilder::new();
    for (path, data) in files {
        builder.file(path, data);
    }
    builder.finish()
}

struct Env {
    tmp: tempfile::TempDir,
    store: ImageStore,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(tmp.path().join("store")).unwrap();
        Env { tmp, store }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn count(&self, sub: &str) -> usize {
        fs::read_dir(self.store.root().join(sub)).unwrap().count()
    }
}

fn names(image: &Image) -> Vec<&str> {
    image.names.iter().map(String::as_str).collect()
}

#[test]
fn load_oci_layout_directory_keeps_names_and_unpacks() {
    let env = Env::new();
    let base = layer(&[(
        "etc/passwd",
        b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
    )]);
    let top = layer(&[("etc/group", b"root:x:0:\napp:x:1000:\nstaff:x:50:app\n")]);
    let image = fixture("sh", &[base, top], true);
    let dir = env.tmp.path().join("layout");
    let descriptor = described(
        &image,
        json!({"io.containerd.image.name": "docker.io/library/busybox:latest",
               "org.opencontainers.image.ref.name": "latest"}),
    );
    write_dir(&dir, &oci_files(&[&image], vec![descriptor]));

    let loaded = env.store.load(&dir).unwrap();
    assert_eq!(loaded.len(), 1);
    let got = env.store.get("busybox").unwrap();
    assert_eq!(got, loaded[0]);
    assert_eq!(names(&got), ["docker.io/library/busybox:latest"]);
    assert_eq!(got.id, image.config_digest.to_string());
    assert_eq!(got.manifest_digest, image.manifest_digest.to_string());
    assert_eq!(got.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(got.layers.len(), 2);
    let blob_sizes: usize = image
        .blobs
        .iter()
        .filter(|(hex, _)| **hex != image.manifest_digest.hex())
        .map(|(_, b)| b.len())
        .sum();
    assert_eq!(got.size, blob_sizes as u64);
    let dirs = env.store.layer_dirs(&got).unwrap();
    assert!(dirs[0].join("etc/passwd").is_file());
    assert!(dirs[1].join("etc/group").is_file());
    assert_eq!(
        resolve_user(&env.store, &got, "app").unwrap(),
        (1000, 1000, vec![1000, 50])
    );
    assert_eq!(env.count("tmp"), 0);
}

#[test]
fn load_oci_archive_gzipped_and_bare_ref_name() {
    let env = Env::new();
    let named = fixture("a", &[layer(&[("a", b"1")])], false);
    let bare = fixture("b", &[layer(&[("b", b"2")])], false);
    let descriptors = vec![
        described(
            &named,
            json!({"org.opencontainers.image.ref.name": "ghcr.io/org/app:1.2"}),
        ),
        described(
            &bare,
            json!({"org.opencontainers.image.ref.name": "latest"}),
        ),
    ];
    let archive = gzip(&tar_of(&oci_files(&[&named, &bare], descriptors)));
    let loaded = env.store.load(&env.write("oci.tar.gz", &archive)).unwrap();
    assert_eq!(names(&loaded[0]), ["ghcr.io/org/app:1.2"]);
    assert!(loaded[1].names.is_empty());
    let by_id = env.store.get(&loaded[1].id).unwrap();
    assert_eq!(by_id.manifest_digest, bare.manifest_digest.to_string());
    let by_prefix = env.store.get(&bare.config_digest.hex()[..12]).unwrap();
    assert_eq!(by_prefix.id, loaded[1].id);
    let by_manifest = env.store.get(&named.manifest_digest.to_string()).unwrap();
    assert_eq!(by_manifest.id, loaded[0].id);
    assert_eq!(env.store.list().unwrap().len(), 2);
    // Blobs only of what is referenced: 2 images x (manifest + config + layer).
    assert_eq!(env.count("blobs/sha256"), 6);
}

#[test]
fn load_docker_save_archive_with_repo_tags_and_linked_layers() {
    let env = Env::new();
    let base = layer(&[("bin/sh", b"sh")]);
    let image = fixture("sh", &[base.clone(), base.clone()], false);
    let config = image.blobs[image.config_digest.hex()].clone();
    let config_name = format!("{}.json", image.config_digest.hex());
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": ["busybox:1.36", "localhost:5000/tools/sh:v1"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"],
    }]);
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        (config_name.as_str(), config.as_slice()),
        ("aaa/layer.tar", base.as_slice()),
        ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, bytes).unwrap();
    }
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder
        .append_link(&mut link, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    let archive = builder.into_inner().unwrap();

    let loaded = env.store.load(&env.write("save.tar", &archive)).unwrap();
    assert_eq!(
        names(&loaded[0]),
        [
            "docker.io/library/busybox:1.36",
            "localhost:5000/tools/sh:v1"
        ]
    );
    assert_eq!(loaded[0].id, image.config_digest.to_string());
    assert_eq!(env.store.get("busybox:1.36").unwrap().id, loaded[0].id);
    let dirs = env.store.layer_dirs(&loaded[0]).unwrap();
    assert_eq!(dirs[0], dirs[1]);
    assert_eq!(env.count("layers"), 1);
    assert_eq!(
        env.store.read_file(&loaded[0], "/bin/sh").unwrap().unwrap(),
        b"sh"
    );
}

#[test]
fn docker_25_archive_merges_repo_tags_into_oci_images() {
    let env = Env::new();
    let image = fixture("x", &[layer(&[("x", b"x")])], false);
    let manifest = json!([{
        "Config": format!("blobs/sha256/{}", image.config_digest.hex()),
        "RepoTags": ["app:dev"],
        "Layers": image.layer_paths,
    }]);
    let mut files = oci_files(&[&image], vec![described(&image, json!({}))]);
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let loaded = env
        .store
        .load(&env.write("d25.tar", &tar_of(&files)))
        .unwrap();
    assert_eq!(names(&loaded[0]), ["docker.io/library/app:dev"]);
    assert_eq!(loaded[0].manifest_digest, image.manifest_digest.to_string());
}

#[test]
fn tampered_blob_is_rejected_and_nothing_is_kept() {
    let env = Env::new();
    let image = fixture("x", &[layer(&[("x", b"x")])], false);
    let mut files = oci_files(&[&image], vec![described(&image, json!({}))]);
    let layer_blob = &image.layer_paths[0];
    let entry = files
        .iter_mut()
        .find(|(name, _)| name == layer_blob)
        .unwrap();
    entry.1 = layer(&[("x", b"y")]);
    let err = env
        .store
        .load(&env.write("bad.tar", &tar_of(&files)))
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(env.store.list().unwrap().is_empty());
    assert_eq!(env.count("blobs/sha256"), 0);
    assert_eq!(env.count("layers"), 0);

    let dir = env.tmp.path().join("bad-dir");
    write_dir(&dir, &files);
    let err = env.store.load(&dir).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_eq!(env.count("blobs/sha256"), 0);
}

#[test]
fn wrong_diff_id_is_rejected() {
    let env = Env::new();
    let tar = layer(&[("x", b"x")]);
    let image = fixture_with(&[tar], true, |_| {
        cmd_config("x", &[Digest::of(b"lie").to_string()])
    });
    let dir = env.tmp.path().join("layout");
    write_dir(
        &dir,
        &oci_files(&[&image], vec![described(&image, json!({}))]),
    );
    let err = env.store.load(&dir).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_eq!(env.count("layers"), 0);
    assert_eq!(env.count("tmp"), 0);
}

#[test]
fn missing_files_and_unknown_formats() {
    let env = Env::new();
    let image = fixture("x", &[layer(&[("x", b"x")])], false);
    let mut files = oci_files(&[&image], vec![described(&image, json!({}))]);
    files.retain(|(name, _)| *name != image.layer_paths[0]);
    let err = env
        .store
        .load(&env.write("partial.tar", &tar_of(&files)))
        .unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
    let junk = tar_of(&[("hello.txt".into(), b"hi".to_vec())]);
    let err = env.store.load(&env.write("junk.tar", &junk)).unwrap_err();
    assert!(matches!(err, ImageError::UnknownFormat { .. }), "{err}");
}

#[test]
fn shared_layers_are_unpacked_once_and_kept_while_used() {
    let env = Env::new();
    let shared = layer(&[("etc/os-release", b"peapod")]);
    let a = fixture("a", &[shared.clone(), layer(&[("a", b"a")])], true);
    let b = fixture("b", &[shared.clone(), layer(&[("b", b"b")])], true);
    let load = |fixture: &Fixture, name: &str, file: &str| {
        let descriptor = described(fixture, json!({"io.containerd.image.name": name}));
        let tar = tar_of(&oci_files(&[fixture], vec![descriptor]));
        env.store.load(&env.write(file, &tar)).unwrap().remove(0)
    };
    let image_a = load(&a, "docker.io/library/a:1", "a.tar");
    let shared_dir = env.store.layer_dirs(&image_a).unwrap()[0].clone();
    fs::write(shared_dir.join("marker"), b"").unwrap();
    let image_b = load(&b, "docker.io/library/b:1", "b.tar");
    assert_eq!(env.store.layer_dirs(&image_b).unwrap()[0], shared_dir);
    assert!(
        shared_dir.join("marker").exists(),
        "shared layer was unpacked again"
    );
    assert_eq!(env.count("layers"), 3);

    let a_top = env.store.layer_dirs(&image_a).unwrap()[1].clone();
    let removed = env.store.remove("a:1").unwrap();
    assert!(removed.names.is_empty());
    assert!(matches!(
        env.store.get("a:1"),
        Err(ImageError::NotFound { .. })
    ));
    assert!(shared_dir.is_dir());
    assert!(!a_top.exists());
    assert_eq!(env.count("layers"), 2);
    assert_eq!(env.count("blobs/sha256"), 4);
    assert_eq!(
        env.store
            .read_file(&image_b, "/etc/os-release")
            .unwrap()
            .unwrap(),
        b"peapod"
    );

    env.store.remove(&image_b.id).unwrap();
    assert_eq!(env.count("layers"), 0);
    assert_eq!(env.count("blobs/sha256"), 0);
}

#[test]
fn remove_by_name_keeps_other_names() {
    let env = Env::new();
    let image = fixture("x", &[layer(&[("x", b"x")])], false);
    let descriptors = vec![
        described(
            &image,
            json!({"io.containerd.image.name": "docker.io/library/x:1"}),
        ),
        described(
            &image,
            json!({"io.containerd.image.name": "docker.io/library/x:2"}),
        ),
    ];
    let dir = env.tmp.path().join("layout");
    write_dir(&dir, &oci_files(&[&image], descriptors));
    let loaded = env.store.load(&dir).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(
        names(&loaded[0]),
        ["docker.io/library/x:1", "docker.io/library/x:2"]
    );
    let left = env.store.remove("docker.io/library/x:1").unwrap();
    assert_eq!(names(&left), ["docker.io/library/x:2"]);
    assert_eq!(env.store.get("x:2").unwrap().id, loaded[0].id);
    assert_eq!(env.count("layers"), 1);
    assert!(matches!(
        env.store.remove("x:1"),
        Err(ImageError::NotFound { .. })
    ));
}

#[test]
fn whiteouts_in_upper_layers_hide_files() {
    let env = Env::new();
    let base = layer(&[
        ("etc/passwd", b"root:x:0:0::/:/bin/sh\n"),
        ("etc/group", b"root:x:0:\n"),
    ]);
    let top = TarBuilder::new().file("etc/.wh.group", b"").finish();
    let image = fixture("x", &[base, top], false);
    let dir = env.tmp.path().join("layout");
    write_dir(
        &dir,
        &oci_files(&[&image], vec![described(&image, json!({}))]),
    );
    let loaded = env.store.load(&dir).unwrap().remove(0);
    assert!(env
        .store
        .read_file(&loaded, "/etc/passwd")
        .unwrap()
        .is_some());
    assert_eq!(env.store.read_file(&loaded, "/etc/group").unwrap(), None);
    assert_eq!(
        resolve_user(&env.store, &loaded, "").unwrap(),
        (0, 0, vec![0])
    );
    assert!(matches!(
        resolve_user(&env.store, &loaded, "nobody"),
        Err(ImageError::UnknownUser { .. })
    ));
}

#[test]
fn import_plain_gzip_and_zstd_tarballs() {
    let env = Env::new();
    let tar = layer(&[("bin/app", b"binary")]);
    let config = ImageConfig {
        entrypoint: Some(vec!["/bin/app".into()]),
        working_dir: Some("/srv".into()),
        ..ImageConfig::default()
    };
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (bytes, name) in [(tar.clone(), "plain"), (gzip(&tar), "gz"), (zst, "zst")] {
        let image = env
            .store
            .import(&mut &bytes[..], name, config.clone())
            .unwrap();
        assert_eq!(names(&image), [format!("docker.io/library/{name}:latest")]);
        assert_eq!(image.config, config);
        assert_eq!(image.layers, [Digest::of(&tar).to_string()]);
        assert_eq!(
            env.store.read_file(&image, "/bin/app").unwrap().unwrap(),
            b"binary"
        );
        assert_eq!(env.store.get(name).unwrap(), image);
    }
    // Same layer every time: unpacked once.
    assert_eq!(env.count("layers"), 1);
    // Importing under an existing name moves the name.
    let other = layer(&[("other", b"o")]);
    let moved = env
        .store
        .import(&mut &other[..], "plain", ImageConfig::default())
        .unwrap();
    assert_eq!(env.store.get("plain").unwrap().id, moved.id);
    assert!(env.store.list().unwrap().iter().any(|i| i.names.is_empty()));
    assert!(matches!(
        env.store
            .import(&mut &tar[..], "Bad/Name", ImageConfig::default()),
        Err(ImageError::Reference(_))
    ));
}

#[test]
fn get_errors() {
    let env = Env::new();
    assert!(
        matches!(env.store.get("busybox"), Err(ImageError::NotFound { reference }) if reference == "busybox")
    );
    assert!(matches!(
        env.store.get("abcdef123456"),
        Err(ImageError::NotFound { .. })
    ));
    assert!(matches!(
        env.store.get("Busybox"),
        Err(ImageError::Reference(_))
    ));
    assert!(matches!(
        env.store.remove("busybox"),
        Err(ImageError::NotFound { .. })
    ));
}

#[test]
fn digest_reference_finds_image_in_same_repository() {
    let env = Env::new();
    let image = fixture("x", &[layer(&[("x", b"x")])], false);
    let descriptor = described(
        &image,
        json!({"io.containerd.image.name": "ghcr.io/org/app:1"}),
    );
    let dir = env.tmp.path().join("layout");
    write_dir(&dir, &oci_files(&[&image], vec![descriptor]));
    env.store.load(&dir).unwrap();
    let by_digest = format!("ghcr.io/org/app@{}", image.manifest_digest);
    assert_eq!(
        env.store.get(&by_digest).unwrap().id,
        image.config_digest.to_string()
    );
    let elsewhere = format!("ghcr.io/org/other@{}", image.manifest_digest);
    assert!(matches!(
        env.store.get(&elsewhere),
        Err(ImageError::NotFound { .. })
    ));
}

#[test]
fn concurrent_loads_from_clones() {
    let env = Env::new();
    let paths: Vec<PathBuf> = (0..4)
        .map(|i| {
            let image = fixture(
                &format!("c{i}"),
                &[layer(&[("common", b"c")]), layer(&[("own", &[i])])],
                true,
            );
            let name = format!("docker.io/library/c{i}:latest");
            let descriptor = described(&image, json!({"io.containerd.image.name": name}));
            env.write(
                &format!("c{i}.tar"),
                &tar_of(&oci_files(&[&image], vec![descriptor])),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        for path in &paths {
            let store = env.store.clone();
            scope.spawn(move || store.load(path).unwrap());
        }
    });
    assert_eq!(env.store.list().unwrap().len(), 4);
    assert_eq!(env.count("layers"), 5);
    // A second handle on the same root (as another process would) sees the same images.
    let again = ImageStore::open(env.store.root()).unwrap();
    assert_eq!(again.list().unwrap().len(), 4);
}

#[test]
fn hostile_layer_fails_the_load_and_writes_nothing_outside() {
    let env = Env::new();
    let outside = env.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let hostile = TarBuilder::new()
        .link(tar::EntryType::Symlink, "escape", outside.to_str().unwrap())
        .file("escape/owned", b"x")
        .finish();
    let image = fixture("x", &[hostile], false);
    let dir = env.tmp.path().join("layout");
    write_dir(
        &dir,
        &oci_files(&[&image], vec![described(&image, json!({}))]),
    );
    let err = env.store.load(&dir).unwrap_err();
    assert!(matches!(err, ImageError::Unpack { .. }), "{err}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(env.count("layers"), 0);
    assert_eq!(env.count("tmp"), 0);
    assert!(env.store.list().unwrap().is_empty());
}

#[test]
fn store_is_shareable_across_threads() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<ImageStore>();
}
