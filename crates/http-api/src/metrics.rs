//! Counters for `/metrics` (Prometheus text format 0.0.4). The daemon updates them; the API
//! renders them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    pub active_calls: AtomicU64,
    pub recordings_in_progress: AtomicU64,
    pub calls_total: AtomicU64,
    pub rtp_packets: AtomicU64,
    pub rtp_bytes: AtomicU64,
    pub rtp_lost: AtomicU64,
    /// Outbound RTP datagrams the socket refused (unreachable family, no route…).
    pub rtp_send_errors: AtomicU64,
    /// Audio items the media task could not hand to the recorder because the call's ring was
    /// full (the recorder fell behind); each is audio missing from a recording.
    pub ring_overruns: AtomicU64,
    pub db_errors: AtomicU64,
    pub disk_errors: AtomicU64,
    pub webhooks_2xx: AtomicU64,
    pub webhooks_4xx: AtomicU64,
    pub webhooks_5xx: AtomicU64,
    pub webhooks_transport_error: AtomicU64,
    pub outbox_pending: AtomicU64,
    /// MP3 encodes started by the API (the cache makes this one per recording).
    pub mp3_encodes: AtomicU64,
    /// Transcriptions in each state (`hark_transcriptions{state=…}`); the daemon sets them,
    /// e.g. from `Store::transcription_counts` with [`Metrics::set_transcriptions`].
    pub transcriptions_queued: AtomicU64,
    pub transcriptions_running: AtomicU64,
    pub transcriptions_done: AtomicU64,
    pub transcriptions_failed: AtomicU64,
    /// Audio transcribed and time spent on it, in ms, summed over finished jobs since start:
    /// their ratio is `hark_transcription_rtf`.
    pub transcription_audio_ms: AtomicU64,
    pub transcription_processing_ms: AtomicU64,
    /// Open SIP TCP connections (`hark_sip_tcp_connections`).
    pub sip_tcp_connections: AtomicU64,
    /// SIP TCP connections closed on accept: `sip.tcp_max_connections` reached.
    pub sip_tcp_rejected_total: AtomicU64,
    /// SIP TCP connections closed on accept: `sip.tcp_max_connections_per_source` reached.
    pub sip_tcp_rejected_per_source: AtomicU64,
    /// SIP TCP connections closed after `sip.tcp_idle_timeout_secs` without traffic.
    pub sip_tcp_idle_closed: AtomicU64,
    /// Messages that found their bounded channel full, by channel
    /// (`hark_channel_overflow_total{channel=…}`).
    pub channel_overflows: LabelledCounts,
    /// SIP messages refused or dropped by the access checks, by reason
    /// (`hark_sip_refused_total{reason=…}`: malformed (answered 400… or dropped), untrusted,
    /// auth_failed, banned, dropped (unparsed), the call caps).
    pub sip_refused: LabelledCounts,
    /// Sources banned by the SIP rate limit since start (`hark_sip_bans_total`).
    pub sip_bans: AtomicU64,
    /// Recordings copied to the object storage and checked (`storage.backend = "s3"`).
    pub uploads: AtomicU64,
    /// Upload attempts that failed (each is retried from the queue).
    pub upload_failures: AtomicU64,
}

/// Counts by a label (a channel's name, a reason). A label shows in `/metrics` (at 0) once
/// declared; the events counted are rare next to packets, so one lock is cheap.
#[derive(Debug, Default)]
pub struct LabelledCounts {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl LabelledCounts {
    /// Makes `label` appear in `/metrics` (at 0) before it is first counted.
    pub fn declare(&self, label: &'static str) {
        self.lock().entry(label).or_insert(0);
    }

    /// Counts one under `label`; returns the count so far.
    pub fn count(&self, label: &'static str) -> u64 {
        let mut counts = self.lock();
        let n = counts.entry(label).or_insert(0);
        *n += 1;
        *n
    }

    /// Sets `label`'s count (for a total kept elsewhere).
    pub fn set(&self, label: &'static str, n: u64) {
        self.lock().insert(label, n);
    }

