//! The gateway's own database: firms, grants and their consent ledger,
//! credentials and access tokens, and the outbound log. SQLite (one file in
//! the data directory, WAL) by default; PostgreSQL when several gateway
//! instances share the work. The backend is chosen from the URL scheme and
//! both run the same queries through sqlx's `Any` driver; each has its own
//! migrations folder.

pub mod credentials;
pub mod firms;
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
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

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
    let mut pool_options = AnyPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Some(Duration::from_secs(60)));
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

/// Makes sure the SQLite file's folder exists and asks sqlx to create the file.
fn ensure_sqlite_file(url: &str) -> StoreResult<String> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(url.to_string());
    }
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

impl Registry {
    /// Connects to the registry named by `url` (no migrations run).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let (pool, backend) = open_pool(url, 16).await?;
        Ok(Self { pool, backend })
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
    use super::redact_url;

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
