//! Typed option writers on [`Encoder`]: one method per option the server (or a
//! test client) sends. Options that hold options return an [`OptionMark`] to
//! close with [`Encoder::end_option`] after the sub-options are written.

use std::net::Ipv6Addr;

use super::domain::write_name;
use super::encode::OptionMark;
use super::options::code;
use super::{Duid, Encoder, MessageType, WireError};

/// IAADDR's fixed fields (RFC 9915 §21.6): address, preferred, valid.
fn ia_addr_fields(addr: Ipv6Addr, preferred: u32, valid: u32) -> [u8; 24] {
    let mut f = [0u8; 24];
    f[..16].copy_from_slice(&addr.octets());
    f[16..20].copy_from_slice(&preferred.to_be_bytes());
    f[20..].copy_from_slice(&valid.to_be_bytes());
    f
}

/// IAPREFIX's fixed fields (RFC 9915 §21.22): preferred, valid, length, prefix.
fn ia_prefix_fields(preferred: u32, valid: u32, prefix_len: u8, prefix: Ipv6Addr) -> [u8; 25] {
    let mut f = [0u8; 25];
    f[..4].copy_from_slice(&preferred.to_be_bytes());
    f[4..8].copy_from_slice(&valid.to_be_bytes());
    f[8] = prefix_len;
    f[9..].copy_from_slice(&prefix.octets());
    f
}

