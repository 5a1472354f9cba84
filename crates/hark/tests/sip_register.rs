//! Issue 13 item 3 (registrar): a SIPp phone registers a `[[user]]` with digest
//! authentication (challenged 401, then 200 listing its contact with `expires=600`) and
//! unregisters; a wrong password is refused 403; without any `[[user]]`, REGISTER is 405.

mod common;

use common::procs::sipp_messages;
use common::*;
use std::time::Duration;

const SCENARIO: &str = "uac_register_digest.xml";

fn daemon_with_bob() -> Daemon {
    let mut d = Daemon::prepare(&[], App::Twiml("<Response><Hangup/></Response>".into()));
    d.append_config("\n[[user]]\nusername = \"bob\"\npassword = \"s3cret-bob\"\n");
    d.launch();
    d
}

/// SIPp registers `bob` with `password`; whether it went through, and the messages it saw.
fn register_bob(d: &Daemon, name: &str, password: &str) -> (bool, String) {
    let dir = TempDir::new(name);
    let out = Sipp::new(SCENARIO, d.sip_addr())
        .arg("-s")
        .arg("bob")
        .arg("-au")
        .arg("bob")
        .arg("-ap")
        .arg(password)
        .run(&dir, Duration::from_secs(30));
    (out.success(), sipp_messages(&dir, SCENARIO))
}

#[test]
fn sipp_registers_with_digest_and_unregisters() {
    let d = daemon_with_bob();
    let (ok, msgs) = register_bob(&d, "sipp-register", "s3cret-bob");
    assert!(ok, "{msgs}");
    assert!(
        msgs.contains("WWW-Authenticate: Digest realm=\"hark\""),
        "{msgs}"
    );
    assert!(msgs.contains("algorithm=SHA-256"), "SHA-256 is offered too");
}

#[test]
fn wrong_password_is_403_and_no_users_is_405() {
    let d = daemon_with_bob();
    let (ok, msgs) = register_bob(&d, "sipp-register-bad", "wrong");
    assert!(!ok, "a wrong password must not register");
    assert!(msgs.contains("SIP/2.0 403 Forbidden"), "{msgs}");

    let plain = Daemon::start(&[], App::Twiml("<Response><Hangup/></Response>".into()));
    let (ok, msgs) = register_bob(&plain, "sipp-register-none", "s3cret-bob");
    assert!(!ok);
    assert!(msgs.contains("SIP/2.0 405 Method Not Allowed"), "{msgs}");
}
