//! prompt (being written).
