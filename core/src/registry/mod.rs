//! The gateway's own database: firms, grants and their consent ledger,
//! credentials and access tokens, and the outbound log. SQLite (one file in
//! the data directory, WAL) by default; PostgreSQL when several gateway
//! instances share the work. The backend is chosen from the URL scheme and
//! both run the same queries through sqlx's `Any` driver; each has its own
//! migrations folder.

pub mod choices;
pub mod connector_records;
pub mod credentials;
pub mod firms;
mod generation_cache;
mod generation_read;
pub mod grants;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

/// Which database engine holds the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the registry; cheap to clone.
#[derive(Clone, Debug)]
pub struct Registry {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite registry's file (None on PostgreSQL and for an in-memory database).
    sqlite_file: Option<std::sync::Arc<std::path::PathBuf>>,
    /// Tokens resolved under the current generation (`generation_cache`).
    tokens: std::sync::Arc<generation_cache::GenerationCache<credentials::TokenGrant>>,
    /// Firms' stored choices per connector, read under a generation a grant
    /// handle carries (`generation_cache`).
    choices: std::sync::Arc<generation_cache::GenerationCache<scopegate_contract::choices::Chosen>>,
    /// Grants found on and at a contract, under the generation they were read
    /// under (`generation_cache`; key: grant, firm and schema hash).
    active_grants: std::sync::Arc<generation_cache::GenerationCache<()>>,
    /// Reads the generation without the pool, on a SQLite file (`generation_read`).
    generation_reader: Option<std::sync::Arc<generation_read::GenerationReader>>,
}

/// Everything that can go wrong in the registry, phrased for the person who caused it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot reach the database at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The database is known but cannot be used now (see [`is_unavailable`]): try again later.
    #[error("the database cannot be used now: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }
}

/// What a client is told when a database is unreachable or unavailable (the cause is logged).
pub const UNAVAILABLE_DETAIL: &str = "a database the gateway needs cannot be used right now (unreachable, not answering in time, or out of space); try again shortly";

/// SQLite primary result codes that mean the database cannot be used now.
const SQLITE_BUSY: i64 = 5;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;

/// True when an error says the database cannot be used now, not that the
/// query or the data was wrong: no connection (refused, reset, timed out, no
/// free connection within the pool's acquire timeout), the server shutting
/// down or refusing connections, the database missing (dropped, renamed, its
/// file gone), the disk or memory full, an I/O error. Callers answer 503 and
/// the client may try again; the gateway recovers by itself when it clears.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // The extended result code; its low byte is the primary one.
                code.parse::<i64>().is_ok_and(|c| {
                    matches!(
                        c & 0xff,
                        SQLITE_BUSY | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN
                    )
                })
            } else {
                // PostgreSQL SQLSTATE: connection exception, insufficient
                // resources (disk full, out of memory, too many connections),
                // admin or crash shutdown, cannot connect now, no such database.
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(&*code, "57P01" | "57P02" | "57P03" | "3D000")
            }
        }
        _ => false,
    }
}

impl Backend {
    pub fn from_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Invalid(format!(
                "database URL {} must start with sqlite:// or postgres://",
                redact_url(url)
            )))
        }
    }
}

/// Hides a password in a database URL before it is shown or logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Opens a pool on either backend. SQLite files are created on demand, in WAL
/// mode with full fsync on commit (the outbound log must survive a crash).
pub async fn open_pool(url: &str, max_connections: u32) -> StoreResult<(AnyPool, Backend)> {
    sqlx::any::install_default_drivers();
    let backend = Backend::from_url(url)?;
    let url_with_mode = match backend {
        Backend::Sqlite => ensure_sqlite_file(url)?,
        Backend::Postgres => url.to_string(),
    };
    let options =
        AnyConnectOptions::from_str(&url_with_mode).map_err(|e| StoreError::Unreachable {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
    // One direct attempt first: a pool only reports "timed out", the connection says why.
    match tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::ConnectOptions::connect(&options),
    )
    .await
    {
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
        }
        Ok(Err(e)) => {
            return Err(StoreError::Unreachable {
                url: redact_url(url),
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(StoreError::Unreachable {
                url: redact_url(url),
                reason: "no answer within 5 s".into(),
            })
        }
    }
    let mut pool_options = close_stuck_connections(
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Some(Duration::from_secs(60))),
    );
    if backend == Backend::Sqlite {
        pool_options = pool_options.after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")
                    .await?;
                Ok(())
            })
        });
    }
    let pool = pool_options
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Unreachable {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
    Ok((pool, backend))
}

/// Closes a connection released while it still counts itself inside a
/// transaction, instead of handing it to the next caller. SQLite rolls a
/// transaction back by itself after some errors (a full disk, an I/O error);
/// sqlx's `ROLLBACK` then fails and its count of open transactions stays up,
/// so every later `BEGIN` on that connection would fail ("non-zero transaction
/// depth") long after the disk has room again. A rollback still queued from a
/// dropped transaction is run first (the ping), so only stuck ones are closed.
pub(crate) fn close_stuck_connections(options: AnyPoolOptions) -> AnyPoolOptions {
    options.after_release(|conn, _| {
        Box::pin(async move {
            if !sqlx::Connection::is_in_transaction(conn) {
                return Ok(true);
            }
            sqlx::Connection::ping(conn).await?;
            Ok(!sqlx::Connection::is_in_transaction(conn))
        })
    })
}

