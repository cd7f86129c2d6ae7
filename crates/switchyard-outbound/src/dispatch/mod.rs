//! The dispatcher: claims due deliveries with a lease and sends them, isolating endpoints from
//! each other.
//!
//! Isolation, per process:
//! - **In-flight cap per endpoint** (`per_endpoint_concurrency`): a hanging endpoint occupies
//!   at most that many requests; claimed deliveries beyond it wait in a small local queue, and
//!   an endpoint with a full queue is left out of claims, so other endpoints' work keeps coming.
//! - **Rate limit** (GCRA, the endpoint's `rate_limit` per second): deliveries wait for their
//!   slot; one that would wait longer than `rate_limit_wait` is postponed, not failed.
//! - **Circuit breaker** per endpoint (on by default): while open, the endpoint is left out of
//!   claims and deliveries that were already claimed are postponed to the next probe; a
//!   half-open breaker lets one probe through.
//! - **Throttling**: 429/502/503/504 pause the endpoint for their `Retry-After`.
//! - **Ordering by key** is in the claim statement (see [`claim`]).
//!
//! Wake-ups: LISTEN on PostgreSQL, an in-process channel on SQLite, and a poll as a safety net.
//! Outcomes go to one recorder task that writes them in batches ([`record`]).

mod bodies;
mod claim;
mod policy;
mod record;
mod send;
mod signer;

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use switchyard_audit::Actor;
use switchyard_http::{
    BreakerConfig, BreakerRegistry, BreakerState, GuardedClient, JitteredSchedule, Rate,
    RateLimitError, RateLimiter, RetryAfterWindow, SsrfPolicy,
};
use switchyard_store::Database;
use switchyard_vault::{AuditContext, AuditedVault};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

pub use bodies::{BLOB_KIND, ResponseBodies};
pub use record::{DELIVERY_EXHAUSTED, ENDPOINT_DISABLED, ENDPOINT_RECOVERED};
pub use send::USER_AGENT;

use crate::clock::{Clock, SystemClock};
use crate::endpoints::{EndpointRecord, Endpoints, EndpointsConfig, load_records};
use crate::error::{OutboundError, Result};
use crate::metrics as m;
use claim::{ClaimParams, ClaimedRow, EventBody};
use policy::decide;
use record::{AttemptRecord, Record, Recorder};
use signer::Signers;

/// How the dispatcher behaves. `Default` is the production setting.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Claimed deliveries at most (in flight plus waiting for their endpoint's slot).
    pub concurrency: usize,
    /// Requests in flight to one endpoint at most.
    pub per_endpoint_concurrency: usize,
    /// Per request, connect to end of the (capped) response body.
    pub timeout: Duration,
    /// Delays before each attempt (the first is the wait before the first attempt), with
    /// jitter. Endpoints may have their own steps; they get this schedule's jitter.
    pub schedule: JitteredSchedule,
    /// Clamp for `Retry-After`.
    pub retry_after: RetryAfterWindow,
    /// Circuit breaker per endpoint; `None` turns breakers off.
    pub breaker: Option<BreakerConfig>,
    /// An endpoint failing without a single success for this long is disabled.
    pub disable_after: Duration,
    /// Longest wait for a rate-limit slot before the delivery is postponed instead.
    pub rate_limit_wait: Duration,
    /// Added to a claim's lease beyond two timeouts and the rate-limit wait, for recording.
    /// After a crash, the deliveries the process held are sent again once it has passed.
    pub lease_margin: Duration,
    /// Idle poll: the longest a due delivery can wait when no wake-up arrives.
    pub poll_interval: Duration,
    /// Wake-ups within this window are served by one claim.
    pub claim_coalesce: Duration,
    /// Which destinations may be called (tests allow 127.0.0.1 and `http`).
    pub ssrf: SsrfPolicy,
    /// Bytes of each response body kept.
    pub max_response_body: usize,
    /// Outcomes written per transaction at most.
    pub record_batch: usize,
    /// Lease reaping, rotation expiry, metrics.
    pub housekeeping_interval: Duration,
    /// Ranks of the per-endpoint backlog gauge: the N largest backlogs (0: none).
    pub backlog_top: usize,
    /// Seed for the retry jitter (tests); `None`: from the OS.
    pub rng_seed: Option<u64>,
    /// Lease owner name; `None`: generated.
    pub owner: Option<String>,
    /// How long resolved signing secrets are reused.
    pub signer_ttl: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            concurrency: 256,
            per_endpoint_concurrency: 32,
            timeout: Duration::from_secs(15),
            schedule: JitteredSchedule::outbound_default(),
            retry_after: RetryAfterWindow::default(),
            breaker: Some(BreakerConfig::default()),
            disable_after: Duration::from_secs(5 * 24 * 60 * 60),
            rate_limit_wait: Duration::from_secs(5),
            lease_margin: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            claim_coalesce: Duration::from_millis(5),
            ssrf: SsrfPolicy::strict(),
            max_response_body: 64 * 1024,
            record_batch: 512,
            housekeeping_interval: Duration::from_secs(15),
            backlog_top: 10,
            rng_seed: None,
            owner: None,
            signer_ttl: Duration::from_secs(300),
            clock: Arc::new(SystemClock),
        }
    }
}

