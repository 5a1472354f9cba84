//! A call placed by a Voice SDK client (`device.connect()`): what the signalling connection
//! hands the call task, and what the call task asks of that connection. The call itself runs
//! in [`crate::call`] like a SIP call; only its signalling and media differ.

use std::net::SocketAddr;

use call_core::SipInput;
use control::params::ClientApp;
use control::CallInfo;
use store::CallSid;
use tokio::sync::mpsc;

use crate::call_env::{CallEnv, CallSetup};

/// The client's `invite`, accepted by its signalling connection.
pub struct ClientIncoming {
    /// The SDK's own id for the call (`TJS…`) until we name it.
    pub temp_callsid: String,
    pub offer_sdp: String,
    pub identity: String,
    /// `connect({params})` then the token's outgoing params; `To` is among them.
    pub params: Vec<(String, String)>,
    pub application_sid: String,
    /// Where the signalling came from: the browser's family and route for the ICE candidate.
    pub peer: SocketAddr,
    /// Frames for the browser go through its connection.
    pub commands: mpsc::Sender<ClientCommand>,
    pub connection: u64,
    pub events: mpsc::Receiver<ClientEvent>,
    /// Sent with our answer: the client rebinds the call with it after a signalling drop or a
    /// token update (`invite{reconnect}`).
    pub reconnect: String,
    /// The sending side of `events`, for a connection that rebinds the call.
    pub rebind: mpsc::Sender<ClientEvent>,
}

/// What a client's connection tells one of its calls.
#[derive(Debug)]
pub enum ClientEvent {
    /// Hang-up, keys: as a SIP dialog would report them.
    Input(SipInput),
    /// The client accepted a call we placed to it, on connection `connection`.
    Answered { connection: u64, sdp: String },
    /// The client hung up on connection `connection` (an answered call, or a device that was
    /// ringing).
    HungUp { connection: u64 },
    /// The client declined a call we placed to it (`call.reject()`).
    Rejected { connection: u64 },
    /// The connection could not ring (it unregistered meanwhile).
    Gone { connection: u64 },
    /// The client's WebSocket closed; it may come back with `invite{reconnect}`.
    SignallingLost { connection: u64 },
    /// The client rebound the call (`invite{reconnect}`) on `connection`: frames go there now.
    Rebound {
        connection: u64,
        commands: mpsc::Sender<ClientCommand>,
    },
}

/// A call Hark places to a registered identity (`POST Calls.json` with `To=client:…`).
pub struct ClientOutgoing {
    pub identity: String,
    pub call: http_api::control::NewCall,
    /// What runs once the client answers (the request's `Url`/`Twiml`, or its application's).
    pub app: crate::config::AppConfig,
    /// Gets the call's row once it is written.
    pub started: tokio::sync::oneshot::Sender<store::CallRecord>,
}

/// What a client call asks of its signalling connection.
#[derive(Debug)]
pub enum ClientCommand {
    Ringing {
        temp_callsid: String,
        call_sid: String,
    },
    Answer {
        temp_callsid: String,
        call_sid: String,
        sdp: String,
        reconnect: String,
    },
    Hangup {
        call_sid: String,
    },
    /// Refused before answer (`<Reject>`, a failure): 31486 busy, 31603 declined.
    Reject {
        temp_callsid: String,
        status: u16,
    },
    /// Ring the client with our offer; what it does comes back on `events`.
    Invite {
        call_sid: String,
        sdp: String,
        parameters: client_signal::IncomingParameters,
        events: mpsc::Sender<ClientEvent>,
        reconnect: String,
    },
    /// Stop ringing (ring timeout, the call was canceled, another device answered).
    Cancel {
        call_sid: String,
    },
}

impl CallEnv {
    /// Twilio's view of a call placed to a client: From as given, To `client:<identity>`.
    pub(crate) fn outgoing_setup(&self, out: &ClientOutgoing, call_sid: &CallSid) -> CallSetup {
        let info = CallInfo {
            call_sid: call_sid.clone(),
            account_sid: self.config.account_sid.clone(),
            from: out.call.from.clone(),
            to: out.call.to.clone(),
            forwarded_from: None,
            caller_name: None,
            client: None,
            direction: store::Direction::OutboundApi,
        };
        tracing::info!(from = %info.from, to = %info.to, "calling a client");
        CallSetup {
            info,
            app: out.app.clone(),
            request_id: None,
        }
    }

    /// Twilio's view of a client call: From/Caller `client:<identity>`, To from the params,
    /// Called empty, ApplicationSid and each param as its own field.
    pub(crate) fn client_setup(&self, client: &ClientIncoming, call_sid: &CallSid) -> CallSetup {
        let to = client
            .params
            .iter()
            .find(|(k, _)| k == "To")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let info = CallInfo {
            call_sid: call_sid.clone(),
            account_sid: self.config.account_sid.clone(),
            from: format!("client:{}", client.identity),
            to,
            forwarded_from: None,
            caller_name: None,
            client: Some(ClientApp {
                application_sid: client.application_sid.clone(),
                params: client
                    .params
                    .iter()
                    .filter(|(k, _)| k != "To")
                    .cloned()
                    .collect(),
            }),
            direction: store::Direction::Inbound,
        };
        let app = self
            .config
            .application(&client.application_sid)
            .map(|a| a.app.clone())
            .unwrap_or_else(|| self.config.app.clone());
        tracing::info!(from = %info.from, to = %info.to, application = %client.application_sid, peer = %client.peer, "incoming client call");
        CallSetup {
            info,
            app,
            request_id: None,
        }
    }
}
