//! Cost figures, not checks: `cargo test --release -p webrtc-endpoint --test cost -- --ignored
//! --nocapture`. Wall time on this machine; the browser side (str0m) is not counted.

mod common;

use std::time::{Duration, Instant};

use common::{addr, client_offer, client_rtc, Pair, CLIENT_ADDR, LEG_ADDR};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime};
use webrtc_endpoint::{LegConfig, WebRtcLeg};

#[test]
#[ignore = "prints timings; run in release"]
fn setup_and_per_packet_cost() {
    let now = Instant::now();
    let mut client = client_rtc(now, &[Codec::PCMU, Codec::Opus], addr(CLIENT_ADDR));
    let (_, offer, _) = client_offer(&mut client);

    let config = LegConfig::new(false).expect("certificate");
    let n = 200;
    let began = Instant::now();
    for _ in 0..n {
        WebRtcLeg::accept_offer(&config, now, &offer, addr(LEG_ADDR)).expect("answer");
    }
    let shared = began.elapsed() / n;
    let began = Instant::now();
    for _ in 0..n / 10 {
        let config = LegConfig::new(false).expect("certificate");
        WebRtcLeg::accept_offer(&config, now, &offer, addr(LEG_ADDR)).expect("answer");
    }
    let fresh = began.elapsed() / (n / 10);
    println!("accept_offer with the shared certificate: {shared:?}; with a new one: {fresh:?}");

    // 60 s of PCMU: the leg's SRTP decrypt + depacketize + events per packet.
    let mut pair = Pair::browser_calls(&config, &[Codec::PCMU]);
    pair.connect();
    pair.leg_busy = Duration::ZERO;
    let start = pair.now;
    let frames = 3000u64;
    for i in 0..frames {
        pair.run_until(start + Duration::from_millis(20 * i));
        let now = pair.now;
        let mid = pair.client_mid;
        pair.client
            .writer(mid)
            .expect("writer")
            .write(
                0.into(),
                now,
                MediaTime::new(i * 160, Frequency::EIGHT_KHZ),
                &[0x55u8; 160][..],
            )
            .expect("write");
    }
    pair.run_for(Duration::from_millis(200));
    let received = pair.received.len() as u32;
    assert_eq!(u64::from(received), frames);
    // leg_busy also holds the STUN and RTCP the leg handled meanwhile: an upper bound.
    println!(
        "receive: {:?} per audio packet (SRTP, depacketize, poll; {received} frames)",
        pair.leg_busy / received
    );
}
