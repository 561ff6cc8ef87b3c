//! SIP messages, sans-IO: parsing network bytes into `rsip` types with the
//! receiver checks of RFC 3261, answering what cannot be parsed (§8.2.6),
//! building responses, identifiers, RFC 3581 `received`/`rport`, E.164
//! normalisation of dialled numbers and TCP stream framing (§18.3).
//!
//! Headers are read through our own tolerant scanner where rsip is too
//! strict for real traffic (compact names, folding, comma-joined Vias,
//! IPv6 sent-by); `rsip` types remain the public message types.

mod build;
pub mod dtmf_relay;
mod e164;
mod framer;
mod ident;
mod parse;
pub mod refer;
mod scan;
mod via;

pub use build::{
    HasBody, bad_request, reason_phrase, reject, response, set_body, set_contact, set_to_tag,
};
pub use dtmf_relay::{
    DTMF_CONTENT_TYPE, DTMF_RELAY_CONTENT_TYPE, DtmfInfo, DtmfInfoError, dtmf_info_from_request,
    dtmf_relay_body, parse_dtmf_info, set_dtmf_info_body,
};
pub use e164::normalize_e164;
pub use framer::{Frame, FrameError, StreamFramer};
pub use ident::{
    BRANCH_COOKIE, call_id, cseq, from_tag, method, new_branch, new_call_id, new_tag, request_user,
    sent_by, to_tag, top_via_branch,
};
pub use parse::{MAX_MESSAGE_SIZE, ParseError, cseq_parts, parse};
pub use refer::{
    EventHeader, ReferError, ReferNotify, SIPFRAG_CONTENT_TYPE, SipFrag, SubscriptionState,
    TransferStatus, parse_refer_notify, parse_sipfrag, refer_headers, refer_to_number,
    refer_to_uri,
};
pub use scan::split_list;
pub use via::{ViaInfo, apply_received, response_destination, top_via};
