//! Splitting a TCP (or TLS) byte stream into SIP messages (RFC 3261 §18.3).

use super::parse::MAX_MESSAGE_SIZE;
use super::scan::{head_end, scan_head};
use bytes::{Buf, Bytes, BytesMut};

/// What the framer found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message: head plus exactly Content-Length body bytes.
    Message(Bytes),
    /// An RFC 5626 §3.5.1 keep-alive ping (CRLF CRLF); the transport
    /// answers it with a single CRLF pong.
    Ping,
    /// A lone CRLF between messages: an RFC 5626 pong, or stray padding.
    Pong,
}

/// Why the stream can no longer be framed; the connection must be closed
/// (after an error the framer's buffer is in an undefined position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A message (or its unterminated head) is larger than the limit.
    #[error("message exceeds {0} bytes")]
    TooLarge(usize),
    /// §18.3 makes Content-Length mandatory on streams.
    #[error("message without Content-Length on a stream transport")]
    MissingContentLength,
    /// Content-Length is not a number, or several disagree.
    #[error("invalid Content-Length")]
    BadContentLength,
}

/// Accumulates stream bytes and yields whole messages by Content-Length.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max: usize,
    /// How far the current head has been searched for its end, so a head
    /// trickling in byte by byte is not rescanned from the start each time.
    scanned: usize,
    /// The full length of a message whose head is read and whose body is
    /// still arriving, so its head is not rescanned on every push.
    pending: Option<usize>,
}

impl Default for StreamFramer {
    fn default() -> Self {
        Self::new(MAX_MESSAGE_SIZE)
    }
}

impl StreamFramer {
    /// A framer that rejects messages above `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max,
            scanned: 0,
            pending: None,
        }
    }

    /// Appends bytes as they arrive.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that are not yet part of a yielded frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, `Ok(None)` if more bytes are needed. Call repeatedly
    /// after each `push`: one read may hold several messages.
    ///
    /// A CRLF at a message boundary is held until the next byte shows
    /// whether it is a pong or the first half of a ping.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(total) = self.pending {
            return Ok(self.take(total));
        }
        if self.buf.starts_with(b"\r\n") {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                self.scanned = 0;
                return Ok(Some(Frame::Ping));
            }
            return match self.buf.get(2) {
                None => Ok(None),
                Some(b'\r') if self.buf.len() < 4 => Ok(None),
                Some(_) => {
                    self.buf.advance(2);
                    self.scanned = 0;
                    Ok(Some(Frame::Pong))
                }
            };
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        // The terminator may straddle the previous end: back up 3 bytes.
        let from = self.scanned.saturating_sub(3);
        let found = head_end(&self.buf[from..]).map(|(h, b)| (h + from, b + from));
        let Some((head_len, body_start)) = found else {
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                return Err(FrameError::TooLarge(self.max));
            }
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_len]);
        let raw = scan_head(&head);
        let mut length = None;
        for v in raw.all("Content-Length") {
            let n: usize = v.trim().parse().map_err(|_| FrameError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(FrameError::BadContentLength);
            }
            length = Some(n);
        }
        let length = length.ok_or(FrameError::MissingContentLength)?;
        let total = body_start
            .checked_add(length)
            .filter(|t| *t <= self.max)
            .ok_or(FrameError::TooLarge(self.max))?;
        Ok(self.take(total))
    }

    /// Yields the first `total` bytes as a message once they are all here.
    fn take(&mut self, total: usize) -> Option<Frame> {
        if self.buf.len() < total {
            self.pending = Some(total);
            return None;
        }
        self.pending = None;
        self.scanned = 0;
        Some(Frame::Message(self.buf.split_to(total).freeze()))
    }
}
