//! Encrypted online backups of the registry and every firm database, with
//! rotation, and their restore into an empty place.
//!
//! A backup is one file, `scopegate-backup-<UTC time>.sgbk`, encrypted as a
//! whole ([`crypto`]) under a backup key that is not the master key. Inside is
//! a small archive: one entry per database, then a manifest.
//!
//! - SQLite databases are copied with `VACUUM INTO` (a consistent snapshot
//!   taken in one read transaction while the gateway keeps writing) into a
//!   private temporary folder beside the output, streamed into the encrypted
//!   file and deleted.
//! - PostgreSQL databases are dumped with `pg_dump --format=custom` straight
//!   into the encryption (no plaintext on disk), and restored by piping the
//!   decrypted dump into `pg_restore`.
//!
//! The registry is taken first and the firm list is read from that snapshot
//! (SQLite) or right after it (PostgreSQL), so every firm the restored registry
//! names has its database in the backup. The file is written under a temporary
//! name, fsynced and renamed; then the oldest backups beyond the number of
//! generations to keep are deleted.
//!
//! A restore goes into an empty data directory (SQLite) and/or an empty
//! PostgreSQL database, refuses anything else, writes into a temporary folder
//! first and moves the result into place only when everything decrypted and
//! loaded; firm database locations are rewritten in the restored registry.

pub mod crypto;

use crate::registry::{open_pool, redact_url, Backend};
pub use crypto::{BackupKey, DecryptReader, EncryptWriter};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ARCHIVE_MAGIC: &str = "scopegate-backup-archive 1";
const FILE_PREFIX: &str = "scopegate-backup-";
const FILE_SUFFIX: &str = ".sgbk";
const FRAME: usize = 256 * 1024;

/// A failed backup or restore: one line for the operator.
#[derive(Debug)]
pub struct BackupError(pub String);

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackupError {}

impl From<io::Error> for BackupError {
    fn from(e: io::Error) -> Self {
        BackupError(e.to_string())
    }
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        BackupError(format!("database error: {e}"))
    }
}

impl From<crate::registry::StoreError> for BackupError {
    fn from(e: crate::registry::StoreError) -> Self {
        BackupError(e.to_string())
    }
}

type Result<T> = std::result::Result<T, BackupError>;

fn fail<T>(line: impl Into<String>) -> Result<T> {
    Err(BackupError(line.into()))
}

/// How an entry's bytes were made (and so how they are restored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A SQLite database file (`VACUUM INTO`).
    Sqlite,
    /// `pg_dump --format=custom` output.
    PgDump,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EntryHeader {
    name: String,
    kind: EntryKind,
    /// The firm whose database this is; none for the registry.
    firm: Option<String>,
}

/// What a backup holds, written last inside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub created_at: i64,
    pub registry: EntryKind,
    pub firms: Vec<ManifestFirm>,
    /// Bytes of database content before encryption.
    pub plain_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFirm {
    pub id: String,
    pub kind: EntryKind,
}

/// What a finished backup was.
#[derive(Debug)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    pub manifest: Manifest,
    /// Older backups deleted by rotation.
    pub deleted: Vec<PathBuf>,
}

/// Is `pg_dump` (or another PostgreSQL client tool) on the PATH?
pub fn pg_tool_available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn need_pg_tool(tool: &str) -> Result<()> {
    if pg_tool_available(tool) {
        Ok(())
    } else {
        fail(format!(
            "{tool} is missing: install the PostgreSQL client tools (apt-get install postgresql-client)"
        ))
    }
}

/// Frames entries into the encrypted stream: a JSON header line, then
/// length-prefixed frames, a zero length closing the entry.
struct ArchiveWriter<W: Write> {
    out: EncryptWriter<W>,
    plain_bytes: u64,
}

impl<W: Write> ArchiveWriter<W> {
    fn new(out: EncryptWriter<W>) -> io::Result<Self> {
        let mut a = Self {
            out,
            plain_bytes: 0,
        };
        a.out.write_all(format!("{ARCHIVE_MAGIC}\n").as_bytes())?;
        Ok(a)
    }

