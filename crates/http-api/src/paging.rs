//! List queries and the page envelope (SPEC §6.5), plus the recording list filters (§6.2).

use serde_json::{Map, Value};
use store::{CallSid, RecordingFilter};

use crate::error::ApiError;
use crate::resources::{parse_filter_time, FilterTime, DAY_MS};
use crate::route::is_sid;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;
/// `PageToken` = this prefix + a page number (offset paging: calls, previous pages).
const PAGE_TOKEN: &str = "PT";
/// `PageToken` = this prefix + `{date_created_ms}_{sid}` of the last item of the previous page
/// (keyset paging for recordings and transcriptions: constant cost at any depth, stable while
/// rows are added).
const AFTER_TOKEN: &str = "PA";

/// Which list is asked for: decides which filters apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Recordings,
    /// `Calls/{CA}/Recordings.json`: the call comes from the path, not from `CallSid`.
    CallRecordings,
    Calls,
    /// `Transcriptions.json`, no filters.
    Transcriptions,
    /// `Recordings/{RE}/Transcriptions.json`: the recording comes from the path.
    RecordingTranscriptions,
}

impl ListKind {
    /// Prefix of the SIDs a keyset `PageToken` of this list carries; `None`: page numbers only.
    fn keyset_prefix(self) -> Option<&'static str> {
        match self {
            ListKind::Recordings | ListKind::CallRecordings => Some("RE"),
            ListKind::Transcriptions | ListKind::RecordingTranscriptions => Some("TR"),
            ListKind::Calls => Some("CA"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub page_size: u32,
    pub page: u32,
    pub filter: RecordingFilter,
    /// The filters name nothing that can exist, so the list is empty: `ConferenceSid` (Hark
    /// has no conferences) or a `CallSid` that is not a CallSid.
    pub matches_nothing: bool,
    /// `Calls.json?ParentCallSid=`: the child calls a call's `<Dial>` placed.
    pub parent_call_sid: Option<CallSid>,
    /// `Calls.json`'s `From`, `To`, `Status` (exact).
    pub call_from: Option<String>,
    pub call_to: Option<String>,
    pub call_status: Option<store::CallStatus>,
    /// From a keyset `PageToken`: list the items after `(date_created_ms, sid)`.
    pub after: Option<(i64, String)>,
    /// The `PageToken` as received, repeated in `uri`.
    token: Option<String>,
    /// The filters to repeat in every page URI, form-encoded, each followed by `&`.
    kept: String,
}

impl ListQuery {
    /// Parses the raw query string; unknown parameters are ignored, as Twilio does.
    pub fn parse(query: Option<&str>, kind: ListKind) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery {
            page_size: DEFAULT_PAGE_SIZE,
            page: 0,
            filter: RecordingFilter::default(),
            matches_nothing: false,
            parent_call_sid: None,
            call_from: None,
            call_to: None,
            call_status: None,
            after: None,
            token: None,
            kept: String::new(),
        };
        let mut token_page = None;
        let mut after: Option<i64> = None;
        let mut before: Option<i64> = None;
        let mut call_sid: Option<Option<CallSid>> = None;
        let recordings = matches!(kind, ListKind::Recordings | ListKind::CallRecordings);
        let calls = kind == ListKind::Calls;
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim();
            // Calls are filtered by `StartTime` as recordings by `DateCreated` (both on the
            // row's creation, the list's order).
            let dated = recordings || calls;
            let name: &str = match (&*key, calls) {
                ("StartTime", true) => "DateCreated",
                ("StartTime<", true) => "DateCreated<",
                ("StartTime>", true) => "DateCreated>",
                ("DateCreated" | "DateCreated<" | "DateCreated>", true) => "",
                (k, _) => k,
            };
            match name {
                "From" if calls || recordings => {
                    if calls {
                        q.call_from = Some(value.to_string());
                    } else {
                        q.filter.from = Some(value.to_string());
                    }
                    q.keep(&key, value);
                }
                "To" if calls || recordings => {
                    if calls {
                        q.call_to = Some(value.to_string());
                    } else {
                        q.filter.to = Some(value.to_string());
                    }
                    q.keep(&key, value);
                }
                "Status" if calls => {
                    q.call_status = Some(value.parse().map_err(|_| {
                        ApiError::invalid_param(
                            "Status",
                            "must be queued, ringing, in-progress, completed, busy, failed, no-answer or canceled",
                        )
                    })?);
                    q.keep(&key, value);
                }
                "Status" if recordings => {
                    let status: store::RecordingStatus = value.parse().map_err(|_| {
                        ApiError::invalid_param(
                            "Status",
                            "must be in-progress, paused, stopped, processing, completed, absent, failed or deleted",
                        )
                    })?;
                    // Asking for deleted ones is asking to see them.
                    if status == store::RecordingStatus::Deleted {
                        q.filter.include_soft_deleted = true;
                    }
                    q.filter.status = Some(status);
                    q.keep(&key, value);
                }
                "PageSize" => {
                    q.page_size = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid_param("PageSize", "must be an integer from 1 to 1000")
                        })?;
                }
                "Page" => {
                    q.page = value.parse().map_err(|_| {
                        ApiError::invalid_param("Page", "must be a non-negative integer")
                    })?;
                }
                "PageToken" => {
                    let bad =
                        || ApiError::invalid_param("PageToken", "not a token this server issued");
                    if let Some(n) = value.strip_prefix(PAGE_TOKEN) {
                        token_page = Some(n.parse::<u32>().map_err(|_| bad())?);
                    } else if let Some(key) = value.strip_prefix(AFTER_TOKEN) {
                        let (ms, sid) = key.split_once('_').ok_or_else(bad)?;
                        let ms = ms.parse::<i64>().map_err(|_| bad())?;
                        if !kind.keyset_prefix().is_some_and(|p| is_sid(sid, p)) {
                            return Err(bad());
                        }
                        q.after = Some((ms, sid.to_string()));
                    } else {
                        return Err(bad());
                    }
                    q.token = Some(value.to_string());
                }
                "CallSid" if kind == ListKind::Recordings => {
                    // The last one counts, as for every parameter.
                    call_sid = Some(value.parse().ok());
                    q.keep(&key, value);
                }
                "ParentCallSid" if kind == ListKind::Calls => {
                    match value.parse() {
                        Ok(sid) => q.parent_call_sid = Some(sid),
                        // Like an unknown call, a malformed one lists nothing.
                        Err(_) => q.matches_nothing = true,
                    }
                    q.keep(&key, value);
                }
                "ConferenceSid" if recordings => {
                    q.matches_nothing = true;
                    q.keep(&key, value);
                }
                "DateCreated" if dated => {
                    let day = parse_filter_time(value)
                        .ok_or_else(|| bad_date(&key))?
                        .day_start_ms();
                    after = Some(after.map_or(day, |a| a.max(day)));
                    let end = day.saturating_add(DAY_MS);
                    before = Some(before.map_or(end, |b| b.min(end)));
                    q.keep(&key, value);
                }
                // `DateCreated<` / `DateCreated>`: the operator is part of the NAME
                // (`DateCreated%3C=…`; `DateCreated<=…` parses the same way).
                "DateCreated<" if dated => {
                    let t = parse_filter_time(value).ok_or_else(|| bad_date(&key))?;
                    let t = t.instant_ms();
                    before = Some(before.map_or(t, |b| b.min(t)));
                    q.keep(&key, value);
                }
                "DateCreated>" if dated => {
                    let t = parse_filter_time(value).ok_or_else(|| bad_date(&key))?;
                    let t = t.instant_ms();
                    after = Some(after.map_or(t, |a| a.max(t)));
                    q.keep(&key, value);
                }
                "IncludeSoftDeleted" if recordings => {
                    q.filter.include_soft_deleted = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(ApiError::invalid_param(
                                "IncludeSoftDeleted",
                                "must be true or false",
                            ))
                        }
                    };
                    q.keep(&key, value);
                }
                _ => {}
            }
        }
        // A page-number token is what we hand out in next/previous URIs; it wins over `Page`.
        if let Some(page) = token_page {
            q.page = page;
        }
        if u64::from(q.page) * u64::from(q.page_size) > u64::from(u32::MAX) {
            return Err(ApiError::invalid_param(
                "Page",
                "beyond the last possible page",
            ));
        }
        match call_sid {
            Some(Some(sid)) => q.filter.call_sid = Some(sid),
            // Not an error: like an unknown call, a malformed one lists nothing.
            Some(None) => q.matches_nothing = true,
            None => {}
        }
        q.filter.created_on_or_after_ms = after;
        q.filter.created_before_ms = before;
        Ok(q)
    }

    fn keep(&mut self, key: &str, value: &str) {
        let pair = form_urlencoded::Serializer::new(String::new())
            .append_pair(key, value)
            .finish();
        self.kept.push_str(&pair);
        self.kept.push('&');
    }

    /// The token of the page after this one, for a list whose last item is `last`.
    pub fn next_token(&self, last: Option<(i64, &str)>) -> String {
        match last {
            Some((ms, sid)) if is_sid(sid, "RE") || is_sid(sid, "TR") || is_sid(sid, "CA") => {
                format!("{AFTER_TOKEN}{ms}_{sid}")
            }
            _ => format!("{PAGE_TOKEN}{}", self.page.saturating_add(1)),
        }
    }

    /// Path-relative URI of page `page` of the list at `path`, with the same filters.
    fn page_uri(&self, path: &str, page: u32, token: Option<&str>) -> String {
        let mut uri = format!(
            "{path}?{}PageSize={}&Page={page}",
            self.kept, self.page_size
        );
        if let Some(t) = token {
            uri.push_str("&PageToken=");
            uri.push_str(&form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>());
        }
        uri
    }

    /// The page body: the eight metadata keys twilio-python knows plus exactly one collection
    /// key. `next_token` is `Some` exactly when another page follows.
    pub fn envelope(
        &self,
        path: &str,
        key: &str,
        items: Vec<Value>,
        next_token: Option<String>,
    ) -> Value {
        let start = u64::from(self.page) * u64::from(self.page_size);
        let end = (start + items.len() as u64).saturating_sub(1).max(start);
        let mut m = Map::new();
        m.insert("first_page_uri".into(), self.page_uri(path, 0, None).into());
        m.insert(
            "next_page_uri".into(),
            match next_token {
                Some(t) => self
                    .page_uri(path, self.page.saturating_add(1), Some(&t))
                    .into(),
                None => Value::Null,
            },
        );
        // Keyset tokens only run forward; the previous page is addressed by number.
        m.insert(
            "previous_page_uri".into(),
            match self.page {
                0 => Value::Null,
                1 => self.page_uri(path, 0, None).into(),
                p => self
                    .page_uri(path, p - 1, Some(&format!("{PAGE_TOKEN}{}", p - 1)))
                    .into(),
            },
        );
        m.insert("page".into(), self.page.into());
        m.insert("page_size".into(), self.page_size.into());
        m.insert("start".into(), start.into());
        m.insert("end".into(), end.into());
        m.insert(
            "uri".into(),
            self.page_uri(path, self.page, self.token.as_deref()).into(),
        );
        m.insert(key.into(), Value::Array(items));
        Value::Object(m)
    }
}