impl DispatcherConfig {
    /// The lease: long enough for a rate-limit wait, a request and recording, with margin.
    fn lease(&self) -> Duration {
        self.timeout
            .saturating_mul(2)
            .saturating_add(self.rate_limit_wait)
            .saturating_add(self.lease_margin)
    }
}

/// A claimed delivery with what sending it needs.
struct Job {
    claimed: ClaimedRow,
    endpoint: Arc<EndpointRecord>,
    event: Arc<EventBody>,
}

#[derive(Default)]
struct Slot {
    in_flight: usize,
    queue: VecDeque<Job>,
    throttled_until: Option<OffsetDateTime>,
}

impl Slot {
    fn held(&self) -> usize {
        self.in_flight + self.queue.len()
    }
}

#[derive(Default)]
struct Local {
    slots: HashMap<String, Slot>,
    /// Claimed and not finished, over all endpoints.
    total: usize,
    /// Endpoints whose breaker was last seen not closed.
    tripped: HashSet<String>,
}

struct Shared {
    database: Database,
    config: DispatcherConfig,
    owner: String,
    client: GuardedClient,
    breakers: Option<BreakerRegistry>,
    limiter: RateLimiter,
    rng: Mutex<StdRng>,
    signers: Signers,
    endpoints: Endpoints,
    /// Opens event bodies at claim and seals the operational events the recorder publishes.
    vault: AuditedVault,
    audit: AuditContext,
    bodies: Option<ResponseBodies>,
    wake: Arc<Notify>,
    local: Mutex<Local>,
    tracker: TaskTracker,
    stopping: AtomicBool,
    recorder: mpsc::Sender<Record>,
    recorder_rx: Mutex<Option<mpsc::Receiver<Record>>>,
}