    fn entry(&mut self, header: &EntryHeader, mut source: impl Read) -> io::Result<u64> {
        let line = serde_json::to_string(header).expect("json");
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        let mut buf = vec![0u8; FRAME];
        let mut total = 0u64;
        loop {
            let n = source.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.out.write_all(&(n as u32).to_be_bytes())?;
            self.out.write_all(&buf[..n])?;
            total += n as u64;
        }
        self.out.write_all(&0u32.to_be_bytes())?;
        self.plain_bytes += total;
        Ok(total)
    }

    fn finish(mut self, manifest: &Manifest) -> io::Result<W> {
        let bytes = serde_json::to_vec(manifest).expect("json");
        self.entry(
            &EntryHeader {
                name: "manifest.json".into(),
                kind: EntryKind::Sqlite,
                firm: None,
            },
            &bytes[..],
        )?;
        self.out.write_all(b"end\n")?;
        self.out.finish()
    }
}

/// Reads one entry's frames as a `Read`.
struct EntryReader<'a, R: BufRead> {
    inner: &'a mut R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for EntryReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut len = [0u8; 4];
            self.inner.read_exact(&mut len)?;
            self.left = u32::from_be_bytes(len) as usize;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = out.len().min(self.left);
        let n = self.inner.read(&mut out[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the backup ends inside an entry",
            ));
        }
        self.left -= n;
        Ok(n)
    }
}

/// Removes a folder (and what is in it) when dropped, unless disarmed.
struct TempDir(Option<PathBuf>);

impl TempDir {
    fn create(path: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self(Some(path)))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().expect("armed")
    }

    fn disarm(mut self) -> PathBuf {
        self.0.take().expect("armed")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

fn sqlite_path(url: &str) -> PathBuf {
    PathBuf::from(
        url.trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:")
            .split('?')
            .next()
            .unwrap_or_default(),
    )
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A consistent copy of a SQLite database at `dest` (read transaction; writers go on).
async fn vacuum_into(url: &str, dest: &Path) -> Result<()> {
    if !sqlite_path(url).exists() {
        return fail(format!(
            "database file {} is missing",
            sqlite_path(url).display()
        ));
    }
    let (pool, _) = open_pool(url, 1).await?;
    let sql = format!("VACUUM INTO {}", sql_string(&dest.display().to_string()));
    let result = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
    pool.close().await;
    result?;
    Ok(())
}

/// Runs `pg_dump` on `url`, feeding its output to `entry` (blocking).
fn pg_dump_into<W: Write>(
    archive: &mut ArchiveWriter<W>,
    header: &EntryHeader,
    url: &str,
) -> Result<()> {
    let mut child = Command::new("pg_dump")
        .args([
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--dbname",
        ])
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BackupError(format!("cannot run pg_dump: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let copied = archive.entry(header, stdout);
    let output = child.wait_with_output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return fail(format!(
            "pg_dump of {} failed: {}",
            redact_url(url),
            stderr.lines().next().unwrap_or("no message")
        ));
    }
    copied?;
    Ok(())
}

/// Takes an encrypted backup of the registry at `registry_url` and every firm
/// database it names into `out_dir`, then keeps only the newest `generations`.
pub async fn backup(
    registry_url: &str,
    out_dir: &Path,
    key: &BackupKey,
    generations: usize,
) -> Result<BackupReport> {
    let registry_backend = Backend::from_url(registry_url)?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| BackupError(format!("cannot create {}: {e}", out_dir.display())))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let final_path = out_dir.join(format!("{FILE_PREFIX}{stamp}{FILE_SUFFIX}"));
    let partial = out_dir.join(format!(".{FILE_PREFIX}{stamp}{FILE_SUFFIX}.partial"));
    let scratch = TempDir::create(out_dir.join(format!(".{FILE_PREFIX}{stamp}.scratch")))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|e| BackupError(format!("cannot write {}: {e}", partial.display())))?;
    let result = write_backup(registry_url, registry_backend, scratch.path(), file, key).await;
    drop(scratch);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &final_path)?;
    std::fs::File::open(out_dir)?.sync_all()?;
    let bytes = std::fs::metadata(&final_path)?.len();
    let deleted = rotate(out_dir, generations)?;
    Ok(BackupReport {
        file: final_path,
        bytes,
        manifest,
        deleted,
    })
}

