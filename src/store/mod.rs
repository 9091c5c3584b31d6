//! SQLite storage. One file in WAL mode; one write connection behind a mutex (writes are
//! serialized, every write is one `IMMEDIATE` transaction committed with `synchronous=FULL`) and a
//! small pool of read connections. Blocking SQLite work runs on tokio's blocking threads.
//!
//! Migrations are the numbered SQL files in `migrations/`, embedded in the binary and applied in
//! one transaction at open; `PRAGMA user_version` records how far a database has come, and a
//! database newer than the binary is refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

/// The migrations, in order; the position (1-based) is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_foundation.sql"),
    include_str!("migrations/0002_mail.sql"),
    include_str!("migrations/0003_inbound.sql"),
];

const READERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database at {path} has schema version {found}, newer than this binary ({known}); upgrade inboxgrove")]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("the database at {path} failed its integrity check: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database file, applies migrations and checks integrity.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir { path: dir.to_path_buf(), source })?;
        }
        let mut writer = open_connection(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        quick_check(&writer, path)?;
        migrate(&mut writer, path)?;
        let readers = (0..READERS).map(|_| open_connection(path)).collect::<Result<Vec<_>, _>>()?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(readers),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read connection.
    pub async fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let conn = inner.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match conn {
                Some(conn) => conn,
                None => open_connection(&inner.path)?,
            };
            let result = f(&conn);
            inner.readers.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            result
        })
        .await
    }

    /// Runs `f` inside one write transaction, committed when `f` returns `Ok`.
    pub async fn write<T, E>(&self, f: impl FnOnce(&Transaction) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// Copies a consistent snapshot of the live database to `target` (which must not exist).
    pub async fn backup(&self, target: PathBuf) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])?;
            Ok::<_, StoreError>(())
        })
        .await
    }

    /// Whether the store answers a trivial query.
    pub async fn is_usable(&self) -> bool {
        self.read(|conn| conn.query_row("SELECT count(*) FROM settings", [], |_| Ok(()))).await.is_ok()
    }
}

async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let result: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if result != "ok" {
        return Err(StoreError::Corrupt { path: path.to_path_buf(), detail: result });
    }
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { path: path.to_path_buf(), found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if version > found {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
pub(crate) fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("inboxgrove.db")).expect("open store");
    (dir, store)
}
