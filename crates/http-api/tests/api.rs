//! The router against a real SQLite store in a temporary directory.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use base64::Engine;
use http_api::{router, ApiState, MediaAuth, Metrics};
use serde_json::Value;
use store::{CallRecord, RecordingRecord, Store};
use tower::ServiceExt;

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const AC_OTHER: &str = "ACffffffffffffffffffffffffffffffff";
const TOKEN: &str = "s3cret-token";
const SK: &str = "SK0123456789abcdef0123456789abcdef";
const SK_SECRET: &str = "key-s3cret";
const SK_UNKNOWN: &str = "SKffffffffffffffffffffffffffffffff";
const CA1: &str = "CA11111111111111111111111111111111";
const CA2: &str = "CA22222222222222222222222222222222";
const RE1: &str = "RE11111111111111111111111111111111";
const RE2: &str = "RE22222222222222222222222222222222";
const RE3: &str = "RE33333333333333333333333333333333";
/// In progress, no file yet.
const RE4: &str = "RE44444444444444444444444444444444";
const RE_UNKNOWN: &str = "RE99999999999999999999999999999999";
const CA_UNKNOWN: &str = "CA99999999999999999999999999999999";
/// 2016-10-14T00:00:00Z
const D14: i64 = 1_476_403_200_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const BASE: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef";

struct Fixture {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    state: Arc<ApiState>,
    app: axum::Router,
}

fn wav_bytes(secs: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..secs * 8000)
        .flat_map(|i| {
            let s = (f64::from(i) * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 9000.0;
            (s as i16).to_le_bytes()
        })
        .collect();
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    for x in [
        16u32.to_le_bytes(),
        [1, 0, 1, 0],
        8000u32.to_le_bytes(),
        16000u32.to_le_bytes(),
        [2, 0, 16, 0],
    ] {
        v.extend_from_slice(&x);
    }
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(&data);
    v
}

fn call(sid: &str, created: i64) -> CallRecord {
    CallRecord {
        sid: sid.parse().unwrap(),
        account_sid: AC.parse().unwrap(),
        from: "+15551230001".into(),
        to: "+15559870002".into(),
        direction: store::Direction::Inbound,
        status: store::CallStatus::Completed,
        date_created_ms: created,
        date_updated_ms: created + 60_000,
        start_time_ms: Some(created + 1_000),
        end_time_ms: Some(created + 43_000),
        duration_secs: Some(42),
        parent_call_sid: None,
    }
}

fn recording(sid: &str, call_sid: &str, created: i64, status: &str) -> RecordingRecord {
    RecordingRecord {
        sid: sid.parse().unwrap(),
        account_sid: AC.parse().unwrap(),
        call_sid: call_sid.parse().unwrap(),
        status: status.parse().unwrap(),
        source: store::RecordingSource::RecordVerb,
        channels: 1,
        sample_rate: 8000,
        date_created_ms: created,
        date_updated_ms: created + 2_000,
        start_time_ms: created - 2_000,
        duration_secs: (status != "in-progress").then_some(2),
        error_code: None,
        media_file: format!("{sid}.wav"),
        transcribe: false,
        transcribe_callback: None,
        status_callback: None,
        deleted_at_ms: None,
    }
}

