//! The tokio transport over 127.0.0.1.

use bytes::Bytes;
use hotline_sip::transport::{
    Incoming, Outgoing, SendError, SipTransport, Transport, TransportConfig,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

const WAIT: Duration = Duration::from_secs(5);

fn options(tag: &str) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:h@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK{tag}\r\nFrom: <sip:a@127.0.0.1>;tag={tag}\r\nTo: <sip:h@127.0.0.1>\r\nCall-ID: {tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start(
    udp: bool,
    tcp: bool,
    queue: usize,
) -> (SipTransport, mpsc::Receiver<Incoming>, watch::Sender<bool>) {
    let (stop, rx_stop) = watch::channel(false);
    let config = TransportConfig {
        udp: udp.then(loopback),
        tcp: tcp.then(loopback),
        queue_capacity: queue,
        ..Default::default()
    };
    let (t, rx) = SipTransport::bind(config, rx_stop).await.unwrap();
    (t, rx, stop)
}

async fn recv(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timely")
        .expect("open")
}

#[tokio::test]
async fn udp_round_trip() {
    let (a, mut a_rx, _a_stop) = start(true, false, 16).await;
    let (b, mut b_rx, _b_stop) = start(true, false, 16).await;
    let a_addr = a.local_addr(Transport::Udp).unwrap();
    let b_addr = b.local_addr(Transport::Udp).unwrap();
    a.send(Outgoing {
        bytes: options("u1"),
        destination: b_addr,
        transport: Transport::Udp,
        connection: None,
    })
    .await
    .unwrap();
    let got = recv(&mut b_rx).await;
    assert_eq!(got.bytes, options("u1"));
    assert_eq!(got.source, a_addr, "sent from the listening socket");
    assert_eq!(got.local, b_addr);
    assert_eq!(got.transport, Transport::Udp);
    assert_eq!(got.connection, None);
    b.send(Outgoing {
        bytes: options("u2"),
        destination: got.source,
        transport: Transport::Udp,
        connection: None,
    })
    .await
    .unwrap();
    assert_eq!(recv(&mut a_rx).await.bytes, options("u2"));
}

#[tokio::test]
async fn udp_keepalives_are_ignored() {
    let (b, mut b_rx, _stop) = start(true, false, 16).await;
    let sock = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    let dest = b.local_addr(Transport::Udp).unwrap();
    sock.send_to(b"\r\n\r\n", dest).await.unwrap();
    sock.send_to(&options("k"), dest).await.unwrap();
    assert_eq!(recv(&mut b_rx).await.bytes, options("k"));
}

#[tokio::test]
async fn tcp_round_trip_reuses_the_connection() {
    let (server, mut s_rx, _s_stop) = start(false, true, 16).await;
    let (client, mut c_rx, _c_stop) = start(false, true, 16).await;
    let s_addr = server.local_addr(Transport::Tcp).unwrap();
    for i in 0..3 {
        client
            .send(Outgoing {
                bytes: options(&format!("t{i}")),
                destination: s_addr,
                transport: Transport::Tcp,
                connection: None,
            })
            .await
            .unwrap();
    }
    let mut conns = Vec::new();
    for i in 0..3 {
        let got = recv(&mut s_rx).await;
        assert_eq!(got.bytes, options(&format!("t{i}")));
        assert_eq!(got.transport, Transport::Tcp);
        conns.push(got.connection.unwrap());
    }
    assert!(
        conns.iter().all(|c| *c == conns[0]),
        "one connection for all three"
    );
    assert_eq!(client.connection_count(), 1);
    assert_eq!(server.connection_count(), 1);
    // The response goes back on the same connection, whatever the address.
    let got_source = {
        server
            .send(Outgoing {
                bytes: options("reply"),
                destination: "127.0.0.1:9".parse().unwrap(),
                transport: Transport::Tcp,
                connection: Some(conns[0]),
            })
            .await
            .unwrap();
        recv(&mut c_rx).await
    };
    assert_eq!(got_source.bytes, options("reply"));
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn tcp_keepalive_ping_gets_pong_and_bad_framing_closes() {
    let (server, mut s_rx, _stop) = start(false, true, 16).await;
    let addr = server.local_addr(Transport::Tcp).unwrap();
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(WAIT, raw.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    // Split writes still frame.
    let msg = options("split");
    raw.write_all(&msg[..10]).await.unwrap();
    raw.flush().await.unwrap();
    raw.write_all(&msg[10..]).await.unwrap();
    assert_eq!(recv(&mut s_rx).await.bytes, msg);
    // No Content-Length on a stream: the server closes the connection.
    raw.write_all(b"OPTIONS sip:h SIP/2.0\r\nVia: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, raw.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "closed without sending anything");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let (stop, rx_stop) = watch::channel(false);
    let config = TransportConfig {
        tcp: Some(loopback()),
        idle_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let (server, _rx) = SipTransport::bind(config, rx_stop).await.unwrap();
    let mut raw = tokio::net::TcpStream::connect(server.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(WAIT, raw.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    // The table entry is removed after the task ends.
    for _ in 0..50 {
        if server.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.connection_count(), 0);
    drop(stop);
}

#[tokio::test]
async fn full_queue_drops_and_counts() {
    let (b, mut b_rx, _stop) = start(true, false, 2).await;
    let dest = b.local_addr(Transport::Udp).unwrap();
    let sock = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    for i in 0..10 {
        sock.send_to(&options(&format!("q{i}")), dest)
            .await
            .unwrap();
    }
    // Nobody reads: two fit, the other eight are dropped, not waited on.
    let mut waited = 0;
    while b.dropped() < 8 && waited < 250 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(b.dropped(), 8);
    assert_eq!(recv(&mut b_rx).await.bytes, options("q0"));
    assert_eq!(recv(&mut b_rx).await.bytes, options("q1"));
    // After draining, the loop still delivers.
    sock.send_to(&options("after"), dest).await.unwrap();
    assert_eq!(recv(&mut b_rx).await.bytes, options("after"));
}

#[tokio::test]
async fn advertised_address_and_unsupported_sends() {
    let (stop, rx_stop) = watch::channel(false);
    let config = TransportConfig {
        udp: Some(loopback()),
        public_host: Some("203.0.113.5".into()),
        public_port: Some(5060),
        ..Default::default()
    };
    let (t, _rx) = SipTransport::bind(config, rx_stop).await.unwrap();
    assert_eq!(
        t.advertised(Transport::Udp),
        Some(("203.0.113.5".into(), 5060))
    );
    assert_eq!(t.advertised(Transport::Tcp), None);
    let (plain, _prx, _pstop) = start(true, false, 4).await;
    let local = plain.local_addr(Transport::Udp).unwrap();
    assert_eq!(
        plain.advertised(Transport::Udp),
        Some(("127.0.0.1".into(), local.port()))
    );
    let out = |transport| Outgoing {
        bytes: options("x"),
        destination: local,
        transport,
        connection: None,
    };
    assert!(matches!(
        t.send(out(Transport::Tls)).await,
        Err(SendError::Unsupported(Transport::Tls))
    ));
    // Outbound TCP needs no listener; nothing listens on that TCP port.
    assert!(matches!(
        t.send(out(Transport::Tcp)).await,
        Err(SendError::Io(_))
    ));
    let (tcp_only, _trx, _tstop) = start(false, true, 4).await;
    assert!(matches!(
        tcp_only.send(out(Transport::Udp)).await,
        Err(SendError::NotBound(Transport::Udp))
    ));
    drop(stop);
}

#[tokio::test]
async fn shutdown_stops_the_loops() {
    let (t, mut rx, stop) = start(true, true, 4).await;
    let udp = t.local_addr(Transport::Udp).unwrap();
    stop.send(true).unwrap();
    drop(t);
    // Once every task has exited, the last sender is gone and the channel
    // closes.
    let closed = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("tasks exit");
    assert!(closed.is_none());
    // The UDP socket is released.
    tokio::net::UdpSocket::bind(udp)
        .await
        .expect("port is free again");
}
