//! The media port allocator: even ports from the range, exhaustion, reuse
//! after drop, rtcp-mux.

use std::net::IpAddr;

use hotline::config::RtpConfig;
use hotline::rtp::{PortAllocator, PortError};

fn config(min: u16, max: u16) -> RtpConfig {
    RtpConfig {
        port_min: min,
        port_max: max,
        bind_ip: IpAddr::from([127, 0, 0, 1]),
        public_ip: None,
        ..RtpConfig::default()
    }
}

#[test]
fn exhaustion_and_reuse_after_drop() {
    // Two slots: 47310/47311 and 47312/47313.
    let alloc = PortAllocator::new(&config(47310, 47313));
    let a = alloc.allocate(false).unwrap();
    let b = alloc.allocate(false).unwrap();
    assert_eq!(alloc.in_use(), 2);
    let mut ports = [a.port(), b.port()];
    ports.sort();
    assert_eq!(ports, [47310, 47312]);
    for s in [&a, &b] {
        assert_eq!(s.port() % 2, 0);
        let rtcp = s.rtcp.as_ref().unwrap().local_addr().unwrap();
        assert_eq!(rtcp.port(), s.port() + 1);
        assert_eq!(s.rtp.local_addr().unwrap().port(), s.port());
    }
    let err = alloc.allocate(false).unwrap_err();
    assert!(
        matches!(err, PortError::Exhausted { in_use: 2, .. }),
        "{err}"
    );

    let freed = a.port();
    drop(a);
    assert_eq!(alloc.in_use(), 1);
    let c = alloc.allocate(true).unwrap();
    assert_eq!(c.port(), freed);
    assert!(c.rtcp.is_none(), "rtcp-mux needs no second socket");
    // The RTCP port of a mux allocation stays free for others.
    std::net::UdpSocket::bind(("127.0.0.1", freed + 1)).unwrap();
}

#[test]
fn ports_taken_by_others_are_skipped() {
    let squatter = std::net::UdpSocket::bind(("127.0.0.1", 47320)).unwrap();
    let alloc = PortAllocator::new(&config(47320, 47323));
    let s = alloc.allocate(false).unwrap();
    assert_eq!(s.port(), 47322);
    assert!(matches!(
        alloc.allocate(false),
        Err(PortError::Exhausted { .. })
    ));
    // A failed bind does not leak a lease.
    assert_eq!(alloc.in_use(), 1);
    drop(squatter);
    assert_eq!(alloc.allocate(false).unwrap().port(), 47320);
}

#[test]
fn empty_range_is_an_error() {
    let alloc = PortAllocator::new(&config(47331, 47331));
    assert!(matches!(
        alloc.allocate(true),
        Err(PortError::EmptyRange { .. })
    ));
}

#[test]
fn random_start_spreads_allocations() {
    let alloc = PortAllocator::new(&config(47400, 47599));
    let mut first = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let s = alloc.allocate(true).unwrap();
        first.insert(s.port());
    }
    // Dropped immediately each time; a fixed start would reuse one port.
    assert!(first.len() > 5, "{first:?}");
}
