//! RTP (RFC 3550) header view.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("datagram shorter than an RTP header ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version is not 2")]
    BadVersion,
    #[error("RTP header fields (CSRC count, extension or padding) run past the datagram")]
    BadLength,
    #[error("packet is RTCP (payload type {0}), not RTP")]
    Rtcp(u8),
}

/// Borrowed view of one RTP packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Second-byte values that mark RTCP on a muxed port (RFC 5761 §4: packet types 192..=223,
/// i.e. RTP payload types 64..=95 with the marker bit folded in). SR..APP are 200..=204.
const RTCP_TYPES: std::ops::RangeInclusive<u8> = 192..=223;

/// Parses the fixed header, CSRCs, extension and padding; RTCP on the same port is reported as
/// [`RtpError::Rtcp`] so the caller can route or ignore it.
pub fn parse(datagram: &[u8]) -> Result<RtpView<'_>, RtpError> {
    // RTCP can be shorter than an RTP header (an empty RR is 8 bytes): classify it first.
    if let [first, second, ..] = *datagram {
        if first >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        if RTCP_TYPES.contains(&second) {
            return Err(RtpError::Rtcp(second));
        }
    }
    let reader = rtp_rs::RtpReader::new(datagram).map_err(|e| match e {
        rtp_rs::RtpReaderError::BufferTooShort(n) => RtpError::TooShort(n),
        rtp_rs::RtpReaderError::UnsupportedVersion(_) => RtpError::BadVersion,
        rtp_rs::RtpReaderError::HeadersTruncated { .. }
        | rtp_rs::RtpReaderError::PaddingLengthInvalid(_) => RtpError::BadLength,
    })?;
    Ok(RtpView {
        payload_type: reader.payload_type(),
        marker: reader.mark(),
        sequence: reader.sequence_number().into(),
        timestamp: reader.timestamp(),
        ssrc: reader.ssrc(),
        payload: reader.payload(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(b0: u8, b1: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![b0, b1, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xDE, 0xAD, 0xBE, 0xEF];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn fixed_header_fields_are_read_big_endian() {
        let p = packet(0x80, 0x80, &[1, 2, 3]);
        let v = parse(&p).unwrap();
        assert_eq!(v.payload_type, 0);
        assert!(v.marker);
        assert_eq!(v.sequence, 0x1234);
        assert_eq!(v.timestamp, 320);
        assert_eq!(v.ssrc, 0xDEAD_BEEF);
        assert_eq!(v.payload, &[1, 2, 3]);
    }

    #[test]
    fn csrc_list_is_skipped_before_payload() {
        let mut p = packet(0x82, 8, &[]);
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[9, 9]);
        let v = parse(&p).unwrap();
        assert_eq!(v.payload_type, 8);
        assert_eq!(v.payload, &[9, 9]);
    }

    #[test]
    fn csrc_count_past_end_is_bad_length() {
        let p = packet(0x8F, 0, &[0; 4]);
        assert_eq!(parse(&p).unwrap_err(), RtpError::BadLength);
    }

    #[test]
    fn extension_header_is_skipped() {
        // X bit, profile 0xBEDE, length 1 word.
        let p = packet(0x90, 0, &[0xBE, 0xDE, 0, 1, 1, 2, 3, 4, 0x55]);
        assert_eq!(parse(&p).unwrap().payload, &[0x55]);
    }

    #[test]
    fn extension_length_past_end_is_bad_length() {
        let p = packet(0x90, 0, &[0xBE, 0xDE, 0, 9, 1, 2]);
        assert_eq!(parse(&p).unwrap_err(), RtpError::BadLength);
    }

    #[test]
    fn padding_is_removed_from_payload() {
        let p = packet(0xA0, 0, &[7, 7, 0, 0, 3]);
        assert_eq!(parse(&p).unwrap().payload, &[7, 7]);
    }

    #[test]
    fn padding_count_zero_or_too_large_is_bad_length() {
        assert_eq!(
            parse(&packet(0xA0, 0, &[7, 0])).unwrap_err(),
            RtpError::BadLength
        );
        assert_eq!(
            parse(&packet(0xA0, 0, &[7, 9])).unwrap_err(),
            RtpError::BadLength
        );
        assert_eq!(
            parse(&packet(0xA0, 0, &[])).unwrap_err(),
            RtpError::BadLength
        );
    }

    #[test]
    fn version_other_than_2_is_rejected() {
        assert_eq!(
            parse(&packet(0x40, 0, &[1])).unwrap_err(),
            RtpError::BadVersion
        );
        assert_eq!(parse(&[0x00]).unwrap_err(), RtpError::TooShort(1));
    }

    #[test]
    fn rtcp_types_200_to_204_are_rtcp_even_when_short() {
        for pt in 200..=204u8 {
            // An empty receiver report is 8 bytes.
            let rr = [0x80, pt, 0, 1, 0, 0, 0, 1];
            assert_eq!(parse(&rr).unwrap_err(), RtpError::Rtcp(pt));
        }
        assert_eq!(
            parse(&packet(0x81, 200, &[0; 24])).unwrap_err(),
            RtpError::Rtcp(200)
        );
    }

    #[test]
    fn short_datagrams_are_too_short() {
        for n in 0..12 {
            let p = packet(0x80, 0, &[]);
            assert_eq!(parse(&p[..n]).unwrap_err(), RtpError::TooShort(n));
        }
    }
}
