//! Tenancy: the only way to reach a firm's own database. One pool per firm,
//! opened lazily and kept in a bounded LRU (an evicted pool closes once no
//! request holds it any more). A
//! handle is only given out for one firm at a time, named by a grant that was
//! resolved from a credential or session; no function here takes two firms.
//! Metrics (no firm ids as labels): `scopegate_firm_pool_hits_total`,
//! `scopegate_firm_pool_opens_total`, `scopegate_firm_pool_evictions_total`
//! and the gauge `scopegate_firm_pools_open`.

pub mod seed;

use crate::registry::{
    close_stuck_connections, open_pool, redact_url, Backend, Registry, StoreError, StoreResult,
};
use lru::LruCache;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The firm-data contract, SQLite flavour.
pub const FIRM_SCHEMA_SQLITE: &str = include_str!("../../../schemas/firm-data/sqlite.sql");
/// The firm-data contract, PostgreSQL flavour.
pub const FIRM_SCHEMA_POSTGRES: &str = include_str!("../../../schemas/firm-data/postgres.sql");

/// A connection pool on exactly one firm's database.
#[derive(Clone, Debug)]
pub struct FirmDb {
    pub firm_id: String,
    pub backend: Backend,
    pool: AnyPool,
}

impl FirmDb {
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Anything that names one firm with the authority to read it: a resolved
/// token grant, an admin session, or the operator's CLI.
pub trait FirmScope {
    fn firm_id(&self) -> &str;
}

impl FirmScope for crate::registry::credentials::TokenGrant {
    fn firm_id(&self) -> &str {
        &self.firm_id
    }
}

impl FirmScope for scopegate_contract::FirmGrant {
    fn firm_id(&self) -> &str {
        scopegate_contract::FirmGrant::firm_id(self)
    }
}

/// The operator's CLI, or a firm's own information officer, acting for the firm.
impl FirmScope for crate::registry::firms::Firm {
    fn firm_id(&self) -> &str {
        &self.id
    }
}

impl FirmScope for crate::registry::grants::Grant {
    fn firm_id(&self) -> &str {
        &self.firm_id
    }
}

/// The lazily-opened, bounded set of firm pools.
#[derive(Clone)]
pub struct Tenancy {
    registry: Registry,
    pools: Arc<Mutex<LruCache<String, FirmDb>>>,
}

impl Tenancy {
    pub fn new(registry: Registry, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).expect("non-zero");
        Self {
            registry,
            pools: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }

    /// The database of the firm the scope names.
    pub async fn firm_db(&self, scope: &impl FirmScope) -> StoreResult<FirmDb> {
        let firm_id = scope.firm_id();
        if let Some(db) = self.pools.lock().expect("tenancy lock").get(firm_id) {
            metrics::counter!("scopegate_firm_pool_hits_total").increment(1);
            return Ok(db.clone());
        }
        let firm = self.registry.firm(firm_id).await?;
        let db = lazy_firm_pool(&firm.id, &firm.data_url)?;
        let evicted = {
            let mut pools = self.pools.lock().expect("tenancy lock");
            if let Some(existing) = pools.get(firm_id) {
                metrics::counter!("scopegate_firm_pool_hits_total").increment(1);
                return Ok(existing.clone());
            }
            let evicted = pools.push(firm_id.to_string(), db.clone());
            metrics::counter!("scopegate_firm_pool_opens_total").increment(1);
            if evicted.is_some() {
                metrics::counter!("scopegate_firm_pool_evictions_total").increment(1);
            }
            metrics::gauge!("scopegate_firm_pools_open").set(pools.len() as f64);
            evicted
        };
        // Not closed explicitly: a request that took this handle just before the
        // eviction may still be using it (a closed pool refuses every query). Its
        // connections close when the last handle is dropped.
        drop(evicted);
        Ok(db)
    }

