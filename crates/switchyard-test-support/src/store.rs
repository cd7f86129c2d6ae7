//! A migrated store on a fresh database.

use std::sync::Arc;

use switchyard_store::{Database, DatabaseOptions, Store};

use crate::{BackendFixture, TestBackend, TestDatabase};

/// A store ready for a test, with the database it lives in.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub database: TestDatabase,
}

impl TestStore {
    pub async fn start(backend: TestBackend) -> Option<Self> {
        let database = TestDatabase::create(backend).await?;
        let pool = Database::connect(database.url(), &DatabaseOptions::default())
            .await
            .expect("connect to the test database");
        pool.migrate().await.expect("migrate the test database");
        Some(Self {
            store: switchyard_store::open(pool),
            database,
        })
    }
}

impl std::ops::Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

impl BackendFixture for TestStore {
    async fn start(backend: TestBackend) -> Option<Self> {
        TestStore::start(backend).await
    }
}
