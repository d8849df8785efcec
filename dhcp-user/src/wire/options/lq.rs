//! Leasequery options (RFC 5007 §4.1.2; query types of RFC 5460 §5.3).

use std::net::Ipv6Addr;

use super::{bad_len, code, ipv6_at, Options};
use crate::wire::message::AnyMessage;
use crate::wire::WireError;

/// Query by address (RFC 5007).
pub const QUERY_BY_ADDRESS: u8 = 1;
/// Query by Client ID (RFC 5007).
pub const QUERY_BY_CLIENTID: u8 = 2;
/// Query by Relay ID (RFC 5460).
pub const QUERY_BY_RELAY_ID: u8 = 3;
/// Query by link address (RFC 5460).
pub const QUERY_BY_LINK_ADDRESS: u8 = 4;
/// Query by Remote ID (RFC 5460).
pub const QUERY_BY_REMOTE_ID: u8 = 5;

/// LQ_QUERY (RFC 5007 §4.1.2.1): query type, link address, query options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LqQuery<'a> {
    /// One of the `QUERY_BY_*` types.
    pub query_type: u8,
    /// The link the query applies to (may be unspecified).
    pub link_address: Ipv6Addr,
    /// Query options (IAADDR, Client ID, ORO, …).
    pub options: Options<'a>,
}

impl<'a> LqQuery<'a> {
    /// Parses the option data (17 fixed octets, then options).
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 17 {
            return Err(bad_len(code::LQ_QUERY, data));
        }
        Ok(LqQuery {
            query_type: data[0],
            link_address: ipv6_at(data, 1),
            options: Options::from_validated(&data[17..]),
        })
    }
}

/// LQ_RELAY_DATA (RFC 5007 §4.1.2.4): peer address and the last Relay-forw received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LqRelayData<'a> {
    /// The peer address of the relay message.
    pub peer_address: Ipv6Addr,
    /// The relay message, validated during decode.
    pub message: AnyMessage<'a>,
}

impl<'a> LqRelayData<'a> {
    /// Parses the option data (16 octets, then a message).
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 16 {
            return Err(bad_len(code::LQ_RELAY_DATA, data));
        }
        Ok(LqRelayData {
            peer_address: ipv6_at(data, 0),
            message: AnyMessage::parse_header(&data[16..])?,
        })
    }
}
