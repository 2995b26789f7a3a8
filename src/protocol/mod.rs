//! Bytes ⇄ RESP. The first stage of the data path: client bytes become argument vectors here,
//! and replies are encoded here.
//!
//! This module imports nothing from the rest of the crate: it knows RESP, not commands. The
//! wire format we speak is specified in `formats/resp.md`.

pub mod decode;
pub mod inline;
pub mod reply;

pub use decode::{ProtocolError, RequestParser};
pub use reply::{ReplyBuf, Resp};
