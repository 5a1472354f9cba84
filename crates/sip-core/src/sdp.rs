//! The audio subset of SDP (RFC 4566) offer/answer (RFC 3264) that Hark needs.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    /// RFC 7587: `opus/48000/2` at a dynamic payload type; taken only when the endpoint
    /// accepts it ([`negotiate_with`]).
    Opus,
}

impl AudioCodec {
    pub fn encoding_name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::Opus => "opus",
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8000,
            AudioCodec::Opus => 48000,
        }
    }

    /// The rtpmap's encoding parameters: RFC 7587 §7 always says 2 channels for Opus.
    fn rtpmap(self) -> String {
        match self {
            AudioCodec::Opus => format!("{}/{}/2", self.encoding_name(), self.clock_rate()),
            _ => format!("{}/{}", self.encoding_name(), self.clock_rate()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// Our direction in an answer to an offer with this direction (RFC 3264 §6.1).
    pub fn mirrored(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
            Direction::SendRecv => Direction::SendRecv,
        }
    }
    fn from_attr(attr: &str) -> Option<Direction> {
        match attr {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// SDES crypto suites (RFC 4568 §6.2) Hark answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdesSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl SdesSuite {
    pub fn name(self) -> &'static str {
        match self {
            SdesSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SdesSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }
    fn from_name(name: &str) -> Option<SdesSuite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(SdesSuite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(SdesSuite::AesCm128HmacSha1_32),
            _ => None,
        }
    }
}

/// An `a=crypto` line of an offer that Hark can use: its tag, suite and master key + salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesCrypto {
    pub tag: u32,
    pub suite: SdesSuite,
    /// 16-byte master key then 14-byte master salt (the `inline:` value, decoded).
    pub key: [u8; 30],
}

impl SdesCrypto {
    /// `a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:len] [params]`: `None`
    /// for a suite or key form we do not take (MKI, session parameters, several keys).
    fn parse(value: &str) -> Option<SdesCrypto> {
        let mut it = value.split_whitespace();
        let tag: u32 = crate::message::parse_digits(it.next()?)?;
        let suite = SdesSuite::from_name(it.next()?)?;
        let key_params = it.next()?;
        if it.next().is_some() || key_params.contains(';') {
            return None;
        }
        let inline = key_params.strip_prefix("inline:")?;
        let mut parts = inline.split('|');
        let b64 = parts.next()?;
        for extra in parts {
            // A lifetime is fine; an MKI (`n:len`) is not supported.
            if extra.contains(':') {
                return None;
            }
        }
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let key: [u8; 30] = bytes.try_into().ok()?;
        Some(SdesCrypto { tag, suite, key })
    }
}

/// SRTP keyed by SDES for this call: the caller's choice and our own key for what we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes {
    pub tag: u32,
    pub suite: SdesSuite,
    /// The caller's master key + salt: what it protects its RTP with.
    pub remote_key: [u8; 30],
    /// Ours (random per call): what we protect ours with.
    pub local_key: [u8; 30],
}

/// The first audio stream of an offer, as the caller described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioOffer {
    /// Connection address (media-level c= wins over session-level).
    pub connection: IpAddr,
    pub port: u16,
    /// Payload types in the caller's preference order.
    pub formats: Vec<u8>,
    /// `a=rtpmap` entries: (pt, encoding name, clock rate).
    pub rtpmaps: Vec<(u8, String, u32)>,
    pub direction: Direction,
    pub ptime_ms: Option<u32>,
    /// `RTP/SAVP` (SRTP): the usable `a=crypto` lines in the caller's order.
    pub secure: bool,
    pub crypto: Vec<SdesCrypto>,
}

/// What both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: AudioCodec,
    pub codec_pt: u8,
    pub telephone_event_pt: Option<u8>,
    /// The clock of `telephone_event_pt`: the codec's when the caller offers one at that rate
    /// (48000 beside Opus), else 8000.
    pub telephone_event_clock: u32,
    /// Where the caller wants our RTP.
    pub remote_rtp: SocketAddr,
    /// The caller's direction (sendonly = we are on hold).
    pub remote_direction: Direction,
    /// SRTP (an `RTP/SAVP` offer): the crypto suite and keys; `None` for plain RTP.
    pub srtp: Option<Sdes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotUtf8,
    #[error("SDP line {line} is malformed: {text:?}")]
    Malformed { line: usize, text: String },
    #[error("SDP has no audio m= line")]
    NoAudio,
    #[error("SDP has no connection address (c=) for audio")]
    NoConnection,
    #[error("no common codec: offer has payload types {0:?}, Hark accepts PCMU/0, PCMA/8 and opus/48000 (when enabled)")]
    NoCommonCodec(Vec<u8>),
    #[error("RTP/SAVP offer without a usable a=crypto line: Hark takes AES_CM_128_HMAC_SHA1_80 and _32 with an inline key and no MKI (RFC 4568)")]
    NoCrypto,
}

