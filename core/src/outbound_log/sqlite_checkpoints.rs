//! Checkpoints of a SQLite registry file's write-ahead log, off the writer's
//! commit path. By default SQLite copies the log back into the database file
//! inside whichever commit takes the log past 1,000 pages: that commit also
//! writes those 4 MB into the file and fsyncs it, and every send queued behind
//! it waits. Here the writer's connection leaves that to a thread of its own,
//! which runs a passive checkpoint (it never blocks a writer or a reader)
//! once [`BUSY_COMMITS`] commits have come since the last one, looking every
//! [`CHECKPOINT_DELAY`], or [`QUIET_WAIT`] after the first of fewer. Under
//! load that is a checkpoint about every 10 ms; when commits are sparse (a
//! calendar sync's one send at a time) it spares each commit a checkpoint of
//! its own, two more fsyncs. In
//! `cargo bench --bench outbound_log` (32 writers) that took the commits' p99
//! from 3.7-3.8 ms to 2.3-2.7 ms and the rate from 20,800-21,600 to
//! 23,100-25,300 records/s; the slowest commit, 5.0-6.5 ms before, was 11.5-13.1
//! ms, as a checkpoint's fsync can now overlap a commit's (BENCHMARKS.md §13).
//! SQLite's own checkpoint stays on the writer's connection as a safety net,
//! at [`SAFETY_NET_PAGES`], should this thread fall behind or be unable to
//! open the file.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the thread looks at the commits since its last checkpoint.
/// Under load, checkpoints this far apart kept commits short: waits of 100 ms
/// gave the same rate but commits of up to 25 ms while a checkpoint's fsync
/// ran (BENCHMARKS.md §13).
pub(super) const CHECKPOINT_DELAY: Duration = Duration::from_millis(10);

/// Commits that make a checkpoint due at the next look (under load, about
/// what 10 ms brings: `outbound_log`'s 32 writers commit about 1,600 times a
/// second).
pub(super) const BUSY_COMMITS: u64 = 16;

/// The longest the first commit after a checkpoint waits for the next one.
/// A calendar sync commits one send about every 6 ms; checkpointing each 10
/// ms after it cost 2.6 fdatasyncs and 1,070 us of CPU per event, against
/// 1.15 and 860 us with checkpoints 200 ms apart (BENCHMARKS.md §14).
pub(super) const QUIET_WAIT: Duration = Duration::from_millis(100);

/// The log's size, in pages, at which the writer's own commit checkpoints
/// (SQLite's `wal_autocheckpoint`; its default is 1,000).
pub(super) const SAFETY_NET_PAGES: u32 = 16_384;

/// Wakes the checkpoint thread; the thread ends when this is dropped.
pub(super) struct Checkpointer {
    wake: SyncSender<()>,
    /// Commits since the thread last took the count.
    commits: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Starts the thread for the registry file at `path` (`None`, with a
    /// warning, if no thread can be started: SQLite's own checkpoints remain).
    pub(super) fn start(path: PathBuf) -> Option<Self> {
        let (wake, woken) = sync_channel(1);
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        match std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&path, &woken, &counted))
        {
            Ok(_) => Some(Self { wake, commits }),
            Err(e) => {
                tracing::warn!(error = %e, "no checkpoint thread for the registry file; commits checkpoint themselves");
                None
            }
        }
    }

    /// Tells the thread the log has grown (never waits).
    pub(super) fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

fn run(path: &Path, woken: &Receiver<()>, commits: &AtomicU64) {
    let mut conn: Option<Connection> = None;
    while woken.recv().is_ok() {
        wait_until_due(commits);
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

/// Returns once [`BUSY_COMMITS`] commits have come or [`QUIET_WAIT`] has
/// passed, taking the count: commits after this belong to the next checkpoint.
fn wait_until_due(commits: &AtomicU64) {
    let first = Instant::now();
    loop {
        std::thread::sleep(CHECKPOINT_DELAY);
        if commits.load(Ordering::Relaxed) >= BUSY_COMMITS || first.elapsed() >= QUIET_WAIT {
            commits.store(0, Ordering::Relaxed);
            return;
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
        std::thread::sleep(QUIET_WAIT * 2);
        assert_eq!(rows_in_file_alone(dir.path(), &db), 0);
    }

    #[test]
    fn a_lone_commit_waits_for_company_then_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (db, writer) = wal_file(dir.path());
        let checkpoints = Checkpointer::start(db.clone()).unwrap();
        writer.execute("INSERT INTO t VALUES ('one')", []).unwrap();
        let committed = Instant::now();
        checkpoints.committed();
        std::thread::sleep(CHECKPOINT_DELAY * 3);
        assert_eq!(
            rows_in_file_alone(dir.path(), &db),
            0,
            "one commit is not checkpointed at the first look"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while rows_in_file_alone(dir.path(), &db) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(rows_in_file_alone(dir.path(), &db), 1);
        assert!(committed.elapsed() >= QUIET_WAIT);
    }
}
