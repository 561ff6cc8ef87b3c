//! The sixteen DTMF digits and their frequency pairs.

use std::fmt;

use super::DtmfError;

/// Low-group (row) frequencies in Hz, ITU-T Q.23.
pub const LOW_GROUP_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies in Hz, ITU-T Q.23.
pub const HIGH_GROUP_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// One DTMF digit: `0-9`, `*`, `#` and `A-D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digit {
    /// `0` (941 + 1336 Hz).
    D0,
    /// `1` (697 + 1209 Hz).
    D1,
    /// `2` (697 + 1336 Hz).
    D2,
    /// `3` (697 + 1477 Hz).
    D3,
    /// `4` (770 + 1209 Hz).
    D4,
    /// `5` (770 + 1336 Hz).
    D5,
    /// `6` (770 + 1477 Hz).
    D6,
    /// `7` (852 + 1209 Hz).
    D7,
    /// `8` (852 + 1336 Hz).
    D8,
    /// `9` (852 + 1477 Hz).
    D9,
    /// `*` (941 + 1209 Hz).
    Star,
    /// `#` (941 + 1477 Hz).
    Hash,
    /// `A` (697 + 1633 Hz).
    A,
    /// `B` (770 + 1633 Hz).
    B,
    /// `C` (852 + 1633 Hz).
    C,
    /// `D` (941 + 1633 Hz).
    D,
}

/// The keypad, indexed `[row][column]`, rows by [`LOW_GROUP_HZ`] and columns
/// by [`HIGH_GROUP_HZ`].
const KEYPAD: [[Digit; 4]; 4] = [
    [Digit::D1, Digit::D2, Digit::D3, Digit::A],
    [Digit::D4, Digit::D5, Digit::D6, Digit::B],
    [Digit::D7, Digit::D8, Digit::D9, Digit::C],
    [Digit::Star, Digit::D0, Digit::Hash, Digit::D],
];

impl Digit {
    /// All sixteen digits, in RFC 4733 event-code order (0-9, *, #, A-D).
    pub const ALL: [Digit; 16] = [
        Digit::D0,
        Digit::D1,
        Digit::D2,
        Digit::D3,
        Digit::D4,
        Digit::D5,
        Digit::D6,
        Digit::D7,
        Digit::D8,
        Digit::D9,
        Digit::Star,
        Digit::Hash,
        Digit::A,
        Digit::B,
        Digit::C,
        Digit::D,
    ];

    /// The digit for a keypad character (`a-d` accepted as `A-D`).
    pub fn from_char(c: char) -> Option<Digit> {
        let d = match c.to_ascii_uppercase() {
            '0'..='9' => Digit::ALL[(c as u8 - b'0') as usize],
            '*' => Digit::Star,
            '#' => Digit::Hash,
            'A' => Digit::A,
            'B' => Digit::B,
            'C' => Digit::C,
            'D' => Digit::D,
            _ => return None,
        };
        Some(d)
    }

    /// Parses a dial string such as `"123*#A"`; any other character is an
    /// error.
    pub fn parse_sequence(s: &str) -> Result<Vec<Digit>, DtmfError> {
        s.chars()
            .map(|c| Digit::from_char(c).ok_or(DtmfError::InvalidDigit(c)))
            .collect()
    }

    /// The keypad character (`0-9`, `*`, `#`, `A-D`).
    pub fn to_char(self) -> char {
        b"0123456789*#ABCD"[self.event_code() as usize] as char
    }

    /// The RFC 4733 telephone-event code: 0-9, `*` = 10, `#` = 11, A-D = 12-15.
    pub fn event_code(self) -> u8 {
        self as u8
    }

    /// The digit for an RFC 4733 event code 0-15, `None` for other events.
    pub fn from_event_code(code: u8) -> Option<Digit> {
        Digit::ALL.get(code as usize).copied()
    }

    /// The (row, column) indices into [`LOW_GROUP_HZ`] and [`HIGH_GROUP_HZ`].
    pub fn row_col(self) -> (usize, usize) {
        for (r, row) in KEYPAD.iter().enumerate() {
            for (c, &d) in row.iter().enumerate() {
                if d == self {
                    return (r, c);
                }
            }
        }
        unreachable!("every digit is on the keypad")
    }

    /// The digit at keypad `row` and `col` (both 0-3).
    pub fn from_row_col(row: usize, col: usize) -> Option<Digit> {
        KEYPAD.get(row)?.get(col).copied()
    }

    /// Nominal (low, high) frequencies in Hz.
    pub fn frequencies(self) -> (f64, f64) {
        let (r, c) = self.row_col();
        (LOW_GROUP_HZ[r], HIGH_GROUP_HZ[c])
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_char())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_chars_and_keypad_agree() {
        for (i, d) in Digit::ALL.iter().enumerate() {
            assert_eq!(d.event_code() as usize, i);
            assert_eq!(Digit::from_event_code(i as u8), Some(*d));
            assert_eq!(Digit::from_char(d.to_char()), Some(*d));
            let (r, c) = d.row_col();
            assert_eq!(Digit::from_row_col(r, c), Some(*d));
        }
        assert_eq!(Digit::from_event_code(16), None);
        assert_eq!(Digit::D5.frequencies(), (770.0, 1336.0));
        assert_eq!(Digit::Hash.frequencies(), (941.0, 1477.0));
        assert_eq!(Digit::from_char('b'), Some(Digit::B));
        for (c, d) in [('a', Digit::A), ('c', Digit::C), ('d', Digit::D)] {
            assert_eq!(Digit::from_char(c), Some(d));
        }
        for c in ['E', 'e', ' ', 'x', '+', '\u{0660}'] {
            assert_eq!(Digit::from_char(c), None, "{c:?}");
        }
        assert_eq!(Digit::from_event_code(255), None);
        assert_eq!(
            Digit::parse_sequence("12x"),
            Err(DtmfError::InvalidDigit('x'))
        );
    }
}
