//! RFC 3264 offer/answer for one audio stream: answering offers, creating
//! offers, and reading answers to our offers. Pure functions of their inputs;
//! [`super::MediaSession`] adds the per-call state.

use std::net::{IpAddr, SocketAddr};

use super::codec::{Codec, LocalCapabilities, TELEPHONE_EVENT};
use super::model::{
    Attribute, Connection, Direction, MediaDescription, Origin, SessionDescription, Timing,
};

/// The outcome of a negotiation: what the call's RTP task needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// The codec both ends use; the first of the offerer's list we support,
    /// so that nothing is transcoded.
    pub codec: Codec,
    /// The payload type it travels under (the offerer's number, RFC 3264 §6.1).
    pub payload_type: u8,
    /// The codec's RTP clock rate.
    pub clock_rate: u32,
    /// The codec's channel count as SDP states it.
    pub channels: u16,
    /// The payload type of `telephone-event` at the codec's clock rate, when
    /// both ends use RFC 4733 events.
    pub telephone_event_pt: Option<u8>,
    /// Packet duration in ms.
    pub ptime: u32,
    /// Where to send RTP; `None` while the peer gave the hold address
    /// `0.0.0.0`/`::`, a host name, or port 0.
    pub remote_addr: Option<SocketAddr>,
    /// Where to send RTCP: the RTP address with rtcp-mux, `a=rtcp` when
    /// given (RFC 3605), else the next port up (RFC 3550 §11).
    pub remote_rtcp_addr: Option<SocketAddr>,
    /// Whether RTP and RTCP share our port (RFC 5761).
    pub rtcp_mux: bool,
    /// The stream's direction from our side: `SendOnly` means we send and
    /// do not expect to receive.
    pub direction: Direction,
    /// The peer's `a=fmtp` for the codec: how it wants to receive (e.g.
    /// Opus `useinbandfec=1; maxplaybackrate=16000`).
    pub fmtp: Option<String>,
    /// Whether the peer has put the call on hold (RFC 3264 §8.4: it
    /// offered sendonly or inactive, or the RFC 2543 address `0.0.0.0`).
    pub remote_hold: bool,
    /// Index of the audio `m=` section in the description.
    pub media_index: usize,
}

impl NegotiatedMedia {
    /// One parameter of [`fmtp`](Self::fmtp), e.g. `useinbandfec`; names
    /// compare case-insensitively (RFC 7587 §6.1 parameters are
    /// `name=value` pairs separated by `;`).
    pub fn fmtp_param(&self, name: &str) -> Option<&str> {
        self.fmtp.as_deref()?.split(';').find_map(|p| {
            let (n, v) = p.split_once('=')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// Whether we should send RTP now.
    pub fn should_send(&self) -> bool {
        self.direction.sends() && self.remote_addr.is_some()
    }
}

/// Why an offer or answer cannot be used. Answering an INVITE fails with
/// `488 Not Acceptable Here` (RFC 3261 §21.4.26) carrying [`Self::warning`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// No audio `m=` section with a non-zero port.
    #[error("no audio stream offered")]
    NoAudioStream,
    /// Audio was offered only over transports we lack (SRTP, DTLS).
    #[error("unsupported media transport {0}")]
    UnsupportedTransport(String),
    /// Audio was offered only with codecs we do not support.
    #[error("no codec in common")]
    NoCommonCodec,
    /// The answer rejected our audio stream with port 0.
    #[error("audio stream rejected by the answer")]
    Rejected,
    /// The answer does not match our offer (RFC 3264 §6: same number of
    /// `m=` sections).
    #[error("answer has {answered} media sections for {offered} offered")]
    MediaCountMismatch {
        /// Sections in our offer.
        offered: usize,
        /// Sections in the answer.
        answered: usize,
    },
}

/// The `Warning` text for a 488 whose offer had no usable media type.
pub const WARNING_304_TEXT: &str = "Media type not available";

impl NegotiationError {
    /// The SIP status to reject an offer with.
    pub fn status_code(&self) -> u16 {
        488
    }

    /// The RFC 3261 §20.43 warning code that describes the failure.
    pub fn warning_code(&self) -> u16 {
        match self {
            NegotiationError::NoAudioStream | NegotiationError::Rejected => 304,
            NegotiationError::UnsupportedTransport(_) => 302,
            NegotiationError::NoCommonCodec => 305,
            NegotiationError::MediaCountMismatch { .. } => 399,
        }
    }

    /// The RFC 3261 §20.43 text for [`Self::warning_code`].
    pub fn warning_text(&self) -> &'static str {
        match self.warning_code() {
            302 => "Incompatible transport protocol",
            304 => WARNING_304_TEXT,
            305 => "Incompatible media format",
            _ => "Session description not understood",
        }
    }

    /// A `Warning` header value, e.g. `305 hotline.example "Incompatible
    /// media format"`; `agent` is our host name or pseudonym.
    pub fn warning(&self, agent: &str) -> String {
        format!(
            "{} {agent} \"{}\"",
            self.warning_code(),
            self.warning_text()
        )
    }
}

/// `Warning: 304 <agent> "Media type not available"`, the catch-all value
/// carriers send with 488 for a media mismatch.
pub fn warning_304(agent: &str) -> String {
    format!("304 {agent} \"{WARNING_304_TEXT}\"")
}

/// An answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer description to send.
    pub sdp: SessionDescription,
    /// What was agreed.
    pub media: NegotiatedMedia,
}

