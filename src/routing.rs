//! Who may call in, and which number a call is for.
//!
//! An inbound INVITE is accepted only from a configured trunk (matched by
//! source address, or by digest credentials when the trunk sets
//! `inbound_auth`) or from `sip.local_networks`. Anything else gets 403.
//! The dialled number (the Request-URI user, already normalised to E.164 by
//! the SIP layer) then selects a configured number, or the call gets 404.
//!
//! Refused sources are logged through a [`RefusalLog`], which lets the first
//! refusal of a source through and then at most one summary line per
//! interval. A scanner spraying INVITEs cannot flood the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{Config, NumberConfig, TrunkConfig};

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source<'a> {
    /// A configured trunk, matched by its `inbound_ips`.
    Trunk(&'a TrunkConfig),
    /// A `sip.local_networks` address (development, tests, a PBX on site).
    Local,
    /// Nobody we know. May still authenticate as a trunk with
    /// `inbound_auth` credentials.
    Unknown,
}

/// Why a call cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The source is neither a trunk nor local: answer 403.
    #[error("source is not a configured trunk")]
    Forbidden,
    /// No number matches the dialled user: answer 404.
    #[error("no number {0:?} is configured")]
    UnknownNumber(String),
    /// The number exists but only for calls from another trunk: answer 404,
    /// so as not to reveal it.
    #[error("number {0:?} does not take calls from this source")]
    WrongTrunk(String),
}

/// The routing tables, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Router {
    trunks: Vec<TrunkConfig>,
    local: Vec<crate::cidr::Cidr>,
    numbers: HashMap<String, NumberConfig>,
}

impl Router {
    /// Tables for `config`, which has already been validated.
    pub fn new(config: &Config) -> Router {
        Router {
            trunks: config.trunks.clone(),
            local: config.sip.local_networks.clone(),
            numbers: config
                .numbers
                .iter()
                .map(|n| (n.number.clone(), n.clone()))
                .collect(),
        }
    }

    /// Classifies a request's source address. Trunks are checked before
    /// local networks, so a trunk on a private network is still that trunk.
    pub fn source(&self, ip: IpAddr) -> Source<'_> {
        if let Some(t) = self
            .trunks
            .iter()
            .find(|t| t.inbound_ips.iter().any(|n| n.contains(ip)))
        {
            return Source::Trunk(t);
        }
        if self.local.iter().any(|n| n.contains(ip)) {
            return Source::Local;
        }
        Source::Unknown
    }

    /// Trunks that accept digest credentials from unknown addresses.
    pub fn auth_trunks(&self) -> impl Iterator<Item = &TrunkConfig> {
        self.trunks.iter().filter(|t| t.inbound_auth)
    }

    /// A trunk by name.
    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The number a call from `source` to the dialled `user` reaches.
    /// `user` is the Request-URI user, normalised to E.164 when it is a
    /// telephone number.
    pub fn number(&self, source: Source<'_>, user: &str) -> Result<&NumberConfig, RouteError> {
        let from_trunk = match source {
            Source::Unknown => return Err(RouteError::Forbidden),
            Source::Trunk(t) => Some(t.name.as_str()),
            Source::Local => None,
        };
        let number = self
            .numbers
            .get(user)
            .ok_or_else(|| RouteError::UnknownNumber(user.to_owned()))?;
        match (&number.trunk, from_trunk) {
            (Some(required), Some(actual)) if required != actual => {
                Err(RouteError::WrongTrunk(user.to_owned()))
            }
            // Local sources may reach every number: they are the operator's
            // own network.
            _ => Ok(number),
        }
    }
}

/// What to log about a refused source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDecision {
    /// First refusal of this source in a while: log it.
    First,
    /// Log a summary: this many refusals were not logged since the last line.
    Summary {
        /// Refusals since the last line, this one included.
        suppressed: u64,
    },
    /// Stay quiet.
    Quiet,
}

/// Rate limit for "refused source" log lines, per source address, with
/// bounded memory. Sans-IO: the caller passes the time.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    capacity: usize,
    sources: HashMap<IpAddr, (Instant, u64)>,
}

impl RefusalLog {
    /// At most one line per source per `interval`, tracking at most
    /// `capacity` sources (the oldest are forgotten beyond that).
    pub fn new(interval: Duration, capacity: usize) -> RefusalLog {
        RefusalLog {
            interval,
            capacity: capacity.max(1),
            sources: HashMap::new(),
        }
    }

