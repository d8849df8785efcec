//! Message templates and the reply reader of the load generator.
//!
//! Templates are encoded once by `dhcproto` (an encoder independent of dhcp6d's
//! codec, so the two check each other) with sentinel values; the generator then
//! patches the transaction id, DUID, peer address and IA contents in place per
//! client, so sending costs a copy and a few stores, never an encode.
//! Replies are read by a small allocation-free option walker.

use std::net::Ipv6Addr;

use dhcproto::v6::{self, DhcpOption, IAAddr, IAPrefix, MessageType, IANA, IAPD, ORO};
use dhcproto::{Encodable, Encoder};

/// DUID-EN enterprise number used for simulated clients (32473 is reserved for documentation).
const ENTERPRISE: u32 = 32473;
const SENTINEL_ID: [u8; 8] = [0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8];
const SENTINEL_NA: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8,
];
const SENTINEL_PD: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xfe, 0xed, 0xfa, 0xce, 1, 2, 3, 4, 5, 6, 7, 8,
];
/// Size of one Relay-forw header plus the Relay Message option header in front of the inner message.
const RELAY_WRAP: usize = 34 + 4;
pub const IAID_NA: u32 = 1;
pub const IAID_PD: u32 = 2;

/// Which IAs the simulated clients ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaKinds {
    pub na: bool,
    pub pd: bool,
}

/// How simulated clients are identified: DUID-EN with an 8-byte identifier
/// `salt (4) | client index (4)`, so a reply's Client ID names its client directly.
pub fn client_duid(salt: u32, index: u32) -> [u8; 14] {
    let mut d = [0u8; 14];
    d[..2].copy_from_slice(&2u16.to_be_bytes());
    d[2..6].copy_from_slice(&ENTERPRISE.to_be_bytes());
    d[6..10].copy_from_slice(&salt.to_be_bytes());
    d[10..14].copy_from_slice(&index.to_be_bytes());
    d
}

/// One encoded message with the byte offsets of its per-client fields.
#[derive(Clone, Debug)]
pub struct Template {
    pub bytes: Vec<u8>,
    xid: usize,
    client_id: usize,
    elapsed: usize,
    peer: Option<usize>,
    na_addr: Option<usize>,
    pd_prefix: Option<usize>,
}

/// What goes into one message.
pub struct Fill {
    pub xid: u32,
    pub salt: u32,
    pub index: u32,
    /// Elapsed Time in hundredths of a second (RFC 9915 §21.9).
    pub elapsed_cs: u16,
    pub na: u128,
    pub pd: (u128, u8),
}

