//! The DHCPv6 wire codec (RFC 9915 §7–§21 and the options of RFC 3646, 4704,
//! 5007, 5460, 6355, 6939): bytes in, typed views out; typed writes in, bytes out.
//!
//! Owns: message and option formats, bounds checks, DUIDs and DNS names.
//! Never touches: sockets, clocks, allocation, protocol decisions (the core's job).
//!
//! - **Decoding** is a view over the received `&[u8]`: [`AnyMessage::decode`]
//!   checks everything once (framing of every option at every level, the
//!   layout of every known option, relay nesting up to [`HOP_COUNT_LIMIT`])
//!   and returns [`Message`] or [`RelayMessage`] views whose accessors then
//!   simply return values. Nothing is copied or allocated.
//! - **Encoding** writes into the caller's `&mut [u8]` with an [`Encoder`];
//!   options that contain options are opened with `begin_*` and closed with
//!   [`Encoder::end_option`], which patches the length. A write that does not
//!   fit is an error ([`WireError::BufferTooSmall`]), never a truncation.
//! - Unknown options are kept as `(code, bytes)` ([`DhcpOption::Unknown`]) and
//!   written back unchanged by [`AnyMessage::encode`].
//!
//! ```
//! use std::net::Ipv6Addr;
//! use dhcp6d::wire::{AnyMessage, Encoder, MessageType, status};
//!
//! // A Solicit: Client ID, IA_NA (IAID 1), Elapsed Time.
//! let solicit = [
//!     1, 0x12, 0x34, 0x56, // Solicit, xid
//!     0, 1, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 1, // Client ID: DUID-LL
//!     0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // IA_NA
//!     0, 8, 0, 2, 0, 0, // Elapsed Time
//! ];
//! let AnyMessage::Message(msg) = AnyMessage::decode(&solicit)? else { unreachable!() };
//! assert_eq!(msg.msg_type, MessageType::Solicit);
//! let client_id = msg.options.client_id().expect("has a Client ID");
//! let ia = msg.options.ia_nas().next().expect("has an IA_NA");
//!
//! // The Advertise, written into a stack buffer.
//! let mut out = [0u8; 1500];
//! let mut enc = Encoder::new(&mut out);
//! enc.message_header(MessageType::Advertise, msg.xid)?;
//! enc.client_id(client_id.as_bytes())?;
//! enc.server_id(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 0xaa])?;
//! let ia_na = enc.begin_ia_na(ia.iaid, 1000, 2000)?;
//! let addr = enc.begin_ia_addr("2001:db8::5".parse::<Ipv6Addr>().unwrap(), 3000, 4000)?;
//! enc.status_code(status::SUCCESS, "ok")?;
//! enc.end_option(addr)?;
//! enc.end_option(ia_na)?;
//! enc.preference(255)?;
//! let len = enc.finish()?;
//!
//! let advertise = AnyMessage::decode(&out[..len])?;
//! assert_eq!(advertise.options().preference(), Some(255));
//! # Ok::<(), dhcp6d::wire::WireError>(())
//! ```
//!
//! Relayed messages: [`RelayMessage::innermost`] gives the client's message,
//! [`RelayMessage::chain`] the relay headers outermost first. A Relay-repl is
//! written outside-in: `relay_header`, `interface_id`, `begin_relay_msg`, the
//! inner message, `end_option`.

mod domain;
mod duid;
mod emit;
mod encode;
mod error;
mod message;
pub mod options;
mod relay;

pub use domain::{write_name, DomainList, DomainName, Labels, MAX_LABEL_LEN, MAX_NAME_LEN};
pub use duid::{
    Duid, DuidKind, DUID_EN, DUID_LL, DUID_LLT, DUID_UUID, MAX_DUID_IDENTIFIER_LEN, MAX_DUID_LEN,
};
pub use encode::{Encoder, OptionMark};
pub use error::WireError;
pub use message::{AnyMessage, Message, MessageType, Xid};
pub use options::{code, status, DhcpOption, Options, RawOption};
pub use relay::{RelayChain, RelayMessage, HOP_COUNT_LIMIT, RELAY_HEADER_LEN};

// Ports and groups (RFC 9915 §7) live in `dhcp-common`, shared with the XDP program.
pub use dhcp_common::{
    ALL_DHCP_RELAY_AGENTS_AND_SERVERS, ALL_DHCP_SERVERS, CLIENT_PORT, SERVER_PORT,
};

/// Big-endian u16 at `at`, or 0 past the end (callers check lengths first;
/// this only guarantees that a mistake cannot panic).
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at.saturating_add(2)) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

/// Big-endian u32 at `at`, or 0 past the end.
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at.saturating_add(4))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes)
}

/// Big-endian u64 at `at`, or 0 past the end.
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at.saturating_add(8))
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests;
