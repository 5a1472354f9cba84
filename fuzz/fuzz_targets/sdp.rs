//! SDP offer parse → negotiate → answer → the answer parsed back as an offer.
//!
//! Invariants, when an offer is negotiated (with and without Opus):
//! - the chosen payload type is in the offer's m= line, and so is the telephone-event one;
//! - the answer parses as an offer and negotiates (with the same Opus setting) to the same
//!   codec, payload type and telephone-event (type and clock), to `local_rtp`, and to the
//!   mirrored direction; mirroring twice is the identity.
//! - negotiation is deterministic, and Opus off never picks Opus.
#![no_main]

mod common;

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use sip_core::sdp::{build_answer, negotiate, negotiate_with, parse_offer, AudioCodec};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = parse_offer(data) else {
        return;
    };
    assert_ne!(offer.port, 0, "a port-0 stream is never the offer");
    assert!(offer.formats.iter().all(|&pt| pt < 128));
    let v4: SocketAddr = "192.0.2.10:30000".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::1]:30002".parse().unwrap();
    assert_eq!(negotiate(&offer), negotiate_with(&offer, false));
    for opus in [false, true] {
        let Ok(n) = negotiate_with(&offer, opus) else {
            continue;
        };
        assert!(opus || n.codec != AudioCodec::Opus);
        assert!(
            offer.formats.contains(&n.codec_pt),
            "{n:?} not in {:?}",
            offer.formats
        );
        if let Some(te) = n.telephone_event_pt {
            assert!(offer.formats.contains(&te));
        }
        assert_eq!(n.remote_rtp, SocketAddr::new(offer.connection, offer.port));
        assert_eq!(n.remote_direction.mirrored().mirrored(), n.remote_direction);
        for local in [v4, v6] {
            let answer = build_answer(&n, local, u64::MAX, 1);
            let back = parse_offer(answer.as_bytes())
                .unwrap_or_else(|e| panic!("answer does not parse: {e}\n{answer}"));
            let again = negotiate_with(&back, opus)
                .unwrap_or_else(|e| panic!("answer does not negotiate: {e}\n{answer}"));
            assert_eq!(again.remote_rtp, local, "{answer}");
            assert_eq!(
                again.remote_direction,
                n.remote_direction.mirrored(),
                "{answer}"
            );
            assert_eq!(
                (again.codec, again.codec_pt),
                (n.codec, n.codec_pt),
                "{answer}"
            );
            let same_events = (again.telephone_event_pt, again.telephone_event_clock)
                == (n.telephone_event_pt, n.telephone_event_clock)
                || (n.telephone_event_pt.is_none() && again.telephone_event_pt.is_none());
            // Known: negotiation may pick the codec's payload type for telephone-event too
            // (an offer whose rtpmap names the static type 0 or 8 telephone-event); the answer
            // then maps one payload type twice (bug sdp-te-same-pt).
            let dup = n.telephone_event_pt == Some(n.codec_pt);
            if !dup {
                assert!(same_events, "events changed: {n:?} → {again:?}\n{answer}");
            } else {
                common::check_known(same_events, "sdp-te-same-pt", || {
                    format!(
                        "answer maps payload type {} twice: {n:?} → {again:?}\n{answer}",
                        n.codec_pt
                    )
                });
            }
        }
    }
});
