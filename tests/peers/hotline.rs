//! Hotline's call engine in-process, on 127.0.0.1, for tests that drive it
//! with real peers: a free SIP port (UDP and TCP), its own RTP range and
//! data directory, and the registry-wide event stream to check outcomes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::call::{CallEvent, CallId, CallRecord, CallRegistry};
use hotline::config::{Config, SipListen, SipTransport};
use hotline::engine::Engine;
use hotline_sip::transport::Transport;
use tokio::sync::broadcast;

/// A running engine.
pub struct Hotline {
    pub rt: tokio::runtime::Runtime,
    pub engine: Engine,
    events: broadcast::Receiver<(CallId, CallEvent)>,
    /// Every event seen so far, in order.
    pub seen: Vec<(CallId, CallEvent)>,
    pub dir: tempfile::TempDir,
}

impl Hotline {
    /// Starts an engine with the default configuration changed by `edit`.
    pub fn start(edit: impl FnOnce(&mut Config)) -> Hotline {
        let dir = tempfile::tempdir().unwrap();
        let port = super::ports::free_port();
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let addr: SocketAddr = (super::LOOPBACK, port).into();
        config.sip.listen = vec![
            SipListen::new(SipTransport::Udp, addr),
            SipListen::new(SipTransport::Tcp, addr),
        ];
        // Away from the peers' ports (20000-32767).
        config.rtp.port_min = 40000;
        config.rtp.port_max = 44999;
        config.rtp.bind_ip = super::LOOPBACK.into();
        config.sip.drain_secs = 2;
        edit(&mut config);
        config.validate().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let registry = CallRegistry::new(config.sip.max_calls);
        let events = registry.subscribe_all();
        let engine = rt
            .block_on(Engine::start(Arc::new(config), registry))
            .unwrap();
        Hotline {
            rt,
            engine,
            events,
            seen: Vec::new(),
            dir,
        }
    }

    /// The UDP SIP address.
    pub fn sip_addr(&self) -> SocketAddr {
        self.engine.local_addr(Transport::Udp).unwrap()
    }

    /// Collects events until `done` says so, or `timeout`.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[(CallId, CallEvent)]) -> bool,
    ) -> bool {
        let until = Instant::now() + timeout;
        loop {
            if done(&self.seen) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let got = self.rt.block_on(async {
                tokio::time::timeout(left.min(Duration::from_millis(200)), self.events.recv()).await
            });
            if let Ok(Ok(ev)) = got {
                self.seen.push(ev);
            }
        }
    }

    /// Waits for `n` calls to end and returns their records.
    pub fn ended(&mut self, n: usize, timeout: Duration) -> Vec<CallRecord> {
        self.wait_for(timeout, |seen| {
            seen.iter()
                .filter(|(_, e)| matches!(e, CallEvent::Ended(_)))
                .count()
                >= n
        });
        self.records()
    }

    /// The records of the calls that ended so far.
    pub fn records(&self) -> Vec<CallRecord> {
        self.seen
            .iter()
            .filter_map(|(_, e)| match e {
                CallEvent::Ended(r) => Some((**r).clone()),
                _ => None,
            })
            .collect()
    }

    /// Events of one kind, for all calls.
    pub fn events(&self, pick: impl Fn(&CallEvent) -> bool) -> Vec<CallEvent> {
        self.seen
            .iter()
            .filter(|(_, e)| pick(e))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// A number answering in `mode`.
    pub fn number(
        number: &str,
        mode: hotline::config::NumberMode,
    ) -> hotline::config::NumberConfig {
        hotline::config::NumberConfig {
            number: number.into(),
            mode,
            ..hotline::config::NumberConfig::echo_demo()
        }
    }
}
