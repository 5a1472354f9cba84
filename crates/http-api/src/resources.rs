//! JSON for the Recording and Call resources (SPEC §6.2, Twilio's Call resource) and the date
//! formats they use.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{json, Value};
use store::{CallRecord, RecordingRecord, TranscriptionRecord, TranscriptionStatus};

pub const API_VERSION: &str = "2010-04-01";
pub const DAY_MS: i64 = 86_400_000;

/// RFC 2822 in GMT as Twilio writes it: `Fri, 14 Oct 2016 21:56:34 +0000`.
pub fn rfc2822(ms: i64) -> Value {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => Value::String(t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()),
        None => Value::Null,
    }
}

fn opt_rfc2822(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, rfc2822)
}

/// A `DateCreated…` filter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterTime {
    /// `YYYY-MM-DD`: midnight GMT of that day, in Unix ms.
    Day(i64),
    /// `YYYY-MM-DDTHH:MM:SSZ` (what twilio-python's `iso8601_datetime` sends), in Unix ms.
    Instant(i64),
}

pub fn parse_filter_time(s: &str) -> Option<FilterTime> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(FilterTime::Day(
            d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
        ));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ") {
        return Some(FilterTime::Instant(t.and_utc().timestamp_millis()));
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| FilterTime::Instant(t.timestamp_millis()))
}

pub fn recording_json(r: &RecordingRecord, public_url: &str) -> Value {
    let base = format!(
        "/{API_VERSION}/Accounts/{}/Recordings/{}",
        r.account_sid, r.sid
    );
    json!({
        "sid": r.sid,
        "account_sid": r.account_sid,
        "call_sid": r.call_sid,
        "conference_sid": null,
        "api_version": API_VERSION,
        "date_created": rfc2822(r.date_created_ms),
        "date_updated": rfc2822(r.date_updated_ms),
        "start_time": rfc2822(r.start_time_ms),
        "duration": r.duration_secs.map(|d| d.to_string()),
        "channels": r.channels,
        // Not in Twilio's resource: 16000 for a wideband (Opus) recording.
        "sample_rate": r.sample_rate,
        "source": r.source,
        "status": r.status,
        "error_code": r.error_code,
        "price": null,
        "price_unit": "USD",
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "transcriptions": format!("{base}/Transcriptions.json"),
            "add_on_results": format!("{base}/AddOnResults.json"),
        },
        "encryption_details": null,
        "media_url": format!("{}{base}", public_url.trim_end_matches('/')),
    })
}

/// The Transcription resource (SPEC §6.4): exactly these 13 keys. A queued job shows as
/// `in-progress` (Twilio has no `queued`); the text is null until completed.
pub fn transcription_json(t: &TranscriptionRecord) -> Value {
    let status = match t.status {
        TranscriptionStatus::Queued => TranscriptionStatus::InProgress,
        s => s,
    };
    let text = if t.status == TranscriptionStatus::Completed {
        Value::String(t.text.clone().unwrap_or_default())
    } else {
        Value::Null
    };
    json!({
        "sid": t.sid,
        "account_sid": t.account_sid,
        "api_version": API_VERSION,
        "date_created": rfc2822(t.date_created_ms),
        "date_updated": rfc2822(t.date_updated_ms),
        "duration": t.duration_secs.map(|d| d.to_string()),
        "price": null,
        "price_unit": "USD",
        "recording_sid": t.recording_sid,
        "status": status,
        "transcription_text": text,
        "type": t.kind,
        "uri": format!("/{API_VERSION}/Accounts/{}/Transcriptions/{}.json", t.account_sid, t.sid),
    })
}

