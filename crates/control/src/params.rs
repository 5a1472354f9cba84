//! Twilio's standard request parameters (SPEC §1).

use store::{AccountSid, CallSid};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub call_sid: CallSid,
    pub account_sid: AccountSid,
    /// Already formatted: E.164 with `+` for phone numbers, else `sip:user@host`.
    pub from: String,
    pub to: String,
    pub forwarded_from: Option<String>,
    pub caller_name: Option<String>,
    /// Set for a call from a Voice SDK client (`From=client:alice`) into a TwiML application.
    pub client: Option<ClientApp>,
    /// `inbound`, or `outbound-api` for a call placed over the REST API.
    pub direction: Direction,
}

/// What a Voice SDK client's call adds to Twilio's parameters: `ApplicationSid`, and each
/// `connect({params})` field (and the token's outgoing params) as its own parameter. `Called`
/// is empty for these calls; `To` comes from the params and is already in [`CallInfo::to`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientApp {
    pub application_sid: String,
    pub params: Vec<(String, String)>,
}

/// Defined once, in `store`, with the call rows.
pub use store::{CallStatus, Direction};

/// CallSid, AccountSid, From, To, Caller, Called, CallStatus, ApiVersion, Direction and, when
/// known, ForwardedFrom and CallerName.
pub fn standard_params(call: &CallInfo, status: CallStatus) -> Vec<(String, String)> {
    let mut params = vec![
        ("CallSid", call.call_sid.to_string()),
        ("AccountSid", call.account_sid.to_string()),
        ("From", call.from.clone()),
        ("To", call.to.clone()),
        ("Caller", call.from.clone()),
        (
            "Called",
            match call.client {
                Some(_) => String::new(),
                None => call.to.clone(),
            },
        ),
        ("CallStatus", status.as_str().to_string()),
        ("ApiVersion", API_VERSION.to_string()),
        ("Direction", call.direction.as_str().to_string()),
    ];
    if let Some(f) = &call.forwarded_from {
        params.push(("ForwardedFrom", f.clone()));
    }
    if let Some(n) = &call.caller_name {
        params.push(("CallerName", n.clone()));
    }
    let mut params: Vec<(String, String)> = params
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    if let Some(client) = &call.client {
        params.push(("ApplicationSid".into(), client.application_sid.clone()));
        // A client's own field never replaces one of Twilio's (a page cannot forge CallSid).
        for (k, v) in &client.params {
            if !params.iter().any(|(have, _)| have == k) {
                params.push((k.clone(), v.clone()));
            }
        }
    }
    params
}

pub const API_VERSION: &str = "2010-04-01";