/// Calls CA1 (RE1, RE2) and CA2 (RE3, RE4 in progress); RE1 on 14 Oct, RE2 and RE3 on 15 Oct.
fn fixture(media_auth: MediaAuth) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let store = Store::open(&dir.join("hark.db")).unwrap();
    store.insert_call(&call(CA1, D14)).unwrap();
    store
        .insert_call(&CallRecord {
            from: "+15550000002".into(),
            status: store::CallStatus::Busy,
            ..call(CA2, D14 + DAY)
        })
        .unwrap();
    let recs = [
        recording(RE1, CA1, D14 + 10 * HOUR, "completed"),
        recording(RE2, CA1, D14 + DAY + HOUR, "completed"),
        recording(RE3, CA2, D14 + DAY + 2 * HOUR, "completed"),
        recording(RE4, CA2, D14 + DAY + 3 * HOUR, "in-progress"),
    ];
    for r in &recs {
        store.insert_recording(r).unwrap();
    }
    for (sid, secs) in [(RE1, 2), (RE2, 1), (RE3, 1)] {
        std::fs::write(dir.join(format!("{sid}.wav")), wav_bytes(secs)).unwrap();
    }
    let state = Arc::new(ApiState {
        account_sid: AC.parse().unwrap(),
        auth_token: TOKEN.into(),
        api_keys: vec![http_api::ApiKey {
            sid: SK.parse().unwrap(),
            secret: SK_SECRET.into(),
        }],
        media_auth,
        store: Arc::new(store),
        storage_dir: dir.clone(),
        remote_media: None,
        drain: Default::default(),
        node_id: "test".into(),
        forwarder: None,
        metrics: Arc::new(Metrics::default()),
        public_url: "https://hark.example".into(),
        voice_log: Default::default(),
        bot: None,
        readiness: Default::default(),
    });
    Fixture {
        _dir: tmp,
        dir,
        app: router(state.clone()),
        state,
    }
}

fn basic(user: &str, pass: &str) -> String {
    let raw = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

impl Fixture {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        auth: Option<&str>,
        range: Option<&str>,
    ) -> Response {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        self.app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }
    async fn get(&self, uri: &str) -> Response {
        self.send(Method::GET, uri, Some(&basic(AC, TOKEN)), None)
            .await
    }
    async fn get_json(&self, uri: &str) -> (StatusCode, Value) {
        let resp = self.get(uri).await;
        let status = resp.status();
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/json",
            "{uri}"
        );
        (status, serde_json::from_slice(&body(resp).await).unwrap())
    }
}

async fn body(resp: Response) -> Vec<u8> {
    axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap()
        .to_vec()
}

fn every_route(account: &str) -> Vec<String> {
    let b = format!("/2010-04-01/Accounts/{account}");
    let mut v = vec![
        format!("{b}/Recordings.json"),
        format!("{b}/Calls.json"),
        format!("{b}/Calls/{CA1}.json"),
        format!("{b}/Calls/{CA_UNKNOWN}.json"),
        format!("{b}/Calls/{CA1}/Recordings.json"),
        format!("{b}/Calls/{CA1}/Recordings/{RE1}.json"),
        format!("{b}/Calls/{CA1}/Recordings/{RE_UNKNOWN}.json"),
        format!("{b}/Transcriptions.json"),
        format!("{b}/Nope"),
    ];
    for sid in [RE1, RE_UNKNOWN] {
        for ext in [".json", "", ".wav", ".mp3"] {
            v.push(format!("{b}/Recordings/{sid}{ext}"));
        }
    }
    v
}

#[tokio::test]
async fn without_valid_credentials_every_route_is_401_and_reveals_nothing() {
    let f = fixture(MediaAuth::Basic);
    let wrong_token = basic(AC, "guess");
    let wrong_user = basic(AC_OTHER, TOKEN);
    for uri in every_route(AC) {
        for auth in [
            None,
            Some(wrong_token.as_str()),
            Some(wrong_user.as_str()),
            Some("Bearer x"),
        ] {
            for method in [Method::GET, Method::DELETE] {
                let resp = f.send(method.clone(), &uri, auth, None).await;
                assert_eq!(
                    resp.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {uri} {auth:?}"
                );
                assert_eq!(
                    resp.headers()[header::WWW_AUTHENTICATE],
                    "Basic realm=\"Hark\""
                );
                let v: Value = serde_json::from_slice(&body(resp).await).unwrap();
                assert_eq!(v["code"], 20003);
                assert_eq!(v["status"], 401);
                // Same body for existing and unknown SIDs: nothing to probe.
                assert!(!v["message"].as_str().unwrap().contains("RE"), "{v}");
            }
        }
    }
    // Nothing was deleted by the attempts.
    assert!(f.dir.join(format!("{RE1}.wav")).exists());
    assert_eq!(
        f.get_json(&format!("{BASE}/Recordings/{RE1}.json")).await.0,
        StatusCode::OK
    );
}

