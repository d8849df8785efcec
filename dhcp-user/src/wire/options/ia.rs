//! Identity associations and their addresses and prefixes (RFC 9915 §21.4–21.6,
//! §21.21–21.22). Each carries its own options (IAADDR, IAPREFIX, Status Code).

use std::net::Ipv6Addr;

use super::{bad_len, ipv6_at, Options};
use crate::wire::{be32, WireError};

/// IA_NA (RFC 9915 §21.4): IAID, T1, T2, IA_NA-options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaNa<'a> {
    /// Identity association identifier, chosen by the client.
    pub iaid: u32,
    /// Seconds until the client contacts the server that gave the addresses (Renew).
    pub t1: u32,
    /// Seconds until the client contacts any server (Rebind).
    pub t2: u32,
    /// IAADDR and Status Code options.
    pub options: Options<'a>,
}

/// IA_PD (RFC 9915 §21.21): same layout as IA_NA; options hold IAPREFIX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaPd<'a> {
    /// Identity association identifier, chosen by the client.
    pub iaid: u32,
    /// Seconds until Renew.
    pub t1: u32,
    /// Seconds until Rebind.
    pub t2: u32,
    /// IAPREFIX and Status Code options.
    pub options: Options<'a>,
}

/// IA_TA (RFC 8415 §21.5; obsolete in RFC 9915): decoded so it can be ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaTa<'a> {
    /// Identity association identifier.
    pub iaid: u32,
    /// IAADDR and Status Code options.
    pub options: Options<'a>,
}

/// IAADDR (RFC 9915 §21.6): an address with its lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaAddr<'a> {
    /// The address.
    pub addr: Ipv6Addr,
    /// Preferred lifetime, seconds.
    pub preferred: u32,
    /// Valid lifetime, seconds.
    pub valid: u32,
    /// IAaddr-options (Status Code).
    pub options: Options<'a>,
}

/// IAPREFIX (RFC 9915 §21.22): a delegated prefix with its lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaPrefix<'a> {
    /// Preferred lifetime, seconds.
    pub preferred: u32,
    /// Valid lifetime, seconds.
    pub valid: u32,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
    /// The prefix.
    pub prefix: Ipv6Addr,
    /// IAprefix-options (Status Code).
    pub options: Options<'a>,
}

/// Shared by IA_NA and IA_PD: 12 fixed octets then options.
fn ia_fields(code: u16, data: &[u8]) -> Result<(u32, u32, u32, Options<'_>), WireError> {
    if data.len() < 12 {
        return Err(bad_len(code, data));
    }
    Ok((
        be32(data, 0),
        be32(data, 4),
        be32(data, 8),
        Options::from_validated(&data[12..]),
    ))
}

impl<'a> IaNa<'a> {
    /// Parses the option data (options not validated here; see `validate_options`).
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        let (iaid, t1, t2, options) = ia_fields(super::code::IA_NA, data)?;
        Ok(IaNa {
            iaid,
            t1,
            t2,
            options,
        })
    }

    /// The IAADDR options inside.
    pub fn addrs(&self) -> impl Iterator<Item = IaAddr<'a>> + 'a {
        self.options.ia_addrs()
    }
}

impl<'a> IaPd<'a> {
    /// Parses the option data.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        let (iaid, t1, t2, options) = ia_fields(super::code::IA_PD, data)?;
        Ok(IaPd {
            iaid,
            t1,
            t2,
            options,
        })
    }

    /// The IAPREFIX options inside.
    pub fn prefixes(&self) -> impl Iterator<Item = IaPrefix<'a>> + 'a {
        self.options.ia_prefixes()
    }
}

impl<'a> IaTa<'a> {
    /// Parses the option data.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 4 {
            return Err(bad_len(super::code::IA_TA, data));
        }
        Ok(IaTa {
            iaid: be32(data, 0),
            options: Options::from_validated(&data[4..]),
        })
    }
}

impl<'a> IaAddr<'a> {
    /// Parses the option data: address, preferred, valid, then options.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 24 {
            return Err(bad_len(super::code::IAADDR, data));
        }
        Ok(IaAddr {
            addr: ipv6_at(data, 0),
            preferred: be32(data, 16),
            valid: be32(data, 20),
            options: Options::from_validated(&data[24..]),
        })
    }
}

impl<'a> IaPrefix<'a> {
    /// Parses the option data: preferred, valid, prefix-length, prefix, then options.
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        if data.len() < 25 {
            return Err(bad_len(super::code::IAPREFIX, data));
        }
        let prefix_len = data[8];
        if prefix_len > 128 {
            return Err(WireError::BadPrefixLength(prefix_len));
        }
        Ok(IaPrefix {
            preferred: be32(data, 0),
            valid: be32(data, 4),
            prefix_len,
            prefix: ipv6_at(data, 9),
            options: Options::from_validated(&data[25..]),
        })
    }
}
