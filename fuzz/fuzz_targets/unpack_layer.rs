//! Arbitrary bytes imported as a layer tarball: whether the import succeeds or fails, nothing
//! may appear outside the store, and a failed import leaves the store as it was.

#![no_main]

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use peapod_image::{ImageConfig, ImageStore};

/// The store sits this many directories below the temp dir, each checked to hold only the
/// next one, so a `../` escape of up to this depth (plus the store's own two) shows up.
const NESTING: [&str; 4] = ["a", "b", "c", "d"];

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut root = tmp.path().to_path_buf();
    for dir in NESTING {
        root.push(dir);
    }
    let store = ImageStore::open(root.join("store")).expect("opening the store");
    let result = store.import(&mut &data[..], "fuzz:1", ImageConfig::default());

    let mut dir = tmp.path().to_path_buf();
    for child in NESTING.iter().chain(["store"].iter()) {
        assert_eq!(
            names(&dir),
            [*child],
            "something was written in {}",
            dir.display()
        );
        dir.push(child);
    }
    let mut expected = vec!["blobs", "layers", "lock", "tmp"];
    if result.is_ok() {
        expected.insert(1, "index.json");
    }
    assert_eq!(
        names(store.root()),
        expected,
        "unexpected entry in the store root"
    );
    assert_eq!(
        names(&store.root().join("tmp")),
        Vec::<String>::new(),
        "staging left over"
    );
    let layers = names(&store.root().join("layers"));
    match result {
        Ok(image) => {
            assert_eq!(store.list().expect("listing").len(), 1);
            assert_eq!(store.layer_dirs(&image).expect("layer dirs").len(), 1);
            assert_eq!(layers.len(), 1);
        }
        Err(_) => {
            assert!(store.list().expect("listing").is_empty());
            assert!(layers.is_empty(), "a failed import left layers {layers:?}");
            assert!(names(&store.root().join("blobs/sha256")).is_empty());
        }
    }
});

/// Sorted entry names of `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
