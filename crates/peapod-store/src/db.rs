//! SQLite schema and row access: one table of objects as JSON plus the global revision counter.

use std::fs::{OpenOptions, Permissions};
use std::ops::ControlFlow;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::key::{ObjectKey, ResourceKey};
use crate::StoreError;

/// Kind column of core/v1 Events, which get the extra index columns.
pub(crate) const EVENT_KIND: &str = "Event";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    rv INTEGER NOT NULL,
    json TEXT NOT NULL,
    involved_uid TEXT,
    event_time INTEGER,
    PRIMARY KEY (kind, namespace, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_involved_uid ON objects (involved_uid)
    WHERE involved_uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS objects_event_time ON objects (event_time)
    WHERE event_time IS NOT NULL;
CREATE TABLE IF NOT EXISTS revision (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO revision (id, value) VALUES (0, 0);
";

/// One stored object.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub key: ObjectKey,
    pub rv: u64,
    pub value: Value,
}

/// The mode of the database and its `-wal` and `-shm` files: they hold every object, Secrets
/// and env values included, so only their owner reads them, as etcd keeps its data 0600.
pub const DATABASE_MODE: u32 = 0o600;

/// Opens (creating if needed) the database in WAL mode with every commit synced.
pub(crate) fn open(path: Option<&Path>) -> Result<Connection, StoreError> {
    if let Some(path) = path {
        restrict_files(path)?;
    }
    let shown = path.map_or_else(|| PathBuf::from(":memory:"), Path::to_path_buf);
    let setup = || -> rusqlite::Result<Connection> {
        let conn = match path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        })?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(conn)
    };
    setup().map_err(|source| StoreError::Open {
        path: shown,
        source,
    })
}

/// Opens a query-only connection to the database at `path`, which the writer has set up.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let setup = || -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    };
    setup().map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates the database file owner-only before SQLite does (SQLite gives `-wal` and `-shm` the
/// database's mode), and tightens the files of a database an older version left readable.
fn restrict_files(path: &Path) -> Result<(), StoreError> {
    let failed = |file: &Path, source| StoreError::Permissions {
        path: file.to_path_buf(),
        source,
    };
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(DATABASE_MODE)
        .open(path)
        .map_err(|err| failed(path, err))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        if let Err(err) = std::fs::set_permissions(&file, Permissions::from_mode(DATABASE_MODE)) {
            if err.kind() != std::io::ErrorKind::NotFound {
                return Err(failed(&file, err));
            }
        }
    }
    Ok(())
}

pub(crate) fn revision(conn: &Connection) -> Result<u64, StoreError> {
    let value: i64 = conn.query_row("SELECT value FROM revision WHERE id = 0", [], |row| {
        row.get(0)
    })?;
    Ok(value as u64)
}

/// Takes the next global revision; only meaningful inside a write transaction.
pub(crate) fn next_revision(conn: &Connection) -> Result<u64, StoreError> {
    let value: i64 = conn.query_row(
        "UPDATE revision SET value = value + 1 WHERE id = 0 RETURNING value",
        [],
        |row| row.get(0),
    )?;
    Ok(value as u64)
}

pub(crate) fn load(conn: &Connection, key: &ObjectKey) -> Result<Option<Row>, StoreError> {
    let found: Option<(i64, String)> = conn
        .query_row(
            "SELECT rv, json FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
            params![key.ty.storage_kind(), key.namespace, key.name],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    found
        .map(|(rv, json)| decode_row(key.clone(), rv, &json))
        .transpose()
}

/// All objects of a type, optionally in one namespace, sorted by namespace then name.
pub(crate) fn load_all(
    conn: &Connection,
    ty: &ResourceKey,
    namespace: Option<&str>,
) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::new();
    scan(conn, ty, namespace, None, |row| {
        rows.push(row);
        ControlFlow::Continue(())
    })?;
    Ok(rows)
}

