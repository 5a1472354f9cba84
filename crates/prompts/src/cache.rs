//! Shared by `<Play>` and `<Say>`: a least-recently-used map bounded by bytes, and
//! single-flight so concurrent first requests for one key do the work once.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

/// Locks even if another thread panicked while holding the lock: the maps stay consistent
/// because every mutation is a single insert/remove.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// LRU by total weight (bytes). Eviction scans all entries: prompts number in the hundreds.
pub(crate) struct Lru<K, V> {
    entries: HashMap<K, (V, usize, u64)>,
    tick: u64,
    bytes: usize,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            tick: 0,
            bytes: 0,
            capacity,
        }
    }

    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(v, _, used)| {
            *used = tick;
            v.clone()
        })
    }

    /// Inserts, evicting the least recently used entries to stay within capacity. An entry
    /// heavier than the whole capacity is not kept (returns false).
    pub(crate) fn insert(&mut self, key: K, value: V, weight: usize) -> bool {
        self.remove(&key);
        if weight > self.capacity {
            return false;
        }
        while self.bytes + weight > self.capacity {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
        self.tick += 1;
        self.bytes += weight;
        self.entries.insert(key, (value, weight, self.tick));
        true
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if let Some((_, weight, _)) = self.entries.remove(key) {
            self.bytes -= weight;
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Concurrent callers with the same key share one run of the work and its result.
pub(crate) struct SingleFlight<K, T> {
    inflight: Mutex<HashMap<K, Arc<OnceCell<T>>>>,
}

impl<K, T> Default for SingleFlight<K, T> {
    fn default() -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, T: Clone> SingleFlight<K, T> {
    /// Runs `work` unless a run for `key` is under way, in which case its result is awaited.
    /// If the running caller is cancelled, a waiting caller runs its own `work` instead.
    /// `work` should consult the cache first: a caller arriving just after a run finished
    /// starts a new run.
    pub(crate) async fn run<F, Fut>(&self, key: K, work: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = lock(&self.inflight).entry(key.clone()).or_default().clone();
        let result = cell.get_or_init(work).await.clone();
        let mut inflight = lock(&self.inflight);
        if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inflight.remove(&key);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn lru_evicts_least_recently_used_to_stay_within_bytes() {
        let mut lru = Lru::new(100);
        assert!(lru.insert("a", 1, 40));
        assert!(lru.insert("b", 2, 40));
        assert_eq!(lru.get(&"a"), Some(1)); // b is now the oldest
        assert!(lru.insert("c", 3, 40));
        assert_eq!(lru.get(&"b"), None);
        assert_eq!((lru.get(&"a"), lru.get(&"c")), (Some(1), Some(3)));
        assert_eq!((lru.bytes(), lru.len()), (80, 2));
    }

    #[test]
    fn lru_refuses_an_entry_larger_than_capacity_and_replaces_same_key() {
        let mut lru = Lru::new(100);
        assert!(lru.insert("a", 1, 60));
        assert!(!lru.insert("big", 2, 101));
        assert_eq!(lru.get(&"a"), Some(1));
        assert!(lru.insert("a", 5, 70));
        assert_eq!((lru.get(&"a"), lru.bytes(), lru.len()), (Some(5), 70, 1));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights: Arc<SingleFlight<&'static str, u32>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (flights, runs) = (flights.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .run("k", || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        7
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Finished flights are forgotten: the next caller runs again.
        assert_eq!(flights.run("k", || async { 8 }).await, 8);
        assert!(lock(&flights.inflight).is_empty());
    }
}