async fn write_backup(
    registry_url: &str,
    registry_backend: Backend,
    scratch: &Path,
    file: std::fs::File,
    key: &BackupKey,
) -> Result<Manifest> {
    let created_at = crate::clock::now_ms();
    let writer = EncryptWriter::new(BufWriter::with_capacity(FRAME, file), key)?;
    let mut archive = ArchiveWriter::new(writer)?;
    let registry_header = EntryHeader {
        name: "registry".into(),
        kind: match registry_backend {
            Backend::Sqlite => EntryKind::Sqlite,
            Backend::Postgres => EntryKind::PgDump,
        },
        firm: None,
    };
    // The registry first; the firms are those it names.
    let firms: Vec<(String, String)> = match registry_backend {
        Backend::Sqlite => {
            let copy = scratch.join("registry.db");
            vacuum_into(registry_url, &copy).await?;
            let copy_url = format!("sqlite://{}", copy.display());
            let (pool, _) = open_pool(&copy_url, 1).await?;
            let firms = list_firms(&pool).await;
            pool.close().await;
            let firms = firms?;
            archive = tokio::task::spawn_blocking(move || -> Result<_> {
                let file = std::fs::File::open(&copy)?;
                archive.entry(&registry_header, file)?;
                std::fs::remove_file(&copy)?;
                Ok(archive)
            })
            .await
            .map_err(|e| BackupError(e.to_string()))??;
            firms
        }
        Backend::Postgres => {
            need_pg_tool("pg_dump")?;
            let url = registry_url.to_string();
            archive = tokio::task::spawn_blocking(move || -> Result<_> {
                pg_dump_into(&mut archive, &registry_header, &url)?;
                Ok(archive)
            })
            .await
            .map_err(|e| BackupError(e.to_string()))??;
            let (pool, _) = open_pool(registry_url, 1).await?;
            let firms = list_firms(&pool).await;
            pool.close().await;
            firms?
        }
    };
    let mut manifest_firms = Vec::new();
    for (firm_id, url) in firms {
        let backend = Backend::from_url(&url)?;
        let header = EntryHeader {
            name: format!("firm/{firm_id}"),
            kind: match backend {
                Backend::Sqlite => EntryKind::Sqlite,
                Backend::Postgres => EntryKind::PgDump,
            },
            firm: Some(firm_id.clone()),
        };
        manifest_firms.push(ManifestFirm {
            id: firm_id.clone(),
            kind: header.kind,
        });
        archive = match backend {
            Backend::Sqlite => {
                let copy = scratch.join("firm.db");
                vacuum_into(&url, &copy)
                    .await
                    .map_err(|e| BackupError(format!("firm {firm_id}: {e}")))?;
                tokio::task::spawn_blocking(move || -> Result<_> {
                    let file = std::fs::File::open(&copy)?;
                    archive.entry(&header, file)?;
                    std::fs::remove_file(&copy)?;
                    Ok(archive)
                })
                .await
                .map_err(|e| BackupError(e.to_string()))??
            }
            Backend::Postgres => {
                need_pg_tool("pg_dump")?;
                tokio::task::spawn_blocking(move || -> Result<_> {
                    pg_dump_into(&mut archive, &header, &url)?;
                    Ok(archive)
                })
                .await
                .map_err(|e| BackupError(e.to_string()))??
            }
        };
    }
    let manifest = Manifest {
        version: 1,
        created_at,
        registry: match registry_backend {
            Backend::Sqlite => EntryKind::Sqlite,
            Backend::Postgres => EntryKind::PgDump,
        },
        firms: manifest_firms,
        plain_bytes: archive.plain_bytes,
    };
    let done = manifest.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let file = archive
            .finish(&done)?
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })
    .await
    .map_err(|e| BackupError(e.to_string()))??;
    Ok(manifest)
}