/// Visits the objects of a type in namespace-then-name order, optionally in one namespace and
/// only those after `after` (namespace, name), until `visit` breaks.
pub(crate) fn scan(
    conn: &Connection,
    ty: &ResourceKey,
    namespace: Option<&str>,
    after: Option<(&str, &str)>,
    mut visit: impl FnMut(Row) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT namespace, name, rv, json FROM objects
         WHERE kind = ?1 AND (?2 IS NULL OR namespace = ?2)
           AND (?3 IS NULL OR (namespace, name) > (?3, ?4))
         ORDER BY namespace, name",
    )?;
    let (after_namespace, after_name) = after.unzip();
    let rows = stmt.query_map(
        params![ty.storage_kind(), namespace, after_namespace, after_name],
        raw_row,
    )?;
    for row in rows {
        let (namespace, name, rv, json) = row?;
        let key = ObjectKey {
            ty: ty.clone(),
            namespace,
            name,
        };
        if visit(decode_row(key, rv, &json)?).is_break() {
            break;
        }
    }
    Ok(())
}

/// How many objects of a type (optionally in one namespace) come after `after`.
pub(crate) fn count_after(
    conn: &Connection,
    ty: &ResourceKey,
    namespace: Option<&str>,
    after: (&str, &str),
) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM objects
             WHERE kind = ?1 AND (?2 IS NULL OR namespace = ?2) AND (namespace, name) > (?3, ?4)",
        )?
        .query_row(
            params![ty.storage_kind(), namespace, after.0, after.1],
            |row| row.get(0),
        )?;
    Ok(count as u64)
}

/// Events, optionally in one namespace and/or about one involved object uid.
pub(crate) fn load_events(
    conn: &Connection,
    ty: &ResourceKey,
    namespace: Option<&str>,
    involved_uid: Option<&str>,
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT namespace, name, rv, json FROM objects
         WHERE kind = ?1 AND (?2 IS NULL OR namespace = ?2)
           AND (?3 IS NULL OR involved_uid = ?3)
         ORDER BY namespace, name",
    )?;
    let rows = stmt.query_map(params![ty.storage_kind(), namespace, involved_uid], raw_row)?;
    collect_rows(ty, rows)
}

/// Events whose last occurrence is before `second` (unix seconds).
pub(crate) fn events_before(
    conn: &Connection,
    ty: &ResourceKey,
    second: i64,
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT namespace, name, rv, json FROM objects
         WHERE kind = ?1 AND event_time < ?2
         ORDER BY namespace, name",
    )?;
    let rows = stmt.query_map(params![ty.storage_kind(), second], raw_row)?;
    collect_rows(ty, rows)
}

/// Inserts or replaces the object at `key` with revision `rv`.
pub(crate) fn put(
    conn: &Connection,
    key: &ObjectKey,
    rv: u64,
    value: &Value,
) -> Result<(), StoreError> {
    let (involved_uid, event_time) = event_columns(key.ty.storage_kind(), value);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO objects (kind, namespace, name, rv, json, involved_uid, event_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        key.ty.storage_kind(),
        key.namespace,
        key.name,
        rv as i64,
        value.to_string(),
        involved_uid,
        event_time
    ])?;
    Ok(())
}

pub(crate) fn remove(conn: &Connection, key: &ObjectKey) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3")?
        .execute(params![key.ty.storage_kind(), key.namespace, key.name])?;
    Ok(())
}

type RawRow = (String, String, i64, String);

fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn collect_rows(
    ty: &ResourceKey,
    rows: impl Iterator<Item = rusqlite::Result<RawRow>>,
) -> Result<Vec<Row>, StoreError> {
    rows.map(|row| {
        let (namespace, name, rv, json) = row?;
        let key = ObjectKey {
            ty: ty.clone(),
            namespace,
            name,
        };
        decode_row(key, rv, &json)
    })
    .collect()
}

fn decode_row(key: ObjectKey, rv: i64, json: &str) -> Result<Row, StoreError> {
    let value = serde_json::from_str(json).map_err(|source| key.decode_error(source))?;
    Ok(Row {
        key,
        rv: rv as u64,
        value,
    })
}