fn bad_date(name: &str) -> ApiError {
    ApiError::invalid_param(
        name,
        "must be a date YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (GMT)",
    )
}

impl FilterTime {
    fn day_start_ms(self) -> i64 {
        match self {
            FilterTime::Day(ms) => ms,
            FilterTime::Instant(ms) => ms.div_euclid(DAY_MS) * DAY_MS,
        }
    }
    /// A bare date means its midnight (Twilio: "on or before midnight of this date").
    fn instant_ms(self) -> i64 {
        match self {
            FilterTime::Day(ms) | FilterTime::Instant(ms) => ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/2010-04-01/Accounts/AC1/Recordings.json";
    const CA: &str = "CA0123456789abcdef0123456789abcdef";
    // 2016-10-14T00:00:00Z
    const D14: i64 = 1_476_403_200_000;

    fn parse(q: &str) -> Result<ListQuery, ApiError> {
        ListQuery::parse(Some(q), ListKind::Recordings)
    }

    #[test]
    fn defaults_are_page_zero_of_fifty() {
        let q = ListQuery::parse(None, ListKind::Recordings).unwrap();
        assert_eq!((q.page, q.page_size), (0, 50));
        assert_eq!(q.filter, RecordingFilter::default());
    }

    #[test]
    fn page_size_outside_1_to_1000_is_400() {
        for bad in ["PageSize=0", "PageSize=1001", "PageSize=-1", "PageSize=x"] {
            let e = parse(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, 21400), "{bad}");
            assert!(e.message.contains("PageSize"));
        }
        assert_eq!(parse("PageSize=1000").unwrap().page_size, 1000);
        assert_eq!(parse("PageSize=1").unwrap().page_size, 1);
        assert!(parse("Page=-1").is_err());
        assert!(parse("PageToken=garbage").is_err());
        assert!(parse("PageSize=1000&Page=4294968").is_err());
    }

    #[test]
    fn page_token_overrides_page() {
        let q = parse("Page=7&PageToken=PT2&PageSize=3").unwrap();
        assert_eq!((q.page, q.page_size), (2, 3));
    }

    #[test]
    fn date_created_is_that_utc_day() {
        let q = parse("DateCreated=2016-10-14").unwrap();
        assert_eq!(q.filter.created_on_or_after_ms, Some(D14));
        assert_eq!(q.filter.created_before_ms, Some(D14 + DAY_MS));
        // twilio-python sends dates as datetimes at midnight.
        let q2 = parse("DateCreated=2016-10-14T13%3A00%3A00Z").unwrap();
        assert_eq!(q2.filter, q.filter);
    }

    #[test]
    fn date_created_bounds_use_the_operator_in_the_name() {
        let q = parse("DateCreated%3E=2016-10-14&DateCreated%3C=2016-10-15T06:00:00Z").unwrap();
        assert_eq!(q.filter.created_on_or_after_ms, Some(D14));
        assert_eq!(
            q.filter.created_before_ms,
            Some(D14 + DAY_MS + 6 * 3_600_000)
        );
        // Unencoded `DateCreated<=…` means the same.
        let raw = parse("DateCreated<=2016-10-14").unwrap();
        assert_eq!(raw.filter.created_before_ms, Some(D14));
        assert!(parse("DateCreated%3C=14/10/2016").is_err());
        assert!(parse("DateCreated=2016-13-01").is_err());
    }

    #[test]
    fn call_sid_filters_by_call_and_a_malformed_one_matches_nothing() {
        let q = parse(&format!("CallSid={CA}")).unwrap();
        assert_eq!(q.filter.call_sid, Some(CA.parse().unwrap()));
        assert!(!q.matches_nothing);
        // Not a 400 (an unknown call lists nothing too), and kept in the page URIs.
        let bad = parse("CallSid=CA1").unwrap();
        assert_eq!(bad.filter.call_sid, None);
        assert!(bad.matches_nothing);
        assert_eq!(
            bad.page_uri("/r", 0, None),
            "/r?CallSid=CA1&PageSize=50&Page=0"
        );
        // The last one counts.
        let last = parse(&format!("CallSid=CA1&CallSid={CA}")).unwrap();
        assert_eq!(last.filter.call_sid, Some(CA.parse().unwrap()));
        assert!(!last.matches_nothing);
        assert!(
            parse(&format!("CallSid={CA}&CallSid=CA1"))
                .unwrap()
                .matches_nothing
        );
        assert!(parse("ConferenceSid=CF1").unwrap().matches_nothing);
    }

    #[test]
    fn calls_list_ignores_recording_filters() {
        let q = ListQuery::parse(
            Some(&format!("CallSid={CA}&DateCreated=bad")),
            ListKind::Calls,
        )
        .unwrap();
        assert_eq!(q.filter, RecordingFilter::default());
        assert!(!q.matches_nothing);
        assert_eq!(q.page_uri("/c", 0, None), "/c?PageSize=50&Page=0");
    }

    #[test]
    fn include_soft_deleted_is_a_boolean() {
        assert!(
            parse("IncludeSoftDeleted=true")
                .unwrap()
                .filter
                .include_soft_deleted
        );
        assert!(
            parse("IncludeSoftDeleted=True")
                .unwrap()
                .filter
                .include_soft_deleted
        );
        assert!(
            !parse("IncludeSoftDeleted=false")
                .unwrap()
                .filter
                .include_soft_deleted
        );
        assert!(parse("IncludeSoftDeleted=yes").is_err());
    }

    #[test]
    fn keyset_token_carries_the_last_key_and_only_for_recordings() {
        let q =
            parse("PageSize=1&Page=1&PageToken=PA1476403200000_RE0123456789abcdef0123456789abcdef")
                .unwrap();
        assert_eq!(
            q.after,
            Some((
                1_476_403_200_000,
                "RE0123456789abcdef0123456789abcdef".to_string()
            ))
        );
        assert_eq!(q.page, 1);
        for bad in [
            "PA12_RE1",
            "PAx_RE0123456789abcdef0123456789abcdef",
            "PA12",
            "XX",
        ] {
            assert!(parse(&format!("PageToken={bad}")).is_err(), "{bad}");
        }
        let calls = ListQuery::parse(
            Some("PageToken=PA1_RE0123456789abcdef0123456789abcdef"),
            ListKind::Calls,
        );
        assert!(calls.is_err());
        assert_eq!(
            q.next_token(Some((5, "RE0123456789abcdef0123456789abcdef"))),
            "PA5_RE0123456789abcdef0123456789abcdef"
        );
        assert_eq!(q.next_token(None), "PT2");
    }

    #[test]
    fn transcription_lists_take_tr_keyset_tokens_and_no_recording_filters() {
        const TR: &str = "TR0123456789abcdef0123456789abcdef";
        for kind in [ListKind::Transcriptions, ListKind::RecordingTranscriptions] {
            let q = ListQuery::parse(
                Some(&format!("PageToken=PA7_{TR}&CallSid={CA}&DateCreated=bad")),
                kind,
            )
            .unwrap();
            assert_eq!(q.after, Some((7, TR.to_string())));
            assert_eq!(q.filter, RecordingFilter::default());
            assert!(ListQuery::parse(
                Some("PageToken=PA7_RE0123456789abcdef0123456789abcdef"),
                kind
            )
            .is_err());
            assert_eq!(q.next_token(Some((9, TR))), format!("PA9_{TR}"));
        }
        assert!(
            parse(&format!("PageToken=PA7_{TR}")).is_err(),
            "not for recordings"
        );
    }

    #[test]
    fn page_uris_are_path_relative_and_keep_filters() {
        let q = parse(&format!(
            "CallSid={CA}&DateCreated%3C=2016-10-14&PageSize=1&Page=2&PageToken=PT2&Foo=1"
        ))
        .unwrap();
        let v = q.envelope(PATH, "recordings", vec![Value::Null], Some("PT3".into()));
        let prefix = format!("{PATH}?CallSid={CA}&DateCreated%3C=2016-10-14&PageSize=1");
        assert_eq!(v["first_page_uri"], format!("{prefix}&Page=0"));
        assert_eq!(
            v["previous_page_uri"],
            format!("{prefix}&Page=1&PageToken=PT1")
        );
        assert_eq!(v["uri"], format!("{prefix}&Page=2&PageToken=PT2"));
        assert_eq!(v["next_page_uri"], format!("{prefix}&Page=3&PageToken=PT3"));
        assert_eq!(
            (v["page"].as_u64(), v["page_size"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!((v["start"].as_u64(), v["end"].as_u64()), (Some(2), Some(2)));
        let q1 = parse("PageSize=1&Page=1&PageToken=PT1").unwrap();
        let v1 = q1.envelope(PATH, "recordings", vec![], None);
        assert_eq!(v1["previous_page_uri"], format!("{PATH}?PageSize=1&Page=0"));
        assert!(v1["next_page_uri"].is_null());
    }

    #[test]
    fn envelope_has_exactly_the_metadata_keys_and_one_collection() {
        let q = parse("PageSize=2").unwrap();
        let v = q.envelope(PATH, "recordings", vec![Value::Null, Value::Null], None);
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
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
        assert!(v["next_page_uri"].is_null() && v["previous_page_uri"].is_null());
        assert_eq!((v["start"].as_u64(), v["end"].as_u64()), (Some(0), Some(1)));
        let empty = q.envelope(PATH, "recordings", vec![], None);
        assert_eq!(
            (empty["start"].as_u64(), empty["end"].as_u64()),
            (Some(0), Some(0))
        );
    }
}