impl Template {
    /// Encode `msg_type` for the given IAs; `server_id` adds a Server Identifier;
    /// `with_hints` puts IAADDR/IAPREFIX options (patched per client) into the IAs;
    /// `hops` nested Relay-forw (0: sent by the client itself).
    pub fn build(
        msg_type: MessageType,
        ia: IaKinds,
        server_id: Option<&[u8]>,
        with_hints: bool,
        rapid_commit: bool,
        hops: u8,
        relay_link: Ipv6Addr,
    ) -> Template {
        let mut m = v6::Message::new_with_id(msg_type, [0xa1, 0xa2, 0xa3]);
        let mut duid = client_duid(0, 0);
        duid[6..].copy_from_slice(&SENTINEL_ID);
        let opts = m.opts_mut();
        opts.insert(DhcpOption::ClientId(duid.to_vec()));
        if let Some(sid) = server_id {
            opts.insert(DhcpOption::ServerId(sid.to_vec()));
        }
        opts.insert(DhcpOption::ElapsedTime(0));
        opts.insert(DhcpOption::ORO(ORO {
            opts: vec![v6::OptionCode::DomainNameServers],
        }));
        if rapid_commit {
            opts.insert(DhcpOption::RapidCommit);
        }
        if ia.na {
            let mut sub = v6::DhcpOptions::new();
            if with_hints {
                sub.insert(DhcpOption::IAAddr(IAAddr {
                    addr: SENTINEL_NA.into(),
                    preferred_life: 0,
                    valid_life: 0,
                    opts: v6::DhcpOptions::new(),
                }));
            }
            opts.insert(DhcpOption::IANA(IANA {
                id: IAID_NA,
                t1: 0,
                t2: 0,
                opts: sub,
            }));
        }
        if ia.pd {
            let mut sub = v6::DhcpOptions::new();
            if with_hints {
                sub.insert(DhcpOption::IAPrefix(IAPrefix {
                    preferred_lifetime: 0,
                    valid_lifetime: 0,
                    prefix_len: 56,
                    prefix_ip: SENTINEL_PD.into(),
                    opts: v6::DhcpOptions::new(),
                }));
            }
            opts.insert(DhcpOption::IAPD(IAPD {
                id: IAID_PD,
                t1: 0,
                t2: 0,
                opts: sub,
            }));
        }
        let mut inner = Vec::with_capacity(256);
        m.encode(&mut Encoder::new(&mut inner))
            .expect("encoding into a Vec cannot fail");
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let base = usize::from(hops) * RELAY_WRAP;
        let client_id = base + find(&inner, &SENTINEL_ID).expect("sentinel DUID encoded");
        let elapsed_opt = [0u8, 8, 0, 2];
        let elapsed = base + find(&inner, &elapsed_opt).expect("elapsed time encoded") + 4;
        let na_addr = find(&inner, &SENTINEL_NA).map(|o| base + o);
        let pd_prefix = find(&inner, &SENTINEL_PD).map(|o| base + o);
        let mut bytes = Vec::with_capacity(base + inner.len());
        // Relay-forw headers, outermost first (RFC 9915 §9.1); the innermost carries
        // the link-address that selects the subnet and the client's peer-address.
        for h in 0..hops {
            let hop_count = hops - 1 - h;
            let rest = inner.len() + usize::from(hops - 1 - h) * RELAY_WRAP;
            bytes.push(12);
            bytes.push(hop_count);
            let link = if hop_count == 0 {
                relay_link
            } else {
                Ipv6Addr::UNSPECIFIED
            };
            bytes.extend_from_slice(&link.octets());
            bytes.extend_from_slice(
                &Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(h) + 1).octets(),
            );
            bytes.extend_from_slice(&9u16.to_be_bytes());
            bytes.extend_from_slice(&(rest as u16).to_be_bytes());
        }
        let peer = (hops > 0).then(|| base - RELAY_WRAP + 18);
        bytes.extend_from_slice(&inner);
        Template {
            bytes,
            xid: base + 1,
            client_id,
            elapsed,
            peer,
            na_addr,
            pd_prefix,
        }
    }

    /// Give the IAADDR/IAPREFIX non-zero lifetimes (replies of the built-in mirror server).
    pub fn set_lifetimes(&mut self, preferred: u32, valid: u32) {
        if let Some(o) = self.na_addr {
            self.bytes[o + 16..o + 20].copy_from_slice(&preferred.to_be_bytes());
            self.bytes[o + 20..o + 24].copy_from_slice(&valid.to_be_bytes());
        }
        if let Some(o) = self.pd_prefix {
            self.bytes[o - 9..o - 5].copy_from_slice(&preferred.to_be_bytes());
            self.bytes[o - 5..o - 1].copy_from_slice(&valid.to_be_bytes());
        }
    }

    /// [`Template::write`] with the peer-address `peer` instead of the
    /// client's own (one source sending for many DUIDs: the flood).
    pub fn write_as(&self, out: &mut [u8], f: &Fill, peer: u128) -> usize {
        let n = self.write(out, f);
        if let Some(p) = self.peer {
            out[p..p + 16].copy_from_slice(&peer.to_be_bytes());
        }
        n
    }

    /// Copy the template into `out` and patch one client's fields; returns the length.
    pub fn write(&self, out: &mut [u8], f: &Fill) -> usize {
        let n = self.bytes.len();
        out[..n].copy_from_slice(&self.bytes);
        out[self.xid..self.xid + 3].copy_from_slice(&f.xid.to_be_bytes()[1..]);
        out[self.client_id..self.client_id + 4].copy_from_slice(&f.salt.to_be_bytes());
        out[self.client_id + 4..self.client_id + 8].copy_from_slice(&f.index.to_be_bytes());
        out[self.elapsed..self.elapsed + 2].copy_from_slice(&f.elapsed_cs.to_be_bytes());
        if let Some(p) = self.peer {
            // A distinct link-local peer-address per client, as a real relay would see.
            let peer = (0xfe80u128 << 112) | (u128::from(f.index) + 1);
            out[p..p + 16].copy_from_slice(&peer.to_be_bytes());
        }
        if let Some(o) = self.na_addr {
            out[o..o + 16].copy_from_slice(&f.na.to_be_bytes());
        }
        if let Some(o) = self.pd_prefix {
            out[o - 1] = f.pd.1;
            out[o..o + 16].copy_from_slice(&f.pd.0.to_be_bytes());
        }
        n
    }
}