async fn list_firms(pool: &sqlx::AnyPool) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query("SELECT id, data_url FROM firms ORDER BY id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| (r.get("id"), r.get("data_url")))
        .collect())
}

/// The finished backups in `dir`, oldest first.
pub fn list_backups(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(FILE_SUFFIX))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Deletes all but the newest `keep` backups; returns what it deleted.
pub fn rotate(dir: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let files = list_backups(dir)?;
    let excess = files.len().saturating_sub(keep.max(1));
    let mut deleted = Vec::new();
    for old in files.into_iter().take(excess) {
        std::fs::remove_file(&old)
            .map_err(|e| BackupError(format!("cannot delete old backup {}: {e}", old.display())))?;
        deleted.push(old);
    }
    if !deleted.is_empty() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(deleted)
}

/// Where a restore goes.
#[derive(Debug, Clone)]
pub struct RestoreTarget {
    /// Must be missing or empty: SQLite databases go here (`registry.db`, `firms/<id>.db`).
    pub data_dir: PathBuf,
    /// An empty PostgreSQL database for a PostgreSQL registry backup.
    pub registry_postgres_url: Option<String>,
    /// A PostgreSQL server (any database URL on it) where firm databases that
    /// were PostgreSQL are created anew; defaults to the registry's server.
    pub firm_postgres_url: Option<String>,
}

/// What a restore produced.
#[derive(Debug)]
pub struct RestoreReport {
    pub manifest: Manifest,
    /// The restored registry's URL.
    pub registry_url: String,
    /// Each firm and where its database now is.
    pub firms: Vec<(String, String)>,
}

fn dir_is_empty(dir: &Path) -> io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// True when the PostgreSQL database at `url` has no tables.
async fn postgres_is_empty(url: &str) -> Result<bool> {
    let (pool, _) = open_pool(url, 1).await?;
    let n: i64 = sqlx::query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&pool)
    .await?
    .get("n");
    pool.close().await;
    Ok(n == 0)
}

/// `postgres://host/name` -> (`postgres://host/`, name).
fn split_database(url: &str) -> (String, String) {
    let (without_query, _) = url.split_once('?').unwrap_or((url, ""));
    match without_query.rsplit_once('/') {
        Some((base, name)) => (format!("{base}/"), name.to_string()),
        None => (format!("{without_query}/"), String::new()),
    }
}

