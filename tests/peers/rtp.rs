//! A loopback RTP endpoint in Rust that records (and optionally echoes)
//! whatever a peer or the server under test sends, so no packet capture tool
//! is needed; and the analysis of recorded RTP: per-stream PCM, RFC 4733
//! digits, payload types.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotline_media::codec::g711::{self, Law};
use hotline_media::dtmf::rfc4733::TelephoneEvent;
use hotline_media::rtp::RtpPacket;

/// One datagram as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// Arrival time.
    pub at: Instant,
    /// Sender.
    pub from: SocketAddr,
    /// The datagram.
    pub data: Vec<u8>,
}

/// A UDP socket on 127.0.0.1 whose thread records every datagram until
/// [`finish`](Self::finish) (or drop). With `echo`, each datagram is also
/// sent straight back to its sender (an RTP echo peer).
pub struct RtpSink {
    port: u16,
    stop: Arc<AtomicBool>,
    packets: Arc<Mutex<Vec<Received>>>,
    thread: Option<JoinHandle<()>>,
}

impl RtpSink {
    /// Binds `port` (0 = a free one from [`super::ports`]) and starts recording.
    pub fn bind(port: u16, echo: bool) -> anyhow::Result<Self> {
        let port = if port == 0 {
            super::ports::free_udp_block(2)
        } else {
            port
        };
        let socket = UdpSocket::bind((super::LOOPBACK, port))?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let (stop2, packets2) = (stop.clone(), packets.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    if echo {
                        let _ = socket.send_to(&buf[..n], from);
                    }
                    let r = Received {
                        at: Instant::now(),
                        from,
                        data: buf[..n].to_vec(),
                    };
                    packets2.lock().unwrap_or_else(|e| e.into_inner()).push(r);
                }
            }
        });
        Ok(Self {
            port,
            stop,
            packets,
            thread: Some(thread),
        })
    }

    /// The bound port (put it in the SDP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Datagrams so far.
    pub fn count(&self) -> usize {
        self.packets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Waits until at least `n` datagrams arrived, at most `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        super::ports::poll_until(timeout, || self.count() >= n).map_err(|_| {
            anyhow::anyhow!(
                "only {} of {n} RTP packets on :{} after {timeout:?}",
                self.count(),
                self.port
            )
        })
    }

    /// Stops the thread, closes the socket and returns what was recorded.
    pub fn finish(mut self) -> Capture {
        self.stop_thread();
        let packets = std::mem::take(&mut *self.packets.lock().unwrap_or_else(|e| e.into_inner()));
        Capture::new(packets.into_iter().map(|r| r.data))
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// One RTP packet's header fields and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Payload type.
    pub pt: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub ts: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Parsed RTP in arrival order; non-RTP datagrams (RTCP, junk) are counted
/// and dropped.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// The RTP packets.
    pub packets: Vec<Packet>,
    /// Datagrams that were not RTP (or were RTCP).
    pub other: usize,
}

impl Capture {
    /// Parses datagrams.
    pub fn new(datagrams: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut c = Capture::default();
        for d in datagrams {
            match RtpPacket::parse(&d) {
                Ok(p) if !hotline_media::rtp::is_rtcp(&d) => c.packets.push(Packet {
                    pt: p.payload_type(),
                    marker: p.marker(),
                    seq: p.sequence(),
                    ts: p.timestamp(),
                    ssrc: p.ssrc(),
                    payload: p.payload().to_vec(),
                }),
                _ => c.other += 1,
            }
        }
        c
    }

    /// Distinct SSRCs, in order of first appearance.
    pub fn ssrcs(&self) -> Vec<u32> {
        let mut v = Vec::new();
        for p in &self.packets {
            if !v.contains(&p.ssrc) {
                v.push(p.ssrc);
            }
        }
        v
    }

    /// Packets per payload type.
    pub fn payload_types(&self) -> BTreeMap<u8, usize> {
        let mut m = BTreeMap::new();
        for p in &self.packets {
            *m.entry(p.pt).or_default() += 1;
        }
        m
    }

    /// Audio of payload type 0 (PCMU) or 8 (PCMA), all SSRCs, ordered by
    /// (SSRC first appearance, extended sequence number), decoded to PCM.
    /// Lost packets are skipped, not concealed.
    pub fn g711_pcm(&self) -> Vec<i16> {
        let mut out = Vec::new();
        for ssrc in self.ssrcs() {
            let mut frames: Vec<(i64, u8, &[u8])> = Vec::new();
            let (mut last, mut ext) = (None::<u16>, 0i64);
            for p in self
                .packets
                .iter()
                .filter(|p| p.ssrc == ssrc && (p.pt == 0 || p.pt == 8))
            {
                if let Some(l) = last {
                    let d = p.seq.wrapping_sub(l) as i16;
                    ext += i64::from(d);
                }
                last = Some(p.seq);
                frames.push((ext, p.pt, &p.payload));
            }
            frames.sort_by_key(|f| f.0);
            frames.dedup_by_key(|f| f.0);
            for (_, pt, payload) in frames {
                g711::decode_slice(if pt == 0 { Law::Mu } else { Law::A }, payload, &mut out);
            }
        }
        out
    }

    /// RFC 4733 digits: one per distinct (SSRC, timestamp) whose packets
    /// carry the E bit, in order of arrival. `dtmf_pt` None = any dynamic
    /// payload type (96–127) with 4-byte payloads.
    pub fn digits(&self, dtmf_pt: Option<u8>) -> String {
        let mut seen = Vec::new();
        let mut out = String::new();
        for p in &self.packets {
            let is_event = match dtmf_pt {
                Some(pt) => p.pt == pt,
                None => (96..=127).contains(&p.pt) && p.payload.len() == 4,
            };
            if !is_event {
                continue;
            }
            let Ok(ev) = TelephoneEvent::decode(&p.payload) else {
                continue;
            };
            if ev.end && !seen.contains(&(p.ssrc, p.ts)) {
                seen.push((p.ssrc, p.ts));
                out.push(ev.digit().map_or('?', |d| d.to_char()));
            }
        }
        out
    }
}
