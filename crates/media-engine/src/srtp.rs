//! SRTP and SRTCP (RFC 3711) for SDES-keyed trunks (RFC 4568 `a=crypto` lines).
//!
//! Sans-IO: [`SrtpContext`] transforms packets in place; it never reads a clock and never
//! touches a socket.
//!
//! - Suites: `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` ([`SrtpSuite`]): AES-128
//!   counter mode (§4.1.1), HMAC-SHA1 truncated to 80 or 32 bits (§4.2). SRTCP always uses the
//!   80-bit tag, also under `_32` (RFC 4568 §6.2.2, as libsrtp and every SBC do).
//! - Key derivation (§4.3) with key_derivation_rate 0: session keys are derived once, in
//!   [`SrtpContext::new`]. No MKI, no re-keying.
//! - Packet index: ROC·2^16 + SEQ, the receiver guessing the ROC as in §3.3.1 / Appendix A;
//!   ROC and the highest sequence number only move after a packet authenticates.
//! - Replay protection (§3.3.2): a 128-packet sliding window per SSRC, for SRTP and SRTCP.
//! - SRTCP (§3.4): E flag set (payload after the first 8 bytes encrypted), 31-bit index, the tag
//!   over the whole packet + E‖index. The first SRTCP packet of a stream carries index 1, as
//!   libsrtp and pion send; a receiver accepts any start.
//! - Several SSRCs per context: per-SSRC state lives in a fixed table of [`MAX_SSRCS`] entries
//!   per direction and protocol; a new SSRC gets fresh state, and when the table is full the
//!   least recently used SSRC is forgotten (a forgotten stream restarts at ROC 0). A packet that
//!   fails authentication never creates state.
//!
//! Use one context per direction: the answerer protects with the key of its own `a=crypto`
//! line and unprotects with the offerer's. A context keeps separate tables for what it protects
//! and what it unprotects, so using one context both ways (a loopback) also works.
//!
//! Per packet: no allocation (except in [`SrtpContext::protect_rtp`] /
//! [`SrtpContext::protect_rtcp`] when the `Vec` lacks [`PROTECT_HEADROOM`] spare capacity), no
//! locks, no panics on any input (all packet access is checked).

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::Aes128;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use thiserror::Error;

/// Spare capacity a caller should leave in the `Vec` handed to [`SrtpContext::protect_rtp`]
/// (10-byte tag) and [`SrtpContext::protect_rtcp`] (4-byte E‖index + 10-byte tag) so that
/// protecting never reallocates.
pub const PROTECT_HEADROOM: usize = 16;

/// SSRCs tracked per direction and protocol before the least recently used is forgotten.
pub const MAX_SSRCS: usize = 16;

/// Replay window, in packets (RFC 3711 §3.3.2 asks for at least 64).
pub const REPLAY_WINDOW: u64 = 128;

const MASTER_KEY_LEN: usize = 16;
const MASTER_SALT_LEN: usize = 14;
/// HMAC-SHA1 session authentication key, n_a = 160 bits (§8.2).
const AUTH_KEY_LEN: usize = 20;
/// SRTCP tag under both suites.
const RTCP_TAG_LEN: usize = 10;
/// SRTCP E flag and 31-bit index.
const RTCP_INDEX_LEN: usize = 4;
/// Fixed RTCP header (V/P/RC, PT, length) + sender SSRC: sent in the clear.
const RTCP_CLEAR_LEN: usize = 8;
const RTP_FIXED_HEADER: usize = 12;
const MAX_RTCP_INDEX: u32 = 0x7FFF_FFFF;
const E_FLAG: u32 = 0x8000_0000;

/// Key derivation labels (RFC 3711 §4.3.2): encryption key, authentication key, salt.
const RTP_LABELS: [u8; 3] = [0x00, 0x01, 0x02];
const RTCP_LABELS: [u8; 3] = [0x03, 0x04, 0x05];