    pub fn get(&self, channel: &str) -> u64 {
        self.lock().get(channel).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, u64>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
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
    /// Sets the four `hark_transcriptions` gauges.
    pub fn set_transcriptions(&self, counts: &store::TranscriptionCounts) {
        self.transcriptions_queued
            .store(counts.queued, Ordering::Relaxed);
        self.transcriptions_running
            .store(counts.in_progress, Ordering::Relaxed);
        self.transcriptions_done
            .store(counts.completed, Ordering::Relaxed);
        self.transcriptions_failed
            .store(counts.failed, Ordering::Relaxed);
    }
    /// Counts one finished job's audio and processing time (real-time factor).
    pub fn transcription_finished(&self, audio_secs: f64, processing_secs: f64) {
        let ms = |s: f64| {
            if s.is_finite() && s > 0.0 {
                (s * 1000.0).round() as u64
            } else {
                0
            }
        };
        Self::add(&self.transcription_audio_ms, ms(audio_secs));
        Self::add(&self.transcription_processing_ms, ms(processing_secs));
    }
    /// Processing seconds per audio second over every finished job; 0 before the first.
    pub fn transcription_rtf(&self) -> f64 {
        let audio = self.transcription_audio_ms.load(Ordering::Relaxed);
        let processing = self.transcription_processing_ms.load(Ordering::Relaxed);
        if audio == 0 {
            0.0
        } else {
            processing as f64 / audio as f64
        }
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
            "hark_rtp_send_errors_total",
            "counter",
            "RTP packets that could not be sent (each call logs its first).",
            get(&self.rtp_send_errors),
        );
        one(
            "hark_media_ring_overruns_total",
            "counter",
            "Audio frames dropped because a call's ring to its recorder was full.",
            get(&self.ring_overruns),
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
        one(
            "hark_sip_tcp_connections",
            "gauge",
            "Open SIP TCP connections.",
            get(&self.sip_tcp_connections),
        );
        one(
            "hark_sip_tcp_idle_closed_total",
            "counter",
            "SIP TCP connections closed for carrying no traffic for sip.tcp_idle_timeout_secs.",
            get(&self.sip_tcp_idle_closed),
        );
        one(
            "hark_sip_bans_total",
            "counter",
            "SIP sources banned for going over sip.rate_limit_requests in sip.rate_limit_window_secs.",
            get(&self.sip_bans),
        );
        one(
            "hark_uploads_total",
            "counter",
            "Recordings uploaded to the object storage and verified (storage.backend = s3).",
            get(&self.uploads),
        );
        one(
            "hark_upload_failures_total",
            "counter",
            "Recording upload attempts that failed; each is retried from the queue.",
            get(&self.upload_failures),
        );
        let _ = write!(
            out,
            "# HELP hark_sip_tcp_rejected_total SIP TCP connections closed on accept, by the cap reached (sip.tcp_max_connections, sip.tcp_max_connections_per_source).\n\
             # TYPE hark_sip_tcp_rejected_total counter\n"
        );
        for (reason, c) in [
            ("total", &self.sip_tcp_rejected_total),
            ("per_source", &self.sip_tcp_rejected_per_source),
        ] {
            let _ = writeln!(
                out,
                "hark_sip_tcp_rejected_total{{reason=\"{reason}\"}} {}",
                get(c)
            );
        }
        let _ = write!(
            out,
            "# HELP hark_channel_overflow_total Messages that found a bounded channel full: dropped, or the connection closed, where the sender must not wait; delayed where it may.\n\
             # TYPE hark_channel_overflow_total counter\n"
        );
        for (channel, n) in self.channel_overflows.lock().iter() {
            let _ = writeln!(
                out,
                "hark_channel_overflow_total{{channel=\"{channel}\"}} {n}"
            );
        }
        let _ = write!(
            out,
            "# HELP hark_sip_refused_total SIP messages refused (403, 401 then 403, 503) or dropped unparsed, by reason.\n\
             # TYPE hark_sip_refused_total counter\n"
        );
        for (reason, n) in self.sip_refused.lock().iter() {
            let _ = writeln!(out, "hark_sip_refused_total{{reason=\"{reason}\"}} {n}");
        }
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
        let _ = write!(
            out,
            "# HELP hark_transcriptions Transcriptions by state.\n\
             # TYPE hark_transcriptions gauge\n"
        );
        for (state, c) in [
            ("queued", &self.transcriptions_queued),
            ("running", &self.transcriptions_running),
            ("done", &self.transcriptions_done),
            ("failed", &self.transcriptions_failed),
        ] {
            let _ = writeln!(out, "hark_transcriptions{{state=\"{state}\"}} {}", get(c));
        }
        let secs = |c: &AtomicU64| get(c) as f64 / 1000.0;
        let _ = write!(
            out,
            "# HELP hark_transcription_audio_seconds_total Audio seconds transcribed.\n\
             # TYPE hark_transcription_audio_seconds_total counter\n\
             hark_transcription_audio_seconds_total {}\n\
             # HELP hark_transcription_processing_seconds_total Seconds spent transcribing.\n\
             # TYPE hark_transcription_processing_seconds_total counter\n\
             hark_transcription_processing_seconds_total {}\n\
             # HELP hark_transcription_rtf Real-time factor: processing seconds per audio second, over all finished transcriptions.\n\
             # TYPE hark_transcription_rtf gauge\n\
             hark_transcription_rtf {}\n",
            secs(&self.transcription_audio_ms),
            secs(&self.transcription_processing_ms),
            self.transcription_rtf(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcription_gauges_and_average_real_time_factor() {
        let m = Metrics::default();
        m.set_transcriptions(&store::TranscriptionCounts {
            queued: 3,
            in_progress: 2,
            completed: 10,
            failed: 1,
        });
        m.transcription_finished(10.0, 2.0);
        m.transcription_finished(30.0, 3.0);
        m.transcription_finished(f64::NAN, -1.0); // ignored
        assert_eq!(m.transcription_rtf(), 0.125);
        let text = m.render();
        assert!(text.contains(
            "# HELP hark_transcriptions Transcriptions by state.\n# TYPE hark_transcriptions gauge\n\
             hark_transcriptions{state=\"queued\"} 3\n\
             hark_transcriptions{state=\"running\"} 2\n\
             hark_transcriptions{state=\"done\"} 10\n\
             hark_transcriptions{state=\"failed\"} 1\n"
        ), "{text}");
        assert!(text.contains("\nhark_transcription_rtf 0.125\n"), "{text}");
        assert!(
            text.contains("\nhark_transcription_audio_seconds_total 40\n"),
            "{text}"
        );
        assert!(
            text.contains("\nhark_transcription_processing_seconds_total 5\n"),
            "{text}"
        );
    }

    #[test]
    fn channel_overflows_show_declared_channels_at_zero() {
        let m = Metrics::default();
        m.channel_overflows.declare("sip_commands");
        m.channel_overflows.declare("call_events");
        assert_eq!(m.channel_overflows.count("call_events"), 1);
        assert_eq!(m.channel_overflows.count("call_events"), 2);
        let text = m.render();
        assert!(
            text.contains(
                "# TYPE hark_channel_overflow_total counter\n\
                 hark_channel_overflow_total{channel=\"call_events\"} 2\n\
                 hark_channel_overflow_total{channel=\"sip_commands\"} 0\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn sip_refusals_are_counted_by_reason() {
        let m = Metrics::default();
        m.sip_refused.declare("untrusted");
        m.sip_refused.count("max_calls");
        m.sip_refused.set("dropped", 41);
        Metrics::add(&m.sip_bans, 2);
        let text = m.render();
        assert!(text.contains("# TYPE hark_sip_bans_total counter\nhark_sip_bans_total 2\n"));
        assert!(
            text.contains(
                "# TYPE hark_sip_refused_total counter\n\
                 hark_sip_refused_total{reason=\"dropped\"} 41\n\
                 hark_sip_refused_total{reason=\"max_calls\"} 1\n\
                 hark_sip_refused_total{reason=\"untrusted\"} 0\n"
            ),
            "{text}"
        );
    }

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
        assert!(
            text.contains("hark_transcription_rtf 0\n"),
            "no jobs yet: 0"
        );
        // One TYPE line per metric family, each sample line `name[{labels}] value`.
        assert_eq!(text.matches("# TYPE ").count(), 25);
        assert!(text.contains("# TYPE hark_uploads_total counter\nhark_uploads_total 0\n"));
        assert!(text
            .contains("# TYPE hark_upload_failures_total counter\nhark_upload_failures_total 0\n"));
        assert!(text
            .contains("# TYPE hark_rtp_send_errors_total counter\nhark_rtp_send_errors_total 0\n"));
        assert!(text.contains(
            "# TYPE hark_media_ring_overruns_total counter\nhark_media_ring_overruns_total 0\n"
        ));
        assert!(text.contains(
            "# TYPE hark_sip_tcp_rejected_total counter\n\
             hark_sip_tcp_rejected_total{reason=\"total\"} 0\n\
             hark_sip_tcp_rejected_total{reason=\"per_source\"} 0\n"
        ));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("hark_"), "{line}");
            assert!(value.parse::<f64>().is_ok_and(f64::is_finite), "{line}");
        }
    }
}
