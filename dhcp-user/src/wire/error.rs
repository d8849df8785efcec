//! The one error type of the codec. Every variant is a distinct, countable
//! reason a message was refused (decode) or could not be written (encode).

use thiserror::Error;

/// Why bytes could not be decoded as DHCPv6, or a message could not be encoded.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireError {
    /// The message is shorter than its fixed header (4 bytes, or 34 for a relay message).
    #[error("message truncated: {len} bytes, header needs {needed}")]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes the fixed header needs.
        needed: usize,
    },
    /// Fewer than 4 bytes remain where an option header (code, length) must start.
    #[error("option header truncated: {remaining} trailing bytes")]
    OptionHeaderTruncated {
        /// Bytes left in the enclosing area.
        remaining: usize,
    },
    /// An option's length runs past the end of its parent (message or option).
    #[error("option {code} length {len} overruns its parent ({available} bytes left)")]
    OptionOverrun {
        /// Option code.
        code: u16,
        /// Declared option length.
        len: u16,
        /// Bytes actually available after the option header.
        available: usize,
    },
    /// An option's length does not fit its format (fixed size, minimum, or multiple).
    #[error("option {code} has invalid length {len}")]
    BadOptionLength {
        /// Option code.
        code: u16,
        /// Declared option length.
        len: u16,
    },
    /// An option whose contents the RFC requires has length zero.
    #[error("option {code} must not be empty")]
    ZeroLength {
        /// Option code.
        code: u16,
    },
    /// Relay-forw/Relay-repl messages are nested deeper than HOP_COUNT_LIMIT (RFC 9915 §7.6).
    #[error("relay messages nested deeper than {limit}")]
    RelayTooDeep {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Options are encapsulated deeper than the codec accepts (protects the stack).
    #[error("options nested deeper than {limit}")]
    NestingTooDeep {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A Relay-forw or Relay-repl without the mandatory Relay Message option (RFC 9915 §9).
    #[error("relay message without a Relay Message option")]
    MissingRelayMessage,
    /// A Relay-forw/Relay-repl where a client/server message was expected (`Message::decode`).
    #[error("relay message where a client/server message was expected")]
    UnexpectedRelay,
    /// A DUID shorter than type code plus one octet (RFC 9915 §11.1).
    #[error("DUID too short: {len} bytes")]
    DuidTooShort {
        /// DUID length including the type code.
        len: usize,
    },
    /// A DUID longer than type code plus 128 octets (RFC 9915 §11.1).
    #[error("DUID too long: {len} bytes")]
    DuidTooLong {
        /// DUID length including the type code.
        len: usize,
    },
    /// A DUID whose type-specific layout is wrong (e.g. DUID-UUID not 16 octets, RFC 6355).
    #[error("DUID of type {duid_type} has a malformed body")]
    BadDuid {
        /// DUID type code.
        duid_type: u16,
    },
    /// A domain name uses a compression pointer, which DHCPv6 forbids (RFC 9915 §10).
    #[error("domain name uses compression (forbidden in DHCPv6)")]
    NameCompressed,
    /// A domain name label is longer than 63 octets or has reserved label-type bits (RFC 1035 §3.1).
    #[error("domain name label of {len} octets")]
    LabelTooLong {
        /// The label length octet.
        len: u8,
    },
    /// A domain name is longer than 255 octets in wire form (RFC 1035 §3.1).
    #[error("domain name longer than 255 octets")]
    NameTooLong,
    /// A domain name runs past its option, or a fully qualified name lacks its root label.
    #[error("domain name not terminated")]
    NameNotTerminated,
    /// A textual domain name given to the encoder is empty or has an empty label.
    #[error("empty domain name label")]
    EmptyLabel,
    /// An IAPREFIX prefix length above 128 (RFC 9915 §21.22).
    #[error("prefix length {0} above 128")]
    BadPrefixLength(u8),
    /// The encoder's output buffer is too small for what was asked (nothing is truncated).
    #[error("output buffer too small: need {needed}, have {capacity}")]
    BufferTooSmall {
        /// Bytes needed in total.
        needed: usize,
        /// Buffer capacity.
        capacity: usize,
    },
    /// An option being encoded would be longer than 65535 octets.
    #[error("encoded option {code} longer than 65535 octets")]
    OptionTooLong {
        /// Option code.
        code: u16,
    },
    /// `Encoder::finish` was called with options still open (begin_option without end_option).
    #[error("{open} option(s) still open at finish")]
    UnclosedOption {
        /// How many options are open.
        open: usize,
    },
    /// The encoder was asked for something invalid (e.g. a value that cannot be represented).
    #[error("invalid value for encoding: {0}")]
    InvalidValue(&'static str),
}

impl WireError {
    /// A short, stable name for the error kind, e.g. to key a stats counter
    /// (`dropped.malformed.option_overrun`) without formatting the fields.
    pub fn label(&self) -> &'static str {
        match self {
            WireError::Truncated { .. } => "truncated",
            WireError::OptionHeaderTruncated { .. } => "option_header_truncated",
            WireError::OptionOverrun { .. } => "option_overrun",
            WireError::BadOptionLength { .. } => "bad_option_length",
            WireError::ZeroLength { .. } => "zero_length",
            WireError::RelayTooDeep { .. } => "relay_too_deep",
            WireError::NestingTooDeep { .. } => "nesting_too_deep",
            WireError::MissingRelayMessage => "missing_relay_message",
            WireError::UnexpectedRelay => "unexpected_relay",
            WireError::DuidTooShort { .. } => "duid_too_short",
            WireError::DuidTooLong { .. } => "duid_too_long",
            WireError::BadDuid { .. } => "bad_duid",
            WireError::NameCompressed => "name_compressed",
            WireError::LabelTooLong { .. } => "label_too_long",
            WireError::NameTooLong => "name_too_long",
            WireError::NameNotTerminated => "name_not_terminated",
            WireError::EmptyLabel => "empty_label",
            WireError::BadPrefixLength(_) => "bad_prefix_length",
            WireError::BufferTooSmall { .. } => "buffer_too_small",
            WireError::OptionTooLong { .. } => "option_too_long",
            WireError::UnclosedOption { .. } => "unclosed_option",
            WireError::InvalidValue(_) => "invalid_value",
        }
    }
}