/// The delivery engine of one process. Cheap to clone; [`Dispatcher::start`] runs it.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("owner", &self.shared.owner)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// # Errors
    /// [`OutboundError::Client`] when the HTTP client cannot be built.
    pub fn new(database: Database, vault: AuditedVault, config: DispatcherConfig) -> Result<Self> {
        Self::build(database, vault, config, None)
    }

    /// As [`Dispatcher::new`], keeping the first 64 KiB of every response body in the blob
    /// store.
    ///
    /// # Errors
    /// As [`Dispatcher::new`].
    pub fn with_response_bodies(
        database: Database,
        vault: AuditedVault,
        config: DispatcherConfig,
        bodies: ResponseBodies,
    ) -> Result<Self> {
        Self::build(database, vault, config, Some(bodies))
    }

    fn build(
        database: Database,
        vault: AuditedVault,
        config: DispatcherConfig,
        bodies: Option<ResponseBodies>,
    ) -> Result<Self> {
        let idle = config.concurrency.max(1);
        let client = GuardedClient::builder(config.ssrf.clone())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(USER_AGENT)
            // Keep as many idle connections as may be busy, so a burst does not end in a
            // storm of reconnects.
            .customize(move |builder| builder.pool_max_idle_per_host(idle))
            .build()
            .map_err(OutboundError::Client)?;
        let clock: Arc<dyn switchyard_http::Clock> = clock_for_breakers(&config.clock);
        let breakers = config
            .breaker
            .map(|breaker| BreakerRegistry::new(breaker, clock));
        let owner = config
            .owner
            .clone()
            .unwrap_or_else(|| format!("dsp_{}", switchyard_core::DeliveryId::generate()));
        let rng = match config.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let audit = AuditContext::new(Actor::Internal {
            component: "outbound.dispatcher".to_owned(),
            run_id: None,
        });
        let (recorder, recorder_rx) = mpsc::channel(config.record_batch.max(1) * 4);
        let unlimited = Rate::per_second(NonZeroU32::MAX);
        Ok(Self {
            shared: Arc::new(Shared {
                signers: Signers::new(vault.clone(), audit.clone(), config.signer_ttl),
                endpoints: Endpoints::new(
                    database.clone(),
                    vault.clone(),
                    EndpointsConfig::default(),
                ),
                vault,
                database,
                owner,
                client,
                breakers,
                limiter: RateLimiter::in_memory(unlimited),
                rng: Mutex::new(rng),
                audit,
                bodies,
                wake: Arc::new(Notify::new()),
                local: Mutex::new(Local::default()),
                tracker: TaskTracker::new(),
                stopping: AtomicBool::new(false),
                recorder,
                recorder_rx: Mutex::new(Some(recorder_rx)),
                config,
            }),
        })
    }

    /// The lease owner name of this dispatcher.
    pub fn owner(&self) -> &str {
        &self.shared.owner
    }

    /// Claims at once (after a change the dispatcher cannot see, or after a clock jump in tests).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// The state of an endpoint's breaker in this process (`None`: never called, or off).
    pub fn breaker_state(&self, endpoint: switchyard_core::EndpointId) -> Option<BreakerState> {
        self.shared.breakers.as_ref()?.state(&endpoint.to_string())
    }

    /// Runs until `cancel` fires, then stops claiming, lets requests in flight finish (up to
    /// the timeout), writes their outcomes and gives back what it still holds.
    pub fn start(&self, cancel: CancellationToken) -> JoinHandle<()> {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move { shared.run(cancel).await })
    }
}

/// The breakers read time from the same clock as the retry schedule.
fn clock_for_breakers(clock: &Arc<dyn Clock>) -> Arc<dyn switchyard_http::Clock> {
    #[derive(Debug)]
    struct Adapter(Arc<dyn Clock>);
    impl switchyard_http::Clock for Adapter {
        fn now(&self) -> std::time::Instant {
            switchyard_http::Clock::now(self.0.as_ref())
        }
    }
    Arc::new(Adapter(Arc::clone(clock)))
}

fn after(now: OffsetDateTime, wait: Duration) -> OffsetDateTime {
    now.checked_add(time::Duration::try_from(wait).unwrap_or(time::Duration::MAX))
        .unwrap_or(now)
}

