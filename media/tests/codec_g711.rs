//! G.711 against the ITU-T G.191 Software Tool Library reference.
//!
//! The oracle below is a line-by-line transcription of `ulaw_compress`,
//! `ulaw_expand`, `alaw_compress` and `alaw_expand` from the STL's
//! `g711.c`, kept deliberately in the STL's own style (loops, one's
//! complements, C integer promotion spelled out as `i32`) so that it shares
//! nothing with the table-building code under test.

use hotline_media::codec::g711::{
    alaw_decode, alaw_encode, decode_slice, encode_slice, ulaw_decode, ulaw_encode,
};
use hotline_media::codec::{
    AudioDecoder, AudioEncoder, CodecKind, G711Decoder, G711Encoder, Law, decoder, encoder,
};

mod g191 {
    /// STL `ulaw_compress` for one sample.
    pub fn ulaw_compress(lin: i16) -> u8 {
        let lin = lin as i32;
        // Change from 14 bit left justified to 14 bit right justified;
        // compute absolute value (one's complement for negatives).
        let mut absno: i32 = if lin < 0 {
            ((!lin) >> 2) + 33
        } else {
            (lin >> 2) + 33
        };
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        // Determination of sample's segment.
        let mut i = absno >> 6;
        let mut segno: i32 = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high_nibble = 0x0008 - segno;
        let mut low_nibble = (absno >> segno) & 0x000F;
        low_nibble = 0x000F - low_nibble;
        let mut log = (high_nibble << 4) | low_nibble;
        if lin >= 0 {
            log |= 0x0080;
        }
        log as u8
    }

    /// STL `ulaw_expand` for one code.
    pub fn ulaw_expand(log: u8) -> i16 {
        let log = log as i32;
        let sign: i32 = if log < 0x0080 { -1 } else { 1 };
        let mut mantissa: i32 = !log;
        let exponent = (mantissa >> 4) & 0x0007;
        let segment = exponent + 1;
        mantissa &= 0x000F;
        let step = 4 << segment;
        (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
    }

    /// STL `alaw_compress` for one sample.
    pub fn alaw_compress(lin: i16) -> u8 {
        let lin = lin as i32;
        let mut ix: i32 = if lin < 0 { (!lin) >> 4 } else { lin >> 4 };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if lin >= 0 {
            ix |= 0x0080;
        }
        (ix ^ 0x0055) as u8
    }

    /// STL `alaw_expand` for one code.
    pub fn alaw_expand(log: u8) -> i16 {
        let log = log as i32;
        let mut ix = log ^ 0x0055;
        ix &= 0x007F;
        let iexp = ix >> 4;
        let mut mant = ix & 0x000F;
        if iexp > 0 {
            mant += 16;
        }
        mant = (mant << 4) + 0x0008;
        if iexp > 1 {
            mant <<= iexp - 1;
        }
        (if log > 127 { mant } else { -mant }) as i16
    }
}

#[test]
fn ulaw_decodes_every_code_like_g191() {
    for c in 0..=255u8 {
        assert_eq!(ulaw_decode(c), g191::ulaw_expand(c), "code {c:#04x}");
    }
}

#[test]
fn alaw_decodes_every_code_like_g191() {
    for c in 0..=255u8 {
        assert_eq!(alaw_decode(c), g191::alaw_expand(c), "code {c:#04x}");
    }
}

#[test]
fn ulaw_encodes_every_sample_like_g191() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(ulaw_encode(x), g191::ulaw_compress(x), "sample {x}");
    }
}

#[test]
fn alaw_encodes_every_sample_like_g191() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(alaw_encode(x), g191::alaw_compress(x), "sample {x}");
    }
}

#[test]
fn ulaw_round_trips_every_code_except_negative_zero() {
    for c in 0..=255u8 {
        let back = ulaw_encode(ulaw_decode(c));
        if c == 0x7F {
            // 0x7F is μ-law's "−0": it decodes to 0, which encodes as +0.
            assert_eq!(ulaw_decode(0x7F), 0);
            assert_eq!(back, 0xFF);
        } else {
            assert_eq!(back, c, "code {c:#04x}");
        }
    }
}

#[test]
fn alaw_round_trips_every_code() {
    // A-law has no zero level (its smallest are ±8), so no exception.
    for c in 0..=255u8 {
        assert_eq!(alaw_encode(alaw_decode(c)), c, "code {c:#04x}");
    }
}

