//! rtcp (being written).
