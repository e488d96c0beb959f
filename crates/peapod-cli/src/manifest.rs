//! Reads `-f` sources (files, directories, stdin), decodes every document up front and
//! resolves each object's type (through discovery: any kind the agent serves), namespace and
//! name; any failure means nothing is sent. Pods are also typed by peapod-api here.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use peapod_api::decode::{decode_documents, DecodeError, Document, DuplicateField};
use peapod_api::object::{parse_object, ObjectError};
use serde_json::Value;

use crate::resource::{ApiResource, Discovery};

/// Extensions kubectl reads from a directory given to `-f`.
const MANIFEST_EXTENSIONS: [&str; 3] = ["json", "yaml", "yml"];

/// One object from a manifest, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestObject {
    /// The file it came from (`STDIN` for `-`).
    pub source: String,
    pub document: usize,
    /// Its type as the agent serves it.
    pub resource: ApiResource,
    /// "" for a cluster-scoped object.
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

/// Where manifests come from and how their objects are placed.
pub struct Sources<'a> {
    pub verb: &'static str,
    pub filenames: &'a [String],
    pub namespace_flag: Option<&'a str>,
    pub discovery: &'a Discovery,
}

/// Every object in `filenames` (in order; a directory's files sorted by name), with the
/// namespace from the object, else `namespace_flag`, else "default" (none when the kind is
/// cluster-scoped).
pub fn load(sources: &Sources, stdin: &mut dyn Read) -> Result<Vec<ManifestObject>, ManifestError> {
    let verb = sources.verb;
    let mut objects = Vec::new();
    for filename in sources.filenames {
        for (source_name, bytes) in read_source(filename, stdin)? {
            objects.extend(decode(sources, &source_name, &bytes)?);
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
    sources: &Sources,
    source_name: &str,
    bytes: &[u8],
) -> Result<Vec<ManifestObject>, ManifestError> {
    let documents = decode_documents(bytes).map_err(|error| ManifestError::Decode {
        source_name: source_name.to_string(),
        error,
    })?;
    let mut objects = Vec::with_capacity(documents.len());
    for doc in documents {
        let field = |key: &str| metadata(&doc.value, key);
        let name = field("name").unwrap_or_default();
        let shown = field("namespace").or(sources.namespace_flag.map(str::to_string));
        let shown = shown.unwrap_or_else(|| "default".to_string());
        let resource = resource_of(&doc, sources.discovery)
            .map_err(|error| object_error(source_name, &name, &shown, error))?;
        let namespace = if resource.namespaced {
            namespace(&doc.value, sources.namespace_flag)?
        } else {
            String::new()
        };
        if name.is_empty() {
            return Err(ManifestError::MissingName {
                source_name: source_name.to_string(),
                document: doc.index,
            });
        }
        objects.push(ManifestObject {
            source: source_name.to_string(),
            document: doc.index,
            resource,
            namespace,
            name,
            value: doc.value,
            duplicates: doc.duplicates,
        });
    }
    Ok(objects)
}

/// The served type of a document; a Pod is typed by peapod-api on the way (its decoding
/// errors name the field).
fn resource_of(doc: &Document, discovery: &Discovery) -> Result<ApiResource, ObjectError> {
    let unknown = match parse_object(doc) {
        Ok(_) => None,
        Err(error @ ObjectError::UnknownKind { .. }) => Some(error),
        Err(error) => return Err(error),
    };
    let field = |key: &str| doc.value[key].as_str().unwrap_or_default().to_string();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    match discovery.by_kind(&api_version, &kind) {
        Some(resource) => Ok(resource.clone()),
        None => Err(unknown.unwrap_or(ObjectError::UnknownKind {
            document: doc.index,
            kind,
            api_version,
        })),
    }
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

/// A non-empty metadata string.
fn metadata(value: &Value, key: &str) -> Option<String> {
    value
        .pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A namespaced object's namespace: its own, which must match the flag, else the flag, else
/// "default".
fn namespace(value: &Value, namespace_flag: Option<&str>) -> Result<String, ManifestError> {
    match (metadata(value, "namespace"), namespace_flag) {
        (Some(object), Some(flag)) if object != flag => Err(ManifestError::NamespaceMismatch {
            object,
            flag: flag.to_string(),
        }),
        (Some(object), _) => Ok(object),
        (None, Some(flag)) => Ok(flag.to_string()),
        (None, None) => Ok("default".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD_A: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: busybox}]\n";
    const POD_B: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: team}\nspec:\n  containers: [{name: c, image: busybox}]\n";

    fn load_files(
        files: &[String],
        ns: Option<&str>,
        stdin: &mut dyn Read,
    ) -> Result<Vec<ManifestObject>, ManifestError> {
        let discovery = crate::resource::tests::discovery();
        let sources = Sources {
            verb: "apply",
            filenames: files,
            namespace_flag: ns,
            discovery: &discovery,
        };
        load(&sources, stdin)
    }

    fn load_str(text: &str, ns: Option<&str>) -> Result<Vec<ManifestObject>, ManifestError> {
        load_files(&["-".to_string()], ns, &mut text.as_bytes())
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
    fn any_served_kind_cluster_scoped_ones_without_a_namespace() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team, namespace: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n";
        let objects = load_str(text, Some("dev")).unwrap();
        let ids: Vec<_> = objects
            .iter()
            .map(|o| {
                (
                    o.resource.kind.as_str(),
                    o.namespace.as_str(),
                    o.name.as_str(),
                )
            })
            .collect();
        assert_eq!(ids, [("Namespace", "", "team"), ("ConfigMap", "dev", "c")]);
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
        let e = load_files(&[bad.display().to_string()], None, &mut std::io::empty()).unwrap_err();
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
        let files = [dir.path().display().to_string()];
        let objects = load_files(&files, None, &mut std::io::empty()).unwrap();
        let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, vec!["j", "b"]);
    }

    #[test]
    fn missing_file_and_empty_input() {
        let e =
            load_files(&["/nonexistent/x.yaml".into()], None, &mut std::io::empty()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the path \"/nonexistent/x.yaml\" does not exist"
        );
        let e = load_str("# nothing\n", None).unwrap_err();
        assert_eq!(e.to_string(), "no objects passed to apply");
    }
}
