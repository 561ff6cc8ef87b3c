//! RFC 3261 §12 dialogs (being written).

pub mod headers;

pub use headers::{new_branch, new_tag, parse_cseq, replace_branch};
