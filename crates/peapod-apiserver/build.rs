//! Compiles the vendored Kubernetes `generated.proto` files (protos/, see protos/update.py) into
//! one encoded `FileDescriptorSet` that `src/protobuf.rs` decodes request bodies with.

use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new("protos");
    println!("cargo:rerun-if-changed=protos");
    let mut files = Vec::new();
    collect(&root.join("k8s.io"), root, &mut files);
    files.sort();
    let mut compiler = protox::Compiler::new([root]).expect("protos/ is readable");
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_files(&files)
        .unwrap_or_else(|err| panic!("compiling the Kubernetes protos: {err}"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("k8s.binpb"), compiler.encode_file_descriptor_set())
        .expect("OUT_DIR is writable");
}

/// The `.proto` files under `dir`, as paths relative to the include root `root`.
fn collect(dir: &Path, root: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            collect(&path, root, files);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path.strip_prefix(root).expect("under root").to_owned());
        }
    }
}
