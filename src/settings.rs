//! Appliance-wide key/value settings (master key check, setup token).

use rusqlite::OptionalExtension;

use crate::error::Result;
use crate::store::Store;

/// How far the server's test clock was moved (seconds), when it runs with `INBOXGROVE_TEST_CLOCK=1`.
pub const TEST_CLOCK_OFFSET: &str = "test_clock_offset";

pub async fn get(store: &Store, key: &'static str) -> Result<Option<String>> {
    store
        .read(move |conn| {
            conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| row.get(0)).optional()
        })
        .await
        .map_err(Into::into)
}

pub async fn set(store: &Store, key: &'static str, value: &str) -> Result<()> {
    let value = value.to_string();
    store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        })
        .await?;
    Ok(())
}
