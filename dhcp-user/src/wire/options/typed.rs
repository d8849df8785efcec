//! Every option the codec knows, as one enum: parsed from (code, data), and
//! written back field by field (so a decode→encode→decode round trip checks
//! the parsers and the encoder against each other, not a byte copy).

use std::net::Ipv6Addr;

use super::ia::{IaAddr, IaNa, IaPd, IaPrefix, IaTa};
use super::lq::{LqQuery, LqRelayData};
use super::values::{
    AddrList, Auth, ClassData, ClientFqdn, ClientLinkLayerAddr, Oro, StatusCode, VendorClass,
    VendorOpts,
};
use super::{bad_len, code, validate_options, Depth, Options};
use crate::wire::domain::{write_labels, DomainList};
use crate::wire::message::{AnyMessage, MessageType};
use crate::wire::{Duid, Encoder, WireError};

/// A decoded option. Unknown codes are kept as raw bytes and re-encoded as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhcpOption<'a> {
    /// 1: Client Identifier.
    ClientId(Duid<'a>),
    /// 2: Server Identifier.
    ServerId(Duid<'a>),
    /// 3: IA_NA.
    IaNa(IaNa<'a>),
    /// 4: IA_TA (obsolete, decoded only).
    IaTa(IaTa<'a>),
    /// 5: IAADDR.
    IaAddr(IaAddr<'a>),
    /// 6: Option Request.
    Oro(Oro<'a>),
    /// 7: Preference.
    Preference(u8),
    /// 8: Elapsed Time, hundredths of a second.
    ElapsedTime(u16),
    /// 9: Relay Message.
    RelayMsg(AnyMessage<'a>),
    /// 11: Authentication (carried).
    Auth(Auth<'a>),
    /// 12: Server Unicast (obsolete, decoded only).
    Unicast(Ipv6Addr),
    /// 13: Status Code.
    StatusCode(StatusCode<'a>),
    /// 14: Rapid Commit.
    RapidCommit,
    /// 15: User Class.
    UserClass(ClassData<'a>),
    /// 16: Vendor Class.
    VendorClass(VendorClass<'a>),
    /// 17: Vendor-specific Information.
    VendorOpts(VendorOpts<'a>),
    /// 18: Interface-Id.
    InterfaceId(&'a [u8]),
    /// 19: Reconfigure Message (the msg-type the client should send).
    ReconfMsg(MessageType),
    /// 20: Reconfigure Accept.
    ReconfAccept,
    /// 23: DNS Recursive Name Servers.
    DnsServers(AddrList<'a>),
    /// 24: Domain Search List.
    DomainList(DomainList<'a>),
    /// 25: IA_PD.
    IaPd(IaPd<'a>),
    /// 26: IAPREFIX.
    IaPrefix(IaPrefix<'a>),
    /// 32: Information Refresh Time, seconds.
    InformationRefreshTime(u32),
    /// 39: Client FQDN.
    ClientFqdn(ClientFqdn<'a>),
    /// 44: LQ_QUERY.
    LqQuery(LqQuery<'a>),
    /// 45: CLIENT_DATA.
    ClientData(Options<'a>),
    /// 46: CLT_TIME, seconds since the client's last transaction.
    CltTime(u32),
    /// 47: LQ_RELAY_DATA.
    LqRelayData(LqRelayData<'a>),
    /// 48: LQ_CLIENT_LINK.
    LqClientLink(AddrList<'a>),
    /// 53: Relay-ID.
    RelayId(Duid<'a>),
    /// 79: Client Link-Layer Address.
    ClientLinkLayerAddr(ClientLinkLayerAddr<'a>),
    /// 82: SOL_MAX_RT, seconds.
    SolMaxRt(u32),
    /// 83: INF_MAX_RT, seconds.
    InfMaxRt(u32),
    /// Any other option, kept as is.
    Unknown {
        /// Option code.
        code: u16,
        /// Option data.
        data: &'a [u8],
    },
}

fn fixed<const N: usize>(code: u16, data: &[u8]) -> Result<[u8; N], WireError> {
    data.try_into().map_err(|_| bad_len(code, data))
}

impl<'a> DhcpOption<'a> {
    /// Parses one option's data by its code. Options nested inside are not
    /// checked here (see `validate_options`), so this never recurses.
    pub fn parse(opt_code: u16, data: &'a [u8]) -> Result<Self, WireError> {
        use DhcpOption as O;
        let u32_of = |d: &[u8]| fixed::<4>(opt_code, d).map(u32::from_be_bytes);
        Ok(match opt_code {
            code::CLIENTID => O::ClientId(Duid::parse(data)?),
            code::SERVERID => O::ServerId(Duid::parse(data)?),
            code::IA_NA => O::IaNa(IaNa::parse(data)?),
            code::IA_TA => O::IaTa(IaTa::parse(data)?),
            code::IAADDR => O::IaAddr(IaAddr::parse(data)?),
            code::ORO => O::Oro(Oro::parse(data)?),
            code::PREFERENCE => O::Preference(fixed::<1>(opt_code, data)?[0]),
            code::ELAPSED_TIME => O::ElapsedTime(u16::from_be_bytes(fixed(opt_code, data)?)),
            code::RELAY_MSG => O::RelayMsg(AnyMessage::parse_header(data)?),
            code::AUTH => O::Auth(Auth::parse(data)?),
            code::UNICAST => O::Unicast(Ipv6Addr::from(fixed::<16>(opt_code, data)?)),
            code::STATUS_CODE => O::StatusCode(StatusCode::parse(data)?),
            code::RAPID_COMMIT => {
                fixed::<0>(opt_code, data)?;
                O::RapidCommit
            }
            code::USER_CLASS => {
                O::UserClass(ClassData::parse(opt_code, non_empty(opt_code, data)?)?)
            }
            code::VENDOR_CLASS => O::VendorClass(VendorClass::parse(data)?),
            code::VENDOR_OPTS => O::VendorOpts(VendorOpts::parse(data)?),
            code::INTERFACE_ID => O::InterfaceId(non_empty(opt_code, data)?),
            code::RECONF_MSG => {
                O::ReconfMsg(MessageType::from_code(fixed::<1>(opt_code, data)?[0]))
            }
            code::RECONF_ACCEPT => {
                fixed::<0>(opt_code, data)?;
                O::ReconfAccept
            }
            code::DNS_SERVERS => O::DnsServers(AddrList::parse(opt_code, data)?),
            code::DOMAIN_LIST => O::DomainList(DomainList::parse(non_empty(opt_code, data)?)?),
            code::IA_PD => O::IaPd(IaPd::parse(data)?),
            code::IAPREFIX => O::IaPrefix(IaPrefix::parse(data)?),
            code::INFORMATION_REFRESH_TIME => O::InformationRefreshTime(u32_of(data)?),
            code::CLIENT_FQDN => O::ClientFqdn(ClientFqdn::parse(data)?),
            code::LQ_QUERY => O::LqQuery(LqQuery::parse(data)?),
            code::CLIENT_DATA => O::ClientData(Options::from_validated(data)),
            code::CLT_TIME => O::CltTime(u32_of(data)?),
            code::LQ_RELAY_DATA => O::LqRelayData(LqRelayData::parse(data)?),
            code::LQ_CLIENT_LINK => O::LqClientLink(AddrList::parse(opt_code, data)?),
            code::RELAY_ID => O::RelayId(Duid::parse(data)?),
            code::CLIENT_LINKLAYER_ADDR => {
                O::ClientLinkLayerAddr(ClientLinkLayerAddr::parse(data)?)
            }
            code::SOL_MAX_RT => O::SolMaxRt(u32_of(data)?),
            code::INF_MAX_RT => O::InfMaxRt(u32_of(data)?),
            _ => O::Unknown {
                code: opt_code,
                data,
            },
        })
    }

    /// Validates what this option encapsulates: sub-options and messages.
    pub(crate) fn validate_children(&self, depth: Depth) -> Result<(), WireError> {
        self.validate_children_with(depth, validate_options)
    }

    /// [`DhcpOption::validate_children`] with `area` checking the option
    /// areas inside (messages inside still go through their own validation).
    pub(crate) fn validate_children_with(
        &self,
        depth: Depth,
        area: fn(&[u8], Depth) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        use DhcpOption as O;
        let sub = match self {
            O::IaNa(v) => v.options,
            O::IaTa(v) => v.options,
            O::IaPd(v) => v.options,
            O::IaAddr(v) => v.options,
            O::IaPrefix(v) => v.options,
            O::LqQuery(v) => v.options,
            O::ClientData(v) => *v,
            O::RelayMsg(m) => return m.validate(depth.relay_msg()?),
            O::LqRelayData(v) => return v.message.validate(depth.nest()?),
            _ => return Ok(()),
        };
        area(sub.as_bytes(), depth.nest()?)
    }

    /// The option code.
    pub fn code(&self) -> u16 {
        use DhcpOption as O;
        match self {
            O::ClientId(_) => code::CLIENTID,
            O::ServerId(_) => code::SERVERID,
            O::IaNa(_) => code::IA_NA,
            O::IaTa(_) => code::IA_TA,
            O::IaAddr(_) => code::IAADDR,
            O::Oro(_) => code::ORO,
            O::Preference(_) => code::PREFERENCE,
            O::ElapsedTime(_) => code::ELAPSED_TIME,
            O::RelayMsg(_) => code::RELAY_MSG,
            O::Auth(_) => code::AUTH,
            O::Unicast(_) => code::UNICAST,
            O::StatusCode(_) => code::STATUS_CODE,
            O::RapidCommit => code::RAPID_COMMIT,
            O::UserClass(_) => code::USER_CLASS,
            O::VendorClass(_) => code::VENDOR_CLASS,
            O::VendorOpts(_) => code::VENDOR_OPTS,
            O::InterfaceId(_) => code::INTERFACE_ID,
            O::ReconfMsg(_) => code::RECONF_MSG,
            O::ReconfAccept => code::RECONF_ACCEPT,
            O::DnsServers(_) => code::DNS_SERVERS,
            O::DomainList(_) => code::DOMAIN_LIST,
            O::IaPd(_) => code::IA_PD,
            O::IaPrefix(_) => code::IAPREFIX,
            O::InformationRefreshTime(_) => code::INFORMATION_REFRESH_TIME,
            O::ClientFqdn(_) => code::CLIENT_FQDN,
            O::LqQuery(_) => code::LQ_QUERY,
            O::ClientData(_) => code::CLIENT_DATA,
            O::CltTime(_) => code::CLT_TIME,
            O::LqRelayData(_) => code::LQ_RELAY_DATA,
            O::LqClientLink(_) => code::LQ_CLIENT_LINK,
            O::RelayId(_) => code::RELAY_ID,
            O::ClientLinkLayerAddr(_) => code::CLIENT_LINKLAYER_ADDR,
            O::SolMaxRt(_) => code::SOL_MAX_RT,
            O::InfMaxRt(_) => code::INF_MAX_RT,
            O::Unknown { code, .. } => *code,
        }
    }

    /// Writes the option, rebuilding its data from the decoded fields.
    pub fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), WireError> {
        use DhcpOption as O;
        let mark = enc.begin_option(self.code())?;
        match self {
            O::ClientId(d) | O::ServerId(d) | O::RelayId(d) => enc.put_slice(d.as_bytes())?,
            O::IaNa(v) => {
                ia_fields(enc, v.iaid, v.t1, v.t2)?;
                v.options.encode(enc)?;
            }
            O::IaPd(v) => {
                ia_fields(enc, v.iaid, v.t1, v.t2)?;
                v.options.encode(enc)?;
            }
            O::IaTa(v) => {
                enc.put_u32(v.iaid)?;
                v.options.encode(enc)?;
            }
            O::IaAddr(v) => {
                enc.put_ipv6(v.addr)?;
                enc.put_u32(v.preferred)?;
                enc.put_u32(v.valid)?;
                v.options.encode(enc)?;
            }
            O::IaPrefix(v) => {
                enc.put_u32(v.preferred)?;
                enc.put_u32(v.valid)?;
                enc.put_u8(v.prefix_len)?;
                enc.put_ipv6(v.prefix)?;
                v.options.encode(enc)?;
            }
            O::Oro(v) => v.iter().try_for_each(|c| enc.put_u16(c))?,
            O::Preference(p) => enc.put_u8(*p)?,
            O::ElapsedTime(t) => enc.put_u16(*t)?,
            O::RelayMsg(m) => m.encode(enc)?,
            O::Auth(a) => {
                enc.put_slice(&[a.protocol, a.algorithm, a.rdm])?;
                enc.put_slice(&a.replay_detection.to_be_bytes())?;
                enc.put_slice(a.info)?;
            }
            O::Unicast(a) => enc.put_ipv6(*a)?,
            O::StatusCode(s) => {
                enc.put_u16(s.code)?;
                enc.put_slice(s.message)?;
            }
            O::RapidCommit | O::ReconfAccept => {}
            O::UserClass(c) => class_items(enc, c)?,
            O::VendorClass(v) => {
                enc.put_u32(v.enterprise)?;
                class_items(enc, &v.data)?;
            }
            O::VendorOpts(v) => {
                enc.put_u32(v.enterprise)?;
                for sub in v.sub_options() {
                    enc.option(sub.code, sub.data)?;
                }
            }
            O::InterfaceId(id) => enc.put_slice(id)?,
            O::ReconfMsg(t) => enc.put_u8(t.code())?,
            O::DnsServers(l) | O::LqClientLink(l) => l.iter().try_for_each(|a| enc.put_ipv6(a))?,
            O::DomainList(l) => {
                for name in l.iter() {
                    write_labels(enc, name.labels())?;
                    enc.put_u8(0)?;
                }
            }
            O::InformationRefreshTime(v) | O::CltTime(v) | O::SolMaxRt(v) | O::InfMaxRt(v) => {
                enc.put_u32(*v)?
            }
            O::ClientFqdn(f) => {
                enc.put_u8(f.flags)?;
                write_labels(enc, f.name.labels())?;
                if f.name.is_fully_qualified() {
                    enc.put_u8(0)?;
                }
            }
            O::LqQuery(q) => {
                enc.put_u8(q.query_type)?;
                enc.put_ipv6(q.link_address)?;
                q.options.encode(enc)?;
            }
            O::ClientData(o) => o.encode(enc)?,
            O::LqRelayData(r) => {
                enc.put_ipv6(r.peer_address)?;
                r.message.encode(enc)?;
            }
            O::ClientLinkLayerAddr(l) => {
                enc.put_u16(l.hw_type)?;
                enc.put_slice(l.addr)?;
            }
            O::Unknown { data, .. } => enc.put_slice(data)?,
        }
        enc.end_option(mark)
    }
}

fn non_empty(code: u16, data: &[u8]) -> Result<&[u8], WireError> {
    if data.is_empty() {
        Err(WireError::ZeroLength { code })
    } else {
        Ok(data)
    }
}

fn ia_fields(enc: &mut Encoder<'_>, iaid: u32, t1: u32, t2: u32) -> Result<(), WireError> {
    enc.put_u32(iaid)?;
    enc.put_u32(t1)?;
    enc.put_u32(t2)
}

fn class_items(enc: &mut Encoder<'_>, c: &ClassData<'_>) -> Result<(), WireError> {
    for item in c.iter() {
        let len = u16::try_from(item.len()).map_err(|_| WireError::InvalidValue("class item"))?;
        enc.put_u16(len)?;
        enc.put_slice(item)?;
    }
    Ok(())
}
