//! The one test over real sockets: our leg and a str0m client on 127.0.0.1, driven by tokio,
//! bounded in wall time. It checks that nothing in the sans-IO contract depended on the
//! simulated network (addresses, the socket's local address as ICE host candidate).

mod common;

use std::time::{Duration, Instant};

use common::{client_offer, client_rtc};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input};
use tokio::net::UdpSocket;
use webrtc_endpoint::{LegConfig, Output, WebRtcLeg};

/// Frames the client sends once connected; the test ends when the leg has them all.
const FRAMES: usize = 10;

#[tokio::test]
async fn browser_connects_and_sends_audio_over_loopback_udp() {
    tokio::time::timeout(Duration::from_secs(10), call())
        .await
        .expect("the call completes within 10 s");
}

async fn call() {
    let leg_socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let client_socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let client_addr = client_socket.local_addr().expect("addr");
    let leg_addr = leg_socket.local_addr().expect("addr");

    let config = LegConfig::new(false).expect("certificate");
    let now = Instant::now();
    let mut client = client_rtc(now, &[Codec::PCMU, Codec::Opus], client_addr);
    let (mid, offer, pending) = client_offer(&mut client);
    let (mut leg, answer) =
        WebRtcLeg::accept_offer(&config, now, &offer, leg_addr).expect("answer");
    client
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer.sdp).expect("parses"),
        )
        .expect("client takes the answer");

    let (mut leg_buf, mut client_buf) = (vec![0u8; 2000], vec![0u8; 2000]);
    let (mut leg_connected, mut client_connected) = (false, false);
    let mut received = Vec::new();
    let mut written = 0usize;
    let mut next_write = now;
    loop {
        // Drain both to their timeouts.
        let leg_deadline = loop {
            match leg.poll_output().expect("leg poll") {
                Output::Transmit(t) => {
                    leg_socket.send_to(&t.bytes, t.to).await.expect("send");
                }
                Output::Connected => leg_connected = true,
                Output::Disconnected => panic!("leg disconnected"),
                Output::Audio(media) => received.push(media),
                Output::Timeout(at) => break at,
            }
        };
        let client_deadline = loop {
            match client.poll_output().expect("client poll") {
                str0m::Output::Transmit(t) => {
                    client_socket
                        .send_to(&t.contents, t.destination)
                        .await
                        .expect("send");
                }
                str0m::Output::Event(Event::Connected) => client_connected = true,
                str0m::Output::Event(_) => {}
                str0m::Output::Timeout(at) => break at,
            }
        };
        if received.len() >= FRAMES {
            break;
        }
        let now = Instant::now();
        if leg_connected && client_connected && written < FRAMES && now >= next_write {
            let ts = MediaTime::new((written * 160) as u64, Frequency::EIGHT_KHZ);
            client
                .writer(mid)
                .expect("writer")
                .write(0.into(), now, ts, &[written as u8; 160][..])
                .expect("write");
            written += 1;
            next_write = now + Duration::from_millis(20);
            continue;
        }
        let wake = leg_deadline
            .min(client_deadline)
            .min(now + Duration::from_millis(20));
        tokio::select! {
            r = leg_socket.recv_from(&mut leg_buf) => {
                let (n, from) = r.expect("recv");
                leg.handle_datagram(Instant::now(), from, &leg_buf[..n]).expect("leg input");
            }
            r = client_socket.recv_from(&mut client_buf) => {
                let (n, from) = r.expect("recv");
                let receive = Receive::new(Protocol::Udp, from, client_addr, &client_buf[..n])
                    .expect("datagram");
                client
                    .handle_input(Input::Receive(Instant::now(), receive))
                    .expect("client input");
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                leg.handle_timeout(now).expect("leg timeout");
                client.handle_input(Input::Timeout(now)).expect("client timeout");
            }
        }
    }
    assert!(leg.is_connected());
    for (i, media) in received.iter().enumerate() {
        assert_eq!(media.payload(), [i as u8; 160]);
    }
}