/// Makes sure the SQLite file's folder exists and asks sqlx to create the file.
fn ensure_sqlite_file(url: &str) -> StoreResult<String> {
    let Some(path) = sqlite_file_of(url) else {
        return Ok(url.to_string());
    };
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Unreachable {
                url: url.to_string(),
                reason: format!("cannot create folder {}: {e}", parent.display()),
            })?;
        }
    }
    Ok(if url.contains('?') {
        url.to_string()
    } else {
        format!("{url}?mode=rwc")
    })
}

/// The file a `sqlite:` URL names, if it names one (not `:memory:` or `mode=memory`).
fn sqlite_file_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!in_memory).then_some(path)
}

impl Registry {
    /// Connects to the registry named by `url` (no migrations run).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let (pool, backend) = open_pool(url, 16).await?;
        let sqlite_file = match backend {
            Backend::Sqlite => {
                sqlite_file_of(url).map(|p| std::sync::Arc::new(std::path::PathBuf::from(p)))
            }
            Backend::Postgres => None,
        };
        let generation_reader = sqlite_file.as_ref().map(|path| {
            std::sync::Arc::new(generation_read::GenerationReader::new(path.to_path_buf()))
        });
        Ok(Self {
            pool,
            backend,
            sqlite_file,
            tokens: Default::default(),
            choices: Default::default(),
            active_grants: Default::default(),
            generation_reader,
        })
    }

    /// The registry's generation now (`generation_cache`): on a SQLite file
    /// read on this thread (`generation_read`), else through the pool.
    pub(crate) async fn generation(&self) -> StoreResult<i64> {
        use sqlx::Row;
        if let Some(generation) = self.generation_reader.as_ref().and_then(|r| r.read()) {
            return Ok(generation);
        }
        Ok(
            sqlx::query("SELECT n FROM registry_generation WHERE id = 1")
                .fetch_one(self.pool())
                .await?
                .get("n"),
        )
    }

    /// The SQLite registry's file, for readers that go around the pool (the
    /// chain verifier); None on PostgreSQL and for an in-memory database.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref().map(|p| p.as_path())
    }

    /// Connects and brings the schema up to date.
    pub async fn connect_and_migrate(url: &str) -> StoreResult<Self> {
        let registry = Self::connect(url).await?;
        registry.migrate().await?;
        Ok(registry)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and then
    /// writes fails with "database is locked" if another writer committed in
    /// between, whatever the busy timeout.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// A connection outside the pool whose commits are not flushed to disk on
    /// their own: for rows derived from rows already committed durably, written
    /// in the same transaction as the mark that says what they cover (the
    /// record-id index). On SQLite it runs with `synchronous = NORMAL`: the next
    /// durable commit's fsync of the WAL carries its frames too, and a power
    /// cut before that loses the whole transaction, mark and rows together. On
    /// PostgreSQL, `synchronous_commit = off` gives the same.
    pub async fn open_unsynced_connection(&self) -> Result<sqlx::AnyConnection, sqlx::Error> {
        let options = self.pool.connect_options();
        let mut conn = sqlx::ConnectOptions::connect(&*options).await?;
        let settings = match self.backend {
            Backend::Sqlite => "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
            Backend::Postgres => "SET synchronous_commit = off",
        };
        conn.execute(settings).await?;
        Ok(conn)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when a trivial query succeeds: what `/readyz` reports.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::{is_unavailable, redact_url, sqlite_file_of, Registry, StoreError};
    use sqlx::Connection;

    #[test]
    fn the_sqlite_file_is_known_except_for_memory_databases() {
        assert_eq!(
            sqlite_file_of("sqlite:///var/sg/registry.db"),
            Some("/var/sg/registry.db")
        );
        assert_eq!(
            sqlite_file_of("sqlite://rel/r.db?mode=rwc"),
            Some("rel/r.db")
        );
        assert_eq!(sqlite_file_of("sqlite:r.db"), Some("r.db"));
        assert_eq!(sqlite_file_of("sqlite::memory:"), None);
        assert_eq!(sqlite_file_of("sqlite://:memory:"), None);
        assert_eq!(
            sqlite_file_of("sqlite://file:x?mode=memory&cache=shared"),
            None
        );
        assert_eq!(sqlite_file_of("postgres://u@h/db"), None);
    }

    #[tokio::test]
    async fn errors_that_mean_try_again_later_are_told_from_wrong_queries() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        // A SQLite file that is not there (moved away): SQLITE_CANTOPEN.
        let missing = format!("sqlite://{}", dir.path().join("gone.db").display());
        let err = sqlx::AnyConnection::connect(&missing).await.unwrap_err();
        assert!(is_unavailable(&err), "{err}");
        assert!(matches!(StoreError::from(err), StoreError::Unavailable(_)));
        // A query the database refuses is not a reason to try again.
        let registry = Registry::connect_and_migrate(&format!(
            "sqlite://{}",
            dir.path().join("registry.db").display()
        ))
        .await
        .unwrap();
        let err = sqlx::query("SELECT no_such_column FROM firms")
            .execute(registry.pool())
            .await
            .unwrap_err();
        assert!(!is_unavailable(&err), "{err}");
        assert!(matches!(StoreError::from(err), StoreError::Database(_)));
    }

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
