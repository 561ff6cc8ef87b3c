//! Stereo call recording: caller on the left, agent on the right.

use super::WavError;
use super::writer::{WavSpec, WavWriter};
use std::io::{Seek, Write};

/// Which party a frame of audio belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The remote party (what came in from the trunk): left channel.
    Caller,
    /// The voice agent (what was sent to the trunk): right channel.
    Agent,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Agent => 1,
        }
    }
}

/// Frames interleaved per write to the WAV writer when flushing.
const FLUSH_CHUNK: usize = 1024;

/// Records both sides of a call into one 16-bit stereo WAV file.
///
/// The two sides arrive separately, in frames of any length, each tagged
/// with its position on the call's timeline (samples since call start at
/// the recording's rate). The recorder keeps a window of `max_skew` frames
/// per side in which audio may still arrive, starting at the first frame not
/// yet written to the file:
///
/// * Audio for a position inside the window is stored; a side that sends
///   nothing for a stretch simply leaves silence there. A position already
///   stored on the same side is overwritten (a resent frame wins).
/// * Audio beyond the window pushes it forward: the oldest frames are
///   written out, **with silence for whichever side has not supplied them**.
///   So a side may lag the other by up to `max_skew` frames; anything it
///   delivers later than that is dropped and counted in
///   [`late_samples`](Self::late_samples).
/// * [`finish`](Self::finish) writes out everything up to the furthest
///   position either side reached.
///
/// Memory is bounded: two `max_skew`-sample ring buffers plus a
/// 1024-frame interleave buffer, all allocated up front, so
/// recording does not allocate per frame. At 8 kHz a one-second skew costs
/// 32 KiB.
///
/// Positions are trusted: they come from the call's own sample clock, not
/// from packets. A jump far ahead writes that much silence (bounded by the
/// 4 GiB file limit, checked before anything is written).
#[derive(Debug)]
pub struct StereoRecorder<W: Write + Seek> {
    writer: WavWriter<W>,
    /// Per side ring of `cap` samples; slot `p % cap` holds position `p`
    /// for `p` in `[written, written + cap)`. Unwritten slots are zero.
    rings: [Vec<i16>; 2],
    cap: u64,
    /// First timeline position not yet written to the file.
    written: u64,
    /// One past the furthest position either side has supplied.
    end: u64,
    late: [u64; 2],
    scratch: Vec<i16>,
}

impl<W: Write + Seek> StereoRecorder<W> {
    /// Starts a recording at `sample_rate` into `inner`, tolerating up to
    /// `max_skew` frames of skew between the sides (at least 1).
    pub fn new(inner: W, sample_rate: u32, max_skew: usize) -> Result<Self, WavError> {
        if max_skew == 0 {
            return Err(WavError::BadSpec("recorder skew window must be positive"));
        }
        let writer = WavWriter::new(inner, WavSpec::stereo(sample_rate))?;
        Ok(Self {
            writer,
            rings: [vec![0; max_skew], vec![0; max_skew]],
            cap: max_skew as u64,
            written: 0,
            end: 0,
            late: [0; 2],
            scratch: Vec::with_capacity(2 * FLUSH_CHUNK.min(max_skew)),
        })
    }

    /// Adds `samples` of `side`, the first of which is at timeline
    /// `position`.
    pub fn push(&mut self, side: Side, position: u64, samples: &[i16]) -> Result<(), WavError> {
        let stop = position
            .checked_add(samples.len() as u64)
            .ok_or(WavError::PositionOverflow)?;
        if stop.saturating_sub(self.cap) > self.written {
            let must_flush = stop - self.cap - self.written;
            if must_flush > self.writer.frames_remaining() {
                return Err(WavError::TooLarge);
            }
        }
        // Drop the part that is already on disk.
        let (mut pos, mut samples) = (position, samples);
        if pos < self.written {
            let skip = (self.written - pos).min(samples.len() as u64);
            self.late[side.index()] += skip;
            samples = &samples[skip as usize..];
            pos += skip;
        }
        // Place the rest in pieces no longer than the window, making room
        // for each piece by writing out the oldest frames.
        while !samples.is_empty() {
            let n = samples.len().min(self.cap as usize);
            let piece_end = pos + n as u64;
            if piece_end > self.written + self.cap {
                self.flush_to(piece_end - self.cap)?;
            }
            let ring = &mut self.rings[side.index()];
            let mut slot = (pos % self.cap) as usize;
            let mut src = &samples[..n];
            while !src.is_empty() {
                let k = src.len().min(ring.len() - slot);
                ring[slot..slot + k].copy_from_slice(&src[..k]);
                src = &src[k..];
                slot = 0;
            }
            samples = &samples[n..];
            pos = piece_end;
        }
        self.end = self.end.max(stop);
        Ok(())
    }

