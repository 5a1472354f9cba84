//! Serves the API over a throw-away store holding 3 recordings of 1 call, for checking the
//! Twilio helper libraries against it:
//! `cargo run -p http-api --example fixture_server -- 127.0.0.1:28093`
//! Account `AC0123456789abcdef0123456789abcdef`, token `token`.

use std::sync::Arc;

use http_api::{router, ApiState, MediaAuth, Metrics};
use store::{AccountSid, CallRecord, CallSid, RecordingRecord, RecordingSid, Store};

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const CA: &str = "CA11111111111111111111111111111111";

fn wav(secs: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..secs * 8000)
        .flat_map(|i| (((i % 40) as i16 - 20) * 500).to_le_bytes())
        .collect();
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(&data);
    v
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:28093".into());
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("hark.db"))?;
    let t0: i64 = 1_476_403_200_000;
    let (ac, ca): (AccountSid, CallSid) = (AC.parse()?, CA.parse()?);
    store.insert_call(&CallRecord {
        sid: ca.clone(),
        account_sid: ac.clone(),
        from: "+15551230001".into(),
        to: "+15559870002".into(),
        direction: store::Direction::Inbound,
        status: store::CallStatus::Completed,
        date_created_ms: t0,
        date_updated_ms: t0 + 60_000,
        start_time_ms: Some(t0),
        end_time_ms: Some(t0 + 60_000),
        duration_secs: Some(60),
        parent_call_sid: None,
    })?;
    for i in 1..=3i64 {
        let sid = RecordingSid::from_bits(i as u128);
        store.insert_recording(&RecordingRecord {
            sid: sid.clone(),
            account_sid: ac.clone(),
            call_sid: ca.clone(),
            status: store::RecordingStatus::Completed,
            source: store::RecordingSource::RecordVerb,
            channels: 1,
            sample_rate: 8000,
            date_created_ms: t0 + i * 10_000,
            date_updated_ms: t0 + i * 10_000,
            start_time_ms: t0 + i * 10_000 - 3_000,
            duration_secs: Some(3),
            error_code: None,
            media_file: format!("{sid}.wav"),
            transcribe: false,
            transcribe_callback: None,
            status_callback: None,
            deleted_at_ms: None,
        })?;
        std::fs::write(dir.path().join(format!("{sid}.wav")), wav(3))?;
    }
    let state = Arc::new(ApiState {
        account_sid: ac,
        auth_token: "token".into(),
        api_keys: Vec::new(),
        media_auth: MediaAuth::Basic,
        store: Arc::new(store),
        storage_dir: dir.path().to_path_buf(),
        remote_media: None,
        drain: Default::default(),
        node_id: "test".into(),
        forwarder: None,
        metrics: Arc::new(Metrics::default()),
        public_url: format!("http://{addr}"),
        voice_log: Default::default(),
        bot: None,
        readiness: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {addr}");
    axum::serve(listener, router(state)).await?;
    Ok(())
}
