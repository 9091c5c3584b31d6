//! `App`: the state built once at start and handed to every part (store, config, clock, keys).

use std::path::PathBuf;
use std::sync::Arc;

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
        Ok(App {
            config: Arc::new(config),
            store,
            clock: Clock::default(),
            keys: Arc::new(keys),
        })
    }
}