    /// [`push`](Self::push) for the caller (left channel).
    pub fn push_caller(&mut self, position: u64, samples: &[i16]) -> Result<(), WavError> {
        self.push(Side::Caller, position, samples)
    }

    /// [`push`](Self::push) for the agent (right channel).
    pub fn push_agent(&mut self, position: u64, samples: &[i16]) -> Result<(), WavError> {
        self.push(Side::Agent, position, samples)
    }

    /// Frames already written to the file.
    pub fn frames_written(&self) -> u64 {
        self.written
    }

    /// Samples of `side` dropped because they arrived after their position
    /// had been written out.
    pub fn late_samples(&self, side: Side) -> u64 {
        self.late[side.index()]
    }

    /// Writes every frame up to the furthest position either side reached
    /// and finalises the WAV file.
    pub fn finish(mut self) -> Result<W, WavError> {
        let end = self.end;
        self.flush_to(end)?;
        self.writer.finish()
    }

    /// Writes frames `[written, upto)` from the rings (silence where a side
    /// supplied nothing) and clears their slots for reuse.
    fn flush_to(&mut self, upto: u64) -> Result<(), WavError> {
        while self.written < upto {
            let slot = (self.written % self.cap) as usize;
            let n = (upto - self.written)
                .min((self.cap as usize - slot) as u64)
                .min(FLUSH_CHUNK as u64) as usize;
            self.scratch.clear();
            let [left, right] = &mut self.rings;
            for i in slot..slot + n {
                self.scratch.push(left[i]);
                self.scratch.push(right[i]);
            }
            left[slot..slot + n].fill(0);
            right[slot..slot + n].fill(0);
            self.writer.write_samples(&self.scratch)?;
            self.written += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wav::read_wav;
    use std::io::Cursor;

    fn finish(r: StereoRecorder<Cursor<Vec<u8>>>) -> (Vec<i16>, Vec<i16>) {
        let w = read_wav(&r.finish().unwrap().into_inner()).unwrap();
        assert_eq!(w.format.channels, 2);
        (w.channel(0), w.channel(1))
    }

    #[test]
    fn frames_longer_than_the_window() {
        let mut r = StereoRecorder::new(Cursor::new(Vec::new()), 8000, 16).unwrap();
        let a: Vec<i16> = (1..=100).collect();
        r.push_caller(0, &a).unwrap();
        r.push_agent(90, &[-1; 10]).unwrap();
        let (l, rr) = finish(r);
        assert_eq!(l, a);
        assert_eq!(&rr[90..], &[-1; 10]);
        assert!(rr[..90].iter().all(|&s| s == 0));
    }

    #[test]
    fn zero_skew_is_rejected() {
        assert!(StereoRecorder::new(Cursor::new(Vec::new()), 8000, 0).is_err());
    }

    #[test]
    fn position_overflow_is_an_error() {
        let mut r = StereoRecorder::new(Cursor::new(Vec::new()), 8000, 16).unwrap();
        assert!(matches!(
            r.push_caller(u64::MAX, &[1, 2]),
            Err(WavError::PositionOverflow)
        ));
        assert!(matches!(
            r.push_caller(u64::MAX / 2, &[1, 2]),
            Err(WavError::TooLarge)
        ));
        // Nothing was written by the refused pushes.
        assert_eq!(r.frames_written(), 0);
    }
}
