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
    /// MP3 encodes started by the API (the cache makes this one per recording).
    pub mp3_encodes: AtomicU64,
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
        use std::fmt::Write;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut one = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        one(
            "hark_active_calls",
            "gauge",
            "Calls in progress.",
            get(&self.active_calls),
        );
        one(
            "hark_recordings_in_progress",
            "gauge",
            "Recordings being captured.",
            get(&self.recordings_in_progress),
        );
        one(
            "hark_calls_total",
            "counter",
            "Calls accepted.",
            get(&self.calls_total),
        );
        one(
            "hark_rtp_packets_total",
            "counter",
            "RTP packets received.",
            get(&self.rtp_packets),
        );
        one(
            "hark_rtp_bytes_total",
            "counter",
            "RTP payload bytes received.",
            get(&self.rtp_bytes),
        );
        one(
            "hark_rtp_lost_total",
            "counter",
            "RTP packets lost (sequence gaps).",
            get(&self.rtp_lost),
        );
        one(
            "hark_db_errors_total",
            "counter",
            "Database errors.",
            get(&self.db_errors),
        );
        one(
            "hark_disk_errors_total",
            "counter",
            "Recording storage I/O errors.",
            get(&self.disk_errors),
        );
        one(
            "hark_outbox_pending",
            "gauge",
            "Webhooks queued and not yet delivered or given up.",
            get(&self.outbox_pending),
        );
        one(
            "hark_mp3_encodes_total",
            "counter",
            "MP3 encodes of recordings.",
            get(&self.mp3_encodes),
        );
        let _ = write!(
            out,
            "# HELP hark_webhooks_total Webhook deliveries by outcome.\n\
             # TYPE hark_webhooks_total counter\n"
        );
        for (outcome, c) in [
            ("2xx", &self.webhooks_2xx),
            ("4xx", &self.webhooks_4xx),
            ("5xx", &self.webhooks_5xx),
            ("error", &self.webhooks_transport_error),
        ] {
            let _ = writeln!(
                out,
                "hark_webhooks_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_prometheus_text_with_help_and_type() {
        let m = Metrics::default();
        Metrics::add(&m.active_calls, 3);
        Metrics::add(&m.rtp_packets, 1500);
        m.webhook(Some(204));
        m.webhook(Some(503));
        m.webhook(Some(503));
        m.webhook(None);
        let text = m.render();
        assert!(text.contains(
            "# HELP hark_active_calls Calls in progress.\n# TYPE hark_active_calls gauge\nhark_active_calls 3\n"
        ));
        assert!(
            text.contains("# TYPE hark_rtp_packets_total counter\nhark_rtp_packets_total 1500\n")
        );
        assert!(text.contains("hark_webhooks_total{outcome=\"2xx\"} 1\n"));
        assert!(text.contains("hark_webhooks_total{outcome=\"4xx\"} 0\n"));
        assert!(text.contains("hark_webhooks_total{outcome=\"5xx\"} 2\n"));
        assert!(text.contains("hark_webhooks_total{outcome=\"error\"} 1\n"));
        // One TYPE line per metric family, each sample line `name[{labels}] value`.
        assert_eq!(text.matches("# TYPE ").count(), 11);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("hark_"), "{line}");
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
    }
}
