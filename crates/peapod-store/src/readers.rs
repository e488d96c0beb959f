//! Read connections: a small pool of query-only connections to the database file, so reads run
//! on WAL snapshots instead of waiting for the writer's connection.
//!
//! An in-memory database cannot be opened twice without SQLite's shared cache, whose table locks
//! would make readers fail while a write is open; such a store has no pool and reads on the
//! write connection.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::{db, StoreError};

pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
    size: usize,
}

impl Readers {
    /// Opens `size` read connections to the database at `path` (none for an in-memory one).
    pub fn open(path: Option<&Path>, size: usize) -> Result<Readers, StoreError> {
        let idle = match path {
            Some(path) => (0..size)
                .map(|_| db::open_reader(path))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Readers {
            size: idle.len(),
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }

    /// An idle read connection, waiting for one if all are busy; `None` when there is no pool.
    pub fn take(&self) -> Option<Reader<'_>> {
        if self.size == 0 {
            return None;
        }
        let mut idle = self.lock();
        loop {
            if let Some(conn) = idle.pop() {
                return Some(Reader {
                    conn: Some(conn),
                    pool: self,
                });
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The list of idle connections is consistent whatever a panicking holder was doing.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A read connection on loan; it goes back to the pool when dropped.
pub(crate) struct Reader<'pool> {
    conn: Option<Connection>,
    pool: &'pool Readers,
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.lock().push(conn);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_stores_have_no_pool() {
        let readers = Readers::open(None, 4).unwrap();
        assert!(readers.take().is_none());
    }

    #[test]
    fn connections_go_back_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let _writer = db::open(Some(&path)).unwrap();
        let readers = Readers::open(Some(&path), 2).unwrap();
        let first = readers.take().unwrap();
        let second = readers.take().unwrap();
        assert_eq!(db::revision(&first).unwrap(), 0);
        drop(first);
        let third = readers.take().unwrap();
        assert!(
            third.execute("DELETE FROM objects", []).is_err(),
            "query only"
        );
        drop((second, third));
        assert_eq!(readers.lock().len(), 2);
    }
}