impl Encoder<'_> {
    fn duid_option(&mut self, code: u16, duid: &[u8]) -> Result<(), WireError> {
        Duid::parse(duid)?;
        self.option(code, duid)
    }

    /// Client Identifier (RFC 9915 §21.2); `duid` is checked like a received one.
    pub fn client_id(&mut self, duid: &[u8]) -> Result<(), WireError> {
        self.duid_option(code::CLIENTID, duid)
    }

    /// Server Identifier (RFC 9915 §21.3).
    pub fn server_id(&mut self, duid: &[u8]) -> Result<(), WireError> {
        self.duid_option(code::SERVERID, duid)
    }

    /// Relay-ID (RFC 5460 §5.4.1).
    pub fn relay_id(&mut self, duid: &[u8]) -> Result<(), WireError> {
        self.duid_option(code::RELAY_ID, duid)
    }

    fn begin_with_ia(
        &mut self,
        code: u16,
        iaid: u32,
        t1: u32,
        t2: u32,
    ) -> Result<OptionMark, WireError> {
        let mut fixed = [0u8; 12];
        fixed[..4].copy_from_slice(&iaid.to_be_bytes());
        fixed[4..8].copy_from_slice(&t1.to_be_bytes());
        fixed[8..].copy_from_slice(&t2.to_be_bytes());
        self.begin_option_with(code, &fixed)
    }

    /// Opens IA_NA (RFC 9915 §21.4); write IAADDR / Status Code, then close it.
    pub fn begin_ia_na(&mut self, iaid: u32, t1: u32, t2: u32) -> Result<OptionMark, WireError> {
        self.begin_with_ia(code::IA_NA, iaid, t1, t2)
    }

    /// Opens IA_PD (RFC 9915 §21.21); write IAPREFIX / Status Code, then close it.
    pub fn begin_ia_pd(&mut self, iaid: u32, t1: u32, t2: u32) -> Result<OptionMark, WireError> {
        self.begin_with_ia(code::IA_PD, iaid, t1, t2)
    }

    /// Opens IAADDR (RFC 9915 §21.6); its options (Status Code) go before closing.
    pub fn begin_ia_addr(
        &mut self,
        addr: Ipv6Addr,
        preferred: u32,
        valid: u32,
    ) -> Result<OptionMark, WireError> {
        self.begin_option_with(code::IAADDR, &ia_addr_fields(addr, preferred, valid))
    }

    /// A complete IAADDR without options.
    pub fn ia_addr(&mut self, addr: Ipv6Addr, preferred: u32, valid: u32) -> Result<(), WireError> {
        self.option(code::IAADDR, &ia_addr_fields(addr, preferred, valid))
    }

    /// Opens IAPREFIX (RFC 9915 §21.22). `prefix_len` must be at most 128.
    pub fn begin_ia_prefix(
        &mut self,
        preferred: u32,
        valid: u32,
        prefix_len: u8,
        prefix: Ipv6Addr,
    ) -> Result<OptionMark, WireError> {
        if prefix_len > 128 {
            return Err(WireError::BadPrefixLength(prefix_len));
        }
        self.begin_option_with(
            code::IAPREFIX,
            &ia_prefix_fields(preferred, valid, prefix_len, prefix),
        )
    }

    /// A complete IAPREFIX without options.
    pub fn ia_prefix(
        &mut self,
        preferred: u32,
        valid: u32,
        prefix_len: u8,
        prefix: Ipv6Addr,
    ) -> Result<(), WireError> {
        if prefix_len > 128 {
            return Err(WireError::BadPrefixLength(prefix_len));
        }
        self.option(
            code::IAPREFIX,
            &ia_prefix_fields(preferred, valid, prefix_len, prefix),
        )
    }

    /// Status Code with a UTF-8 message (RFC 9915 §21.13).
    pub fn status_code(&mut self, status: u16, message: &str) -> Result<(), WireError> {
        let mark = self.begin_option(code::STATUS_CODE)?;
        self.put_u16(status)?;
        self.put_slice(message.as_bytes())?;
        self.end_option(mark)
    }

    /// Option Request (RFC 9915 §21.7).
    pub fn oro(&mut self, codes: &[u16]) -> Result<(), WireError> {
        let mark = self.begin_option(code::ORO)?;
        codes.iter().try_for_each(|&c| self.put_u16(c))?;
        self.end_option(mark)
    }

    /// Preference (RFC 9915 §21.8).
    pub fn preference(&mut self, value: u8) -> Result<(), WireError> {
        self.option(code::PREFERENCE, &[value])
    }

    /// Elapsed Time in hundredths of a second (RFC 9915 §21.9).
    pub fn elapsed_time(&mut self, hundredths: u16) -> Result<(), WireError> {
        self.option(code::ELAPSED_TIME, &hundredths.to_be_bytes())
    }

    /// Opens Relay Message (RFC 9915 §21.10); write the inner message, then close it.
    pub fn begin_relay_msg(&mut self) -> Result<OptionMark, WireError> {
        self.begin_option(code::RELAY_MSG)
    }

    /// Rapid Commit (RFC 9915 §21.14).
    pub fn rapid_commit(&mut self) -> Result<(), WireError> {
        self.option(code::RAPID_COMMIT, &[])
    }

    /// Interface-Id (RFC 9915 §21.18), usually copied from the Relay-forw.
    pub fn interface_id(&mut self, id: &[u8]) -> Result<(), WireError> {
        if id.is_empty() {
            return Err(WireError::ZeroLength {
                code: code::INTERFACE_ID,
            });
        }
        self.option(code::INTERFACE_ID, id)
    }

    /// Reconfigure Message (RFC 9915 §21.19).
    pub fn reconf_msg(&mut self, msg_type: MessageType) -> Result<(), WireError> {
        self.option(code::RECONF_MSG, &[msg_type.code()])
    }

    /// Reconfigure Accept (RFC 9915 §21.20).
    pub fn reconf_accept(&mut self) -> Result<(), WireError> {
        self.option(code::RECONF_ACCEPT, &[])
    }

    fn addr_list(&mut self, code: u16, addrs: &[Ipv6Addr]) -> Result<(), WireError> {
        if addrs.is_empty() {
            return Err(WireError::ZeroLength { code });
        }
        let mark = self.begin_option(code)?;
        addrs.iter().try_for_each(|&a| self.put_ipv6(a))?;
        self.end_option(mark)
    }

    /// DNS Recursive Name Servers (RFC 3646 §3); at least one address.
    pub fn dns_servers(&mut self, addrs: &[Ipv6Addr]) -> Result<(), WireError> {
        self.addr_list(code::DNS_SERVERS, addrs)
    }

    /// Domain Search List (RFC 3646 §4) from dotted names; at least one.
    pub fn domain_list(&mut self, names: &[&str]) -> Result<(), WireError> {
        if names.is_empty() {
            return Err(WireError::ZeroLength {
                code: code::DOMAIN_LIST,
            });
        }
        let mark = self.begin_option(code::DOMAIN_LIST)?;
        names.iter().try_for_each(|n| write_name(self, n))?;
        self.end_option(mark)
    }

    /// Information Refresh Time, seconds (RFC 9915 §21.23).
    pub fn information_refresh_time(&mut self, secs: u32) -> Result<(), WireError> {
        self.option(code::INFORMATION_REFRESH_TIME, &secs.to_be_bytes())
    }

    /// Client FQDN (RFC 4704 §4) with a fully qualified name, or none if `name` is empty.
    pub fn client_fqdn(&mut self, flags: u8, name: &str) -> Result<(), WireError> {
        let mark = self.begin_option(code::CLIENT_FQDN)?;
        self.put_u8(flags)?;
        if !name.is_empty() {
            write_name(self, name)?;
        }
        self.end_option(mark)
    }

    /// Opens LQ_QUERY (RFC 5007 §4.1.2.1); write the query options, then close it.
    pub fn begin_lq_query(
        &mut self,
        query_type: u8,
        link_address: Ipv6Addr,
    ) -> Result<OptionMark, WireError> {
        let mark = self.begin_option(code::LQ_QUERY)?;
        self.put_u8(query_type)?;
        self.put_ipv6(link_address)?;
        Ok(mark)
    }

    /// Opens CLIENT_DATA (RFC 5007 §4.1.2.2); write the client's options, then close it.
    pub fn begin_client_data(&mut self) -> Result<OptionMark, WireError> {
        self.begin_option(code::CLIENT_DATA)
    }

    /// CLT_TIME, seconds since the client's last transaction (RFC 5007 §4.1.2.3).
    pub fn clt_time(&mut self, secs: u32) -> Result<(), WireError> {
        self.option(code::CLT_TIME, &secs.to_be_bytes())
    }

    /// Opens LQ_RELAY_DATA (RFC 5007 §4.1.2.4); write the Relay-forw message, then close it.
    pub fn begin_lq_relay_data(&mut self, peer_address: Ipv6Addr) -> Result<OptionMark, WireError> {
        let mark = self.begin_option(code::LQ_RELAY_DATA)?;
        self.put_ipv6(peer_address)?;
        Ok(mark)
    }

    /// LQ_CLIENT_LINK (RFC 5007 §4.1.2.5); at least one address.
    pub fn lq_client_link(&mut self, links: &[Ipv6Addr]) -> Result<(), WireError> {
        self.addr_list(code::LQ_CLIENT_LINK, links)
    }

    /// Client Link-Layer Address (RFC 6939 §4).
    pub fn client_linklayer_addr(&mut self, hw_type: u16, addr: &[u8]) -> Result<(), WireError> {
        if addr.is_empty() {
            return Err(WireError::ZeroLength {
                code: code::CLIENT_LINKLAYER_ADDR,
            });
        }
        let mark = self.begin_option(code::CLIENT_LINKLAYER_ADDR)?;
        self.put_u16(hw_type)?;
        self.put_slice(addr)?;
        self.end_option(mark)
    }

    /// SOL_MAX_RT, seconds (RFC 9915 §21.24).
    pub fn sol_max_rt(&mut self, secs: u32) -> Result<(), WireError> {
        self.option(code::SOL_MAX_RT, &secs.to_be_bytes())
    }

    /// INF_MAX_RT, seconds (RFC 9915 §21.25).
    pub fn inf_max_rt(&mut self, secs: u32) -> Result<(), WireError> {
        self.option(code::INF_MAX_RT, &secs.to_be_bytes())
    }

    /// Vendor Class (RFC 9915 §21.16) with its items.
    pub fn vendor_class(&mut self, enterprise: u32, items: &[&[u8]]) -> Result<(), WireError> {
        let mark = self.begin_option(code::VENDOR_CLASS)?;
        self.put_u32(enterprise)?;
        self.class_items(items)?;
        self.end_option(mark)
    }

    /// User Class (RFC 9915 §21.15) with its items.
    pub fn user_class(&mut self, items: &[&[u8]]) -> Result<(), WireError> {
        if items.is_empty() {
            return Err(WireError::ZeroLength {
                code: code::USER_CLASS,
            });
        }
        let mark = self.begin_option(code::USER_CLASS)?;
        self.class_items(items)?;
        self.end_option(mark)
    }

    fn class_items(&mut self, items: &[&[u8]]) -> Result<(), WireError> {
        for item in items {
            let len =
                u16::try_from(item.len()).map_err(|_| WireError::InvalidValue("class item"))?;
            self.put_u16(len)?;
            self.put_slice(item)?;
        }
        Ok(())
    }

    /// Opens Vendor-specific Information (RFC 9915 §21.17); write sub-options with
    /// [`Encoder::option`] (vendor code space), then close it.
    pub fn begin_vendor_opts(&mut self, enterprise: u32) -> Result<OptionMark, WireError> {
        let mark = self.begin_option(code::VENDOR_OPTS)?;
        self.put_u32(enterprise)?;
        Ok(mark)
    }
}
