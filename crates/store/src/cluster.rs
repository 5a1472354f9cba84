//! Several nodes sharing one database (issue 15): which node this store speaks for, the queue
//! of recording uploads (each the job of the node whose disk holds the file), and the nodes'
//! announcements (where each one's API is, for live call control of the calls it runs).

use crate::db::{params, Row};
use crate::{CallSid, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    Pending,
    Done,
    /// The file was gone from the node's disk and the bucket lacks it: nothing left to send.
    Lost,
}

impl UploadState {
    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => UploadState::Pending,
            "done" => UploadState::Done,
            "lost" => UploadState::Lost,
            other => {
                return Err(StoreError::Corrupt {
                    what: "uploads.state",
                    value: other.to_owned(),
                })
            }
        })
    }
}

/// One recording's upload to the object storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadItem {
    /// The object key: the recording's `media_file`.
    pub key: String,
    pub node_id: String,
    pub state: UploadState,
    pub attempts: u32,
    pub queued_ms: i64,
    pub next_attempt_ms: i64,
    pub done_ms: Option<i64>,
    pub last_error: Option<String>,
}

const UPLOAD_COLUMNS: &str =
    "key, node_id, state, attempts, queued_ms, next_attempt_ms, done_ms, last_error";

fn upload_from_row(r: &Row) -> Result<UploadItem, StoreError> {
    let state: String = r.get(2)?;
    let attempts: i64 = r.get(3)?;
    Ok(UploadItem {
        key: r.get(0)?,
        node_id: r.get(1)?,
        state: UploadState::parse(&state)?,
        attempts: crate::to_u32("uploads.attempts", attempts)?,
        queued_ms: r.get(4)?,
        next_attempt_ms: r.get(5)?,
        done_ms: r.get(6)?,
        last_error: r.get(7)?,
    })
}

/// A node as it announced itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node_id: String,
    pub api_url: String,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    pub draining: bool,
}

fn node_from_row(r: &Row) -> Result<NodeRecord, StoreError> {
    Ok(NodeRecord {
        node_id: r.get(0)?,
        api_url: r.get(1)?,
        started_ms: r.get(2)?,
        heartbeat_ms: r.get(3)?,
        draining: r.get(4)?,
    })
}

impl Store {
    /// This store speaks for node `node_id` of a cluster: the calls and recordings it inserts
    /// name it, start-up recovery looks only at its own, and the callbacks and transcription
    /// jobs it claims are its for `lease_ms`.
    pub fn with_node(mut self, node_id: impl Into<String>, lease_ms: i64) -> Self {
        self.node = Some(node_id.into());
        self.lease_ms = lease_ms.max(1);
        self
    }

    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The node that owns what this store claims; `""` for a node alone.
    pub(crate) fn owner(&self) -> &str {
        self.node.as_deref().unwrap_or("")
    }

    /// How long a callback this store claims is its own (a node alone: until it retries).
    pub fn with_lease(mut self, lease_ms: i64) -> Self {
        self.lease_ms = lease_ms.max(1);
        self
    }

    /// How long a transcription job this node starts is its own ([`DEFAULT_LEASE_MS`] unless
    /// set): longer than the engine may take.
    ///
    /// [`DEFAULT_LEASE_MS`]: crate::DEFAULT_LEASE_MS
    pub fn with_job_lease(mut self, lease_ms: i64) -> Self {
        self.job_lease_ms = lease_ms.max(1);
        self
    }

    pub(crate) fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    pub(crate) fn job_lease_ms(&self) -> i64 {
        self.job_lease_ms
    }

