//! Carrying out the steps of a [`CallFlow`]: documents, prompts, `<Gather>`, errors.

use std::sync::Arc;
use std::time::Duration;

use control::flow::{FlowOptions, GatherStep, PromptStep};
use control::twiml::{classify_content_type, ContentKind};
use control::{CallFlow, Document, HttpMethod, Step, TwimlError};
use tokio::time::Instant;

use crate::call::{Call, Interrupt};
use crate::webhook::Answer;

/// Twilio's codes for the failures of SPEC §2.2.
const RETRIEVAL_FAILURE: u32 = 11200;
const BAD_CONTENT_TYPE: u32 = 12300;

/// What the caller hears when the application fails and there is no fallback.
const APP_ERROR_TEXT: &str = "We are sorry, an application error has occurred. Goodbye.";

/// The outcome of fetching a document.
enum Fetched {
    Twiml(Document, String),
    Text(String, String),
    Audio(String),
    Failed { code: u32, url: String },
}

impl Call {
    pub(crate) async fn execute(&mut self) {
        let mut flow = if self.app.bot_callback_uri.is_some() {
            // A bot application: the bot drives the call until it hangs up or redirects it.
            self.run_bot().await;
            match self.redirect.take() {
                Some(to) if !self.hung_up() => self.redirected_flow(to).await,
                _ => return,
            }
        } else {
            self.initial_flow().await
        };
        loop {
            if let Some(to) = self.redirect.take() {
                if self.hung_up() {
                    break;
                }
                flow = self.redirected_flow(to).await;
            }
            let step = flow.next_step();
            tracing::debug!(?step, "step");
            if self.interrupted() && !self.hung_up() && self.redirect.is_none() {
                break;
            }
            // After a hangup only the (discarded) action request of a `<Record>` still runs.
            if self.hung_up()
                && !matches!(
                    step,
                    Step::Fetch {
                        discard_answer: true,
                        ..
                    }
                )
            {
                break;
            }
            if step.needs_media() {
                self.answer().await;
            }
            match step {
                Step::Play { url, loops, digits } => {
                    let _ = self.run_play(&url, loops, digits.as_deref()).await;
                }
                Step::Pause { secs } => {
                    let _ = self.pause(secs).await;
                }
                Step::Say {
                    text,
                    voice,
                    language,
                    loops,
                } => {
                    let _ = self.say(&text, &voice, &language, loops).await;
                }
                Step::Record(verb) => match self.record(&verb).await {
                    Some(result) => flow.record_finished(result),
                    None if self.redirect.is_some() => continue,
                    None => break,
                },
                Step::Gather(gather) => match self.gather(&gather).await {
                    Ok((digits, key)) => flow.gather_finished(digits, key),
                    Err(_) if self.redirect.is_some() => continue,
                    Err(_) => break,
                },
                Step::Fetch {
                    url,
                    method,
                    extra,
                    discard_answer,
                } => {
                    let mut params = self.standard_params();
                    params.extend(extra);
                    match self.fetch(&url, method, &params).await {
                        _ if discard_answer => {}
                        Fetched::Twiml(doc, url) => flow.document_fetched(doc, url),
                        Fetched::Text(text, url) => flow.text_fetched(&text, url),
                        Fetched::Audio(url) => flow.audio_fetched(url),
                        Fetched::Failed { code, url } => flow.fetch_failed(code, &url),
                    }
                }
                Step::Hangup => break,
                Step::Reject { status } => {
                    // Before answer the call is never answered; after, a plain hangup.
                    self.reject(status);
                    break;
                }
                Step::AppError { code } => {
                    self.app_error(code).await;
                    break;
                }
                Step::End => break,
            }
        }
    }

    /// The flow of a live update: the given TwiML, or the document at the URL.
    async fn redirected_flow(&mut self, to: crate::live::Redirect) -> CallFlow {
        let options = FlowOptions {
            fallback_url: self.app.fallback_url.clone(),
            fallback_method: self.app.fallback_method,
        };
        match to {
            crate::live::Redirect::Twiml(twiml) => match self.parse(&twiml, "api:Twiml") {
                Ok(doc) => CallFlow::with_options(doc, None, options),
                Err(e) => CallFlow::initial_failure(e.code(), "api:Twiml", options),
            },
            crate::live::Redirect::Url(url, method) => {
                let params = self.standard_params();
                match self.fetch(&url, method, &params).await {
                    Fetched::Twiml(doc, url) => CallFlow::with_options(doc, Some(url), options),
                    Fetched::Text(text, url) => {
                        CallFlow::with_options(Document::say_then_hangup(&text), Some(url), options)
                    }
                    Fetched::Audio(url) => {
                        CallFlow::with_options(Document::play_then_hangup(&url), Some(url), options)
                    }
                    Fetched::Failed { code, url } => CallFlow::initial_failure(code, &url, options),
                }
            }
        }
    }

