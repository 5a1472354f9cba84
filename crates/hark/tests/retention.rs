//! Retention (SPEC §6.2, §9): with `storage.retention_days`, recordings older than that are
//! deleted at start-up (and hourly) exactly as `DELETE` deletes them — WAV, cached MP3 and
//! transcripts gone, metadata `deleted` — while younger ones stay; the metadata of recordings
//! deleted more than 40 days ago is purged (Twilio keeps it that long). Ages are set with
//! SQLite's own client while the daemon is down, as they would be after weeks of running.

mod common;
mod twilio_app;
mod twilio_client;

use common::*;
use std::path::Path;
use std::time::Duration;
use twilio_client::*;

const DAY_MS: i64 = 86_400_000;

/// Runs `sql` (with `?` bound to `args`) against the daemon's database.
fn sql(db: &Path, sql: &str, args: &[&str]) {
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(sys.argv[2], sys.argv[3:]); c.commit()",
        )
        .arg(db)
        .arg(sql)
        .args(args)
        .status()
        .expect("python3");
    assert!(st.success(), "{sql}");
}

#[test]
fn old_recordings_are_deleted_and_old_deletions_purged_at_start() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let mut d = Daemon::start(
        &[("storage.retention_days", "30")],
        App::Twiml(record_twiml(&wh.url("/action"), None)),
    );
    let (wav, _) = looped_speech(&d.tmp, "speech.wav", 1);
    let done = record_calls(&d, &wh, &wav, 4, Duration::from_millis(200));
    let sids: Vec<String> = done
        .iter()
        .map(|r| r.param("RecordingSid").to_string())
        .collect();
    let http = Http::new();
    let fetch = |d: &Daemon, sid: &str, soft: bool| {
        let q = if soft { "?IncludeSoftDeleted=true" } else { "" };
        http.get(
            &api_url(d, ACCOUNT_SID, &format!("Recordings/{sid}.json{q}")),
            Auth::Account,
        )
    };
    // All young: the start-up sweep of a restart keeps them. One has its MP3 cached.
    let mp3 = http.get(&format!("{}.mp3", d.recording_url(&sids[0])), Auth::Account);
    assert_eq!(mp3.status, 200);
    let mp3_path = d.recording_path(&sids[0]).with_extension("mp3");
    assert!(mp3_path.exists());
    // sids[2] and sids[3] are deleted through the API now.
    for sid in &sids[2..] {
        let r = http.request(
            "DELETE",
            &api_url(&d, ACCOUNT_SID, &format!("Recordings/{sid}.json")),
            Auth::Account,
            &[],
        );
        assert_eq!(r.status, 204, "{}", r.text());
    }
    d.restart();
    for sid in &sids[..2] {
        assert_eq!(fetch(&d, sid, false).status, 200, "{sid} is young and kept");
    }

    // Weeks later: sids[0] is 31 days old, sids[1] 29; sids[2] was deleted 41 days ago,
    // sids[3] 39.
    d.kill_9();
    let db = d.storage.join("hark.db");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    for (sid, column, days) in [
        (&sids[0], "date_created", 31),
        (&sids[1], "date_created", 29),
        (&sids[2], "deleted_at", 41),
        (&sids[3], "deleted_at", 39),
    ] {
        let at = (now - days * DAY_MS).to_string();
        sql(
            &db,
            &format!("UPDATE recordings SET {column} = ? WHERE sid = ?"),
            &[&at, sid],
        );
    }
    d.launch();
    // The sweep runs as the daemon starts; give it a moment.
    wait_until(Duration::from_secs(10), || {
        (fetch(&d, &sids[0], false).status == 404).then_some(())
    })
    .unwrap_or_else(|| panic!("{} past retention still listed:\n{}", sids[0], d.log()));

    // Past retention: deleted as DELETE deletes (files gone, metadata `deleted`).
    assert!(!d.recording_path(&sids[0]).exists(), "WAV still on disk");
    assert!(!mp3_path.exists(), "cached MP3 still on disk");
    let soft = fetch(&d, &sids[0], true);
    assert_eq!(soft.status, 200, "{}", soft.text());
    assert_eq!(soft.json()["status"], "deleted");
    let media = http.get(&d.recording_url(&sids[0]), Auth::Account);
    assert_eq!(media.status, 404);
    // Within retention: untouched.
    assert_eq!(fetch(&d, &sids[1], false).status, 200);
    assert!(d.recording_path(&sids[1]).exists());
    // Deleted 41 days ago: gone for good; 39 days ago: still visible as deleted.
    assert_eq!(fetch(&d, &sids[2], true).status, 404);
    let kept = fetch(&d, &sids[3], true);
    assert_eq!(kept.status, 200, "{}", kept.text());
    assert_eq!(kept.json()["status"], "deleted");
    let list = http
        .get(
            &api_url(&d, ACCOUNT_SID, "Recordings.json?PageSize=50"),
            Auth::Account,
        )
        .json();
    let listed: Vec<&str> = list["recordings"]
        .as_array()
        .expect("recordings")
        .iter()
        .filter_map(|r| r["sid"].as_str())
        .collect();
    assert_eq!(listed, [sids[1].as_str()]);
    assert!(d.log().contains("retention: recordings deleted"), "logged");
    d.assert_alive();
}
