//! Checkpoints of a SQLite registry file's write-ahead log, off the writer's
//! commit path. By default SQLite copies the log back into the database file
//! inside whichever commit takes the log past 1,000 pages: that commit also
//! writes those 4 MB into the file and fsyncs it, and every send queued behind
//! it waits. Here the writer's connection leaves that to a thread of its own,
//! which runs a passive checkpoint (it never blocks a writer or a reader)
//! [`CHECKPOINT_DELAY`] after a commit, and again while commits go on. In
//! `cargo bench --bench outbound_log` (32 writers) that took the commits' p99
//! from 3.7-3.8 ms to 2.3-2.7 ms and the rate from 20,800-21,600 to
//! 23,100-25,300 records/s; the slowest commit, 5.0-6.5 ms before, was 11.5-13.1
//! ms, as a checkpoint's fsync can now overlap a commit's (BENCHMARKS.md §13).
//! SQLite's own checkpoint stays on the writer's connection as a safety net,
//! at [`SAFETY_NET_PAGES`], should this thread fall behind or be unable to
//! open the file.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

/// How long after a commit the checkpoint runs; commits within it share one.
/// Longer delays made fewer, larger checkpoints: 100 ms gave the same rate
/// but commits of up to 25 ms while a checkpoint's fsync ran.
pub(super) const CHECKPOINT_DELAY: Duration = Duration::from_millis(10);

/// The log's size, in pages, at which the writer's own commit checkpoints
/// (SQLite's `wal_autocheckpoint`; its default is 1,000).
pub(super) const SAFETY_NET_PAGES: u32 = 16_384;

/// Wakes the checkpoint thread; the thread ends when this is dropped.
pub(super) struct Checkpointer {
    wake: SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread for the registry file at `path` (`None`, with a
    /// warning, if no thread can be started: SQLite's own checkpoints remain).
    pub(super) fn start(path: PathBuf) -> Option<Self> {
        let (wake, woken) = sync_channel(1);
        match std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&path, &woken))
        {
            Ok(_) => Some(Self { wake }),
            Err(e) => {
                tracing::warn!(error = %e, "no checkpoint thread for the registry file; commits checkpoint themselves");
                None
            }
        }
    }

    /// Tells the thread the log has grown (never waits).
    pub(super) fn committed(&self) {
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

fn run(path: &Path, woken: &Receiver<()>) {
    let mut conn: Option<Connection> = None;
    while woken.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_DELAY);
        if conn.is_none() {
            match open(path) {
                Ok(opened) => conn = Some(opened),
                Err(e) => {
                    tracing::warn!(error = %e, "checkpoint thread cannot open the registry file");
                    continue;
                }
            }
        }
        if let Some(open) = &conn {
            if let Err(e) = checkpoint(open) {
                tracing::warn!(error = %e, "registry checkpoint failed; trying again after the next commit");
                conn = None;
            }
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // FULL: the log is synced before its pages are copied, the file after.
    conn.execute_batch("PRAGMA synchronous = FULL;")?;
    Ok(conn)
}

/// A passive checkpoint: copies what no reader still needs, waits for no lock.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn rows_in_file_alone(dir: &Path, db: &Path) -> i64 {
        // A copy of the database file without its log holds only what was checkpointed.
        let copy = dir.join("copy.db");
        std::fs::copy(db, &copy).unwrap();
        let conn = Connection::open(&copy).unwrap();
        let rows = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        std::fs::remove_file(&copy).unwrap();
        rows
    }

    /// A registry-like file in WAL mode whose own commits checkpoint only past
    /// the safety net, with its table already in the file; and its writer.
    fn wal_file(dir: &Path) -> (PathBuf, Connection) {
        let db = dir.join("registry.db");
        let writer = Connection::open(&db).unwrap();
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = {SAFETY_NET_PAGES};
                 CREATE TABLE t (x TEXT);"
            ))
            .unwrap();
        writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        (db, writer)
    }

    fn insert_rows(writer: &Connection, each: impl Fn()) {
        for i in 0..200 {
            writer
                .execute("INSERT INTO t VALUES (?1)", [format!("{i:0>2000}")])
                .unwrap();
            each();
        }
    }

    #[test]
    fn commits_reach_the_database_file_without_a_commit_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let (db, writer) = wal_file(dir.path());
        let checkpoints = Checkpointer::start(db.clone()).unwrap();
        insert_rows(&writer, || checkpoints.committed());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = rows_in_file_alone(dir.path(), &db);
        while seen < 200 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            seen = rows_in_file_alone(dir.path(), &db);
        }
        assert_eq!(
            seen, 200,
            "the database file alone holds every committed row"
        );
    }

    #[test]
    fn without_a_wake_nothing_is_checkpointed() {
        // The control for the test above: the same commits, no wake.
        let dir = tempfile::tempdir().unwrap();
        let (db, writer) = wal_file(dir.path());
        let _checkpoints = Checkpointer::start(db.clone()).unwrap();
        insert_rows(&writer, || {});
        std::thread::sleep(CHECKPOINT_DELAY * 4);
        assert_eq!(rows_in_file_alone(dir.path(), &db), 0);
    }
}
