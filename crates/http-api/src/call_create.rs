//! Twilio's "create a call" (`POST /2010-04-01/Accounts/{AC}/Calls.json`): Hark calls `To`
//! and, once it answers, runs `Url`, `Twiml` or an application's TwiML. Answers `201` with the
//! Call resource (`queued`), as Twilio does.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::call_update::{read_form, CODE_INVALID_URL};
use crate::control::{CreateError, NewCall, CODE_INVALID_TO};
use crate::error::{ApiError, CODE_INVALID_PARAM};
use crate::graph_body::is_http_url;
use crate::resources::call_json;
use crate::rest::json;
use crate::Inner;
use store::HttpMethod;

/// Twilio's "No 'To' number is specified".
pub const CODE_NO_TO: u32 = 21201;
/// Twilio's "No 'From' number is specified".
pub const CODE_NO_FROM: u32 = 21213;
/// Twilio's "Calls Resource" error: no `Url`, `Twiml` or `ApplicationSid` (21205 is a bad URL).
pub const CODE_NO_PROGRAM: u32 = 21200;
/// Twilio's cap on `Timeout`.
const MAX_TIMEOUT_SECS: u32 = 600;
const DEFAULT_TIMEOUT_SECS: u32 = 60;

fn invalid(code: u32, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn method(name: &str, value: Option<String>) -> Result<HttpMethod, ApiError> {
    match value {
        None => Ok(HttpMethod::Post),
        Some(m) => m.parse::<HttpMethod>().map_err(|_| {
            invalid(
                CODE_INVALID_PARAM,
                format!("{name} must be GET or POST, got {m:?}"),
            )
        }),
    }
}

fn url(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(u) if !is_http_url(&u) => Err(invalid(
            CODE_INVALID_URL,
            format!("{name} is not a valid URL: {u}"),
        )),
        other => Ok(other),
    }
}

/// The call a form body asks for; empty fields count as absent.
pub fn parse_form(body: &[u8]) -> Result<NewCall, ApiError> {
    let mut fields: std::collections::HashMap<String, String> = Default::default();
    let mut events = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if k == "StatusCallbackEvent" {
            // Repeated, or space-separated in one field as some helper libraries send it.
            events.extend(v.split_whitespace().map(str::to_string));
        } else {
            fields.insert(k.into_owned(), v.to_string());
        }
    }
    let mut take = |k: &str| fields.remove(k);
    let to = take("To").ok_or_else(|| invalid(CODE_NO_TO, "No 'To' number is specified"))?;
    let from =
        take("From").ok_or_else(|| invalid(CODE_NO_FROM, "No 'From' number is specified"))?;
    if !to.starts_with("client:") {
        return Err(invalid(
            CODE_INVALID_TO,
            format!("Invalid 'To': {to:?}; Hark calls registered clients (client:<identity>)"),
        ));
    }
    let url_field = url("Url", take("Url"))?;
    let twiml = take("Twiml");
    let application_sid = take("ApplicationSid");
    let programs = [
        url_field.is_some(),
        twiml.is_some(),
        application_sid.is_some(),
    ];
    match programs.iter().filter(|p| **p).count() {
        1 => {}
        0 => {
            return Err(invalid(
                CODE_NO_PROGRAM,
                "Url, Twiml or ApplicationSid is required",
            ))
        }
        _ => {
            return Err(invalid(
                CODE_INVALID_PARAM,
                "Give only one of Url, Twiml and ApplicationSid",
            ))
        }
    }
    for e in &events {
        if !matches!(
            e.as_str(),
            "initiated" | "ringing" | "answered" | "completed"
        ) {
            return Err(invalid(
                CODE_INVALID_PARAM,
                format!("StatusCallbackEvent must be initiated, ringing, answered or completed, got {e:?}"),
            ));
        }
    }
    if events.is_empty() {
        events.push("completed".into());
    }
    let timeout_secs = match take("Timeout") {
        None => DEFAULT_TIMEOUT_SECS,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => n,
            _ => {
                return Err(invalid(
                    CODE_INVALID_PARAM,
                    format!("Timeout must be 1 to {MAX_TIMEOUT_SECS} seconds, got {t:?}"),
                ))
            }
        },
    };
    Ok(NewCall {
        to,
        from,
        url: url_field,
        method: method("Method", take("Method"))?,
        twiml,
        application_sid,
        fallback_url: url("FallbackUrl", take("FallbackUrl"))?,
        fallback_method: method("FallbackMethod", take("FallbackMethod"))?,
        status_callback: url("StatusCallback", take("StatusCallback"))?,
        status_callback_method: method("StatusCallbackMethod", take("StatusCallbackMethod"))?,
        status_callback_events: events,
        timeout_secs,
    })
}

