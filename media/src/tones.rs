//! tones (being written).