/// Whether we can carry RTP over this transport: plain RTP profiles only,
/// since Hotline has no SRTP or DTLS. RTP/AVPF is RTP/AVP plus optional
/// feedback (RFC 4585 §3.5), which we may ignore.
fn transport_supported(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("RTP/AVP") || protocol.eq_ignore_ascii_case("RTP/AVPF")
}

fn is_audio(m: &MediaDescription) -> bool {
    m.media.eq_ignore_ascii_case("audio")
}

/// Whether the peer holds the stream at `index` (RFC 3264 §8.4): it will not
/// receive, because it said sendonly or inactive or gave the RFC 2543 hold
/// address `0.0.0.0`.
pub fn is_hold(sdp: &SessionDescription, index: usize) -> bool {
    let dir = sdp.direction_for(index);
    !dir.receives()
        || sdp
            .connection_for(index)
            .is_some_and(Connection::is_hold_address)
}

/// The direction the writer of `sdp` means for section `index`, with the
/// RFC 2543 hold address read as "does not receive".
fn effective_direction(sdp: &SessionDescription, index: usize) -> Direction {
    let dir = sdp.direction_for(index);
    let held = sdp
        .connection_for(index)
        .is_some_and(Connection::is_hold_address);
    Direction::from_flags(dir.sends(), dir.receives() && !held)
}

/// The telephone-event payload type at `clock_rate` in a media section.
fn telephone_event_pt(m: &MediaDescription, clock_rate: u32) -> Option<u8> {
    let formats: Vec<u8> = m.payload_types().collect();
    m.rtpmaps()
        .find(|r| {
            r.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT)
                && r.clock_rate == clock_rate
                && formats.contains(&r.payload_type)
        })
        .map(|r| r.payload_type)
}

/// The packet duration to use: the peer's `a=ptime` when the codec allows
/// it, else ours, else 20 ms, never above the peer's `a=maxptime`
/// (RFC 8866 §6.4, §6.5).
fn choose_ptime(codec: Codec, m: &MediaDescription, sdp: &SessionDescription, ours: u32) -> u32 {
    let session_number = |name: &str| {
        sdp.attribute(name)
            .and_then(|a| a.value.as_deref())
            .and_then(|v| v.trim().split('.').next()?.parse::<u32>().ok())
    };
    let offered = m.ptime().or_else(|| session_number("ptime"));
    let max = m
        .maxptime()
        .or_else(|| session_number("maxptime"))
        .unwrap_or(u32::MAX);
    [offered, Some(ours), Some(20), Some(10)]
        .into_iter()
        .flatten()
        .find(|p| codec.accepts_ptime(*p) && *p <= max)
        .unwrap_or(20)
}

/// The peer's RTP and RTCP addresses for section `index`.
fn remote_addrs(
    sdp: &SessionDescription,
    index: usize,
    rtcp_mux: bool,
) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let Some(m) = sdp.media.get(index) else {
        return (None, None);
    };
    let ip: Option<IpAddr> = sdp
        .connection_for(index)
        .filter(|c| !c.is_hold_address())
        .and_then(Connection::ip);
    let rtp = ip
        .filter(|_| m.port != 0)
        .map(|ip| SocketAddr::new(ip, m.port));
    let rtcp = rtp.and_then(|rtp| {
        if rtcp_mux {
            return Some(rtp);
        }
        match m.rtcp() {
            Some(a) => {
                let ip = a
                    .connection
                    .as_ref()
                    .and_then(Connection::ip)
                    .unwrap_or(rtp.ip());
                Some(SocketAddr::new(ip, a.port))
            }
            None => rtp
                .port()
                .checked_add(1)
                .map(|p| SocketAddr::new(rtp.ip(), p)),
        }
    });
    (rtp, rtcp)
}

