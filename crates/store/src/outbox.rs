//! The webhook outbox: status callbacks survive restarts and go out in order per group.
//!
//! States: `pending` → `delivered` | `failed` (given up). Rows are kept after they leave
//! `pending`, so a redelivery can be told apart from a new callback by its idempotency key,
//! until [`Store::prune_outbox`] drops the old ones.

use crate::db::{params, Row};
use crate::{to_u32, OutboxItem, Store, StoreError};

/// What one delivery attempt got (the console's webhooks page shows the last one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// When it started, Unix ms.
    pub at_ms: i64,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What comes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptNext {
    Delivered,
    RetryAt(i64),
    GiveUp,
}

/// A callback as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub group_key: String,
    pub url: String,
    pub method: String,
    pub params: Vec<(String, String)>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub last_attempt_ms: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub next_attempt_ms: i64,
}

fn from_row(r: &Row) -> Result<OutboxItem, StoreError> {
    let params_json: String = r.get(5)?;
    let attempts: i64 = r.get(6)?;
    let params = match serde_json::from_str::<Vec<(String, String)>>(&params_json) {
        Ok(p) => p,
        Err(_) => {
            return Err(StoreError::Corrupt {
                what: "outbox.params",
                value: params_json,
            })
        }
    };
    Ok(OutboxItem {
        id: r.get(0)?,
        idempotency_key: r.get(1)?,
        group_key: r.get(2)?,
        url: r.get(3)?,
        method: r.get(4)?,
        params,
        attempts: to_u32("outbox.attempts", attempts)?,
        next_attempt_ms: r.get(7)?,
    })
}

impl Store {
    /// Queues a callback; returns its id.
    ///
    /// `item.id` is ignored (the store assigns it). Enqueueing an `idempotency_key` that is
    /// already in the outbox (in any state) adds nothing and returns the existing id, so
    /// replaying a state change after a crash cannot send a callback twice.
    pub fn enqueue(&self, item: &OutboxItem) -> Result<i64, StoreError> {
        let params_json = serde_json::to_string(&item.params).map_err(|e| StoreError::Corrupt {
            what: "outbox.params",
            value: e.to_string(),
        })?;
        self.with_db(|db| {
            let inserted = db.query_opt(
                "enqueue callback",
                "INSERT INTO outbox (idempotency_key, group_key, url, method, params, attempts, next_attempt_ms, state, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?7) ON CONFLICT (idempotency_key) DO NOTHING \
                 RETURNING id",
                params![
                    item.idempotency_key,
                    item.group_key,
                    item.url,
                    item.method,
                    params_json,
                    item.attempts,
                    item.next_attempt_ms,
                ],
            )?;
            if let Some(row) = inserted {
                return row.get(0);
            }
            db.query_one(
                "enqueue callback",
                "SELECT id FROM outbox WHERE idempotency_key = ?1",
                params![item.idempotency_key],
            )?
            .get(0)
        })
    }

    /// Items due at `now_ms`, oldest first, at most one per `group_key` (the head of each group,
    /// so a group is delivered in order), at most `limit`.
    ///
    /// The head is the pending item with the lowest id; if it is not due yet (backing off),
    /// nothing of its group is returned — later items wait behind it.
    pub fn due(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        self.with_db(|db| {
            db.query_map(
                "due callbacks",
                "SELECT id, idempotency_key, group_key, url, method, params, attempts, next_attempt_ms \
                 FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' GROUP BY group_key) \
                 AND next_attempt_ms <= ?1 ORDER BY id LIMIT ?2",
                params![now_ms, limit],
                from_row,
            )
        })
    }

