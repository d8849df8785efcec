//! Options (RFC 9915 §21): the option area of a message or of an option that
//! encapsulates options, as a borrowed view. [`Options`] is only handed out
//! after `validate_options` has checked the framing and every known option,
//! so its accessors return values, not errors.

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

use super::domain::DomainList;
use super::message::AnyMessage;
use super::relay::HOP_COUNT_LIMIT;
use super::{be16, Duid, Encoder, WireError};

/// Deepest encapsulation accepted: relay levels plus a few option levels
/// (CLIENT_DATA ⊃ IA_NA ⊃ IAADDR ⊃ Status Code). Bounds the validator's recursion.
pub const MAX_NESTING: usize = HOP_COUNT_LIMIT + 8;

/// How deep the validator is; refuses to go past the limits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Depth {
    relays: usize,
    nesting: usize,
}

impl Depth {
    pub(crate) fn enter_relay(self) -> Result<Self, WireError> {
        if self.relays >= HOP_COUNT_LIMIT {
            return Err(WireError::RelayTooDeep {
                limit: HOP_COUNT_LIMIT,
            });
        }
        Ok(Depth {
            relays: self.relays + 1,
            ..self
        })
    }

    pub(crate) fn nest(self) -> Result<Self, WireError> {
        if self.nesting >= MAX_NESTING {
            return Err(WireError::NestingTooDeep { limit: MAX_NESTING });
        }
        Ok(Depth {
            nesting: self.nesting + 1,
            ..self
        })
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
pub(crate) fn validate_options(mut buf: &[u8], depth: Depth) -> Result<(), WireError> {
    while !buf.is_empty() {
        let (raw, rest) = split_option(buf)?;
        DhcpOption::parse(raw.code, raw.data)?.validate_children(depth)?;
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

    fn first<T>(&self, code: u16, parse: impl Fn(&'a [u8]) -> Result<T, WireError>) -> Option<T> {
        self.find(code).and_then(|d| parse(d).ok())
    }

    fn all<T: 'a>(
        &self,
        code: u16,
        parse: fn(&'a [u8]) -> Result<T, WireError>,
    ) -> impl Iterator<Item = T> + 'a {
        self.find_all(code).filter_map(move |d| parse(d).ok())
    }
}

/// Typed accessors: the first occurrence for single-valued options, an
/// iterator for the ones that may repeat.
impl<'a> Options<'a> {
    /// Client Identifier (RFC 9915 §21.2).
    pub fn client_id(&self) -> Option<Duid<'a>> {
        self.first(code::CLIENTID, Duid::parse)
    }
    /// Server Identifier (RFC 9915 §21.3).
    pub fn server_id(&self) -> Option<Duid<'a>> {
        self.first(code::SERVERID, Duid::parse)
    }
    /// Every IA_NA (RFC 9915 §21.4).
    pub fn ia_nas(&self) -> impl Iterator<Item = IaNa<'a>> + 'a {
        self.all(code::IA_NA, IaNa::parse)
    }
    /// Every IA_TA (obsolete; decoded so that it can be ignored).
    pub fn ia_tas(&self) -> impl Iterator<Item = IaTa<'a>> + 'a {
        self.all(code::IA_TA, IaTa::parse)
    }
    /// Every IA_PD (RFC 9915 §21.21).
    pub fn ia_pds(&self) -> impl Iterator<Item = IaPd<'a>> + 'a {
        self.all(code::IA_PD, IaPd::parse)
    }
    /// Every IAADDR (RFC 9915 §21.6), e.g. inside an IA_NA.
    pub fn ia_addrs(&self) -> impl Iterator<Item = IaAddr<'a>> + 'a {
        self.all(code::IAADDR, IaAddr::parse)
    }
    /// Every IAPREFIX (RFC 9915 §21.22), e.g. inside an IA_PD.
    pub fn ia_prefixes(&self) -> impl Iterator<Item = IaPrefix<'a>> + 'a {
        self.all(code::IAPREFIX, IaPrefix::parse)
    }
    /// Option Request (RFC 9915 §21.7).
    pub fn oro(&self) -> Option<Oro<'a>> {
        self.first(code::ORO, Oro::parse)
    }
    /// Preference value (RFC 9915 §21.8).
    pub fn preference(&self) -> Option<u8> {
        self.find(code::PREFERENCE).and_then(|d| d.first().copied())
    }
    /// Elapsed Time in hundredths of a second (RFC 9915 §21.9).
    pub fn elapsed_time(&self) -> Option<u16> {
        self.first(code::ELAPSED_TIME, |d| {
            <[u8; 2]>::try_from(d)
                .map(u16::from_be_bytes)
                .map_err(|_| bad_len(code::ELAPSED_TIME, d))
        })
    }
    /// The message inside the Relay Message option (RFC 9915 §21.10).
    pub fn relay_message(&self) -> Option<AnyMessage<'a>> {
        self.first(code::RELAY_MSG, AnyMessage::parse_header)
    }
    /// Authentication (RFC 9915 §21.11), carried only.
    pub fn auth(&self) -> Option<Auth<'a>> {
        self.first(code::AUTH, Auth::parse)
    }
    /// Server Unicast address (obsolete; decoded only).
    pub fn unicast(&self) -> Option<Ipv6Addr> {
        self.find(code::UNICAST)
            .filter(|d| d.len() == 16)
            .map(|d| ipv6_at(d, 0))
    }
    /// Status Code (RFC 9915 §21.13).
    pub fn status_code(&self) -> Option<StatusCode<'a>> {
        self.first(code::STATUS_CODE, StatusCode::parse)
    }
    /// Whether Rapid Commit is present (RFC 9915 §21.14).
    pub fn rapid_commit(&self) -> bool {
        self.find(code::RAPID_COMMIT).is_some()
    }
    /// User Class (RFC 9915 §21.15).
    pub fn user_class(&self) -> Option<ClassData<'a>> {
        self.first(code::USER_CLASS, |d| ClassData::parse(code::USER_CLASS, d))
    }
    /// Every Vendor Class (RFC 9915 §21.16).
    pub fn vendor_classes(&self) -> impl Iterator<Item = VendorClass<'a>> + 'a {
        self.all(code::VENDOR_CLASS, VendorClass::parse)
    }
    /// Every Vendor-specific Information option (RFC 9915 §21.17).
    pub fn vendor_opts(&self) -> impl Iterator<Item = VendorOpts<'a>> + 'a {
        self.all(code::VENDOR_OPTS, VendorOpts::parse)
    }
    /// Interface-Id (RFC 9915 §21.18).
    pub fn interface_id(&self) -> Option<&'a [u8]> {
        self.find(code::INTERFACE_ID)
    }
    /// Reconfigure Message type (RFC 9915 §21.19).
    pub fn reconf_msg(&self) -> Option<super::MessageType> {
        self.find(code::RECONF_MSG)
            .and_then(|d| d.first())
            .map(|&t| super::MessageType::from_code(t))
    }
    /// Whether Reconfigure Accept is present (RFC 9915 §21.20).
    pub fn reconf_accept(&self) -> bool {
        self.find(code::RECONF_ACCEPT).is_some()
    }
    /// DNS Recursive Name Servers (RFC 3646 §3).
    pub fn dns_servers(&self) -> Option<AddrList<'a>> {
        self.first(code::DNS_SERVERS, |d| AddrList::parse(code::DNS_SERVERS, d))
    }
    /// Domain Search List (RFC 3646 §4).
    pub fn domain_list(&self) -> Option<DomainList<'a>> {
        self.first(code::DOMAIN_LIST, DomainList::parse)
    }
    /// Information Refresh Time, seconds (RFC 9915 §21.23).
    pub fn information_refresh_time(&self) -> Option<u32> {
        self.u32_option(code::INFORMATION_REFRESH_TIME)
    }
    /// Client FQDN (RFC 4704 §4).
    pub fn client_fqdn(&self) -> Option<ClientFqdn<'a>> {
        self.first(code::CLIENT_FQDN, ClientFqdn::parse)
    }
    /// LQ_QUERY (RFC 5007 §4.1.2.1).
    pub fn lq_query(&self) -> Option<LqQuery<'a>> {
        self.first(code::LQ_QUERY, LqQuery::parse)
    }
    /// Every CLIENT_DATA (RFC 5007 §4.1.2.2), as the options inside.
    pub fn client_data(&self) -> impl Iterator<Item = Options<'a>> + 'a {
        self.find_all(code::CLIENT_DATA)
            .map(Options::from_validated)
    }
    /// CLT_TIME, seconds (RFC 5007 §4.1.2.3).
    pub fn clt_time(&self) -> Option<u32> {
        self.u32_option(code::CLT_TIME)
    }
    /// LQ_RELAY_DATA (RFC 5007 §4.1.2.4).
    pub fn lq_relay_data(&self) -> Option<LqRelayData<'a>> {
        self.first(code::LQ_RELAY_DATA, LqRelayData::parse)
    }
    /// LQ_CLIENT_LINK (RFC 5007 §4.1.2.5).
    pub fn lq_client_link(&self) -> Option<AddrList<'a>> {
        self.first(code::LQ_CLIENT_LINK, |d| {
            AddrList::parse(code::LQ_CLIENT_LINK, d)
        })
    }
    /// Relay-ID (RFC 5460 §5.4.1).
    pub fn relay_id(&self) -> Option<Duid<'a>> {
        self.first(code::RELAY_ID, Duid::parse)
    }
    /// Client Link-Layer Address (RFC 6939 §4).
    pub fn client_linklayer_addr(&self) -> Option<ClientLinkLayerAddr<'a>> {
        self.first(code::CLIENT_LINKLAYER_ADDR, ClientLinkLayerAddr::parse)
    }
    /// SOL_MAX_RT, seconds (RFC 9915 §21.24).
    pub fn sol_max_rt(&self) -> Option<u32> {
        self.u32_option(code::SOL_MAX_RT)
    }
    /// INF_MAX_RT, seconds (RFC 9915 §21.25).
    pub fn inf_max_rt(&self) -> Option<u32> {
        self.u32_option(code::INF_MAX_RT)
    }

    fn u32_option(&self, code: u16) -> Option<u32> {
        self.find(code)
            .and_then(|d| <[u8; 4]>::try_from(d).ok())
            .map(u32::from_be_bytes)
    }
}
