//! `App`: the state built once at start and handed to every part (store, config, clock, keys).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::error::Result;
use crate::store::Store;

const DATABASE_FILE: &str = "inboxgrove.db";
const MASTER_KEY_CHECK: &str = "master_key_check";

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Clock,
    pub keys: Arc<MasterKey>,
    /// The one configurable DNS resolver (`[dns] nameservers`).
    pub resolver: crate::dns::resolver::Resolver,
    /// Wakes the delivery workers when mail is queued or the clock moves.
    pub wakeup: Arc<Notify>,
    /// The campaign engine: wakes it (a campaign started, the clock moved) and tells when its
    /// last tick finished.
    pub campaigns: Arc<crate::campaign::engine::Signal>,
    /// The warmup engine's signal, the same kind.
    pub warmup: Arc<crate::campaign::engine::Signal>,
    /// Tells IMAP sessions (IDLE) that a mailbox's mail changed; notify after the commit.
    pub mail_changes: crate::mailstore::imap_ops::MailChanges,
    /// Failed mailbox sign-ins, which slow the next attempts (`mailbox::login`).
    pub logins: Arc<crate::mailbox::login::Penalties>,
    /// Becomes true when the appliance is shutting down.
    pub shutdown: watch::Receiver<bool>,
    shutdown_sender: Arc<watch::Sender<bool>>,
}

impl App {
    /// Opens the data dir: the database (migrated and checked) and the master key, refusing a key
    /// that does not match the database.
    pub async fn open(config: Config) -> Result<App> {
        let data_dir: PathBuf = config.data_dir.clone();
        let store = Store::open(&data_dir.join(DATABASE_FILE))?;
        let check = crate::settings::get(&store, MASTER_KEY_CHECK).await?;
        let env_key = std::env::var("INBOXGROVE_MASTER_KEY").ok();
        let keys = MasterKey::load(&data_dir, env_key.as_deref(), check.is_none())?;
        match check {
            Some(value) => keys.verify_check_value(&value)?,
            None => crate::settings::set(&store, MASTER_KEY_CHECK, &keys.check_value()).await?,
        }
        let (shutdown_sender, shutdown) = watch::channel(false);
        Ok(App {
            resolver: crate::dns::resolver::Resolver::from_config(&config.dns),
            config: Arc::new(config),
            store,
            clock: Clock::default(),
            keys: Arc::new(keys),
            wakeup: Arc::new(Notify::new()),
            campaigns: Default::default(),
            warmup: Default::default(),
            mail_changes: Default::default(),
            logins: Default::default(),
            shutdown,
            shutdown_sender: Arc::new(shutdown_sender),
        })
    }

    /// Tells every task to stop.
    pub fn begin_shutdown(&self) {
        self.shutdown_sender.send_replace(true);
        self.wakeup.notify_waiters();
    }

    /// Resolves once shutdown has begun.
    pub async fn shutting_down(&self) {
        let mut shutdown = self.shutdown.clone();
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    }

    /// Runs a long-lived task; an error or panic is logged instead of vanishing silently.
    pub fn spawn_supervised<F>(&self, name: &'static str, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        tokio::spawn(async move {
            match tokio::spawn(task).await {
                Ok(Ok(())) => tracing::debug!(task = name, "task finished"),
                Ok(Err(e)) => {
                    tracing::error!(task = name, error = %format!("{e:#}"), "task failed")
                }
                Err(e) => tracing::error!(task = name, error = %e, "task panicked"),
            }
        })
    }
}
