//! Keeps a registration alive at every trunk with `register = true`, for
//! carriers that only deliver calls to registered endpoints. The protocol
//! decisions (challenges, 423, refresh timing, back-off) are the sans-IO
//! [`Registration`]'s; this task only carries its requests through the
//! engine and wakes it on time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_sip::auth::Credentials;
use hotline_sip::register::{Registration, RegistrationConfig, RegistrationState};
use hotline_sip::transaction::TransactionKey;
use rsip::SipMessage;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::leg::{advertised, contact_uri};
use super::net::{configured, resolve};
use super::{Ctx, LEG_QUEUE, ToEngine, ToLeg};
use crate::config::TrunkConfig;

/// How long an unregister may take at shutdown.
const UNREGISTER_WAIT: Duration = Duration::from_secs(2);

/// Starts one registration task per registering trunk. They unregister
/// when `stop` turns true.
pub(crate) fn spawn_all(
    ctx: &Arc<Ctx>,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    ctx.config
        .trunks
        .iter()
        .filter(|t| t.register)
        .map(|trunk| tokio::spawn(run(ctx.clone(), trunk.clone(), stop.clone())))
        .collect()
}

async fn run(ctx: Arc<Ctx>, trunk: TrunkConfig, mut stop: watch::Receiver<bool>) {
    let registrar = format!("sip:{}", trunk.host);
    let hop_text = match &trunk.outbound_proxy {
        Some(p) => format!("sip:{p}"),
        None => registrar.clone(),
    };
    let transport = configured(trunk.transport);
    let Ok(hop) = rsip::Uri::try_from(hop_text.as_str()) else {
        warn!(trunk = %trunk.name, host = %hop_text, "registration: invalid host");
        return;
    };
    let destination = loop {
        match resolve(&hop, transport).await {
            Ok(d) => break d,
            Err(e) => {
                warn!(trunk = %trunk.name, error = %e, "registration: retrying in 30 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    let (host, port) = advertised(&ctx, transport, destination.addr.ip());
    let domain = trunk
        .host
        .rsplit_once(':')
        .map_or(trunk.host.as_str(), |(h, _)| h);
    let user = trunk.username.clone().unwrap_or_else(|| "hotline".into());
    let mut config = RegistrationConfig::new(
        registrar,
        format!("{user}@{domain}"),
        contact_uri(&host, port, transport),
        format!("SIP/2.0/{} {host}:{port};rport", transport.via_token()),
    );
    config.expires = trunk.register_expires_secs;
    config.outbound_proxy = trunk.outbound_proxy.as_ref().map(|p| format!("sip:{p}"));
    config.credentials = match (&trunk.username, &trunk.password) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    };
    let mut reg = match Registration::new(config, Instant::now()) {
        Ok(r) => r,
        Err(e) => {
            warn!(trunk = %trunk.name, error = %e, "registration not started");
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel(LEG_QUEUE);
    let call_id = reg.call_id().to_owned();
    let _ = ctx
        .engine
        .send(ToEngine::Attach {
            call_id: call_id.clone(),
            tx,
        })
        .await;
    let mut in_flight: Option<TransactionKey> = None;
    let mut last_state = reg.state();
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        while let Some(request) = reg.poll_request(Instant::now()) {
            in_flight = TransactionKey::client(&SipMessage::Request(request.clone())).ok();
            let _ = ctx
                .engine
                .send(ToEngine::Send {
                    owner: call_id.clone(),
                    request,
                    destination,
                })
                .await;
        }
        let state = reg.state();
        if state != last_state {
            log_state(&trunk.name, state);
            last_state = state;
        }
        if let Some(deadline) = stopping
            && (tokio::time::Instant::now() >= deadline
                || !matches!(
                    state,
                    RegistrationState::Registered { .. } | RegistrationState::Registering
                ))
        {
            break;
        }
        let wake = reg
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let wake = stopping.map_or(wake, |s| wake.min(s));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            msg = rx.recv() => match msg {
                Some(ToLeg::Response { key, response }) if Some(&key) == in_flight.as_ref() => {
                    if response.status_code.code() >= 200 {
                        in_flight = None;
                    }
                    reg.on_response(&response, Instant::now());
                }
                Some(ToLeg::TransportError { key }) if Some(&key) == in_flight.as_ref() => {
                    in_flight = None;
                    reg.on_timeout(Instant::now());
                }
                Some(_) => {}
                None => break,
            },
            changed = stop.changed(), if stopping.is_none() => {
                if changed.is_err() || *stop.borrow() {
                    reg.unregister();
                    stopping = Some(tokio::time::Instant::now() + UNREGISTER_WAIT);
                }
            }
        }
    }
    let _ = ctx.engine.send(ToEngine::Detach { call_id }).await;
}

fn log_state(trunk: &str, state: RegistrationState) {
    match state {
        RegistrationState::Registered { until } => {
            let secs = until.saturating_duration_since(Instant::now()).as_secs();
            info!(trunk, expires_in_secs = secs, "registered with trunk");
        }
        RegistrationState::Failed { code, retry_at } => {
            let retry = retry_at.map(|r| r.saturating_duration_since(Instant::now()).as_secs());
            warn!(
                trunk,
                sip_code = code,
                retry_in_secs = retry,
                "trunk registration failed"
            );
        }
        RegistrationState::Unregistered => info!(trunk, "unregistered from trunk"),
        RegistrationState::Registering => {}
    }
}
