//! Checks of the e2e harness itself (no daemon involved): if these fail, the other tests'
//! verdicts mean nothing.

mod common;

use common::webhook::twilio_signature;
use common::*;

#[test]
fn signature_matches_twilio_documented_example() {
    let params: Vec<(String, String)> = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params
        ),
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
    let mut tampered = params.clone();
    tampered[2].1 = "9".into();
    assert_ne!(
        twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &tampered
        ),
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
}

#[test]
fn ulaw_decode_is_the_g711_table_and_roundtrips() {
    assert_eq!(ulaw_decode(0xFF), 0);
    assert_eq!(ulaw_decode(0x7F), 0);
    assert_eq!(ulaw_decode(0x00), -32124);
    assert_eq!(ulaw_decode(0x80), 32124);
    assert_eq!(ulaw_decode(0xFE), 8);
    for u in 0..=255u8 {
        let x = ulaw_decode(u);
        assert_eq!(ulaw_decode(ulaw_encode(x)), x, "code {u:#04x}");
    }
}

#[test]
fn find_segment_locates_exact_copy_and_rejects_altered_one() {
    let src = decode_all(&speech_ulaw());
    let rec = src[12_345..30_000].to_vec();
    assert_eq!(find_segment(&rec, &src), Ok(12_345));
    let mut bad = rec.clone();
    bad[5000] = bad[5000].wrapping_add(1);
    assert!(find_segment(&bad, &src).is_err());
    let halved: Vec<i16> = rec.iter().map(|&x| x / 2).collect();
    assert!(find_segment(&halved, &src).is_err());
}

#[test]
fn goertzel_tells_dtmf_pound_from_speech() {
    let pound: Vec<i16> = tone(941.0, 0.1, 8000.0)
        .iter()
        .zip(tone(1477.0, 0.1, 8000.0))
        .map(|(a, b)| a + b)
        .collect();
    assert!(has_dtmf(&pound, 941.0, 1477.0));
    let speech = decode_all(&speech_ulaw());
    let dtmf_frames = speech
        .chunks(800)
        .filter(|f| has_dtmf(f, 941.0, 1477.0))
        .count();
    assert_eq!(dtmf_frames, 0, "speech fixture must not look like '#'");
    assert!(tone_share(&tone(440.0, 0.1, 5000.0), 440.0) > 0.4);
    assert!(tone_share(&tone(440.0, 0.1, 5000.0), 1000.0) < 0.01);
}

#[test]
fn composite_fixture_has_expected_speech_span() {
    let c = composite(1.0, 3.4, 1.6);
    assert_eq!(c.ulaw.len(), 6 * 8000);
    // Speech begins 20 ms into the fixture and pauses at about 3.30 s.
    assert!((8000..8400).contains(&c.speech_start), "{}", c.speech_start);
    assert!(
        (4 * 8000..(4.45 * 8000.0) as usize).contains(&c.speech_end),
        "{}",
        c.speech_end
    );
}

#[test]
fn wav_writers_roundtrip() {
    let dir = TempDir::new("selfcheck");
    let u = speech_ulaw();
    write_ulaw_wav(&dir.join("u.wav"), &u[..1001]);
    assert_eq!(read_ulaw_wav(&dir.join("u.wav")), u[..1001].to_vec());
    assert_eq!(read_wav_any(&dir.join("u.wav")), decode_all(&u[..1001]));
    let pcm = decode_all(&u[..500]);
    write_pcm_wav(&dir.join("p.wav"), &pcm);
    assert_eq!(read_recording(&dir.join("p.wav")), pcm);
}

#[test]
fn listening_line_gives_the_bound_addresses() {
    let log = "2025-01-01T00:00:00.000001Z  INFO hark::server: listening \
               sip_udp=127.0.0.1:41000 sip_tcp=127.0.0.1:41000 http=127.0.0.1:41001\n\
               2025-01-01T00:00:00.1Z  INFO hark::server: hark is serving sip=127.0.0.1:41000\n";
    let l = common::daemon::Listening::find(log).expect("parsed");
    assert_eq!(l.sip_udp, "127.0.0.1:41000".parse().unwrap());
    assert_eq!(l.sip_tcp, l.sip_udp);
    assert_eq!(l.http, "127.0.0.1:41001".parse().unwrap());
    assert_eq!(
        common::daemon::Listening::find("INFO hark::server: hark is serving"),
        None
    );
}

#[test]
fn port_blocks_are_distinct_and_bindable() {
    let a = alloc_port_block();
    let b = alloc_port_block();
    assert_ne!(a, b);
    assert!((30000..60000).contains(&a) && (30000..60000).contains(&b));
}

#[test]
fn inserted_silence_is_tolerated_only_up_to_the_limit_and_never_loss() {
    let src = decode_all(&speech_ulaw());
    let mut rec = src[8000..20000].to_vec();
    assert_eq!(
        find_segment_with_inserted_silence(&rec, &src, 480),
        Ok((8000, 0))
    );
    // 160 zeros inserted inside speech: tolerated with 480, not with 100.
    rec.splice(9000..9000, std::iter::repeat_n(0i16, 160));
    assert_eq!(
        find_segment_with_inserted_silence(&rec, &src, 480),
        Ok((8000, 160))
    );
    assert!(find_segment_with_inserted_silence(&rec, &src, 100).is_err());
    // A lost frame is never tolerated.
    let mut lost = src[8000..20000].to_vec();
    lost.drain(9000..9160);
    assert!(find_segment_with_inserted_silence(&lost, &src, 480).is_err());
}
