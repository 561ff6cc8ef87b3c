//! mix (being written).
