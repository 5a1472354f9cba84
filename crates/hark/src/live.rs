//! Live call control (issue 6): the registry of running calls, the messages the HTTP API sends
//! them, and the daemon's [`CallControl`] implementation.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use control::{CallStatus, HttpMethod};
use http_api::control::{
    BoxFuture, CallControl, CallState, CallUpdate, CallView, ControlError, CreateError,
    LiveCallView, NewCall, OperationRequest, OperationStatus, OperationView,
};
use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio::sync::{mpsc, watch};

/// What the API asks of a running call: the call core's control input.
pub use call_core::{ControlInput as ControlMsg, Redirect};

/// Control messages queued per call. The API sends a handful per call at most; a call task
/// reads them within milliseconds except while it waits on a fetch.
const CONTROL_CAPACITY: usize = 32;
/// How long an API request waits for room in a call's full queue before it is refused.
const CONTROL_WAIT: Duration = Duration::from_secs(5);
/// `hark_channel_overflow_total` label of the per-call control queue.
pub const CHANNEL_CONTROL: &str = "live_control";

/// Operations kept per call for `GET …/operations/{id}` (oldest dropped first).
const KEPT_OPERATIONS: usize = 200;

/// A running call as the API sees it.
pub struct CallEntry {
    tx: mpsc::Sender<ControlMsg>,
    changes: Arc<watch::Sender<u64>>,
    state: Mutex<EntryState>,
}

struct EntryState {
    view: CallView,
    direction: &'static str,
    started_ms: i64,
    activity: call_core::LiveActivity,
    operations: HashMap<String, OperationView>,
    order: VecDeque<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CallEntry {
    pub fn set_state(&self, state: CallState) {
        lock(&self.state).view.state = state;
        self.changed();
    }

    /// The live view changed: wake its watchers.
    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn live_view(&self) -> LiveCallView {
        let st = lock(&self.state);
        LiveCallView {
            sid: st.view.id.clone(),
            from: st.view.from.clone(),
            to: st.view.to.clone(),
            direction: st.direction.to_string(),
            state: st.view.state,
            started_ms: st.started_ms,
            legs: st.activity.legs,
            verb: st.activity.verb.to_string(),
            recording: st.activity.recording.as_str().to_string(),
            bot: st.view.bot,
            node: String::new(),
        }
    }

    /// The call has ended (its task may still be reporting): nothing can be sent to it.
    pub fn is_terminated(&self) -> bool {
        lock(&self.state).view.state == CallState::Terminated
    }

    pub fn set_bot(&self, bot: bool) {
        lock(&self.state).view.bot = bot;
        self.changed();
    }

    /// What the call core says the API should now show.
    pub fn apply(&self, update: call_core::LiveUpdate) {
        match update {
            call_core::LiveUpdate::BotMode => self.set_bot(true),
            call_core::LiveUpdate::Established => self.set_state(CallState::Established),
            call_core::LiveUpdate::Terminated => self.set_state(CallState::Terminated),
            call_core::LiveUpdate::Activity(activity) => {
                lock(&self.state).activity = activity;
                self.changed();
            }
        }
    }

    /// Records the operation's current state (created or updated).
    pub fn put_operation(&self, op: OperationView) {
        let mut st = lock(&self.state);
        if !st.operations.contains_key(&op.id) {
            st.order.push_back(op.id.clone());
            while st.order.len() > KEPT_OPERATIONS {
                if let Some(old) = st.order.pop_front() {
                    st.operations.remove(&old);
                }
            }
        }
        st.operations.insert(op.id.clone(), op);
    }

    pub fn operation(&self, id: &str) -> Option<OperationView> {
        lock(&self.state).operations.get(id).cloned()
    }
}

/// Running calls by CallSid.
pub struct Registry {
    calls: Mutex<HashMap<String, Arc<CallEntry>>>,
    /// The other nodes' running calls, as they last reported them (a cluster).
    peers: Mutex<Vec<LiveCallView>>,
    /// Bumped on every change of what the live view shows.
    changes: Arc<watch::Sender<u64>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            calls: Mutex::default(),
            peers: Mutex::default(),
            changes: Arc::new(watch::channel(0).0),
        }
    }
}

/// A call's place in the [`Registry`], for as long as its task holds this.
pub struct Registration {
    registry: Arc<Registry>,
    pub entry: Arc<CallEntry>,
    id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.entry.set_state(CallState::Terminated);
        self.registry.remove(&self.id);
    }
}

