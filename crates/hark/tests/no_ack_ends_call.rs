//! A caller that never ACKs the 200: Hark retransmits the 200 (T1, doubling, capped at T2) and
//! after Timer H (64*T1; T1 = 50 ms here, so 3.2 s) ends the call with BYE.

mod common;

use common::sip::{pcmu_offer, RawUac};
use common::*;
use std::time::Duration;

fn daemon() -> Daemon {
    Daemon::start(
        &[("sip.t1_ms", "50")],
        App::Twiml("<Response><Record maxLength=\"30\"/></Response>".into()),
    )
}

#[test]
fn raw_uac_without_ack_sees_200_retransmissions_then_bye_after_timer_h() {
    let mut d = daemon();
    let mut uac = RawUac::new(d.sip_addr());
    let ok = uac.invite("rec", &pcmu_offer(uac.rtp_port), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200));
    let bye = uac
        .wait_request("BYE", Duration::from_secs(15))
        .expect("BYE from Hark after Timer H");
    let since = bye.at.duration_since(ok.at);
    assert!(
        since >= Duration::from_millis(2900) && since <= Duration::from_secs(8),
        "BYE {:.2} s after the first 200; Timer H is 3.2 s",
        since.as_secs_f64()
    );
    assert_eq!(bye.header("call-id"), Some(uac.call_id.as_str()));
    assert_eq!(
        bye.to_tag().as_deref(),
        Some(uac.from_tag.as_str()),
        "BYE is in our dialog"
    );
    let oks = uac
        .responses("INVITE", 1)
        .into_iter()
        .filter(|m| m.status() == Some(200))
        .collect::<Vec<_>>();
    // 50, 100, 200, 400, 400 … ms intervals (T2 = 8*T1 = 400 ms) within 3.2 s: ≥ 8 copies.
    assert!(
        oks.len() >= 5,
        "only {} copies of the 200 in 3.2 s",
        oks.len()
    );
    let tags: std::collections::BTreeSet<_> = oks.iter().map(|m| m.to_tag()).collect();
    assert_eq!(tags.len(), 1, "retransmissions are the same 200");
    let n = oks.len();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        uac.responses("INVITE", 1)
            .iter()
            .filter(|m| m.status() == Some(200))
            .count(),
        n,
        "200 retransmissions stop with the BYE"
    );
    d.assert_alive();
}

#[test]
fn sipp_no_ack_scenario_gets_bye() {
    let mut d = daemon();
    Sipp::new("uac_no_ack.xml", d.sip_addr())
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    d.assert_alive();
}
