//! Refresh locks: one holder per credential, in one process and (on PostgreSQL) across
//! processes, here two pools on one database. Exclusion is checked by the order of a shared
//! log, never by timing: the sleeps only give a broken lock the chance to let someone in.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_connectors::store::{RefreshGuard, RefreshLocks};
use switchyard_store::Database;
use switchyard_test_support::backend_tests;
use tokio::sync::oneshot;

use crate::support::Fixture;

type Log = Arc<Mutex<Vec<&'static str>>>;

fn push(log: &Log, entry: &'static str) {
    log.lock().unwrap().push(entry);
}

fn entries(log: &Log) -> Vec<&'static str> {
    log.lock().unwrap().clone()
}

/// Fails the test rather than hang it when a lock is never granted.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}

/// A second pool on the same database: another "process" as far as locks go.
async fn second_process(database: &Database) -> Database {
    match database {
        Database::Postgres(pool) => {
            let options = (*pool.connect_options()).clone();
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .unwrap();
            Database::Postgres(pool)
        }
        Database::Sqlite(_) => panic!("SQLite is one process"),
    }
}

/// `first` takes the lock of (tenant, secret) and holds it while `second` tries to take the
/// same lock; returns the log of who was in when. With `release`, the first holder releases
/// explicitly, otherwise by dropping its guard.
async fn contend(first: RefreshLocks, second: RefreshLocks, release: bool) -> Vec<&'static str> {
    let log: Log = Arc::default();
    let (held_tx, held_rx) = oneshot::channel();
    let holder = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let guard = first.lock("ten_a", "conn-github-oauth").await.unwrap();
            push(&log, "first in");
            held_tx.send(()).unwrap();
            // Room for a broken lock to let the second one in meanwhile.
            tokio::time::sleep(Duration::from_millis(300)).await;
            push(&log, "first out");
            if release {
                guard.release().await.unwrap();
            } else {
                drop(guard);
            }
        })
    };
    let waiter = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            held_rx.await.unwrap();
            let guard = second.lock("ten_a", "conn-github-oauth").await.unwrap();
            push(&log, "second in");
            guard.release().await.unwrap();
        })
    };
    within("the holder", holder).await.unwrap();
    within("the waiter", waiter).await.unwrap();
    entries(&log)
}

/// Holds `key`'s lock on `holding` and checks that `other` takes another key meanwhile.
async fn other_keys_are_free(holding: &RefreshLocks, other: &RefreshLocks) {
    let held: RefreshGuard = holding.lock("ten_a", "secret-1").await.unwrap();
    let free = within("another secret's lock", other.lock("ten_a", "secret-2"))
        .await
        .unwrap();
    let other_tenant = within("another tenant's lock", other.lock("ten_b", "secret-1"))
        .await
        .unwrap();
    free.release().await.unwrap();
    other_tenant.release().await.unwrap();
    held.release().await.unwrap();
}

backend_tests! { Fixture;
    async fn one_refresh_at_a_time_in_a_process(fx) {
        let locks = RefreshLocks::new(fx.database.clone());
        let order = contend(locks.clone(), locks.clone(), true).await;
        assert_eq!(order, ["first in", "first out", "second in"]);
        let order = contend(locks.clone(), locks.clone(), false).await;
        assert_eq!(order, ["first in", "first out", "second in"], "a dropped guard releases");
        other_keys_are_free(&locks, &locks).await;
        // Entries of keys no one holds or waits for are gone.
        assert_eq!(locks.local_entries(), 0);
    }

    async fn many_tasks_take_turns(fx) {
        let locks = RefreshLocks::new(fx.database.clone());
        let inside = Arc::new(Mutex::new(0_u32));
        let most = Arc::new(Mutex::new(0_u32));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (locks, inside, most) = (locks.clone(), Arc::clone(&inside), Arc::clone(&most));
                tokio::spawn(async move {
                    let guard = locks.lock("ten_a", "shared").await.unwrap();
                    {
                        let mut inside = inside.lock().unwrap();
                        *inside += 1;
                        let mut most = most.lock().unwrap();
                        *most = (*most).max(*inside);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    *inside.lock().unwrap() -= 1;
                    guard.release().await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            within("a task", task).await.unwrap();
        }
        assert_eq!(*most.lock().unwrap(), 1);
        assert_eq!(locks.local_entries(), 0);
    }

    async fn a_cancelled_waiter_leaves_no_entry(fx) {
        let locks = RefreshLocks::new(fx.database.clone());
        let held = locks.lock("ten_a", "s").await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(50), locks.lock("ten_a", "s")).await;
        assert!(waiting.is_err(), "the lock is held");
        held.release().await.unwrap();
        assert_eq!(locks.local_entries(), 0);
    }

    async fn one_refresh_at_a_time_across_processes(fx) {
        if matches!(fx.database, Database::Sqlite(_)) {
            // One process per SQLite database: the in-process lock is the lock (tested above).
            return;
        }
        let other = second_process(&fx.database).await;
        let first = RefreshLocks::new(fx.database.clone());
        let second = RefreshLocks::new(other.clone());
        let order = contend(first.clone(), second.clone(), true).await;
        assert_eq!(order, ["first in", "first out", "second in"]);
        let order = contend(second.clone(), first.clone(), false).await;
        assert_eq!(order, ["first in", "first out", "second in"], "a dropped guard releases");
        other_keys_are_free(&first, &second).await;
        other.close().await;
    }
}