/// Restores the backup in `file` into `target`; refuses a non-empty place.
pub async fn restore(
    file: &Path,
    key: &BackupKey,
    target: &RestoreTarget,
) -> Result<RestoreReport> {
    if !dir_is_empty(&target.data_dir)? {
        return fail(format!(
            "refusing to restore into {}: it is not empty (restore into an empty or new folder)",
            target.data_dir.display()
        ));
    }
    // Authenticate the whole file first (every segment, and that none is
    // missing at the end), so a damaged or cut-short backup writes nothing.
    let whole = file.to_path_buf();
    let key_check = key.clone();
    tokio::task::spawn_blocking(move || -> Result<u64> {
        let source = std::fs::File::open(&whole)
            .map_err(|e| BackupError(format!("cannot read {}: {e}", whole.display())))?;
        let mut reader = DecryptReader::new(BufReader::new(source), &key_check)
            .map_err(|e| damaged(&whole, e))?;
        io::copy(&mut reader, &mut io::sink()).map_err(|e| damaged(&whole, e))
    })
    .await
    .map_err(|e| BackupError(e.to_string()))??;
    let source = std::fs::File::open(file)
        .map_err(|e| BackupError(format!("cannot read {}: {e}", file.display())))?;
    let mut reader = BufReader::with_capacity(
        FRAME,
        DecryptReader::new(BufReader::new(source), key)
            .map_err(|e| BackupError(format!("{}: {e}", file.display())))?,
    );
    let mut magic = String::new();
    reader.read_line(&mut magic).map_err(|e| damaged(file, e))?;
    if magic.trim_end() != ARCHIVE_MAGIC {
        return fail(format!(
            "{}: not a scopegate backup archive",
            file.display()
        ));
    }
    if let Some(url) = &target.registry_postgres_url {
        if !postgres_is_empty(url).await? {
            return fail(format!(
                "refusing to restore into {}: the database is not empty",
                redact_url(url)
            ));
        }
    }
    std::fs::create_dir_all(&target.data_dir)
        .map_err(|e| BackupError(format!("cannot create {}: {e}", target.data_dir.display())))?;
    let staging = TempDir::create(target.data_dir.join(".restoring"))?;
    let handle = tokio::runtime::Handle::current();
    let staging_path = staging.path().to_path_buf();
    let target_owned = target.clone();
    let file_owned = file.to_path_buf();
    // Decrypting and loading is blocking I/O; database creation goes back to the runtime.
    let (loaded, created) = tokio::task::spawn_blocking(move || {
        let mut created = Vec::new();
        let loaded = load_entries(
            &mut reader,
            &staging_path,
            &target_owned,
            &file_owned,
            &handle,
            &mut created,
        );
        (loaded, created)
    })
    .await
    .map_err(|e| BackupError(e.to_string()))?;
    let (manifest, registry_url_staged, mut firms) = match loaded {
        Ok(v) => v,
        Err(e) => {
            // Nothing half-restored: the staging folder goes with `staging`,
            // the firm databases this restore created are dropped.
            use sqlx::migrate::MigrateDatabase;
            for url in created {
                let _ = sqlx::Any::drop_database(&url).await;
            }
            if let Some(url) = &target.registry_postgres_url {
                // It was empty when the restore began: empty it again.
                if let Ok((pool, _)) = open_pool(url, 1).await {
                    let _ = sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            }
            return Err(e);
        }
    };
    // Move the SQLite files into place, then point the registry at the new locations.
    let staged_firms = staging.path().join("firms");
    if staged_firms.exists() {
        std::fs::rename(&staged_firms, target.data_dir.join("firms"))?;
    }
    let registry_url = match &registry_url_staged {
        Some(_) => {
            let dest = target.data_dir.join("registry.db");
            std::fs::rename(staging.path().join("registry.db"), &dest)?;
            format!("sqlite://{}", dest.display())
        }
        None => target
            .registry_postgres_url
            .clone()
            .expect("checked when the registry entry was read"),
    };
    for (id, url) in firms.iter_mut() {
        if url.starts_with("sqlite:") {
            *url = crate::tenancy::default_firm_url(&target.data_dir, id);
        }
    }
    let staging_path = staging.disarm();
    let _ = std::fs::remove_dir_all(&staging_path);
    std::fs::File::open(&target.data_dir)?.sync_all()?;
    let (pool, _) = open_pool(&registry_url, 1).await?;
    for (id, url) in &firms {
        sqlx::query("UPDATE firms SET data_url = $1 WHERE id = $2")
            .bind(url)
            .bind(id)
            .execute(&pool)
            .await?;
    }
    pool.close().await;
    Ok(RestoreReport {
        manifest,
        registry_url,
        firms,
    })
}

fn damaged(file: &Path, e: io::Error) -> BackupError {
    BackupError(format!("{}: {e}", file.display()))
}

type Loaded = (Manifest, Option<PathBuf>, Vec<(String, String)>);

fn load_entries<R: BufRead>(
    reader: &mut R,
    staging: &Path,
    target: &RestoreTarget,
    file: &Path,
    handle: &tokio::runtime::Handle,
    created: &mut Vec<String>,
) -> Result<Loaded> {
    let mut registry_file = None;
    let mut firms = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| damaged(file, e))?;
        let line = line.trim_end();
        if line == "end" || line.is_empty() {
            return fail(format!("{}: the backup has no manifest", file.display()));
        }
        let header: EntryHeader = serde_json::from_str(line)
            .map_err(|_| BackupError(format!("{}: unreadable entry header", file.display())))?;
        let mut entry = EntryReader {
            inner: reader,
            left: 0,
            done: false,
        };
        if header.name == "manifest.json" {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| damaged(file, e))?;
            let manifest: Manifest = serde_json::from_slice(&bytes)
                .map_err(|_| BackupError(format!("{}: unreadable manifest", file.display())))?;
            let mut end = String::new();
            reader.read_line(&mut end).map_err(|e| damaged(file, e))?;
            if end.trim_end() != "end" {
                return fail(format!(
                    "{}: the backup does not end properly",
                    file.display()
                ));
            }
            return Ok((manifest, registry_file, firms));
        }
        match (header.kind, &header.firm) {
            (EntryKind::Sqlite, None) => {
                let dest = staging.join("registry.db");
                write_file(&dest, &mut entry).map_err(|e| damaged(file, e))?;
                registry_file = Some(dest);
            }
            (EntryKind::Sqlite, Some(firm)) => {
                crate::registry::firms::validate_firm_id(firm)?;
                let dest = staging.join("firms").join(format!("{firm}.db"));
                write_file(&dest, &mut entry).map_err(|e| damaged(file, e))?;
                firms.push((firm.clone(), "sqlite:".to_string()));
            }
            (EntryKind::PgDump, None) => {
                let url = target.registry_postgres_url.as_deref().ok_or_else(|| {
                    BackupError("this backup's registry is PostgreSQL: give an empty PostgreSQL database with --database-url postgres://...".into())
                })?;
                pg_restore_from(&mut entry, url)?;
            }
            (EntryKind::PgDump, Some(firm)) => {
                crate::registry::firms::validate_firm_id(firm)?;
                let server = target
                    .firm_postgres_url
                    .as_deref()
                    .or(target.registry_postgres_url.as_deref())
                    .ok_or_else(|| {
                        BackupError(format!(
                            "firm {firm}'s database is PostgreSQL: give a PostgreSQL server with --firm-postgres-url postgres://..."
                        ))
                    })?;
                let url = handle.block_on(create_firm_database(server, target, firm))?;
                created.push(url.clone());
                pg_restore_from(&mut entry, &url)?;
                firms.push((firm.clone(), url));
            }
        }
        // Whatever the loader left unread of the entry.
        io::copy(&mut entry, &mut io::sink()).map_err(|e| damaged(file, e))?;
    }
}

