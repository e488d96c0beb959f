//! Compiles the vendored protos into encoded `FileDescriptorSet`s: the Kubernetes
//! `generated.proto` files (protos/k8s.io, see protos/update.py) that `src/protobuf/` reads and
//! writes objects with, and gnostic's `OpenAPIv2.proto` (protos/gnostic) that `src/openapi/`
//! encodes `/openapi/v2` with.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=protos");
    let root = Path::new("protos");
    let mut files = Vec::new();
    collect(&root.join("k8s.io"), root, &mut files);
    files.sort();
    compile(root, &files, "k8s.binpb");
    let gnostic = root.join("gnostic");
    compile(
        &gnostic,
        &[PathBuf::from("openapiv2/OpenAPIv2.proto")],
        "openapiv2.binpb",
    );
}

/// Compiles `files` (relative to the include root `root`) with their imports into `OUT_DIR/out`.
fn compile(root: &Path, files: &[PathBuf], out: &str) {
    let mut compiler = protox::Compiler::new([root]).expect("the include root is readable");
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_files(files)
        .unwrap_or_else(|err| panic!("compiling the protos under {}: {err}", root.display()));
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(dir.join(out), compiler.encode_file_descriptor_set())
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