    async fn initial_flow(&mut self) -> CallFlow {
        let options = FlowOptions {
            fallback_url: self.app.fallback_url.clone(),
            fallback_method: self.app.fallback_method,
        };
        let Some(url) = self.app.voice_url.clone() else {
            // Validated when the config was loaded.
            let twiml = self.app.twiml.clone();
            return match self.parse(&twiml, "config:app.twiml") {
                Ok(doc) => CallFlow::with_options(doc, None, options),
                Err(e) => CallFlow::initial_failure(e.code(), "config:app.twiml", options),
            };
        };
        let params = self.standard_params();
        match self.fetch(&url, self.app.voice_method, &params).await {
            Fetched::Twiml(doc, url) => CallFlow::with_options(doc, Some(url), options),
            Fetched::Text(text, url) => {
                CallFlow::with_options(Document::say_then_hangup(&text), Some(url), options)
            }
            Fetched::Audio(url) => {
                CallFlow::with_options(Document::play_then_hangup(&url), Some(url), options)
            }
            Fetched::Failed { code, url } => CallFlow::initial_failure(code, &url, options),
        }
    }

    fn parse(&self, body: &str, url: &str) -> Result<Document, TwimlError> {
        match control::twiml::parse_document(body, &self.shared.config.parse_limits()) {
            Ok(doc) => {
                for w in &doc.warnings {
                    tracing::warn!(url, verb = w.verb, attribute = w.attribute, value = %w.value, reason = %w.reason, "TwiML attribute replaced by its default");
                }
                Ok(doc)
            }
            Err(e) => {
                let excerpt: String = body.chars().take(160).collect();
                tracing::error!(code = e.code(), url, error = %e, excerpt = %excerpt, "TwiML rejected");
                Err(e)
            }
        }
    }

