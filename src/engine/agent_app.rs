//! The voice agent as a call application: the pipeline
//! ([`crate::agent::pipeline::run`]), or the OpenAI Realtime agent
//! ([`run_realtime`]), on the call's media and signalling.
//!
//! The caller's frames reach the agent through a
//! [`FrameSwitch`](super::bridge::FrameSwitch), so that a transfer's
//! bridge can take them over from the agent (see [`super::transfer`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{info, warn};

use super::Ctx;
use super::app::{AppIo, until_ended, wait_end};
use super::bridge::FrameSwitch;
use super::screening::{self, Screened};
use super::transfer::{self, TransferJob};
use crate::agent::openai::realtime_agent::{self, run_realtime};
use crate::agent::pipeline::{self, CallControl, Line};
use crate::agent::provider::CallInfo;
use crate::agent::service::{AgentRequest, AgentResult, AgentRun};
use crate::api::validate::{DenyList, callable};
use crate::call::{CallCommand, CallDirection, CallEvent, CallHandle, CallRegistry};
use crate::rtp::MediaHandle;

/// Caller frames queued for the pipeline: a second, as the media
/// session's own queue holds; the pipeline reads them as they come.
const AGENT_FRAMES: usize = 50;

/// The agent's audio path: the RTP session's paced queue.
struct MediaLine {
    sink: tokio::sync::mpsc::Sender<Vec<i16>>,
    media: MediaHandle,
}

impl Line for MediaLine {
    fn sink(&self) -> &tokio::sync::mpsc::Sender<Vec<i16>> {
        &self.sink
    }

    async fn flush(&self) {
        let _ = self.media.flush_with_fade().await;
    }
}

/// The agent's hold on the call.
struct EngineControl {
    handle: CallHandle,
    registry: CallRegistry,
    publish: tokio::sync::broadcast::Sender<CallEvent>,
    deny: Arc<DenyList>,
    ctx: Arc<Ctx>,
    media: MediaHandle,
    switch: Arc<FrameSwitch>,
    trunk: Option<String>,
    /// Set once a transfer's bridge has taken the call.
    bridged: Arc<AtomicBool>,
    /// The agent's configured transfer target: the only `sip:` URI a
    /// transfer may go to.
    configured: Option<String>,
}

impl CallControl for EngineControl {
    fn hangup(&self) {
        let _ = self.handle.command(CallCommand::Hangup);
    }

    fn transfer(&self, target: &str) {
        // The brain chose the target (or the agent's settings did): the
        // same rules as a call placed through the API apply, so a prompt
        // cannot send callers to premium or emergency numbers.
        let target = if target.starts_with("sip:") || target.starts_with("sips:") {
            // Hotline may dial the target itself (the bridge fallback): a
            // URI a prompt made up must not become a call to anywhere.
            if self.configured.as_deref() != Some(target) {
                warn!(call = %self.handle.id, target, "agent: transfer to a SIP URI that is not the agent's transfer target refused");
                self.publish(CallEvent::TransferFailed {
                    sip_code: 403,
                    reason: "failed".into(),
                });
                return;
            }
            target.to_owned()
        } else {
            match callable("number", target, &self.deny) {
                Ok(n) => n,
                Err(e) => {
                    warn!(call = %self.handle.id, target, reason = %e.msg, "agent: transfer refused");
                    // The pipeline waits for the outcome: this is it.
                    self.publish(CallEvent::TransferFailed {
                        sip_code: 403,
                        reason: "failed".into(),
                    });
                    return;
                }
            }
        };
        info!(call = %self.handle.id, %target, "agent: transferring the call");
        tokio::spawn(transfer::run(TransferJob {
            ctx: self.ctx.clone(),
            handle: self.handle.clone(),
            publish: self.publish.clone(),
            media: self.media.clone(),
            switch: self.switch.clone(),
            trunk: self.trunk.clone(),
            target,
            bridged: self.bridged.clone(),
        }));
    }

    fn send_dtmf(&self, digits: &str) {
        let _ = self.handle.command(CallCommand::SendDtmf {
            digits: digits.to_owned(),
        });
    }

    fn publish(&self, event: CallEvent) {
        self.registry.publish(&self.handle.id, event.clone());
        let _ = self.publish.send(event);
    }
}

