//! Appliance-wide key/value settings (master key check, setup token).

use rusqlite::OptionalExtension;

use crate::error::Result;
use crate::store::Store;

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
