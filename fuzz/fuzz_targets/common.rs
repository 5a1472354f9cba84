//! Shared by the fuzz targets (each target includes it with `mod common;`).
//!
//! Known bugs: an invariant that a known, reported crate bug breaks is checked with
//! [`check_known`]. By default it asserts like any other invariant, so the bug stays visible
//! until it is fixed. `HARK_FUZZ_KNOWN_BUGS=skip` (or a comma list of bug ids) makes the target
//! skip inputs that hit those bugs instead, so fuzzing can get past them and measure coverage;
//! nothing is skipped silently: the ids are listed in fuzz/README.md.

#![allow(dead_code)]

use std::sync::OnceLock;

fn skipped() -> &'static Vec<String> {
    static SKIP: OnceLock<Vec<String>> = OnceLock::new();
    SKIP.get_or_init(|| {
        std::env::var("HARK_FUZZ_KNOWN_BUGS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// Whether inputs hitting known bug `id` are to be skipped rather than reported.
pub fn tolerate(id: &str) -> bool {
    skipped().iter().any(|s| s == "skip" || s == id)
}

/// Asserts `ok` unless bug `id` is tolerated. Returns `ok` so the caller can stop early.
#[track_caller]
pub fn check_known(ok: bool, id: &str, msg: impl FnOnce() -> String) -> bool {
    if !ok && !tolerate(id) {
        panic!("[known bug {id}] {}", msg());
    }
    ok
}

/// Small deterministic PRNG (xorshift64*) for choices derived from the input.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    /// Seeded from up to the last 8 bytes of `data` and its length.
    pub fn from_tail(data: &[u8]) -> Self {
        let mut s = data.len() as u64 ^ 0x9E37_79B9_7F4A_7C15;
        for &b in data.iter().rev().take(8) {
            s = (s << 8 | u64::from(b)) ^ (s >> 56);
        }
        Rng::new(s)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// A cursor over the fuzz input for hand-rolled, seed-friendly input formats: every read
/// succeeds (zeros once the input is exhausted) and `done` says when it ran out.
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }
    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = start + n.max(end - start);
        &self.data[start..end]
    }
}