/// The codec chosen from one audio section of an offer.
struct Selection {
    codec: Codec,
    payload_type: u8,
    telephone_event_pt: Option<u8>,
    telephone_event_fmtp: Option<String>,
}

fn select(m: &MediaDescription, local: &LocalCapabilities) -> Result<Selection, NegotiationError> {
    if !transport_supported(&m.protocol) {
        return Err(NegotiationError::UnsupportedTransport(m.protocol.clone()));
    }
    let (codec, payload_type) = m
        .payload_types()
        .find_map(|pt| {
            Codec::identify(m, pt)
                .filter(|c| local.codecs.contains(c))
                .map(|c| (c, pt))
        })
        .ok_or(NegotiationError::NoCommonCodec)?;
    let telephone_event_pt = local
        .telephone_event
        .then(|| telephone_event_pt(m, codec.clock_rate()))
        .flatten();
    Ok(Selection {
        codec,
        payload_type,
        telephone_event_pt,
        telephone_event_fmtp: telephone_event_pt.and_then(|pt| m.fmtp(pt).map(str::to_owned)),
    })
}

/// The session-level lines of every description we write.
fn our_description(local: &LocalCapabilities, origin: Origin) -> SessionDescription {
    SessionDescription {
        version: 0,
        origin: Some(origin),
        session_name: Some("Hotline".to_owned()),
        connection: Some(Connection::new(local.address)),
        timings: vec![Timing::default()],
        ..SessionDescription::default()
    }
}

/// An `o=` line for us.
pub fn our_origin(local: &LocalCapabilities, session_id: u64, version: u64) -> Origin {
    let c = Connection::new(local.address);
    Origin {
        username: local.username.clone(),
        session_id: session_id.to_string(),
        session_version: version,
        net_type: c.net_type,
        addr_type: c.addr_type,
        address: c.address,
    }
}

/// A section refusing a stream: same type, protocol and formats, port 0
/// (RFC 3264 §6).
fn rejected(m: &MediaDescription) -> MediaDescription {
    let mut formats = m.formats.clone();
    if formats.is_empty() {
        // RFC 8866 §5.14 requires at least one format even here.
        formats.push("0".to_owned());
    }
    MediaDescription::new(&m.media, 0, &m.protocol, formats)
}

/// The attributes describing one codec and telephone-event in our sections.
fn audio_attributes(
    out: &mut MediaDescription,
    codecs: &[(Codec, u8)],
    events: &[(u8, u32, Option<String>)],
    local: &LocalCapabilities,
) {
    for (codec, pt) in codecs {
        out.attributes
            .push(Attribute::value("rtpmap", codec.rtpmap(*pt).to_value()));
        if *codec == Codec::Opus && !local.opus_fmtp.is_empty() {
            out.attributes.push(Attribute::value(
                "fmtp",
                format!("{pt} {}", local.opus_fmtp),
            ));
        }
    }
    for (pt, rate, fmtp) in events {
        out.attributes.push(Attribute::value(
            "rtpmap",
            format!("{pt} {TELEPHONE_EVENT}/{rate}"),
        ));
        let fmtp = fmtp.as_deref().unwrap_or("0-16");
        out.attributes
            .push(Attribute::value("fmtp", format!("{pt} {fmtp}")));
    }
}

