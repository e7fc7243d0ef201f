//! The registry generation (`generation_cache`), read on the calling thread
//! from a SQLite registry file. Through the pool, the read is a round trip to
//! the connection's sqlx worker thread and back, two thread switches on every
//! request for one row on a page that is always in SQLite's cache; here it is
//! a prepared statement on a connection of this module's own, a few
//! microseconds, which never waits: the connection's busy timeout is zero
//! and, in WAL mode, a reader takes no lock a writer holds. Should the read
//! fail for any reason, the caller reads through the pool as before.
//!
//! Connections are kept for reuse, at most [`MAX_IDLE`]; each holds no
//! transaction between reads, so it holds up no checkpoint.

use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Mutex;

/// Idle connections kept (about one per thread that polls at the same time).
const MAX_IDLE: usize = 8;

const READ: &str = "SELECT n FROM registry_generation WHERE id = 1";

/// Reads the generation of one registry file.
#[derive(Debug)]
pub(crate) struct GenerationReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl GenerationReader {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The current generation, or `None` if it cannot be read here and now.
    pub(crate) fn read(&self) -> Option<i64> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open(&self.path).ok()?,
        };
        let generation = conn
            .prepare_cached(READ)
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)));
        match generation {
            Ok(n) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                Some(n)
            }
            Err(e) => {
                tracing::debug!(error = %e, "generation not read on this thread; reading through the pool");
                None
            }
        }
    }
}

fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::ZERO)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_another_connection_committed_and_none_without_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        let reader = GenerationReader::new(path);
        assert_eq!(reader.read(), None, "no table yet");
        writer
            .execute_batch(
                "CREATE TABLE registry_generation (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
                 INSERT INTO registry_generation VALUES (1, 4);",
            )
            .unwrap();
        assert_eq!(reader.read(), Some(4));
        writer
            .execute("UPDATE registry_generation SET n = n + 1", [])
            .unwrap();
        assert_eq!(reader.read(), Some(5), "a kept connection sees the commit");
        // A writer's open transaction neither blocks the read nor shows in it.
        writer
            .execute_batch("BEGIN IMMEDIATE; UPDATE registry_generation SET n = 9;")
            .unwrap();
        assert_eq!(reader.read(), Some(5));
        writer.execute_batch("COMMIT;").unwrap();
        assert_eq!(reader.read(), Some(9));
        assert_eq!(reader.idle.lock().unwrap().len(), 1);
    }
}
