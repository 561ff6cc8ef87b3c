//! resample (being written).
