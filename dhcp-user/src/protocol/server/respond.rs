//! One client message in, one Advertise or Reply out (RFC 9915 §16, §18.3).

use super::ia::Mode;
use super::scan::{Scan, Wanted};
use super::setup::Subnet;
use super::Active;
use crate::protocol::lease::{LeaseChanges, LeaseKind, MAX_CHANGES};
use crate::protocol::DropReason;
use crate::protocol::Timestamp;
use crate::wire::options::{IaNa, IaPd};
use crate::wire::{code, status, Encoder, Message, MessageType, WireError};

/// Records one IA can cause (a commit plus the release of a moved binding).
const CHANGES_PER_IA: usize = 2;

fn enc_err(_: WireError) -> DropReason {
    // The caller's buffer is too small for the reply: nothing can be sent.
    DropReason::ReplyTooLarge
}

/// One client message being answered: what each message's function reads
/// (the message, its options, the client's subnet and DUID, `now`) and
/// where it writes (the reply, the lease changes to make durable).
pub(super) struct Exchange<'x, 'b> {
    /// The client message (innermost, for a relayed one).
    pub(super) msg: &'x Message<'x>,
    /// Its options, scanned once.
    pub(super) found: &'x Scan<'x>,
    /// The client's subnet.
    pub(super) subnet: &'x Subnet,
    /// The client's DUID, as its Client Identifier option carries it (known
    /// good: the decoder checked it); empty for an Information-request without one.
    pub(super) client: &'x [u8],
    /// The time, from the caller.
    pub(super) now: Timestamp,
    /// The reply being written.
    pub(super) enc: &'x mut Encoder<'b>,
    /// The lease changes the reply waits for.
    pub(super) changes: &'x mut LeaseChanges,
}

