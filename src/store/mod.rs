//! The one storage API. The backend is chosen by the database URL: a SQLite
//! file (the embedded default) or PostgreSQL (for several replicas).
//!
//! Queries are runtime-checked (`sqlx::query`), not `query!`: compile-time
//! checking ties a query to one database, and the same code must run on
//! both. The SQL is written once in the dialect both accept (`$1`
//! placeholders, `ON CONFLICT`, `RETURNING`); the few places that differ say
//! so. Each method runs the same body against either pool through
//! [`with_pool!`], or inside a [`StoreTx`] through [`with_tx!`]. Rows become
//! domain types here and nowhere else.

mod briefings;
mod editorial;
mod inbound;
mod issues;
mod jobs;
mod signups;
mod sources;
mod stories;
mod subscribers;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::DatabaseUrl;

/// A PostgreSQL connection idle this long is pinged before it is used.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(5);

pub use briefings::{CachedBrief, ThreadRow};
pub use inbound::{DeliveryRef, Effect, InboundEventRow, IssueFeedback, NewInboundEvent, Recorded, SoftBouncePolicy};
pub use issues::{DeliveryCounts, DeliveryOutcome, DeliveryRow, IssueRow, NewIssue};
pub use signups::{Confirmation, EditorSession, Signup};
pub use sources::{FetchRecord, FetchUpdate, SourceRow, SourceState};
pub use stories::{AwaitingContent, ClusterRow};
pub use subscribers::{AddOutcome, RECIPIENTS_LOCK};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug)]
enum Backend {
    Sqlite {
        pool: SqlitePool,
        /// One connection for the delivery ledger's writes. SQLite has one
        /// writer at a time anyway; through one connection the writes queue
        /// in the process instead of sleeping in SQLite's busy handler, and
        /// the connection's page cache stays valid (a connection drops its
        /// cache whenever another one has written).
        ledger: SqlitePool,
    },
    Postgres {
        pool: PgPool,
        /// Connections for the delivery ledger's outcomes, committed
        /// without waiting for the WAL flush (`synchronous_commit = off`):
        /// an outcome lost with a crash of PostgreSQL itself is a message
        /// sent again, never a reader lost, as with SQLite's `synchronous =
        /// NORMAL` above when the machine fails. With a fast relay the
        /// sender had waited on those flushes (BENCHMARKS.md, "Send").
        /// Claims stay durable: a lost lease could let two replicas send
        /// the same rows.
        outcomes: PgPool,
    },
}

/// A write transaction on either backend: writes that land together, in
/// one commit, or not at all. Dropped without [`StoreTx::commit`], it
/// rolls back.
pub struct StoreTx<'c> {
    inner: TxInner<'c>,
}

enum TxInner<'c> {
    Sqlite(sqlx::Transaction<'c, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'c, sqlx::Postgres>),
}

/// One connection held for a run of transactions ([`Store::connection`]).
/// The collector holds one for its whole run: a connection given back to
/// the pool returns to it asynchronously, so the next `begin` would open a
/// second SQLite connection, with its own thread and page cache.
pub struct StoreConn {
    inner: ConnInner,
}

enum ConnInner {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl StoreConn {
    pub async fn begin(&mut self) -> StoreResult<StoreTx<'_>> {
        use sqlx::Connection;
        let inner = match &mut self.inner {
            ConnInner::Sqlite(c) => TxInner::Sqlite(c.begin_with(SQLITE_BEGIN).await?),
            ConnInner::Postgres(c) => TxInner::Postgres(c.begin().await?),
        };
        Ok(StoreTx { inner })
    }
}

/// IMMEDIATE: a write transaction takes SQLite's write lock at its start,
/// so one that reads before it writes cannot fail to upgrade
/// (SQLITE_BUSY_SNAPSHOT) when another connection wrote meanwhile.
const SQLITE_BEGIN: &str = "BEGIN IMMEDIATE";

/// Runs `$body` with `$conn` bound to a held [`StoreConn`]'s connection,
/// outside any transaction, as [`with_pool!`] does for a pool. The `@`
/// arm serves [`with_tx!`] too: both wrap a connection per backend.
macro_rules! with_conn {
    ($held:expr, $conn:ident => $body:expr) => {
        $crate::store::with_conn!(@ConnInner, $held, $conn => $body)
    };
    (@$kind:ident, $held:expr, $conn:ident => $body:expr) => {
        match &mut $held.inner {
            $crate::store::$kind::Sqlite(c) => {
                let $conn: &mut sqlx::SqliteConnection = &mut **c;
                $body
            }
            $crate::store::$kind::Postgres(c) => {
                let $conn: &mut sqlx::PgConnection = &mut **c;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// [`with_conn!`] for the connection of a [`StoreTx`].
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        $crate::store::with_conn!(@TxInner, $tx, $conn => $body)
    };
}
pub(crate) use with_tx;

impl StoreTx<'_> {
    fn is_sqlite(&self) -> bool {
        matches!(self.inner, TxInner::Sqlite(_))
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// A handle to the database; cheap to clone (it wraps a pool).
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// Runs `$body` with `$pool` bound to the SQLite or the PostgreSQL pool. The
/// body is compiled once per backend, so sqlx infers each database's types.
/// `with_pool!(store, ledger: pool => …)` takes SQLite's one ledger
/// connection instead (PostgreSQL has one pool for both), for the delivery
/// ledger's hot writes.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        $crate::store::with_pool!($store, pool: $pool => $body)
    };
    ($store:expr, $sqlite:ident: $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite { $sqlite: $pool, .. } => $body,
            $crate::store::Backend::Postgres { pool: $pool, .. } => $body,
        }
    };
}
pub(crate) use with_pool;

