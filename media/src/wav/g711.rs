//! Just enough G.711 to read and write μ-law/A-law WAV files. The codec
//! module has the real-time codec with concealment; this copy keeps the WAV
//! code free of a dependency on it (the ITU-T G.711 tables are fixed, so the
//! two agree bit for bit).

/// μ-law byte to 16-bit linear (ITU-T G.711 Table 2, scaled ×4).
pub(crate) fn ulaw_to_linear(b: u8) -> i16 {
    let u = !b;
    let exp = (u >> 4) & 0x07;
    let mant = i32::from(u & 0x0F);
    let t = (((mant << 3) + 0x84) << exp) - 0x84;
    (if u & 0x80 != 0 { -t } else { t }) as i16
}

/// A-law byte to 16-bit linear (ITU-T G.711 Table 1, scaled ×8).
pub(crate) fn alaw_to_linear(b: u8) -> i16 {
    let a = b ^ 0x55;
    let seg = (a & 0x70) >> 4;
    let mut t = i32::from(a & 0x0F) << 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// 16-bit linear to μ-law, rounding to the nearest segment step.
pub(crate) fn linear_to_ulaw(pcm: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut v = i32::from(pcm);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    let v = v.min(CLIP) + BIAS;
    let exp = (31 - ((v >> 7) as u32).leading_zeros()) as i32;
    let mant = (v >> (exp + 3)) & 0x0F;
    !((sign | (exp << 4) | mant) as u8)
}

/// 16-bit linear to A-law.
pub(crate) fn linear_to_alaw(pcm: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut v = i32::from(pcm) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    match SEG_END.iter().position(|&e| v <= e) {
        None => 0x7F ^ mask,
        Some(seg) => {
            let mant = if seg < 2 {
                (v >> 1) & 0x0F
            } else {
                (v >> seg) & 0x0F
            };
            ((seg as i32) << 4 | mant) as u8 ^ mask
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trips_every_code() {
        for b in 0..=255u8 {
            let lin = ulaw_to_linear(b);
            // 0x7F is "negative zero", which encodes back as positive zero.
            let want = if b == 0x7F { 0xFF } else { b };
            assert_eq!(linear_to_ulaw(lin), want, "code {b:#04x} -> {lin}");
        }
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
    }

    #[test]
    fn alaw_round_trips_every_code() {
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "code {b:#04x}");
        }
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn encoders_are_monotonic_and_close() {
        let mut prev_u = ulaw_to_linear(linear_to_ulaw(-32768));
        let mut prev_a = alaw_to_linear(linear_to_alaw(-32768));
        for x in -32768..=32767i32 {
            let u = ulaw_to_linear(linear_to_ulaw(x as i16));
            let a = alaw_to_linear(linear_to_alaw(x as i16));
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
}
