//! SQLite storage. One file in WAL mode; one write connection owned by a writer thread, and a
//! small pool of read connections (reads run on tokio's blocking threads).
//!
//! Writes use group commit: [`Store::write`] hands its closure to the writer thread, which takes
//! every closure waiting at that moment (at most [`GROUP_LIMIT`]) and runs them in turn inside one
//! `IMMEDIATE` transaction, each inside its own `SAVEPOINT`: a closure that returns `Err` (or
//! panics) is rolled back to its savepoint alone, the others keep their changes. Then one
//! `COMMIT` (`synchronous=FULL`: one fsync for the whole group), and only after it each caller
//! gets its result, so nothing is acknowledged before it is on disk. If the commit fails, every
//! closure of the group gets the error. Under load, the closures that arrive during one commit
//! form the next group, so many concurrent writers share each fsync; a lone writer waits no
//! longer than it did with a transaction of its own.
//!
//! Migrations are the numbered SQL files in `migrations/`, embedded in the binary and applied in
//! one transaction at open; `PRAGMA user_version` records how far a database has come, and a
//! database newer than the binary is refused.

pub mod names;

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, functions::FunctionFlags};
use tokio::sync::oneshot;

/// The migrations, in order; the position (1-based) is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_foundation.sql"),
    include_str!("migrations/0002_mail.sql"),
    include_str!("migrations/0003_inbound.sql"),
    include_str!("migrations/0004_delivery.sql"),
    include_str!("migrations/0005_aliases.sql"),
    include_str!("migrations/0006_imap.sql"),
    include_str!("migrations/0007_send_rate.sql"),
    include_str!("migrations/0008_mail_core.sql"),
    include_str!("migrations/0009_credential_owner.sql"),
    include_str!("migrations/0010_role_mailboxes.sql"),
    include_str!("migrations/0011_campaigns.sql"),
    include_str!("migrations/0012_tracking.sql"),
    include_str!("migrations/0013_warmup.sql"),
    include_str!("migrations/0014_health.sql"),
];

const READERS: usize = 4;
/// The writer's page cache (negative: KiB), so the pages inserts keep touching (index leaves
/// all over the queue's indexes) stay parsed in memory instead of being read again.
const WRITER_CACHE_KIB: i64 = -32 * 1024;
/// WAL pages between automatic checkpoints: pages written many times between two checkpoints
/// (index pages, the last leaf of each table) are copied into the database file once.
const CHECKPOINT_PAGES: i64 = 8000;
/// Prepared statements kept per connection (`prepare_cached`): more than the application uses,
/// so none is parsed again (rusqlite's default of 16 is less than the writer alone needs).
const STATEMENT_CACHE: usize = 256;
/// The most write closures one transaction (one fsync) carries.
pub const GROUP_LIMIT: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("The database at {path} has schema version {found}, newer than this binary ({known}); upgrade inboxgrove")]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("The database at {path} failed its integrity check: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("Cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("Cannot start the database writer thread: {0}")]
    Writer(std::io::Error),
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// To the writer thread; it stops when the last handle is dropped.
    writer: mpsc::Sender<Box<dyn WriteJob>>,
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
        writer.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        writer.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
        // The savepoints of group commit keep copies of the pages they change: in memory, not
        // in temporary files.
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        quick_check(&writer, path)?;
        migrate(&mut writer, path)?;
        let readers = (0..READERS).map(|_| open_connection(path)).collect::<Result<Vec<_>, _>>()?;
        let (jobs, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_thread(writer, receiver))
            .map_err(StoreError::Writer)?;
        Ok(Store { inner: Arc::new(Inner { path: path.to_path_buf(), writer: jobs, readers: Mutex::new(readers) }) })
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

    /// Runs `f` on a read connection here, on the calling thread: for lookups of a few rows by
    /// index (microseconds), where handing the work to a blocking thread and back would cost
    /// more than the query. Anything that may scan many rows goes through [`Store::read`].
    pub fn read_quick<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let conn = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(conn) => conn,
            None => open_connection(&self.inner.path)?,
        };
        let result = f(&conn);
        self.inner.readers.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        result
    }

    /// Runs `f` inside a write transaction: its changes are committed (and on disk) when it
    /// returns `Ok`, and undone when it returns `Err`. It may share the transaction with other
    /// writers' closures (group commit, see the module doc), never their fate.
    pub async fn write<T, E>(&self, f: impl FnOnce(&Transaction) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = Box::new(Pending { work: Some(f), outcome: None, reply });
        if self.inner.writer.send(job).is_err() {
            return Err(E::from(writer_gone()));
        }
        match result.await {
            Ok(Ok(value)) => value,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(E::from(writer_gone())),
        }
    }

    /// Copies a consistent snapshot of the live database to `target` (which must not exist).
    pub async fn backup(&self, target: PathBuf) -> Result<(), StoreError> {
        self.read(move |conn| {
            conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])?;
            Ok::<_, StoreError>(())
        })
        .await
    }

    /// Whether the store works: the file on disk opens afresh and answers a query (pooled
    /// connections could answer from their cache after the file went bad), and the writer thread
    /// commits an empty write.
    pub async fn is_usable(&self) -> bool {
        let path = self.inner.path.clone();
        let read = run_blocking(move || {
            let conn = open_connection(&path)?;
            conn.query_row("SELECT count(*) FROM settings", [], |_| Ok(()))
        })
        .await;
        read.is_ok() && self.write(|_| Ok::<_, rusqlite::Error>(())).await.is_ok()
    }
}

