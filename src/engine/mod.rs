//! The call engine: SIP signalling tied to RTP media, one tokio task per
//! call.
//!
//! * The **engine task** ([`core`]) owns the SIP transport and the sans-IO
//!   [`TransactionLayer`](hotline_sip::transaction::TransactionLayer). It
//!   admits new INVITEs (trunk/number routing, digest challenges, 403, 404,
//!   503 while draining), answers OPTIONS, answers 481 for unknown dialogs,
//!   and routes everything else by Call-ID to the call that owns it.
//! * Each **call task** ([`leg`]) owns its dialog, its SDP state and its
//!   RTP session, and runs the call's application ([`app`]: `echo`, `play`,
//!   later the voice agent) once the call is answered.
//! * The voice agent's **transfer** ([`transfer`]) is REFER with a bridge
//!   fallback: Hotline calls the target itself when REFER is refused.
//! * A **`forward` number** ([`forward`]) calls its target and answers the
//!   caller only when the target answers. Both bridges are [`bridge`].
//!
//! The engine never waits on a call: it hands messages over with
//! `try_send`, and a call whose queue is full loses the message as UDP
//! would (the peer retransmits). Calls wait on the engine's bounded queue,
//! which only signalling uses; audio never passes through here.

mod admit;
mod agent_app;
mod alert_app;
pub mod announce;
pub mod app;
pub mod blocked;
pub mod bridge;
mod core;
pub mod forward;
mod leg;
pub mod net;
pub mod numbers;
mod register;
pub mod screening;
pub mod transfer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dashmap::DashMap;
use hotline_sip::transaction::{Destination, TransactionKey};
use hotline_sip::transport::{SipTransport, Transport, TransportConfig};
use rsip::{Request, Response, SipMessage};
use tokio::sync::{mpsc, watch};

use crate::call::{CallHandle, CallRegistry};
use crate::config::{Config, SipTransport as ConfigTransport};
use crate::routing::Router;
use crate::rtp::PortAllocator;

pub use app::CallApp;
pub use blocked::BlockedCallers;
pub use leg::{OutboundCall, PlaceError};
pub use numbers::{NumberAction, NumberRoute, NumberTable};

/// Signalling messages queued to the engine task before calls must wait.
const ENGINE_QUEUE: usize = 8192;
/// Signalling messages queued to one call; beyond it the call loses them
/// like a lossy network would, and retransmission recovers.
const LEG_QUEUE: usize = 64;

/// What the engine tells a call task.
#[derive(Debug)]
pub(crate) enum ToLeg {
    /// A new server transaction inside the call (BYE, re-INVITE, INFO…).
    Request {
        key: TransactionKey,
        request: Request,
        source: Destination,
    },
    /// The ACK for our 2xx.
    Ack(Request),
    /// The caller sent CANCEL for the INVITE (already answered 200).
    Cancelled,
    /// A response to one of our client transactions, or a 408 the layer
    /// made up when the peer never answered.
    Response {
        key: TransactionKey,
        response: Response,
    },
    /// A 2xx retransmission after our INVITE transaction ended: re-ACK.
    Stray(Response),
    /// The transport could not deliver a transaction's message.
    TransportError { key: TransactionKey },
    /// Timer H: the ACK for our non-2xx never came.
    AckTimeout,
}

/// What call tasks ask of the engine.
#[derive(Debug)]
pub(crate) enum ToEngine {
    /// Answer a server transaction.
    Respond {
        key: TransactionKey,
        response: Response,
    },
    /// Start a client transaction; its responses go to the call `owner`.
    Send {
        owner: String,
        request: Request,
        destination: Destination,
    },
    /// Send outside any transaction (the ACK for a 2xx).
    Stateless {
        message: SipMessage,
        destination: Destination,
    },
    /// CANCEL our INVITE client transaction.
    Cancel { key: TransactionKey },
    /// Route messages of Call-ID `call_id` to `tx` (an outbound call,
    /// before its INVITE goes out).
    Attach {
        call_id: String,
        tx: mpsc::Sender<ToLeg>,
    },
    /// The call has ended: forget it.
    Detach { call_id: String },
}

/// What every call task shares.
pub(crate) struct Ctx {
    pub config: Arc<Config>,
    pub router: Router,
    /// Numbers configured at run time; they take precedence over the
    /// configuration file's.
    pub numbers: NumberTable,
    /// Per organization, the callers its stored numbers decline.
    pub blocked: BlockedCallers,
    pub registry: CallRegistry,
    pub ports: PortAllocator,
    /// Where RTP sessions run; see [`crate::rtp::MediaRuntime`].
    pub media: crate::rtp::MediaRuntime,
    pub transport: SipTransport,
    pub engine: mpsc::Sender<ToEngine>,
    /// Decoded prompt files, by path: decoding happens once per file.
    pub prompts: DashMap<PathBuf, Arc<[i16]>>,
    /// The voice agent, once the server installed it
    /// ([`Engine::set_agents`]); agent calls hang up without it.
    pub agents: std::sync::OnceLock<Arc<crate::agent::service::AgentService>>,
}

