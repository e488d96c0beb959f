//! The `Store` handle: one write connection (one SQLite transaction and one resourceVersion per
//! change), a pool of read connections, and the watch history every commit is published to.
//! The operations live in `raw` (runtime-keyed JSON objects) and `typed` (k8s-openapi types).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::db;
use crate::history::History;
use crate::readers::Readers;
use crate::writer::Writer;
use crate::StoreError;

mod raw;
mod typed;

/// Tuning of a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Changes a live watcher may fall behind before it gets `Expired`.
    pub watch_capacity: usize,
    /// Changes kept for watches that start at an older revision (the watch cache). 4096 by
    /// default: the objects are shared with the broadcast buffer, so this costs little more.
    pub watch_history: usize,
    /// Read connections of a file database, so reads never wait for a write (0: reads share the
    /// write connection; an in-memory database always does).
    pub read_connections: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            watch_capacity: 4096,
            watch_history: 4096,
            read_connections: 4,
        }
    }
}

/// Handle to the object database; clones share the connections and the watch history.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

struct Inner {
    conn: Mutex<Connection>,
    readers: Readers,
    history: History,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(Some(path), StoreOptions::default())
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::open_with(None, StoreOptions::default())
    }

    /// Opens the database at `path` (in memory when `None`) with explicit options.
    pub fn open_with(path: Option<&Path>, options: StoreOptions) -> Result<Store, StoreError> {
        let conn = db::open(path)?;
        let revision = db::revision(&conn)?;
        let readers = Readers::open(path, options.read_connections)?;
        let history = History::new(options.watch_history, options.watch_capacity, revision);
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                readers,
                history,
            }),
        })
    }

    /// The latest committed resourceVersion.
    pub fn revision(&self) -> Result<u64, StoreError> {
        self.read(db::revision)
    }

    pub(crate) fn history(&self) -> &History {
        &self.inner.history
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a write dropped its transaction, which rolled it back.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one read transaction, on a read connection when there are any.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.inner.readers.take() {
            Some(mut reader) => {
                let tx = reader.transaction()?;
                f(&tx)
            }
            // The write connection only ever sees committed data between writes.
            None => f(&self.lock()),
        }
    }

    /// Runs `f` in one immediate transaction; on commit, publishes its changes in order.
    pub(crate) fn write<T, E: From<StoreError>>(
        &self,
        dry_run: bool,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.lock();
        let mut writer = Writer::begin(&mut conn, dry_run)?;
        let result = f(&mut writer)?;
        let changes = writer.finish()?;
        // Still under the write lock, so the history receives changes in revision order.
        self.inner.history.append(changes);
        Ok(result)
    }
}

#[cfg(test)]
mod raw_tests;
#[cfg(test)]
mod tests;
