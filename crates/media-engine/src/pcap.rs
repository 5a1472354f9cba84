//! A small reader for classic libpcap captures of RTP over UDP (what SIPp plays and tshark
//! writes): Ethernet, Linux cooked (SLL/SLL2) or raw IP links; IPv4 or IPv6; optional VLAN tag.
//! Records that are not UDP are skipped; what is left of each UDP payload is returned as-is.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PcapError {
    #[error("pcap global header: file shorter than 24 bytes ({0})")]
    TooShort(usize),
    #[error("pcap global header: magic number {0:#010x} is not libpcap")]
    BadMagic(u32),
    #[error("pcap global header: link type {0} is not Ethernet, Linux cooked or raw IP")]
    UnsupportedLinkType(u32),
    #[error("pcap record header at byte {0} is truncated")]
    TruncatedRecordHeader(usize),
    #[error("pcap record at byte {0}: captured length runs past the end of the file")]
    TruncatedRecord(usize),
}

/// One UDP datagram from the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRtp {
    /// Capture time since the first UDP datagram in the file.
    pub time_offset: Duration,
    pub src_port: u16,
    pub dst_port: u16,
    /// The UDP payload (RTP, or whatever else was on the port).
    pub rtp: Vec<u8>,
}

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Reads every UDP datagram of a classic (not pcapng) capture, in file order.
pub fn read_rtp_packets(bytes: &[u8]) -> Result<Vec<PcapRtp>, PcapError> {
    let header = bytes.get(..24).ok_or(PcapError::TooShort(bytes.len()))?;
    let magic_le = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let (big_endian, nanos) = match magic_le {
        0xA1B2_C3D4 => (false, false),
        0xA1B2_3C4D => (false, true),
        0xD4C3_B2A1 => (true, false),
        0x4D3C_B2A1 => (true, true),
        other => return Err(PcapError::BadMagic(other)),
    };
    let u32_at = |b: &[u8], at: usize| -> u32 {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let link = u32_at(header, 20) & 0x0FFF_FFFF;
    if ![
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_LINUX_SLL2,
    ]
    .contains(&link)
    {
        return Err(PcapError::UnsupportedLinkType(link));
    }
    let mut out = Vec::new();
    let mut first: Option<Duration> = None;
    let mut at = 24;
    while at < bytes.len() {
        let rec = bytes
            .get(at..at + 16)
            .ok_or(PcapError::TruncatedRecordHeader(at))?;
        let (sec, frac, caplen) = (u32_at(rec, 0), u32_at(rec, 4), u32_at(rec, 8) as usize);
        let frame = bytes
            .get(at + 16..at + 16 + caplen)
            .ok_or(PcapError::TruncatedRecord(at))?;
        at += 16 + caplen;
        let Some((src_port, dst_port, payload)) = udp_of(link, frame) else {
            continue;
        };
        let time = Duration::new(
            u64::from(sec),
            if nanos {
                frac
            } else {
                frac.saturating_mul(1000)
            }
            .min(999_999_999),
        );
        let start = *first.get_or_insert(time);
        out.push(PcapRtp {
            time_offset: time.saturating_sub(start),
            src_port,
            dst_port,
            rtp: payload.to_vec(),
        });
    }
    Ok(out)
}

/// The UDP ports and payload of one link-layer frame, if it carries UDP.
fn udp_of(link: u32, frame: &[u8]) -> Option<(u16, u16, &[u8])> {
    let be16 = |b: &[u8], at: usize| b.get(at..at + 2).map(|w| u16::from_be_bytes([w[0], w[1]]));
    let (mut ethertype, mut ip) = match link {
        LINKTYPE_ETHERNET => (be16(frame, 12)?, frame.get(14..)?),
        LINKTYPE_LINUX_SLL => (be16(frame, 14)?, frame.get(16..)?),
        LINKTYPE_LINUX_SLL2 => (be16(frame, 0)?, frame.get(20..)?),
        _ => (0, frame),
    };
    if ethertype == 0x8100 {
        ethertype = be16(ip, 2)?;
        ip = ip.get(4..)?;
    }
    let version = ip.first()? >> 4;
    if link == LINKTYPE_RAW {
        ethertype = if version == 6 { 0x86DD } else { 0x0800 };
    }
    let udp = match ethertype {
        0x0800 if version == 4 => {
            let ihl = usize::from(ip.first()? & 0x0F) * 4;
            let total = usize::from(be16(ip, 2)?);
            (*ip.get(9)? == 17).then_some(())?;
            ip.get(ihl..total.min(ip.len()))?
        }
        0x86DD if version == 6 => {
            let payload_len = usize::from(be16(ip, 4)?);
            (*ip.get(6)? == 17).then_some(())?;
            ip.get(40..(40 + payload_len).min(ip.len()))?
        }
        _ => return None,
    };
    let udp_len = usize::from(be16(udp, 4)?);
    let payload = udp.get(8..udp_len.clamp(8, udp.len().max(8)))?;
    Some((be16(udp, 0)?, be16(udp, 2)?, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(link: u32) -> Vec<u8> {
        let mut g = Vec::new();
        g.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        g.extend_from_slice(&[2, 0, 4, 0]);
        g.extend_from_slice(&[0; 8]);
        g.extend_from_slice(&65535u32.to_le_bytes());
        g.extend_from_slice(&link.to_le_bytes());
        g
    }

    fn record(file: &mut Vec<u8>, sec: u32, usec: u32, frame: &[u8]) {
        for v in [sec, usec, frame.len() as u32, frame.len() as u32] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(frame);
    }

    fn eth_ipv4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 8 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn reads_udp_payloads_ports_and_relative_times() {
        let mut file = global(LINKTYPE_ETHERNET);
        record(
            &mut file,
            100,
            999_000,
            &eth_ipv4_udp(6000, 6002, &[0x80, 0, 1]),
        );
        // An ARP frame in between is skipped.
        let mut arp = vec![0; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        record(&mut file, 100, 999_500, &arp);
        // Ethernet minimum-frame padding after the UDP datagram is not payload.
        let mut padded = eth_ipv4_udp(6000, 6002, &[9]);
        padded.extend_from_slice(&[0; 6]);
        record(&mut file, 101, 19_000, &padded);
        let pkts = read_rtp_packets(&file).unwrap();
        assert_eq!(pkts.len(), 2);
        assert_eq!(
            pkts[0],
            PcapRtp {
                time_offset: Duration::ZERO,
                src_port: 6000,
                dst_port: 6002,
                rtp: vec![0x80, 0, 1]
            }
        );
        assert_eq!(pkts[1].time_offset, Duration::from_millis(20));
        assert_eq!(pkts[1].rtp, vec![9]);
    }

    #[test]
    fn bad_headers_are_errors_not_panics() {
        assert_eq!(read_rtp_packets(&[0; 10]), Err(PcapError::TooShort(10)));
        assert_eq!(read_rtp_packets(&[0; 24]), Err(PcapError::BadMagic(0)));
        assert_eq!(
            read_rtp_packets(&global(105)),
            Err(PcapError::UnsupportedLinkType(105))
        );
        let mut file = global(LINKTYPE_ETHERNET);
        record(&mut file, 0, 0, &eth_ipv4_udp(1, 2, &[1, 2, 3]));
        for cut in 25..file.len() {
            let r = read_rtp_packets(&file[..cut]);
            assert!(
                matches!(
                    r,
                    Err(PcapError::TruncatedRecordHeader(24) | PcapError::TruncatedRecord(24))
                ),
                "{cut}: {r:?}"
            );
        }
    }

    #[test]
    fn truncated_frames_inside_records_are_skipped() {
        let frame = eth_ipv4_udp(1, 2, &[1, 2, 3]);
        for cut in 0..14 + 20 + 8 {
            let mut file = global(LINKTYPE_ETHERNET);
            record(&mut file, 0, 0, &frame[..cut]);
            assert_eq!(read_rtp_packets(&file).unwrap(), vec![], "cut {cut}");
        }
    }
}