impl Active<'_> {
    /// §16 validation, then the §18.3 function of the message type. On
    /// `Err` nothing was written that matters and no binding changed.
    pub(super) fn respond(
        &self,
        msg: &Message<'_>,
        found: &Scan<'_>,
        subnet: usize,
        now: Timestamp,
        enc: &mut Encoder<'_>,
        changes: &mut LeaseChanges,
    ) -> Result<MessageType, DropReason> {
        self.validate(msg.msg_type, found)?;
        // Bound the lease changes one message can cause before touching state.
        if found.ias * CHANGES_PER_IA > MAX_CHANGES {
            return Err(DropReason::TooManyIas);
        }
        let mut x = Exchange {
            msg,
            found,
            subnet: &self.policy.subnets[subnet],
            client: found.client_id.unwrap_or(&[]),
            now,
            enc,
            changes,
        };
        use MessageType as T;
        match msg.msg_type {
            T::Solicit => self.solicit(&mut x),
            T::Request => self.request(&mut x),
            T::Confirm => self.confirm(&mut x),
            T::Renew => self.renew(&mut x),
            T::Rebind => self.rebind(&mut x),
            T::InformationRequest => self.information_request(&mut x),
            T::Release => self.release(&mut x),
            T::Decline => self.decline(&mut x),
            _ => Err(DropReason::WrongMessageType),
        }
    }

    /// §16: which messages a server must discard, by the Client and Server
    /// Identifier options they carry.
    fn validate(&self, t: MessageType, found: &Scan<'_>) -> Result<(), DropReason> {
        use MessageType as T;
        let ours = |d: &[u8]| d == &*self.policy.duid;
        match t {
            // §16.2, §16.5, §16.7: MUST discard without a Client ID or with a Server ID.
            T::Solicit | T::Confirm | T::Rebind => {
                found.client_id.ok_or(DropReason::NoClientId)?;
                if found.server_id.is_some() {
                    return Err(DropReason::UnexpectedServerId);
                }
            }
            // §16.4, §16.6, §16.8, §16.9: MUST discard without a Client ID, or
            // without a Server ID, or whose Server ID is not ours.
            T::Request | T::Renew | T::Release | T::Decline => {
                found.client_id.ok_or(DropReason::NoClientId)?;
                if !found.server_id.is_some_and(ours) {
                    return Err(DropReason::NotForUs);
                }
            }
            // §16.12: discard with another server's Server ID, or with any IA.
            T::InformationRequest => {
                if found.server_id.is_some_and(|d| !ours(d)) {
                    return Err(DropReason::NotForUs);
                }
                if found.any_ia {
                    return Err(DropReason::IaInInformationRequest);
                }
            }
            // Advertise, Reply, Reconfigure, Leasequery, …: not for a server to answer.
            _ => return Err(DropReason::WrongMessageType),
        }
        Ok(())
    }

    /// §18.3.1, Receipt of Solicit Messages: the server answers with an
    /// Advertise holding the leases it would assign, and its Preference
    /// (§21.8; RFC 6853 §6: how clients pick among servers). "If the client
    /// has included a Rapid Commit option and the server has been
    /// configured to respond with committed address assignments and/or
    /// delegated prefixes and other resources, the server responds to the
    /// Solicit with a Reply message", committed, carrying Rapid Commit.
    fn solicit(&self, x: &mut Exchange<'_, '_>) -> Result<MessageType, DropReason> {
        if x.found.rapid_commit && self.policy.rapid_commit {
            self.reply_header(x, MessageType::Reply)?;
            self.ias(x, Mode::Commit)?;
            x.enc.rapid_commit().map_err(enc_err)?;
            self.requested_options(x, false)?;
            return Ok(MessageType::Reply);
        }
        self.reply_header(x, MessageType::Advertise)?;
        self.ias(x, Mode::Offer)?;
        x.enc.preference(self.policy.preference).map_err(enc_err)?;
        self.requested_options(x, false)?;
        Ok(MessageType::Advertise)
    }

    /// §18.3.2, Receipt of Request Messages: "the server creates the
    /// bindings for that client according to the server's policy and
    /// configuration information and records the IAs and other information
    /// requested by the client", and answers with a Reply holding them (an
    /// IA it cannot serve gets NoAddrsAvail / NoPrefixAvail).
    fn request(&self, x: &mut Exchange<'_, '_>) -> Result<MessageType, DropReason> {
        self.reply_header(x, MessageType::Reply)?;
        self.ias(x, Mode::Commit)?;
        self.requested_options(x, false)?;
        Ok(MessageType::Reply)
    }

    /// §18.3.4, Receipt of Renew Messages: "For each IA in the Renew message
    /// from a client, the server locates the client's binding and verifies
    /// that the information in the IA from the client matches the
    /// information stored for that client." See [`Active::extend`].
    fn renew(&self, x: &mut Exchange<'_, '_>) -> Result<MessageType, DropReason> {
        self.extend(x, false)
    }

    /// §18.3.5, Receipt of Rebind Messages: "When the server receives a
    /// Rebind message that contains an IA option from a client, it locates
    /// the client's binding and verifies that the information in the IA
    /// from the client matches the information stored for that client."
    /// Any server may answer a Rebind (RFC 6853 §4: the survivor of a
    /// failure). See [`Active::extend`].
    fn rebind(&self, x: &mut Exchange<'_, '_>) -> Result<MessageType, DropReason> {
        self.extend(x, true)
    }

    /// What Renew and Rebind share: extend each binding the client holds
    /// here (or, identical prefixes, one our allocation function gives it),
    /// send leases that are not ours back with lifetimes 0.
    fn extend(&self, x: &mut Exchange<'_, '_>, rebind: bool) -> Result<MessageType, DropReason> {
        self.reply_header(x, MessageType::Reply)?;
        self.ias(x, Mode::Extend { rebind })?;
        self.requested_options(x, false)?;
        Ok(MessageType::Reply)
    }

    /// §18.3.6, Receipt of Information-request Messages: "When the server
    /// receives an Information-request message, the client is requesting
    /// configuration information that does not include the assignment of
    /// any leases." The Reply carries the options asked for and the
    /// Information Refresh Time (§21.23).
    fn information_request(&self, x: &mut Exchange<'_, '_>) -> Result<MessageType, DropReason> {
        self.reply_header(x, MessageType::Reply)?;
        self.requested_options(x, true)?;
        Ok(MessageType::Reply)
    }

    /// §18.3.7, Receipt of Release Messages: "the server examines the IAs
    /// and the leases in the IAs for validity", deletes the leases it holds
    /// for the client, and replies with Success (an IA it has no binding for
    /// gets NoBinding).
    fn release(&self, x: &mut Exchange<'_, '_>) -> Result<MessageType, DropReason> {
        self.reply_header(x, MessageType::Reply)?;
        self.ias(x, Mode::Release)?;
        x.enc.status_code(status::SUCCESS, "").map_err(enc_err)?;
        self.requested_options(x, false)?;
        Ok(MessageType::Reply)
    }

    /// §18.3.8, Receipt of Decline Messages: "the server examines the IAs
    /// and the addresses in the IAs for validity", marks each declined
    /// address it holds for the client as not to be assigned (quarantined
    /// for one valid lifetime), and replies with Success.
    fn decline(&self, x: &mut Exchange<'_, '_>) -> Result<MessageType, DropReason> {
        self.reply_header(x, MessageType::Reply)?;
        self.ias(x, Mode::Decline)?;
        x.enc.status_code(status::SUCCESS, "").map_err(enc_err)?;
        self.requested_options(x, false)?;
        Ok(MessageType::Reply)
    }

    /// §18.3: the header, and our Server ID and the client's Client ID,
    /// which every Advertise and Reply MUST carry. Both DUIDs are known good
    /// (ours checked at start-up, the client's by the decoder), so they are
    /// copied without being checked again.
    fn reply_header(&self, x: &mut Exchange<'_, '_>, t: MessageType) -> Result<(), DropReason> {
        x.enc.message_header(t, x.msg.xid).map_err(enc_err)?;
        x.enc
            .option(code::SERVERID, &self.policy.duid)
            .map_err(enc_err)?;
        if let Some(c) = x.found.client_id {
            x.enc.option(code::CLIENTID, c).map_err(enc_err)?;
        }
        Ok(())
    }

    /// Every IA_NA and IA_PD of the message, in the client's order, under
    /// `mode`. IA_TA is obsolete in RFC 9915: received ones are ignored,
    /// none is sent.
    fn ias(&self, x: &mut Exchange<'_, '_>, mode: Mode) -> Result<(), DropReason> {
        for o in x.msg.options.raw() {
            let (kind, iaid, ia_options) = match o.code {
                code::IA_NA => match IaNa::parse(o.data) {
                    Ok(ia) => (LeaseKind::Na, ia.iaid, ia.options),
                    Err(_) => continue,
                },
                code::IA_PD => match IaPd::parse(o.data) {
                    Ok(ia) => (LeaseKind::Pd, ia.iaid, ia.options),
                    Err(_) => continue,
                },
                _ => continue,
            };
            self.ia(x, kind, iaid, ia_options, mode).map_err(enc_err)?;
        }
        Ok(())
    }

    /// Options the client asked for in its ORO that we have (§18.3, §21.7).
    fn requested_options(
        &self,
        x: &mut Exchange<'_, '_>,
        information_request: bool,
    ) -> Result<(), DropReason> {
        self.write_requested_options(x.found.oro, x.subnet, information_request, x.enc)
            .map_err(enc_err)
    }

    fn write_requested_options(
        &self,
        oro: Option<Wanted>,
        subnet: &Subnet,
        information_request: bool,
        enc: &mut Encoder<'_>,
    ) -> Result<(), WireError> {
        let wants = |c: u16| oro.is_some_and(|o| o.has(c));
        if wants(code::DNS_SERVERS) && !subnet.dns_option.is_empty() {
            enc.put_slice(&subnet.dns_option)?;
        }
        if wants(code::DOMAIN_LIST) && !subnet.domain_option.is_empty() {
            enc.put_slice(&subnet.domain_option)?;
        }
        // §21.24, §21.25: "The DHCP server MAY include the SOL_MAX_RT [INF_MAX_RT]
        // option in any response it sends to a client that has included the
        // SOL_MAX_RT [INF_MAX_RT] option code in an Option Request option."
        // We do, with the subnet's `[options]` value.
        if wants(code::SOL_MAX_RT) {
            enc.sol_max_rt(subnet.options.sol_max_rt)?;
        }
        if wants(code::INF_MAX_RT) {
            enc.inf_max_rt(subnet.options.inf_max_rt)?;
        }
        // §21.23: "A server sending a Reply to an Information-request message
        // SHOULD include this option if it is requested"; it is meaningful
        // only there, so every such Reply carries it (a client that did not
        // ask would assume IRT_DEFAULT, which may not be what is configured).
        if information_request {
            enc.information_refresh_time(subnet.options.information_refresh_time)?;
        }
        Ok(())
    }

    /// §18.3.3, Receipt of Confirm Messages: "When the server receives a
    /// Confirm message, the server determines whether the addresses in the
    /// Confirm message are appropriate for the link to which the client is
    /// attached": Success when every address is on the client's link (the
    /// subnet prefix or one of its `link_prefixes`), NotOnLink otherwise; no
    /// reply at all when there are no addresses to check.
    ///
    /// Only IA_NA addresses are judged. Delegated prefixes are not addresses
    /// of the link, and §18.2.12 has a client holding delegated prefixes
    /// Rebind instead of Confirm: an IA_PD in a Confirm is ignored, and a
    /// Confirm with only IA_PDs has "no addresses in any of the IAs".
    /// (IA_TA is obsolete in RFC 9915 and ignored like everywhere else.)
    fn confirm(&self, x: &mut Exchange<'_, '_>) -> Result<MessageType, DropReason> {
        let mut any = false;
        let mut all_on_link = true;
        for ia in x.msg.options.ia_nas() {
            for a in ia.addrs() {
                any = true;
                all_on_link &= x.subnet.on_link(a.addr);
            }
        }
        if !any {
            return Err(DropReason::NothingToConfirm);
        }
        self.reply_header(x, MessageType::Reply)?;
        let (code, text) = if all_on_link {
            (status::SUCCESS, "")
        } else {
            (status::NOT_ON_LINK, "address not on this link")
        };
        x.enc.status_code(code, text).map_err(enc_err)?;
        Ok(MessageType::Reply)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use crate::protocol::{Handler, Ingress, LeaseChanges, Server, Timestamp};
    use crate::wire::{status, AnyMessage, Encoder, Message, MessageType, Xid};

    const CONFIG: &str = r#"
[server]
interfaces = ["eth0"]
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::/65"]
[[subnet]]
prefix = "2001:db8:2:2::/64"
pools = ["2001:db8:2:2::100-2001:db8:2:2::1ff"]
"#;
    /// A DUID-EN of odd length, unlike any DUID the server holds.
    const CLIENT: &[u8] = &[0, 2, 0, 0, 0x7f, 0xf1, 0xde, 0xad, 0xbe, 0xef, 0x42];

    fn server() -> Server {
        let config = crate::config::Config::from_toml(CONFIG, std::path::Path::new("respond.toml"))
            .expect("test config is valid");
        Server::new(
            &config.settings(),
            vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
            &[("eth0".into(), 2)],
        )
        .expect("server builds")
    }

    /// A Confirm of `addr` from [`CLIENT`], wrapped in one Relay-forw with
    /// this link-address when `relay` is given.
    fn confirm(addr: Ipv6Addr, relay: Option<Ipv6Addr>, buf: &mut [u8]) -> usize {
        let mut enc = Encoder::new(buf);
        let mark = relay.map(|link| {
            enc.relay_header(MessageType::RelayForw, 0, link, "fe80::1".parse().unwrap())
                .unwrap();
            enc.begin_relay_msg().unwrap()
        });
        enc.message_header(MessageType::Confirm, Xid::new(0x3303))
            .unwrap();
        enc.client_id(CLIENT).unwrap();
        let ia = enc.begin_ia_na(1, 0, 0).unwrap();
        enc.ia_addr(addr, 0, 0).unwrap();
        enc.end_option(ia).unwrap();
        if let Some(m) = mark {
            enc.end_option(m).unwrap();
        }
        enc.finish().unwrap()
    }

    #[test]
    fn confirm_reply_carries_the_clients_client_id_direct_and_relayed() {
        // RFC 9915 §18.3.3: the Reply to a Confirm carries the server's
        // Server Identifier and the Client Identifier option from the
        // Confirm, with the Success or NotOnLink status.
        let s = server();
        let cases = [
            ("2001:db8:1:1::5", None, 2, status::SUCCESS),
            ("2001:db8:9::5", None, 2, status::NOT_ON_LINK),
            (
                "2001:db8:2:2::5",
                Some("2001:db8:2:2::1"),
                99,
                status::SUCCESS,
            ),
        ];
        for (addr, link, ifindex, want) in cases {
            let mut msg = [0u8; 512];
            let link = link.map(|l| l.parse().unwrap());
            let n = confirm(addr.parse().unwrap(), link, &mut msg);
            let ingress = Ingress {
                ifindex,
                src: "fe80::1".parse().unwrap(),
                src_port: if link.is_some() {
                    crate::wire::SERVER_PORT
                } else {
                    crate::wire::CLIENT_PORT
                },
                dst_multicast: link.is_none(),
            };
            let mut out = [0u8; 1024];
            let mut changes = LeaseChanges::default();
            let handled = s.handle(&ingress, &msg[..n], Timestamp(1), &mut out, &mut changes);
            let len = handled.result.expect("a Reply").len;
            let reply: Message<'_> = match AnyMessage::decode(&out[..len]).unwrap() {
                AnyMessage::Message(m) => m,
                AnyMessage::Relay(r) => r.innermost().expect("a relayed Reply"),
            };
            assert_eq!(reply.msg_type, MessageType::Reply, "{addr}");
            let client = reply.options.client_id().expect("a Client ID");
            assert_eq!(client.as_bytes(), CLIENT, "{addr}");
            assert_eq!(reply.options.status_code().unwrap().code, want, "{addr}");
        }
    }
}