/// A new, empty database for a firm on `server`, named after the restored registry.
async fn create_firm_database(server: &str, target: &RestoreTarget, firm: &str) -> Result<String> {
    use sqlx::migrate::MigrateDatabase;
    let (base, _) = split_database(server);
    let prefix = match &target.registry_postgres_url {
        Some(url) => split_database(url).1,
        None => format!(
            "scopegate_restore_{}",
            chrono::Utc::now().format("%Y%m%d%H%M%S")
        ),
    };
    let mut name = format!("{prefix}_{}", firm.replace('-', "_"));
    name.truncate(63);
    let url = format!("{base}{name}");
    sqlx::any::install_default_drivers();
    if sqlx::Any::database_exists(&url).await? {
        return fail(format!(
            "refusing to restore firm {firm} into {}: that database already exists",
            redact_url(&url)
        ));
    }
    sqlx::Any::create_database(&url).await?;
    Ok(url)
}

fn write_file(dest: &Path, source: &mut impl Read) -> io::Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = std::fs::File::create(dest)?;
    io::copy(source, &mut out)?;
    out.sync_all()?;
    Ok(())
}

fn pg_restore_from(source: &mut impl Read, url: &str) -> Result<()> {
    need_pg_tool("pg_restore")?;
    let mut child = Command::new("pg_restore")
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
        ])
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BackupError(format!("cannot run pg_restore: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let copied = io::copy(source, &mut stdin);
    if let Err(e) = copied {
        // Never let pg_restore take a cut-short dump for a whole one: kill it
        // (its single transaction rolls back).
        let _ = child.kill();
        let _ = child.wait();
        return fail(format!("cannot feed pg_restore: {e}"));
    }
    drop(stdin);
    let output = child.wait_with_output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return fail(format!(
            "pg_restore into {} failed: {}",
            redact_url(url),
            stderr.lines().next().unwrap_or("no message")
        ));
    }
    Ok(())
}