/// Audio m= section being collected.
struct Section {
    port: u16,
    rtp: bool,
    secure: bool,
    crypto: Vec<SdesCrypto>,
    formats: Vec<u8>,
    connection: Option<IpAddr>,
    rtpmaps: Vec<(u8, String, u32)>,
    direction: Option<Direction>,
    ptime_ms: Option<u32>,
}

pub fn parse_offer(body: &[u8]) -> Result<AudioOffer, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
    let mut session_c: Option<IpAddr> = None;
    let mut session_dir: Option<Direction> = None;
    // Media sections: Some(audio section) or None for non-audio sections we skip.
    let mut sections: Vec<Option<Section>> = Vec::new();
    let mut saw_version = false;
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let malformed = || SdpError::Malformed {
            line: line_no,
            text: line.chars().take(80).collect(),
        };
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes.get(1) != Some(&b'=') || !bytes[0].is_ascii_alphabetic() {
            return Err(malformed());
        }
        let (kind, value) = (bytes[0], line.get(2..).unwrap_or(""));
        if !saw_version {
            if kind != b'v' || value.trim() != "0" {
                return Err(malformed());
            }
            saw_version = true;
            continue;
        }
        match kind {
            b'm' => {
                let mut it = value.split_whitespace();
                let media = it.next().ok_or_else(malformed)?;
                let port_field = it.next().ok_or_else(malformed)?;
                let proto = it.next().ok_or_else(malformed)?;
                if media != "audio" {
                    sections.push(None);
                    continue;
                }
                let port_str = port_field.split('/').next().unwrap_or("");
                let port: u16 = port_str.parse().map_err(|_| malformed())?;
                let secure = proto.eq_ignore_ascii_case("RTP/SAVP")
                    || proto.eq_ignore_ascii_case("RTP/SAVPF");
                let rtp = secure
                    || proto.eq_ignore_ascii_case("RTP/AVP")
                    || proto.eq_ignore_ascii_case("RTP/AVPF");
                let mut formats = Vec::new();
                for f in it {
                    match f.parse::<u8>() {
                        Ok(pt) if pt < 128 => formats.push(pt),
                        _ if !rtp => {}
                        _ => return Err(malformed()),
                    }
                }
                sections.push(Some(Section {
                    port,
                    rtp,
                    secure,
                    crypto: Vec::new(),
                    formats,
                    connection: None,
                    rtpmaps: Vec::new(),
                    direction: None,
                    ptime_ms: None,
                }));
            }
            b'c' => {
                let addr = parse_connection(value).ok_or_else(malformed)?;
                match sections.last_mut() {
                    None => session_c = Some(addr),
                    Some(Some(s)) => s.connection = Some(addr),
                    Some(None) => {}
                }
            }
            b'a' => {
                let (name, attr_value) = match value.split_once(':') {
                    Some((n, v)) => (n, Some(v)),
                    None => (value, None),
                };
                let section = match sections.last_mut() {
                    None => {
                        if let Some(d) = Direction::from_attr(name.trim()) {
                            session_dir = Some(d);
                        }
                        continue;
                    }
                    Some(None) => continue,
                    Some(Some(s)) => s,
                };
                match (name.trim(), attr_value) {
                    ("rtpmap", Some(v)) => {
                        let (pt, enc) = v.trim().split_once(' ').ok_or_else(malformed)?;
                        let pt: u8 = pt.parse().map_err(|_| malformed())?;
                        let mut enc_parts = enc.trim().split('/');
                        let name = enc_parts.next().unwrap_or("").to_string();
                        let rate: u32 = enc_parts
                            .next()
                            .and_then(|r| r.parse().ok())
                            .ok_or_else(malformed)?;
                        section.rtpmaps.push((pt, name, rate));
                    }
                    ("crypto", Some(v)) => {
                        // Lines we cannot use are skipped: another may do (RFC 4568 §7.1.1).
                        if let Some(c) = SdesCrypto::parse(v.trim()) {
                            section.crypto.push(c);
                        }
                    }
                    ("ptime", Some(v)) => {
                        // Some UAs write fractional ptime ("20.0"); keep the integer part.
                        let whole = v.trim().split('.').next().unwrap_or("");
                        section.ptime_ms = whole.parse().ok();
                    }
                    (other, None) => {
                        if let Some(d) = Direction::from_attr(other) {
                            section.direction = Some(d);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !saw_version {
        return Err(SdpError::Malformed {
            line: 1,
            text: String::new(),
        });
    }
    let mut first_unusable: Option<Vec<u8>> = None;
    for s in sections.into_iter().flatten() {
        // Port 0 is a rejected/disabled stream (RFC 3264 §5.1); other profiles we cannot answer.
        if s.port == 0 {
            continue;
        }
        if !s.rtp {
            first_unusable.get_or_insert(s.formats.clone());
            continue;
        }
        let connection = s.connection.or(session_c).ok_or(SdpError::NoConnection)?;
        return Ok(AudioOffer {
            connection,
            port: s.port,
            formats: s.formats,
            rtpmaps: s.rtpmaps,
            direction: s.direction.or(session_dir).unwrap_or(Direction::SendRecv),
            ptime_ms: s.ptime_ms,
            secure: s.secure,
            crypto: s.crypto,
        });
    }
    match first_unusable {
        Some(formats) => Err(SdpError::NoCommonCodec(formats)),
        None => Err(SdpError::NoAudio),
    }
}

/// `IN IP4 192.0.2.1` (multicast `/ttl` suffix ignored).
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut it = value.split_whitespace();
    let (net, family, addr) = (it.next()?, it.next()?, it.next()?);
    if net != "IN" {
        return None;
    }
    let addr = addr.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    match (family, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

/// Picks the caller's first supported codec (PCMU or PCMA, static or by rtpmap name) and
/// telephone-event at whatever dynamic payload type the caller gave it.
pub fn negotiate(offer: &AudioOffer) -> Result<Negotiated, SdpError> {
    negotiate_with(offer, false)
}

/// [`negotiate`], also taking `opus/48000` (at the caller's payload type) when `opus` is on.
/// Beside Opus, a telephone-event at 48000 is preferred to one at 8000.
pub fn negotiate_with(offer: &AudioOffer, opus: bool) -> Result<Negotiated, SdpError> {
    if offer.port == 0 {
        return Err(SdpError::NoAudio);
    }
    let rtpmap = |pt: u8| offer.rtpmaps.iter().find(|(p, _, _)| *p == pt);
    let codec_of = |pt: u8| -> Option<AudioCodec> {
        match rtpmap(pt) {
            Some((_, name, 8000)) if name.eq_ignore_ascii_case("PCMU") => Some(AudioCodec::Pcmu),
            Some((_, name, 8000)) if name.eq_ignore_ascii_case("PCMA") => Some(AudioCodec::Pcma),
            Some((_, name, 48000)) if opus && name.eq_ignore_ascii_case("opus") => {
                Some(AudioCodec::Opus)
            }
            Some(_) if pt >= 96 => None,
            // Static types keep their meaning even with an odd rtpmap.
            _ => match pt {
                0 => Some(AudioCodec::Pcmu),
                8 => Some(AudioCodec::Pcma),
                _ => None,
            },
        }
    };
    let (codec, codec_pt) = offer
        .formats
        .iter()
        .find_map(|&pt| codec_of(pt).map(|c| (c, pt)))
        .ok_or_else(|| SdpError::NoCommonCodec(offer.formats.clone()))?;
    // Never the codec's own payload type, whatever a confused rtpmap says.
    let event_at = |clock: u32| {
        offer.formats.iter().copied().find(|&pt| {
            pt != codec_pt
                && matches!(rtpmap(pt), Some((_, name, c)) if *c == clock && name.eq_ignore_ascii_case("telephone-event"))
        })
    };
    let (telephone_event_pt, telephone_event_clock) = match event_at(codec.clock_rate()) {
        Some(pt) => (Some(pt), codec.clock_rate()),
        None => (event_at(8000), 8000),
    };
    let srtp = match (offer.secure, offer.crypto.first()) {
        (false, _) => None,
        (true, None) => return Err(SdpError::NoCrypto),
        // Our key is filled in by whoever answers (it must be random); zero until then.
        (true, Some(c)) => Some(Sdes {
            tag: c.tag,
            suite: c.suite,
            remote_key: c.key,
            local_key: [0; 30],
        }),
    };
    Ok(Negotiated {
        codec,
        codec_pt,
        telephone_event_pt,
        telephone_event_clock,
        remote_rtp: SocketAddr::new(offer.connection, offer.port),
        remote_direction: offer.direction,
        srtp,
    })
}

fn ip_family(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// The answer: c=/m= carry `local_rtp` (the address the caller can reach); direction mirrors the
/// caller's (sendonly → recvonly, inactive → inactive). `version` increments on each re-answer.
pub fn build_answer(
    neg: &Negotiated,
    local_rtp: SocketAddr,
    session_id: u64,
    version: u64,
) -> String {
    let ip = local_rtp.ip();
    let fam = ip_family(ip);
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "v=0\r\no=Hark {session_id} {version} IN {fam} {ip}\r\ns=Hark\r\nc=IN {fam} {ip}\r\nt=0 0\r\n"
    );
    let profile = if neg.srtp.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let _ = write!(s, "m=audio {} {profile} {}", local_rtp.port(), neg.codec_pt);
    if let Some(te) = neg.telephone_event_pt {
        let _ = write!(s, " {te}");
    }
    let _ = write!(
        s,
        "\r\na=rtpmap:{} {}\r\n",
        neg.codec_pt,
        neg.codec.rtpmap()
    );
    if neg.codec == AudioCodec::Opus {
        // We decode in-band FEC-capable streams and mono is all we record.
        let _ = write!(s, "a=fmtp:{} useinbandfec=1; stereo=0\r\n", neg.codec_pt);
    }
    if let Some(te) = neg.telephone_event_pt {
        let _ = write!(
            s,
            "a=rtpmap:{te} telephone-event/{}\r\na=fmtp:{te} 0-16\r\n",
            neg.telephone_event_clock
        );
    }
    if let Some(sdes) = &neg.srtp {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode(sdes.local_key);
        let _ = write!(
            s,
            "a=crypto:{} {} inline:{key}\r\n",
            sdes.tag,
            sdes.suite.name()
        );
    }
    let _ = write!(
        s,
        "a=ptime:20\r\na={}\r\n",
        neg.remote_direction.mirrored().as_attr()
    );
    s
}

/// An offer of PCMU/0, PCMA/8 and telephone-event/101, used by `hark call`.
pub fn build_offer(local_rtp: SocketAddr, session_id: u64) -> String {
    let ip = local_rtp.ip();
    let fam = ip_family(ip);
    format!(
        "v=0\r\no=Hark {session_id} 1 IN {fam} {ip}\r\ns=Hark\r\nc=IN {fam} {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        local_rtp.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=sipp 53655765 2353687637 IN IP4 127.0.0.1\r\ns=SIPp\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 26000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
        a=ptime:20\r\na=sendrecv\r\n";

    fn offer(body: &str) -> AudioOffer {
        parse_offer(body.as_bytes()).expect("offer parses")
    }

    /// cargo-fuzz `sdp`: an rtpmap naming the codec's payload type telephone-event made the
    /// answer map one payload type twice.
    #[test]
    fn telephone_event_never_takes_the_codecs_payload_type() {
        let o = offer(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 telephone-event/8000\r\n",
        );
        let n = negotiate(&o).expect("PCMU by its static type");
        assert_eq!(
            (n.codec, n.codec_pt, n.telephone_event_pt),
            (AudioCodec::Pcmu, 0, None)
        );
    }

    const SRTP_OFFER: &str = "v=0\r\no=trunk 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\n\
        t=0 0\r\nm=audio 49170 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n\
        a=crypto:2 AES_CM_256_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj\r\n\
        a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20\r\n";

    #[test]
    fn an_savp_offer_takes_the_first_usable_crypto_line_and_the_answer_says_savp() {
        let o = offer(SRTP_OFFER);
        assert!(o.secure);
        // Tag 1 has an MKI and tag 2 a suite Hark lacks: tag 3 is the one.
        assert_eq!(o.crypto.len(), 1);
        let mut n = negotiate(&o).expect("negotiated");
        let sdes = n.srtp.expect("SRTP");
        assert_eq!((sdes.tag, sdes.suite), (3, SdesSuite::AesCm128HmacSha1_32));
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD
            .decode("NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj")
            .expect("b64");
        assert_eq!(sdes.remote_key.to_vec(), expected);
        if let Some(s) = n.srtp.as_mut() {
            s.local_key = [7; 30];
        }
        let a = build_answer(&n, "192.0.2.10:30000".parse().unwrap(), 1, 1);
        assert!(a.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{a}");
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 30]);
        assert!(
            a.contains(&format!(
                "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{key}\r\n"
            )),
            "{a}"
        );
        // Without any usable line an SAVP offer cannot be answered.
        let none = SRTP_OFFER.replace("a=crypto:3", "a=crypto-off:3");
        assert_eq!(negotiate(&offer(&none)), Err(SdpError::NoCrypto));
        // A plain offer stays plain.
        assert_eq!(negotiate(&offer(SIPP_OFFER)).expect("plain").srtp, None);
    }

    #[test]
    fn parses_sipp_offer() {
        let o = offer(SIPP_OFFER);
        assert_eq!(o.connection, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(o.port, 26000);
        assert_eq!(o.formats, vec![0, 8, 101]);
        assert_eq!(o.rtpmaps.len(), 3);
        assert_eq!(o.rtpmaps[2], (101, "telephone-event".to_string(), 8000));
        assert_eq!(o.direction, Direction::SendRecv);
        assert_eq!(o.ptime_ms, Some(20));
    }

    const LINPHONE_OPUS: &str = "v=0\r\no=linphone 1 1 IN IP4 127.0.0.1\r\ns=Talk\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7078 RTP/AVP 96 0 8 101 97\r\n\
        a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n\
        a=rtpmap:101 telephone-event/48000\r\na=rtpmap:97 telephone-event/8000\r\n";

    #[test]
    fn opus_first_is_taken_when_enabled_with_the_48k_event() {
        let n = negotiate_with(&offer(LINPHONE_OPUS), true).unwrap();
        assert_eq!((n.codec, n.codec_pt), (AudioCodec::Opus, 96));
        assert_eq!(
            (n.telephone_event_pt, n.telephone_event_clock),
            (Some(101), 48000)
        );
        let a = build_answer(&n, "192.0.2.10:30000".parse().unwrap(), 1, 1);
        assert!(a.contains("m=audio 30000 RTP/AVP 96 101\r\n"), "{a}");
        assert!(
            a.contains("a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1; stereo=0\r\n"),
            "{a}"
        );
        assert!(a.contains("a=rtpmap:101 telephone-event/48000\r\n"), "{a}");
    }

    #[test]
    fn opus_is_skipped_when_disabled_and_the_8k_event_goes_with_pcmu() {
        let n = negotiate(&offer(LINPHONE_OPUS)).unwrap();
        assert_eq!((n.codec, n.codec_pt), (AudioCodec::Pcmu, 0));
        assert_eq!(
            (n.telephone_event_pt, n.telephone_event_clock),
            (Some(97), 8000)
        );
        let only_opus = LINPHONE_OPUS.replace("RTP/AVP 96 0 8 101 97", "RTP/AVP 96 101");
        assert_eq!(
            negotiate(&offer(&only_opus)),
            Err(SdpError::NoCommonCodec(vec![96, 101]))
        );
    }

    #[test]
    fn opus_at_a_rate_other_than_48k_is_not_opus() {
        let odd = LINPHONE_OPUS.replace("opus/48000/2", "opus/16000");
        let n = negotiate_with(&offer(&odd), true).unwrap();
        assert_eq!(n.codec, AudioCodec::Pcmu);
    }

    #[test]
    fn negotiate_keeps_callers_order() {
        let o = offer(&SIPP_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 0 101"));
        let n = negotiate(&o).unwrap();
        assert_eq!((n.codec, n.codec_pt), (AudioCodec::Pcma, 8));
        assert_eq!(n.telephone_event_pt, Some(101));
        assert_eq!(n.remote_rtp, "127.0.0.1:26000".parse().unwrap());
    }

    #[test]
    fn telephone_event_at_pt_96() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 18 0 96\r\n\
                    a=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\n";
        let n = negotiate(&offer(body)).unwrap();
        assert_eq!(
            (n.codec, n.codec_pt, n.telephone_event_pt),
            (AudioCodec::Pcmu, 0, Some(96))
        );
    }

    #[test]
    fn dynamic_pt_pcmu_by_rtpmap_name() {
        let body =
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 97\r\na=rtpmap:97 pcmu/8000\r\n";
        let n = negotiate(&offer(body)).unwrap();
        assert_eq!(
            (n.codec, n.codec_pt, n.telephone_event_pt),
            (AudioCodec::Pcmu, 97, None)
        );
    }

    #[test]
    fn g729_only_is_no_common_codec() {
        let o = offer("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 18\r\n");
        assert_eq!(negotiate(&o), Err(SdpError::NoCommonCodec(vec![18])));
    }

    #[test]
    fn media_level_connection_and_direction_win() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nt=0 0\r\n\
                    m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\na=sendonly\r\n";
        let o = offer(body);
        assert_eq!(o.connection, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(o.direction, Direction::SendOnly);
        let session_only =
            offer("v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\n");
        assert_eq!(session_only.direction, Direction::Inactive);
    }

    #[test]
    fn port_zero_stream_is_no_audio() {
        let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n";
        assert_eq!(parse_offer(body.as_bytes()), Err(SdpError::NoAudio));
        // A later usable audio stream is taken instead.
        let two = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\nm=audio 5000 RTP/AVP 8\r\n";
        assert_eq!(offer(two).port, 5000);
    }

    #[test]
    fn video_only_is_no_audio_and_missing_c_is_no_connection() {
        let video = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 4000 RTP/AVP 96\r\n";
        assert_eq!(parse_offer(video.as_bytes()), Err(SdpError::NoAudio));
        let no_c = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(parse_offer(no_c.as_bytes()), Err(SdpError::NoConnection));
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(matches!(
            parse_offer(b"hello"),
            Err(SdpError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            parse_offer(b"v=0\r\nc=IN IP4 999.1.1.1\r\n"),
            Err(SdpError::Malformed { line: 2, .. })
        ));
        assert!(matches!(
            parse_offer(b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n"),
            Err(SdpError::Malformed { line: 2, .. })
        ));
        assert_eq!(parse_offer(&[0xff, 0xfe]), Err(SdpError::NotUtf8));
        assert!(parse_offer(b"").is_err());
    }

    #[test]
    fn answer_is_exact() {
        let n = negotiate(&offer(SIPP_OFFER)).unwrap();
        let a = build_answer(&n, "192.0.2.10:30000".parse().unwrap(), 42, 1);
        assert_eq!(
            a,
            "v=0\r\no=Hark 42 1 IN IP4 192.0.2.10\r\ns=Hark\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn answer_mirrors_direction_and_uses_ip6() {
        let mut n = negotiate(&offer(SIPP_OFFER)).unwrap();
        for (theirs, ours) in [
            (Direction::SendOnly, "a=recvonly"),
            (Direction::RecvOnly, "a=sendonly"),
            (Direction::Inactive, "a=inactive"),
        ] {
            n.remote_direction = theirs;
            let a = build_answer(&n, "[2001:db8::1]:30000".parse().unwrap(), 1, 2);
            assert!(a.ends_with(&format!("{ours}\r\n")), "{a}");
            assert!(a.contains("c=IN IP6 2001:db8::1\r\n"));
            assert!(a.contains("o=Hark 1 2 IN IP6 2001:db8::1\r\n"));
        }
    }

    #[test]
    fn offer_roundtrips_through_parse_and_negotiate() {
        let o = build_offer("10.1.1.1:40000".parse().unwrap(), 7);
        let parsed = offer(&o);
        assert_eq!(parsed.formats, vec![0, 8, 101]);
        let n = negotiate(&parsed).unwrap();
        assert_eq!((n.codec_pt, n.telephone_event_pt), (0, Some(101)));
        assert_eq!(n.remote_rtp, "10.1.1.1:40000".parse().unwrap());
    }

    #[test]
    fn answer_parses_back_as_offer() {
        let n = negotiate(&offer(SIPP_OFFER)).unwrap();
        let a = build_answer(&n, "192.0.2.10:30000".parse().unwrap(), 42, 1);
        let back = negotiate(&offer(&a)).unwrap();
        assert_eq!(back.remote_rtp, "192.0.2.10:30000".parse().unwrap());
        assert_eq!(back.telephone_event_pt, Some(101));
    }
}
