//! A bot drives a real SIP/RTP call (SPEC §7): `established` → `recordResponse` with
//! `stopTones ["#"]` → completion 200/8514 with a recording that is exactly the caller's audio,
//! downloadable with its access token only → `playPrompt` heard by the caller → `DELETE` sends
//! BYE → `terminated`.

mod bot_support;
mod common;

use bot_support::*;
use common::*;
use serde_json::json;
use std::time::Duration;

const DTMF_AT: f64 = 4.0;

#[test]
fn bot_record_response_stop_tone_download_prompt_and_hangup() {
    let bot = Bot::start();
    let mut d = bot_daemon(&bot);
    // Silence 0–1 s (covers the beep), speech 1.0–3.6 s, silence; '#' at 4.0 s.
    let c = composite(1.0, 2.6, 10.0);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    let received = d.tmp.join("received.wav");
    let caller = HarkCall::new(&d.uri("bot"))
        .play(&wav)
        .dtmf("#", DTMF_AT)
        .save_received(&received)
        .spawn(&d.tmp);

    let id = bot.wait_established(Duration::from_secs(10));
    assert!(is_sid(&id, "CA"), "call id {id}");
    // `establishing` came first, both as JSON commsNotifications.
    let first = &bot.notes()[0];
    assert_eq!(first.state(), Some("establishing"), "{}", bot.describe());
    assert!(first.content_type.starts_with("application/json"));
    assert_eq!(
        first.body["value"][0]["@odata.type"],
        "#microsoft.graph.commsNotification"
    );

    let call = get_bearer(&bot, &call_url(&d, &id, ""), API_TOKEN);
    assert_eq!(call.status, 200, "{}", call.text());
    let cv = call.json();
    assert_eq!(cv["id"], id.as_str());
    assert_eq!(cv["state"], "established");
    assert_eq!(cv["@odata.type"], "#microsoft.graph.call");

    let body = json!({
        "stopTones": ["#"],
        "maxRecordDurationInSeconds": 20,
        "initialSilenceTimeoutInSeconds": 5,
        "maxSilenceTimeoutInSeconds": 5,
        "clientContext": "ctx-record-1",
    });
    let op = start_op(&bot, &d, &id, "recordResponse", &body);
    let done = bot.wait_op(&id, &op, Duration::from_secs(15));
    assert_eq!(done.status(), Some("completed"), "{}", done.data);
    assert_eq!(done.result(), (200, 8514), "{}", done.data);
    assert_eq!(done.data["@odata.type"], "#microsoft.graph.recordOperation");
    assert_eq!(done.data["clientContext"], "ctx-record-1");
    let location = done.data["recordingLocation"]
        .as_str()
        .expect("recordingLocation")
        .to_string();
    let token = done.data["recordingAccessToken"]
        .as_str()
        .expect("recordingAccessToken")
        .to_string();
    let prefix = format!("{}/v1.0/communications/recordings/", d.public_url());
    let sid = location
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("recordingLocation {location}"))
        .to_string();
    assert!(is_sid(&sid, "RE"), "{sid}");

    // GET operations/{id} shows the same outcome.
    let g = get_bearer(
        &bot,
        &call_url(&d, &id, &format!("/operations/{op}")),
        API_TOKEN,
    );
    assert_eq!(g.status, 200);
    assert_eq!(g.json()["status"], "completed");
    assert_eq!(g.json()["resultInfo"]["subcode"], 8514);

    // The download is the caller's audio, sample for sample, up to where '#' began (−40 ms).
    let got = get_bearer(&bot, &location, &token);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    let file = std::fs::read(d.recording_path(&sid)).expect("recording on disk");
    assert!(got.body == file, "downloaded bytes differ from the file");
    let samples = wav_samples(&got.body);
    let sent = decode_all(&c.ulaw);
    let offset = find_segment(&samples, &sent)
        .unwrap_or_else(|e| panic!("recording is not the caller's audio: {e}"));
    let end = offset + samples.len();
    assert!(
        offset <= c.speech_start && end >= c.speech_end,
        "speech {:.2}–{:.2} s not inside the recording {:.2}–{:.2} s",
        secs(c.speech_start),
        secs(c.speech_end),
        secs(offset),
        secs(end)
    );
    assert_near("recording end", end, (DTMF_AT * 8000.0) as usize - 320, 480);
    let tail = &samples[samples.len().saturating_sub(800)..];
    assert!(
        !tail.chunks(160).any(|f| has_dtmf(f, 941.0, 1477.0)),
        "'#' tone in the recording"
    );

    // Any other credential is refused.
    for bad in [
        "wrong",
        API_TOKEN,
        &format!("{token}x"),
        &token[..token.len() - 1],
    ] {
        let r = get_bearer(&bot, &location, bad);
        assert_eq!(r.status, 401, "token {bad:?}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "InvalidAuthenticationToken");
    }
    let r = bot.request("GET", &location, Auth::None, None, Vec::new());
    assert_eq!(r.status, 401);
    // The token names this recording only.
    let other = format!("{prefix}RE0123456789abcdef0123456789abcdef");
    assert_eq!(get_bearer(&bot, &other, &token).status, 401);
    // Kept and listed by the Twilio-style API too.
    let rest = bot.request(
        "GET",
        &format!("{}.json", d.recording_url(&sid)),
        Auth::Basic(ACCOUNT_SID, AUTH_TOKEN),
        None,
        Vec::new(),
    );
    assert_eq!(rest.status, 200, "{}", rest.text());
    assert_eq!(rest.json()["call_sid"], id.as_str());

    // A prompt the caller hears: 1 s of 440 Hz.
    let prompt_url = bot.serve_wav("prompt.wav", &tone(440.0, 1.0, 8000.0));
    let p = start_op(
        &bot,
        &d,
        &id,
        "playPrompt",
        &json!({"prompts": [prompt(&prompt_url)], "clientContext": "ctx-prompt"}),
    );
    let pd = bot.wait_op(&id, &p, Duration::from_secs(10));
    assert_eq!(pd.status(), Some("completed"), "{}", pd.data);
    assert_eq!(pd.result().0, 200, "{}", pd.data);
    assert_eq!(
        pd.data["@odata.type"],
        "#microsoft.graph.playPromptOperation"
    );
    assert_eq!(pd.data["clientContext"], "ctx-prompt");

    // DELETE hangs up: the caller gets a BYE.
    let del = bot.request(
        "DELETE",
        &call_url(&d, &id, ""),
        Auth::Bearer(API_TOKEN),
        None,
        Vec::new(),
    );
    assert_eq!(del.status, 204, "{}", del.text());
    let out = caller.wait(Duration::from_secs(10));
    out.assert_success();
    assert!(
        out.stdout.contains("ended by the server"),
        "caller: {}",
        out.stdout
    );
    let term = bot.wait_terminated(&id, Duration::from_secs(10));
    assert!(
        since(del.sent, term.at) < 2.0,
        "terminated {:.2} s after DELETE",
        since(del.sent, term.at)
    );

    // Order: establishing, established, record done, prompt done, terminated.
    let order: Vec<String> = bot
        .notes()
        .iter()
        .map(|n| {
            n.state()
                .map(str::to_string)
                .unwrap_or_else(|| n.data["id"].as_str().unwrap_or("?").to_string())
        })
        .collect();
    assert_eq!(
        order,
        vec![
            "establishing".to_string(),
            "established".into(),
            op.clone(),
            p.clone(),
            "terminated".into()
        ]
    );
    bot.assert_no_bad_bodies();

    // What the caller heard: the beep (1 kHz, 0.5 s) and the prompt (440 Hz, 1 s).
    let heard = read_recording(&received);
    let frames = |f: f64| {
        heard
            .chunks(FRAME)
            .filter(|c| c.len() == FRAME && tone_share(c, f) > 0.4)
            .count()
    };
    let (beep, prompt) = (frames(1000.0), frames(440.0));
    assert!((23..=27).contains(&beep), "beep frames heard: {beep}");
    assert!((48..=52).contains(&prompt), "prompt frames heard: {prompt}");

    // After the call the API still knows it, as terminated.
    let after = get_bearer(&bot, &call_url(&d, &id, ""), API_TOKEN);
    assert_eq!(after.status, 200);
    assert_eq!(after.json()["state"], "terminated");
    d.assert_alive();
}
