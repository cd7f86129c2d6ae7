//! Client disconnects under load leave no orphan: nothing is stored that is not also queued
//! for processing, no dedup claim outlives its event, no payload segment exists without a
//! committed event, and every acknowledged delivery is stored.
//!
//! Many valid `github` deliveries are sent at once while a good share of the clients give up
//! at random points: mid-body (raw TCP, the connection dropped before the body is complete),
//! after the whole body but before reading the answer (raw TCP, dropped after a short random
//! delay), and reqwest requests cut short by a random timeout. The database and the blob
//! directory are then checked against each other and against what the clients were told.
//! Finally every delivery the clients never saw acknowledged is retried, as a provider would:
//! a retry that comes back `duplicate: true` must point at a stored event, never at a claim
//! with nothing behind it.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    time::{Duration, Instant},
};

use futures::StreamExt;
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{TestApp, backend_tests};
use tokio::{io::AsyncWriteExt, net::TcpStream};

const SECRET: &str = "it-disconnect-github-secret";
/// Deliveries in the storm, and how many are in flight at once.
const DELIVERIES: usize = 600;
const IN_FLIGHT: usize = 48;
/// How long the background worker gets to process everything (a loaded 2-core CI box).
const PROCESSING_DEADLINE: Duration = Duration::from_secs(30);

/// How a client behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Sends everything and reads the answer.
    Complete,
    /// Sends the headers and `cut` bytes of the body (always fewer than all), then drops the
    /// connection after `delay`.
    DropMidBody { cut: usize, delay: Duration },
    /// Sends the whole request, then drops the connection after `delay` without reading.
    DropBeforeAnswer { delay: Duration },
    /// A reqwest request abandoned when `limit` passes (the future is dropped).
    TimeOut { limit: Duration },
}

struct Delivery {
    /// The provider's delivery id (`X-GitHub-Delivery`), the dedup key.
    id: String,
    body: String,
    signature: String,
    behaviour: Behaviour,
}

/// What a client learnt.
#[derive(Debug)]
enum Outcome {
    /// A 2xx answer with the event id and the duplicate flag.
    Acknowledged {
        event: Option<String>,
        duplicate: bool,
    },
    /// An answer that was not 2xx (or a transport error before any answer).
    Failed(String),
    /// The client gave up on purpose.
    Abandoned,
}

/// The plan for every delivery, from one seed so a failure can be reproduced.
fn plan(seed: u64) -> Vec<Delivery> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..DELIVERIES)
        .map(|n| {
            let filler: String = "x".repeat(rng.random_range(200..1500));
            let body = json!({"ref": "refs/heads/main", "n": n, "filler": filler}).to_string();
            let behaviour = match rng.random_range(0..10) {
                0..=3 => Behaviour::Complete,
                4 | 5 => Behaviour::DropMidBody {
                    cut: rng.random_range(0..body.len()),
                    delay: Duration::from_millis(rng.random_range(0..5)),
                },
                6 | 7 => Behaviour::DropBeforeAnswer {
                    delay: Duration::from_micros(rng.random_range(0..20_000)),
                },
                _ => Behaviour::TimeOut {
                    limit: Duration::from_micros(rng.random_range(500..40_000)),
                },
            };
            Delivery {
                id: format!("delivery-{seed}-{n}"),
                signature: sign(&body),
                body,
                behaviour,
            }
        })
        .collect()
}

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn request(client: &reqwest::Client, url: &str, delivery: &Delivery) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("x-hub-signature-256", &delivery.signature)
        .header("x-github-event", "push")
        .header("x-github-delivery", &delivery.id)
        .header("content-type", "application/json")
        .body(delivery.body.clone())
}

async fn complete(request: reqwest::RequestBuilder) -> Outcome {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(format!("transport: {error}")),
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Outcome::Failed(format!("{status}: {body}"));
    }
    Outcome::Acknowledged {
        event: body["id"].as_str().map(str::to_owned),
        duplicate: body["duplicate"] == true,
    }
}

