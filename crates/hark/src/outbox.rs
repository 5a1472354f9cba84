//! Status callbacks through the persisted outbox (SPEC §9): queued in the database before they
//! are sent, delivered in order per recording (or call), retried with backoff on connect errors,
//! 5xx and 429, each with an idempotency token, so a webhook server that is down for a while
//! loses nothing and receives nothing twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use control::HttpMethod;
use store::{OutboxItem, Store};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::Notify;

use crate::webhook::{WebhookError, Webhooks};

/// Delay before attempt n+1 (after the n-th failure); the last one repeats. About 20 minutes
/// of retries in all, so an outage of a few minutes loses nothing.
const BACKOFF: [Duration; 8] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(300),
];
const MAX_ATTEMPTS: u32 = 12;

/// How often the worker looks for due items when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);
/// Delivered and given-up callbacks are kept this long (for inspection and to recognise a
/// replayed state change), then deleted so the table does not grow forever.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);
/// Finished deliveries waiting to be taken off the in-flight set: one due batch (256) of them.
const DONE_CAPACITY: usize = 256;
/// `hark_channel_overflow_total` label of that queue.
pub const CHANNEL_DONE: &str = "outbox_done";
/// How often finished callbacks older than [`KEEP_FINISHED`] are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct Outbox {
    store: Arc<Store>,
    wake: Arc<Notify>,
    metrics: Arc<http_api::Metrics>,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Outbox {
    pub fn new(store: Arc<Store>, metrics: Arc<http_api::Metrics>) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
            metrics,
        }
    }

    /// Queues a callback; `group` orders it after earlier callbacks of the same recording/call.
    pub async fn enqueue(
        &self,
        group: &str,
        url: &str,
        method: HttpMethod,
        params: Vec<(String, String)>,
    ) {
        let item = OutboxItem {
            id: 0,
            idempotency_key: crate::sids::new_sid("ID"),
            group_key: group.to_string(),
            url: url.to_string(),
            method: method.as_str().to_string(),
            params,
            attempts: 0,
            next_attempt_ms: now_ms(),
        };
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.enqueue(&item)).await {
            Ok(Ok(_)) => self.wake.notify_one(),
            Ok(Err(e)) => {
                http_api::Metrics::add(&self.metrics.db_errors, 1);
                tracing::error!(url, error = %e, "callback could not be queued");
            }
            Err(e) => tracing::error!(url, error = %e, "callback queue task failed"),
        }
    }

    /// Delivers due callbacks until the process ends. Heads of different groups go out
    /// concurrently; a group stays in order because only its head is ever due, and an item being
    /// sent is not picked up again until its outcome is saved.
    pub async fn run(self, webhooks: Webhooks) {
        let in_flight: Arc<std::sync::Mutex<HashSet<i64>>> = Arc::default();
        // Deliveries report here when they finish; a full queue makes them wait (counted).
        let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<i64>(DONE_CAPACITY);
        let mut next_prune = tokio::time::Instant::now();
        // Deliveries this node had claimed before it stopped are no longer running.
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.release_own_claims()).await {
            Ok(Ok(0)) | Err(_) => {}
            Ok(Ok(n)) => tracing::info!(
                callbacks = n,
                "callbacks claimed before the restart are due again"
            ),
            Ok(Err(e)) => tracing::error!(error = %e, "outbox: releasing old claims"),
        }
        loop {
            if tokio::time::Instant::now() >= next_prune {
                next_prune += PRUNE_EVERY;
                self.prune().await;
            }
            let store = self.store.clone();
            let due = tokio::task::spawn_blocking(move || {
                (store.claim_due(now_ms(), 256), store.pending_count())
            })
            .await;
            let items = match due {
                Ok((Ok(items), pending)) => {
                    if let Ok(n) = pending {
                        self.metrics
                            .outbox_pending
                            .store(n, std::sync::atomic::Ordering::Relaxed);
                    }
                    items
                }
                Ok((Err(e), _)) => {
                    http_api::Metrics::add(&self.metrics.db_errors, 1);
                    tracing::error!(error = %e, "outbox unreadable");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
            for item in items {
                let fresh = in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(item.id);
                if !fresh {
                    continue;
                }
                let this = self.clone();
                let webhooks = webhooks.clone();
                let done = done_tx.clone();
                tokio::spawn(async move {
                    let id = item.id;
                    this.deliver(&webhooks, item).await;
                    if let Err(TrySendError::Full(id)) = done.try_send(id) {
                        this.metrics.channel_overflows.count(CHANNEL_DONE);
                        let _ = done.send(id).await;
                    }
                });
            }
            // Wake for a new item, a finished delivery (its group's next item may be due now),
            // or the poll interval (retries coming due).
            tokio::select! {
                _ = self.wake.notified() => {}
                Some(id) = done_rx.recv() => {
                    in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    while let Ok(id) = done_rx.try_recv() {
                        in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    }
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn prune(&self) {
        let store = self.store.clone();
        let before = now_ms() - KEEP_FINISHED.as_millis() as i64;
        match tokio::task::spawn_blocking(move || store.prune_outbox(before)).await {
            Ok(Ok(0)) | Err(_) => {}
            Ok(Ok(n)) => tracing::info!(deleted = n, "old finished callbacks pruned"),
            Ok(Err(e)) => {
                http_api::Metrics::add(&self.metrics.db_errors, 1);
                tracing::error!(error = %e, "pruning the outbox failed");
            }
        }
    }

    async fn deliver(&self, webhooks: &Webhooks, item: OutboxItem) {
        let method = if item.method.eq_ignore_ascii_case("GET") {
            HttpMethod::Get
        } else {
            HttpMethod::Post
        };
        let started_ms = now_ms();
        let started = std::time::Instant::now();
        let result = webhooks
            .request_with_key(&item.url, method, &item.params, &item.idempotency_key)
            .await;
        let attempt = store::DeliveryAttempt {
            at_ms: started_ms,
            status: match &result {
                Ok(answer) => Some(answer.status),
                Err(WebhookError::Status { status, .. }) => Some(*status),
                Err(_) => None,
            },
            error: result.as_ref().err().map(|e| e.to_string()),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let store = self.store.clone();
        let id = item.id;
        let outcome = match &result {
            Ok(answer) => {
                self.metrics.webhook(Some(answer.status));
                tracing::debug!(url = %item.url, status = answer.status, "callback delivered");
                Outcome::Delivered
            }
            Err(e) => {
                self.metrics.webhook(match e {
                    WebhookError::Status { status, .. } => Some(*status),
                    _ => None,
                });
                let attempts = item.attempts + 1;
                if e.is_transient() && attempts < MAX_ATTEMPTS {
                    let delay = BACKOFF[(attempts as usize - 1).min(BACKOFF.len() - 1)];
                    tracing::warn!(url = %item.url, error = %e, attempts, retry_in_s = delay.as_secs(), "callback failed; will retry");
                    Outcome::Retry(now_ms() + delay.as_millis() as i64)
                } else {
                    tracing::error!(url = %item.url, error = %e, attempts, "callback failed; giving up");
                    Outcome::GiveUp
                }
            }
        };
        let next = match outcome {
            Outcome::Delivered => store::AttemptNext::Delivered,
            Outcome::Retry(at) => store::AttemptNext::RetryAt(at),
            Outcome::GiveUp => store::AttemptNext::GiveUp,
        };
        let saved =
            tokio::task::spawn_blocking(move || store.attempt_finished(id, &attempt, next)).await;
        if !matches!(saved, Ok(Ok(()))) {
            http_api::Metrics::add(&self.metrics.db_errors, 1);
            tracing::error!(
                id,
                "outbox state could not be saved; the callback may be sent again"
            );
        }
    }
}

enum Outcome {
    Delivered,
    Retry(i64),
    GiveUp,
}