/// One closure waiting for the writer thread, type-erased.
trait WriteJob: Send {
    /// Runs the closure in the open transaction; returns whether its changes are to be kept.
    fn run(&mut self, tx: &Transaction) -> bool;
    /// Hands the caller its result once the group's fate is known: `commit` is the error that
    /// stopped the group (a closure that never ran, or whose changes were lost, gets it).
    fn finish(self: Box<Self>, commit: Option<&rusqlite::Error>);
}

type Panic = Box<dyn Any + Send>;

struct Pending<F, T, E> {
    work: Option<F>,
    outcome: Option<Result<Result<T, E>, Panic>>,
    reply: oneshot::Sender<Result<Result<T, E>, Panic>>,
}

impl<F, T, E> WriteJob for Pending<F, T, E>
where
    F: FnOnce(&Transaction) -> Result<T, E> + Send,
    T: Send,
    E: From<rusqlite::Error> + Send,
{
    fn run(&mut self, tx: &Transaction) -> bool {
        let Some(work) = self.work.take() else { return false };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(tx)));
        let keep = matches!(outcome, Ok(Ok(_)));
        self.outcome = Some(outcome);
        keep
    }

    fn finish(self: Box<Self>, commit: Option<&rusqlite::Error>) {
        let result = match (self.outcome, commit) {
            (Some(Ok(Ok(value))), None) => Ok(Ok(value)),
            (Some(Ok(Err(error))), _) => Ok(Err(error)),
            (Some(Err(panic)), _) => Err(panic),
            (_, commit) => Ok(Err(E::from(commit.map_or_else(writer_gone, copy_error)))),
        };
        let _ = self.reply.send(result);
    }
}

/// The writer thread: takes the closures waiting, runs them as one group, repeats.
fn writer_thread(mut conn: Connection, jobs: mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_LIMIT {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        run_group(&mut conn, group);
    }
}

/// One transaction for the group, a savepoint per closure, one commit (see the module doc).
fn run_group(conn: &mut Connection, group: Vec<Box<dyn WriteJob>>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return group.into_iter().for_each(|job| job.finish(Some(&e))),
    };
    let mut ran = Vec::with_capacity(group.len());
    let mut broken = None;
    for mut job in group {
        if broken.is_some() {
            ran.push(job);
            continue;
        }
        if let Err(e) = statement(&tx, "SAVEPOINT job") {
            broken = Some(e);
            ran.push(job);
            continue;
        }
        let keep = job.run(&tx);
        let end = if keep { Ok(()) } else { statement(&tx, "ROLLBACK TO job") };
        if let Err(e) = end.and_then(|()| statement(&tx, "RELEASE job")) {
            broken = Some(e);
        } else if tx.is_autocommit() {
            // SQLite rolled the whole transaction back (disk full, I/O error...).
            broken = Some(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the transaction was rolled back".into()),
            ));
        }
        ran.push(job);
    }
    let failure = match broken {
        Some(e) => Some(e),
        None => tx.commit().err(),
    };
    for job in ran {
        job.finish(failure.as_ref());
    }
}

