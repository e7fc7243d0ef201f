//! The verifier's read path for a SQLite registry file: one firm's chain read
//! straight through SQLite's C API (rusqlite, linking the same
//! `libsqlite3-sys` as sqlx), each row's columns borrowed from SQLite's own
//! buffers, in one read transaction with the chain head. sqlx hands every
//! row from its worker thread to the async side one by one, through the
//! `Any` driver's owned values; that alone caps a scan at about 150,000
//! rows/s, well under what hashing can check. This path is blocking: run it
//! on a blocking thread.

use super::stored::StoredRecord;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// How much of the registry file a verifying connection maps into memory.
const MMAP_BYTES: i64 = 1 << 30;

/// Why a row's columns cannot be read as the log's types (a tampered type or encoding).
pub(super) struct Unreadable;

/// Opens `path` for reading the log: no writes through this connection.
pub(super) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", true)?;
    // Pages are read in place from the mapped file rather than copied in.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    Ok(conn)
}

/// Reads `firm_id`'s records in chain order, then its chain head, in one
/// read transaction. `each` sees every record (or `Err` for a row whose
/// columns do not have the log's types) and returns `false` to stop early.
pub(super) fn read_chain(
    conn: &mut Connection,
    firm_id: &str,
    mut each: impl FnMut(i64, Result<StoredRecord<'_>, Unreadable>) -> bool,
) -> rusqlite::Result<Option<(i64, String)>> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "SELECT seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash, mac_key FROM outbound_log WHERE firm_id = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([firm_id])?;
        while let Some(row) = rows.next()? {
            let (seq, record) = match row.get_ref(0)? {
                ValueRef::Integer(seq) => (seq, stored(firm_id, seq, row)),
                _ => (i64::MIN, Err(Unreadable)),
            };
            if !each(seq, record) {
                break;
            }
        }
    }
    let head = tx
        .query_row(
            "SELECT seq, hash FROM outbound_chain_heads WHERE firm_id = ?1",
            [firm_id],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    tx.finish()?;
    Ok(head)
}

/// A row's columns after `seq`. The firm id is not read back: `WHERE firm_id
/// = ?1` matched it, and the record is hashed as `firm_id`'s, so a row passes
/// only if its keyed hash was made for this firm (a row moved in from another
/// firm, or a firm id edited under a looser collation, fails its hash).
fn stored<'r>(
    firm_id: &'r str,
    seq: i64,
    row: &'r rusqlite::Row<'_>,
) -> Result<StoredRecord<'r>, Unreadable> {
    let text = |i: usize| -> Result<&'r str, Unreadable> {
        match row.get_ref(i).map_err(|_| Unreadable)? {
            ValueRef::Text(t) => std::str::from_utf8(t).map_err(|_| Unreadable),
            _ => Err(Unreadable),
        }
    };
    let int = |i: usize| -> Result<i64, Unreadable> {
        match row.get_ref(i).map_err(|_| Unreadable)? {
            ValueRef::Integer(n) => Ok(n),
            _ => Err(Unreadable),
        }
    };
    let opt_int = |i: usize| -> Result<Option<i64>, Unreadable> {
        match row.get_ref(i).map_err(|_| Unreadable)? {
            ValueRef::Integer(n) => Ok(Some(n)),
            ValueRef::Null => Ok(None),
            _ => Err(Unreadable),
        }
    };
    Ok(StoredRecord {
        firm_id,
        seq,
        kind: text(1)?,
        at: int(2)?,
        grant_id: text(3)?,
        connector: text(4)?,
        direction: text(5)?,
        method: text(6)?,
        target: text(7)?,
        fields: text(8)?,
        record_ids: text(9)?,
        payload_sha256: text(10)?,
        bytes: int(11)?,
        send_seq: opt_int(12)?,
        status: opt_int(13)?,
        latency_us: opt_int(14)?,
        prev_hash: text(15)?,
        hash: text(16)?,
        mac_key: text(17)?,
    })
}