/// What the generator needs from a server message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplyInfo {
    pub msg_type: u8,
    pub xid: u32,
    /// (salt, index) from a Client ID of our DUID-EN form.
    pub client: Option<(u32, u32)>,
    /// Byte range of the Server Identifier's DUID inside the datagram.
    pub server_id: Option<(usize, usize)>,
    /// First IAADDR of IA_NA with non-zero valid lifetime.
    pub na: Option<u128>,
    /// First IAPREFIX of IA_PD with non-zero valid lifetime.
    pub pd: Option<(u128, u8)>,
    /// Status code at message or IA level other than Success (0).
    pub status: Option<u16>,
    pub rapid_commit: bool,
    pub preference: u8,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Read a server message, unwrapping nested Relay-repl. `None` if it is not well formed.
pub fn parse_reply(buf: &[u8]) -> Option<ReplyInfo> {
    let mut start = 0usize;
    let mut end = buf.len();
    // Unwrap Relay-repl (13) down to the message in the innermost Relay Message option.
    for _ in 0..32 {
        if *buf.get(start)? != 13 {
            break;
        }
        let (s, e) = find_option(buf, start + 34, end, 9)?;
        start = s;
        end = e;
    }
    let mut info = ReplyInfo {
        msg_type: *buf.get(start)?,
        xid: u32::from_be_bytes([
            0,
            *buf.get(start + 1)?,
            *buf.get(start + 2)?,
            *buf.get(start + 3)?,
        ]),
        ..ReplyInfo::default()
    };
    walk(buf, start + 4, end, &mut info, 0)?;
    Some(info)
}

fn find_option(buf: &[u8], mut at: usize, end: usize, want: u16) -> Option<(usize, usize)> {
    while at + 4 <= end {
        let code = be16(buf, at)?;
        let len = usize::from(be16(buf, at + 2)?);
        if at + 4 + len > end {
            return None;
        }
        if code == want {
            return Some((at + 4, at + 4 + len));
        }
        at += 4 + len;
    }
    None
}