/// The request head as a client writes it on the wire.
fn raw_head(app: &TestApp, path: &str, delivery: &Delivery) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nx-github-event: push\r\nx-github-delivery: {}\r\n\
         x-hub-signature-256: {}\r\n\r\n",
        app.address,
        delivery.body.len(),
        delivery.id,
        delivery.signature
    )
}

/// Writes the head and `body` over a fresh connection, waits `delay`, then drops it unread.
async fn send_and_drop(app: &TestApp, head: &str, body: &[u8], delay: Duration) {
    // A refused or reset connection is just another way for a client to vanish.
    if let Ok(mut stream) = TcpStream::connect(app.address).await {
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body).await;
        tokio::time::sleep(delay).await;
    }
}

async fn deliver(
    app: &TestApp,
    client: &reqwest::Client,
    url: &str,
    path: &str,
    delivery: &Delivery,
) -> Outcome {
    match delivery.behaviour {
        Behaviour::Complete => complete(request(client, url, delivery)).await,
        Behaviour::DropMidBody { cut, delay } => {
            let head = raw_head(app, path, delivery);
            send_and_drop(app, &head, &delivery.body.as_bytes()[..cut], delay).await;
            Outcome::Abandoned
        }
        Behaviour::DropBeforeAnswer { delay } => {
            let head = raw_head(app, path, delivery);
            send_and_drop(app, &head, delivery.body.as_bytes(), delay).await;
            Outcome::Abandoned
        }
        Behaviour::TimeOut { limit } => {
            match tokio::time::timeout(limit, complete(request(client, url, delivery))).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Abandoned,
            }
        }
    }
}

/// One stored inbound event, as the database has it.
#[derive(Debug)]
struct StoredEvent {
    id: String,
    dedup_key: String,
    status: String,
    blob_key: String,
    blob_offset: i64,
    blob_length: i64,
}

/// Runs one query on whichever engine the app uses.
macro_rules! fetch_all {
    ($database:expr, $row:ty, $sql:expr) => {
        match $database {
            Database::Sqlite(pool) => sqlx::query_as::<_, $row>($sql)
                .fetch_all(pool)
                .await
                .unwrap(),
            Database::Postgres(pool) => sqlx::query_as::<_, $row>($sql)
                .fetch_all(pool)
                .await
                .unwrap(),
        }
    };
}

