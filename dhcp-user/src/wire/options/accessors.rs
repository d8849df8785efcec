//! Typed accessors of [`Options`]: the first occurrence for single-valued
//! options, an iterator for the ones that may repeat. The area was validated
//! at decode, so these return values, not errors.

use std::net::Ipv6Addr;

use super::{
    bad_len, code, ipv6_at, AddrList, Auth, ClassData, ClientFqdn, ClientLinkLayerAddr, IaAddr,
    IaNa, IaPd, IaPrefix, IaTa, LqQuery, LqRelayData, Options, Oro, StatusCode, VendorClass,
    VendorOpts,
};
use crate::wire::domain::DomainList;
use crate::wire::message::{AnyMessage, MessageType};
use crate::wire::Duid;

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
    pub fn reconf_msg(&self) -> Option<MessageType> {
        self.find(code::RECONF_MSG)
            .and_then(|d| d.first())
            .map(|&t| MessageType::from_code(t))
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