/// Index columns of an Event: involved object uid and last-seen time in unix seconds.
fn event_columns(kind: &str, value: &Value) -> (Option<String>, Option<i64>) {
    if kind != EVENT_KIND {
        return (None, None);
    }
    let uid = value
        .pointer("/involvedObject/uid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let time = [
        "/lastTimestamp",
        "/eventTime",
        "/firstTimestamp",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .filter_map(|pointer| value.pointer(pointer)?.as_str())
    .find_map(|text| text.parse::<jiff::Timestamp>().ok())
    .map(|at| at.as_second());
    (uid, time)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;

    fn pod_key(namespace: &str, name: &str) -> ObjectKey {
        ResourceKey::of::<Pod>().object(Some(namespace), name)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn database_files_are_private_to_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peapod.db");
        let files = ["peapod.db", "peapod.db-wal", "peapod.db-shm"].map(|n| dir.path().join(n));
        let conn = open(Some(&path)).unwrap();
        put(&conn, &pod_key("default", "web"), 1, &json!({})).unwrap();
        for file in &files {
            assert_eq!(mode(file), DATABASE_MODE, "{}", file.display());
        }
        // A database an older version left readable to everyone is tightened when opened.
        for file in &files {
            std::fs::set_permissions(file, Permissions::from_mode(0o644)).unwrap();
        }
        let _again = open(Some(&path)).unwrap();
        for file in &files {
            assert_eq!(mode(file), DATABASE_MODE, "{}", file.display());
        }
    }

    #[test]
    fn revisions_start_at_zero_and_increase() {
        let conn = open(None).unwrap();
        assert_eq!(revision(&conn).unwrap(), 0);
        assert_eq!(next_revision(&conn).unwrap(), 1);
        assert_eq!(next_revision(&conn).unwrap(), 2);
        assert_eq!(revision(&conn).unwrap(), 2);
    }

    #[test]
    fn put_load_remove_round_trip() {
        let conn = open(None).unwrap();
        let key = pod_key("default", "web");
        put(&conn, &key, 3, &json!({"metadata": {"name": "web"}})).unwrap();
        let row = load(&conn, &key).unwrap().unwrap();
        assert_eq!((row.rv, &row.value["metadata"]["name"]), (3, &json!("web")));
        remove(&conn, &key).unwrap();
        assert!(load(&conn, &key).unwrap().is_none());
    }

    #[test]
    fn load_all_sorts_and_filters() {
        let conn = open(None).unwrap();
        for (namespace, name) in [("b", "x"), ("a", "z"), ("a", "y")] {
            put(&conn, &pod_key(namespace, name), 1, &json!({})).unwrap();
        }
        let ty = ResourceKey::of::<Pod>();
        let names: Vec<_> = load_all(&conn, &ty, None)
            .unwrap()
            .into_iter()
            .map(|row| format!("{}/{}", row.key.namespace, row.key.name))
            .collect();
        assert_eq!(names, ["a/y", "a/z", "b/x"]);
        assert_eq!(load_all(&conn, &ty, Some("b")).unwrap().len(), 1);
    }

    #[test]
    fn scan_starts_after_a_key_and_stops_on_break() {
        let conn = open(None).unwrap();
        for (namespace, name) in [("a", "x"), ("a", "y"), ("b", "a"), ("b", "b")] {
            put(&conn, &pod_key(namespace, name), 1, &json!({})).unwrap();
        }
        let ty = ResourceKey::of::<Pod>();
        let mut seen = Vec::new();
        scan(&conn, &ty, None, Some(("a", "x")), |row| {
            seen.push(format!("{}/{}", row.key.namespace, row.key.name));
            if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, ["a/y", "b/a"]);
        assert_eq!(count_after(&conn, &ty, None, ("a", "y")).unwrap(), 2);
        assert_eq!(count_after(&conn, &ty, Some("a"), ("a", "x")).unwrap(), 1);
    }

    #[test]
    fn event_columns_prefer_last_timestamp() {
        let event = json!({
            "involvedObject": {"uid": "u1"},
            "firstTimestamp": "1970-01-01T00:00:10Z",
            "lastTimestamp": "1970-01-01T00:01:00Z",
        });
        assert_eq!(
            event_columns(EVENT_KIND, &event),
            (Some("u1".to_owned()), Some(60))
        );
        assert_eq!(event_columns("Pod", &event), (None, None));
    }

    #[test]
    fn corrupt_json_names_the_object() {
        let conn = open(None).unwrap();
        conn.execute(
            "INSERT INTO objects (kind, namespace, name, rv, json) VALUES ('Pod', 'ns', 'bad', 1, '{')",
            [],
        )
        .unwrap();
        let err = load(&conn, &pod_key("ns", "bad")).unwrap_err();
        assert!(err.to_string().contains("pods \"ns/bad\""), "{err}");
    }
}