/// Checks the stored state against itself and returns the events by dedup key. Every event
/// has its processing job (or was processed), every dedup claim names an event stored under
/// that key (and every event holds its claim), and every payload segment in the blob
/// directory belongs to an event, whose slice lies inside it.
async fn check_no_orphans(
    database: &Database,
    blob_root: &Path,
    seed: u64,
) -> HashMap<String, StoredEvent> {
    let rows = fetch_all!(
        database,
        (String, String, String, String, i64, i64),
        "SELECT id, dedup_key, status, blob_key, blob_offset, blob_length FROM inbound_events"
    );
    let mut events = HashMap::new();
    for (id, dedup_key, status, blob_key, blob_offset, blob_length) in rows {
        let event = StoredEvent {
            id,
            dedup_key: dedup_key.clone(),
            status,
            blob_key,
            blob_offset,
            blob_length,
        };
        if let Some(first) = events.insert(dedup_key, event) {
            panic!(
                "seed {seed}: delivery {} stored twice (first as {})",
                first.dedup_key, first.id
            );
        }
    }
    let by_id: HashMap<&str, &StoredEvent> = events.values().map(|e| (e.id.as_str(), e)).collect();

    let jobs = fetch_all!(
        database,
        (String,),
        "SELECT CAST(payload AS TEXT) FROM jobs WHERE kind = 'inbound.process'"
    );
    let queued: HashSet<String> = jobs
        .into_iter()
        .map(|(payload,)| {
            let payload: Value = serde_json::from_str(&payload).unwrap();
            payload["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    for event in events.values() {
        assert!(
            event.status == "processed" || queued.contains(&event.id),
            "seed {seed}: event {} ({}) is stored but neither queued nor processed",
            event.id,
            event.status
        );
    }
    for job in &queued {
        assert!(
            by_id.contains_key(job.as_str()),
            "seed {seed}: job for event {job}, which is not stored"
        );
    }

    let claims = fetch_all!(
        database,
        (String, String),
        "SELECT dedup_key, event_id FROM inbound_dedup"
    );
    let claimed: HashSet<&str> = claims.iter().map(|(key, _)| key.as_str()).collect();
    for (key, event_id) in &claims {
        let event = by_id.get(event_id.as_str()).unwrap_or_else(|| {
            panic!("seed {seed}: delivery {key} is claimed by event {event_id}, which was never stored: its retry would be a duplicate of nothing")
        });
        assert_eq!(
            &event.dedup_key, key,
            "seed {seed}: claim and event disagree"
        );
    }
    for key in events.keys() {
        assert!(
            claimed.contains(key.as_str()),
            "seed {seed}: event for {key} without its dedup claim"
        );
    }

    let mut files = HashMap::new();
    list_files(blob_root, blob_root, &mut files);
    let referenced: HashSet<&str> = events.values().map(|e| e.blob_key.as_str()).collect();
    for file in files.keys() {
        assert!(
            referenced.contains(file.as_str()),
            "seed {seed}: blob {file} belongs to no stored event"
        );
    }
    for event in events.values() {
        let size = files.get(&event.blob_key).unwrap_or_else(|| {
            panic!(
                "seed {seed}: event {} points at missing blob {}",
                event.id, event.blob_key
            )
        });
        let end = u64::try_from(event.blob_offset + event.blob_length).unwrap();
        assert!(
            end <= *size,
            "seed {seed}: event {} reads past its segment",
            event.id
        );
    }
    events
}

/// Waits until the server holds no delivery it has yet to commit. A client that gave up does
/// not cancel its delivery: the writer may still be committing it when every client future has
/// finished, and the checks must see the state the server settles in, not a moment of it. The
/// gauge has to read zero twice in a row, some time apart, so a handler that was still
/// verifying a body when the first read came is caught by the second.
async fn settle(app: &TestApp, seed: u64) {
    let deadline = Instant::now() + PROCESSING_DEADLINE;
    let mut idle_reads = 0;
    while idle_reads < 2 {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the ingest writer never went idle"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let metrics = app.send(Method::GET, "/metrics", None, None).await;
        let pending = metrics
            .text()
            .lines()
            .find_map(|line| line.strip_prefix("switchyard_inbound_writer_pending "))
            .map(|value| value.trim().parse::<f64>().unwrap())
            .unwrap_or(0.0);
        idle_reads = if pending == 0.0 { idle_reads + 1 } else { 0 };
    }
}

/// Every file under `dir`, as its key relative to `root` (`/`-separated), with its size.
fn list_files(root: &Path, dir: &Path, files: &mut HashMap<String, u64>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            list_files(root, &path, files);
        } else {
            let key = path
                .strip_prefix(root)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(key, entry.metadata().unwrap().len());
        }
    }
}

backend_tests! { TestApp;
    async fn client_disconnects_under_load_leave_no_orphan(app) {
        disconnect_storm(&app).await;
    }
}

