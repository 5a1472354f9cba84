//! Twilio's live call update (issue 6): `POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json` with
//! form fields `Twiml`, or `Url` (+ `Method`), redirects a live call to that document;
//! `Status=completed|canceled` hangs it up. Answers the Call resource as re-read from the store.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::control::{CallUpdate, ControlError};
use crate::error::{ApiError, CODE_INVALID_PARAM};
use crate::graph_body::is_http_url;
use crate::resources::call_json;
use crate::rest::{db, json};
use crate::Inner;
use store::{CallSid, CallStatus, HttpMethod};

/// Twilio's "Url is not a valid URL".
pub const CODE_INVALID_URL: u32 = 21205;
/// Twilio's "Call is not in-progress. Cannot redirect."
pub const CODE_CALL_STATE: u32 = 21220;
/// Largest form body read (Twilio caps `Twiml` at 4000 characters).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, CODE_INVALID_PARAM, message)
}

/// The update a form body asks for; empty fields count as absent.
pub fn parse_form(body: &[u8]) -> Result<CallUpdate, ApiError> {
    let mut u = CallUpdate {
        twiml: None,
        url: None,
        method: None,
        status: None,
    };
    let (mut method, mut status) = (None, None);
    for (k, v) in form_urlencoded::parse(body) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let slot = match k.as_ref() {
            "Twiml" => &mut u.twiml,
            "Url" => &mut u.url,
            "Method" => &mut method,
            "Status" => &mut status,
            _ => continue,
        };
        *slot = Some(v.to_string());
    }
    if let Some(url) = &u.url {
        if !is_http_url(url) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                CODE_INVALID_URL,
                format!("Url is not a valid URL: {url}"),
            ));
        }
    }
    if let Some(m) = method {
        u.method = Some(
            m.parse::<HttpMethod>()
                .map_err(|_| invalid(format!("Method must be GET or POST, got {m:?}")))?,
        );
    }
    if let Some(s) = status {
        match s.to_ascii_lowercase().parse::<CallStatus>() {
            Ok(st @ (CallStatus::Completed | CallStatus::Canceled)) => u.status = Some(st),
            _ => {
                return Err(invalid(format!(
                    "Status must be completed or canceled, got {s:?}"
                )))
            }
        }
    }
    if u.twiml.is_none() && u.url.is_none() && u.status.is_none() {
        return Err(invalid("One of Twiml, Url or Status is required"));
    }
    Ok(u)
}

/// A call request's form body, at most [`MAX_BODY_BYTES`].
pub async fn read_form(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                CODE_INVALID_PARAM,
                format!("The request body is over {MAX_BODY_BYTES} bytes or unreadable"),
            )
        })
}

pub async fn update(inner: &Inner, sid: &CallSid, body: Body) -> Result<Response, ApiError> {
    let Some(bot) = inner.api.bot.as_ref() else {
        return Err(ApiError::not_found(sid.as_str()));
    };
    let update = parse_form(&read_form(body).await?)?;
    let hangup_only = update.twiml.is_none() && update.url.is_none();
    let live = match bot.control.update(sid.as_str(), update).await {
        Ok(()) => true,
        Err(ControlError::UnknownCall) => false,
        Err(ControlError::Conflict(msg)) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, CODE_CALL_STATE, msg))
        }
    };
    let (account, owned) = (inner.api.account_sid.clone(), sid.clone());
    let call = db(inner, move |s| s.get_call(&account, &owned))
        .await?
        .ok_or_else(|| ApiError::not_found(sid.as_str()))?;
    // A call that has already ended, as Twilio answers it: hanging it up again is a no-op,
    // redirecting it is 21220.
    if !live && !hangup_only {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            CODE_CALL_STATE,
            "Call is not in-progress. Cannot redirect.",
        ));
    }
    Ok(json(StatusCode::OK, &call_json(&call)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &str) -> Result<CallUpdate, (u32, String)> {
        parse_form(body.as_bytes()).map_err(|e| (e.code, e.message))
    }

    #[test]
    fn twiml_url_method_and_status_are_read_from_the_form() {
        assert_eq!(
            parsed("Twiml=%3CResponse%3E%3CHangup%2F%3E%3C%2FResponse%3E&Other=1"),
            Ok(CallUpdate {
                twiml: Some("<Response><Hangup/></Response>".into()),
                url: None,
                method: None,
                status: None,
            })
        );
        assert_eq!(
            parsed("Url=https%3A%2F%2Fapp%2Fnext&Method=get&Status=Completed"),
            Ok(CallUpdate {
                twiml: None,
                url: Some("https://app/next".into()),
                method: Some(HttpMethod::Get),
                status: Some(CallStatus::Completed),
            })
        );
    }

    #[test]
    fn status_other_than_completed_or_canceled_is_21400() {
        assert_eq!(
            parsed("Status=in-progress"),
            Err((
                21400,
                "Status must be completed or canceled, got \"in-progress\"".into()
            ))
        );
    }

    #[test]
    fn nothing_to_do_bad_url_or_bad_method_is_400() {
        assert_eq!(
            parsed("Method=POST&Twiml="),
            Err((21400, "One of Twiml, Url or Status is required".into()))
        );
        assert_eq!(parsed("").map_err(|e| e.0), Err(21400));
        assert_eq!(parsed("Url=ftp%3A%2F%2Fx").map_err(|e| e.0), Err(21205));
        assert_eq!(
            parsed("Url=http%3A%2F%2Fx&Method=PUT").map_err(|e| e.0),
            Err(21400)
        );
    }
}
