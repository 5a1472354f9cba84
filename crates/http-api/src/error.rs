//! Twilio-shaped error bodies (SPEC §6.1): `{"code", "message", "more_info", "status"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// 401: missing or wrong credentials; also 403 (authenticated, but not for this account).
pub const CODE_AUTH: u32 = 20003;
/// 404: unknown route or resource.
pub const CODE_NOT_FOUND: u32 = 20404;
/// 405: the route exists but not with this method (Twilio's "Method not allowed").
pub const CODE_METHOD: u32 = 20004;
/// 400: a query parameter is malformed or out of range (SPEC §6.1 leaves the 21xxx number to us).
pub const CODE_INVALID_PARAM: u32 = 21400;
/// 500: database or disk failure.
pub const CODE_INTERNAL: u32 = 20500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    /// `Allow` for 405.
    allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            CODE_AUTH,
            "Authenticate: HTTP Basic credentials AccountSid:AuthToken are required",
        )
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            CODE_AUTH,
            "Permission denied: the credentials do not belong to the account in the path",
        )
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            CODE_NOT_FOUND,
            format!("The requested resource {what} was not found"),
        )
    }
    pub fn method_not_allowed(allow: &'static str) -> Self {
        ApiError {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                CODE_METHOD,
                format!("Method not allowed; allowed: {allow}"),
            )
        }
    }
    pub fn invalid_param(name: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            CODE_INVALID_PARAM,
            format!("Invalid query parameter {name}: {why}"),
        )
    }
    pub fn internal(message: &str) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, CODE_INTERNAL, message)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body().to_string(),
        )
            .into_response();
        let headers = resp.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Hark\""),
            );
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_twilio_keys_and_more_info_url() {
        let e = ApiError::not_found("RE1");
        let body = e.body();
        assert_eq!(body["code"], 20404);
        assert_eq!(body["status"], 404);
        assert_eq!(
            body["more_info"],
            "https://www.twilio.com/docs/errors/20404"
        );
        assert_eq!(body["message"], "The requested resource RE1 was not found");
        assert_eq!(body.as_object().map(|o| o.len()), Some(4));
    }

    #[test]
    fn unauthorized_response_carries_basic_challenge() {
        let resp = ApiError::unauthorized().into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"Hark\""
        );
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let resp = ApiError::method_not_allowed("GET, HEAD").into_response();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[header::ALLOW], "GET, HEAD");
    }
}