#[test]
fn known_values() {
    let mu = [(0x00u8, -32124i16), (0x80, 32124), (0xFF, 0), (0x7F, 0)];
    for (code, value) in mu {
        assert_eq!(g191::ulaw_expand(code), value, "oracle μ {code:#04x}");
        assert_eq!(ulaw_decode(code), value, "μ {code:#04x}");
    }
    let a = [(0xD5u8, 8i16), (0x55, -8), (0xAA, 32256), (0x2A, -32256)];
    for (code, value) in a {
        assert_eq!(g191::alaw_expand(code), value, "oracle A {code:#04x}");
        assert_eq!(alaw_decode(code), value, "A {code:#04x}");
    }
    // Encoding extremes and silence.
    let enc = [
        (i16::MAX, 0x80u8, 0xAAu8),
        (i16::MIN, 0x00, 0x2A),
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),
    ];
    for (x, mu, a) in enc {
        assert_eq!((g191::ulaw_compress(x), g191::alaw_compress(x)), (mu, a));
        assert_eq!((ulaw_encode(x), alaw_encode(x)), (mu, a), "sample {x}");
    }
}

#[test]
fn quantisation_error_is_within_half_a_step() {
    // Away from clipping, G.711 is a mid-riser quantiser: decoding the
    // encoded sample lands within half a segment step of the input.
    for x in (-32000i16..=32000).step_by(7) {
        let mu = ulaw_decode(ulaw_encode(x)) as i32;
        let a = alaw_decode(alaw_encode(x)) as i32;
        let mag = (x as i32).abs();
        let mu_step = 8 << (((mag >> 2) + 33).max(32).ilog2() - 5);
        let a_step = 16 << ((mag >> 4).max(16).ilog2() - 4);
        assert!((mu - x as i32).abs() <= mu_step / 2 + 4, "μ {x}: {mu}");
        assert!((a - x as i32).abs() <= a_step / 2 + 16, "A {x}: {a}");
    }
}

#[test]
fn encode_then_decode_is_monotonic_and_close() {
    let mut prev_u = ulaw_decode(ulaw_encode(-32768));
    let mut prev_a = alaw_decode(alaw_encode(-32768));
    for x in -32768..=32767i32 {
        let u = ulaw_decode(ulaw_encode(x as i16));
        let a = alaw_decode(alaw_encode(x as i16));
        assert!(u >= prev_u && a >= prev_a, "{x}");
        prev_u = u;
        prev_a = a;
        // Quantisation error stays within half a step of the segment
        // (steps double per segment: ≤ 1/32 relative, plus the floor).
        let tol = (x.abs() / 32).max(16) + 1;
        assert!((i32::from(u) - x).abs() <= tol.max(700), "{x} -> {u}");
        assert!((i32::from(a) - x).abs() <= tol.max(700), "{x} -> {a}");
    }
}

#[test]
fn slices_and_trait_objects_agree_with_the_scalar_functions() {
    let pcm: Vec<i16> = (0..160)
        .map(|n| ((n * 409) % 65536 - 32768) as i16)
        .collect();
    for (law, kind) in [(Law::Mu, CodecKind::Pcmu), (Law::A, CodecKind::Pcma)] {
        let mut bytes = Vec::new();
        encode_slice(law, &pcm, &mut bytes);
        let mut via_trait = Vec::new();
        let mut enc = encoder(kind, 8000).unwrap();
        assert_eq!(enc.encode(&pcm, &mut via_trait), Ok(160));
        assert_eq!(bytes, via_trait);
        let mut direct = G711Encoder::new(law);
        let mut again = Vec::new();
        direct.encode(&pcm, &mut again).unwrap();
        assert_eq!(bytes, again);

        let mut lin = Vec::new();
        decode_slice(law, &bytes, &mut lin);
        let scalar: Vec<i16> = match law {
            Law::Mu => bytes.iter().map(|&b| ulaw_decode(b)).collect(),
            Law::A => bytes.iter().map(|&b| alaw_decode(b)).collect(),
        };
        assert_eq!(lin, scalar);
        // Without loss the decoder is exactly the table: concealment only
        // touches audio after a gap.
        let mut dec = decoder(kind, 8000).unwrap();
        let mut out = Vec::new();
        for chunk in bytes.chunks(40) {
            dec.decode(chunk, &mut out).unwrap();
        }
        assert_eq!(out, lin);
        assert_eq!(dec.payload_samples(&bytes), Ok(160));
    }
}

#[test]
fn decoder_after_loss_returns_to_the_table_output() {
    let mut dec = G711Decoder::new(Law::Mu);
    let frame: Vec<u8> = (0..160u32).map(|n| (n * 37 % 256) as u8).collect();
    let mut out = Vec::new();
    dec.decode(&frame, &mut out).unwrap();
    dec.conceal(160, &mut out).unwrap();
    let mut after = Vec::new();
    dec.decode(&frame, &mut after).unwrap();
    let mut table = Vec::new();
    decode_slice(Law::Mu, &frame, &mut table);
    // The cross-fade into the first good frame lasts at most 10 ms.
    assert_eq!(after[80..], table[80..]);
    let mut next = Vec::new();
    dec.decode(&frame, &mut next).unwrap();
    assert_eq!(next, table);
}