impl Registry {
    /// Registers a call until the [`Registration`] is dropped; the receiver is the call task's.
    pub fn register(
        self: &Arc<Self>,
        view: CallView,
        direction: &'static str,
    ) -> (Registration, mpsc::Receiver<ControlMsg>) {
        let id = view.id.clone();
        let (entry, rx) = self.insert(view, direction);
        let registration = Registration {
            registry: self.clone(),
            entry,
            id,
        };
        (registration, rx)
    }

    fn insert(
        &self,
        view: CallView,
        direction: &'static str,
    ) -> (Arc<CallEntry>, mpsc::Receiver<ControlMsg>) {
        let (tx, rx) = mpsc::channel(CONTROL_CAPACITY);
        let entry = Arc::new(CallEntry {
            tx,
            changes: self.changes.clone(),
            state: Mutex::new(EntryState {
                view: view.clone(),
                direction,
                started_ms: crate::outbox::now_ms(),
                activity: call_core::LiveActivity {
                    legs: 1,
                    ..Default::default()
                },
                operations: HashMap::new(),
                order: VecDeque::new(),
            }),
        });
        lock(&self.calls).insert(view.id, entry.clone());
        entry.changed();
        (entry, rx)
    }

    pub fn remove(&self, id: &str) {
        if lock(&self.calls).remove(id).is_some() {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Every call in the registry (terminated ones are leaving), and with `everywhere` the
    /// other nodes' too; oldest first.
    pub fn live_calls(&self, everywhere: bool) -> Vec<LiveCallView> {
        let entries: Vec<Arc<CallEntry>> = lock(&self.calls).values().cloned().collect();
        let mut calls: Vec<LiveCallView> = entries
            .iter()
            .map(|e| e.live_view())
            .filter(|v| v.state != CallState::Terminated)
            .collect();
        if everywhere {
            calls.extend(lock(&self.peers).iter().cloned());
        }
        calls.sort_by(|a, b| (a.started_ms, &a.sid).cmp(&(b.started_ms, &b.sid)));
        calls
    }

    pub fn live_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// What the other nodes run now; watchers are woken when it changed.
    pub fn set_peer_calls(&self, mut calls: Vec<LiveCallView>) {
        calls.sort_by(|a, b| (a.started_ms, &a.sid).cmp(&(b.started_ms, &b.sid)));
        let mut peers = lock(&self.peers);
        if *peers != calls {
            *peers = calls;
            drop(peers);
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<CallEntry>> {
        lock(&self.calls).get(id).cloned()
    }
}

/// The daemon's side of the API. Holds the registry weakly so it never keeps calls alive.
pub struct DaemonControl {
    pub registry: Weak<Registry>,
    pub store: Arc<store::Store>,
    pub account_sid: store::AccountSid,
    pub metrics: Arc<http_api::Metrics>,
    /// Registered clients and, once up, the call machinery: for calls the API places.
    pub signal: Arc<crate::signal::SignalState>,
    /// URLs in authenticated requests are the operator's: their hosts become fetchable.
    pub egress: Arc<crate::egress::Egress>,
}

/// Twilio's "Invalid ApplicationSid".
const CODE_INVALID_APPLICATION: u32 = 21218;

impl DaemonControl {
    /// What a placed call runs: the request's `Url`/`Twiml`, or the named application's
    /// settings (Twilio then ignores the request's URLs and status callback).
    fn placed_app(
        env: &crate::call_env::CallEnv,
        call: &NewCall,
    ) -> Result<crate::config::AppConfig, CreateError> {
        if let Some(sid) = &call.application_sid {
            return env
                .config
                .application(sid)
                .map(|a| a.app.clone())
                .ok_or_else(|| CreateError {
                    code: CODE_INVALID_APPLICATION,
                    message: format!("ApplicationSid {sid} is not a configured [[application]]"),
                    unavailable: false,
                });
        }
        Ok(crate::config::AppConfig {
            voice_url: call.url.clone(),
            voice_method: call.method,
            twiml: call.twiml.clone().unwrap_or_default(),
            fallback_url: call.fallback_url.clone(),
            fallback_method: call.fallback_method,
            status_callback: call.status_callback.clone(),
            status_callback_method: call.status_callback_method,
            bot_callback_uri: None,
        })
    }

    /// The call `id` while it runs (not yet terminated): what a live update or a recording
    /// change may act on.
    fn running(&self, id: &str) -> Result<Arc<CallEntry>, ControlError> {
        self.registry
            .upgrade()
            .and_then(|r| r.get(id))
            .filter(|e| !e.is_terminated())
            .ok_or(ControlError::UnknownCall)
    }

    /// Queues `msg` for the call. A full queue is backpressure: the request waits (counted) up
    /// to [`CONTROL_WAIT`] for the call to take a message, then is refused.
    async fn deliver(&self, entry: &CallEntry, msg: ControlMsg) -> Result<(), ControlError> {
        let msg = match entry.tx.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(ControlError::UnknownCall),
            Err(TrySendError::Full(msg)) => msg,
        };
        let n = self.metrics.channel_overflows.count(CHANNEL_CONTROL);
        tracing::warn!(
            capacity = CONTROL_CAPACITY,
            overflows = n,
            "call's control queue full; the request waits"
        );
        match entry.tx.send_timeout(msg, CONTROL_WAIT).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(_)) => Err(ControlError::UnknownCall),
            Err(SendTimeoutError::Timeout(_)) => Err(ControlError::Conflict(format!(
                "the call has {CONTROL_CAPACITY} requests waiting; try again later"
            ))),
        }
    }
}

fn operation_kind(request: &OperationRequest) -> &'static str {
    match request {
        OperationRequest::RecordResponse(_) => "recordOperation",
        OperationRequest::PlayPrompt(_) => "playPromptOperation",
        OperationRequest::SubscribeToTone { .. } => "subscribeToToneOperation",
    }
}

