//! vad (being written).