/// Answers an offer (RFC 3264 §6): one answer section per offered section,
/// in order; the first audio section we can carry is accepted with the
/// offerer's first codec we support, every other section is refused with
/// port 0. Fails, leaving any existing session untouched, when no audio
/// section can be accepted: the INVITE then gets a 488.
pub fn answer_offer(
    offer: &SessionDescription,
    local: &LocalCapabilities,
    origin: Origin,
) -> Result<Answer, NegotiationError> {
    let mut sdp = our_description(local, origin);
    let mut chosen: Option<NegotiatedMedia> = None;
    let mut error = NegotiationError::NoAudioStream;
    for (index, m) in offer.media.iter().enumerate() {
        if chosen.is_some() || !is_audio(m) || m.port == 0 {
            sdp.media.push(rejected(m));
            continue;
        }
        let sel = match select(m, local) {
            Ok(sel) => sel,
            Err(e) => {
                // Report the most telling failure: a codec mismatch over a
                // usable transport says more than an SRTP-only section.
                if e == NegotiationError::NoCommonCodec || error == NegotiationError::NoAudioStream
                {
                    error = e;
                }
                sdp.media.push(rejected(m));
                continue;
            }
        };
        let offered = effective_direction(offer, index);
        // §6.1: we may send only if the offerer receives, and receive only
        // if it sends; within that, our own wish decides.
        let direction = Direction::from_flags(
            offered.receives() && local.direction.sends(),
            offered.sends() && local.direction.receives(),
        );
        let rtcp_mux = local.rtcp_mux && m.rtcp_mux();
        let ptime = choose_ptime(sel.codec, m, offer, local.ptime);
        let (remote_addr, remote_rtcp_addr) = remote_addrs(offer, index, rtcp_mux);

        let mut formats = vec![sel.payload_type.to_string()];
        let mut events = Vec::new();
        if let Some(pt) = sel.telephone_event_pt {
            formats.push(pt.to_string());
            events.push((pt, sel.codec.clock_rate(), sel.telephone_event_fmtp.clone()));
        }
        let mut out = MediaDescription::new("audio", local.rtp_port, &m.protocol, formats);
        audio_attributes(&mut out, &[(sel.codec, sel.payload_type)], &events, local);
        out.attributes
            .push(Attribute::value("ptime", ptime.to_string()));
        if rtcp_mux {
            out.attributes.push(Attribute::flag("rtcp-mux"));
        }
        out.attributes.push(Attribute::flag(direction.as_str()));
        sdp.media.push(out);

        chosen = Some(NegotiatedMedia {
            codec: sel.codec,
            payload_type: sel.payload_type,
            clock_rate: sel.codec.clock_rate(),
            channels: sel.codec.channels(),
            telephone_event_pt: sel.telephone_event_pt,
            ptime,
            remote_addr,
            remote_rtcp_addr,
            rtcp_mux,
            direction,
            fmtp: m.fmtp(sel.payload_type).map(str::to_owned),
            remote_hold: is_hold(offer, index),
            media_index: index,
        });
    }
    match chosen {
        Some(media) => Ok(Answer { sdp, media }),
        None => Err(error),
    }
}

/// The payload types an offer of ours lists, in order.
struct PayloadPlan {
    /// Codecs and their payload types, most preferred first.
    codecs: Vec<(Codec, u8)>,
    /// Telephone-event payload types and their clock rates.
    events: Vec<(u8, u32)>,
}

/// Payload types for an offer of ours. Once a session exists its dynamic
/// mappings must not change (RFC 3264 §8.3.2), so the negotiated codec and
/// telephone-event keep their numbers and it is listed first, so that the
/// answerer keeps it; everything else gets our configured number, moved to a
/// free dynamic number on a clash.
fn offer_payload_types(
    local: &LocalCapabilities,
    current: Option<&NegotiatedMedia>,
) -> PayloadPlan {
    let mut used: Vec<u8> = Vec::new();
    let mut codecs: Vec<(Codec, u8)> = Vec::new();
    let mut events: Vec<(u8, u32)> = Vec::new();
    if let Some(cur) = current {
        codecs.push((cur.codec, cur.payload_type));
        used.push(cur.payload_type);
        if let Some(te) = cur.telephone_event_pt.filter(|_| local.telephone_event) {
            events.push((te, cur.clock_rate));
            used.push(te);
        }
    }
    let take = |wanted: u8, used: &mut Vec<u8>| -> u8 {
        let pt = if used.contains(&wanted) {
            (96..=127).find(|p| !used.contains(p)).unwrap_or(wanted)
        } else {
            wanted
        };
        used.push(pt);
        pt
    };
    for codec in &local.codecs {
        if codecs.iter().any(|(c, _)| c == codec) {
            continue;
        }
        let wanted = codec
            .static_payload_type()
            .unwrap_or(local.opus_payload_type);
        let pt = take(wanted, &mut used);
        codecs.push((*codec, pt));
    }
    if local.telephone_event {
        let mut rates: Vec<u32> = Vec::new();
        for (codec, _) in &codecs {
            if !rates.contains(&codec.clock_rate()) {
                rates.push(codec.clock_rate());
            }
        }
        for rate in rates {
            if events.iter().any(|(_, r)| *r == rate) {
                continue;
            }
            let wanted = if rate == 8000 {
                local.telephone_event_payload_type
            } else {
                local.telephone_event_48k_payload_type
            };
            let pt = take(wanted, &mut used);
            events.push((pt, rate));
        }
    }
    PayloadPlan { codecs, events }
}