    /// Like [`Store::due`], for one node of several: the items are leased to this node
    /// ([`Store::with_node`]) so no other node delivers them meanwhile; an item whose lease ran
    /// out (its node died mid-delivery) is due again to any node. Oldest first.
    pub fn claim_due(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        let (owner, until) = (self.owner(), now_ms.saturating_add(self.lease_ms()));
        let mut items = self.tx("claim callbacks", |db| {
            let sql = format!(
                "UPDATE outbox SET lease_owner = ?3, lease_until = ?4 WHERE id IN (\
                 SELECT id FROM outbox WHERE id IN \
                 (SELECT MIN(id) FROM outbox WHERE state = 'pending' GROUP BY group_key) \
                 AND next_attempt_ms <= ?1 AND lease_until <= ?1 ORDER BY id LIMIT ?2{}) \
                 RETURNING id, idempotency_key, group_key, url, method, params, attempts, next_attempt_ms",
                db.dialect().skip_locked()
            );
            db.query_map(
                "claim callbacks",
                &sql,
                params![now_ms, limit, owner, until],
                from_row,
            )
        })?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    /// Gives back this node's claims (at start-up: the deliveries it had running died with
    /// it); returns how many.
    pub fn release_own_claims(&self) -> Result<u64, StoreError> {
        self.with_db(|db| {
            db.execute(
                "release callback claims",
                "UPDATE outbox SET lease_owner = NULL, lease_until = 0 \
                 WHERE state = 'pending' AND lease_owner = ?1",
                params![self.owner()],
            )
        })
    }

    /// Marks an item delivered. Only a pending item changes; repeating the call is harmless.
    pub fn delivered(&self, id: i64) -> Result<(), StoreError> {
        self.finish(id, "delivered", "callback delivered")
    }

    /// Another attempt later (`attempts` + 1).
    ///
    /// Only a pending item changes.
    pub fn retry_at(&self, id: i64, next_attempt_ms: i64) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                "retry callback",
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2, lease_owner = NULL, \
                 lease_until = 0 WHERE id = ?1 AND state = 'pending'",
                params![id, next_attempt_ms],
            )
        })?;
        Ok(())
    }

    /// Gives up on an item (kept with state `failed` for inspection); the group moves on.
    pub fn give_up(&self, id: i64) -> Result<(), StoreError> {
        self.finish(id, "failed", "give up callback")
    }

    fn finish(&self, id: i64, state: &'static str, what: &'static str) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                what,
                "UPDATE outbox SET state = ?2, attempts = attempts + 1 WHERE id = ?1 AND state = 'pending'",
                params![id, state],
            )
        })?;
        Ok(())
    }

    /// Deletes delivered and given-up items whose last scheduled attempt is before
    /// `before_ms`; returns how many. Pending items are never touched.
    pub fn prune_outbox(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.delete_in_batches(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE state IN ('delivered', 'failed') AND next_attempt_ms < ?1 LIMIT ?2)",
            before_ms,
            "prune outbox",
        )
    }

    /// Ends one delivery attempt: what it got (`attempt`), then delivered, another attempt at
    /// a time, or given up. Only a pending item changes.
    pub fn attempt_finished(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
        next: AttemptNext,
    ) -> Result<(), StoreError> {
        let (state, next_ms) = match next {
            AttemptNext::Delivered => ("delivered", None),
            AttemptNext::RetryAt(at) => ("pending", Some(at)),
            AttemptNext::GiveUp => ("failed", None),
        };
        self.with_db(|db| {
            db.execute(
                "finish callback attempt",
                "UPDATE outbox SET state = ?2, attempts = attempts + 1, \
                 next_attempt_ms = COALESCE(?3, next_attempt_ms), lease_owner = NULL, lease_until = 0, \
                 last_attempt_ms = ?4, last_status = ?5, last_error = ?6, last_duration_ms = ?7 \
                 WHERE id = ?1 AND state = 'pending'",
                params![
                    id,
                    state,
                    next_ms,
                    attempt.at_ms,
                    attempt.status.map(i64::from),
                    attempt.error,
                    attempt.duration_ms
                ],
            )
        })?;
        Ok(())
    }

    /// Deliveries newest first (`id` descending), `state` if given, ids below `before` if
    /// given, at most `limit`: the console's webhooks page.
    pub fn list_deliveries(
        &self,
        state: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.with_db(|db| {
            db.query_map(
                "list deliveries",
                "SELECT id, group_key, url, method, params, state, attempts, last_status, last_error, \
                 created_ms, last_attempt_ms, last_duration_ms, next_attempt_ms FROM outbox \
                 WHERE (CAST(?1 AS TEXT) IS NULL OR state = ?1) AND (CAST(?2 AS BIGINT) IS NULL OR id < ?2) \
                 ORDER BY id DESC LIMIT ?3",
                params![state, before, limit],
                |r| {
                    let params_json: String = r.get(4)?;
                    let params: Vec<(String, String)> =
                        serde_json::from_str(&params_json).unwrap_or_default();
                    let status: Option<i64> = r.get(7)?;
                    let attempts: i64 = r.get(6)?;
                    Ok(Delivery {
                        id: r.get(0)?,
                        group_key: r.get(1)?,
                        url: r.get(2)?,
                        method: r.get(3)?,
                        params,
                        state: r.get(5)?,
                        attempts: to_u32("outbox.attempts", attempts)?,
                        last_status: status.and_then(|s| u16::try_from(s).ok()),
                        last_error: r.get(8)?,
                        created_ms: r.get(9)?,
                        last_attempt_ms: r.get(10)?,
                        last_duration_ms: r.get(11)?,
                        next_attempt_ms: r.get(12)?,
                    })
                },
            )
        })
    }

    /// Items not yet delivered or given up.
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.with_db(|db| {
            db.query_one(
                "pending count",
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
                params![],
            )?
            .get(0)
        })?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt {
            what: "outbox pending count",
            value: n.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::db::params;
    use crate::testutil::*;
    use crate::Store;

    fn due_keys(store: &Store, now: i64) -> Vec<String> {
        store
            .due(now, 100)
            .unwrap()
            .into_iter()
            .map(|i| i.idempotency_key)
            .collect()
    }

    fn state(store: &Store, id: i64) -> String {
        store
            .with_db(|db| {
                db.query_one(
                    "outbox state",
                    "SELECT state FROM outbox WHERE id = ?1",
                    params![id],
                )?
                .get(0)
            })
            .unwrap()
    }

    #[test]
    fn enqueued_item_round_trips_with_its_params() {
        let (_d, store) = store();
        let mut item = outbox_item("k1", "RE1");
        item.params
            .push(("Text".into(), "a=b&c \"ü\" \u{0}".into()));
        item.next_attempt_ms = 500;
        let id = store.enqueue(&item).unwrap();
        assert!(store.due(499, 10).unwrap().is_empty());
        let due = store.due(500, 10).unwrap();
        assert_eq!(due, [crate::OutboxItem { id, ..item }]);
    }

    #[test]
    fn attempts_are_kept_and_deliveries_list_newest_first_by_state() {
        let (_d, store) = store();
        let mut ids = Vec::new();
        for k in 0..4 {
            let mut item = outbox_item(&format!("k{k}"), &format!("RE{k}"));
            item.next_attempt_ms = 1_000 + k;
            item.params = vec![("RecordingStatus".into(), "completed".into())];
            ids.push(store.enqueue(&item).unwrap());
        }
        let ok = crate::DeliveryAttempt {
            at_ms: 2_000,
            status: Some(204),
            error: None,
            duration_ms: 7,
        };
        store
            .attempt_finished(ids[0], &ok, crate::AttemptNext::Delivered)
            .unwrap();
        let busy = crate::DeliveryAttempt {
            at_ms: 2_100,
            status: Some(503),
            error: Some("status 503".into()),
            duration_ms: 9,
        };
        store
            .attempt_finished(ids[1], &busy, crate::AttemptNext::RetryAt(9_000))
            .unwrap();
        store
            .attempt_finished(ids[2], &busy, crate::AttemptNext::GiveUp)
            .unwrap();
        // A second report for a finished item changes nothing.
        store
            .attempt_finished(ids[0], &busy, crate::AttemptNext::GiveUp)
            .unwrap();

        let all = store.list_deliveries(None, None, 10).unwrap();
        assert_eq!(
            all.iter().map(|d| d.id).collect::<Vec<_>>(),
            [ids[3], ids[2], ids[1], ids[0]]
        );
        let first = &all[3];
        assert_eq!(
            (
                first.state.as_str(),
                first.attempts,
                first.last_status,
                first.last_duration_ms
            ),
            ("delivered", 1, Some(204), Some(7))
        );
        assert_eq!(
            (first.created_ms, first.last_attempt_ms),
            (1_000, Some(2_000))
        );
        assert_eq!(
            first.params,
            [("RecordingStatus".to_string(), "completed".to_string())]
        );
        let retry = &all[2];
        assert_eq!(
            (
                retry.state.as_str(),
                retry.attempts,
                retry.next_attempt_ms,
                retry.last_error.as_deref()
            ),
            ("pending", 1, 9_000, Some("status 503"))
        );
        assert_eq!(state(&store, ids[2]), "failed");
        let untried = &all[0];
        assert_eq!(
            (
                untried.attempts,
                untried.last_attempt_ms,
                untried.last_status
            ),
            (0, None, None)
        );
        let failed = store.list_deliveries(Some("failed"), None, 10).unwrap();
        assert_eq!(failed.iter().map(|d| d.id).collect::<Vec<_>>(), [ids[2]]);
        let older = store.list_deliveries(None, Some(ids[2]), 10).unwrap();
        assert_eq!(
            older.iter().map(|d| d.id).collect::<Vec<_>>(),
            [ids[1], ids[0]]
        );
        assert_eq!(store.list_deliveries(None, None, 1).unwrap().len(), 1);
        // The retried item is due again at its new time.
        assert!(store.due(8_999, 10).unwrap().iter().all(|i| i.id != ids[1]));
        assert!(store.due(9_000, 10).unwrap().iter().any(|i| i.id == ids[1]));
    }

    #[test]
    fn same_idempotency_key_is_queued_once() {
        let (_d, store) = store();
        let a = store.enqueue(&outbox_item("k1", "RE1")).unwrap();
        let b = store.enqueue(&outbox_item("k1", "RE1")).unwrap();
        assert_eq!(a, b);
        assert_eq!(store.pending_count().unwrap(), 1);
        store.delivered(a).unwrap();
        assert_eq!(
            store.enqueue(&outbox_item("k1", "RE1")).unwrap(),
            a,
            "delivered ones count too"
        );
        assert_eq!(store.pending_count().unwrap(), 0);
    }

    #[test]
    fn due_returns_one_head_per_group_in_id_order() {
        let (_d, store) = store();
        let a1 = store.enqueue(&outbox_item("a1", "REa")).unwrap();
        store.enqueue(&outbox_item("b1", "REb")).unwrap();
        store.enqueue(&outbox_item("a2", "REa")).unwrap();
        store.enqueue(&outbox_item("c1", "REc")).unwrap();
        assert_eq!(due_keys(&store, 0), ["a1", "b1", "c1"]);
        assert_eq!(store.due(0, 2).unwrap().len(), 2, "limit");
        store.delivered(a1).unwrap();
        assert_eq!(due_keys(&store, 0), ["b1", "a2", "c1"]);
    }

    #[test]
    fn a_backing_off_head_blocks_only_its_own_group() {
        let (_d, store) = store();
        let a1 = store.enqueue(&outbox_item("a1", "REa")).unwrap();
        store.enqueue(&outbox_item("a2", "REa")).unwrap();
        store.enqueue(&outbox_item("b1", "REb")).unwrap();
        store.retry_at(a1, 1_000).unwrap();
        assert_eq!(due_keys(&store, 999), ["b1"], "a2 waits behind a1");
        let due = store.due(1_000, 10).unwrap();
        assert_eq!(due[0].idempotency_key, "a1");
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].next_attempt_ms, 1_000);
        store.retry_at(a1, 6_000).unwrap();
        let due = store.due(6_000, 10).unwrap();
        assert_eq!(
            (due[0].idempotency_key.as_str(), due[0].attempts),
            ("a1", 2)
        );
    }

    #[test]
    fn give_up_keeps_the_item_as_failed_and_the_group_moves_on() {
        let (_d, store) = store();
        let a1 = store.enqueue(&outbox_item("a1", "REa")).unwrap();
        store.enqueue(&outbox_item("a2", "REa")).unwrap();
        store.retry_at(a1, 10_000).unwrap();
        assert!(due_keys(&store, 0).is_empty());
        assert_eq!(store.pending_count().unwrap(), 2);
        store.give_up(a1).unwrap();
        assert_eq!(due_keys(&store, 0), ["a2"]);
        assert_eq!(store.pending_count().unwrap(), 1);
        assert_eq!(state(&store, a1), "failed");
    }

    #[test]
    fn finished_items_do_not_change_again() {
        let (_d, store) = store();
        let a1 = store.enqueue(&outbox_item("a1", "REa")).unwrap();
        let b1 = store.enqueue(&outbox_item("b1", "REb")).unwrap();
        store.delivered(a1).unwrap();
        store.give_up(b1).unwrap();
        store.retry_at(a1, 5).unwrap();
        store.give_up(a1).unwrap();
        store.delivered(b1).unwrap();
        store.delivered(12345).unwrap(); // unknown id: nothing to do
        assert_eq!(state(&store, a1), "delivered");
        assert_eq!(state(&store, b1), "failed");
        assert_eq!(store.pending_count().unwrap(), 0);
        assert!(due_keys(&store, i64::MAX).is_empty());
    }

    #[test]
    fn prune_drops_only_old_finished_items() {
        let (_d, store) = store();
        let mut ids = Vec::new();
        for (key, at) in [
            ("old-ok", 100),
            ("old-failed", 100),
            ("old-pending", 100),
            ("new-ok", 900),
        ] {
            let mut item = outbox_item(key, key);
            item.next_attempt_ms = at;
            ids.push(store.enqueue(&item).unwrap());
        }
        store.delivered(ids[0]).unwrap();
        store.give_up(ids[1]).unwrap();
        store.delivered(ids[3]).unwrap();
        assert_eq!(store.prune_outbox(500).unwrap(), 2);
        let left: Vec<i64> = store
            .with_db(|db| {
                db.query_map(
                    "outbox ids",
                    "SELECT id FROM outbox ORDER BY id",
                    params![],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(left, [ids[2], ids[3]]);
        assert_eq!(store.prune_outbox(500).unwrap(), 0);
        assert_eq!(due_keys(&store, 1_000), ["old-pending"]);
    }

    #[test]
    fn pending_outbox_survives_reopen_in_order() {
        let (dir, store) = store();
        let a1 = store.enqueue(&outbox_item("a1", "REa")).unwrap();
        store.enqueue(&outbox_item("a2", "REa")).unwrap();
        store.retry_at(a1, 2_000).unwrap();
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.pending_count().unwrap(), 2);
        assert!(due_keys(&store, 1_999).is_empty());
        let due = store.due(2_000, 10).unwrap();
        assert_eq!((due[0].id, due[0].attempts), (a1, 1));
        // A new id never reuses an old one.
        assert!(store.enqueue(&outbox_item("a3", "REa")).unwrap() > a1 + 1);
    }
}
