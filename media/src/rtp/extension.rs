//! RFC 8285 header extension elements (one-byte and two-byte forms), so that
//! per-packet metadata such as the RFC 6464 audio level can be read and
//! written without knowing every element in advance.

/// Profile value of the one-byte form (RFC 8285 §4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Profile value of the two-byte form; the low 4 bits are "appbits" that
/// this crate neither sets nor interprets (RFC 8285 §4.3).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// Which RFC 8285 form an extension uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// IDs 1–14, 1–16 data bytes per element.
    OneByte,
    /// IDs 1–255, 0–255 data bytes per element.
    TwoByte,
}

impl ExtensionForm {
    /// The form a profile value announces, if any.
    pub fn from_profile(profile: u16) -> Option<Self> {
        if profile == ONE_BYTE_PROFILE {
            Some(Self::OneByte)
        } else if profile & 0xfff0 == TWO_BYTE_PROFILE {
            Some(Self::TwoByte)
        } else {
            None
        }
    }

    /// The profile value to put in the RTP header extension.
    pub fn profile(self) -> u16 {
        match self {
            Self::OneByte => ONE_BYTE_PROFILE,
            Self::TwoByte => TWO_BYTE_PROFILE,
        }
    }
}

/// Why extension elements could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// The header extension is not in an RFC 8285 form.
    #[error("header extension profile {0:#06x} is not an RFC 8285 form")]
    UnknownProfile(u16),
    /// An element's length runs past the extension data.
    #[error("extension element {id} needs {needed} bytes, {available} remain")]
    Truncated {
        /// The element's ID.
        id: u8,
        /// Data bytes the element claims.
        needed: usize,
        /// Data bytes left in the extension.
        available: usize,
    },
    /// A one-byte element with ID 0 and a non-zero length: ID 0 is only
    /// valid as a zero padding byte.
    #[error("one-byte extension element with reserved ID 0 and length {0}")]
    ReservedIdZero(usize),
    /// An ID that the form cannot carry when writing.
    #[error("extension ID {0} is not valid in this form")]
    InvalidId(u8),
    /// A data length that the form cannot carry when writing.
    #[error("extension element of {0} bytes does not fit this form")]
    InvalidLength(usize),
}

/// One RFC 8285 extension element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionElement<'a> {
    /// The local identifier negotiated with `a=extmap`.
    pub id: u8,
    /// The element data.
    pub data: &'a [u8],
}

/// Iterator over the elements of an RFC 8285 header extension.
///
/// It skips padding bytes, stops at the one-byte reserved ID 15 as
/// RFC 8285 §4.2 requires, and yields one error then stops on malformed data.
#[derive(Debug, Clone)]
pub struct ExtensionElements<'a> {
    form: ExtensionForm,
    rest: &'a [u8],
}

impl<'a> ExtensionElements<'a> {
    /// Iterates over `data` of an extension with the given profile value.
    pub fn new(profile: u16, data: &'a [u8]) -> Result<Self, ExtensionError> {
        let form =
            ExtensionForm::from_profile(profile).ok_or(ExtensionError::UnknownProfile(profile))?;
        Ok(Self { form, rest: data })
    }

    /// The form being read.
    pub fn form(&self) -> ExtensionForm {
        self.form
    }

    fn fail(&mut self, e: ExtensionError) -> Option<Result<ExtensionElement<'a>, ExtensionError>> {
        self.rest = &[];
        Some(Err(e))
    }
}

