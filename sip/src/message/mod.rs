//! message (being written).
