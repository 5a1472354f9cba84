//! The `calls` table.

use crate::db::{params, Row};
use crate::{into_page, to_u32, AccountSid, CallRecord, CallSid, Page, Store, StoreError};

const COLUMNS: &str =
    "sid, account_sid, from_addr, to_addr, direction, status, date_created, date_updated, \
                       start_time, end_time, duration, parent_call_sid";

fn from_row(r: &Row) -> Result<CallRecord, StoreError> {
    let duration: Option<i64> = r.get(10)?;
    Ok(CallRecord {
        sid: r.get(0)?,
        account_sid: r.get(1)?,
        from: r.get(2)?,
        to: r.get(3)?,
        direction: r.get(4)?,
        status: r.get(5)?,
        date_created_ms: r.get(6)?,
        date_updated_ms: r.get(7)?,
        start_time_ms: r.get(8)?,
        end_time_ms: r.get(9)?,
        duration_secs: duration.map(|d| to_u32("calls.duration", d)).transpose()?,
        parent_call_sid: r.get(11)?,
    })
}

impl Store {
    pub fn insert_call(&self, call: &CallRecord) -> Result<(), StoreError> {
        self.insert_call_with_request_id(call, None)
    }

    /// Inserts the call with the client-supplied id (SIP `X-Request-Id`) it was set up with.
    pub fn insert_call_with_request_id(
        &self,
        call: &CallRecord,
        request_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                "insert call",
                "INSERT INTO calls (sid, account_sid, from_addr, to_addr, direction, status, date_created, \
                 date_updated, start_time, end_time, duration, request_id, parent_call_sid, node_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    call.sid,
                    call.account_sid,
                    call.from,
                    call.to,
                    call.direction,
                    call.status,
                    call.date_created_ms,
                    call.date_updated_ms,
                    call.start_time_ms,
                    call.end_time_ms,
                    call.duration_secs,
                    request_id,
                    call.parent_call_sid,
                    self.node(),
                ],
            )
        })?;
        Ok(())
    }

    /// Status (and optionally start/end/duration) of a call; `date_updated` = `now_ms`.
    ///
    /// `date_updated` is taken from `call.date_updated_ms`. A `None` start/end/duration keeps
    /// the stored value (a call never loses its start time); sid, account, from, to and
    /// direction never change. Unknown sid → [`StoreError::NotFound`].
    pub fn update_call(&self, call: &CallRecord) -> Result<(), StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "update call",
                "UPDATE calls SET status = ?2, date_updated = ?3, start_time = COALESCE(?4, start_time), \
                 end_time = COALESCE(?5, end_time), duration = COALESCE(?6, duration) WHERE sid = ?1",
                params![
                    call.sid,
                    call.status,
                    call.date_updated_ms,
                    call.start_time_ms,
                    call.end_time_ms,
                    call.duration_secs,
                ],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "call",
                sid: call.sid.to_string(),
            });
        }
        Ok(())
    }

    pub fn get_call(
        &self,
        account_sid: &AccountSid,
        sid: &CallSid,
    ) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM calls WHERE sid = ?1 AND account_sid = ?2");
        self.with_db(|db| {
            db.query_opt("get call", &sql, params![sid, account_sid])?
                .as_ref()
                .map(from_row)
                .transpose()
        })
    }

    /// Calls that never ended (`ringing` or `in-progress`): after a crash, start-up recovery
    /// ends them. In a cluster, only this node's (and calls of no node).
    pub fn open_calls(&self) -> Result<Vec<CallRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM calls WHERE status IN ('ringing', 'in-progress') \
             AND (CAST(?1 AS TEXT) IS NULL OR node_id IS NULL OR node_id = ?1) ORDER BY date_created"
        );
        self.with_db(|db| db.query_map("open calls", &sql, params![self.node()], from_row))
    }

    /// Stores the client-supplied id of a call. Unknown sid → [`StoreError::NotFound`].
    pub fn set_call_request_id(&self, sid: &CallSid, request_id: &str) -> Result<(), StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "set call request id",
                "UPDATE calls SET request_id = ?2 WHERE sid = ?1",
                params![sid, request_id],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "call",
                sid: sid.to_string(),
            });
        }
        Ok(())
    }

    /// The newest call set up with this client-supplied id (any account).
    pub fn find_call_by_request_id(
        &self,
        request_id: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM calls WHERE request_id = ?1 ORDER BY date_created DESC LIMIT 1"
        );
        self.with_db(|db| {
            db.query_opt("find call by request id", &sql, params![request_id])?
                .as_ref()
                .map(from_row)
                .transpose()
        })
    }

    /// Newest first; `page` is 0-based.
    /// `parent`: only the child calls of that call (`ParentCallSid`).
    pub fn list_calls(
        &self,
        account_sid: &AccountSid,
        parent: Option<&CallSid>,
        page_size: u32,
        page: u32,
    ) -> Result<Page<CallRecord>, StoreError> {
        let filter = CallFilter {
            parent: parent.cloned(),
            ..CallFilter::default()
        };
        self.list_calls_filtered(account_sid, &filter, page_size, page, None)
    }

    /// Newest first, the calls `filter` lets through: page `page` (0-based, offset paging), or
    /// with `after` the page after the call keyed `(date_created_ms, sid)` (keyset paging:
    /// constant cost at any depth; `page` is then ignored).
    pub fn list_calls_filtered(
        &self,
        account_sid: &AccountSid,
        filter: &CallFilter,
        page_size: u32,
        page: u32,
        after: Option<(i64, &str)>,
    ) -> Result<Page<CallRecord>, StoreError> {
        let offset = if after.is_some() {
            0
        } else {
            i64::from(page) * i64::from(page_size)
        };
        let sql = list_sql(filter, after.is_some());
        let items = self.with_db(|db| {
            db.query_map(
                "list calls",
                &sql,
                params![
                    account_sid,
                    filter.parent,
                    filter.from,
                    filter.to,
                    filter.status,
                    filter.created_on_or_after_ms,
                    filter.created_before_ms,
                    after.map(|a| a.0),
                    after.map(|a| a.1),
                    i64::from(page_size) + 1,
                    offset
                ],
                from_row,
            )
        })?;
        Ok(into_page(items, page_size))
    }
}

