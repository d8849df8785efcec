//! Options with a flat layout: Status Code, ORO, address lists, class data,
//! vendor options, authentication, Client FQDN, client link-layer address.

use std::net::Ipv6Addr;

use super::{bad_len, code, ipv6_at, RawIter};
use crate::wire::domain::DomainName;
use crate::wire::{be16, be32, be64, WireError};

/// Status Code (RFC 9915 §21.13): a code and a UTF-8 message for humans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusCode<'a> {
    /// One of [`super::status`].
    pub code: u16,
    /// The status message bytes (UTF-8 per the RFC, not checked).
    pub message: &'a [u8],
}

impl<'a> StatusCode<'a> {
    /// Parses the option data (at least the 2-octet code).
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 2 {
            return Err(bad_len(code::STATUS_CODE, data));
        }
        Ok(StatusCode {
            code: be16(data, 0),
            message: &data[2..],
        })
    }

    /// The message as text, when it is valid UTF-8.
    pub fn message_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.message).ok()
    }
}

/// Option Request (RFC 9915 §21.7): a list of 16-bit option codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oro<'a>(&'a [u8]);

impl<'a> Oro<'a> {
    /// Parses the option data; its length must be even.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if !data.len().is_multiple_of(2) {
            return Err(bad_len(code::ORO, data));
        }
        Ok(Oro(data))
    }

    /// The requested option codes, in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }

    /// Whether `code` is requested.
    pub fn contains(&self, code: u16) -> bool {
        self.iter().any(|c| c == code)
    }
}

/// A non-empty list of IPv6 addresses (DNS servers, RFC 3646 §3; LQ_CLIENT_LINK, RFC 5007).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrList<'a>(&'a [u8]);

impl<'a> AddrList<'a> {
    /// Parses a list for option `code`: length a non-zero multiple of 16.
    pub fn parse(code: u16, data: &'a [u8]) -> Result<Self, WireError> {
        if data.is_empty() {
            return Err(WireError::ZeroLength { code });
        }
        if !data.len().is_multiple_of(16) {
            return Err(bad_len(code, data));
        }
        Ok(AddrList(data))
    }

    /// The addresses, in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv6Addr> + 'a {
        self.0.chunks_exact(16).map(|c| ipv6_at(c, 0))
    }
}

/// Class data (RFC 9915 §21.15–21.16): items, each a 2-octet length and opaque bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassData<'a>(&'a [u8]);

impl<'a> ClassData<'a> {
    /// Checks that the items exactly fill `data`.
    pub fn parse(code: u16, data: &'a [u8]) -> Result<Self, WireError> {
        let mut rest = data;
        while !rest.is_empty() {
            let len = usize::from(be16(rest, 0));
            if rest.len() < 2 || rest.len() - 2 < len {
                return Err(bad_len(code, data));
            }
            rest = &rest[2 + len..];
        }
        Ok(ClassData(data))
    }

    /// The items, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            let len = usize::from(be16(rest, 0));
            let item = rest.get(2..2 + len)?;
            rest = &rest[2 + len..];
            Some(item)
        })
    }
}

/// Vendor Class (RFC 9915 §21.16): enterprise number and class data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VendorClass<'a> {
    /// IANA private enterprise number.
    pub enterprise: u32,
    /// The vendor class items.
    pub data: ClassData<'a>,
}

impl<'a> VendorClass<'a> {
    /// Parses the option data.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 4 {
            return Err(bad_len(code::VENDOR_CLASS, data));
        }
        Ok(VendorClass {
            enterprise: be32(data, 0),
            data: ClassData::parse(code::VENDOR_CLASS, &data[4..])?,
        })
    }
}

/// Vendor-specific Information (RFC 9915 §21.17): enterprise number and
/// sub-options in the vendor's own code space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VendorOpts<'a> {
    /// IANA private enterprise number.
    pub enterprise: u32,
    /// The sub-options, in wire form (framing checked).
    pub data: &'a [u8],
}

impl<'a> VendorOpts<'a> {
    /// Parses the option data and checks the sub-option framing.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 4 {
            return Err(bad_len(code::VENDOR_OPTS, data));
        }
        let subs = &data[4..];
        super::check_framing(subs)?;
        Ok(VendorOpts {
            enterprise: be32(data, 0),
            data: subs,
        })
    }

    /// The vendor sub-options as (code, data).
    pub fn sub_options(&self) -> RawIter<'a> {
        RawIter::new(self.data)
    }
}

/// Authentication (RFC 9915 §21.11): carried, not validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth<'a> {
    /// Authentication protocol.
    pub protocol: u8,
    /// Algorithm within the protocol.
    pub algorithm: u8,
    /// Replay detection method.
    pub rdm: u8,
    /// Replay detection value.
    pub replay_detection: u64,
    /// Protocol-specific information.
    pub info: &'a [u8],
}

impl<'a> Auth<'a> {
    /// Parses the option data (11 fixed octets).
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 11 {
            return Err(bad_len(code::AUTH, data));
        }
        Ok(Auth {
            protocol: data[0],
            algorithm: data[1],
            rdm: data[2],
            replay_detection: be64(data, 3),
            info: &data[11..],
        })
    }
}

/// Client FQDN (RFC 4704 §4): flags and a (possibly partial or empty) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientFqdn<'a> {
    /// Flags: [`ClientFqdn::FLAG_S`], [`ClientFqdn::FLAG_O`], [`ClientFqdn::FLAG_N`].
    pub flags: u8,
    /// The domain name (RFC 4704 §4.2: may be partial or empty).
    pub name: DomainName<'a>,
}

impl<'a> ClientFqdn<'a> {
    /// S: the server should perform the AAAA update.
    pub const FLAG_S: u8 = 0x01;
    /// O: the server has overridden the client's S preference.
    pub const FLAG_O: u8 = 0x02;
    /// N: the server should perform no updates.
    pub const FLAG_N: u8 = 0x04;

    /// Parses the option data: a flags octet, then the name.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        let Some((&flags, name)) = data.split_first() else {
            return Err(WireError::ZeroLength {
                code: code::CLIENT_FQDN,
            });
        };
        Ok(ClientFqdn {
            flags,
            name: DomainName::parse_partial(name)?,
        })
    }
}

/// Client Link-Layer Address (RFC 6939 §4): hardware type and address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLinkLayerAddr<'a> {
    /// IANA hardware type (1 = Ethernet).
    pub hw_type: u16,
    /// The link-layer address.
    pub addr: &'a [u8],
}

impl<'a> ClientLinkLayerAddr<'a> {
    /// Parses the option data: hardware type plus a non-empty address.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 3 {
            return Err(bad_len(code::CLIENT_LINKLAYER_ADDR, data));
        }
        Ok(ClientLinkLayerAddr {
            hw_type: be16(data, 0),
            addr: &data[2..],
        })
    }
}