/// The SDES crypto suites this module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80`: 10-byte SRTP and SRTCP tags (the mandatory one).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: 4-byte SRTP tag, 10-byte SRTCP tag.
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// The suite named in an `a=crypto` line (exact, case-sensitive, as RFC 4568 registers it).
    pub fn from_sdes_name(name: &str) -> Option<Self> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Self::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Self::AesCm128HmacSha1_32),
            _ => None,
        }
    }

    /// The name to put in an `a=crypto` line.
    pub fn sdes_name(&self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Bytes of SRTP authentication tag appended to each RTP packet.
    pub fn tag_len(&self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 => 10,
            Self::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Bytes of SRTCP authentication tag (80 bits under both suites).
    pub fn rtcp_tag_len(&self) -> usize {
        RTCP_TAG_LEN
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SrtpError {
    /// The datagram cannot hold its header (fixed header, CSRCs, extension; or the 8 RTCP
    /// bytes), the SRTCP index and the authentication tag.
    #[error("packet too short for its header, index and authentication tag")]
    TooShort,
    /// The authentication tag does not match: wrong key, corruption or forgery.
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// The packet index was already received (within the replay window).
    #[error("replayed packet")]
    Replayed,
    /// The packet index lies behind the replay window (or before the stream's first packet).
    #[error("packet older than the replay window")]
    TooOld,
    /// 2^48 SRTP or 2^31 SRTCP packets sent under this key: the key must be replaced.
    #[error("packet index space exhausted; a new master key is needed")]
    IndexExhausted,
    /// The SDES `inline:` key parameter is malformed.
    #[error("bad SDES key: {0}")]
    BadKey(String),
    /// The SDES key carries an MKI (`|<value>:<length>`), which is not supported.
    #[error("SDES key uses an MKI, which is not supported")]
    Mki,
}

/// An SDES master key and salt (the 30 bytes of `inline:<base64>`).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    pub master_key: [u8; MASTER_KEY_LEN],
    pub master_salt: [u8; MASTER_SALT_LEN],
}

impl SrtpKey {
    /// Parses the key-params value of an `a=crypto` line: `inline:<base64 of key‖salt>`, with
    /// an optional lifetime (`|2^31` or `|1048576`, accepted and not enforced beyond the index
    /// limits) and an optional MKI (`|1:4`), refused with [`SrtpError::Mki`]. The `inline:`
    /// prefix may be omitted.
    pub fn from_inline(value: &str) -> Result<Self, SrtpError> {
        let value = value.trim();
        let value = value.strip_prefix("inline:").unwrap_or(value);
        let mut parts = value.split('|');
        let encoded = parts.next().unwrap_or_default();
        let mut lifetime_seen = false;
        for part in parts {
            if part.contains(':') {
                return Err(SrtpError::Mki);
            }
            if lifetime_seen {
                return Err(SrtpError::BadKey(format!(
                    "unexpected key parameter {part:?} after the lifetime"
                )));
            }
            parse_lifetime(part)?;
            lifetime_seen = true;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| SrtpError::BadKey(format!("base64: {e}")))?;
        if bytes.len() != MASTER_KEY_LEN + MASTER_SALT_LEN {
            return Err(SrtpError::BadKey(format!(
                "key and salt are {} bytes, want {}",
                bytes.len(),
                MASTER_KEY_LEN + MASTER_SALT_LEN
            )));
        }
        let mut key = Self {
            master_key: [0; MASTER_KEY_LEN],
            master_salt: [0; MASTER_SALT_LEN],
        };
        let (k, s) = bytes.split_at(MASTER_KEY_LEN);
        key.master_key.copy_from_slice(k);
        key.master_salt.copy_from_slice(s);
        Ok(key)
    }

    /// `inline:<base64 of key‖salt>`, the key-params value for an `a=crypto` line.
    pub fn to_inline(&self) -> String {
        let mut bytes = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        bytes[..MASTER_KEY_LEN].copy_from_slice(&self.master_key);
        bytes[MASTER_KEY_LEN..].copy_from_slice(&self.master_salt);
        format!(
            "inline:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// A fresh key and salt from the thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn random() -> Self {
        let mut key = Self {
            master_key: [0; MASTER_KEY_LEN],
            master_salt: [0; MASTER_SALT_LEN],
        };
        let mut rng = rand::thread_rng();
        rng.fill_bytes(&mut key.master_key);
        rng.fill_bytes(&mut key.master_salt);
        key
    }
}

/// Keys stay out of logs.
impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpKey { .. }")
    }
}

/// RFC 4568 §6.1 lifetime: decimal, or `2^<decimal>`.
fn parse_lifetime(part: &str) -> Result<u64, SrtpError> {
    let bad = || SrtpError::BadKey(format!("bad key lifetime {part:?}"));
    let value = match part.strip_prefix("2^") {
        Some(exp) => {
            let exp: u32 = exp.parse().map_err(|_| bad())?;
            1u64.checked_shl(exp).filter(|_| exp < 64).ok_or_else(bad)?
        }
        None => part.parse().map_err(|_| bad())?,
    };
    if value == 0 {
        return Err(bad());
    }
    Ok(value)
}

/// Session keys for one of SRTP or SRTCP.
#[derive(Clone)]
struct SessionKeys {
    cipher: Aes128,
    salt: [u8; MASTER_SALT_LEN],
    /// Keyed once; cloned per packet, which skips re-hashing the padded key.
    mac: Hmac<Sha1>,
}

impl SessionKeys {
    fn derive(master: &Aes128, master_salt: &[u8; MASTER_SALT_LEN], labels: [u8; 3]) -> Self {
        let mut cipher_key = [0u8; 16];
        kdf(master, master_salt, labels[0], &mut cipher_key);
        // HMAC pads keys shorter than its 64-byte block with zeros (RFC 2104 §2): keying it with
        // the 20-byte key zero-padded to 64 is the same HMAC, and infallible.
        let mut auth_key = [0u8; 64];
        kdf(
            master,
            master_salt,
            labels[1],
            &mut auth_key[..AUTH_KEY_LEN],
        );
        let mut salt = [0u8; MASTER_SALT_LEN];
        kdf(master, master_salt, labels[2], &mut salt);
        Self {
            cipher: Aes128::new(&Array(cipher_key)),
            salt,
            mac: <Hmac<Sha1> as Mac>::new(&auth_key.into()),
        }
    }

    /// IV = (k_s·2^16) XOR (SSRC·2^64) XOR (index·2^16) (RFC 3711 §4.1.1).
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        // The 48-bit index occupies bytes 8..14.
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        iv
    }

    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        aes_cm(&self.cipher, &self.iv(ssrc, index), data);
    }
}