impl<'a> Iterator for ExtensionElements<'a> {
    type Item = Result<ExtensionElement<'a>, ExtensionError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&first, after) = self.rest.split_first()?;
            if first == 0 {
                self.rest = after;
                continue;
            }
            let (id, len, body) = match self.form {
                ExtensionForm::OneByte => {
                    let id = first >> 4;
                    let len = usize::from(first & 0x0f) + 1;
                    if id == 15 {
                        self.rest = &[];
                        return None;
                    }
                    if id == 0 {
                        return self.fail(ExtensionError::ReservedIdZero(len));
                    }
                    (id, len, after)
                }
                ExtensionForm::TwoByte => {
                    let Some((&len, body)) = after.split_first() else {
                        return self.fail(ExtensionError::Truncated {
                            id: first,
                            needed: 1,
                            available: 0,
                        });
                    };
                    (first, usize::from(len), body)
                }
            };
            if len > body.len() {
                return self.fail(ExtensionError::Truncated {
                    id,
                    needed: len,
                    available: body.len(),
                });
            }
            let (data, rest) = body.split_at(len);
            self.rest = rest;
            return Some(Ok(ExtensionElement { id, data }));
        }
    }
}

/// Appends `elements` in the given form to `out`, zero-padded to a 32-bit
/// boundary so the result can be used as [`super::HeaderExtension`] data with
/// profile `form.profile()`. On error `out` is left as it was.
pub fn write_extension_elements(
    form: ExtensionForm,
    elements: &[ExtensionElement<'_>],
    out: &mut Vec<u8>,
) -> Result<(), ExtensionError> {
    for e in elements {
        match form {
            ExtensionForm::OneByte => {
                if !(1..=14).contains(&e.id) {
                    return Err(ExtensionError::InvalidId(e.id));
                }
                if !(1..=16).contains(&e.data.len()) {
                    return Err(ExtensionError::InvalidLength(e.data.len()));
                }
            }
            ExtensionForm::TwoByte => {
                if e.id == 0 {
                    return Err(ExtensionError::InvalidId(0));
                }
                if e.data.len() > 255 {
                    return Err(ExtensionError::InvalidLength(e.data.len()));
                }
            }
        }
    }
    let start = out.len();
    for e in elements {
        // The checks above bound both casts.
        match form {
            ExtensionForm::OneByte => out.push(e.id << 4 | (e.data.len() - 1) as u8),
            ExtensionForm::TwoByte => out.extend_from_slice(&[e.id, e.data.len() as u8]),
        }
        out.extend_from_slice(e.data);
    }
    let pad = (4 - (out.len() - start) % 4) % 4;
    out.resize(out.len() + pad, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(profile: u16, data: &[u8]) -> Vec<Result<(u8, Vec<u8>), ExtensionError>> {
        ExtensionElements::new(profile, data)
            .unwrap()
            .map(|r| r.map(|e| (e.id, e.data.to_vec())))
            .collect()
    }

    #[test]
    fn form_from_profile() {
        assert_eq!(
            ExtensionForm::from_profile(0xBEDE),
            Some(ExtensionForm::OneByte)
        );
        assert_eq!(
            ExtensionForm::from_profile(0x1000),
            Some(ExtensionForm::TwoByte)
        );
        assert_eq!(
            ExtensionForm::from_profile(0x100f),
            Some(ExtensionForm::TwoByte)
        );
        assert_eq!(ExtensionForm::from_profile(0x1010), None);
        assert_eq!(
            ExtensionElements::new(0xabcd, &[]).unwrap_err(),
            ExtensionError::UnknownProfile(0xabcd)
        );
    }

    #[test]
    fn one_byte_elements_with_padding_between() {
        // RFC 8285 §4.2 example layout: ID 1 L=0, ID 2 L=1, two pads, ID 3 L=3.
        let data = [
            0x10, 0xaa, 0x21, 0xbb, 0xcc, 0, 0, 0x33, 1, 2, 3, 4, 0, 0, 0, 0,
        ];
        assert_eq!(
            collect(0xBEDE, &data),
            vec![
                Ok((1, vec![0xaa])),
                Ok((2, vec![0xbb, 0xcc])),
                Ok((3, vec![1, 2, 3, 4])),
            ]
        );
    }

    #[test]
    fn one_byte_id_15_stops_processing() {
        let data = [0x10, 0xaa, 0xf3, 0x20, 0x11, 0x22, 0x33];
        assert_eq!(collect(0xBEDE, &data), vec![Ok((1, vec![0xaa]))]);
    }

    #[test]
    fn one_byte_id_0_with_length_is_an_error() {
        let data = [0x10, 0xaa, 0x05, 0, 0, 0, 0, 0, 0, 0x20, 1];
        assert_eq!(
            collect(0xBEDE, &data),
            vec![Ok((1, vec![0xaa])), Err(ExtensionError::ReservedIdZero(6))]
        );
    }

    #[test]
    fn one_byte_truncated_element() {
        assert_eq!(
            collect(0xBEDE, &[0x13, 1, 2]),
            vec![Err(ExtensionError::Truncated {
                id: 1,
                needed: 4,
                available: 2
            })]
        );
    }

    #[test]
    fn two_byte_elements_allow_empty_data() {
        let data = [0, 7, 0, 200, 2, 0xde, 0xad, 0, 0];
        assert_eq!(
            collect(0x1000, &data),
            vec![Ok((7, vec![])), Ok((200, vec![0xde, 0xad]))]
        );
    }

    #[test]
    fn two_byte_truncation() {
        assert_eq!(
            collect(0x1000, &[9]),
            vec![Err(ExtensionError::Truncated {
                id: 9,
                needed: 1,
                available: 0
            })]
        );
        assert_eq!(
            collect(0x1000, &[9, 3, 1]),
            vec![Err(ExtensionError::Truncated {
                id: 9,
                needed: 3,
                available: 1
            })]
        );
    }

    #[test]
    fn empty_and_all_padding_yield_nothing() {
        assert!(collect(0xBEDE, &[]).is_empty());
        assert!(collect(0x1000, &[0, 0, 0, 0]).is_empty());
    }

    #[test]
    fn write_then_read_one_byte() {
        let audio_level = [0x80 | 30];
        let long = [9u8; 16];
        let elems = [
            ExtensionElement {
                id: 1,
                data: &audio_level,
            },
            ExtensionElement {
                id: 14,
                data: &long,
            },
        ];
        let mut out = vec![0xff];
        write_extension_elements(ExtensionForm::OneByte, &elems, &mut out).unwrap();
        let data = &out[1..];
        assert_eq!(data.len(), 20);
        assert_eq!(&data[..3], &[0x10, 0x9e, 0xef]);
        let back: Vec<_> = ExtensionElements::new(ONE_BYTE_PROFILE, data)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, elems);
    }

    #[test]
    fn write_then_read_two_byte() {
        let big = [3u8; 255];
        let elems = [
            ExtensionElement { id: 255, data: &[] },
            ExtensionElement { id: 16, data: &big },
        ];
        let mut out = Vec::new();
        write_extension_elements(ExtensionForm::TwoByte, &elems, &mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        let it = ExtensionElements::new(TWO_BYTE_PROFILE, &out).unwrap();
        assert_eq!(it.form(), ExtensionForm::TwoByte);
        let back: Vec<_> = it.collect::<Result<_, _>>().unwrap();
        assert_eq!(back, elems);
    }

    #[test]
    fn write_rejects_what_the_form_cannot_carry() {
        let cases: [(ExtensionForm, u8, usize, ExtensionError); 6] = [
            (ExtensionForm::OneByte, 0, 1, ExtensionError::InvalidId(0)),
            (ExtensionForm::OneByte, 15, 1, ExtensionError::InvalidId(15)),
            (
                ExtensionForm::OneByte,
                1,
                0,
                ExtensionError::InvalidLength(0),
            ),
            (
                ExtensionForm::OneByte,
                1,
                17,
                ExtensionError::InvalidLength(17),
            ),
            (ExtensionForm::TwoByte, 0, 1, ExtensionError::InvalidId(0)),
            (
                ExtensionForm::TwoByte,
                1,
                256,
                ExtensionError::InvalidLength(256),
            ),
        ];
        for (form, id, len, err) in cases {
            let data = vec![1u8; len];
            let mut out = vec![5];
            assert_eq!(
                write_extension_elements(form, &[ExtensionElement { id, data: &data }], &mut out),
                Err(err)
            );
            assert_eq!(out, vec![5]);
        }
    }
}