impl Shared {
    fn local(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> OffsetDateTime {
        self.config.clock.now_utc()
    }

    async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let receiver = self
            .recorder_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(receiver) = receiver else {
            warn!("dispatcher started twice; ignoring the second start");
            return;
        };
        let recorder = Recorder {
            database: self.database.clone(),
            vault: self.vault.clone(),
            wake: Arc::clone(&self.wake),
            owner: self.owner.clone(),
            disable_after: self.config.disable_after,
        };
        let recorder = tokio::spawn(recorder.run(receiver, self.config.record_batch.max(1)));
        let listener = tokio::spawn(Arc::clone(&self).listen(cancel.clone()));
        let housekeeping = tokio::spawn(Arc::clone(&self).housekeeping(cancel.clone()));

        self.claim_loop(&cancel).await;

        self.stopping.store(true, AtomicOrdering::SeqCst);
        self.tracker.close();
        let drain = self.config.timeout.saturating_add(Duration::from_secs(5));
        if tokio::time::timeout(drain, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("requests still in flight at shutdown; their deliveries will be retried");
        }
        let _ = self.recorder.send(Record::Shutdown).await;
        let _ = recorder.await;
        listener.abort();
        housekeeping.abort();
        match claim::release_owner(&self.database, &self.owner).await {
            Ok(0) => {}
            Ok(n) => debug!(released = n, "gave back claimed deliveries at shutdown"),
            Err(e) => {
                warn!(error = %e, "could not give back claimed deliveries; leases will expire")
            }
        }
        let mut local = self.local();
        local.slots.clear();
        local.total = 0;
    }

