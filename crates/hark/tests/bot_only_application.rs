//! A bot application runs no TwiML: `bot_callback_uri` alone is a complete application, in `[app]`
//! (from the config file or with `HARK_APP__TWIML=` emptied in the environment) and in a
//! `[[route]]`. Each daemon starts, and a call reaches the bot (`established`, then `terminated`
//! after the caller hangs up). Without any call logic start-up still fails, naming the key.

mod bot_support;
mod common;

use bot_support::*;
use common::daemon::serve_expect_exit;
use common::*;
use std::time::Duration;

/// A caller that talks for a second and hangs up after 3 s; the bot sees the call start and end.
fn call_reaches_bot(d: &Daemon, bot: &Bot, user: &str) {
    let wav = d.tmp.join(&format!("caller-{user}.wav"));
    write_ulaw_wav(&wav, &speech_ulaw()[..8000]);
    let caller = HarkCall::new(&d.uri(user))
        .play(&wav)
        .hangup_after(3.0)
        .spawn(&d.tmp);
    let id = bot.wait_established(Duration::from_secs(10));
    caller.wait(Duration::from_secs(20)).assert_success();
    bot.wait_terminated(&id, Duration::from_secs(10));
    bot.assert_no_bad_bodies();
}

#[test]
fn app_with_only_bot_callback_uri_starts_and_hands_calls_to_the_bot() {
    let bot = Bot::start();
    let cb = bot.callback_url();
    let mut d = Daemon::prepare(
        &[
            ("app.bot_callback_uri", cb.as_str()),
            ("bot.api_token", API_TOKEN),
        ],
        App::Twiml(String::new()),
    );
    d.launch();
    call_reaches_bot(&d, &bot, "bot");
    d.assert_alive();
}

#[test]
fn emptied_twiml_from_the_environment_with_a_bot_app_starts() {
    let bot = Bot::start();
    let cb = bot.callback_url();
    let mut d = Daemon::prepare(
        &[("bot.api_token", API_TOKEN)],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    d.set_env("HARK_APP__TWIML", "");
    d.set_env("HARK_APP__VOICE_URL", "");
    d.set_env("HARK_APP__BOT_CALLBACK_URI", &cb);
    d.launch();
    call_reaches_bot(&d, &bot, "bot");
    d.assert_alive();
}

#[test]
fn route_with_only_bot_callback_uri_starts_and_routes_to_the_bot() {
    let bot = Bot::start();
    let cb = bot.callback_url();
    let mut d = Daemon::prepare(
        &[("bot.api_token", API_TOKEN)],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    d.append_config(&format!(
        "[[route]]\nuser = \"helpdesk\"\nbot_callback_uri = {}\n",
        common::daemon::toml_string(&cb)
    ));
    d.launch();
    call_reaches_bot(&d, &bot, "helpdesk");
    d.assert_alive();
}

#[test]
fn without_any_call_logic_start_up_still_fails_naming_the_key() {
    let d = Daemon::prepare(&[], App::Twiml(String::new()));
    let (code, out) = serve_expect_exit(Some(&d.config_path), &[], Duration::from_secs(10));
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(out.contains("app.twiml"), "names app.twiml:\n{out}");

    let r = Daemon::prepare(&[], App::Twiml("<Response><Hangup/></Response>".into()));
    r.append_config("[[route]]\nuser = \"helpdesk\"\n");
    let (code, out) = serve_expect_exit(Some(&r.config_path), &[], Duration::from_secs(10));
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(
        out.contains("route") && out.contains("bot_callback_uri"),
        "names the route and what it lacks:\n{out}"
    );
}