fn is_phone_number(user: &str) -> Option<&str> {
    let digits = user.strip_prefix('+').unwrap_or(user);
    (digits.len() >= 3 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The From/To value for a SIP party: `+digits` when the user part is a phone number
/// (optionally with a leading `+`, at least 3 digits), else `sip:user@host`.
///
/// `uri` may carry angle brackets, URI parameters (`;user=phone`) or headers (`?x=y`); they are
/// dropped. A `tel:` URI with no separate user yields its number.
pub fn party(user: Option<&str>, uri: &str) -> String {
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let bare = uri.split([';', '?']).next().unwrap_or(uri);
    let (scheme, rest) = match bare.split_once(':') {
        Some((s, r))
            if ["sip", "sips", "tel"]
                .iter()
                .any(|k| s.eq_ignore_ascii_case(k)) =>
        {
            (s.to_ascii_lowercase(), r)
        }
        _ => ("sip".to_string(), bare),
    };
    let user = user.or_else(|| (scheme == "tel").then_some(rest));
    if let Some(digits) = user.and_then(is_phone_number) {
        return format!("+{digits}");
    }
    format!("{scheme}:{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallInfo {
        CallInfo {
            call_sid: CallSid::from_bits(0x123),
            account_sid: AccountSid::from_bits(0x4567),
            from: "+14155550100".into(),
            to: "sip:vm@pbx.example".into(),
            forwarded_from: None,
            caller_name: None,
            client: None,
            direction: store::Direction::Inbound,
        }
    }

    fn names(params: &[(String, String)]) -> Vec<&str> {
        params.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn standard_params_table_spec_1() {
        let p = standard_params(&call(), CallStatus::InProgress);
        let expected: Vec<(String, String)> = [
            ("CallSid", "CA00000000000000000000000000000123"),
            ("AccountSid", "AC00000000000000000000000000004567"),
            ("From", "+14155550100"),
            ("To", "sip:vm@pbx.example"),
            ("Caller", "+14155550100"),
            ("Called", "sip:vm@pbx.example"),
            ("CallStatus", "in-progress"),
            ("ApiVersion", "2010-04-01"),
            ("Direction", "inbound"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(p, expected);
    }

    #[test]
    fn optional_params_only_when_known_even_if_empty() {
        let mut c = call();
        c.forwarded_from = Some("+14155550199".into());
        c.caller_name = Some(String::new());
        let p = standard_params(&c, CallStatus::Completed);
        assert_eq!(&names(&p)[9..], ["ForwardedFrom", "CallerName"]);
        assert_eq!(p[9].1, "+14155550199");
        assert_eq!(p[10].1, "");
        assert_eq!(p[6].1, "completed");
    }

    /// As Twilio posts a Voice SDK call into a TwiML app: From/Caller `client:alice`, To from
    /// the params, Called empty, ApplicationSid, then each custom field; a field named like one
    /// of Twilio's is dropped.
    #[test]
    fn client_calls_add_application_sid_and_their_params() {
        let mut c = call();
        c.from = "client:alice".into();
        c.to = "rec".into();
        c.client = Some(ClientApp {
            application_sid: "AP00000000000000000000000000000001".into(),
            params: vec![
                ("Lang".into(), "de".into()),
                ("CallSid".into(), "CAforged".into()),
                ("empty".into(), String::new()),
            ],
        });
        let p = standard_params(&c, CallStatus::Ringing);
        let got: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("CallSid", "CA00000000000000000000000000000123"),
                ("AccountSid", "AC00000000000000000000000000004567"),
                ("From", "client:alice"),
                ("To", "rec"),
                ("Caller", "client:alice"),
                ("Called", ""),
                ("CallStatus", "ringing"),
                ("ApiVersion", "2010-04-01"),
                ("Direction", "inbound"),
                ("ApplicationSid", "AP00000000000000000000000000000001"),
                ("Lang", "de"),
                ("empty", ""),
            ]
        );
    }

    #[test]
    fn call_status_strings() {
        let all = [
            (CallStatus::Ringing, "ringing"),
            (CallStatus::InProgress, "in-progress"),
            (CallStatus::Completed, "completed"),
            (CallStatus::Busy, "busy"),
            (CallStatus::NoAnswer, "no-answer"),
            (CallStatus::Failed, "failed"),
            (CallStatus::Canceled, "canceled"),
        ];
        for (s, text) in all {
            assert_eq!(s.as_str(), text);
        }
    }

    #[test]
    fn party_phone_number_becomes_e164() {
        assert_eq!(
            party(Some("14155550100"), "sip:14155550100@gw.example;user=phone"),
            "+14155550100"
        );
        assert_eq!(
            party(Some("+4930123456"), "sip:+4930123456@gw.example"),
            "+4930123456"
        );
        assert_eq!(party(Some("911"), "sip:911@gw.example"), "+911");
    }

    #[test]
    fn party_non_numeric_or_short_user_is_sip_uri() {
        assert_eq!(
            party(Some("alice"), "sip:alice@example.com"),
            "sip:alice@example.com"
        );
        assert_eq!(party(Some("12"), "sip:12@pbx"), "sip:12@pbx");
        assert_eq!(party(Some("+1-415"), "sip:+1-415@pbx"), "sip:+1-415@pbx");
        assert_eq!(party(Some("+"), "sip:+@pbx"), "sip:+@pbx");
    }

    #[test]
    fn party_drops_brackets_params_and_headers() {
        assert_eq!(
            party(Some("bob"), "<sip:bob@h:5060;transport=tcp?X=1>"),
            "sip:bob@h:5060"
        );
        assert_eq!(party(Some("bob"), "SIPS:bob@h"), "sips:bob@h");
        assert_eq!(party(None, "bob@h"), "sip:bob@h");
    }

    #[test]
    fn party_tel_uri_uses_its_number() {
        assert_eq!(
            party(None, "tel:+14155550100;phone-context=x"),
            "+14155550100"
        );
        assert_eq!(party(None, "tel:abc"), "tel:abc");
    }
}
