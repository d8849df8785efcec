//! Relay agent/server messages (RFC 9915 §9): Relay-forw and Relay-repl, each
//! carrying the next message inward in a Relay Message option.

use std::net::Ipv6Addr;

use super::message::{AnyMessage, Message, MessageType};
use super::options::{code, validate_options, Depth, Options};
use super::WireError;

/// Maximum number of relay agents a message may have passed (RFC 9915 §7.6).
/// The decoder refuses more than this many nested Relay-forw/Relay-repl headers.
pub const HOP_COUNT_LIMIT: usize = 32;

/// Size of the fixed relay header: msg-type, hop-count, link- and peer-address.
pub const RELAY_HEADER_LEN: usize = 34;

/// A Relay-forw or Relay-repl message: a view over its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayMessage<'a> {
    /// RelayForw or RelayRepl.
    pub msg_type: MessageType,
    /// Number of relay agents that have already relayed this message.
    pub hop_count: u8,
    /// Address identifying the client's link (may be unspecified, RFC 9915 §19.1.1).
    pub link_address: Ipv6Addr,
    /// Address of the client or relay agent the message came from.
    pub peer_address: Ipv6Addr,
    /// The options (Relay Message, Interface-ID, Relay-ID, …), already validated.
    pub options: Options<'a>,
}

fn ipv6_at(buf: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    if let Some(src) = buf.get(at..at + 16) {
        o.copy_from_slice(src);
    }
    Ipv6Addr::from(o)
}

impl<'a> RelayMessage<'a> {
    pub(crate) fn parse_header(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < RELAY_HEADER_LEN {
            return Err(WireError::Truncated {
                len: buf.len(),
                needed: RELAY_HEADER_LEN,
            });
        }
        Ok(RelayMessage {
            msg_type: MessageType::from_code(buf[0]),
            hop_count: buf[1],
            link_address: ipv6_at(buf, 2),
            peer_address: ipv6_at(buf, 18),
            options: Options::from_validated(&buf[RELAY_HEADER_LEN..]),
        })
    }

    pub(crate) fn validate(&self, depth: Depth) -> Result<(), WireError> {
        let depth = depth.enter_relay()?;
        validate_options(self.options.as_bytes(), depth)?;
        if self.options.find(code::RELAY_MSG).is_none() {
            return Err(WireError::MissingRelayMessage);
        }
        Ok(())
    }

    /// The message carried in the Relay Message option (one level inward).
    pub fn relay_message(&self) -> Option<AnyMessage<'a>> {
        self.options.relay_message()
    }

    /// The Interface-ID option, if the relay agent added one (RFC 9915 §21.18).
    pub fn interface_id(&self) -> Option<&'a [u8]> {
        self.options.interface_id()
    }

    /// The relay headers from this one inward, ending with the one that carries
    /// the client's message.
    pub fn chain(&self) -> RelayChain<'a> {
        RelayChain {
            next: Some(AnyMessage::Relay(*self)),
        }
    }

    /// The client's (or server's) message at the bottom of the nesting.
    pub fn innermost(&self) -> Option<Message<'a>> {
        let mut cur = self.relay_message()?;
        // Bounded: each level was validated and nesting is at most HOP_COUNT_LIMIT.
        for _ in 0..=HOP_COUNT_LIMIT {
            match cur {
                AnyMessage::Message(m) => return Some(m),
                AnyMessage::Relay(r) => cur = r.relay_message()?,
            }
        }
        None
    }
}

/// Iterator over nested relay headers, outermost first.
#[derive(Clone, Debug)]
pub struct RelayChain<'a> {
    next: Option<AnyMessage<'a>>,
}

impl<'a> Iterator for RelayChain<'a> {
    type Item = RelayMessage<'a>;
    fn next(&mut self) -> Option<RelayMessage<'a>> {
        match self.next.take()? {
            AnyMessage::Relay(r) => {
                self.next = r.relay_message();
                Some(r)
            }
            AnyMessage::Message(_) => None,
        }
    }
}
