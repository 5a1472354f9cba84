//! Issue 14: the SIPVicious scanners (`sipvicious` 0.3.8 from PyPI, in `<repo>/.venv`, installed
//! by scripts/python-venv.sh) against a Hark whose `sip.trusted` is only 127.0.0.3 (the
//! trunk), so the scanners on 127.0.0.1 are strangers (svwar 0.3.8 ignores its `-b`):
//! `svmap` (OPTIONS and INVITE) and `svwar` (extension enumeration by INVITE and REGISTER) get
//! nothing recorded and no call row; with `sip.untrusted = "drop"` svmap does not even find a
//! SIP device. The trusted trunk still records afterwards.

mod common;
mod twilio_app;
mod twilio_client;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use twilio_client::{api_url, Auth, Http};

fn tool(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.venv/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} missing: run scripts/setup.sh (python-venv.sh installs sipvicious)",
        path.display()
    );
    path
}

/// Runs a SIPVicious tool from 127.0.0.2 at the daemon; its combined output.
fn scan(d: &Daemon, name: &str, args: &[&str]) -> String {
    let port = d.sip_addr().port().to_string();
    let mut cmd = Command::new(tool(name));
    cmd.args(["-p", &port, "-t", "0.5"])
        .args(args)
        .arg("127.0.0.1")
        .current_dir(&d.tmp.path);
    let out = Running::spawn(name, cmd, &d.tmp.path).wait(Duration::from_secs(120));
    format!("{}{}", out.stdout, out.stderr)
}

fn calls_listed(d: &Daemon) -> usize {
    let v = Http::new()
        .get(&api_url(d, ACCOUNT_SID, "Calls.json"), Auth::Account)
        .json();
    v["calls"].as_array().map_or(0, Vec::len)
}

/// A daemon trusting only 127.0.0.3.
fn daemon(extra: &[(&str, &str)]) -> Daemon {
    let mut overrides = vec![("sip.trusted", "127.0.0.3/32")];
    overrides.extend_from_slice(extra);
    let mut d = Daemon::prepare(&overrides, record_app());
    d.set_probe_ip("127.0.0.3");
    d.launch();
    d
}

fn record_app() -> App {
    App::Twiml(r##"<Response><Record maxLength="10" finishOnKey="#"/></Response>"##.into())
}

#[test]
fn svmap_and_svwar_from_outside_trusted_record_nothing() {
    let d = daemon(&[]);
    let options = scan(&d, "sipvicious_svmap", &[]);
    let invite = scan(&d, "sipvicious_svmap", &["-m", "INVITE"]);
    let war = scan(&d, "sipvicious_svwar", &["-m", "INVITE", "-e", "100-140"]);
    let war_register = scan(&d, "sipvicious_svwar", &["-e", "100-140"]);
    assert_eq!(
        calls_listed(&d),
        0,
        "svmap:\n{options}\n{invite}\nsvwar:\n{war}"
    );
    assert!(d.recordings().is_empty());
    // svwar finds no extension: every probe got the same 403.
    for out in [&war, &war_register] {
        assert!(
            !out.contains("| reqauth") && !out.contains("| noauth"),
            "svwar enumerated extensions:\n{out}"
        );
    }
    let log = d.log();
    assert!(
        log.contains("SIP request refused source=127.0.0.1"),
        "{log}"
    );

    // The trusted trunk records as before.
    let mut trunk = common::sip::RawUac::new_on("127.0.0.3", d.sip_addr());
    let ok = trunk.invite(
        "rec",
        &common::sip::pcmu_offer(trunk.rtp_port),
        Duration::from_secs(5),
    );
    assert_eq!(ok.status(), Some(200));
    trunk.ack();
    assert_eq!(calls_listed(&d), 1);
}

#[test]
fn in_drop_mode_svmap_finds_no_sip_device() {
    let d = daemon(&[("sip.untrusted", "drop")]);
    let out = scan(&d, "sipvicious_svmap", &[]);
    assert!(
        !out.contains(&format!("127.0.0.1:{}", d.sip_addr().port())),
        "svmap listed Hark:\n{out}"
    );
    assert_eq!(calls_listed(&d), 0);
}