/// XORs `data` with the AES-CM keystream E(k, IV), E(k, IV + 1), ... (mod 2^128).
fn aes_cm(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    /// Blocks encrypted per call: lets the AES-NI backend pipeline.
    const BATCH: usize = 8;
    let mut counter = u128::from_be_bytes(*iv);
    let mut blocks = [aes::Block::default(); BATCH];
    for chunk in data.chunks_mut(16 * BATCH) {
        let n = chunk.len().div_ceil(16);
        let batch = &mut blocks[..n];
        for block in batch.iter_mut() {
            *block = Array(counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        cipher.encrypt_blocks(batch);
        for (bytes, keystream) in chunk.chunks_mut(16).zip(batch.iter()) {
            for (b, k) in bytes.iter_mut().zip(keystream.iter()) {
                *b ^= k;
            }
        }
    }
}

/// The AES-CM PRF of §4.3.3 with key_derivation_rate 0: x = label at bit 48 XOR master salt,
/// keystream from IV = x·2^16.
fn kdf(master: &Aes128, master_salt: &[u8; MASTER_SALT_LEN], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(master_salt);
    // key_id = label‖r (r = 0, 48 bits) is XORed into the low 56 bits of the salt.
    iv[7] ^= label;
    out.fill(0);
    aes_cm(master, &iv, out);
}

/// Highest authenticated index and a bitmap of the [`REPLAY_WINDOW`] indices below it
/// (bit k: `highest - k` was received).
#[derive(Debug, Clone, Copy)]
struct Replay {
    highest: u64,
    seen: u128,
}

impl Replay {
    fn first(index: u64) -> Self {
        Self {
            highest: index,
            seen: 1,
        }
    }

    fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(back) = self.highest.checked_sub(index) else {
            return Ok(());
        };
        if back >= REPLAY_WINDOW {
            return Err(SrtpError::TooOld);
        }
        if (self.seen >> back) & 1 == 1 {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    /// Records an authenticated index that passed [`Replay::check`].
    fn accept(&mut self, index: u64) {
        match index.checked_sub(self.highest) {
            Some(0) | None => {
                let back = self.highest.saturating_sub(index);
                let bit = u32::try_from(back)
                    .ok()
                    .and_then(|b| 1u128.checked_shl(b))
                    .unwrap_or(0);
                self.seen |= bit;
            }
            Some(ahead) => {
                self.seen = u32::try_from(ahead)
                    .ok()
                    .and_then(|a| self.seen.checked_shl(a))
                    .unwrap_or(0)
                    | 1;
                self.highest = index;
            }
        }
    }
}

/// RFC 3711 Appendix A: the index of `seq` given the highest index so far (ROC‖s_l). `None`
/// when the guess is ROC - 1 with ROC = 0 (a packet from before the stream's first one), or
/// ROC + 1 past 2^32.
fn estimate_index(highest: u64, seq: u16) -> Option<u64> {
    let roc = highest >> 16;
    let s_l = (highest & 0xFFFF) as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    (v <= u64::from(u32::MAX)).then_some((v << 16) | u64::from(seq))
}

/// Why [`estimate_index`] found no index: behind the first packet (ROC 0), or past ROC 2^32-1.
fn index_error(highest: u64) -> SrtpError {
    if highest >> 16 == 0 {
        SrtpError::TooOld
    } else {
        SrtpError::IndexExhausted
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot<T> {
    ssrc: u32,
    last_used: u64,
    state: T,
}

/// Per-SSRC state, [`MAX_SSRCS`] entries, least recently used evicted.
#[derive(Debug, Clone)]
struct SsrcTable<T: Copy> {
    slots: [Option<Slot<T>>; MAX_SSRCS],
    tick: u64,
}

impl<T: Copy> SsrcTable<T> {
    fn new() -> Self {
        Self {
            slots: [None; MAX_SSRCS],
            tick: 0,
        }
    }

    fn get(&self, ssrc: u32) -> Option<T> {
        self.slots
            .iter()
            .flatten()
            .find(|s| s.ssrc == ssrc)
            .map(|s| s.state)
    }

    fn put(&mut self, ssrc: u32, state: T) {
        self.tick += 1;
        let slot = Slot {
            ssrc,
            last_used: self.tick,
            state,
        };
        let mut victim = 0;
        let mut oldest = u64::MAX;
        for (i, s) in self.slots.iter_mut().enumerate() {
            match s {
                Some(s) if s.ssrc == ssrc => {
                    *s = slot;
                    return;
                }
                Some(s) => {
                    if s.last_used < oldest {
                        oldest = s.last_used;
                        victim = i;
                    }
                }
                None => {
                    // An empty slot beats any occupied one; keep scanning for the SSRC.
                    if oldest != 0 {
                        oldest = 0;
                        victim = i;
                    }
                }
            }
        }
        if let Some(s) = self.slots.get_mut(victim) {
            *s = Some(slot);
        }
    }

    fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

/// One SDES key's SRTP and SRTCP transforms, for any number of SSRCs (see the module docs).
pub struct SrtpContext {
    suite: SrtpSuite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// Highest index protected per SSRC.
    tx_rtp: SsrcTable<u64>,
    rx_rtp: SsrcTable<Replay>,
    /// Index of the next SRTCP packet per SSRC.
    tx_rtcp: SsrcTable<u32>,
    rx_rtcp: SsrcTable<Replay>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("tx_rtp_ssrcs", &self.tx_rtp.len())
            .field("rx_rtp_ssrcs", &self.rx_rtp.len())
            .field("tx_rtcp_ssrcs", &self.tx_rtcp.len())
            .field("rx_rtcp_ssrcs", &self.rx_rtcp.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Derives the SRTP and SRTCP session keys (RFC 3711 §4.3, key_derivation_rate 0).
    pub fn new(suite: SrtpSuite, key: &SrtpKey) -> Self {
        let master = Aes128::new(&Array(key.master_key));
        Self {
            suite,
            rtp: SessionKeys::derive(&master, &key.master_salt, RTP_LABELS),
            rtcp: SessionKeys::derive(&master, &key.master_salt, RTCP_LABELS),
            tx_rtp: SsrcTable::new(),
            rx_rtp: SsrcTable::new(),
            tx_rtcp: SsrcTable::new(),
            rx_rtcp: SsrcTable::new(),
        }
    }

    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// RTP → SRTP in place: encrypts the payload (after CSRCs and the header extension) and
    /// appends the tag ([`SrtpSuite::tag_len`] bytes). Allocates only if `packet` has less
    /// than the tag's spare capacity: keep [`PROTECT_HEADROOM`] bytes free.
    ///
    /// The ROC follows the packets' sequence numbers (a wrap 65535 → 0 increments it; a
    /// retransmission of an older number reuses its index). Never protect two different
    /// payloads under one SSRC and sequence number: they would share a keystream.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header_len = rtp_header_len(packet).ok_or(SrtpError::TooShort)?;
        let seq = be_u16(packet, 2).ok_or(SrtpError::TooShort)?;
        let ssrc = be_u32(packet, 8).ok_or(SrtpError::TooShort)?;
        let (index, highest) = match self.tx_rtp.get(ssrc) {
            None => (u64::from(seq), u64::from(seq)),
            Some(highest) => {
                let index = estimate_index(highest, seq).ok_or_else(|| index_error(highest))?;
                (index, highest.max(index))
            }
        };
        self.tx_rtp.put(ssrc, highest);

        let payload = packet.get_mut(header_len..).ok_or(SrtpError::TooShort)?;
        self.rtp.crypt(ssrc, index, payload);
        let tag = self.rtp_tag(packet, index);
        let tag = tag.get(..self.suite.tag_len()).ok_or(SrtpError::TooShort)?;
        packet.extend_from_slice(tag);
        Ok(())
    }

    /// SRTP → RTP in place: checks the replay window, verifies the tag (constant time),
    /// decrypts, and returns the RTP packet's length (`packet[..len]`; the tag is left in the
    /// bytes after it). Never allocates. On error the packet is unchanged.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.tag_len();
        let auth_len = packet
            .len()
            .checked_sub(tag_len)
            .filter(|&n| n >= RTP_FIXED_HEADER)
            .ok_or(SrtpError::TooShort)?;
        let (authenticated, tag) = packet.split_at_mut(auth_len);
        let header_len = rtp_header_len(authenticated).ok_or(SrtpError::TooShort)?;
        let seq = be_u16(authenticated, 2).ok_or(SrtpError::TooShort)?;
        let ssrc = be_u32(authenticated, 8).ok_or(SrtpError::TooShort)?;

        let state = self.rx_rtp.get(ssrc);
        let index = match state {
            None => u64::from(seq),
            Some(r) => {
                let index = estimate_index(r.highest, seq).ok_or_else(|| index_error(r.highest))?;
                r.check(index)?;
                index
            }
        };

        let mut mac = self.rtp.mac.clone();
        mac.update(authenticated);
        mac.update(&roc_bytes(index));
        mac.verify_truncated_left(tag)
            .map_err(|_| SrtpError::AuthFailed)?;

        let payload = authenticated
            .get_mut(header_len..)
            .ok_or(SrtpError::TooShort)?;
        self.rtp.crypt(ssrc, index, payload);
        let replay = match state {
            None => Replay::first(index),
            Some(mut r) => {
                r.accept(index);
                r
            }
        };
        self.rx_rtp.put(ssrc, replay);
        Ok(auth_len)
    }

    /// RTCP → SRTCP in place: encrypts everything after the first 8 bytes, appends E‖index
    /// (E = 1) and the 10-byte tag. Allocates only if `packet` has less than 14 bytes of spare
    /// capacity: keep [`PROTECT_HEADROOM`] bytes free. A compound packet is one unit.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let ssrc = be_u32(packet, 4).ok_or(SrtpError::TooShort)?;
        let index = self.tx_rtcp.get(ssrc).unwrap_or(1);
        if index > MAX_RTCP_INDEX {
            return Err(SrtpError::IndexExhausted);
        }
        let payload = packet
            .get_mut(RTCP_CLEAR_LEN..)
            .ok_or(SrtpError::TooShort)?;
        self.rtcp.crypt(ssrc, u64::from(index), payload);
        self.tx_rtcp.put(ssrc, index + 1);
        packet.extend_from_slice(&(E_FLAG | index).to_be_bytes());
        let mut mac = self.rtcp.mac.clone();
        mac.update(packet);
        let tag = mac.finalize().into_bytes();
        let tag = tag.get(..RTCP_TAG_LEN).ok_or(SrtpError::TooShort)?;
        packet.extend_from_slice(tag);
        Ok(())
    }

    /// SRTCP → RTCP in place: checks the replay window, verifies the tag (constant time),
    /// decrypts if the E flag is set, and returns the RTCP packet's length (`packet[..len]`).
    /// Never allocates. On error the packet is unchanged.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let auth_len = packet
            .len()
            .checked_sub(RTCP_TAG_LEN)
            .filter(|&n| n >= RTCP_CLEAR_LEN + RTCP_INDEX_LEN)
            .ok_or(SrtpError::TooShort)?;
        let (authenticated, tag) = packet.split_at_mut(auth_len);
        let rtcp_len = auth_len - RTCP_INDEX_LEN;
        let e_index = be_u32(authenticated, rtcp_len).ok_or(SrtpError::TooShort)?;
        let index = e_index & MAX_RTCP_INDEX;
        let ssrc = be_u32(authenticated, 4).ok_or(SrtpError::TooShort)?;

        let state = self.rx_rtcp.get(ssrc);
        if let Some(r) = state {
            r.check(u64::from(index))?;
        }

        let mut mac = self.rtcp.mac.clone();
        mac.update(authenticated);
        mac.verify_truncated_left(tag)
            .map_err(|_| SrtpError::AuthFailed)?;

        if e_index & E_FLAG != 0 {
            let payload = authenticated
                .get_mut(RTCP_CLEAR_LEN..rtcp_len)
                .ok_or(SrtpError::TooShort)?;
            self.rtcp.crypt(ssrc, u64::from(index), payload);
        }
        let replay = match state {
            None => Replay::first(u64::from(index)),
            Some(mut r) => {
                r.accept(u64::from(index));
                r
            }
        };
        self.rx_rtcp.put(ssrc, replay);
        Ok(rtcp_len)
    }

    /// HMAC-SHA1(k_a, packet ‖ ROC), untruncated.
    fn rtp_tag(&self, packet: &[u8], index: u64) -> [u8; 20] {
        let mut mac = self.rtp.mac.clone();
        mac.update(packet);
        mac.update(&roc_bytes(index));
        mac.finalize().into_bytes().into()
    }
}

fn roc_bytes(index: u64) -> [u8; 4] {
    // The index is at most 48 bits, so the ROC fits 32.
    ((index >> 16) as u32).to_be_bytes()
}

fn be_u16(p: &[u8], at: usize) -> Option<u16> {
    let b = p.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn be_u32(p: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = p.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Fixed header + CSRCs + header extension, if that fits in `packet`. The version is not
/// checked (demultiplexing is the caller's job).
fn rtp_header_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    let mut len = RTP_FIXED_HEADER + 4 * usize::from(first & 0x0F);
    if first & 0x10 != 0 {
        let words = be_u16(packet, len + 2)?;
        len += 4 + 4 * usize::from(words);
    }
    (len <= packet.len()).then_some(len)
}

#[cfg(test)]
mod tests;
