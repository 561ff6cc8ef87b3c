//! dialog (being written).
