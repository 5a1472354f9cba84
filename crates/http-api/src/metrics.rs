//! Counters for `/metrics` (Prometheus text format 0.0.4). The daemon updates them; the API
//! renders them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub active_calls: AtomicU64,
    pub recordings_in_progress: AtomicU64,
    pub calls_total: AtomicU64,
    pub rtp_packets: AtomicU64,
    pub rtp_bytes: AtomicU64,
    pub rtp_lost: AtomicU64,
    pub db_errors: AtomicU64,
    pub disk_errors: AtomicU64,
    pub webhooks_2xx: AtomicU64,
    pub webhooks_4xx: AtomicU64,
    pub webhooks_5xx: AtomicU64,
    pub webhooks_transport_error: AtomicU64,
    pub outbox_pending: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    /// Counts one webhook outcome: an HTTP status, or `None` for a transport error.
    pub fn webhook(&self, status: Option<u16>) {
        let c = match status {
            Some(200..=299) => &self.webhooks_2xx,
            Some(400..=499) => &self.webhooks_4xx,
            Some(_) => &self.webhooks_5xx,
            None => &self.webhooks_transport_error,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        todo!()
    }
}
