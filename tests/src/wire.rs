//! Decoding captured DHCPv6 payloads, independently of dhcp6d's own codec:
//! relay layers are unwrapped here (RFC 9915 §9), the innermost message is
//! decoded by `dhcproto`.

use std::net::Ipv6Addr;

use dhcproto::v6::{DhcpOption, Message, MessageType, Status};
use dhcproto::Decodable;

use crate::{Error, Result};

/// Relay-forward and Relay-reply (RFC 9915 §7.3).
const RELAY_FORW: u8 = 12;
const RELAY_REPL: u8 = 13;
/// Relay Message option (RFC 9915 §21.10).
const OPTION_RELAY_MSG: u16 = 9;
/// msg-type, hop-count, link-address, peer-address (RFC 9915 §9).
const RELAY_HEADER: usize = 34;

/// One relay layer of a captured message, outermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayLayer {
    /// 12 (Relay-forward) or 13 (Relay-reply).
    pub msg_type: u8,
    /// The hop-count field.
    pub hop_count: u8,
    /// The link-address field.
    pub link_address: Ipv6Addr,
    /// The peer-address field.
    pub peer_address: Ipv6Addr,
}

/// A DHCPv6 message with its relay envelopes.
#[derive(Clone, Debug)]
pub struct Dhcpv6 {
    /// Relay layers, outermost first (empty for a direct message).
    pub relays: Vec<RelayLayer>,
    /// The client/server message inside.
    pub message: Message,
}

impl Dhcpv6 {
    /// Decodes a UDP payload.
    pub fn decode(payload: &[u8]) -> Result<Dhcpv6> {
        let mut relays = Vec::new();
        let mut bytes = payload;
        while let Some(&kind) = bytes.first() {
            if kind != RELAY_FORW && kind != RELAY_REPL {
                break;
            }
            if bytes.len() < RELAY_HEADER {
                return Err(parse_err("relay header shorter than 34 bytes"));
            }
            let addr = |at: usize| -> Ipv6Addr {
                let mut a = [0u8; 16];
                a.copy_from_slice(&bytes[at..at + 16]);
                Ipv6Addr::from(a)
            };
            relays.push(RelayLayer {
                msg_type: kind,
                hop_count: bytes[1],
                link_address: addr(2),
                peer_address: addr(18),
            });
            bytes = relay_message_option(&bytes[RELAY_HEADER..])
                .ok_or_else(|| parse_err("relay message without a Relay Message option"))?;
        }
        let message = Message::decode(&mut dhcproto::Decoder::new(bytes))
            .map_err(|e| parse_err(&e.to_string()))?;
        Ok(Dhcpv6 { relays, message })
    }

    /// The message type of the innermost message.
    pub fn msg_type(&self) -> MessageType {
        self.message.msg_type()
    }

    /// The transaction id.
    pub fn xid(&self) -> u32 {
        self.message.xid_num()
    }

    /// The Server Identifier option, as lowercase hex.
    pub fn server_id(&self) -> Option<String> {
        self.message.opts().iter().find_map(|o| match o {
            DhcpOption::ServerId(d) => Some(hex::encode(d)),
            _ => None,
        })
    }

    /// The Client Identifier option, as lowercase hex.
    pub fn client_id(&self) -> Option<String> {
        self.message.opts().iter().find_map(|o| match o {
            DhcpOption::ClientId(d) => Some(hex::encode(d)),
            _ => None,
        })
    }

    /// The Preference option value, if present.
    pub fn preference(&self) -> Option<u8> {
        self.message.opts().iter().find_map(|o| match o {
            DhcpOption::Preference(p) => Some(*p),
            _ => None,
        })
    }

    /// The top-level Status Code, if present.
    pub fn status(&self) -> Option<Status> {
        self.message.opts().iter().find_map(|o| match o {
            DhcpOption::StatusCode(s) => Some(s.status),
            _ => None,
        })
    }

    /// Every IA Address in every IA_NA: (address, preferred, valid).
    pub fn addresses(&self) -> Vec<(Ipv6Addr, u32, u32)> {
        let mut out = Vec::new();
        for o in self.message.opts().iter() {
            if let DhcpOption::IANA(ia) = o {
                for inner in ia.opts.iter() {
                    if let DhcpOption::IAAddr(a) = inner {
                        out.push((a.addr, a.preferred_life, a.valid_life));
                    }
                }
            }
        }
        out
    }

    /// Every IA Prefix in every IA_PD: (prefix, length, preferred, valid).
    pub fn prefixes(&self) -> Vec<(Ipv6Addr, u8, u32, u32)> {
        let mut out = Vec::new();
        for o in self.message.opts().iter() {
            if let DhcpOption::IAPD(ia) = o {
                for inner in ia.opts.iter() {
                    if let DhcpOption::IAPrefix(p) = inner {
                        out.push((
                            p.prefix_ip,
                            p.prefix_len,
                            p.preferred_lifetime,
                            p.valid_lifetime,
                        ));
                    }
                }
            }
        }
        out
    }
}

fn parse_err(detail: &str) -> Error {
    Error::Parse {
        what: "captured DHCPv6 message".into(),
        detail: detail.to_owned(),
    }
}

/// The value of the first Relay Message option in an option area.
fn relay_message_option(mut opts: &[u8]) -> Option<&[u8]> {
    while opts.len() >= 4 {
        let code = u16::from_be_bytes([opts[0], opts[1]]);
        let len = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
        let value = opts.get(4..4 + len)?;
        if code == OPTION_RELAY_MSG {
            return Some(value);
        }
        opts = &opts[4 + len..];
    }
    None
}

/// Normalises a DUID written by dhclient (`0:1:0:1:2a:...`) or as plain hex
/// to lowercase hex without separators, so both can be compared.
pub fn duid_hex(text: &str) -> String {
    let text = text.trim().trim_matches('"');
    if text.contains(':') {
        text.split(':')
            .map(|b| format!("{:0>2}", b.to_ascii_lowercase()))
            .collect()
    } else {
        text.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhclient_duid_text_normalises_to_plain_hex() {
        assert_eq!(duid_hex("0:2:0:0:9:bf:a:b:c"), "0002000009bf0a0b0c");
        assert_eq!(duid_hex("0002000009BF0A0B0C"), "0002000009bf0a0b0c");
    }

    #[test]
    fn unwraps_a_relay_forward_to_the_client_message() {
        // Relay-forward, hop 0, link 2001:db8::1, peer fe80::1, Relay Message
        // holding a Solicit (type 1, xid 0x010203) with no options.
        let mut frame = vec![12u8, 0];
        frame.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        frame.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        frame.extend_from_slice(&[0, 9, 0, 4, 1, 1, 2, 3]);
        let m = Dhcpv6::decode(&frame).unwrap();
        assert_eq!(m.relays.len(), 1);
        assert_eq!(
            m.relays[0].link_address,
            "2001:db8::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(m.msg_type(), MessageType::Solicit);
        assert_eq!(m.xid(), 0x010203);
    }

    #[test]
    fn truncated_relay_is_an_error_not_a_panic() {
        assert!(Dhcpv6::decode(&[12, 0, 1]).is_err());
        let mut frame = vec![13u8; 34];
        frame.extend_from_slice(&[0, 9, 0, 40, 1]);
        assert!(Dhcpv6::decode(&frame).is_err());
    }
}
