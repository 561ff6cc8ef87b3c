//! A talking RTP peer: the media side of a caller whose SIP side is sipp.
//! It sends a script of PCMU audio paced at 20 ms from the moment the
//! server's first packet arrives (the answer), optionally mixes the
//! server's own audio back in at a lower level (a line or speakerphone
//! echo), and records when each of the server's packets arrived and how
//! loud it was, so a test can tell to the packet when the agent stopped.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotline_media::codec::g711::{self, Law};
use hotline_media::rtp::RtpPacket;

const FRAME: usize = 160;
const PTIME: Duration = Duration::from_millis(20);

/// How the peer talks.
#[derive(Debug, Clone, Default)]
pub struct TalkerConfig {
    /// 8 kHz mono speech and silence, sent from the answer on; silence
    /// after it.
    pub script: Vec<i16>,
    /// Mix the server's audio back at this gain (0.316 is −10 dB), this
    /// many frames late.
    pub echo: Option<(f32, usize)>,
}

/// One packet from the server.
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    /// Since the first packet from the server (the answer).
    pub at: Duration,
    /// RMS relative to full scale.
    pub rms: f64,
}

/// What happened on the line.
#[derive(Debug, Clone, Default)]
pub struct Talk {
    /// The server's packets, in arrival order.
    pub heard: Vec<Heard>,
    /// When each frame of the script went out, since the answer.
    pub sent: Vec<Duration>,
    /// The server's audio as received (8 kHz, packets in arrival order,
    /// no gaps filled), for tests that look at what was said.
    pub pcm: Vec<i16>,
    /// RFC 4733 digits the server sent, once each (by the end packets of
    /// each event: its RTP timestamp tells retransmitted ends apart).
    pub digits: Vec<char>,
}

impl Talk {
    /// When the script's first frame louder than `rms` went out.
    pub fn onset(&self, script: &[i16], rms: f64) -> Option<Duration> {
        script
            .chunks(FRAME)
            .position(|f| super::audio::rms(f) > rms)
            .and_then(|i| self.sent.get(i).copied())
    }

    /// The last loud packet before a quiet run of `quiet` that starts at
    /// or after `from`: when the server's speech stopped.
    pub fn stopped_after(&self, from: Duration, quiet: usize) -> Option<Duration> {
        let loud = |h: &Heard| h.rms > super::audio::NON_SILENT_RMS;
        let start = self.heard.iter().position(|h| h.at >= from)?;
        let mut last_loud = None;
        let mut run = 0;
        for h in &self.heard[start..] {
            if loud(h) {
                last_loud = Some(h.at);
                run = 0;
            } else {
                run += 1;
                if run >= quiet {
                    return Some(last_loud.unwrap_or(from));
                }
            }
        }
        None
    }
}

/// A running peer; stops on [`finish`](Self::finish) or drop.
pub struct Talker {
    port: u16,
    stop: Arc<AtomicBool>,
    talk: Arc<Mutex<Talk>>,
    thread: Option<JoinHandle<()>>,
}

impl Talker {
    /// Binds a free port on 127.0.0.1 and waits for the server's audio.
    pub fn start(config: TalkerConfig) -> anyhow::Result<Talker> {
        let port = super::ports::free_udp_block(2);
        let socket = UdpSocket::bind((super::LOOPBACK, port))?;
        let stop = Arc::new(AtomicBool::new(false));
        let talk = Arc::new(Mutex::new(Talk::default()));
        let (stop2, talk2) = (stop.clone(), talk.clone());
        let thread = std::thread::spawn(move || run(socket, config, &stop2, &talk2));
        Ok(Talker {
            port,
            stop,
            talk,
            thread: Some(thread),
        })
    }

