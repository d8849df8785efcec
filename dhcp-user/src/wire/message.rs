//! Client/server messages (RFC 9915 §8) and the decode entry point.

use super::options::{validate_options, validate_options_visit, Depth, Options, RawOption};
use super::relay::RelayMessage;
use super::{Encoder, WireError};

/// DHCPv6 message types (RFC 9915 §7.3; RFC 5007 §4.2 for 14–15; RFC 5460 §5.1 for 16–17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1
    Solicit,
    /// 2
    Advertise,
    /// 3
    Request,
    /// 4
    Confirm,
    /// 5
    Renew,
    /// 6
    Rebind,
    /// 7
    Reply,
    /// 8
    Release,
    /// 9
    Decline,
    /// 10
    Reconfigure,
    /// 11
    InformationRequest,
    /// 12
    RelayForw,
    /// 13
    RelayRepl,
    /// 14
    Leasequery,
    /// 15
    LeasequeryReply,
    /// 16
    LeasequeryDone,
    /// 17
    LeasequeryData,
    /// Any other code: decoded with the client/server layout, never produced by the server.
    Other(u8),
}

impl MessageType {
    /// The type for a msg-type octet.
    pub fn from_code(code: u8) -> Self {
        use MessageType::*;
        match code {
            1 => Solicit,
            2 => Advertise,
            3 => Request,
            4 => Confirm,
            5 => Renew,
            6 => Rebind,
            7 => Reply,
            8 => Release,
            9 => Decline,
            10 => Reconfigure,
            11 => InformationRequest,
            12 => RelayForw,
            13 => RelayRepl,
            14 => Leasequery,
            15 => LeasequeryReply,
            16 => LeasequeryDone,
            17 => LeasequeryData,
            other => Other(other),
        }
    }

    /// The msg-type octet.
    pub fn code(self) -> u8 {
        use MessageType::*;
        match self {
            Solicit => 1,
            Advertise => 2,
            Request => 3,
            Confirm => 4,
            Renew => 5,
            Rebind => 6,
            Reply => 7,
            Release => 8,
            Decline => 9,
            Reconfigure => 10,
            InformationRequest => 11,
            RelayForw => 12,
            RelayRepl => 13,
            Leasequery => 14,
            LeasequeryReply => 15,
            LeasequeryDone => 16,
            LeasequeryData => 17,
            Other(c) => c,
        }
    }

    /// Whether this type uses the relay agent/server layout (RFC 9915 §9).
    pub fn is_relay(self) -> bool {
        matches!(self, MessageType::RelayForw | MessageType::RelayRepl)
    }
}

/// A 24-bit transaction ID (RFC 9915 §8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Xid(u32);

impl Xid {
    /// The transaction ID from the low 24 bits of `v`.
    pub fn new(v: u32) -> Self {
        Xid(v & 0x00ff_ffff)
    }

    /// The value, below 2^24.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A client/server message: a view over the bytes it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// msg-type.
    pub msg_type: MessageType,
    /// transaction-id.
    pub xid: Xid,
    /// The options, already validated.
    pub options: Options<'a>,
}

/// Either kind of DHCPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnyMessage<'a> {
    /// Client/server layout (RFC 9915 §8).
    Message(Message<'a>),
    /// Relay agent/server layout (RFC 9915 §9).
    Relay(RelayMessage<'a>),
}

impl<'a> Message<'a> {
    /// Decodes and validates a client/server message; a Relay-forw/Relay-repl
    /// is refused (use [`AnyMessage::decode`] to accept both layouts).
    pub fn decode(buf: &'a [u8]) -> Result<Self, WireError> {
        match AnyMessage::decode(buf)? {
            AnyMessage::Message(m) => Ok(m),
            AnyMessage::Relay(_) => Err(WireError::UnexpectedRelay),
        }
    }

    /// Splits the header; the options are not checked.
    pub(crate) fn parse_header(buf: &'a [u8]) -> Result<Self, WireError> {
        let [t, x0, x1, x2, ..] = *buf else {
            return Err(WireError::Truncated {
                len: buf.len(),
                needed: 4,
            });
        };
        Ok(Message {
            msg_type: MessageType::from_code(t),
            xid: Xid::new(u32::from_be_bytes([0, x0, x1, x2])),
            options: Options::from_validated(buf.get(4..).unwrap_or(&[])),
        })
    }
}

impl<'a> AnyMessage<'a> {
    /// Decodes and fully validates a message: every option's framing, every
    /// known option's format, and relay nesting (at most HOP_COUNT_LIMIT).
    /// After this, the typed accessors of the views cannot meet bad bytes.
    pub fn decode(buf: &'a [u8]) -> Result<Self, WireError> {
        Self::decode_at(buf, Depth::default())
    }

    /// [`AnyMessage::decode`] that also hands each top-level option of a
    /// client/server message to `visit`, once it is validated: a caller that
    /// needs to look at them gets them in the decoder's pass instead of
    /// walking the options again. Not called for the relay layout. On `Err`,
    /// `visit` may have seen some options of the refused message.
    pub fn decode_visit(
        buf: &'a [u8],
        visit: impl FnMut(RawOption<'a>),
    ) -> Result<Self, WireError> {
        match Self::parse_header(buf)? {
            AnyMessage::Message(m) => {
                validate_options_visit(m.options.as_bytes(), Depth::default(), visit)?;
                Ok(AnyMessage::Message(m))
            }
            relay => {
                relay.validate(Depth::default())?;
                Ok(relay)
            }
        }
    }

    pub(crate) fn decode_at(buf: &'a [u8], depth: Depth) -> Result<Self, WireError> {
        let msg = Self::parse_header(buf)?;
        msg.validate(depth)?;
        Ok(msg)
    }

    /// Checks the options (and nested messages) of a parsed header.
    pub(crate) fn validate(&self, depth: Depth) -> Result<(), WireError> {
        match self {
            AnyMessage::Message(m) => validate_options(m.options.as_bytes(), depth),
            AnyMessage::Relay(r) => r.validate(depth),
        }
    }

    /// Writes the message into `out` (see [`AnyMessage::encode`]); returns the length.
    pub fn encode_to(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut enc = Encoder::new(out);
        self.encode(&mut enc)?;
        enc.finish()
    }

    /// Writes the message again, header and options field by field.
    pub fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), WireError> {
        match self {
            AnyMessage::Message(m) => {
                enc.message_header(m.msg_type, m.xid)?;
                m.options.encode(enc)
            }
            AnyMessage::Relay(r) => {
                enc.relay_header(r.msg_type, r.hop_count, r.link_address, r.peer_address)?;
                r.options.encode(enc)
            }
        }
    }

    /// Splits the header of either layout; the options are not checked.
    pub(crate) fn parse_header(buf: &'a [u8]) -> Result<Self, WireError> {
        match buf.first() {
            Some(&t) if MessageType::from_code(t).is_relay() => {
                RelayMessage::parse_header(buf).map(AnyMessage::Relay)
            }
            _ => Message::parse_header(buf).map(AnyMessage::Message),
        }
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        match self {
            AnyMessage::Message(m) => m.msg_type,
            AnyMessage::Relay(r) => r.msg_type,
        }
    }

    /// The options of the outermost message.
    pub fn options(&self) -> Options<'a> {
        match self {
            AnyMessage::Message(m) => m.options,
            AnyMessage::Relay(r) => r.options,
        }
    }
}
