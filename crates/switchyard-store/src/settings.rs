//! Platform-wide settings that must agree across processes (for example the admin token hash).

use crate::StoreError;

/// The `platform_settings` table: a small key-value map.
#[async_trait::async_trait]
pub trait SettingsStore: Send + Sync {
    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Sets `name`, replacing any value.
    async fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError>;

    /// Sets `name` only when it has no value yet; returns whether this call set it. Two
    /// processes racing to initialise a value agree on one winner.
    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> Result<bool, StoreError>;
}
