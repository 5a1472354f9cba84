//! Requests per API token and calendar month, persisted so a restart does not reset a
//! monthly quota (SPEC §8).

use crate::db::params;
use crate::{Store, StoreError};

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what: "token_use.count",
        value: v.to_string(),
    })
}

impl Store {
    /// Requests counted for `token_id` in `month` (`YYYY-MM`, UTC); 0 if none.
    pub fn count_token_use(&self, token_id: &str, month: &str) -> Result<u64, StoreError> {
        let n: Option<i64> = self.with_db(|db| {
            db.query_opt(
                "count token use",
                "SELECT count FROM token_use WHERE token_id = ?1 AND month = ?2",
                params![token_id, month],
            )?
            .map(|r| r.get(0))
            .transpose()
        })?;
        n.map_or(Ok(0), to_u64)
    }

    /// Counts one request; returns the new count.
    pub fn record_token_use(&self, token_id: &str, month: &str) -> Result<u64, StoreError> {
        self.record_token_use_within(token_id, month, u64::MAX)
            .map(|n| n.unwrap_or(u64::MAX))
    }

    /// Counts one request only while fewer than `quota` are counted; returns the new count,
    /// or `None` (nothing counted) when the quota is spent. Check and count are one statement,
    /// so concurrent requests cannot overshoot.
    pub fn record_token_use_within(
        &self,
        token_id: &str,
        month: &str,
        quota: u64,
    ) -> Result<Option<u64>, StoreError> {
        if quota == 0 {
            return Ok(None);
        }
        let quota = i64::try_from(quota).unwrap_or(i64::MAX);
        // Qualified: PostgreSQL finds a bare `count` ambiguous with `excluded.count`.
        let n: Option<i64> = self.with_db(|db| {
            db.query_opt(
                "record token use",
                "INSERT INTO token_use (token_id, month, count) VALUES (?1, ?2, 1) \
                 ON CONFLICT (token_id, month) DO UPDATE SET count = token_use.count + 1 \
                 WHERE token_use.count < ?3 \
                 RETURNING count",
                params![token_id, month, quota],
            )?
            .map(|r| r.get(0))
            .transpose()
        })?;
        n.map(to_u64).transpose()
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn token_use_counts_per_token_and_month_and_survives_reopen() {
        let (dir, store) = store();
        assert_eq!(store.count_token_use("a", "2024-03").unwrap(), 0);
        assert_eq!(store.record_token_use("a", "2024-03").unwrap(), 1);
        assert_eq!(store.record_token_use("a", "2024-03").unwrap(), 2);
        assert_eq!(store.record_token_use("a", "2024-04").unwrap(), 1);
        assert_eq!(store.record_token_use("b", "2024-03").unwrap(), 1);
        drop(store);
        let again = reopen(dir.path());
        assert_eq!(again.count_token_use("a", "2024-03").unwrap(), 2);
        assert_eq!(again.count_token_use("a", "2024-04").unwrap(), 1);
        assert_eq!(again.count_token_use("c", "2024-03").unwrap(), 0);
    }

    #[test]
    fn quota_stops_counting_at_the_limit() {
        let (_d, store) = store();
        assert_eq!(store.record_token_use_within("a", "m", 2).unwrap(), Some(1));
        assert_eq!(store.record_token_use_within("a", "m", 2).unwrap(), Some(2));
        assert_eq!(store.record_token_use_within("a", "m", 2).unwrap(), None);
        assert_eq!(
            store.count_token_use("a", "m").unwrap(),
            2,
            "refusals are not counted"
        );
        assert_eq!(store.record_token_use_within("z", "m", 0).unwrap(), None);
        assert_eq!(store.count_token_use("z", "m").unwrap(), 0);
        // A higher quota (config changed) lets it continue.
        assert_eq!(store.record_token_use_within("a", "m", 3).unwrap(), Some(3));
    }
}