fn client_context(request: &OperationRequest) -> Option<String> {
    match request {
        OperationRequest::RecordResponse(r) => r.client_context.clone(),
        OperationRequest::PlayPrompt(p) => p.client_context.clone(),
        OperationRequest::SubscribeToTone { client_context } => client_context.clone(),
    }
}

impl CallControl for DaemonControl {
    fn live_calls(&self, everywhere: bool) -> Vec<LiveCallView> {
        self.registry
            .upgrade()
            .map(|r| r.live_calls(everywhere))
            .unwrap_or_default()
    }

    fn live_changes(&self) -> Option<watch::Receiver<u64>> {
        self.registry.upgrade().map(|r| r.live_changes())
    }

    fn call(&self, id: &str) -> BoxFuture<'_, Option<CallView>> {
        let id = id.to_string();
        Box::pin(async move {
            if let Some(entry) = self.registry.upgrade().and_then(|r| r.get(&id)) {
                return Some(lock(&entry.state).view.clone());
            }
            // An ended call is still known: `terminated`.
            let store = self.store.clone();
            let account = self.account_sid.clone();
            // Not a CallSid: no call of ours, ended or not.
            let sid: store::CallSid = id.parse().ok()?;
            let row = tokio::task::spawn_blocking(move || store.get_call(&account, &sid))
                .await
                .ok()?
                .ok()??;
            Some(CallView {
                id: row.sid.into_string(),
                state: CallState::Terminated,
                from: row.from,
                to: row.to,
                bot: false,
            })
        })
    }

    fn hang_up(&self, id: &str) -> BoxFuture<'_, bool> {
        let entry = self.registry.upgrade().and_then(|r| r.get(id));
        Box::pin(async move {
            match entry {
                Some(e) => self.deliver(&e, ControlMsg::HangUp).await.is_ok(),
                None => false,
            }
        })
    }

    fn start_operation(
        &self,
        id: &str,
        request: OperationRequest,
    ) -> BoxFuture<'_, Result<OperationView, ControlError>> {
        // A bot's prompt URIs come from the authenticated bot API.
        self.egress.trust_urls_in(&format!("{request:?}"), true);
        let entry = self.registry.upgrade().and_then(|r| r.get(id));
        let call_id = id.to_string();
        Box::pin(async move {
            let entry = entry.ok_or(ControlError::UnknownCall)?;
            if !lock(&entry.state).view.bot {
                return Err(ControlError::Conflict(
                    "this call runs TwiML; operations need a bot application (app.bot_callback_uri)".into(),
                ));
            }
            let op = OperationView {
                id: uuid_like(),
                call_id,
                kind: operation_kind(&request).into(),
                // Graph answers `running`: the operation is accepted and will run in turn.
                status: OperationStatus::Running,
                result_info: None,
                recording_location: None,
                recording_access_token: None,
                client_context: client_context(&request),
            };
            entry.put_operation(op.clone());
            let msg = ControlMsg::Operation {
                id: op.id.clone(),
                request,
            };
            self.deliver(&entry, msg).await?;
            Ok(op)
        })
    }

    fn operation(&self, id: &str, operation_id: &str) -> BoxFuture<'_, Option<OperationView>> {
        let found = self
            .registry
            .upgrade()
            .and_then(|r| r.get(id))
            .and_then(|e| e.operation(operation_id));
        Box::pin(async move { found })
    }

    fn start_recording(
        &self,
        call_sid: &str,
        request: control::recording_control::LiveRecordingRequest,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        if let Some(callback) = &request.status_callback {
            self.egress.trust_urls_in(&callback.url, true);
        }
        let entry = self.running(call_sid);
        Box::pin(async move {
            let entry = entry?;
            if lock(&entry.state).view.state != CallState::Established {
                return Err(ControlError::Conflict(
                    "the call is not in progress: it can be recorded once answered".into(),
                ));
            }
            self.deliver(&entry, ControlMsg::StartRecording(request))
                .await
        })
    }

    fn change_recording(
        &self,
        call_sid: &str,
        sid: store::RecordingSid,
        change: control::recording_control::RecordingChange,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        let entry = self.running(call_sid);
        Box::pin(async move {
            let entry = entry?;
            let msg = ControlMsg::ChangeRecording {
                sid: Some(sid),
                change,
            };
            self.deliver(&entry, msg).await
        })
    }

    fn update(
        &self,
        call_sid: &str,
        update: CallUpdate,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        for text in [&update.url, &update.twiml].into_iter().flatten() {
            self.egress.trust_urls_in(text, true);
        }
        let entry = self.running(call_sid);
        Box::pin(async move {
            let entry = entry?;
            let msg = match (&update.status, &update.twiml, &update.url) {
                (Some(CallStatus::Completed | CallStatus::Canceled), _, _) => ControlMsg::HangUp,
                (Some(s), _, _) => {
                    return Err(ControlError::Conflict(format!(
                        "Status {:?} is not completed or canceled",
                        s.as_str()
                    )))
                }
                (None, Some(twiml), _) => ControlMsg::Redirect(Redirect::Twiml(twiml.clone())),
                (None, None, Some(url)) => {
                    let method = update.method.unwrap_or(HttpMethod::Post);
                    ControlMsg::Redirect(Redirect::Url(url.clone(), method))
                }
                (None, None, None) => {
                    return Err(ControlError::Conflict("give Twiml, Url or Status".into()))
                }
            };
            self.deliver(&entry, msg).await
        })
    }

    fn create_call(&self, call: NewCall) -> BoxFuture<'_, Result<store::CallRecord, CreateError>> {
        for text in [
            &call.url,
            &call.twiml,
            &call.fallback_url,
            &call.status_callback,
        ]
        .into_iter()
        .flatten()
        {
            self.egress.trust_urls_in(text, true);
        }
        Box::pin(async move {
            let unavailable = |message: &str| CreateError {
                code: 20500,
                message: message.to_string(),
                unavailable: true,
            };
            let env = self
                .signal
                .calls
                .get()
                .ok_or_else(|| unavailable("Hark is starting; no calls yet"))?;
            if *env.shutdown.borrow() {
                return Err(unavailable("Hark is shutting down"));
            }
            let identity = call
                .to
                .strip_prefix("client:")
                .filter(|i| !i.is_empty())
                .ok_or_else(|| CreateError {
                    code: http_api::control::CODE_INVALID_TO,
                    message: format!("Invalid 'To': {:?}", call.to),
                    unavailable: false,
                })?
                .to_string();
            let app = Self::placed_app(env, &call)?;
            let (started, row) = tokio::sync::oneshot::channel();
            let outgoing = crate::client_call::ClientOutgoing {
                identity,
                call,
                app,
                started,
            };
            crate::call::spawn_to_client(env.clone(), outgoing);
            row.await
                .map_err(|_| unavailable("the call ended before its row was written"))
        })
    }
}

/// A Graph-style operation id (random, UUID-shaped).
pub fn uuid_like() -> String {
    let b: u128 = rand::random();
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
