//! Arbitrary network payloads must never panic a decoder, whatever order
//! decode, concealment and FEC calls arrive in.

use hotline_media::codec::{CodecKind, decoder};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Decode(Vec<u8>),
    Conceal(usize),
    Fec(Vec<u8>, usize),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..1500).prop_map(Op::Decode),
        2 => (0usize..4000).prop_map(Op::Conceal),
        2 => (prop::collection::vec(any::<u8>(), 0..400), 0usize..4000)
            .prop_map(|(p, n)| Op::Fec(p, n)),
        1 => Just(Op::Reset),
    ]
}

const DECODERS: [(CodecKind, u32); 5] = [
    (CodecKind::Pcmu, 8000),
    (CodecKind::Pcma, 8000),
    (CodecKind::Opus, 8000),
    (CodecKind::Opus, 16_000),
    (CodecKind::Opus, 48_000),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn decoders_never_panic(ops in prop::collection::vec(op(), 1..24)) {
        for (kind, rate) in DECODERS {
            let mut dec = decoder(kind, rate).unwrap();
            let mut out = Vec::new();
            for op in &ops {
                let before = out.len();
                let result = match op {
                    Op::Decode(p) => {
                        let _ = dec.payload_samples(p);
                        dec.decode(p, &mut out)
                    }
                    Op::Conceal(n) => dec.conceal(*n, &mut out),
                    Op::Fec(p, n) => dec.decode_fec(p, *n, &mut out),
                    Op::Reset => {
                        dec.reset();
                        Ok(0)
                    }
                };
                // Whatever happened, the count returned matches what was
                // appended, and errors append nothing.
                match result {
                    Ok(n) => prop_assert_eq!(out.len(), before + n),
                    Err(_) => prop_assert_eq!(out.len(), before),
                }
            }
        }
    }
}
