//! One fresh database per test.

use std::path::{Path, PathBuf};

use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test. Its temporary directory doubles as the server's data
/// directory. A PostgreSQL database is dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: TestBackend,
    dir: TempDir,
    postgres: Option<PostgresDatabase>,
}

#[derive(Debug)]
struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh database on `backend`, or `None` when PostgreSQL is not configured locally.
    pub async fn create(backend: TestBackend) -> Option<Self> {
        match backend {
            TestBackend::Sqlite => Some(Self::sqlite()),
            TestBackend::Postgres => Self::postgres().await,
        }
    }

    /// A SQLite file in a new temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("switchyard.db").display());
        Self {
            url,
            backend: TestBackend::Sqlite,
            dir,
            postgres: None,
        }
    }

    /// A new, empty database on the server named by `SWITCHYARD_TEST_DATABASE_URL`.
    pub async fn postgres() -> Option<Self> {
        let admin_url = crate::required_test_server("SWITCHYARD_TEST_DATABASE_URL")?;
        let name = format!("sy_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("cannot reach PostgreSQL at SWITCHYARD_TEST_DATABASE_URL: {e}")
        });
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create the test database");
        let url = database_url_with_name(&admin_url, &name);
        Some(Self {
            url,
            backend: TestBackend::Postgres,
            dir: tempfile::tempdir().expect("create a temporary directory"),
            postgres: Some(PostgresDatabase { admin_url, name }),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> TestBackend {
        self.backend
    }

    /// A temporary directory that lives as long as the database.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside [`TestDatabase::dir`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(postgres) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on async work: use a thread
        // with a runtime of its own. FORCE ends the connections the test's pool still holds.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&postgres.admin_url).await {
                    let statement = format!(
                        r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
                        postgres.name
                    );
                    let _ = admin.execute(statement.as_str()).await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// `postgres://user@host:5432/admin?opts` with the database name replaced.
fn database_url_with_name(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url_with_name;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(
            database_url_with_name("postgres://root@127.0.0.1:5432/test", "x"),
            "postgres://root@127.0.0.1:5432/x"
        );
        assert_eq!(
            database_url_with_name("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            database_url_with_name("postgres://h", "x"),
            "postgres://h/x"
        );
    }
}
