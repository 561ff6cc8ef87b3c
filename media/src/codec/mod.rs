//! codec (being written).