/// Walk options in `buf[at..end]`; `depth` 0 is message level, 1 inside an IA.
fn walk(buf: &[u8], mut at: usize, end: usize, info: &mut ReplyInfo, depth: u8) -> Option<()> {
    while at + 4 <= end {
        let code = be16(buf, at)?;
        let len = usize::from(be16(buf, at + 2)?);
        let body = at + 4;
        if body + len > end {
            return None;
        }
        match code {
            1 if depth == 0 && len == 14 && be16(buf, body)? == 2 => {
                let id = &buf[body + 6..body + 14];
                let salt = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
                let index = u32::from_be_bytes([id[4], id[5], id[6], id[7]]);
                info.client = Some((salt, index));
            }
            2 if depth == 0 => info.server_id = Some((body, body + len)),
            3 | 25 if depth == 0 && len >= 12 => walk(buf, body + 12, body + len, info, 1)?,
            5 if depth == 1 && len >= 24 => {
                let valid = u32::from_be_bytes(buf[body + 20..body + 24].try_into().ok()?);
                if valid > 0 && info.na.is_none() {
                    info.na = Some(u128::from_be_bytes(buf[body..body + 16].try_into().ok()?));
                }
            }
            26 if depth == 1 && len >= 25 => {
                let valid = u32::from_be_bytes(buf[body + 4..body + 8].try_into().ok()?);
                if valid > 0 && info.pd.is_none() {
                    let p = u128::from_be_bytes(buf[body + 9..body + 25].try_into().ok()?);
                    info.pd = Some((p, buf[body + 8]));
                }
            }
            7 if depth == 0 && len == 1 => info.preference = buf[body],
            13 if len >= 2 => {
                let s = be16(buf, body)?;
                if s != 0 && info.status.is_none() {
                    info.status = Some(s);
                }
            }
            14 if depth == 0 => info.rapid_commit = true,
            _ => {}
        }
        at = body + len;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::Decodable;

    /// RFC 9915 §9.1: a relay agent wraps the client message in Relay-forw with
    /// hop-count, link-address, peer-address and the Relay Message option; nested
    /// relays each add one header. dhcproto must decode the innermost message back.
    #[test]
    fn rfc9915_section_9_1_nested_relay_forw_round_trips() {
        let link: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let t = Template::build(
            MessageType::Solicit,
            IaKinds { na: true, pd: true },
            None,
            false,
            false,
            3,
            link,
        );
        let mut out = [0u8; 1500];
        let fill = Fill {
            xid: 0x123456,
            salt: 7,
            index: 42,
            elapsed_cs: 100,
            na: 0,
            pd: (0, 0),
        };
        let n = t.write(&mut out, &fill);
        assert_eq!(out[0], 12);
        assert_eq!(out[1], 2, "outermost relay has the highest hop-count");
        let inner = &out[3 * RELAY_WRAP..n];
        let m = v6::Message::decode(&mut dhcproto::Decoder::new(inner)).unwrap();
        assert_eq!(m.msg_type(), MessageType::Solicit);
        assert_eq!(m.xid_num(), 0x123456);
        let innermost = &out[2 * RELAY_WRAP..];
        assert_eq!(&innermost[2..18], &link.octets());
        assert!(
            matches!(m.opts().get(v6::OptionCode::ClientId), Some(DhcpOption::ClientId(d)) if d[..] == client_duid(7, 42))
        );
        assert!(matches!(
            m.opts().get(v6::OptionCode::ElapsedTime),
            Some(DhcpOption::ElapsedTime(100))
        ));
    }

    /// RFC 9915 §18.2.2: a Request carries the Server Identifier and the IAs with the
    /// addresses/prefixes the client was offered.
    /// The flood's messages: one peer-address for every DUID, where a
    /// client's own carries fe80::(index + 1).
    #[test]
    fn write_as_sends_every_duid_from_one_peer_address() {
        let link: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let t = Template::build(
            MessageType::Rebind,
            IaKinds {
                na: true,
                pd: false,
            },
            None,
            true,
            false,
            1,
            link,
        );
        let peer_of = |out: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(&out[18..34]).unwrap());
        let duid_of = |out: &[u8], n: usize| {
            let inner = &out[RELAY_WRAP..n];
            let m = v6::Message::decode(&mut dhcproto::Decoder::new(inner)).unwrap();
            match m.opts().get(v6::OptionCode::ClientId) {
                Some(DhcpOption::ClientId(d)) => d.clone(),
                other => panic!("no Client ID: {other:?}"),
            }
        };
        let fill = |index| Fill {
            xid: 1,
            salt: 3,
            index,
            elapsed_cs: 0,
            na: 0,
            pd: (0, 0),
        };
        let flood_peer: u128 = 0xfe80_0000_0000_0000_0000_0000_f100_d000;
        let (mut a, mut b) = ([0u8; 1500], [0u8; 1500]);
        let na = t.write_as(&mut a, &fill(1), flood_peer);
        let nb = t.write_as(&mut b, &fill(2), flood_peer);
        assert_eq!(peer_of(&a), Ipv6Addr::from(flood_peer));
        assert_eq!(peer_of(&a), peer_of(&b));
        assert_ne!(duid_of(&a, na), duid_of(&b, nb), "a new DUID each");
        let own = t.write(&mut a, &fill(1));
        assert_eq!(own, na);
        assert_eq!(peer_of(&a), "fe80::2".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn rfc9915_section_18_2_2_request_patches_offer_into_ias() {
        let sid = [0u8, 4, 9, 9, 9, 9];
        let t = Template::build(
            MessageType::Request,
            IaKinds { na: true, pd: true },
            Some(&sid),
            true,
            false,
            0,
            Ipv6Addr::UNSPECIFIED,
        );
        let mut out = [0u8; 1500];
        let na: Ipv6Addr = "2001:db8:1:1:8000::5".parse().unwrap();
        let pd: Ipv6Addr = "2001:db8:100:500::".parse().unwrap();
        let fill = Fill {
            xid: 9,
            salt: 1,
            index: 2,
            elapsed_cs: 0,
            na: na.into(),
            pd: (pd.into(), 56),
        };
        let n = t.write(&mut out, &fill);
        let m = v6::Message::decode(&mut dhcproto::Decoder::new(&out[..n])).unwrap();
        assert!(
            matches!(m.opts().get(v6::OptionCode::ServerId), Some(DhcpOption::ServerId(s)) if s[..] == sid)
        );
        let Some(DhcpOption::IANA(ia)) = m.opts().get(v6::OptionCode::IANA) else {
            panic!("no IA_NA")
        };
        assert!(
            matches!(ia.opts.get(v6::OptionCode::IAAddr), Some(DhcpOption::IAAddr(a)) if a.addr == na)
        );
        let Some(DhcpOption::IAPD(ia)) = m.opts().get(v6::OptionCode::IAPD) else {
            panic!("no IA_PD")
        };
        assert!(
            matches!(ia.opts.get(v6::OptionCode::IAPrefix), Some(DhcpOption::IAPrefix(p)) if p.prefix_ip == pd && p.prefix_len == 56)
        );
    }

    /// The reply reader must find what dhcproto encodes, through a Relay-repl, and
    /// never panic on truncations of it (bad input is normal).
    #[test]
    fn rfc9915_section_9_2_reply_reader_unwraps_relay_repl() {
        let mut m = v6::Message::new_with_id(MessageType::Reply, [1, 2, 3]);
        let na: Ipv6Addr = "2001:db8:1:2:8000::9".parse().unwrap();
        m.opts_mut()
            .insert(DhcpOption::ClientId(client_duid(5, 77).to_vec()));
        m.opts_mut().insert(DhcpOption::ServerId(vec![0, 4, 1, 2]));
        let mut sub = v6::DhcpOptions::new();
        sub.insert(DhcpOption::IAAddr(IAAddr {
            addr: na,
            preferred_life: 10,
            valid_life: 20,
            opts: v6::DhcpOptions::new(),
        }));
        m.opts_mut().insert(DhcpOption::IANA(IANA {
            id: 1,
            t1: 5,
            t2: 8,
            opts: sub,
        }));
        let mut inner = Vec::new();
        m.encode(&mut Encoder::new(&mut inner)).unwrap();
        let mut buf = vec![13, 0];
        buf.extend_from_slice(&[0; 32]);
        buf.extend_from_slice(&9u16.to_be_bytes());
        buf.extend_from_slice(&(inner.len() as u16).to_be_bytes());
        buf.extend_from_slice(&inner);
        let r = parse_reply(&buf).expect("well formed");
        assert_eq!((r.msg_type, r.xid, r.client), (7, 0x010203, Some((5, 77))));
        assert_eq!(r.na, Some(u128::from(na)));
        assert_eq!(
            r.server_id.map(|(a, b)| &buf[a..b]),
            Some(&[0u8, 4, 1, 2][..])
        );
        for cut in 0..buf.len() {
            let _ = parse_reply(&buf[..cut]);
        }
    }
}
