//! The listeners, the connection table and sending.

use super::stream::{self, ConnInfo};
use super::{ConnectionId, Incoming, Outgoing, SendError, Transport, TransportConfig};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

/// Writes queued per connection before [`SendError::QueueFull`].
const CONNECTION_QUEUE: usize = 256;

/// Resolves when `rx` holds `true` or its sender is gone.
pub(crate) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

struct ConnEntry {
    peer: SocketAddr,
    transport: Transport,
    tx: mpsc::Sender<Bytes>,
}

#[derive(Default)]
struct ConnTable {
    by_id: HashMap<ConnectionId, ConnEntry>,
    by_peer: HashMap<(Transport, SocketAddr), ConnectionId>,
}

pub(crate) struct Inner {
    pub(crate) config: TransportConfig,
    udp: Option<(Arc<UdpSocket>, SocketAddr)>,
    tcp_local: Option<SocketAddr>,
    incoming: mpsc::Sender<Incoming>,
    dropped: AtomicU64,
    next_id: AtomicU64,
    conns: Mutex<ConnTable>,
    shutdown: watch::Receiver<bool>,
}

impl Inner {
    /// Hands a message up without ever waiting: a full queue drops it.
    pub(crate) fn deliver(&self, msg: Incoming) {
        if self.incoming.try_send(msg).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped = n, "incoming queue full, message dropped");
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, ConnTable> {
        // A panic while holding this lock cannot leave the maps half
        // updated in a way that matters; keep serving.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn remove_connection(&self, id: ConnectionId) {
        let mut t = self.table();
        if let Some(e) = t.by_id.remove(&id)
            && t.by_peer.get(&(e.transport, e.peer)) == Some(&id)
        {
            t.by_peer.remove(&(e.transport, e.peer));
        }
    }

    /// Registers a connected stream and spawns its task.
    fn spawn_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> mpsc::Sender<Bytes> {
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
        {
            let mut t = self.table();
            t.by_id.insert(
                id,
                ConnEntry {
                    peer,
                    transport: Transport::Tcp,
                    tx: tx.clone(),
                },
            );
            t.by_peer.insert((Transport::Tcp, peer), id);
        }
        let info = ConnInfo {
            id,
            peer,
            local,
            transport: Transport::Tcp,
        };
        tokio::spawn(stream::run(
            self.clone(),
            info,
            stream,
            rx,
            tx.clone(),
            self.shutdown.clone(),
        ));
        tx
    }
}

/// The running transport. Cheap to clone; the socket tasks stop when the
/// shutdown signal given to [`SipTransport::bind`] turns `true` (or its
/// sender is dropped).
#[derive(Clone)]
pub struct SipTransport {
    inner: Arc<Inner>,
}

impl SipTransport {
    /// Binds the configured listeners and starts their tasks; returns the
    /// transport and the receiving end of the bounded incoming channel.
    pub async fn bind(
        config: TransportConfig,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<(SipTransport, mpsc::Receiver<Incoming>)> {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let udp = match config.udp {
            Some(addr) => {
                let sock = UdpSocket::bind(addr).await?;
                let local = sock.local_addr()?;
                Some((Arc::new(sock), local))
            }
            None => None,
        };
        let tcp = match config.tcp {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let tcp_local = tcp.as_ref().map(|l| l.local_addr()).transpose()?;
        let inner = Arc::new(Inner {
            config,
            udp: udp.clone(),
            tcp_local,
            incoming: tx,
            dropped: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(ConnTable::default()),
            shutdown: shutdown.clone(),
        });
        if let Some((sock, local)) = udp {
            tokio::spawn(udp_loop(inner.clone(), sock, local, shutdown.clone()));
        }
        if let Some(listener) = tcp {
            tokio::spawn(accept_loop(inner.clone(), listener, shutdown));
        }
        Ok((SipTransport { inner }, rx))
    }

    /// The bound local address of a transport.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.inner.udp.as_ref().map(|(_, a)| *a),
            Transport::Tcp => self.inner.tcp_local,
            Transport::Tls => None,
        }
    }

    /// The `(host, port)` to put in Via and Contact for a transport: the
    /// configured public host/port where set, else the bound address. The
    /// listen address and the advertised one differ behind NAT (RFC 3261
    /// §18.1.1 sent-by must be reachable by the peer).
    pub fn advertised(&self, transport: Transport) -> Option<(String, u16)> {
        let local = self.local_addr(transport)?;
        let c = &self.inner.config;
        let host = c
            .public_host
            .clone()
            .unwrap_or_else(|| local.ip().to_string());
        Some((host, c.public_port.unwrap_or(local.port())))
    }

    /// Received messages dropped because the incoming queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Open stream connections.
    pub fn connection_count(&self) -> usize {
        self.inner.table().by_id.len()
    }

    /// Sends a message. UDP goes straight out of the listening socket (so
    /// the source port is the advertised one). TCP uses, in order, the
    /// named connection, an open connection to the destination, or a new
    /// connection made within the connect timeout (§18.1.1, §18.2.2).
    pub async fn send(&self, out: Outgoing) -> Result<(), SendError> {
        match out.transport {
            Transport::Udp => {
                let (sock, _) = self
                    .inner
                    .udp
                    .as_ref()
                    .ok_or(SendError::NotBound(Transport::Udp))?;
                sock.send_to(&out.bytes, out.destination).await?;
                Ok(())
            }
            Transport::Tls => Err(SendError::Unsupported(Transport::Tls)),
            Transport::Tcp => {
                let existing = {
                    let t = self.inner.table();
                    out.connection
                        .and_then(|id| t.by_id.get(&id))
                        .or_else(|| {
                            t.by_peer
                                .get(&(Transport::Tcp, out.destination))
                                .and_then(|id| t.by_id.get(id))
                        })
                        .map(|e| e.tx.clone())
                };
                let tx = match existing {
                    Some(tx) => tx,
                    None => {
                        let stream = tokio::time::timeout(
                            self.inner.config.connect_timeout,
                            TcpStream::connect(out.destination),
                        )
                        .await
                        .map_err(|_| SendError::ConnectTimeout(out.destination))??;
                        self.inner.spawn_connection(stream, out.destination)
                    }
                };
                tx.try_send(out.bytes).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
                    mpsc::error::TrySendError::Closed(_) => SendError::Closed,
                })
            }
        }
    }
}

async fn udp_loop(
    inner: Arc<Inner>,
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        tokio::select! {
            _ = wait_shutdown(&mut shutdown) => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    let data = &buf[..n];
                    // CRLF keep-alives (RFC 5626 §4.4.1 is STUN on UDP,
                    // but many UAs send bare CRLFs) and empty datagrams.
                    if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
                        continue;
                    }
                    inner.deliver(Incoming {
                        bytes: Bytes::copy_from_slice(data),
                        source,
                        transport: Transport::Udp,
                        local,
                        connection: None,
                    });
                }
                // ICMP errors surface on the next recv on some systems;
                // they concern an earlier send, not this socket's health.
                Err(e) => tracing::debug!(error = %e, "udp recv error"),
            }
        }
    }
}

async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = wait_shutdown(&mut shutdown) => return,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    inner.spawn_connection(stream, peer);
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}
