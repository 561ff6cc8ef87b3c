//! One stream connection (TCP now, TLS later): framing in, queued writes
//! out, keep-alive pongs, idle timeout.

use super::driver::Inner;
use super::{ConnectionId, Incoming, Transport};
use crate::message::{Frame, StreamFramer};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// A RFC 5626 §3.5.1 pong.
const PONG: &[u8] = b"\r\n";

/// Addresses and identity of one connection.
pub(crate) struct ConnInfo {
    pub id: ConnectionId,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub transport: Transport,
}

/// Runs a connection until EOF, error, idle timeout, framing error or
/// shutdown, then removes it from the table. Generic over the stream so
/// a TLS stream can use the same code.
pub(crate) async fn run<S>(
    inner: Arc<Inner>,
    info: ConnInfo,
    stream: S,
    mut writes: mpsc::Receiver<Bytes>,
    pong: mpsc::Sender<Bytes>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = async move {
        while let Some(b) = writes.recv().await {
            if let Err(e) = wr.write_all(&b).await {
                tracing::debug!(error = %e, "stream write failed");
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    let idle = inner.config.idle_timeout;
    let max = inner.config.max_message_size;
    let reader = {
        let inner = inner.clone();
        let info = &info;
        async move {
            let mut framer = StreamFramer::new(max);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match tokio::time::timeout(idle, rd.read(&mut buf)).await {
                    Err(_) => {
                        tracing::debug!(peer = %info.peer, "closing idle connection");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %info.peer, error = %e, "stream read failed");
                        return;
                    }
                    Ok(Ok(0)) => return,
                    Ok(Ok(n)) => n,
                };
                framer.push(&buf[..n]);
                loop {
                    match framer.next_frame() {
                        Ok(Some(Frame::Message(bytes))) => inner.deliver(Incoming {
                            bytes,
                            source: info.peer,
                            transport: info.transport,
                            local: info.local,
                            connection: Some(info.id),
                        }),
                        Ok(Some(Frame::Ping)) => {
                            let _ = pong.try_send(Bytes::from_static(PONG));
                        }
                        Ok(Some(Frame::Pong)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            // §18.3: a stream that cannot be framed cannot
                            // be resynchronised; close it.
                            tracing::debug!(peer = %info.peer, error = %e, "closing unframeable stream");
                            return;
                        }
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
        _ = super::driver::wait_shutdown(&mut shutdown) => {}
    }
    inner.remove_connection(info.id);
}