/// Runs a statement without parameters, prepared once per connection.
fn statement(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The same error again, for each caller of a failed group (rusqlite errors are not Clone).
fn copy_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => rusqlite::Error::SqliteFailure(*code, message.clone()),
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

fn writer_gone() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
        Some("the database writer has stopped".into()),
    )
}

/// Runs `f` on a blocking thread; a panic there is resumed here. A task cancelled because its
/// runtime is shutting down answers an error.
async fn run_blocking<T: Send + 'static, E: From<rusqlite::Error> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
            Some("the read was cancelled: the runtime is shutting down".into()),
        )
        .into()),
    }
}

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // display_domain(name): a stored (ASCII) domain name as people read it, for searches.
    conn.create_scalar_function(
        "display_domain",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(crate::dns::name::display_domain(&ctx.get::<String>(0)?)),
    )?;
    Ok(conn)
}

fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let result: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if result != "ok" {
        return Err(StoreError::Corrupt { path: path.to_path_buf(), detail: result });
    }
    Ok(())
}

/// Applies the pending migrations in one transaction. Foreign keys are off while they run (the
/// pragma cannot change inside a transaction), so a migration may rebuild a table that others
/// reference without cascading; `PRAGMA foreign_key_check` must then find nothing before commit.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = apply_migrations(conn, path);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

fn apply_migrations(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
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
    let broken: Option<String> =
        tx.query_row("PRAGMA foreign_key_check", [], |row| row.get::<_, String>(0)).optional()?;
    if let Some(table) = broken {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("a migration left rows in {table} pointing at missing rows"),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(store: &Store, key: String, fail: bool) -> Result<(), rusqlite::Error> {
        store
            .write(move |tx| {
                tx.execute("INSERT INTO settings (key, value) VALUES (?1, 'x')", [&key])?;
                if fail { Err(rusqlite::Error::InvalidQuery) } else { Ok(()) }
            })
            .await
    }

    fn keys(store: &Store) -> Vec<String> {
        let conn = open_connection(store.path()).expect("open");
        conn.prepare("SELECT key FROM settings WHERE key LIKE 'k%' ORDER BY key")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .expect("keys")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_commits_but_a_failing_one_is_undone_alone() {
        let (_dir, store) = open_temp();
        let writes: Vec<_> = (0..200)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { (n, put(&store, format!("k{n:03}"), n % 3 == 0).await) })
            })
            .collect();
        let mut expected = Vec::new();
        for write in writes {
            let (n, result) = write.await.expect("task");
            assert_eq!(result.is_err(), n % 3 == 0, "write {n}: {result:?}");
            if n % 3 != 0 {
                expected.push(format!("k{n:03}"));
            }
        }
        assert_eq!(keys(&store), expected, "exactly the successful writes are on disk");
    }

    #[tokio::test]
    async fn a_panicking_write_is_undone_and_the_panic_reaches_its_caller() {
        let (_dir, store) = open_temp();
        let panicking = store.clone();
        let task = tokio::spawn(async move {
            panicking
                .write(|tx| {
                    tx.execute("INSERT INTO settings (key, value) VALUES ('kpanic', 'x')", [])?;
                    panic!("boom");
                    #[allow(unreachable_code)]
                    Ok::<_, rusqlite::Error>(())
                })
                .await
        });
        assert!(task.await.expect_err("the panic is resumed").is_panic());
        put(&store, "kafter".into(), false).await.expect("the writer still works");
        assert_eq!(keys(&store), ["kafter"]);
    }

    #[tokio::test]
    async fn an_error_that_ends_the_transaction_fails_the_whole_group() {
        let (_dir, store) = open_temp();
        let result = store
            .write(|tx| {
                tx.execute("INSERT INTO settings (key, value) VALUES ('klost', 'x')", [])?;
                tx.execute_batch("ROLLBACK; BEGIN IMMEDIATE")
            })
            .await;
        assert!(result.is_err(), "a write whose transaction was lost is never reported done");
        put(&store, "knext".into(), false).await.expect("later writes work");
        assert_eq!(keys(&store), ["knext"]);
    }
}
