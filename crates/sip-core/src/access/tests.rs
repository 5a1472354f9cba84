use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn cidr(s: &str) -> Cidr {
    s.parse().expect("test network")
}

#[test]
fn networks_parse_and_contain_their_addresses_only() {
    let lan = cidr("10.0.0.0/8");
    assert!(lan.contains(ip("10.200.3.4")));
    assert!(!lan.contains(ip("11.0.0.1")));
    assert!(!lan.contains(ip("::1")));
    // A dual-stack socket reports IPv4 sources as IPv4-mapped IPv6.
    assert!(lan.contains(ip("::ffff:10.1.2.3")));
    let one = cidr("192.0.2.7");
    assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
    let v6 = cidr("2001:db8::/32");
    assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
    assert!(Cidr::any_v4().contains(ip("203.0.113.9")));
    assert!(Cidr::any_v6().contains(ip("fe80::1")));
    assert_eq!(cidr("127.0.0.0/8").to_string(), "127.0.0.0/8");
    for bad in [
        "10.0.0.1/8",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "host.example",
        "",
    ] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad:?} parsed");
    }
}

fn limited(requests: u32) -> AccessConfig {
    AccessConfig {
        trusted: vec![cidr("127.0.0.1")],
        untrusted: Untrusted::Reject,
        rate_limit: Some(RateLimit {
            requests,
            window: Duration::from_secs(2),
            ban: Duration::from_secs(60),
        }),
        calls: CallLimits::default(),
    }
}

#[test]
fn a_source_over_the_rate_is_banned_for_the_ban_time_and_trusted_ones_never() {
    let config = limited(5);
    let mut guard = RateGuard::default();
    let t0 = Instant::now();
    let flood = ip("127.0.0.2");
    for i in 0..5 {
        let at = t0 + Duration::from_millis(i * 100);
        assert_eq!(
            screen(&config, &mut guard, at, flood, false),
            Screen::Pass { trusted: false }
        );
    }
    let sixth = t0 + Duration::from_millis(600);
    assert_eq!(
        screen(&config, &mut guard, sixth, flood, false),
        Screen::Banned {
            until: sixth + Duration::from_secs(60),
            requests: 6
        }
    );
    assert_eq!(
        screen(
            &config,
            &mut guard,
            sixth + Duration::from_secs(59),
            flood,
            false
        ),
        Screen::Drop
    );
    // The ban ends; the count starts again.
    assert_eq!(
        screen(
            &config,
            &mut guard,
            sixth + Duration::from_secs(61),
            flood,
            false
        ),
        Screen::Pass { trusted: false }
    );
    // A trusted trunk sends ten times the rate and is never counted.
    for i in 0..50 {
        let at = t0 + Duration::from_millis(i * 10);
        assert_eq!(
            screen(&config, &mut guard, at, ip("127.0.0.1"), false),
            Screen::Pass { trusted: true }
        );
    }
    guard.expire(sixth + Duration::from_secs(200), Duration::from_secs(2));
    assert_eq!(guard.size(), (0, 0));
}

#[test]
fn a_steady_source_under_the_rate_is_never_banned() {
    let config = limited(5);
    let mut guard = RateGuard::default();
    let t0 = Instant::now();
    // Two per second for a minute: 4 per 2 s window.
    for i in 0..120 {
        let at = t0 + Duration::from_millis(i * 500);
        assert_eq!(
            screen(&config, &mut guard, at, ip("198.51.100.1"), false),
            Screen::Pass { trusted: false }
        );
    }
}

#[test]
fn drop_mode_drops_untrusted_sources_unless_a_user_could_authenticate() {
    let mut config = limited(100);
    config.untrusted = Untrusted::Drop;
    let mut guard = RateGuard::default();
    let now = Instant::now();
    assert_eq!(
        screen(&config, &mut guard, now, ip("203.0.113.5"), false),
        Screen::Drop
    );
    assert_eq!(
        screen(&config, &mut guard, now, ip("203.0.113.5"), true),
        Screen::Pass { trusted: false }
    );
}

#[test]
fn spoofed_sources_do_not_grow_the_guard_beyond_its_bound() {
    let config = limited(1000);
    let mut guard = RateGuard::default();
    let now = Instant::now();
    for i in 0..(MAX_SOURCES as u32 + 1000) {
        let src = IpAddr::V4((0x0a00_0000 + i).into());
        screen(&config, &mut guard, now, src, false);
    }
    assert!(guard.size().0 <= MAX_SOURCES);
}

#[test]
fn call_caps_count_calls_up_in_all_and_by_source() {
    let limits = CallLimits {
        max_calls: 3,
        max_calls_per_source: 2,
        ..CallLimits::default()
    };
    let mut calls = CallAdmission::default();
    let now = Instant::now();
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    assert_eq!(calls.admit(&limits, now, a), Ok(()));
    assert_eq!(calls.admit(&limits, now, a), Ok(()));
    assert_eq!(
        calls.admit(&limits, now, a),
        Err(CallRefusal::TooManyCallsFromSource)
    );
    assert_eq!(calls.admit(&limits, now, b), Ok(()));
    assert_eq!(calls.admit(&limits, now, b), Err(CallRefusal::TooManyCalls));
    calls.release(a);
    assert_eq!(calls.admit(&limits, now, b), Ok(()));
    assert_eq!(calls.active(), 3);
    for src in [a, b, b] {
        calls.release(src);
    }
    assert_eq!(calls.active(), 0);
    assert_eq!(calls.size(), (0, 0));
}

#[test]
fn new_call_rates_refill_each_second() {
    let limits = CallLimits {
        max_new_per_sec: 10,
        max_new_per_sec_per_source: 4,
        ..CallLimits::default()
    };
    let mut calls = CallAdmission::default();
    let t0 = Instant::now();
    let sources: Vec<IpAddr> = (1..=4).map(|i| ip(&format!("192.0.2.{i}"))).collect();
    let mut admitted = 0;
    let mut refused = Vec::new();
    for (i, src) in sources.iter().cycle().take(16).enumerate() {
        let at = t0 + Duration::from_millis(i as u64);
        match calls.admit(&limits, at, *src) {
            Ok(()) => admitted += 1,
            Err(e) => refused.push(e),
        }
    }
    // Ten in the first second in all, whatever the source.
    assert_eq!(admitted, 10);
    assert!(refused.iter().all(|e| *e == CallRefusal::TooFast));
    // One source alone: four, then refused, until its bucket refills.
    let mut one = CallAdmission::default();
    for i in 0..4 {
        assert_eq!(
            one.admit(&limits, t0 + Duration::from_millis(i), sources[0]),
            Ok(())
        );
    }
    assert_eq!(
        one.admit(&limits, t0 + Duration::from_millis(5), sources[0]),
        Err(CallRefusal::TooFastFromSource)
    );
    assert_eq!(
        one.admit(&limits, t0 + Duration::from_millis(300), sources[0]),
        Ok(())
    );
    one.expire(t0 + Duration::from_secs(5), &limits);
    assert_eq!(one.size().1, 0);
}