/// Filters of `GET …/Calls.json`: Twilio's `ParentCallSid`, `From`, `To`, `Status`,
/// `StartTime` (on `date_created`, which is when the call reached Hark).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub parent: Option<CallSid>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub status: Option<crate::CallStatus>,
    pub created_on_or_after_ms: Option<i64>,
    pub created_before_ms: Option<i64>,
}

/// Only the terms that filter, so the planner can pick the index of the one that narrows
/// (number, status, parent) and still read it in list order.
fn list_sql(filter: &CallFilter, keyset: bool) -> String {
    let mut sql = format!("SELECT {COLUMNS} FROM calls WHERE account_sid = ?1");
    if filter.parent.is_some() {
        sql.push_str(" AND parent_call_sid = ?2");
    }
    if filter.from.is_some() {
        sql.push_str(" AND from_addr = ?3");
    }
    if filter.to.is_some() {
        sql.push_str(" AND to_addr = ?4");
    }
    if filter.status.is_some() {
        sql.push_str(" AND status = ?5");
    }
    if filter.created_on_or_after_ms.is_some() {
        sql.push_str(" AND date_created >= ?6");
    }
    if filter.created_before_ms.is_some() {
        sql.push_str(" AND date_created < ?7");
    }
    if keyset {
        sql.push_str(" AND (date_created, sid) < (?8, ?9)");
    }
    sql.push_str(" ORDER BY date_created DESC, sid DESC LIMIT ?10 OFFSET ?11");
    sql
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{CallStatus, StoreError};

    #[test]
    fn call_round_trips_and_is_scoped_to_its_account() {
        let (_d, store) = store();
        let mut c = call(ca(1), 1_000);
        c.start_time_ms = Some(1_100);
        c.end_time_ms = Some(9_100);
        c.duration_secs = Some(8);
        store.insert_call(&c).unwrap();
        assert_eq!(store.get_call(&AC, &ca(1)).unwrap(), Some(c));
        assert_eq!(store.get_call(&AC2, &ca(1)).unwrap(), None);
        assert_eq!(store.get_call(&AC, &ca(2)).unwrap(), None);
    }

    #[test]
    fn open_calls_are_the_ringing_and_in_progress_ones_oldest_first() {
        let (_d, store) = store();
        let mut answered = call(ca(2), 2_000);
        answered.status = CallStatus::InProgress;
        let mut done = call(ca(3), 3_000);
        done.status = CallStatus::Completed;
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        store.insert_call(&answered).unwrap();
        store.insert_call(&done).unwrap();
        let open: Vec<_> = store
            .open_calls()
            .unwrap()
            .into_iter()
            .map(|c| c.sid)
            .collect();
        assert_eq!(open, [ca(1), ca(2)]);
    }

    #[test]
    fn filtered_list_matches_number_status_and_dates_and_keyset_pages_it() {
        let (_d, store) = store();
        for i in 1..=6u128 {
            let mut c = call(ca(i), i as i64 * 1_000);
            c.from = if i % 2 == 0 {
                "+15550000002"
            } else {
                "+15550000001"
            }
            .into();
            c.to = if i == 3 {
                "sip:other@hark"
            } else {
                "sip:+15550100@hark"
            }
            .into();
            c.status = if i == 5 {
                CallStatus::Busy
            } else {
                CallStatus::Completed
            };
            store.insert_call(&c).unwrap();
        }
        let sids = |f: &crate::CallFilter, size: u32, after: Option<(i64, &str)>| -> Vec<u128> {
            store
                .list_calls_filtered(&AC, f, size, 0, after)
                .unwrap()
                .items
                .iter()
                .map(|c| (1..=6u128).find(|i| ca(*i) == c.sid).unwrap())
                .collect()
        };
        let f =
            |from: Option<&str>, to: Option<&str>, status: Option<CallStatus>| crate::CallFilter {
                from: from.map(str::to_owned),
                to: to.map(str::to_owned),
                status,
                ..Default::default()
            };
        assert_eq!(sids(&f(None, None, None), 50, None), [6, 5, 4, 3, 2, 1]);
        assert_eq!(
            sids(&f(Some("+15550000001"), None, None), 50, None),
            [5, 3, 1]
        );
        assert_eq!(sids(&f(None, Some("sip:other@hark"), None), 50, None), [3]);
        assert_eq!(sids(&f(None, None, Some(CallStatus::Busy)), 50, None), [5]);
        assert_eq!(
            sids(
                &f(Some("+15550000001"), None, Some(CallStatus::Completed)),
                50,
                None
            ),
            [3, 1]
        );
        assert!(sids(&f(Some("+1999"), None, None), 50, None).is_empty());
        let dated = crate::CallFilter {
            created_on_or_after_ms: Some(2_000),
            created_before_ms: Some(5_000),
            ..Default::default()
        };
        assert_eq!(sids(&dated, 50, None), [4, 3, 2]);
        // Keyset: the page after call 4 (its key), two at a time, filters kept.
        let key = ca(4);
        assert_eq!(
            sids(&f(None, None, None), 2, Some((4_000, key.as_str()))),
            [3, 2]
        );
        let odd = f(Some("+15550000001"), None, None);
        assert_eq!(sids(&odd, 1, Some((5_000, ca(5).as_str()))), [3]);
        let page = store
            .list_calls_filtered(&AC, &odd, 1, 0, Some((3_000, ca(3).as_str())))
            .unwrap();
        assert!(!page.has_more);
        // Another account's calls never show.
        assert!(store
            .list_calls_filtered(&AC2, &f(None, None, None), 50, 0, None)
            .unwrap()
            .items
            .is_empty());
    }

    #[test]
    fn duplicate_call_sid_is_rejected() {
        let (_d, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        let err = store.insert_call(&call(ca(1), 2_000)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Query {
                    what: "insert call",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            store
                .get_call(&AC, &ca(1))
                .unwrap()
                .unwrap()
                .date_created_ms,
            1_000
        );
    }

    #[test]
    fn update_call_sets_status_and_keeps_times_it_is_not_given() {
        let (_d, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        let mut answered = call(ca(1), 1_000);
        answered.status = CallStatus::InProgress;
        answered.date_updated_ms = 1_500;
        answered.start_time_ms = Some(1_500);
        answered.from = "sip:mallory@example.com".into(); // immutable: ignored
        store.update_call(&answered).unwrap();

        let mut ended = call(ca(1), 1_000);
        ended.status = CallStatus::Completed;
        ended.date_updated_ms = 4_500;
        ended.end_time_ms = Some(4_500);
        ended.duration_secs = Some(3);
        store.update_call(&ended).unwrap();

        let got = store.get_call(&AC, &ca(1)).unwrap().unwrap();
        assert_eq!(got.status, CallStatus::Completed);
        assert_eq!(got.date_updated_ms, 4_500);
        assert_eq!(got.start_time_ms, Some(1_500));
        assert_eq!(got.end_time_ms, Some(4_500));
        assert_eq!(got.duration_secs, Some(3));
        assert_eq!(got.from, "sip:alice@example.com");
        assert_eq!(got.date_created_ms, 1_000);
    }

    #[test]
    fn update_of_unknown_call_is_not_found() {
        let (_d, store) = store();
        let err = store.update_call(&call(ca(9), 1)).unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { what: "call", ref sid } if sid == ca(9).as_str()),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_stored_sid_is_a_query_error_not_a_panic() {
        let (_d, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        // Only Hark writes rows, so this is a damaged file: the read fails, the daemon goes on.
        store.exec_raw("UPDATE calls SET sid = 'CA1'");
        let err = store.list_calls(&AC, None, 10, 0).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    what: "list calls",
                    ref value,
                } if value.contains("CA1")
            ),
            "{err:?}"
        );
        assert!(store.open_calls().is_err());
    }

    #[test]
    fn list_calls_pages_newest_first_ties_by_sid_descending() {
        let (_d, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        store.insert_call(&call(ca(3), 2_000)).unwrap();
        store.insert_call(&call(ca(2), 2_000)).unwrap();
        let mut other = call(ca(4), 5_000);
        other.account_sid = AC2.clone();
        store.insert_call(&other).unwrap();

        let sids = |p: &crate::Page<crate::CallRecord>| {
            p.items.iter().map(|c| c.sid.clone()).collect::<Vec<_>>()
        };
        let p0 = store.list_calls(&AC, None, 2, 0).unwrap();
        assert_eq!(sids(&p0), [ca(3), ca(2)]);
        assert!(p0.has_more);
        let p1 = store.list_calls(&AC, None, 2, 1).unwrap();
        assert_eq!(sids(&p1), [ca(1)]);
        assert!(!p1.has_more);
        let p2 = store.list_calls(&AC, None, 2, 2).unwrap();
        assert!(p2.items.is_empty() && !p2.has_more);
        let exact = store.list_calls(&AC, None, 3, 0).unwrap();
        assert_eq!(exact.items.len(), 3);
        assert!(!exact.has_more, "exactly page_size rows left: no next page");
    }

    #[test]
    fn child_calls_keep_their_parent_and_list_by_it() {
        let (_d, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        let mut child = call(ca(2), 2_000);
        child.direction = crate::Direction::OutboundDial;
        child.parent_call_sid = Some(ca(1));
        store.insert_call(&child).unwrap();
        store.insert_call(&call(ca(3), 3_000)).unwrap();
        let got = store.get_call(&AC, &ca(2)).unwrap().unwrap();
        assert_eq!(got.parent_call_sid, Some(ca(1)));
        assert_eq!(got.direction, crate::Direction::OutboundDial);
        let children = store.list_calls(&AC, Some(&ca(1)), 10, 0).unwrap();
        assert_eq!(children.items.len(), 1);
        assert_eq!(children.items[0].sid, ca(2));
        assert_eq!(store.list_calls(&AC, None, 10, 0).unwrap().items.len(), 3);
    }
}

#[cfg(test)]
mod request_id_tests {
    use crate::testutil::*;
    use crate::StoreError;

    #[test]
    fn request_id_finds_the_newest_call_carrying_it() {
        let (_d, store) = store();
        store
            .insert_call_with_request_id(&call(ca(1), 1_000), Some("req-42"))
            .unwrap();
        store.insert_call(&call(ca(2), 2_000)).unwrap();
        assert_eq!(
            store.find_call_by_request_id("req-42").unwrap(),
            Some(call(ca(1), 1_000))
        );
        assert_eq!(store.find_call_by_request_id("req-43").unwrap(), None);
        // A later call reusing the id wins; the id can be set after the insert too.
        store.insert_call(&call(ca(3), 3_000)).unwrap();
        store.set_call_request_id(&ca(3), "req-42").unwrap();
        assert_eq!(
            store
                .find_call_by_request_id("req-42")
                .unwrap()
                .unwrap()
                .sid,
            ca(3)
        );
        let err = store.set_call_request_id(&ca(9), "x").unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { what: "call", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn request_id_lookup_uses_its_index() {
        let Some((_d, store)) = sqlite_only() else {
            return;
        };
        let conn = &store.sqlite_conn().conn;
        let plan: String = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT sid FROM calls WHERE request_id = ?1 \
                 ORDER BY date_created DESC LIMIT 1",
            )
            .unwrap()
            .query_map(["x"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join(" | ");
        assert!(plan.contains("calls_by_request_id"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
