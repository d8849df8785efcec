//! One client message in, one Advertise or Reply out (RFC 9915 §16, §18.3).

use super::ia::Mode;
use super::scan::{Scan, Wanted};
use super::Active;
use crate::core::lease::{LeaseChanges, LeaseKind, MAX_CHANGES};
use crate::core::DropReason;
use crate::core::Timestamp;
use crate::wire::options::{IaNa, IaPd};
use crate::wire::{code, status, Encoder, Message, MessageType, WireError};

/// Records one IA can cause (a commit plus the release of a moved binding).
const CHANGES_PER_IA: usize = 2;

fn enc_err(_: WireError) -> DropReason {
    // The caller's buffer is too small for the reply: nothing can be sent.
    DropReason::ReplyTooLarge
}

impl Active<'_> {
    /// §16 validation, then the §18.3 behaviour for the message type. On
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
        use MessageType as T;
        let opts = msg.options;
        let client_id = found.client_id;
        let ours = |d: &[u8]| d == &*self.policy.duid;
        let server_id = found.server_id;
        match msg.msg_type {
            // §16.2, §16.5, §16.7: MUST discard without a Client ID or with a Server ID.
            T::Solicit | T::Confirm | T::Rebind => {
                client_id.ok_or(DropReason::NoClientId)?;
                if server_id.is_some() {
                    return Err(DropReason::UnexpectedServerId);
                }
            }
            // §16.4, §16.6, §16.8, §16.9: MUST discard without a Client ID, or
            // without a Server ID, or whose Server ID is not ours.
            T::Request | T::Renew | T::Release | T::Decline => {
                client_id.ok_or(DropReason::NoClientId)?;
                if !server_id.is_some_and(ours) {
                    return Err(DropReason::NotForUs);
                }
            }
            // §16.12: discard with another server's Server ID, or with any IA.
            T::InformationRequest => {
                if server_id.is_some_and(|d| !ours(d)) {
                    return Err(DropReason::NotForUs);
                }
                if found.any_ia {
                    return Err(DropReason::IaInInformationRequest);
                }
            }
            // Advertise, Reply, Reconfigure, Leasequery, …: not for a server to answer.
            _ => return Err(DropReason::WrongMessageType),
        }
        // Bound the lease changes one message can cause before touching state.
        if found.ias * CHANGES_PER_IA > MAX_CHANGES {
            return Err(DropReason::TooManyIas);
        }
        let subnet = &self.policy.subnets[subnet];
        let duid = client_id.unwrap_or(&[]);

        if msg.msg_type == T::Confirm {
            return self.confirm(msg, duid, subnet, enc);
        }

        let rapid = msg.msg_type == T::Solicit && found.rapid_commit && self.policy.rapid_commit;
        let (reply_type, sent) = if msg.msg_type == T::Solicit && !rapid {
            (T::Advertise, MessageType::Advertise)
        } else {
            (T::Reply, MessageType::Reply)
        };
        enc.message_header(reply_type, msg.xid).map_err(enc_err)?;
        // §18.3: Advertise and Reply MUST carry our Server ID and the client's Client ID.
        // Both DUIDs are known good (ours checked at start-up, the client's by
        // the decoder), so they are copied without being checked again.
        enc.option(code::SERVERID, &self.policy.duid)
            .map_err(enc_err)?;
        if let Some(c) = client_id {
            enc.option(code::CLIENTID, c).map_err(enc_err)?;
        }
        let mode = match msg.msg_type {
            T::Solicit if rapid => Mode::Commit,
            T::Solicit => Mode::Offer,
            T::Request => Mode::Commit,
            T::Renew => Mode::Extend { rebind: false },
            T::Rebind => Mode::Extend { rebind: true },
            T::Release => Mode::Release,
            T::Decline => Mode::Decline,
            _ => Mode::Stateless,
        };
        if mode != Mode::Stateless {
            // One pass, in the client's order. IA_TA is obsolete in RFC 9915:
            // received ones are ignored, none is sent.
            for o in opts.raw() {
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
                self.ia(
                    subnet, duid, kind, iaid, ia_options, mode, now, enc, changes,
                )
                .map_err(enc_err)?;
            }
        }
        match mode {
            // §21.8: the Preference option tells clients which server to pick (RFC 6853 §6).
            Mode::Offer => enc.preference(self.policy.preference).map_err(enc_err)?,
            // §18.3.1: a committed reply to a Solicit carries Rapid Commit.
            Mode::Commit if rapid => enc.rapid_commit().map_err(enc_err)?,
            // §18.3.7, §18.3.8: Release and Decline replies carry Success.
            Mode::Release | Mode::Decline => {
                enc.status_code(status::SUCCESS, "").map_err(enc_err)?
            }
            _ => {}
        }
        self.requested_options(found.oro, subnet, mode == Mode::Stateless, enc)
            .map_err(enc_err)?;
        Ok(sent)
    }

    /// Options the client asked for in its ORO that we have (§18.3, §21.7).
    fn requested_options(
        &self,
        oro: Option<Wanted>,
        subnet: &super::Subnet,
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

    /// §18.3.3: Success when every address is on the client's link (the
    /// subnet prefix or one of its `link_prefixes`), NotOnLink otherwise; no
    /// reply at all when there are no addresses to check.
    ///
    /// Only IA_NA addresses are judged. Delegated prefixes are not addresses
    /// of the link, and §18.2.12 has a client holding delegated prefixes
    /// Rebind instead of Confirm: an IA_PD in a Confirm is ignored, and a
    /// Confirm with only IA_PDs has "no addresses in any of the IAs".
    /// (IA_TA is obsolete in RFC 9915 and ignored like everywhere else.)
    ///
    /// `client_id` is the Client ID option's data as the decoder found it
    /// (present: `respond` drops a Confirm without one).
    fn confirm(
        &self,
        msg: &Message<'_>,
        client_id: &[u8],
        subnet: &super::Subnet,
        enc: &mut Encoder<'_>,
    ) -> Result<MessageType, DropReason> {
        let mut any = false;
        let mut all_on_link = true;
        for ia in msg.options.ia_nas() {
            for a in ia.addrs() {
                any = true;
                all_on_link &= subnet.on_link(a.addr);
            }
        }
        if !any {
            return Err(DropReason::NothingToConfirm);
        }
        enc.message_header(MessageType::Reply, msg.xid)
            .map_err(enc_err)?;
        enc.server_id(&self.policy.duid).map_err(enc_err)?;
        // Known good (the decoder checked it, see `respond`): copied as is.
        enc.option(code::CLIENTID, client_id).map_err(enc_err)?;
        let (code, text) = if all_on_link {
            (status::SUCCESS, "")
        } else {
            (status::NOT_ON_LINK, "address not on this link")
        };
        enc.status_code(code, text).map_err(enc_err)?;
        Ok(MessageType::Reply)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use crate::core::{Handler, Ingress, LeaseChanges, Server, Timestamp};
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
        let config: crate::config::Config = toml::from_str(CONFIG).expect("test config parses");
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
                src_port: if link.is_some() { 547 } else { 546 },
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