/// Runs the agent `request` names on the call, then publishes what it
/// concluded.
pub(crate) async fn run(ctx: Arc<Ctx>, request: AgentRequest, io: AppIo) {
    let id = io.handle.id.clone();
    let Some(service) = ctx.agents.get().cloned() else {
        warn!(call = %id, "agent: no voice agent in this server; hanging up");
        let _ = io.handle.command(CallCommand::Hangup);
        return;
    };
    let call = CallInfo {
        call_id: id.to_string(),
        from: io.handle.info.from.clone(),
        to: io.handle.info.to.clone(),
        direction: match io.handle.info.direction {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        }
        .into(),
    };
    // The caller's context is fetched while the agent is made ready.
    let (prepared, context) = tokio::join!(
        service.prepare(&request, &call),
        service.caller_context(&request, &io.handle.info)
    );
    let mut prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            warn!(call = %id, error = %e, "agent: cannot prepare the call's agent; hanging up");
            let _ = io.handle.command(CallCommand::Hangup);
            return;
        }
    };
    prepared.append_instructions(&context);
    let started = match &prepared.run {
        AgentRun::Pipeline(spec) => CallEvent::AgentStarted {
            stt: spec.stt.name().to_owned(),
            brain: spec.brain.name().to_owned(),
            tts: spec.tts.name().to_owned(),
        },
        // One model hears and speaks.
        AgentRun::Realtime(rt) => CallEvent::AgentStarted {
            stt: realtime_agent::NAME.to_owned(),
            brain: rt.config.model.clone(),
            tts: realtime_agent::NAME.to_owned(),
        },
    };
    let (to_agent, mut frames) = tokio::sync::mpsc::channel(AGENT_FRAMES);
    let switch = Arc::new(FrameSwitch::start(io.pcm, to_agent));
    let bridged = Arc::new(AtomicBool::new(false));
    let control = EngineControl {
        handle: io.handle.clone(),
        registry: io.registry.clone(),
        publish: io.publish.clone(),
        deny: service.deny_list(),
        ctx: ctx.clone(),
        media: io.media.clone(),
        switch,
        trunk: io.trunk.clone(),
        bridged: bridged.clone(),
        configured: match &prepared.run {
            AgentRun::Pipeline(spec) => spec.transfer_to.clone(),
            AgentRun::Realtime(rt) => rt.setup.transfer_to.clone(),
        },
    };
    control.publish(started);
    let line = MediaLine {
        sink: io.media.pcm_sink(),
        media: io.media.clone(),
    };
    // The conclusion is published after the call's end (the agent may be
    // the one hanging up, and returns before the BYE completes).
    let mut end = io.handle.subscribe();
    if let Some(plan) = request
        .voicemail
        .as_ref()
        .filter(|_| io.handle.info.direction == CallDirection::Outbound)
    {
        let mut events = io.handle.subscribe();
        let publish = |e: CallEvent| control.publish(e);
        let line = screening::Line {
            ctx: &ctx,
            call_id: id.as_str(),
            frames: &mut frames,
            events: &mut events,
            media: &io.media,
            publish: &publish,
        };
        let result = match screening::screen(line, plan).await {
            Screened::Agent => None,
            Screened::Machine(result) => Some(*result),
            // Hung up on while screening: nothing to conclude.
            Screened::Ended => Some(AgentResult::default()),
        };
        if let Some(result) = result {
            let _ = io.handle.command(CallCommand::Hangup);
            wait_end(&mut end, &id, "agent").await;
            info!(call = %id, outcome = ?result.outcome, "agent: call concluded by screening");
            io.registry
                .publish(&id, CallEvent::AgentResult(Box::new(result)));
            return;
        }
    }
    let report = match prepared.run {
        AgentRun::Pipeline(spec) => {
            pipeline::run(spec, call, frames, line, control, io.events).await
        }
        AgentRun::Realtime(rt) => {
            run_realtime(rt.config, rt.setup, call, frames, line, control, io.events).await
        }
    };
    let mut result = prepared.conclusion.conclude(&report).await;
    result.turns.clone_from(&report.turns);
    if let Some(r) = &report.recording {
        if let Some(e) = &r.error {
            warn!(call = %id, error = %e, "agent: the recording is incomplete");
        }
        if r.duration_ms > 0 {
            result.recording_path = Some(r.path.display().to_string());
        }
    }
    if bridged.load(Ordering::Acquire) {
        // The agent handed the call to a transfer's bridge, which lasts
        // as long as the conversation does.
        until_ended(&mut end).await;
    } else {
        wait_end(&mut end, &id, "agent").await;
    }
    info!(call = %id, turns = report.turns.len(), outcome = ?result.outcome, "agent: call concluded");
    io.registry
        .publish(&id, CallEvent::AgentResult(Box::new(result)));
}
