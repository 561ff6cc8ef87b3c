//! RTP media sessions (being written).
