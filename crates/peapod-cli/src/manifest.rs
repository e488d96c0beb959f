//! Reads `-f` sources (files, directories, stdin), decodes every document up front and
//! resolves each object's namespace and name; any failure means nothing is sent.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use peapod_api::decode::{decode_documents, DecodeError, Document, DuplicateField};
use peapod_api::object::{parse_object, ObjectError};
use serde_json::Value;

/// Extensions kubectl reads from a directory given to `-f`.
const MANIFEST_EXTENSIONS: [&str; 3] = ["json", "yaml", "yml"];

/// One object from a manifest, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestObject {
    /// The file it came from (`STDIN` for `-`).
    pub source: String,
    pub document: usize,
    pub namespace: String,
    pub name: String,
    /// The document as written, so the agent sees (and warns about) every field.
    pub value: Value,
    /// Keys the document gives twice; `value` holds the last, so only the CLI can tell.
    pub duplicates: Vec<DuplicateField>,
}

impl ManifestObject {
    /// The object as a decoded document again.
    pub fn document(&self) -> Document {
        Document {
            index: self.document,
            value: self.value.clone(),
            duplicates: self.duplicates.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the path \"{}\" does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("reading \"{}\": {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("error parsing {source_name}: {error}")]
    Decode {
        source_name: String,
        error: DecodeError,
    },
    #[error("unable to decode \"{source_name}\" (document {}): {error}", error.document())]
    Object {
        source_name: String,
        error: Box<ObjectError>,
    },
    #[error("resource mapping not found for name: \"{name}\" namespace: \"{namespace}\" from \"{source_name}\" (document {}): {error}", error.document())]
    UnknownKind {
        source_name: String,
        name: String,
        namespace: String,
        error: Box<ObjectError>,
    },
    #[error("\"{source_name}\" (document {document}): resource name may not be empty")]
    MissingName {
        source_name: String,
        document: usize,
    },
    #[error("the namespace from the provided object \"{object}\" does not match the namespace \"{flag}\". You must pass '--namespace={object}' to perform this operation.")]
    NamespaceMismatch { object: String, flag: String },
    #[error("no objects passed to {verb}")]
    Empty { verb: &'static str },
}

/// Every object in `filenames` (in order; a directory's files sorted by name), with the
/// namespace from the object, else `namespace_flag`, else "default".
pub fn load(
    verb: &'static str,
    filenames: &[String],
    namespace_flag: Option<&str>,
    stdin: &mut dyn Read,
) -> Result<Vec<ManifestObject>, ManifestError> {
    let mut objects = Vec::new();
    for filename in filenames {
        for (source_name, bytes) in read_source(filename, stdin)? {
            objects.extend(decode(&source_name, &bytes, namespace_flag)?);
        }
    }
    if objects.is_empty() {
        return Err(ManifestError::Empty { verb });
    }
    Ok(objects)
}

/// The named file's contents, a directory's manifest files, or stdin for `-`.
fn read_source(
    filename: &str,
    stdin: &mut dyn Read,
) -> Result<Vec<(String, Vec<u8>)>, ManifestError> {
    if filename == "-" {
        let mut bytes = Vec::new();
        stdin
            .read_to_end(&mut bytes)
            .map_err(|source| ManifestError::Read {
                path: PathBuf::from("-"),
                source,
            })?;
        return Ok(vec![("STDIN".to_string(), bytes)]);
    }
    let path = Path::new(filename);
    if path.is_dir() {
        return manifest_files(path)?
            .into_iter()
            .map(|file| Ok((file.display().to_string(), read_file(&file)?)))
            .collect();
    }
    Ok(vec![(filename.to_string(), read_file(path)?)])
}

fn read_file(path: &Path) -> Result<Vec<u8>, ManifestError> {
    fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ManifestError::Missing {
            path: path.to_path_buf(),
        },
        _ => ManifestError::Read {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let read_error = |source| ManifestError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e));
        if wanted && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn decode(
    source_name: &str,
    bytes: &[u8],
    namespace_flag: Option<&str>,
) -> Result<Vec<ManifestObject>, ManifestError> {
    let documents = decode_documents(bytes).map_err(|error| ManifestError::Decode {
        source_name: source_name.to_string(),
        error,
    })?;
    let mut objects = Vec::with_capacity(documents.len());
    for doc in documents {
        let (name, namespace) = identity(&doc.value, namespace_flag)?;
        parse_object(&doc).map_err(|error| object_error(source_name, &name, &namespace, error))?;
        if name.is_empty() {
            return Err(ManifestError::MissingName {
                source_name: source_name.to_string(),
                document: doc.index,
            });
        }
        objects.push(ManifestObject {
            source: source_name.to_string(),
            document: doc.index,
            namespace,
            name,
            value: doc.value,
            duplicates: doc.duplicates,
        });
    }
    Ok(objects)
}

fn object_error(source: &str, name: &str, namespace: &str, error: ObjectError) -> ManifestError {
    let source_name = source.to_string();
    match error {
        ObjectError::UnknownKind { .. } => ManifestError::UnknownKind {
            source_name,
            name: name.to_string(),
            namespace: namespace.to_string(),
            error: Box::new(error),
        },
        error => ManifestError::Object {
            source_name,
            error: Box::new(error),
        },
    }
}

/// metadata.name and the resolved namespace.
fn identity(
    value: &Value,
    namespace_flag: Option<&str>,
) -> Result<(String, String), ManifestError> {
    let field = |key: &str| {
        value
            .pointer(&format!("/metadata/{key}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let namespace = match (field("namespace"), namespace_flag) {
        (Some(object), Some(flag)) if object != flag => {
            return Err(ManifestError::NamespaceMismatch {
                object,
                flag: flag.to_string(),
            })
        }
        (Some(object), _) => object,
        (None, Some(flag)) => flag.to_string(),
        (None, None) => "default".to_string(),
    };
    Ok((field("name").unwrap_or_default(), namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD_A: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: busybox}]\n";
    const POD_B: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: team}\nspec:\n  containers: [{name: c, image: busybox}]\n";

    fn load_str(text: &str, ns: Option<&str>) -> Result<Vec<ManifestObject>, ManifestError> {
        load("apply", &["-".to_string()], ns, &mut text.as_bytes())
    }

    #[test]
    fn resolves_namespace_from_object_flag_or_default() {
        let objects = load_str(&format!("{POD_A}---\n{POD_B}"), None).unwrap();
        let ids: Vec<_> = objects
            .iter()
            .map(|o| (o.namespace.as_str(), o.name.as_str()))
            .collect();
        assert_eq!(ids, vec![("default", "a"), ("team", "b")]);
        assert_eq!(objects[0].source, "STDIN");
        assert_eq!(objects[1].document, 1);
        let objects = load_str(POD_A, Some("dev")).unwrap();
        assert_eq!(objects[0].namespace, "dev");
    }

    #[test]
    fn namespace_flag_must_match_the_object() {
        let e = load_str(POD_B, Some("dev")).unwrap_err();
        assert_eq!(e.to_string(), "the namespace from the provided object \"team\" does not match the namespace \"dev\". You must pass '--namespace=team' to perform this operation.");
    }

    #[test]
    fn errors_name_the_file_and_document() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        fs::write(
            &bad,
            format!("{POD_A}---\nkind: Pod\nmetadata:\n  name: [x\n"),
        )
        .unwrap();
        let e = load(
            "apply",
            &[bad.display().to_string()],
            None,
            &mut std::io::empty(),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "error parsing {}: document 1: yaml",
                bad.display()
            )),
            "{text}"
        );

        let e = load_str(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
            None,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "resource mapping not found for name: \"d\" namespace: \"default\" from \"STDIN\" (document 0): no matches for kind \"Deployment\" in version \"apps/v1\"");

        let e = load_str(
            &format!("{POD_A}---\napiVersion: v1\nkind: Pod\nspec: {{containers: []}}\n"),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"STDIN\" (document 1): resource name may not be empty"
        );
    }

    #[test]
    fn directory_reads_manifest_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("2.yml"), POD_B).unwrap();
        fs::write(
            dir.path().join("1.json"),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[]}}"#,
        )
        .unwrap();
        fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        let objects = load(
            "apply",
            &[dir.path().display().to_string()],
            None,
            &mut std::io::empty(),
        )
        .unwrap();
        let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, vec!["j", "b"]);
    }

    #[test]
    fn missing_file_and_empty_input() {
        let e = load(
            "apply",
            &["/nonexistent/x.yaml".into()],
            None,
            &mut std::io::empty(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the path \"/nonexistent/x.yaml\" does not exist"
        );
        let e = load_str("# nothing\n", None).unwrap_err();
        assert_eq!(e.to_string(), "no objects passed to apply");
    }
}
