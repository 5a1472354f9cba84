//! `/admin/drain`: taking this node out of a cluster gracefully (`hark drain`). While draining,
//! SIP INVITEs and OPTIONS are answered 503 so the load balancer sends calls elsewhere, and the
//! calls up carry on to their end. Account credentials (Basic), like the REST API.

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use crate::error::ApiError;
use crate::{auth, Inner};

pub const PATH: &str = "/admin/drain";

/// The daemon's draining switch: set by this route and by SIGTERM, read by the SIP task.
#[derive(Clone, Debug)]
pub struct DrainSwitch(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for DrainSwitch {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl DrainSwitch {
    pub fn set(&self, draining: bool) {
        self.0.send_replace(draining);
    }

    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.subscribe()
    }
}

fn status(inner: &Inner) -> Response {
    let body = serde_json::json!({
        "draining": inner.api.drain.is_draining(),
        "active_calls": inner.api.metrics.active_calls.load(Ordering::Relaxed),
        "node_id": inner.api.node_id,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET`: the state. `POST` (form `Draining=true|false`, default true): sets it.
pub(crate) async fn handler(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let api = &inner.api;
    if !auth::authenticated(
        req.headers(),
        api.account_sid.as_str(),
        &api.auth_token,
        &api.api_keys,
    ) {
        return ApiError::unauthorized().into_response();
    }
    match *req.method() {
        Method::GET => status(&inner),
        Method::POST => {
            let Ok(body) = axum::body::to_bytes(req.into_body(), 4096).await else {
                return ApiError::invalid_param("body", "over 4096 bytes").into_response();
            };
            let mut draining = true;
            for (k, v) in form_urlencoded::parse(&body) {
                if k == "Draining" {
                    draining = match v.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return ApiError::invalid_param("Draining", "must be true or false")
                                .into_response()
                        }
                    };
                }
            }
            tracing::warn!(draining, "drain set through the API");
            api.drain.set(draining);
            status(&inner)
        }
        _ => ApiError::method_not_allowed("GET, POST").into_response(),
    }
}
