//! Generates the seed packets in `fixtures/rtp/` (also the fuzz corpus) and
//! checks the committed files still match and parse as intended.
//!
//! Regenerate with `HOTLINE_REGEN_FIXTURES=1 cargo test -p hotline-media --test rtp_fixtures`.

use std::path::PathBuf;

use hotline_media::dtmf::Digit;
use hotline_media::dtmf::rfc4733::TelephoneEvent;
use hotline_media::rtp::{
    ExtensionElement, ExtensionForm, HeaderExtension, RtpPacket, RtpPacketBuilder,
    write_extension_elements,
};

struct Fixture {
    name: &'static str,
    bytes: Vec<u8>,
    payload_type: u8,
    payload_len: usize,
}

fn build(b: RtpPacketBuilder<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    b.write_to(&mut out).unwrap();
    out
}

fn extension(form: ExtensionForm, elems: &[ExtensionElement<'_>]) -> Vec<u8> {
    let mut data = Vec::new();
    write_extension_elements(form, elems, &mut data).unwrap();
    data
}

fn tone(len: usize, silence: u8) -> Vec<u8> {
    // A plausible companded waveform: bytes around the codec's silence code.
    (0..len).map(|i| silence ^ ((i * 37 % 23) as u8)).collect()
}

fn fixtures() -> Vec<Fixture> {
    let pcmu = tone(160, 0xff);
    let pcma = tone(160, 0xd5);
    // An Opus TOC byte for SILK-only wideband 20 ms mono (config 9, code 0)
    // followed by frame bytes.
    let mut opus = vec![0x48];
    opus.extend((0..62).map(|i| (i * 91 % 251) as u8));
    let csrcs = [0x1111_1111, 0x2222_2222, 0x3333_3333];
    let level = [0x80 | 42]; // RFC 6464: voice activity, -42 dBov
    let abs_send_time = [0x12, 0x34, 0x56];
    let mid = *b"audio0";
    let one_byte = extension(
        ExtensionForm::OneByte,
        &[
            ExtensionElement {
                id: 1,
                data: &level,
            },
            ExtensionElement {
                id: 3,
                data: &abs_send_time,
            },
        ],
    );
    let two_byte = extension(
        ExtensionForm::TwoByte,
        &[
            ExtensionElement {
                id: 1,
                data: &level,
            },
            ExtensionElement { id: 20, data: &mid },
            ExtensionElement { id: 21, data: &[] },
        ],
    );
    let ev = |end: bool, duration: u16| {
        TelephoneEvent {
            event: 5,
            end,
            volume: 10,
            duration,
        }
        .encode()
    };
    let te_start = ev(false, 160);
    let te_update = ev(false, 640);
    let te_end = ev(true, 800);
    let base = RtpPacketBuilder {
        sequence: 4242,
        timestamp: 0x0001_e240,
        ssrc: 0x5eed_cafe,
        ..Default::default()
    };
    let mut v = vec![
        (
            "pcmu_20ms",
            0,
            RtpPacketBuilder {
                payload: &pcmu,
                ..base
            },
        ),
        (
            "pcmu_marker_talkspurt",
            0,
            RtpPacketBuilder {
                marker: true,
                payload: &pcmu,
                ..base
            },
        ),
        (
            "pcma_20ms",
            8,
            RtpPacketBuilder {
                payload_type: 8,
                payload: &pcma,
                ..base
            },
        ),
        (
            "pcmu_seq_65535",
            0,
            RtpPacketBuilder {
                sequence: 65535,
                timestamp: u32::MAX - 159,
                payload: &pcmu,
                ..base
            },
        ),
        (
            "opus_20ms",
            111,
            RtpPacketBuilder {
                payload_type: 111,
                payload: &opus,
                ..base
            },
        ),
        (
            "pcmu_csrcs",
            0,
            RtpPacketBuilder {
                csrcs: &csrcs,
                payload: &pcmu,
                ..base
            },
        ),
        (
            "opus_one_byte_ext",
            111,
            RtpPacketBuilder {
                payload_type: 111,
                extension: Some(HeaderExtension {
                    profile: ExtensionForm::OneByte.profile(),
                    data: &one_byte,
                }),
                payload: &opus,
                ..base
            },
        ),
        (
            "opus_two_byte_ext",
            111,
            RtpPacketBuilder {
                payload_type: 111,
                extension: Some(HeaderExtension {
                    profile: ExtensionForm::TwoByte.profile(),
                    data: &two_byte,
                }),
                payload: &opus,
                ..base
            },
        ),
        (
            "pcma_padding",
            8,
            RtpPacketBuilder {
                payload_type: 8,
                padding: 4,
                payload: &pcma,
                ..base
            },
        ),
        (
            "opus_csrcs_ext_padding",
            111,
            RtpPacketBuilder {
                payload_type: 111,
                csrcs: &csrcs[..2],
                extension: Some(HeaderExtension {
                    profile: ExtensionForm::OneByte.profile(),
                    data: &one_byte,
                }),
                padding: 7,
                payload: &opus,
                ..base
            },
        ),
        (
            "te_start",
            101,
            RtpPacketBuilder {
                marker: true,
                payload_type: 101,
                payload: &te_start,
                ..base
            },
        ),
        (
            "te_update",
            101,
            RtpPacketBuilder {
                payload_type: 101,
                payload: &te_update,
                ..base
            },
        ),
        (
            "te_end",
            101,
            RtpPacketBuilder {
                payload_type: 101,
                payload: &te_end,
                ..base
            },
        ),
        (
            "comfort_noise",
            13,
            RtpPacketBuilder {
                payload_type: 13,
                payload: &[40],
                ..base
            },
        ),
    ];
    v.drain(..)
        .map(|(name, payload_type, b)| Fixture {
            name,
            payload_type,
            payload_len: b.payload.len(),
            bytes: build(b),
        })
        .collect()
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rtp")
}

#[test]
fn fixtures_are_current_and_parse() {
    let regen = std::env::var_os("HOTLINE_REGEN_FIXTURES").is_some();
    let all = fixtures();
    assert!(all.len() >= 12);
    if regen {
        std::fs::create_dir_all(dir()).unwrap();
    }
    for f in &all {
        let path = dir().join(format!("{}.bin", f.name));
        if regen {
            std::fs::write(&path, &f.bytes).unwrap();
        }
        let on_disk = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; regenerate the fixtures", path.display()));
        assert_eq!(on_disk, f.bytes, "{} is stale; regenerate", f.name);
        let p = RtpPacket::parse(&on_disk).unwrap();
        assert_eq!(p.payload_type(), f.payload_type, "{}", f.name);
        assert_eq!(p.payload().len(), f.payload_len, "{}", f.name);
        if let Some(ext) = p.extension() {
            let n = ext
                .elements()
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .len();
            assert!(n >= 2, "{}", f.name);
        }
        if f.payload_type == 101 {
            let e = TelephoneEvent::decode(p.payload()).unwrap();
            assert_eq!(e.digit(), Some(Digit::D5));
        }
    }
}