    async fn claim_loop(self: &Arc<Self>, cancel: &CancellationToken) {
        let mut last_claim: Option<Instant> = None;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            if let Some(at) = last_claim {
                let since = at.elapsed();
                if since < self.config.claim_coalesce {
                    tokio::time::sleep(self.config.claim_coalesce - since).await;
                }
            }
            last_claim = Some(Instant::now());
            let full = match self.claim_once().await {
                Ok(full) => full,
                Err(e) => {
                    warn!(error = %e, "claiming deliveries failed");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Endpoints not to claim for now, and how many deliveries may be claimed.
    fn capacity(&self, now: OffsetDateTime) -> (usize, Vec<String>) {
        let cap = self.config.per_endpoint_concurrency.max(1);
        let mut local = self.local();
        let mut excluded = Vec::new();
        local.slots.retain(|id, slot| {
            if slot.throttled_until.is_some_and(|until| until <= now) {
                slot.throttled_until = None;
            }
            if slot.held() >= cap * 2 || slot.throttled_until.is_some() {
                excluded.push(id.clone());
            }
            slot.held() > 0 || slot.throttled_until.is_some()
        });
        if let Some(breakers) = &self.breakers {
            let tripped: Vec<String> = local.tripped.iter().cloned().collect();
            for id in tripped {
                match breakers.state(&id) {
                    Some(BreakerState::Open) => excluded.push(id),
                    // One probe at a time: nothing more while one is held.
                    Some(BreakerState::HalfOpen) => {
                        if local.slots.get(&id).is_some_and(|s| s.held() > 0) {
                            excluded.push(id);
                        }
                    }
                    Some(BreakerState::Closed) | None => {
                        local.tripped.remove(&id);
                    }
                }
            }
        }
        let limit = self.config.concurrency.saturating_sub(local.total);
        (limit, excluded)
    }

    /// One claim; `true` when it was full (more may be due).
    async fn claim_once(self: &Arc<Self>) -> Result<bool> {
        let now = self.now();
        let (limit, excluded) = self.capacity(now);
        if limit == 0 {
            return Ok(false);
        }
        let cap = self.config.per_endpoint_concurrency.max(1);
        let lease = time::Duration::try_from(self.config.lease()).unwrap_or(time::Duration::HOUR);
        let params = ClaimParams {
            now,
            excluded: &excluded,
            per_endpoint: i64::try_from(cap).unwrap_or(i64::MAX),
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            owner: &self.owner,
            lease_expires_at: now + lease,
        };
        let rows = claim::claim(&self.database, &params).await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let full = rows.len() >= limit;
        let mut endpoint_ids: Vec<String> = rows.iter().map(|r| r.endpoint_id.clone()).collect();
        endpoint_ids.sort_unstable();
        endpoint_ids.dedup();
        let mut event_ids: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
        event_ids.sort_unstable();
        event_ids.dedup();
        let endpoints: HashMap<String, Arc<EndpointRecord>> =
            load_records(&self.database, &endpoint_ids)
                .await?
                .into_iter()
                .map(|r| (r.endpoint.id.to_string(), Arc::new(r)))
                .collect();
        let events: HashMap<String, Arc<EventBody>> =
            claim::event_bodies(&self.database, &self.vault, &event_ids)
                .await?
                .into_iter()
                .map(|e| (e.id.clone(), Arc::new(e)))
                .collect();
        let mut unavailable = Vec::new();
        {
            let mut local = self.local();
            for claimed in rows {
                let (Some(endpoint), Some(event)) = (
                    endpoints.get(&claimed.endpoint_id),
                    events.get(&claimed.event_id),
                ) else {
                    // Deleted between claim and load (its row went with it, so this is a
                    // no-op), or the body did not decrypt: give the lease back and try later.
                    unavailable.push(Self::postpone(
                        &claimed,
                        after(now, Duration::from_secs(30)),
                    ));
                    continue;
                };
                let job = Job {
                    endpoint: Arc::clone(endpoint),
                    event: Arc::clone(event),
                    claimed,
                };
                local.total += 1;
                local
                    .slots
                    .entry(job.claimed.endpoint_id.clone())
                    .or_default()
                    .queue
                    .push_back(job);
            }
        }
        for record in unavailable {
            if self.recorder.send(record).await.is_err() {
                warn!("recorder gone; the delivery's lease will expire and it is sent again");
            }
        }
        for id in &endpoint_ids {
            self.pump(id);
        }
        Ok(full)
    }

    /// Starts queued deliveries of `endpoint` while it has free in-flight slots.
    fn pump(self: &Arc<Self>, endpoint: &str) {
        if self.stopping.load(AtomicOrdering::SeqCst) {
            return;
        }
        let cap = self.config.per_endpoint_concurrency.max(1);
        let mut local = self.local();
        let Some(slot) = local.slots.get_mut(endpoint) else {
            return;
        };
        while slot.in_flight < cap {
            let Some(job) = slot.queue.pop_front() else {
                break;
            };
            slot.in_flight += 1;
            let shared = Arc::clone(self);
            self.tracker.spawn(async move {
                let endpoint = job.claimed.endpoint_id.clone();
                let record = shared.deliver(job).await;
                if shared.recorder.send(record).await.is_err() {
                    warn!("recorder gone; the delivery's lease will expire and it is sent again");
                }
                shared.finish(&endpoint);
            });
        }
    }

    fn finish(self: &Arc<Self>, endpoint: &str) {
        let cap = self.config.per_endpoint_concurrency.max(1);
        let half = self.config.concurrency / 2;
        let mut wake = false;
        {
            let mut local = self.local();
            local.total = local.total.saturating_sub(1);
            wake |= local.total == half;
            if let Some(slot) = local.slots.get_mut(endpoint) {
                slot.in_flight = slot.in_flight.saturating_sub(1);
                // Crossing down to one cap's worth: room for a claim to refill it.
                wake |= slot.held() == cap;
                let throttled = slot.throttled_until.is_some();
                if slot.held() == 0 && !throttled {
                    local.slots.remove(endpoint);
                }
            }
        }
        self.pump(endpoint);
        if wake {
            self.wake.notify_one();
        }
    }

    fn postpone(claimed: &ClaimedRow, until: OffsetDateTime) -> Record {
        m::delivery("postponed");
        Record::Postpone {
            delivery_id: claimed.id.clone(),
            until,
            ordered: claimed.ordering_key.is_some(),
        }
    }

    fn set_throttle(&self, endpoint: &str, until: Option<OffsetDateTime>) {
        if let Some(slot) = self.local().slots.get_mut(endpoint) {
            slot.throttled_until = until;
        }
    }

    fn throttled_until(&self, endpoint: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut local = self.local();
        let slot = local.slots.get_mut(endpoint)?;
        match slot.throttled_until {
            Some(until) if until > now => Some(until),
            Some(_) => {
                slot.throttled_until = None;
                None
            }
            None => None,
        }
    }

    fn note_breaker(&self, endpoint: &str) {
        let Some(breakers) = &self.breakers else {
            return;
        };
        if breakers.state(endpoint) != Some(BreakerState::Closed) {
            self.local().tripped.insert(endpoint.to_owned());
        }
    }

    /// Sends one delivery (or decides not to now) and says what to record.
    async fn deliver(&self, job: Job) -> Record {
        let now = self.now();
        let claimed = &job.claimed;
        let record = &job.endpoint;
        let endpoint = &record.endpoint;
        let key = claimed.endpoint_id.as_str();
        if !endpoint.enabled {
            return Self::postpone(claimed, now);
        }
        if let Some(until) = self.throttled_until(key, now) {
            return Self::postpone(claimed, until);
        }
        let permit = match &self.breakers {
            Some(breakers) => match breakers.try_acquire(key) {
                Ok(permit) => Some(permit),
                Err(rejected) => {
                    self.note_breaker(key);
                    let wait = rejected.retry_in().max(Duration::from_secs(1));
                    return Self::postpone(claimed, after(now, wait));
                }
            },
            None => None,
        };
        if let Some(per_second) = endpoint.rate_limit.and_then(NonZeroU32::new) {
            let rate = Rate::per_second(per_second).with_burst(NonZeroU32::MIN);
            if self.limiter.rate_for(key) != rate {
                self.limiter.set_rate(key, rate);
            }
            let deadline = tokio::time::Instant::now() + self.config.rate_limit_wait;
            match self.limiter.until_ready(key, deadline).await {
                Ok(()) => {}
                Err(RateLimitError::DeadlineExceeded { retry_in }) => {
                    return Self::postpone(claimed, after(self.now(), retry_in));
                }
                Err(e @ RateLimitError::Backend(_)) => {
                    warn!(error = %e, "rate limit unavailable; postponing");
                    return Self::postpone(claimed, after(self.now(), Duration::from_secs(1)));
                }
            }
        }
        let signer = match self.signers.get(record, now).await {
            Ok(signer) => signer,
            Err(e) => {
                warn!(error = %e, endpoint = %endpoint.id, "signing material unavailable");
                return Self::postpone(claimed, after(now, Duration::from_secs(30)));
            }
        };
        let body = Bytes::from(job.event.body.clone());
        let sent_at = self.now();
        let timestamp = sent_at.unix_timestamp();
        let signature = signer.header(&job.event.webhook_id, timestamp, &body);
        let result = send::send(
            &self.client,
            send::Request {
                url: &endpoint.url,
                webhook_id: &job.event.webhook_id,
                timestamp,
                signature,
                custom_headers: &signer.headers,
                body,
                max_body: self.config.max_response_body,
            },
        )
        .await;
        if let Some(permit) = permit {
            if result.unhealthy() {
                permit.failure();
            } else {
                permit.success();
            }
            self.note_breaker(key);
        }
        let now = self.now();
        let made = usize::try_from(claimed.attempts - claimed.retry_base + 1).unwrap_or(usize::MAX);
        let own_schedule;
        let schedule = match &endpoint.retry_schedule {
            Some(steps) => {
                own_schedule = JitteredSchedule::new(steps.clone(), self.config.schedule.jitter());
                &own_schedule
            }
            None => &self.config.schedule,
        };
        let (decision, throttle) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            decide(
                &result,
                made,
                schedule,
                &self.config.retry_after,
                &mut *rng,
                now,
            )
        };
        if let Some(pause) = throttle {
            self.set_throttle(key, Some(after(now, pause)));
        }
        m::delivery(decision.metric_label());
        m::attempt(decision.metric_label(), result.duration);
        let attempt = u32::try_from(claimed.attempts + 1).unwrap_or(u32::MAX);
        let body_key = match (&self.bodies, result.body.is_empty()) {
            (Some(bodies), false) => {
                let id = format!("{}-{attempt}", claimed.id);
                match bodies.put(&claimed.tenant_id, &id, now, &result.body).await {
                    Ok(key) => Some(key),
                    Err(e) => {
                        warn!(error = %e, "could not keep a response body");
                        None
                    }
                }
            }
            _ => None,
        };
        Record::Attempt(Box::new(AttemptRecord {
            delivery_id: claimed.id.clone(),
            tenant: endpoint.tenant,
            endpoint_id: claimed.endpoint_id.clone(),
            event_id: claimed.event_id.clone(),
            webhook_id: job.event.webhook_id.clone(),
            event_type: job.event.event_type.clone(),
            attempt,
            started_at: sent_at,
            duration_ms: u32::try_from(result.duration.as_millis()).unwrap_or(u32::MAX),
            status_code: result.status,
            headers_json: crate::queries::headers_json(&result.headers_map()),
            body_key,
            body_len: u32::try_from(result.body.len()).unwrap_or(u32::MAX),
            error_class: result.error_class,
            error: result.error,
            decision,
            ordered: claimed.ordering_key.is_some(),
            failing_since: endpoint.failing_since,
            now,
        }))
    }

    /// Wake-ups from other processes (PostgreSQL) or from this one (SQLite).
    async fn listen(self: Arc<Self>, cancel: CancellationToken) {
        match &self.database {
            Database::Sqlite(_) => {
                let mut receiver = crate::publish::sqlite_wake_receiver();
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        changed = receiver.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            self.wake.notify_one();
                        }
                    }
                }
            }
            Database::Postgres(pool) => loop {
                let listener = async {
                    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                    listener.listen(crate::publish::NOTIFY_CHANNEL).await?;
                    Ok::<_, sqlx::Error>(listener)
                };
                match listener.await {
                    Ok(mut listener) => {
                        // Anything published while we were not listening.
                        self.wake.notify_one();
                        loop {
                            tokio::select! {
                                () = cancel.cancelled() => return,
                                notification = listener.recv() => match notification {
                                    Ok(_) => self.wake.notify_one(),
                                    Err(e) => {
                                        warn!(error = %e, "LISTEN connection lost; reconnecting");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot LISTEN for deliveries; polling"),
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            },
        }
    }

    /// Lease reaping, rotation expiry, cache pruning and the gauges.
    async fn housekeeping(self: Arc<Self>, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(self.config.housekeeping_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut top_endpoints: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match claim::reap_expired(&self.database, self.now()).await {
                Ok(0) => {}
                Ok(n) => {
                    warn!(reaped = n, "deliveries whose lease expired were re-queued");
                    self.wake.notify_one();
                }
                Err(e) => warn!(error = %e, "reaping expired leases failed"),
            }
            if let Err(e) = self.endpoints.expire_rotations(&self.audit).await {
                warn!(error = %e, "ending secret rotations failed");
            }
            self.signers.prune();
            if let Some(breakers) = &self.breakers {
                breakers.prune_idle();
                m::breakers(breakers.counts());
            }
            let top = self.config.backlog_top;
            match claim::backlog(&self.database, i64::try_from(top).unwrap_or(i64::MAX)).await {
                Ok((rows, total)) => {
                    let counts: Vec<i64> = rows.iter().map(|(_, n)| *n).collect();
                    m::backlog(&counts, top);
                    m::backlog_total(total);
                    // Who holds each rank goes to the log, where ids cost no series.
                    let ids: Vec<String> = rows.into_iter().map(|(id, _)| id).collect();
                    if ids != top_endpoints {
                        debug!(endpoints = ?ids, "endpoints with the largest backlog, largest first");
                        top_endpoints = ids;
                    }
                }
                Err(e) => warn!(error = %e, "reading the backlog failed"),
            }
            match claim::disabled_count(&self.database).await {
                Ok(n) => m::disabled_endpoints(n),
                Err(e) => warn!(error = %e, "counting disabled endpoints failed"),
            }
        }
    }
}