/// An `[[api_key]]`'s `SK…:secret` works like the account's credentials on every route (as
/// Twilio accepts API keys), for this account only; its secret is no password for anyone else.
#[tokio::test]
async fn an_api_key_authenticates_every_route_of_its_account() {
    let f = fixture(MediaAuth::Basic);
    let key = basic(SK, SK_SECRET);
    for uri in every_route(AC) {
        let resp = f.send(Method::GET, &uri, Some(&key), None).await;
        assert_ne!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert_ne!(resp.status(), StatusCode::FORBIDDEN, "{uri}");
    }
    let resp = f
        .send(
            Method::GET,
            &format!("{BASE}/Recordings/{RE1}.json"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let wav = f
        .send(
            Method::GET,
            &format!("{BASE}/Recordings/{RE1}.wav"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(wav.status(), StatusCode::OK);
    for uri in every_route(AC_OTHER) {
        let resp = f.send(Method::GET, &uri, Some(&key), None).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{uri}");
    }
    for wrong in [
        basic(SK, TOKEN),
        basic(SK, "guess"),
        basic(AC, SK_SECRET),
        basic(SK_UNKNOWN, SK_SECRET),
    ] {
        let resp = f
            .send(
                Method::GET,
                &format!("{BASE}/Recordings.json"),
                Some(&wrong),
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }
}

#[tokio::test]
async fn another_accounts_path_is_403_for_every_route() {
    let f = fixture(MediaAuth::Basic);
    for uri in every_route(AC_OTHER) {
        let (status, v) = f.get_json(&uri).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(
            (v["code"].as_u64(), v["status"].as_u64()),
            (Some(20003), Some(403))
        );
    }
}

#[tokio::test]
async fn unknown_sids_and_routes_are_404_json_after_auth() {
    let f = fixture(MediaAuth::Basic);
    for uri in [
        format!("{BASE}/Recordings/{RE_UNKNOWN}.json"),
        format!("{BASE}/Recordings/{RE_UNKNOWN}"),
        format!("{BASE}/Recordings/{RE_UNKNOWN}.mp3"),
        format!("{BASE}/Calls/{CA_UNKNOWN}.json"),
        // RE3 exists but belongs to CA2.
        format!("{BASE}/Calls/{CA1}/Recordings/{RE3}.json"),
        format!("{BASE}/Recordings/not-a-sid.json"),
        format!("{BASE}/Nope"),
        "/2010-04-01/Accounts".to_string(),
        "/2010-04-01".to_string(),
    ] {
        let (status, v) = f.get_json(&uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(v["code"], 20404);
        assert_eq!(v["more_info"], "https://www.twilio.com/docs/errors/20404");
        assert_eq!(v["status"], 404);
    }
    let resp = f
        .send(
            Method::POST,
            &format!("{BASE}/Recordings.json"),
            Some(&basic(AC, TOKEN)),
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()[header::ALLOW], "GET, HEAD");
}

#[tokio::test]
async fn malformed_sids_in_paths_are_404_naming_the_path_and_unknown_ones_naming_the_sid() {
    let f = fixture(MediaAuth::Basic);
    let tr = "TR11111111111111111111111111111111";
    for uri in [
        format!("{BASE}/Calls/CA1.json"),
        format!("{BASE}/Calls/{RE1}.json"),
        format!("{BASE}/Calls/CA1/Recordings.json"),
        format!("{BASE}/Calls/{CA1}/Recordings/RE1.json"),
        format!("{BASE}/Recordings/RE1"),
        format!("{BASE}/Recordings/RE1.mp3"),
        format!("{BASE}/Recordings/{CA1}.json"),
        format!("{BASE}/Recordings/RE1/Transcriptions.json"),
        format!("{BASE}/Recordings/{RE1}/Transcriptions/TR1.json"),
        format!("{BASE}/Transcriptions/TR1.json"),
        format!("{BASE}/Transcriptions/{RE1}.txt"),
        // 33 hex digits, and a non-hex one.
        format!("{BASE}/Calls/{CA1}1.json"),
        format!("{BASE}/Recordings/RE1111111111111111111111111111111g.json"),
    ] {
        let (status, v) = f.get_json(&uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(v["code"], 20404, "{uri}");
        assert_eq!(
            v["message"],
            format!("The requested resource {uri} was not found")
        );
        let resp = f
            .send(Method::DELETE, &uri, Some(&basic(AC, TOKEN)), None)
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "DELETE {uri}");
    }
    for (uri, sid) in [
        (format!("{BASE}/Calls/{CA_UNKNOWN}.json"), CA_UNKNOWN),
        (format!("{BASE}/Recordings/{RE_UNKNOWN}.json"), RE_UNKNOWN),
        (format!("{BASE}/Transcriptions/{tr}.json"), tr),
    ] {
        let (status, v) = f.get_json(&uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(v["code"], 20404, "{uri}");
        assert_eq!(
            v["message"],
            format!("The requested resource {sid} was not found")
        );
    }
}

fn envelope_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn list_pages_one_by_one_through_three_recordings() {
    let f = fixture(MediaAuth::Basic);
    // RE4 (in progress) makes four visible; CallSid=CA1 plus RE3 gives three via DateCreated>.
    let mut uri = format!("{BASE}/Recordings.json?DateCreated%3E=2016-10-14&DateCreated%3C=2016-10-15T02:30:00Z&PageSize=1");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, v) = f.get_json(&uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(
            envelope_keys(&v),
            [
                "end",
                "first_page_uri",
                "next_page_uri",
                "page",
                "page_size",
                "previous_page_uri",
                "recordings",
                "start",
                "uri"
            ]
        );
        assert_eq!(v["page"], pages);
        assert_eq!(v["page_size"], 1);
        assert_eq!(
            (v["start"].as_u64(), v["end"].as_u64()),
            (Some(pages), Some(pages))
        );
        for key in ["first_page_uri", "uri"] {
            let u = v[key].as_str().unwrap();
            assert!(u.starts_with(&format!("{BASE}/Recordings.json?")), "{u}");
            assert!(
                u.contains(
                    "DateCreated%3E=2016-10-14&DateCreated%3C=2016-10-15T02%3A30%3A00Z&PageSize=1"
                ),
                "{u}"
            );
        }
        if pages == 0 {
            assert!(v["previous_page_uri"].is_null());
        } else {
            assert!(v["previous_page_uri"].as_str().unwrap().starts_with(BASE));
        }
        let recs = v["recordings"].as_array().unwrap();
        assert_eq!(recs.len(), 1);
        seen.push(recs[0]["sid"].as_str().unwrap().to_string());
        pages += 1;
        match v["next_page_uri"].as_str() {
            Some(next) => {
                assert!(next.starts_with("/2010-04-01/"), "{next}");
                uri = next.to_string();
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    // Newest first.
    assert_eq!(seen, [RE3, RE2, RE1]);
    // The page-number form of page 2 lists the same item as the keyset token did.
    let (_, v) = f
        .get_json(&format!(
            "{BASE}/Recordings.json?PageSize=1&Page=2&DateCreated%3C=2016-10-15T02:30:00Z"
        ))
        .await;
    assert_eq!(v["recordings"][0]["sid"], RE1);
    assert!(v["next_page_uri"].is_null());
}

async fn sids(f: &Fixture, uri: &str) -> Vec<String> {
    let (status, v) = f.get_json(uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {v}");
    v["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn list_filters_call_date_conference_and_call_path() {
    let f = fixture(MediaAuth::Basic);
    let list = format!("{BASE}/Recordings.json");
    assert_eq!(sids(&f, &list).await, [RE4, RE3, RE2, RE1]);
    assert_eq!(sids(&f, &format!("{list}?CallSid={CA1}")).await, [RE2, RE1]);
    assert_eq!(
        sids(&f, &format!("{list}?DateCreated=2016-10-14")).await,
        [RE1]
    );
    // twilio-python's form of the same date.
    assert_eq!(
        sids(&f, &format!("{list}?DateCreated=2016-10-15T00%3A00%3A00Z")).await,
        [RE4, RE3, RE2]
    );
    assert_eq!(
        sids(&f, &format!("{list}?DateCreated%3C=2016-10-15")).await,
        [RE1]
    );
    assert_eq!(
        sids(
            &f,
            &format!("{list}?DateCreated%3E=2016-10-15&CallSid={CA1}")
        )
        .await,
        [RE2]
    );
    assert_eq!(
        sids(&f, &format!("{list}?ConferenceSid=CF1")).await,
        Vec::<String>::new()
    );
    // A CallSid that is no SID names no call: an empty list, as for an unknown one.
    for call in ["CA1", CA_UNKNOWN] {
        assert_eq!(
            sids(&f, &format!("{list}?CallSid={call}")).await,
            Vec::<String>::new(),
            "{call}"
        );
    }
    assert_eq!(
        sids(&f, &format!("{BASE}/Calls/{CA2}/Recordings.json")).await,
        [RE4, RE3]
    );
    // The path's call wins over a CallSid parameter.
    assert_eq!(
        sids(
            &f,
            &format!("{BASE}/Calls/{CA2}/Recordings.json?CallSid={CA1}")
        )
        .await,
        [RE4, RE3]
    );
    for bad in [
        "PageSize=0",
        "PageSize=1001",
        "Page=-1",
        "DateCreated=yesterday",
        "PageToken=zzz",
    ] {
        let (status, v) = f.get_json(&format!("{list}?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            (v["code"].as_u64(), v["status"].as_u64()),
            (Some(21400), Some(400))
        );
    }
}

#[tokio::test]
async fn fetch_recording_fields_and_types() {
    let f = fixture(MediaAuth::Basic);
    for uri in [
        format!("{BASE}/Recordings/{RE1}.json"),
        format!("{BASE}/Calls/{CA1}/Recordings/{RE1}.json"),
    ] {
        let (status, v) = f.get_json(&uri).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["sid"], RE1);
        assert_eq!(v["account_sid"], AC);
        assert_eq!(v["call_sid"], CA1);
        assert_eq!(v["date_created"], "Fri, 14 Oct 2016 10:00:00 +0000");
        assert_eq!(v["start_time"], "Fri, 14 Oct 2016 09:59:58 +0000");
        assert_eq!(v["duration"], "2");
        assert_eq!(v["channels"], 1);
        assert_eq!(v["status"], "completed");
        assert_eq!(v["uri"], format!("{BASE}/Recordings/{RE1}.json"));
        assert_eq!(
            v["media_url"],
            format!("https://hark.example{BASE}/Recordings/{RE1}")
        );
        assert!(v["conference_sid"].is_null() && v["price"].is_null() && v["error_code"].is_null());
    }
    let (_, v) = f.get_json(&format!("{BASE}/Recordings/{RE4}.json")).await;
    assert_eq!(v["status"], "in-progress");
    assert!(v["duration"].is_null());
}

#[tokio::test]
async fn calls_list_and_fetch() {
    let f = fixture(MediaAuth::Basic);
    let (status, v) = f.get_json(&format!("{BASE}/Calls.json?PageSize=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        envelope_keys(&v),
        [
            "calls",
            "end",
            "first_page_uri",
            "next_page_uri",
            "page",
            "page_size",
            "previous_page_uri",
            "start",
            "uri"
        ]
    );
    assert_eq!(v["calls"][0]["sid"], CA2);
    let next = v["next_page_uri"].as_str().unwrap().to_string();
    // Keyset paging, as for recordings: the token carries the last call's key.
    assert_eq!(
        next,
        format!("{BASE}/Calls.json?PageSize=1&Page=1&PageToken=PA1476489600000_{CA2}")
    );
    let (_, v) = f.get_json(&next).await;
    assert_eq!(v["calls"][0]["sid"], CA1);
    assert!(v["next_page_uri"].is_null());

    // Twilio's filters: exact From / To / Status, StartTime bounds.
    let one = |q: &str| format!("{BASE}/Calls.json?{q}");
    let (_, v) = f.get_json(&one("From=%2B15551230001")).await;
    let sids: Vec<&str> = v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, [CA1]);
    assert_eq!(
        v["uri"],
        format!("{BASE}/Calls.json?From=%2B15551230001&PageSize=50&Page=0")
    );
    let (_, v) = f.get_json(&one("To=%2B15559870002&Status=completed")).await;
    assert_eq!(v["calls"].as_array().unwrap().len(), 1);
    assert_eq!(v["calls"][0]["sid"], CA1);

    // Hark's recording filters: the recording's status, the recorded call's numbers.
    let f = &f;
    let recs = |q: &str| {
        let url = format!("{BASE}/Recordings.json?{q}");
        async move {
            let (status, v) = f.get_json(&url).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["recordings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["sid"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(recs("From=%2B15550000002").await, [RE4, RE3]);
    assert_eq!(recs("From=%2B15550000002&Status=completed").await, [RE3]);
    assert_eq!(recs("Status=in-progress").await, [RE4]);
    assert_eq!(
        recs("To=%2B15559870002&From=%2B15551230001").await,
        [RE2, RE1]
    );
    assert!(recs("Status=deleted").await.is_empty());
    let (status, v) = f
        .get_json(&format!("{BASE}/Recordings.json?Status=gone"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = f.get_json(&one("Status=busy")).await;
    assert_eq!(v["calls"][0]["sid"], CA2);
    assert_eq!(v["calls"].as_array().unwrap().len(), 1);
    let (_, v) = f.get_json(&one("From=%2B19990000000")).await;
    assert!(v["calls"].as_array().unwrap().is_empty());
    // `StartTime>=` parses as the name `StartTime>`: on or after; `StartTime<`: before.
    let (_, v) = f.get_json(&one("StartTime%3E=2016-10-15")).await;
    assert_eq!(v["calls"].as_array().unwrap().len(), 1);
    assert_eq!(v["calls"][0]["sid"], CA2);
    let (_, v) = f.get_json(&one("StartTime%3C=2016-10-15")).await;
    assert_eq!(v["calls"].as_array().unwrap().len(), 1);
    assert_eq!(v["calls"][0]["sid"], CA1);
    let (_, v) = f.get_json(&one("StartTime=2016-10-14")).await;
    assert_eq!(v["calls"][0]["sid"], CA1);
    let (status, v) = f.get_json(&one("Status=sideways")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("Status"), "{v}");
    let (status, _) = f.get_json(&one("StartTime=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, c) = f.get_json(&format!("{BASE}/Calls/{CA1}.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["from"], "+15551230001");
    assert_eq!(c["to"], "+15559870002");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["start_time"], "Fri, 14 Oct 2016 00:00:01 +0000");
    assert_eq!(c["end_time"], "Fri, 14 Oct 2016 00:00:43 +0000");
    assert_eq!(c["duration"], "42");
    assert_eq!(c["direction"], "inbound");
    assert_eq!(
        c["subresource_uris"]["recordings"],
        format!("{BASE}/Calls/{CA1}/Recordings.json")
    );
}

#[tokio::test]
async fn delete_is_204_then_404_and_removes_wav_and_mp3() {
    let f = fixture(MediaAuth::Basic);
    // Create the cached MP3 first.
    assert_eq!(
        f.get(&format!("{BASE}/Recordings/{RE1}.mp3"))
            .await
            .status(),
        StatusCode::OK
    );
    assert!(f.dir.join(format!("{RE1}.mp3")).exists());
    let uri = format!("{BASE}/Recordings/{RE1}.json");
    let resp = f
        .send(Method::DELETE, &uri, Some(&basic(AC, TOKEN)), None)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(body(resp).await.is_empty());
    assert!(!f.dir.join(format!("{RE1}.wav")).exists());
    assert!(!f.dir.join(format!("{RE1}.mp3")).exists());
    for u in [
        uri.clone(),
        format!("{BASE}/Recordings/{RE1}"),
        format!("{BASE}/Recordings/{RE1}.mp3"),
    ] {
        assert_eq!(f.get(&u).await.status(), StatusCode::NOT_FOUND, "{u}");
    }
    let again = f
        .send(Method::DELETE, &uri, Some(&basic(AC, TOKEN)), None)
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    // Metadata kept: visible with IncludeSoftDeleted only.
    assert_eq!(
        sids(&f, &format!("{BASE}/Calls/{CA1}/Recordings.json")).await,
        [RE2]
    );
    let (_, v) = f
        .get_json(&format!(
            "{BASE}/Recordings.json?CallSid={CA1}&IncludeSoftDeleted=true"
        ))
        .await;
    assert_eq!(v["recordings"][1]["sid"], RE1);
    assert_eq!(v["recordings"][1]["status"], "deleted");
    let (status, v) = f.get_json(&format!("{uri}?IncludeSoftDeleted=true")).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("deleted"))
    );

    // Through the call path; the wrong call is 404 and deletes nothing.
    let wrong = format!("{BASE}/Calls/{CA2}/Recordings/{RE2}.json");
    assert_eq!(
        f.send(Method::DELETE, &wrong, Some(&basic(AC, TOKEN)), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(f.dir.join(format!("{RE2}.wav")).exists());
    let right = format!("{BASE}/Calls/{CA1}/Recordings/{RE2}.json");
    assert_eq!(
        f.send(Method::DELETE, &right, Some(&basic(AC, TOKEN)), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(!f.dir.join(format!("{RE2}.wav")).exists());
}

#[tokio::test]
async fn wav_media_with_ranges() {
    let f = fixture(MediaAuth::Basic);
    let wav = wav_bytes(2);
    for ext in ["", ".wav"] {
        let resp = f.get(&format!("{BASE}/Recordings/{RE1}{ext}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "audio/x-wav");
        assert_eq!(resp.headers()[header::ACCEPT_RANGES], "bytes");
        assert_eq!(
            resp.headers()[header::CONTENT_LENGTH],
            wav.len().to_string().as_str()
        );
        assert_eq!(body(resp).await, wav);
    }
    let auth = basic(AC, TOKEN);
    let uri = format!("{BASE}/Recordings/{RE1}");
    let resp = f
        .send(Method::GET, &uri, Some(&auth), Some("bytes=40-47"))
        .await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.headers()[header::CONTENT_RANGE],
        format!("bytes 40-47/{}", wav.len()).as_str()
    );
    assert_eq!(resp.headers()[header::CONTENT_LENGTH], "8");
    assert_eq!(body(resp).await, &wav[40..48]);
    let resp = f
        .send(Method::GET, &uri, Some(&auth), Some("bytes=-4"))
        .await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body(resp).await, &wav[wav.len() - 4..]);
    let resp = f
        .send(Method::GET, &uri, Some(&auth), Some("bytes=99999999-"))
        .await;
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        resp.headers()[header::CONTENT_RANGE],
        format!("bytes */{}", wav.len()).as_str()
    );
    // In progress: no media yet.
    assert_eq!(
        f.get(&format!("{BASE}/Recordings/{RE4}.wav"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn media_auth_none_opens_media_only() {
    let f = fixture(MediaAuth::None);
    let resp = f
        .send(
            Method::GET,
            &format!("{BASE}/Recordings/{RE1}.wav"),
            None,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = f
        .send(
            Method::GET,
            &format!("{BASE}/Recordings/{RE1}.json"),
            None,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Another account's path does not serve our media.
    let resp = f
        .send(
            Method::GET,
            &format!("/2010-04-01/Accounts/{AC_OTHER}/Recordings/{RE1}"),
            None,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// (frames, samples per channel) of a Layer III stream that must be a clean chain of frames.
fn mp3_frames(b: &[u8]) -> (usize, u64) {
    const BR2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let (mut at, mut frames) = (0usize, 0usize);
    while at + 4 <= b.len() {
        let h = &b[at..at + 4];
        assert!(h[0] == 0xFF && h[1] & 0xE0 == 0xE0, "frame sync at {at}");
        assert_eq!((h[1] >> 3) & 3, 0, "MPEG 2.5");
        assert_eq!((h[1] >> 1) & 3, 1, "Layer III");
        assert_eq!((h[2] >> 2) & 3, 2, "8 kHz");
        let br = BR2[usize::from(h[2] >> 4)];
        at += (72 * br * 1000 / 8000 + u32::from((h[2] >> 1) & 1)) as usize;
        frames += 1;
    }
    (frames, frames as u64 * 576)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_mp3_requests_share_one_encode() {
    let f = Arc::new(fixture(MediaAuth::Basic));
    let uri = format!("{BASE}/Recordings/{RE1}.mp3");
    let jobs: Vec<_> = (0..6)
        .map(|_| {
            let (f, uri) = (f.clone(), uri.clone());
            tokio::spawn(async move {
                let resp = f.get(&uri).await;
                assert_eq!(resp.status(), StatusCode::OK);
                assert_eq!(resp.headers()[header::CONTENT_TYPE], "audio/mpeg");
                body(resp).await
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for j in jobs {
        bodies.push(j.await.unwrap());
    }
    assert_eq!(f.state.metrics.mp3_encodes.load(Ordering::Relaxed), 1);
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    let (frames, samples) = mp3_frames(&bodies[0]);
    // 2 s at 8 kHz = 16000 samples, plus LAME's Info frame, delay and padding (576-sample frames).
    assert!(
        (16_000..=16_000 + 4 * 576).contains(&samples),
        "{samples} samples in {frames} frames"
    );
    assert!(!Path::new(&f.dir.join(format!("{RE1}.mp3.tmp"))).exists());
    // Cached: later requests, ranged ones too, do not encode again.
    let resp = f
        .send(
            Method::GET,
            &uri,
            Some(&basic(AC, TOKEN)),
            Some("bytes=0-3"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body(resp).await, &bodies[0][..4]);
    assert_eq!(f.state.metrics.mp3_encodes.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn healthz_and_metrics_need_no_credentials() {
    let f = fixture(MediaAuth::Basic);
    let resp = f.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let health: serde_json::Value = serde_json::from_slice(&body(resp).await).unwrap();
    assert_eq!(
        health,
        serde_json::json!({"status": "ok", "database": "ok", "node_id": "test"})
    );
    // A draining node (hark drain): healthy, but 503 so HTTP balancers move on too.
    f.state.drain.set(true);
    let resp = f.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: serde_json::Value = serde_json::from_slice(&body(resp).await).unwrap();
    assert_eq!(health["status"], "draining");
    f.state.drain.set(false);
    // An engine that is not ready degrades the status, not the code.
    f.state.readiness.set(
        "transcription",
        false,
        serde_json::json!({"error": "no python", "fix": "scripts/install-asr.sh"}),
    );
    let resp = f.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let health: serde_json::Value = serde_json::from_slice(&body(resp).await).unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["transcription"]["ready"], false);
    assert_eq!(health["transcription"]["fix"], "scripts/install-asr.sh");
    let resp = f.send(Method::GET, "/metrics", None, None).await;
    let text = String::from_utf8(body(resp).await).unwrap();
    assert!(
        text.contains(
            "# TYPE hark_engine_ready gauge\nhark_engine_ready{engine=\"transcription\"} 0\n"
        ),
        "{text}"
    );
    f.state
        .readiness
        .set("transcription", true, serde_json::json!({"engine": "x"}));
    let resp = f.send(Method::GET, "/healthz", None, None).await;
    let health: serde_json::Value = serde_json::from_slice(&body(resp).await).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["transcription"],
        serde_json::json!({"ready": true, "engine": "x"})
    );
    Metrics::add(&f.state.metrics.active_calls, 2);
    let resp = f.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(body(resp).await).unwrap();
    assert!(text.contains("hark_active_calls 2\n"));
    assert!(!text.contains("RE1") && !text.contains(AC));
}
