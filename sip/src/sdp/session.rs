//! Per-call offer/answer state: our `o=` line across the call, the media in
//! force, and what changed with each new exchange.

use super::codec::LocalCapabilities;
use super::model::{Direction, SessionDescription};
use super::negotiate::{
    NegotiatedMedia, NegotiationError, answer_offer, create_offer, our_origin, process_answer,
};

/// What a new offer/answer exchange changed, for the call engine to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaChange {
    /// This was the call's first exchange.
    pub initial: bool,
    /// The codec or its payload type changed (a mid-call re-offer chose
    /// another one): encoder and decoder must be rebuilt.
    pub codec_changed: bool,
    /// The peer's RTP address or port changed.
    pub remote_addr_changed: bool,
    /// Our direction changed (hold or resume).
    pub direction_changed: bool,
    /// The peer's hold state changed.
    pub remote_hold_changed: bool,
}

impl MediaChange {
    fn between(old: Option<&NegotiatedMedia>, new: &NegotiatedMedia) -> Self {
        match old {
            None => MediaChange {
                initial: true,
                ..MediaChange::default()
            },
            Some(old) => MediaChange {
                initial: false,
                codec_changed: old.codec != new.codec || old.payload_type != new.payload_type,
                remote_addr_changed: old.remote_addr != new.remote_addr,
                direction_changed: old.direction != new.direction,
                remote_hold_changed: old.remote_hold != new.remote_hold,
            },
        }
    }

    /// Whether anything the media path depends on changed.
    pub fn any(&self) -> bool {
        self.initial
            || self.codec_changed
            || self.remote_addr_changed
            || self.direction_changed
            || self.remote_hold_changed
    }
}

/// One call's SDP state, sans-IO: feed it the offers and answers the dialog
/// carries, send what it returns.
#[derive(Debug, Clone)]
pub struct MediaSession {
    local: LocalCapabilities,
    session_id: u64,
    version: u64,
    /// The last description we sent, minus its `o=` line: RFC 3264 §8 keeps
    /// the version when an offer or answer is unchanged and increments it
    /// otherwise, so we compare against it.
    last_body: Option<String>,
    pending_offer: Option<SessionDescription>,
    current: Option<NegotiatedMedia>,
}

impl MediaSession {
    /// A new session; `session_id` should be random (RFC 8866 §5.2), which
    /// the caller draws so that this type stays deterministic.
    pub fn new(local: LocalCapabilities, session_id: u64) -> Self {
        Self {
            local,
            session_id,
            version: session_id,
            last_body: None,
            pending_offer: None,
            current: None,
        }
    }

    /// Our capabilities.
    pub fn local(&self) -> &LocalCapabilities {
        &self.local
    }

    /// The media in force, once an exchange completed.
    pub fn current(&self) -> Option<&NegotiatedMedia> {
        self.current.as_ref()
    }

    /// The offer we sent and await an answer to.
    pub fn pending_offer(&self) -> Option<&SessionDescription> {
        self.pending_offer.as_ref()
    }

    /// Stamps our `o=` line: same version when the body is unchanged, one
    /// higher otherwise (RFC 3264 §8).
    fn stamp(&mut self, mut sdp: SessionDescription) -> SessionDescription {
        sdp.origin = None;
        let body = sdp.to_string();
        if let Some(last) = &self.last_body
            && *last != body
        {
            self.version = self.version.wrapping_add(1);
        }
        self.last_body = Some(body);
        sdp.origin = Some(our_origin(&self.local, self.session_id, self.version));
        sdp
    }

    /// Answers an offer, from an initial INVITE or a mid-call re-INVITE. On
    /// error the session in force is kept (RFC 3264 §8: a rejected re-offer
    /// changes nothing) and the request gets a 488.
    pub fn receive_offer(
        &mut self,
        offer: &SessionDescription,
    ) -> Result<(SessionDescription, NegotiatedMedia, MediaChange), NegotiationError> {
        let origin = our_origin(&self.local, self.session_id, self.version);
        let answer = answer_offer(offer, &self.local, origin)?;
        let change = MediaChange::between(self.current.as_ref(), &answer.media);
        let sdp = self.stamp(answer.sdp);
        self.pending_offer = None;
        self.current = Some(answer.media.clone());
        Ok((sdp, answer.media, change))
    }

    /// An offer of our media with our current direction: for an outbound
    /// INVITE, or a re-INVITE (or the 200 to an INVITE without SDP).
    pub fn create_offer(&mut self) -> SessionDescription {
        let origin = our_origin(&self.local, self.session_id, self.version);
        let offer = create_offer(&self.local, origin, self.current.as_ref());
        let offer = self.stamp(offer);
        self.pending_offer = Some(offer.clone());
        offer
    }

    /// A re-offer putting the peer on hold (RFC 3264 §8.4): sendonly, or
    /// inactive if we are not receiving either because the peer holds us.
    pub fn hold_offer(&mut self) -> SessionDescription {
        let peer_holds = self.current.as_ref().is_some_and(|m| m.remote_hold);
        self.local.direction = if peer_holds {
            Direction::Inactive
        } else {
            Direction::SendOnly
        };
        self.create_offer()
    }

    /// A re-offer taking the call off hold: sendrecv again.
    pub fn resume_offer(&mut self) -> SessionDescription {
        self.local.direction = Direction::SendRecv;
        self.create_offer()
    }

    /// Reads the answer to our pending offer. Without one pending (an
    /// answer out of the blue) it fails as [`NegotiationError::NoAudioStream`].
    pub fn receive_answer(
        &mut self,
        answer: &SessionDescription,
    ) -> Result<(NegotiatedMedia, MediaChange), NegotiationError> {
        let offer = self
            .pending_offer
            .as_ref()
            .ok_or(NegotiationError::NoAudioStream)?;
        let media = process_answer(offer, answer, &self.local)?;
        let change = MediaChange::between(self.current.as_ref(), &media);
        self.pending_offer = None;
        self.current = Some(media.clone());
        Ok((media, change))
    }

    /// Forgets a pending offer whose transaction failed (e.g. a 488 or 491
    /// to our re-INVITE), keeping the media in force.
    pub fn cancel_offer(&mut self) {
        self.pending_offer = None;
    }
}