    /// How many firm pools are open now.
    pub fn open_pools(&self) -> usize {
        self.pools.lock().expect("tenancy lock").len()
    }
}

/// A pool that connects on first use (SQLite: one file per firm, WAL).
fn lazy_firm_pool(firm_id: &str, url: &str) -> StoreResult<FirmDb> {
    sqlx::any::install_default_drivers();
    let backend = Backend::from_url(url)?;
    let options = AnyConnectOptions::from_str(url).map_err(|e| StoreError::Unreachable {
        url: redact_url(url),
        reason: e.to_string(),
    })?;
    let mut pool_options = close_stuck_connections(
        AnyPoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Some(Duration::from_secs(120))),
    );
    if backend == Backend::Sqlite {
        pool_options = pool_options.after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(&mut *conn, "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -512;").await?;
                Ok(())
            })
        });
    }
    Ok(FirmDb {
        firm_id: firm_id.to_string(),
        backend,
        pool: pool_options.connect_lazy_with(options),
    })
}

/// Creates (if needed) a firm's database and installs the firm-data contract.
/// Fails with a clear message when the URL does not connect.
pub async fn provision_firm_database(firm_id: &str, url: &str) -> StoreResult<FirmDb> {
    let backend = Backend::from_url(url)?;
    if backend == Backend::Postgres {
        use sqlx::migrate::MigrateDatabase;
        sqlx::any::install_default_drivers();
        let exists =
            sqlx::Any::database_exists(url)
                .await
                .map_err(|e| StoreError::Unreachable {
                    url: redact_url(url),
                    reason: e.to_string(),
                })?;
        if !exists {
            sqlx::Any::create_database(url)
                .await
                .map_err(|e| StoreError::Unreachable {
                    url: redact_url(url),
                    reason: e.to_string(),
                })?;
        }
    }
    let (pool, backend) = open_pool(url, 2).await?;
    let schema = match backend {
        Backend::Sqlite => FIRM_SCHEMA_SQLITE,
        Backend::Postgres => FIRM_SCHEMA_POSTGRES,
    };
    sqlx::raw_sql(schema).execute(&pool).await?;
    Ok(FirmDb {
        firm_id: firm_id.to_string(),
        backend,
        pool,
    })
}

/// The default home of a firm's database: a SQLite file in the data directory.
pub fn default_firm_url(data_dir: &std::path::Path, firm_id: &str) -> String {
    format!(
        "sqlite://{}",
        data_dir
            .join("firms")
            .join(format!("{firm_id}.db"))
            .display()
    )
}

/// Takes `n` numbers from the firm database's change counter (inside the caller's transaction).
pub async fn next_change_seqs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    n: i64,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "UPDATE change_counter SET value = value + $1 WHERE only_row = 1 RETURNING value",
    )
    .bind(n)
    .fetch_one(&mut **tx)
    .await?;
    let last: i64 = sqlx::Row::get(&row, "value");
    Ok(last - n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Firm(&'static str);

    impl FirmScope for Firm {
        fn firm_id(&self) -> &str {
            self.0
        }
    }

    #[tokio::test]
    async fn a_handle_taken_before_its_pool_is_evicted_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::connect_and_migrate(&format!(
            "sqlite://{}",
            dir.path().join("registry.db").display()
        ))
        .await
        .unwrap();
        for id in ["firm-a", "firm-b"] {
            let url = default_firm_url(dir.path(), id);
            provision_firm_database(id, &url)
                .await
                .unwrap()
                .pool()
                .close()
                .await;
            registry.add_firm(id, id, &url).await.unwrap();
        }
        let tenancy = Tenancy::new(registry, 1);
        let a = tenancy.firm_db(&Firm("firm-a")).await.unwrap();
        tenancy.firm_db(&Firm("firm-b")).await.unwrap();
        assert_eq!(tenancy.open_pools(), 1, "firm-a was evicted");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let row = sqlx::query("SELECT count(*) AS n FROM matters")
            .fetch_one(a.pool())
            .await
            .expect("an in-flight request still reaches its firm after eviction");
        assert_eq!(sqlx::Row::get::<i64, _>(&row, "n"), 0);
        assert_eq!(a.firm_id, "firm-a");
    }
}