    /// Fetches a document and classifies the answer (SPEC §2.1, §2.2).
    async fn fetch(
        &mut self,
        url: &str,
        method: HttpMethod,
        params: &[(String, String)],
    ) -> Fetched {
        let webhooks = self.shared.webhooks.clone();
        let request = webhooks.fetch(url, method, params);
        // Keep serving SIP events and the ring while the application thinks.
        let answer: Answer = match self.wait_allowing_hangup(request).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::error!(code = RETRIEVAL_FAILURE, url, error = %e, "TwiML request failed");
                return Fetched::Failed {
                    code: RETRIEVAL_FAILURE,
                    url: url.to_string(),
                };
            }
            Err(_) => {
                return Fetched::Failed {
                    code: RETRIEVAL_FAILURE,
                    url: url.to_string(),
                };
            }
        };
        match classify_content_type(&answer.content_type) {
            ContentKind::Twiml => {
                let parsed = if answer.oversized {
                    let e = TwimlError::TooLarge {
                        size: answer.body.len(),
                        limit: self.shared.config.parse_limits().max_bytes,
                    };
                    tracing::error!(code = e.code(), url = %answer.url, error = %e, "TwiML rejected");
                    Err(e)
                } else {
                    self.parse(&answer.body, &answer.url)
                };
                match parsed {
                    Ok(doc) => Fetched::Twiml(doc, answer.url),
                    Err(e) => Fetched::Failed {
                        code: e.code(),
                        url: answer.url,
                    },
                }
            }
            ContentKind::Text => Fetched::Text(answer.body, answer.url),
            ContentKind::Audio => Fetched::Audio(answer.url),
            ContentKind::Unsupported => {
                let excerpt: String = answer.body.chars().take(160).collect();
                tracing::error!(code = BAD_CONTENT_TYPE, url = %answer.url, content_type = %answer.content_type, excerpt = %excerpt, "answer has an unsupported content type");
                Fetched::Failed {
                    code: BAD_CONTENT_TYPE,
                    url: answer.url,
                }
            }
        }
    }

    async fn run_play(
        &mut self,
        url: &str,
        loops: u32,
        digits: Option<&str>,
    ) -> Result<(), Interrupt> {
        if let Some(digits) = digits {
            return self.play_digits(digits).await;
        }
        let audio = self.shared.audio.clone();
        match self.wait(audio.load(url)).await? {
            Ok(samples) => self.play(samples, loops).await,
            Err(e) => {
                tracing::warn!(code = RETRIEVAL_FAILURE, url, error = %e, "<Play> skipped");
                Ok(())
            }
        }
    }

    async fn pause(&mut self, secs: u32) -> Result<(), Interrupt> {
        let second = self.shared.silence_second.clone();
        self.play(second, secs.max(1)).await
    }

    async fn say(
        &mut self,
        text: &str,
        voice: &str,
        language: &str,
        loops: u32,
    ) -> Result<(), Interrupt> {
        let tts = self.shared.tts.clone();
        match self.wait(tts.render(text, voice, language)).await? {
            Ok(samples) => {
                // What Hark said is part of the call's transcript (speaker `system`).
                let event = store::CallEvent {
                    call_sid: self.info.call_sid.clone(),
                    at_ms: crate::outbox::now_ms(),
                    speaker: "system".into(),
                    text: text.to_string(),
                    duration_sec: samples.len() as f64 / 8000.0 * f64::from(loops.max(1)),
                };
                self.shared.db(move |s| s.insert_call_event(&event)).await;
                self.play(samples, loops).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "<Say> could not be rendered; skipped");
                Ok(())
            }
        }
    }

    /// `<Gather input="dtmf">` (SPEC §4): prompts play until the first key; then keys are
    /// collected until `numDigits`, the finish key (after at least one digit) or `timeout`
    /// seconds without a key. Returns the digits (without the finish key) and that key.
    async fn gather(&mut self, gather: &GatherStep) -> Result<(String, Option<char>), Interrupt> {
        self.keys.clear();
        self.interrupt_on_key = true;
        let result = self.collect_keys(gather).await;
        self.interrupt_on_key = false;
        self.keys.clear();
        result
    }

    async fn collect_keys(
        &mut self,
        gather: &GatherStep,
    ) -> Result<(String, Option<char>), Interrupt> {
        for prompt in &gather.prompts {
            let played = match prompt {
                PromptStep::Say {
                    text,
                    voice,
                    language,
                    loops,
                } => self.say(text, voice, language, *loops).await,
                PromptStep::Play { url, loops, digits } => {
                    self.run_play(url, *loops, digits.as_deref()).await
                }
                PromptStep::Pause { secs } => self.pause(*secs).await,
            };
            match played {
                Err(Interrupt::Gone) => return Err(Interrupt::Gone),
                Err(Interrupt::Key) => break,
                Ok(()) => {}
            }
        }
        let timeout = Duration::from_secs(u64::from(gather.timeout_secs.max(1)));
        let mut digits = String::new();
        let mut deadline = Instant::now() + timeout;
        loop {
            while let Some(key) = self.keys.pop_front() {
                if Some(key) == gather.finish_on_key {
                    if digits.is_empty() {
                        continue; // submits only after at least one digit (SPEC §4)
                    }
                    return Ok((digits, Some(key)));
                }
                digits.push(key);
                deadline = Instant::now() + timeout;
                if gather
                    .num_digits
                    .is_some_and(|n| digits.chars().count() >= n as usize)
                {
                    return Ok((digits, None));
                }
            }
            match self.wait(tokio::time::sleep_until(deadline)).await {
                Ok(()) => return Ok((digits, None)), // timeout
                Err(Interrupt::Key) => continue,
                Err(Interrupt::Gone) => return Err(Interrupt::Gone),
            }
        }
    }

    /// No (working) fallback: a short error prompt and hang up, or 500 before answer.
    async fn app_error(&mut self, code: u32) {
        tracing::error!(code, "application error: no fallback; ending the call");
        if !self.answered {
            self.reject(500);
            return;
        }
        let tts = self.shared.tts.clone();
        let prompt: Arc<[i16]> = match self.wait(tts.render(APP_ERROR_TEXT, "man", "en-US")).await {
            Ok(Ok(samples)) => samples,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "error prompt could not be rendered; playing tones");
                media_engine::tone::error_tones().into()
            }
            Err(_) => return,
        };
        let _ = self.play(prompt, 1).await;
    }
}