impl Store {
    /// Opens (creating a SQLite file and its folder if needed) and migrates.
    pub async fn open(url: &DatabaseUrl) -> StoreResult<Store> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens without migrating.
    pub async fn connect(url: &DatabaseUrl) -> StoreResult<Store> {
        let backend = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    // WAL lets readers (the web, `rank`) work while a send writes.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    // Statement journals of multi-row statements in memory,
                    // not in temporary files (BENCHMARKS.md, "Collect").
                    .pragma("temp_store", "memory")
                    // For a new file (an existing one keeps its own): story
                    // rows are large, so larger pages suit the collector;
                    // the trade-off with the ledger is in BENCHMARKS.md.
                    .page_size(16384)
                    .busy_timeout(Duration::from_secs(10));
                let pool_options = |connections: u32| {
                    SqlitePoolOptions::new()
                        .max_connections(connections)
                        // A file in this process cannot drop like a network
                        // connection: no ping before every use.
                        .test_before_acquire(false)
                };
                let pool = pool_options(4)
                    .connect_with(options.clone())
                    .await
                    .map_err(|e| StoreError::Open {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                // Opened when a send first writes to it, not by every
                // command: each SQLite connection is a thread of its own.
                // The pool above has just opened the same file.
                let ledger = pool_options(1).connect_lazy_with(options);
                Backend::Sqlite { pool, ledger }
            }
            DatabaseUrl::Postgres(secret) => {
                let options = PgConnectOptions::from_str(secret.expose()).map_err(|e| StoreError::Open {
                    path: url.to_string(),
                    reason: e.to_string(),
                })?;
                let pool_options = |connections: u32| {
                    PgPoolOptions::new()
                        .max_connections(connections)
                        .acquire_timeout(Duration::from_secs(15))
                        // sqlx pings every connection it takes from the pool:
                        // a round trip before each statement, which doubled
                        // the latency of the delivery ledger's commits. Only
                        // a connection idle for a while is checked; a hot one
                        // that broke fails its statement, and the error says so.
                        .test_before_acquire(false)
                        .before_acquire(|conn, meta| {
                            Box::pin(async move {
                                if meta.idle_for >= IDLE_BEFORE_PING {
                                    sqlx::Connection::ping(conn).await?;
                                }
                                Ok(true)
                            })
                        })
                };
                // Opened when a send first records an outcome.
                let outcomes =
                    pool_options(2).connect_lazy_with(options.clone().options([("synchronous_commit", "off")]));
                let pool = pool_options(10)
                    .connect_with(options)
                    .await
                    .map_err(|e| StoreError::Open {
                        path: url.to_string(),
                        reason: e.to_string(),
                    })?;
                Backend::Postgres { pool, outcomes }
            }
        };
        Ok(Store { backend })
    }

    /// Applies the migrations for this backend (idempotent; safe from several
    /// replicas at once, sqlx takes a lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Backend::Postgres { pool, .. } => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.backend {
            Backend::Postgres { pool, .. } => Some(pool),
            Backend::Sqlite { .. } => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { ledger, .. } => ledger.close().await,
            Backend::Postgres { outcomes, .. } => outcomes.close().await,
        }
        with_pool!(self, pool => pool.close().await)
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> StoreResult<StoreTx<'static>> {
        let inner = match &self.backend {
            Backend::Sqlite { pool, .. } => TxInner::Sqlite(pool.begin_with(SQLITE_BEGIN).await?),
            Backend::Postgres { pool, .. } => TxInner::Postgres(pool.begin().await?),
        };
        Ok(StoreTx { inner })
    }

    /// A connection of the pool to run several transactions through.
    pub async fn connection(&self) -> StoreResult<StoreConn> {
        let inner = match &self.backend {
            Backend::Sqlite { pool, .. } => ConnInner::Sqlite(pool.acquire().await?),
            Backend::Postgres { pool, .. } => ConnInner::Postgres(pool.acquire().await?),
        };
        Ok(StoreConn { inner })
    }

    /// Reads a setting, or stores `init` for it when absent. Several
    /// processes may race; all end up with the first value written.
    /// Returns the value and whether this call created it.
    pub async fn setting_or_init(&self, key: &str, init: &str) -> StoreResult<(String, bool)> {
        with_pool!(self, pool => {
            let inserted = sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(init)
                .execute(pool)
                .await?
                .rows_affected();
            let value: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_one(pool)
                .await?;
            Ok((value, inserted == 1))
        })
    }

    pub async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// PostgreSQL's `synchronous_commit` on the connections that record
    /// outcomes (`None` on SQLite): what the README's crash section says.
    pub async fn outcome_commit_setting(&self) -> StoreResult<Option<String>> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(None),
            Backend::Postgres { outcomes, .. } => Ok(Some(
                sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
                    .fetch_one(outcomes)
                    .await?,
            )),
        }
    }

    /// Cheap liveness probe.
    pub async fn ping(&self) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }
}