pub fn call_json(c: &CallRecord) -> Value {
    let base = format!("/{API_VERSION}/Accounts/{}/Calls/{}", c.account_sid, c.sid);
    json!({
        "sid": c.sid,
        "account_sid": c.account_sid,
        "from": c.from,
        "to": c.to,
        "from_formatted": c.from,
        "to_formatted": c.to,
        "status": c.status,
        "start_time": opt_rfc2822(c.start_time_ms),
        "end_time": opt_rfc2822(c.end_time_ms),
        "duration": c.duration_secs.map(|d| d.to_string()),
        "direction": c.direction,
        "api_version": API_VERSION,
        "date_created": rfc2822(c.date_created_ms),
        "date_updated": rfc2822(c.date_updated_ms),
        "price": null,
        "price_unit": "USD",
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "recordings": format!("{base}/Recordings.json"),
        },
        "parent_call_sid": c.parent_call_sid,
        "phone_number_sid": null,
        "answered_by": null,
        "caller_name": null,
        "forwarded_from": null,
        "group_sid": null,
        "queue_time": "0",
        "trunk_sid": null,
        "annotation": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const CA: &str = "CA0123456789abcdef0123456789abcdef";
    const RE: &str = "RE0123456789abcdef0123456789abcdef";
    const TR: &str = "TR0123456789abcdef0123456789abcdef";
    // Fri, 14 Oct 2016 21:56:34 GMT
    const T: i64 = 1_476_482_194_000;

    fn rec() -> RecordingRecord {
        RecordingRecord {
            sid: RE.parse().unwrap(),
            account_sid: AC.parse().unwrap(),
            call_sid: CA.parse().unwrap(),
            status: store::RecordingStatus::Completed,
            source: store::RecordingSource::RecordVerb,
            channels: 1,
            sample_rate: 8000,
            date_created_ms: T,
            date_updated_ms: T + 5_000,
            start_time_ms: T - 7_000,
            duration_secs: Some(7),
            error_code: None,
            media_file: format!("{RE}.wav"),
            transcribe: false,
            transcribe_callback: None,
            status_callback: None,
            deleted_at_ms: None,
        }
    }

    #[test]
    fn rfc2822_matches_twilio_example() {
        assert_eq!(rfc2822(T), "Fri, 14 Oct 2016 21:56:34 +0000");
        // Two-digit day, as Python's email.utils.format_datetime writes it.
        assert_eq!(
            rfc2822(1_475_539_200_000),
            "Tue, 04 Oct 2016 00:00:00 +0000"
        );
        assert_eq!(rfc2822(i64::MAX), Value::Null);
    }

    #[test]
    fn filter_times_parse_both_date_forms() {
        assert_eq!(
            parse_filter_time("2016-10-14"),
            Some(FilterTime::Day(1_476_403_200_000))
        );
        assert_eq!(
            parse_filter_time("2016-10-14T21:56:34Z"),
            Some(FilterTime::Instant(T))
        );
        assert_eq!(
            parse_filter_time("2016-10-14T23:56:34+02:00"),
            Some(FilterTime::Instant(T))
        );
        assert_eq!(parse_filter_time("2016-10-32"), None);
        assert_eq!(parse_filter_time(""), None);
    }

    #[test]
    fn recording_fields_and_types() {
        let v = recording_json(&rec(), "https://hark.example/");
        assert_eq!(v["sid"], RE);
        assert_eq!(v["conference_sid"], Value::Null);
        assert_eq!(v["api_version"], "2010-04-01");
        assert_eq!(v["date_created"], "Fri, 14 Oct 2016 21:56:34 +0000");
        assert_eq!(v["date_updated"], "Fri, 14 Oct 2016 21:56:39 +0000");
        assert_eq!(v["start_time"], "Fri, 14 Oct 2016 21:56:27 +0000");
        assert_eq!(v["duration"], "7");
        assert_eq!(v["channels"], 1);
        assert_eq!(v["error_code"], Value::Null);
        assert_eq!(v["price"], Value::Null);
        assert_eq!(v["price_unit"], "USD");
        assert_eq!(
            v["uri"],
            format!("/2010-04-01/Accounts/{AC}/Recordings/{RE}.json")
        );
        assert_eq!(
            v["media_url"],
            format!("https://hark.example/2010-04-01/Accounts/{AC}/Recordings/{RE}")
        );
        assert_eq!(
            v["subresource_uris"]["transcriptions"],
            format!("/2010-04-01/Accounts/{AC}/Recordings/{RE}/Transcriptions.json")
        );
        assert_eq!(v["encryption_details"], Value::Null);
        assert_eq!(v["sample_rate"], 8000);
        assert_eq!(v.as_object().unwrap().len(), 20);
    }

    #[test]
    fn in_progress_recording_has_null_duration_and_int_error_code() {
        let mut r = rec();
        r.duration_secs = None;
        r.error_code = Some(16102);
        let v = recording_json(&r, "http://h");
        assert_eq!(v["duration"], Value::Null);
        assert_eq!(v["error_code"], 16102);
    }

    fn tr(status: &str) -> TranscriptionRecord {
        TranscriptionRecord {
            sid: TR.parse().unwrap(),
            account_sid: AC.parse().unwrap(),
            recording_sid: RE.parse().unwrap(),
            call_sid: CA.parse().unwrap(),
            status: status.parse().unwrap(),
            text: Some("hello world".into()),
            language: Some("en-US".into()),
            engine: Some("pocketsphinx".into()),
            error: None,
            audio_secs: Some(6.5),
            processing_secs: Some(1.0),
            duration_secs: Some(6),
            kind: "fast".into(),
            transcribe_callback: None,
            date_created_ms: T,
            date_updated_ms: T + 3_000,
        }
    }

    #[test]
    fn transcription_fields_types_and_status_mapping() {
        let v = transcription_json(&tr("completed"));
        assert_eq!(
            v,
            json!({
                "sid": TR,
                "account_sid": AC,
                "api_version": "2010-04-01",
                "date_created": "Fri, 14 Oct 2016 21:56:34 +0000",
                "date_updated": "Fri, 14 Oct 2016 21:56:37 +0000",
                "duration": "6",
                "price": null,
                "price_unit": "USD",
                "recording_sid": RE,
                "status": "completed",
                "transcription_text": "hello world",
                "type": "fast",
                "uri": format!("/2010-04-01/Accounts/{AC}/Transcriptions/{TR}.json"),
            })
        );
        for (stored, shown) in [
            ("queued", "in-progress"),
            ("in-progress", "in-progress"),
            ("failed", "failed"),
        ] {
            let v = transcription_json(&tr(stored));
            assert_eq!(v["status"], shown);
            assert_eq!(v["transcription_text"], Value::Null, "{stored}");
        }
        let mut t = tr("queued");
        t.duration_secs = None;
        assert_eq!(transcription_json(&t)["duration"], Value::Null);
    }

    #[test]
    fn call_fields_and_types() {
        let c = CallRecord {
            sid: CA.parse().unwrap(),
            account_sid: AC.parse().unwrap(),
            from: "+15551230000".into(),
            to: "sip:vm@hark".into(),
            direction: store::Direction::Inbound,
            status: store::CallStatus::Completed,
            date_created_ms: T,
            date_updated_ms: T,
            start_time_ms: Some(T),
            end_time_ms: Some(T + 42_000),
            duration_secs: Some(42),
            parent_call_sid: None,
        };
        let v = call_json(&c);
        assert_eq!(v["from"], "+15551230000");
        assert_eq!(v["to_formatted"], "sip:vm@hark");
        assert_eq!(v["duration"], "42");
        assert_eq!(v["end_time"], "Fri, 14 Oct 2016 21:57:16 +0000");
        assert_eq!(v["queue_time"], "0");
        assert_eq!(
            v["subresource_uris"]["recordings"],
            format!("/2010-04-01/Accounts/{AC}/Calls/{CA}/Recordings.json")
        );
        let ringing = CallRecord {
            start_time_ms: None,
            end_time_ms: None,
            duration_secs: None,
            ..c
        };
        let v = call_json(&ringing);
        assert_eq!(
            (&v["start_time"], &v["end_time"], &v["duration"]),
            (&Value::Null, &Value::Null, &Value::Null)
        );
    }
}