/// Creates an offer (RFC 3264 §5) with one audio section listing our codecs
/// in preference order, telephone-event at each clock rate used, and our
/// direction; `current` is the session being re-offered, if any.
pub fn create_offer(
    local: &LocalCapabilities,
    origin: Origin,
    current: Option<&NegotiatedMedia>,
) -> SessionDescription {
    let mut sdp = our_description(local, origin);
    let PayloadPlan { codecs, events } = offer_payload_types(local, current);
    let formats = codecs
        .iter()
        .map(|(_, pt)| *pt)
        .chain(events.iter().map(|(pt, _)| *pt))
        .map(|pt| pt.to_string())
        .collect();
    let mut m = MediaDescription::new("audio", local.rtp_port, "RTP/AVP", formats);
    let events: Vec<(u8, u32, Option<String>)> = events
        .into_iter()
        .map(|(pt, rate)| (pt, rate, None))
        .collect();
    audio_attributes(&mut m, &codecs, &events, local);
    m.attributes
        .push(Attribute::value("ptime", local.ptime.to_string()));
    if local.rtcp_mux {
        m.attributes.push(Attribute::flag("rtcp-mux"));
    }
    m.attributes.push(Attribute::flag(local.direction.as_str()));
    sdp.media.push(m);
    sdp
}

/// Reads the answer to an offer we made (RFC 3264 §7). The answerer's
/// first listed codec that we offered is the one in use; a dynamic payload
/// type the answer does not map is read with our offer's mapping.
pub fn process_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
    local: &LocalCapabilities,
) -> Result<NegotiatedMedia, NegotiationError> {
    let index = offer
        .media
        .iter()
        .position(|m| is_audio(m) && m.port != 0)
        .ok_or(NegotiationError::NoAudioStream)?;
    if answer.media.len() != offer.media.len() {
        return Err(NegotiationError::MediaCountMismatch {
            offered: offer.media.len(),
            answered: answer.media.len(),
        });
    }
    let ours = &offer.media[index];
    let m = &answer.media[index];
    if m.port == 0 {
        return Err(NegotiationError::Rejected);
    }
    let offered_pts: Vec<u8> = ours.payload_types().collect();
    let identify = |pt: u8| {
        if m.rtpmap(pt).is_some() {
            Codec::identify(m, pt)
        } else {
            Codec::identify(ours, pt)
        }
    };
    let (codec, payload_type) = m
        .payload_types()
        .filter(|pt| offered_pts.contains(pt))
        .find_map(|pt| {
            identify(pt)
                .filter(|c| local.codecs.contains(c))
                .map(|c| (c, pt))
        })
        .ok_or(NegotiationError::NoCommonCodec)?;
    let telephone_event_pt = if local.telephone_event {
        telephone_event_pt(m, codec.clock_rate()).or_else(|| {
            // The answer may list our event payload type without an rtpmap.
            telephone_event_pt(ours, codec.clock_rate())
                .filter(|pt| m.payload_types().any(|p| p == *pt))
        })
    } else {
        None
    };
    let answered = effective_direction(answer, index);
    let offered = offer.direction_for(index);
    let direction = Direction::from_flags(
        answered.receives() && offered.sends(),
        answered.sends() && offered.receives(),
    );
    let rtcp_mux = local.rtcp_mux && ours.rtcp_mux() && m.rtcp_mux();
    let (remote_addr, remote_rtcp_addr) = remote_addrs(answer, index, rtcp_mux);
    Ok(NegotiatedMedia {
        codec,
        payload_type,
        clock_rate: codec.clock_rate(),
        channels: codec.channels(),
        telephone_event_pt,
        ptime: choose_ptime(codec, m, answer, local.ptime),
        remote_addr,
        remote_rtcp_addr,
        rtcp_mux,
        direction,
        fmtp: m.fmtp(payload_type).map(str::to_owned),
        remote_hold: is_hold(answer, index) && offered.sends(),
        media_index: index,
    })
}
