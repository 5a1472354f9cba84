//! `subscribeToTone` (issue 6): after it, every key the caller presses reaches the bot as a
//! `commsNotification` (changeType `updated`, `toneInfo {tone, sequenceId}`), in order.

mod bot_support;
mod common;

use bot_support::*;
use common::*;
use serde_json::json;
use std::time::Duration;

fn tones(bot: &Bot, id: &str) -> Vec<(String, u64)> {
    bot.notes()
        .iter()
        .filter(|n| !n.data["toneInfo"].is_null())
        .map(|n| {
            assert_eq!(n.change_type, "updated");
            assert_eq!(n.resource_url, format!("/communications/calls/{id}"));
            (
                n.data["toneInfo"]["tone"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                n.data["toneInfo"]["sequenceId"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn caller(d: &Daemon, keys: &str, at: f64) -> Running {
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech_ulaw());
    HarkCall::new(&d.uri("bot"))
        .play(&wav)
        .dtmf(keys, at)
        .spawn(&d.tmp)
}

fn hang_up(bot: &Bot, d: &Daemon, id: &str, caller: Running) {
    let del = bot.request(
        "DELETE",
        &call_url(d, id, ""),
        Auth::Bearer(API_TOKEN),
        None,
        Vec::new(),
    );
    assert_eq!(del.status, 204);
    caller.wait(Duration::from_secs(10)).assert_success();
    bot.assert_no_bad_bodies();
}

#[test]
fn keys_pressed_while_idle_are_notified_in_order() {
    let bot = Bot::start();
    let d = bot_daemon(&bot);
    let c = caller(&d, "1#7", 2.0);
    let id = bot.wait_established(Duration::from_secs(10));
    let op = start_op(
        &bot,
        &d,
        &id,
        "subscribeToTone",
        &json!({"clientContext": "tones"}),
    );
    let n = bot.wait_op(&id, &op, Duration::from_secs(5));
    assert_eq!(n.status(), Some("completed"), "{}", n.data);
    assert_eq!(n.result().0, 200);
    assert_eq!(n.data["clientContext"], "tones");
    wait_until(Duration::from_secs(5), || {
        (tones(&bot, &id).len() >= 3).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        tones(&bot, &id),
        vec![
            ("tone1".to_string(), 1),
            ("tone#".to_string(), 2),
            ("tone7".to_string(), 3)
        ],
        "{}",
        bot.describe()
    );
    hang_up(&bot, &d, &id, c);
}

#[test]
fn keys_pressed_during_a_record_response_are_notified_too() {
    let bot = Bot::start();
    let d = bot_daemon(&bot);
    // '1' and '#' do not stop the recording, '*' does.
    let c = caller(&d, "1#*", 2.0);
    let id = bot.wait_established(Duration::from_secs(10));
    // Both at once: the subscription's own notification is not waited for (see below).
    start_op(&bot, &d, &id, "subscribeToTone", &json!({}));
    let rec = start_op(
        &bot,
        &d,
        &id,
        "recordResponse",
        &json!({"stopTones": ["*"], "maxRecordDurationInSeconds": 20}),
    );
    let n = bot.wait_op(&id, &rec, Duration::from_secs(10));
    assert_eq!(n.result(), (200, 8514), "{}", n.data);
    std::thread::sleep(Duration::from_millis(500));
    let heard: Vec<String> = tones(&bot, &id).into_iter().map(|(t, _)| t).collect();
    assert!(
        heard.starts_with(&["tone1".to_string(), "tone#".to_string()]),
        "tones notified while recording: {heard:?}\n{}",
        bot.describe()
    );
    hang_up(&bot, &d, &id, c);
}

#[test]
fn subscription_completion_is_notified_without_waiting_for_a_tone() {
    let bot = Bot::start();
    let d = bot_daemon(&bot);
    // The only key comes 6 s in; the completion must not wait for it.
    let c = caller(&d, "5", 6.0);
    let id = bot.wait_established(Duration::from_secs(10));
    let sent = std::time::Instant::now();
    let op = start_op(&bot, &d, &id, "subscribeToTone", &json!({}));
    let n = bot.wait_op(&id, &op, Duration::from_secs(10));
    let t = since(sent, n.at);
    assert!(
        t < 1.0,
        "subscribeToTone completion notified {t:.2} s after the request"
    );
    hang_up(&bot, &d, &id, c);
}
