//! List/get latency with 100,000 recordings in one account (plus 10,000 in another).
//!
//!     CARGO_TARGET_DIR=/work/target-store cargo run --release -p store --example list_latency
//!
//! Prints a Markdown table; the numbers in crates/store/README.md come from here.

use std::time::{Duration, Instant};

use store::{
    AccountSid, CallSid, OutboxItem, RecordingFilter, RecordingRecord, RecordingSid, Store,
};

const N: usize = 100_000;
const PAGE: u32 = 50;
/// 2024-01-01T00:00:00Z
const T0: i64 = 1_704_067_200_000;
const DAY: i64 = 86_400_000;

fn recording(account: &AccountSid, i: usize) -> RecordingRecord {
    // One recording every ~86 s over 100 days; every 10th shares its predecessor's ms (ties).
    let slot = (i - usize::from(i % 10 == 9)) as i64;
    let created = T0 + slot * 86_400;
    RecordingRecord {
        sid: RecordingSid::from_bits(i as u128),
        account_sid: account.clone(),
        call_sid: CallSid::from_bits((i / 2) as u128),
        status: store::RecordingStatus::Completed,
        source: store::RecordingSource::RecordVerb,
        channels: 1,
        sample_rate: 8000,
        date_created_ms: created,
        date_updated_ms: created + 30_000,
        start_time_ms: created,
        duration_secs: Some(30),
        error_code: None,
        media_file: format!("RE{i:032x}.wav"),
        transcribe: false,
        transcribe_callback: None,
        status_callback: None,
        // 2 % soft-deleted, spread out.
        deleted_at_ms: (i % 50 == 7).then_some(created + DAY),
    }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn row(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {name} | {} | {:.0} | {:.0} | {:.0} |",
        samples.len(),
        us(at(50)),
        us(at(99)),
        us(samples[samples.len() - 1])
    );
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let v = f();
    (t.elapsed(), v)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open_in_dir(dir.path())?;
    let (ac, ac2) = (&AccountSid::from_bits(1), &AccountSid::from_bits(2));
    let main: Vec<_> = (0..N).map(|i| recording(ac, i)).collect();
    let other: Vec<_> = (N..N + 10_000).map(|i| recording(ac2, i)).collect();
    let (took, r) = time(|| store.insert_recordings_bulk(&main));
    r?;
    store.insert_recordings_bulk(&other)?;
    let size = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    };
    println!(
        "bulk insert of {N} recordings in one transaction: {:.2} s; hark.db {:.1} MB, WAL {:.1} MB\n",
        took.as_secs_f64(),
        size("hark.db"),
        size("hark.db-wal")
    );

    let all = RecordingFilter::default();
    let visible = store.list_recordings(ac, &all, 1000, 0)?.items.len();
    assert_eq!(visible, 1000);
    let last_page = (N as u32 * 49 / 50).div_ceil(PAGE) - 1; // 2 % hidden
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    println!("| operation (page size {PAGE}) | runs | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|");
    let offset_page = |page: u32, runs: usize| -> Result<Vec<Duration>, store::StoreError> {
        (0..runs)
            .map(|_| {
                let (d, p) = time(|| store.list_recordings(ac, &all, PAGE, page));
                assert_eq!(p?.items.len(), PAGE as usize);
                Ok(d)
            })
            .collect()
    };
    row("list, Page=0 (OFFSET)", offset_page(0, 2000)?);
    row(
        &format!("list, Page={} (middle, OFFSET)", last_page / 2),
        offset_page(last_page / 2, 300)?,
    );
    row(
        &format!("list, Page={last_page} (last, OFFSET)"),
        offset_page(last_page, 100)?,
    );

    // Keyset: walk every page of the account, timing each.
    let mut walk = Vec::new();
    let mut seen = 0;
    let mut after: Option<(i64, String)> = None;
    let mut deep_key = None;
    loop {
        let (d, p) = time(|| {
            store.list_recordings_after(
                ac,
                &all,
                PAGE,
                after.as_ref().map(|(t, s)| (*t, s.as_str())),
            )
        });
        let p = p?;
        walk.push(d);
        seen += p.items.len();
        let Some(last) = p.items.last() else { break };
        after = Some((last.date_created_ms, last.sid.to_string()));
        if walk.len() == last_page as usize {
            deep_key = after.clone();
        }
        if !p.has_more {
            break;
        }
    }
    assert_eq!(seen, N * 49 / 50);
    row(
        &format!("list keyset (PageToken), all {} pages walked", walk.len()),
        walk,
    );
    let (kt, ks) = deep_key.ok_or("no deep key")?;
    let deep: Vec<_> = (0..1000)
        .map(|_| time(|| store.list_recordings_after(ac, &all, PAGE, Some((kt, &ks)))).0)
        .collect();
    row("list keyset, last page", deep);

    let by_call: Vec<_> = (0..2000)
        .map(|_| {
            let f = RecordingFilter {
                call_sid: Some(CallSid::from_bits((rng.below(N) / 2) as u128)),
                ..Default::default()
            };
            time(|| store.list_recordings(ac, &f, PAGE, 0)).0
        })
        .collect();
    row("list, CallSid=…", by_call);
    let by_day: Vec<_> = (0..1000)
        .map(|_| {
            let day = T0 + rng.below(99) as i64 * DAY;
            let f = RecordingFilter {
                created_on_or_after_ms: Some(day),
                created_before_ms: Some(day + DAY),
                ..Default::default()
            };
            time(|| store.list_recordings(ac, &f, PAGE, 0)).0
        })
        .collect();
    row("list, DateCreated=YYYY-MM-DD, Page=0", by_day);
    let gets: Vec<_> = (0..20_000)
        .map(|_| {
            let sid = RecordingSid::from_bits(rng.below(N) as u128);
            time(|| store.get_recording(ac, &sid, true)).0
        })
        .collect();
    row("get_recording", gets);

    // Writes the daemon does per recording (each its own commit, synchronous=NORMAL).
    let inserts: Vec<_> = (0..2000)
        .map(|i| time(|| store.insert_recording(&recording(ac, N + 20_000 + i))).0)
        .collect();
    row("insert_recording (own commit)", inserts);
    let updates: Vec<_> = (0..2000)
        .map(|i| time(|| store.update_recording(&recording(ac, N + 20_000 + i))).0)
        .collect();
    row("update_recording (own commit)", updates);
    let mut outbox = Vec::new();
    for i in 0..2000 {
        let item = OutboxItem {
            id: 0,
            idempotency_key: format!("k{i}"),
            group_key: RecordingSid::from_bits(i / 3).into_string(),
            url: "https://example.com/cb".to_owned(),
            method: "POST".to_owned(),
            params: vec![("RecordingStatus".to_owned(), "completed".to_owned())],
            attempts: 0,
            next_attempt_ms: 0,
        };
        let (d, id) = time(|| store.enqueue(&item));
        id?;
        outbox.push(d);
    }
    row("enqueue callback", outbox);
    let mut cycle = Vec::new();
    loop {
        let (d, due) = time(|| store.due(1, 1));
        let Some(item) = due?.pop() else { break };
        let (d2, r) = time(|| store.delivered(item.id));
        r?;
        cycle.push(d + d2);
    }
    assert_eq!(cycle.len(), 2000);
    row("due(limit 1) + delivered", cycle);
    Ok(())
}
