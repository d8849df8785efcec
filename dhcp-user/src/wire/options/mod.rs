//! Options (RFC 9915 §21): the option area of a message or of an option that
//! encapsulates options, as a borrowed view. [`Options`] is only handed out
//! after `validate_options` has checked the framing and every known option,
//! so its accessors return values, not errors.

mod accessors;
pub mod code;
mod ia;
mod lq;
pub mod status;
mod typed;
mod values;

use core::fmt;
use std::net::Ipv6Addr;

pub use ia::{IaAddr, IaNa, IaPd, IaPrefix, IaTa};
pub use lq::{
    LqQuery, LqRelayData, QUERY_BY_ADDRESS, QUERY_BY_CLIENTID, QUERY_BY_LINK_ADDRESS,
    QUERY_BY_RELAY_ID, QUERY_BY_REMOTE_ID,
};
pub use typed::DhcpOption;
pub use values::{
    AddrList, Auth, ClassData, ClientFqdn, ClientLinkLayerAddr, Oro, StatusCode, VendorClass,
    VendorOpts,
};

use super::relay::HOP_COUNT_LIMIT;
use super::{be16, Encoder, WireError};

/// Deepest option encapsulation accepted (CLIENT_DATA ⊃ IA_NA ⊃ IAADDR ⊃ Status
/// Code is 3). Relay levels are bounded separately by [`HOP_COUNT_LIMIT`], so
/// a message that is valid alone stays valid inside relays. Bounds recursion.
pub const MAX_NESTING: usize = 8;

/// How deep the validator is; refuses to go past the limits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Depth {
    relays: usize,
    options: usize,
    /// Validating the top-level options of a Relay-forw/Relay-repl, where the
    /// Relay Message option is the normal one-level-inward step.
    relay_top: bool,
}

impl Depth {
    /// Entering the options of a relay message.
    pub(crate) fn enter_relay(self) -> Result<Self, WireError> {
        if self.relays >= HOP_COUNT_LIMIT {
            return Err(WireError::RelayTooDeep {
                limit: HOP_COUNT_LIMIT,
            });
        }
        Ok(Depth {
            relays: self.relays + 1,
            relay_top: true,
            ..self
        })
    }

    /// Entering an option's contents (or a message carried where relays don't put one).
    pub(crate) fn nest(self) -> Result<Self, WireError> {
        if self.options >= MAX_NESTING {
            return Err(WireError::NestingTooDeep { limit: MAX_NESTING });
        }
        Ok(Depth {
            options: self.options + 1,
            relay_top: false,
            ..self
        })
    }

    /// Entering the message in a Relay Message option.
    pub(crate) fn relay_msg(self) -> Result<Self, WireError> {
        if self.relay_top {
            // Bounded by the relay count, not the option depth.
            Ok(Depth {
                relay_top: false,
                ..self
            })
        } else {
            self.nest()
        }
    }
}

pub(crate) fn bad_len(code: u16, data: &[u8]) -> WireError {
    WireError::BadOptionLength {
        code,
        len: u16::try_from(data.len()).unwrap_or(u16::MAX),
    }
}

pub(crate) fn ipv6_at(buf: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    if let Some(src) = buf.get(at..at.saturating_add(16)) {
        o.copy_from_slice(src);
    }
    Ipv6Addr::from(o)
}

/// One option as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// Option code.
    pub code: u16,
    /// Option data (length implied).
    pub data: &'a [u8],
}

/// Splits the first option off `buf`, checking its header and length.
#[inline]
fn split_option(buf: &[u8]) -> Result<(RawOption<'_>, &[u8]), WireError> {
    if buf.len() < 4 {
        return Err(WireError::OptionHeaderTruncated {
            remaining: buf.len(),
        });
    }
    let code = be16(buf, 0);
    let len = be16(buf, 2);
    let available = buf.len() - 4;
    if usize::from(len) > available {
        return Err(WireError::OptionOverrun {
            code,
            len,
            available,
        });
    }
    let (data, rest) = buf[4..].split_at(usize::from(len));
    Ok((RawOption { code, data }, rest))
}

/// Checks only the (code, length) framing of an option area.
pub(crate) fn check_framing(mut buf: &[u8]) -> Result<(), WireError> {
    while !buf.is_empty() {
        buf = split_option(buf)?.1;
    }
    Ok(())
}

/// Checks an option area: framing, every known option's layout, and
/// recursively what those options encapsulate.
pub(crate) fn validate_options(buf: &[u8], depth: Depth) -> Result<(), WireError> {
    validate_options_visit(buf, depth, |_| {})
}

/// [`validate_options`], handing each option of this level to `visit` once
/// it is validated.
#[inline]
pub(crate) fn validate_options_visit<'a>(
    mut buf: &'a [u8],
    depth: Depth,
    mut visit: impl FnMut(RawOption<'a>),
) -> Result<(), WireError> {
    while !buf.is_empty() {
        let (raw, rest) = split_option(buf)?;
        validate_option(raw.code, raw.data, depth)?;
        visit(raw);
        buf = rest;
    }
    Ok(())
}