pub async fn create(inner: &Inner, body: Body) -> Result<Response, ApiError> {
    let Some(bot) = inner.api.bot.as_ref() else {
        return Err(ApiError::method_not_allowed("GET, HEAD"));
    };
    let call = parse_form(&read_form(body).await?)?;
    match bot.control.create_call(call).await {
        Ok(row) => Ok(json(StatusCode::CREATED, &call_json(&row))),
        Err(CreateError {
            code,
            message,
            unavailable,
        }) => {
            let status = if unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            Err(ApiError::new(status, code, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> u32 {
        parse_form(body.as_bytes()).expect_err(body).code
    }

    #[test]
    fn a_client_call_with_a_url() {
        let c = parse_form(b"To=client%3Aalice&From=%2B15550001111&Url=http%3A%2F%2Fapp%2Fv&Timeout=20&StatusCallback=http%3A%2F%2Fapp%2Fs&StatusCallbackEvent=ringing&StatusCallbackEvent=answered+completed").unwrap();
        assert_eq!(c.to, "client:alice");
        assert_eq!(c.from, "+15550001111");
        assert_eq!(c.url.as_deref(), Some("http://app/v"));
        assert_eq!(c.method, HttpMethod::Post);
        assert_eq!(c.timeout_secs, 20);
        assert_eq!(
            c.status_callback_events,
            ["ringing", "answered", "completed"]
        );
    }

    #[test]
    fn defaults_are_twilios() {
        let c = parse_form(b"To=client:bob&From=me&Twiml=%3CResponse%2F%3E").unwrap();
        assert_eq!(c.timeout_secs, 60);
        assert_eq!(c.status_callback_events, ["completed"]);
        assert_eq!(c.twiml.as_deref(), Some("<Response/>"));
    }

    #[test]
    fn bad_requests_get_twilios_codes() {
        assert_eq!(code("From=me&Url=http://a/b"), CODE_NO_TO);
        assert_eq!(code("To=client:a&Url=http://a/b"), CODE_NO_FROM);
        assert_eq!(code("To=client:a&From=me"), CODE_NO_PROGRAM);
        assert_eq!(
            code("To=%2B15550001111&From=me&Url=http://a/b"),
            CODE_INVALID_TO
        );
        assert_eq!(code("To=client:a&From=me&Url=ftp://a/b"), CODE_INVALID_URL);
        assert_eq!(
            code("To=client:a&From=me&Url=http://a/b&Twiml=x"),
            CODE_INVALID_PARAM
        );
        assert_eq!(
            code("To=client:a&From=me&Url=http://a/b&Timeout=0"),
            CODE_INVALID_PARAM
        );
        assert_eq!(
            code("To=client:a&From=me&Url=http://a/b&Timeout=601"),
            CODE_INVALID_PARAM
        );
        assert_eq!(
            code("To=client:a&From=me&Url=http://a/b&Method=PUT"),
            CODE_INVALID_PARAM
        );
        assert_eq!(
            code("To=client:a&From=me&Url=http://a/b&StatusCallbackEvent=queued"),
            CODE_INVALID_PARAM
        );
    }
}
