//! The media port allocator: one even UDP port per call from the configured
//! range, RTCP on the odd port above it unless rtcp-mux (RFC 5761) is in use.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use crate::config::RtpConfig;

/// Why no sockets could be allocated.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Every port pair in the range is in use by us or taken by others.
    #[error("no free RTP port in {min}–{max} ({in_use} in use by calls)")]
    Exhausted {
        /// Lowest port of the range.
        min: u16,
        /// Highest port of the range.
        max: u16,
        /// Ports currently leased to calls.
        in_use: usize,
    },
    /// The range holds no even port (with its odd RTCP port).
    #[error("RTP port range {min}–{max} holds no even port")]
    EmptyRange {
        /// Lowest port of the range.
        min: u16,
        /// Highest port of the range.
        max: u16,
    },
}

#[derive(Debug)]
struct Inner {
    in_use: HashSet<u16>,
}

/// Hands out media sockets from a port range. Cheap to clone; clones share
/// the set of leased ports. The lock is a plain mutex held only for set
/// operations, never across an `.await`.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    bind_ip: IpAddr,
    first_even: u16,
    slots: u16,
    port_min: u16,
    port_max: u16,
    inner: Arc<Mutex<Inner>>,
}

/// The sockets of one call leg. Dropping it closes them and returns the
/// port to the allocator.
#[derive(Debug)]
pub struct MediaSockets {
    /// The RTP socket (also carries RTCP with rtcp-mux).
    pub rtp: UdpSocket,
    /// The RTCP socket on port + 1, absent with rtcp-mux.
    pub rtcp: Option<UdpSocket>,
    lease: PortLease,
}

impl MediaSockets {
    /// The even RTP port.
    pub fn port(&self) -> u16 {
        self.lease.port
    }
}

#[derive(Debug)]
struct PortLease {
    port: u16,
    inner: Arc<Mutex<Inner>>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.in_use.remove(&self.port);
        }
    }
}

impl PortAllocator {
    /// An allocator over `config`'s range and bind address.
    pub fn new(config: &RtpConfig) -> Self {
        let first_even = config.port_min.saturating_add(config.port_min % 2);
        PortAllocator {
            bind_ip: config.bind_ip,
            first_even,
            slots: u16::try_from(config.call_capacity()).unwrap_or(u16::MAX),
            port_min: config.port_min,
            port_max: config.port_max,
            inner: Arc::new(Mutex::new(Inner {
                in_use: HashSet::new(),
            })),
        }
    }

    /// Ports currently leased.
    pub fn in_use(&self) -> usize {
        self.inner.lock().map(|i| i.in_use.len()).unwrap_or(0)
    }

    /// Binds a socket pair (or a single socket with `rtcp_mux`) on a free
    /// even port. The search starts at a random slot, so a port just
    /// released is not immediately handed to the next call (stray packets of
    /// the old call would hit it), and wraps around the range once. Ports
    /// other processes hold are skipped. Sockets are non-blocking, ready
    /// for `tokio::net::UdpSocket::from_std`.
    pub fn allocate(&self, rtcp_mux: bool) -> Result<MediaSockets, PortError> {
        if self.slots == 0 {
            return Err(PortError::EmptyRange {
                min: self.port_min,
                max: self.port_max,
            });
        }
        let start = rand::random_range(0..self.slots);
        for k in 0..self.slots {
            let slot = (start + k) % self.slots;
            let port = self.first_even + 2 * slot;
            {
                let Ok(mut inner) = self.inner.lock() else {
                    break;
                };
                if !inner.in_use.insert(port) {
                    continue;
                }
            }
            // Leased before binding so a concurrent caller skips it; the
            // lease's drop returns it if binding fails.
            let lease = PortLease {
                port,
                inner: self.inner.clone(),
            };
            let Some(rtp) = self.bind(port) else {
                continue;
            };
            let rtcp = if rtcp_mux {
                None
            } else {
                match port.checked_add(1).and_then(|p| self.bind(p)) {
                    Some(s) => Some(s),
                    None => continue,
                }
            };
            return Ok(MediaSockets { rtp, rtcp, lease });
        }
        Err(PortError::Exhausted {
            min: self.port_min,
            max: self.port_max,
            in_use: self.in_use(),
        })
    }

    fn bind(&self, port: u16) -> Option<UdpSocket> {
        let socket = UdpSocket::bind(SocketAddr::new(self.bind_ip, port)).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(socket)
    }
}