/// Checks one option. The options of every client message (Client and
/// Server ID, Elapsed Time, ORO, the IAs and their leases, Rapid Commit) are
/// checked here directly, by the same parsers and with the same errors as
/// [`DhcpOption::parse`] + `validate_children`, without building the whole
/// enum: that was half the decode cost. Tested against the general path.
#[inline]
fn validate_option(opt_code: u16, data: &[u8], depth: Depth) -> Result<(), WireError> {
    let exact = |n: usize| {
        if data.len() == n {
            Ok(())
        } else {
            Err(bad_len(opt_code, data))
        }
    };
    match opt_code {
        code::CLIENTID | code::SERVERID => super::Duid::parse(data).map(|_| ()),
        code::ELAPSED_TIME => exact(2),
        code::RAPID_COMMIT => exact(0),
        code::ORO => Oro::parse(data).map(|_| ()),
        code::IA_NA => validate_sub(IaNa::parse(data)?.options, depth),
        code::IA_PD => validate_sub(IaPd::parse(data)?.options, depth),
        code::IAADDR => validate_sub(IaAddr::parse(data)?.options, depth),
        code::IAPREFIX => validate_sub(IaPrefix::parse(data)?.options, depth),
        _ => DhcpOption::parse(opt_code, data)?.validate_children(depth),
    }
}

/// The options inside an option: the depth check, then (when there are any,
/// which a Solicit's IA_NA usually does not have) the options themselves.
#[inline]
fn validate_sub(sub: Options<'_>, depth: Depth) -> Result<(), WireError> {
    let depth = depth.nest()?;
    if sub.is_empty() {
        return Ok(());
    }
    validate_options(sub.as_bytes(), depth)
}

/// The general path alone (every option through [`DhcpOption::parse`]): the
/// reference the fast path is tested against.
#[cfg(test)]
pub(crate) fn validate_options_general(mut buf: &[u8], depth: Depth) -> Result<(), WireError> {
    while !buf.is_empty() {
        let (raw, rest) = split_option(buf)?;
        DhcpOption::parse(raw.code, raw.data)?
            .validate_children_with(depth, validate_options_general)?;
        buf = rest;
    }
    Ok(())
}

/// Iterator over raw options. Stops at the first framing error (which a
/// validated area does not have).
#[derive(Clone, Debug)]
pub struct RawIter<'a> {
    rest: &'a [u8],
}

impl<'a> RawIter<'a> {
    pub(crate) fn new(rest: &'a [u8]) -> Self {
        RawIter { rest }
    }
}

impl<'a> Iterator for RawIter<'a> {
    type Item = RawOption<'a>;
    fn next(&mut self) -> Option<RawOption<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        match split_option(self.rest) {
            Ok((opt, rest)) => {
                self.rest = rest;
                Some(opt)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// A validated option area.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    bytes: &'a [u8],
}

impl PartialEq for Options<'_> {
    /// Equal when the decoded options are equal, in order (not byte-for-byte).
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Options<'_> {}

impl fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Options<'a> {
    /// Wraps an area already checked by `validate_options` (or to be checked).
    pub(crate) fn from_validated(bytes: &'a [u8]) -> Self {
        Options { bytes }
    }

    /// The option area in wire form.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether there are no options.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The options as (code, data), in order.
    pub fn raw(&self) -> RawIter<'a> {
        RawIter::new(self.bytes)
    }

    /// The options decoded, in order.
    pub fn iter(&self) -> impl Iterator<Item = DhcpOption<'a>> + 'a {
        self.raw().map(|o| {
            DhcpOption::parse(o.code, o.data).unwrap_or(DhcpOption::Unknown {
                code: o.code,
                data: o.data,
            })
        })
    }

    /// The data of the first option with `code`.
    pub fn find(&self, code: u16) -> Option<&'a [u8]> {
        self.raw().find(|o| o.code == code).map(|o| o.data)
    }

    /// The data of every option with `code`.
    pub fn find_all(&self, code: u16) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.raw().filter(move |o| o.code == code).map(|o| o.data)
    }

    /// Writes every option again, field by field.
    pub fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), WireError> {
        self.iter().try_for_each(|o| o.encode(enc))
    }

    pub(crate) fn first<T>(
        &self,
        code: u16,
        parse: impl Fn(&'a [u8]) -> Result<T, WireError>,
    ) -> Option<T> {
        self.find(code).and_then(|d| parse(d).ok())
    }

    pub(crate) fn all<T: 'a>(
        &self,
        code: u16,
        parse: fn(&'a [u8]) -> Result<T, WireError>,
    ) -> impl Iterator<Item = T> + 'a {
        self.find_all(code).filter_map(move |d| parse(d).ok())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod validate_tests;