/// A running call engine.
#[derive(Clone)]
pub struct Engine {
    ctx: Arc<Ctx>,
    stop: Arc<watch::Sender<bool>>,
    /// Tells trunk registrations to unregister (at the start of a drain).
    unregister: Arc<watch::Sender<bool>>,
    registrations: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("calls", &self.ctx.registry.len())
            .finish()
    }
}

impl Engine {
    /// Binds the SIP listeners of `config.sip.listen` and starts the engine
    /// task. Calls are admitted into `registry`.
    pub async fn start(config: Arc<Config>, registry: CallRegistry) -> anyhow::Result<Engine> {
        let mut tconf = TransportConfig::default();
        for l in &config.sip.listen {
            match l.transport {
                ConfigTransport::Udp => tconf.udp = Some(l.addr),
                ConfigTransport::Tcp => tconf.tcp = Some(l.addr),
                ConfigTransport::Tls => anyhow::bail!("sip.listen: TLS is not supported yet"),
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let (transport, incoming) = SipTransport::bind(tconf, stop_rx.clone())
            .await
            .with_context(|| {
                let list: Vec<String> = config.sip.listen.iter().map(|l| l.to_string()).collect();
                format!("cannot listen for SIP on {}", list.join(", "))
            })?;
        let media = crate::rtp::MediaRuntime::start(&config.rtp)
            .context("cannot start the media runtime")?;
        let (tx, rx) = mpsc::channel(ENGINE_QUEUE);
        let ctx = Arc::new(Ctx {
            media,
            router: Router::new(&config),
            numbers: NumberTable::default(),
            blocked: BlockedCallers::default(),
            ports: PortAllocator::new(&config.rtp),
            registry,
            transport,
            engine: tx,
            prompts: DashMap::new(),
            agents: std::sync::OnceLock::new(),
            config,
        });
        let core = core::Core::new(ctx.clone(), rx, incoming);
        tokio::spawn(core.run(stop_rx));
        let (unregister, unregister_rx) = watch::channel(false);
        let registrations = register::spawn_all(&ctx, &unregister_rx);
        Ok(Engine {
            ctx,
            stop: Arc::new(stop_tx),
            unregister: Arc::new(unregister),
            registrations: Arc::new(std::sync::Mutex::new(registrations)),
        })
    }

    /// Installs the voice agent that `agent` numbers and API calls with an
    /// agent run; the first one installed stays.
    pub fn set_agents(&self, agents: Arc<crate::agent::service::AgentService>) {
        let _ = self.ctx.agents.set(agents);
    }

    /// The voice agent, if installed.
    pub fn agents(&self) -> Option<Arc<crate::agent::service::AgentService>> {
        self.ctx.agents.get().cloned()
    }

    /// The bound SIP address of a transport.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.ctx.transport.local_addr(transport)
    }

    /// The live calls.
    pub fn registry(&self) -> &CallRegistry {
        &self.ctx.registry
    }

    /// The run-time number table: numbers configured through the API.
    /// Changes apply to the next INVITE, without a restart.
    pub fn numbers(&self) -> &NumberTable {
        &self.ctx.numbers
    }

    /// Adds or replaces a run-time number (see [`Engine::numbers`]).
    pub fn set_number(&self, route: NumberRoute) {
        self.ctx.numbers.set(route);
    }

    /// Removes a run-time number (see [`Engine::numbers`]).
    pub fn remove_number(&self, e164: &str) {
        self.ctx.numbers.remove(e164);
    }

    /// The blocked-caller table: per organization, the callers whose
    /// inbound calls to its stored numbers are declined with 603 before
    /// they are answered. Changes apply to the next INVITE.
    pub fn blocked(&self) -> &BlockedCallers {
        &self.ctx.blocked
    }

    /// Places an outbound call; the handle follows it from ringing to its
    /// end. Fails at once only when the call cannot even be attempted (the
    /// server is draining or full, or the request is invalid); everything
    /// after that is reported as the call's events and outcome.
    pub async fn place_call(&self, call: OutboundCall) -> Result<CallHandle, leg::PlaceError> {
        leg::place(self.ctx.clone(), call).await
    }

    /// Graceful shutdown: refuse new calls (503 with Retry-After), give
    /// live calls up to `grace` to end by themselves, then hang up the rest
    /// with BYE and wait (briefly) for them to finish; then stop the
    /// listeners.
    pub async fn drain(&self, grace: Duration) {
        let registry = &self.ctx.registry;
        registry.start_draining();
        // Carriers stop sending calls to a registered endpoint once it
        // unregisters; calls already up are not affected.
        let _ = self.unregister.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while !registry.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = registry.len();
        if left > 0 {
            tracing::info!(calls = left, "drain time over, hanging up");
            for h in registry.handles() {
                let _ = h.command(crate::call::CallCommand::Hangup);
            }
            // BYE transactions take at most 64*T1 (32 s); most finish in a
            // round trip. Do not hold shutdown hostage to a dead peer.
            let until = tokio::time::Instant::now() + Duration::from_secs(5);
            while !registry.is_empty() && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let tasks =
            std::mem::take(&mut *self.registrations.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
        let _ = self.stop.send(true);
    }
}