    /// Queues the upload of `key` from `node`'s disk, due now. A key queued before (a retry
    /// after a crash) becomes pending again with its attempts kept.
    pub fn queue_upload(&self, key: &str, node: &str, now_ms: i64) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                "queue upload",
                "INSERT INTO uploads (key, node_id, state, attempts, queued_ms, next_attempt_ms) \
                 VALUES (?1, ?2, 'pending', 0, ?3, ?3) \
                 ON CONFLICT (key) DO UPDATE SET state = 'pending', node_id = ?2, next_attempt_ms = ?3",
                params![key, node, now_ms],
            )
        })?;
        Ok(())
    }

    /// Queues `key` only if it was never queued; true if it is new.
    pub fn queue_upload_if_absent(
        &self,
        key: &str,
        node: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "queue upload",
                "INSERT INTO uploads (key, node_id, state, attempts, queued_ms, next_attempt_ms) \
                 VALUES (?1, ?2, 'pending', 0, ?3, ?3) ON CONFLICT (key) DO NOTHING",
                params![key, node, now_ms],
            )
        })?;
        Ok(n == 1)
    }

    /// `node`'s pending uploads due at `now_ms`, oldest first.
    pub fn uploads_due(
        &self,
        node: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<UploadItem>, StoreError> {
        let sql = format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE node_id = ?1 AND state = 'pending' \
             AND next_attempt_ms <= ?2 ORDER BY next_attempt_ms, key LIMIT ?3"
        );
        self.with_db(|db| {
            db.query_map(
                "uploads due",
                &sql,
                params![node, now_ms, limit],
                upload_from_row,
            )
        })
    }

    pub fn upload(&self, key: &str) -> Result<Option<UploadItem>, StoreError> {
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE key = ?1");
        self.with_db(|db| {
            db.query_opt("get upload", &sql, params![key])?
                .as_ref()
                .map(upload_from_row)
                .transpose()
        })
    }

    /// Every upload, oldest first (cluster checks and benchmarks).
    pub fn uploads(&self) -> Result<Vec<UploadItem>, StoreError> {
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads ORDER BY queued_ms, key");
        self.with_db(|db| db.query_map("list uploads", &sql, params![], upload_from_row))
    }

    /// The bucket holds `key`, checked.
    pub fn upload_done(&self, key: &str, now_ms: i64) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                "upload done",
                "UPDATE uploads SET state = 'done', done_ms = ?2, attempts = attempts + 1, \
                 last_error = NULL WHERE key = ?1 AND state = 'pending'",
                params![key, now_ms],
            )
        })?;
        Ok(())
    }

    /// An attempt failed: another at `next_attempt_ms`.
    pub fn upload_failed(
        &self,
        key: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                "upload failed",
                "UPDATE uploads SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 \
                 WHERE key = ?1 AND state = 'pending'",
                params![key, next_attempt_ms, error],
            )
        })?;
        Ok(())
    }

    /// Nothing is left to upload (the file is gone, the bucket lacks it).
    pub fn upload_lost(&self, key: &str, now_ms: i64, error: &str) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                "upload lost",
                "UPDATE uploads SET state = 'lost', done_ms = ?2, last_error = ?3 \
                 WHERE key = ?1 AND state = 'pending'",
                params![key, now_ms, error],
            )
        })?;
        Ok(())
    }

    /// Pending uploads of `node`, or of every node.
    pub fn pending_uploads(&self, node: Option<&str>) -> Result<u64, StoreError> {
        let n: i64 = self.with_db(|db| {
            db.query_one(
                "pending uploads",
                "SELECT COUNT(*) FROM uploads WHERE state = 'pending' \
                 AND (CAST(?1 AS TEXT) IS NULL OR node_id = ?1)",
                params![node],
            )?
            .get(0)
        })?;
        Ok(n.max(0) as u64)
    }

    /// Announces this node (at start-up and then periodically): where its API is, and
    /// whether it is draining.
    pub fn announce_node(
        &self,
        node_id: &str,
        api_url: &str,
        started_ms: i64,
        now_ms: i64,
        draining: bool,
    ) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                "announce node",
                "INSERT INTO nodes (node_id, api_url, started_ms, heartbeat_ms, draining) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (node_id) DO UPDATE SET \
                 api_url = ?2, started_ms = ?3, heartbeat_ms = ?4, draining = ?5",
                params![node_id, api_url, started_ms, now_ms, draining],
            )
        })?;
        Ok(())
    }

    pub fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.with_db(|db| {
            db.query_map(
                "list nodes",
                "SELECT node_id, api_url, started_ms, heartbeat_ms, draining FROM nodes ORDER BY node_id",
                params![],
                node_from_row,
            )
        })
    }

    /// The node running call `sid` and where its API is; `None` for a call of no node (one
    /// alone) or of a node that never announced itself.
    pub fn call_node(&self, sid: &CallSid) -> Result<Option<NodeRecord>, StoreError> {
        self.with_db(|db| {
            db.query_opt(
                "call node",
                "SELECT n.node_id, n.api_url, n.started_ms, n.heartbeat_ms, n.draining \
                 FROM calls c JOIN nodes n ON n.node_id = c.node_id WHERE c.sid = ?1",
                params![sid],
            )?
            .as_ref()
            .map(node_from_row)
            .transpose()
        })
    }

    /// Takes (or renews) the lease of the job `name` for this node until `now_ms + ttl_ms`:
    /// true when this node may run it now. Another node's lease is taken only once it ran out
    /// (that node died or stopped renewing).
    pub fn claim_job(&self, name: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        let rows = self.with_db(|db| {
            db.query(
                "claim job",
                "INSERT INTO leases (name, owner, until_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET owner = ?2, until_ms = ?3 \
                 WHERE leases.until_ms <= ?4 OR leases.owner = ?2 RETURNING owner",
                params![name, self.owner(), now_ms.saturating_add(ttl_ms), now_ms],
            )
        })?;
        Ok(!rows.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn an_upload_is_queued_retried_and_done_once() {
        let (_d, store) = store();
        store.queue_upload("RE1.wav", "n1", 1_000).unwrap();
        store.queue_upload("RE2.wav", "n2", 1_000).unwrap();
        let due = store.uploads_due("n1", 1_000, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].key.as_str(), due[0].state, due[0].attempts),
            ("RE1.wav", UploadState::Pending, 0)
        );
        store
            .upload_failed("RE1.wav", 5_000, "bucket down")
            .unwrap();
        assert!(store.uploads_due("n1", 4_999, 10).unwrap().is_empty());
        let again = store.uploads_due("n1", 5_000, 10).unwrap();
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].last_error.as_deref(), Some("bucket down"));
        assert_eq!(store.pending_uploads(Some("n1")).unwrap(), 1);
        assert_eq!(store.pending_uploads(None).unwrap(), 2);
        store.upload_done("RE1.wav", 6_000).unwrap();
        // A second "done" (a retry that raced) changes nothing.
        store.upload_done("RE1.wav", 7_000).unwrap();
        let done = store.upload("RE1.wav").unwrap().unwrap();
        assert_eq!(
            (done.state, done.done_ms, done.attempts, done.last_error),
            (UploadState::Done, Some(6_000), 2, None)
        );
        assert!(store.uploads_due("n1", 10_000, 10).unwrap().is_empty());
        assert_eq!(store.pending_uploads(None).unwrap(), 1);
        // Queued again (after a crash mid-upload): pending, attempts kept.
        store.queue_upload("RE1.wav", "n1", 8_000).unwrap();
        let back = store.upload("RE1.wav").unwrap().unwrap();
        assert_eq!(
            (back.state, back.attempts, back.queued_ms),
            (UploadState::Pending, 2, 1_000)
        );
        assert!(!store
            .queue_upload_if_absent("RE1.wav", "n1", 9_000)
            .unwrap());
        assert!(store
            .queue_upload_if_absent("RE3.wav", "n1", 9_000)
            .unwrap());
        store.upload_lost("RE3.wav", 9_500, "file gone").unwrap();
        assert_eq!(
            store.upload("RE3.wav").unwrap().unwrap().state,
            UploadState::Lost
        );
        assert_eq!(
            store
                .uploads()
                .unwrap()
                .iter()
                .map(|u| u.key.as_str())
                .collect::<Vec<_>>(),
            ["RE1.wav", "RE2.wav", "RE3.wav"]
        );
    }

    #[test]
    fn nodes_announce_themselves_and_calls_lead_to_their_node() {
        let (dir, store) = store();
        let store = store.with_node("n1", 60_000);
        store
            .announce_node("n1", "http://127.0.0.1:8081", 1_000, 1_000, false)
            .unwrap();
        store
            .announce_node("n1", "http://127.0.0.1:8091", 1_000, 2_000, true)
            .unwrap();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        let node = store.call_node(&ca(1)).unwrap().unwrap();
        assert_eq!(
            (
                node.node_id.as_str(),
                node.api_url.as_str(),
                node.heartbeat_ms,
                node.draining
            ),
            ("n1", "http://127.0.0.1:8091", 2_000, true)
        );
        assert_eq!(store.nodes().unwrap(), vec![node]);
        assert_eq!(store.call_node(&ca(2)).unwrap(), None);
        // A node alone writes no node: its calls lead nowhere.
        let alone = reopen(dir.path());
        alone.insert_call(&call(ca(3), 1_000)).unwrap();
        assert_eq!(alone.call_node(&ca(3)).unwrap(), None);
    }

    #[test]
    fn recovery_sees_only_this_nodes_open_calls_and_recordings() {
        let (dir, store) = store();
        let n1 = store.with_node("n1", 60_000);
        n1.insert_call(&call(ca(1), 1_000)).unwrap();
        n1.insert_recording(&recording(re(1), ca(1), 1_000))
            .unwrap();
        let n2 = reopen(dir.path()).with_node("n2", 60_000);
        n2.insert_call(&call(ca(2), 2_000)).unwrap();
        n2.insert_recording(&recording(re(2), ca(2), 2_000))
            .unwrap();
        let sids =
            |calls: Vec<crate::CallRecord>| calls.into_iter().map(|c| c.sid).collect::<Vec<_>>();
        let recs =
            |recs: Vec<crate::RecordingRecord>| recs.into_iter().map(|r| r.sid).collect::<Vec<_>>();
        assert_eq!(sids(n1.open_calls().unwrap()), [ca(1)]);
        assert_eq!(sids(n2.open_calls().unwrap()), [ca(2)]);
        assert_eq!(recs(n1.recordings_in_progress().unwrap()), [re(1)]);
        assert_eq!(recs(n2.recordings_in_progress().unwrap()), [re(2)]);
        // A node alone (no cluster) recovers everything, as before.
        let alone = reopen(dir.path());
        assert_eq!(sids(alone.open_calls().unwrap()), [ca(1), ca(2)]);
        assert_eq!(
            recs(alone.recordings_in_progress().unwrap()),
            [re(1), re(2)]
        );
    }

    #[test]
    fn a_claimed_callback_is_one_nodes_until_its_lease_runs_out() {
        let (dir, store) = store();
        let n1 = store.with_node("n1", 10_000);
        let n2 = reopen(dir.path()).with_node("n2", 10_000);
        n1.enqueue(&outbox_item("k1", "g1")).unwrap();
        n1.enqueue(&outbox_item("k2", "g1")).unwrap();
        n1.enqueue(&outbox_item("k3", "g2")).unwrap();
        let keys = |items: Vec<crate::OutboxItem>| {
            items
                .into_iter()
                .map(|i| i.idempotency_key)
                .collect::<Vec<_>>()
        };
        // Heads of each group only, and each to one node.
        assert_eq!(keys(n1.claim_due(1_000, 1).unwrap()), ["k1"]);
        let k3 = n2.claim_due(1_000, 10).unwrap();
        assert_eq!(keys(k3.clone()), ["k3"]);
        assert!(n2.claim_due(1_000, 10).unwrap().is_empty());
        n2.delivered(k3[0].id).unwrap();
        // n1 dies holding k1: once its lease is over, n2 takes it; k2 waits behind it.
        assert!(n2.claim_due(10_999, 10).unwrap().is_empty());
        let taken = n2.claim_due(11_000, 10).unwrap();
        assert_eq!(keys(taken.clone()), ["k1"]);
        n2.delivered(taken[0].id).unwrap();
        let next = n2.claim_due(11_000, 10).unwrap();
        assert_eq!(keys(next.clone()), ["k2"]);
        // A failed attempt gives the lease back: due again at its retry time, to any node.
        n2.retry_at(next[0].id, 12_000).unwrap();
        assert!(n1.claim_due(11_999, 10).unwrap().is_empty());
        assert_eq!(keys(n1.claim_due(12_000, 10).unwrap()), ["k2"]);
        // n1 restarts: what it had claimed is due again at once, not at the lease's end.
        assert!(n2.claim_due(12_001, 10).unwrap().is_empty());
        assert_eq!(n2.release_own_claims().unwrap(), 0);
        assert_eq!(n1.release_own_claims().unwrap(), 1);
        assert_eq!(keys(n2.claim_due(12_001, 10).unwrap()), ["k2"]);
    }

    #[test]
    fn a_transcription_job_is_taken_over_only_when_its_node_stops_renewing() {
        let (dir, store) = store();
        let n1 = store.with_node("n1", 10_000).with_job_lease(60_000);
        let n2 = reopen(dir.path())
            .with_node("n2", 10_000)
            .with_job_lease(60_000);
        n1.insert_recording(&recording(re(1), ca(1), 1_000))
            .unwrap();
        n1.insert_transcription(&transcription(tr(1), re(1), 1_000))
            .unwrap();
        n1.insert_transcription(&transcription(tr(2), re(1), 1_001))
            .unwrap();
        assert!(n1.start_transcription(&tr(1), 2_000).unwrap());
        assert!(n2.start_transcription(&tr(2), 2_000).unwrap());
        assert!(
            !n2.start_transcription(&tr(1), 2_000).unwrap(),
            "claimed once"
        );
        // n2 restarts: it requeues its own job, not n1's running one.
        assert_eq!(n2.requeue_transcriptions_in_progress(3_000).unwrap(), 1);
        let status = |s: &Store, t| s.get_transcription(&AC, &t).unwrap().unwrap().status;
        assert_eq!(status(&n2, tr(1)), crate::TranscriptionStatus::InProgress);
        assert_eq!(status(&n2, tr(2)), crate::TranscriptionStatus::Queued);
        // n1 died: its job is back in the queue once the lease is over, not before.
        assert_eq!(n2.requeue_expired_transcriptions(61_999).unwrap(), 0);
        assert_eq!(n2.requeue_expired_transcriptions(62_000).unwrap(), 1);
        assert_eq!(status(&n2, tr(1)), crate::TranscriptionStatus::Queued);
        assert!(n2.start_transcription(&tr(1), 62_001).unwrap());
    }

    #[test]
    fn a_job_lease_is_one_nodes_until_it_runs_out() {
        let (dir, store) = store();
        let n1 = store.with_node("n1", 10_000);
        let n2 = reopen(dir.path()).with_node("n2", 10_000);
        assert!(n1.claim_job("retention", 1_000, 3_600_000).unwrap());
        assert!(!n2.claim_job("retention", 2_000, 3_600_000).unwrap());
        assert!(
            n1.claim_job("retention", 2_000, 3_600_000).unwrap(),
            "renewed"
        );
        assert!(
            n2.claim_job("other", 2_000, 1_000).unwrap(),
            "leases are per job"
        );
        // n1 stops renewing: the lease is n2's once it ran out.
        assert!(!n2.claim_job("retention", 3_601_999, 3_600_000).unwrap());
        assert!(n2.claim_job("retention", 3_602_000, 3_600_000).unwrap());
        assert!(!n1.claim_job("retention", 3_602_001, 3_600_000).unwrap());
    }
}