    /// The RTP port to put in the SDP offer.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops and returns what happened.
    pub fn finish(mut self) -> Talk {
        self.stop_thread();
        std::mem::take(&mut *self.talk.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn run(socket: UdpSocket, config: TalkerConfig, stop: &AtomicBool, talk: &Mutex<Talk>) {
    let mut buf = [0u8; 2048];
    let mut server: Option<(SocketAddr, Instant)> = None;
    let mut frame_no = 0u32;
    let ssrc = 0x7a1c_0001u32;
    // The server's decoded frames, for the echo.
    let mut echo_line: std::collections::VecDeque<Vec<i16>> = std::collections::VecDeque::new();
    // RTP timestamps of the events whose end was seen.
    let mut ended_events: Vec<u32> = Vec::new();
    // Bounded: the peer lives at most this long.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let next_send = server.map(|(_, t0)| t0 + PTIME * frame_no);
        let wait = next_send
            .map_or(PTIME, |t| t.saturating_duration_since(Instant::now()))
            .max(Duration::from_micros(500));
        let _ = socket.set_read_timeout(Some(wait));
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let now = Instant::now();
            let t0 = server.get_or_insert((from, now)).1;
            if let Ok(p) = RtpPacket::parse(&buf[..n])
                && p.payload_type() != 0
                && p.payload().len() == 4
                && p.payload()[1] & 0x80 != 0
            {
                // An RFC 4733 event's end (any dynamic type: the talker
                // offers telephone-event and PCMU only).
                let ts = p.timestamp();
                if !ended_events.contains(&ts) {
                    ended_events.push(ts);
                    let digit = match p.payload()[0] {
                        d @ 0..=9 => char::from(b'0' + d),
                        10 => '*',
                        11 => '#',
                        d @ 12..=15 => char::from(b'A' + d - 12),
                        _ => '?',
                    };
                    talk.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .digits
                        .push(digit);
                }
            } else if let Ok(p) = RtpPacket::parse(&buf[..n])
                && p.payload_type() == 0
            {
                let mut pcm = Vec::with_capacity(FRAME);
                g711::decode_slice(Law::Mu, p.payload(), &mut pcm);
                let rms = super::audio::rms(&pcm);
                {
                    let mut talk = talk.lock().unwrap_or_else(|e| e.into_inner());
                    talk.heard.push(Heard { at: now - t0, rms });
                    talk.pcm.extend_from_slice(&pcm);
                }
                if config.echo.is_some() {
                    echo_line.push_back(pcm);
                    if echo_line.len() > 100 {
                        echo_line.pop_front();
                    }
                }
            }
        }
        let Some((to, t0)) = server else { continue };
        while Instant::now() >= t0 + PTIME * frame_no {
            let start = frame_no as usize * FRAME;
            let mut frame: Vec<i16> = config
                .script
                .get(start..(start + FRAME).min(config.script.len().max(start)))
                .map(<[i16]>::to_vec)
                .unwrap_or_default();
            frame.resize(FRAME, 0);
            if let Some((gain, delay)) = config.echo
                && echo_line.len() > delay
            {
                let back = echo_line.pop_front().unwrap_or_default();
                for (s, e) in frame.iter_mut().zip(back) {
                    *s = s.saturating_add((f32::from(e) * gain) as i16);
                }
            }
            let mut payload = Vec::with_capacity(FRAME);
            g711::encode_slice(Law::Mu, &frame, &mut payload);
            let mut packet = Vec::with_capacity(12 + FRAME);
            packet.extend_from_slice(&[0x80, if frame_no == 0 { 0x80 } else { 0 }]);
            packet.extend_from_slice(&(frame_no as u16).to_be_bytes());
            packet.extend_from_slice(&(frame_no * FRAME as u32).to_be_bytes());
            packet.extend_from_slice(&ssrc.to_be_bytes());
            packet.extend_from_slice(&payload);
            let _ = socket.send_to(&packet, to);
            talk.lock()
                .unwrap_or_else(|e| e.into_inner())
                .sent
                .push(Instant::now() - t0);
            frame_no += 1;
        }
    }
}