async fn disconnect_storm(app: &TestApp) {
    let seed: u64 = rand::random();
    let tenant = app.create_tenant("Acme").await;
    let (_, key) = app.create_api_key(&tenant, "write").await;
    let source = json!({"name": "github", "scheme": "github", "secret": SECRET});
    let created = app.post("/v1/sources", &key, &source).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let url = created.json()["ingest_url"].as_str().unwrap().to_owned();
    let path = url::Url::parse(&url).unwrap().path().to_owned();
    let deliveries = plan(seed);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .unwrap();

    let outcomes: Vec<Outcome> = futures::stream::iter(&deliveries)
        .map(|delivery| deliver(app, &client, &url, &path, delivery))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    settle(app, seed).await;

    let database = Database::connect(app.database().url(), &DatabaseOptions::default())
        .await
        .unwrap();
    let blob_root = app.database().dir().join("blobs");
    let events = check_no_orphans(&database, &blob_root, seed).await;
    check_answers(&deliveries, &outcomes, &events, seed);

    // The provider retries everything it did not see acknowledged.
    let unacknowledged: Vec<&Delivery> = deliveries
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| !matches!(outcome, Outcome::Acknowledged { .. }))
        .map(|(delivery, _)| delivery)
        .collect();
    let retries: Vec<Outcome> = futures::stream::iter(&unacknowledged)
        .map(|delivery| complete(request(&client, &url, delivery)))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    for (delivery, retry) in unacknowledged.iter().zip(retries) {
        let Outcome::Acknowledged { event, duplicate } = retry else {
            panic!(
                "seed {seed}: the retry of {} failed: {retry:?}",
                delivery.id
            );
        };
        match events.get(&delivery.id) {
            Some(stored) => {
                assert!(duplicate, "seed {seed}: {} stored twice", delivery.id);
                assert_eq!(
                    event.as_deref(),
                    Some(stored.id.as_str()),
                    "seed {seed}: the duplicate of {} names another event",
                    delivery.id
                );
            }
            None => assert!(
                !duplicate,
                "seed {seed}: the retry of {} is a duplicate of nothing stored",
                delivery.id
            ),
        }
    }
    let events = check_no_orphans(&database, &blob_root, seed).await;
    assert_eq!(
        events.len(),
        DELIVERIES,
        "seed {seed}: every delivery is stored once"
    );

    // Everything stored gets processed, and what clients abandoned reads back byte for byte.
    let started = Instant::now();
    loop {
        let pending = fetch_all!(
            &database,
            (i64,),
            "SELECT COUNT(*) FROM inbound_events WHERE status <> 'processed'"
        );
        if pending[0].0 == 0 {
            break;
        }
        assert!(
            started.elapsed() < PROCESSING_DEADLINE,
            "seed {seed}: {} events still unprocessed",
            pending[0].0
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reads = unacknowledged.iter().map(|&delivery| {
        let path = format!("/v1/inbound-events/{}/payload", events[&delivery.id].id);
        let key = &key;
        async move { (delivery, app.get(&path, key).await) }
    });
    let reads: Vec<_> = futures::stream::iter(reads)
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for (delivery, payload) in reads {
        assert_eq!(payload.status, 200, "{}", payload.text());
        assert_eq!(
            payload.text(),
            delivery.body,
            "seed {seed}: payload of {}",
            delivery.id
        );
    }
    database.close().await;
}

/// What the clients were told (or not) against what is stored after the storm.
fn check_answers(
    deliveries: &[Delivery],
    outcomes: &[Outcome],
    events: &HashMap<String, StoredEvent>,
    seed: u64,
) {
    let mut abandoned_but_stored = 0;
    for (delivery, outcome) in deliveries.iter().zip(outcomes) {
        let stored = events.get(&delivery.id);
        match outcome {
            Outcome::Acknowledged { event, duplicate } => {
                assert!(
                    !duplicate,
                    "seed {seed}: {} is new, yet a duplicate",
                    delivery.id
                );
                let stored = stored.unwrap_or_else(|| {
                    panic!(
                        "seed {seed}: {} was acknowledged but is not stored",
                        delivery.id
                    )
                });
                assert_eq!(
                    event.as_deref(),
                    Some(stored.id.as_str()),
                    "seed {seed}: {} acknowledged with another event id",
                    delivery.id
                );
            }
            Outcome::Failed(error) => panic!(
                "seed {seed}: {} ({:?}) failed: {error}",
                delivery.id, delivery.behaviour
            ),
            Outcome::Abandoned => {
                if matches!(delivery.behaviour, Behaviour::DropMidBody { .. }) {
                    assert!(
                        stored.is_none(),
                        "seed {seed}: the truncated delivery {} was stored",
                        delivery.id
                    );
                } else if stored.is_some() {
                    abandoned_but_stored += 1;
                }
            }
        }
    }
    // Otherwise the storm proved nothing about disconnects during the durable write.
    assert!(
        abandoned_but_stored > 0,
        "seed {seed}: no abandoned delivery was stored; the disconnects all came too early"
    );
}