    /// Records a refusal of `ip` at `now` and says whether to log it.
    pub fn refuse(&mut self, ip: IpAddr, now: Instant) -> LogDecision {
        if let Some((last, count)) = self.sources.get_mut(&ip) {
            *count += 1;
            if now.saturating_duration_since(*last) < self.interval {
                return LogDecision::Quiet;
            }
            let suppressed = *count;
            *last = now;
            *count = 0;
            return LogDecision::Summary { suppressed };
        }
        if self.sources.len() >= self.capacity {
            // Forget the source quiet for longest; scanning this map is
            // fine because it only happens on refusals of new sources.
            if let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(ip, _)| *ip)
            {
                self.sources.remove(&oldest);
            }
        }
        self.sources.insert(ip, (now, 0));
        LogDecision::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NumberMode;

    fn config() -> Config {
        let mut c = Config::default();
        c.trunks.push(TrunkConfig {
            name: "carrier".into(),
            host: "sip.carrier.example".into(),
            transport: crate::config::SipTransport::Udp,
            username: None,
            password: None,
            realm: None,
            register: false,
            inbound_ips: vec![
                "198.51.100.0/24".parse().unwrap(),
                "10.0.0.5".parse().unwrap(),
            ],
            inbound_auth: false,
            codecs: vec!["PCMU".into()],
            caller_id: None,
            outbound_proxy: None,
            register_expires_secs: 3600,
        });
        c.numbers.push(NumberConfig {
            number: "+14155550100".into(),
            mode: NumberMode::Play,
            trunk: Some("carrier".into()),
            ..NumberConfig::echo_demo()
        });
        c.validate().unwrap();
        c
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sources_are_trunks_local_or_unknown() {
        let c = config();
        let r = Router::new(&c);
        assert!(matches!(r.source(ip("198.51.100.20")), Source::Trunk(t) if t.name == "carrier"));
        assert!(matches!(r.source(ip("10.0.0.5")), Source::Trunk(_)));
        assert_eq!(r.source(ip("10.0.0.6")), Source::Unknown);
        assert_eq!(r.source(ip("127.0.0.1")), Source::Local);
        assert_eq!(r.source(ip("::1")), Source::Local);
        assert_eq!(r.source(ip("203.0.113.9")), Source::Unknown);
    }

    #[test]
    fn numbers_route_by_user_and_trunk() {
        let c = config();
        let r = Router::new(&c);
        let carrier = r.source(ip("198.51.100.1"));
        assert_eq!(
            r.number(Source::Local, "echo").unwrap().mode,
            NumberMode::Echo
        );
        assert_eq!(
            r.number(carrier, "+14155550100").unwrap().mode,
            NumberMode::Play
        );
        assert_eq!(r.number(carrier, "echo").unwrap().mode, NumberMode::Echo);
        assert_eq!(
            r.number(Source::Unknown, "echo"),
            Err(RouteError::Forbidden),
            "unknown sources are refused before the number is looked at"
        );
        assert_eq!(
            r.number(carrier, "+14155550199"),
            Err(RouteError::UnknownNumber("+14155550199".into()))
        );

        let mut other = config();
        other.trunks.push(TrunkConfig {
            name: "other".into(),
            inbound_ips: vec!["192.0.2.0/24".parse().unwrap()],
            ..other.trunks[0].clone()
        });
        let r = Router::new(&other);
        let src = r.source(ip("192.0.2.7"));
        assert_eq!(
            r.number(src, "+14155550100"),
            Err(RouteError::WrongTrunk("+14155550100".into()))
        );
    }

    #[test]
    fn refusal_log_does_not_flood() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(60), 2);
        let a = ip("203.0.113.1");
        assert_eq!(log.refuse(a, t0), LogDecision::First);
        for i in 1..1000 {
            assert_eq!(
                log.refuse(a, t0 + Duration::from_millis(i * 10)),
                LogDecision::Quiet
            );
        }
        assert_eq!(
            log.refuse(a, t0 + Duration::from_secs(61)),
            LogDecision::Summary { suppressed: 1000 }
        );
        assert_eq!(
            log.refuse(a, t0 + Duration::from_secs(62)),
            LogDecision::Quiet
        );

        // Memory stays bounded: a third source evicts the oldest.
        let (b, c) = (ip("203.0.113.2"), ip("203.0.113.3"));
        assert_eq!(
            log.refuse(b, t0 + Duration::from_secs(63)),
            LogDecision::First
        );
        assert_eq!(
            log.refuse(c, t0 + Duration::from_secs(64)),
            LogDecision::First
        );
        assert_eq!(log.sources.len(), 2);
        assert_eq!(
            log.refuse(a, t0 + Duration::from_secs(65)),
            LogDecision::First,
            "a was evicted"
        );
    }
}
