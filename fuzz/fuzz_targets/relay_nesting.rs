//! Relay nesting: the first byte picks a depth (0..=40), the rest is the
//! innermost message. Wrapped in that many Relay-forw headers, the message
//! decodes iff the inner one does and depth <= HOP_COUNT_LIMIT; the chain and
//! the innermost message are found again.
#![no_main]

use std::net::Ipv6Addr;

use dhcp6d::wire::{AnyMessage, Encoder, MessageType, WireError, HOP_COUNT_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&d, inner)) = data.split_first() else {
        return;
    };
    let depth = usize::from(d % 41);
    let inner_ok = AnyMessage::decode(inner);
    let mut buf = vec![0u8; inner.len() + depth * 48];
    let mut enc = Encoder::new(&mut buf);
    let mut marks = Vec::new();
    for hop in 0..depth {
        let hop = u8::try_from(hop).unwrap();
        enc.relay_header(MessageType::RelayForw, hop, Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED)
            .unwrap();
        enc.interface_id(&[hop, 0xee]).unwrap();
        marks.push(enc.begin_relay_msg().unwrap());
    }
    enc.put_slice(inner).unwrap();
    while let Some(m) = marks.pop() {
        if enc.end_option(m).is_err() {
            return; // inner message too large to nest (option > 65535)
        }
    }
    let n = enc.finish().unwrap();
    let got = AnyMessage::decode(&buf[..n]);
    match (&inner_ok, depth) {
        (_, 0) => assert_eq!(got.is_ok(), inner_ok.is_ok()),
        (Ok(_), d) if d > HOP_COUNT_LIMIT => {
            assert_eq!(got, Err(WireError::RelayTooDeep { limit: HOP_COUNT_LIMIT }))
        }
        (Ok(inner_msg), d) => {
            // An inner relay message adds its own levels.
            let inner_levels = match inner_msg {
                AnyMessage::Relay(r) => r.chain().count(),
                AnyMessage::Message(_) => 0,
            };
            if d + inner_levels > HOP_COUNT_LIMIT {
                assert!(got.is_err());
                return;
            }
            let AnyMessage::Relay(r) = got.expect("valid nesting decodes") else {
                panic!("outer message is not a relay");
            };
            assert_eq!(r.chain().count(), d + inner_levels);
            let innermost = r.innermost().expect("innermost");
            let expected = match inner_msg {
                AnyMessage::Message(m) => *m,
                AnyMessage::Relay(ir) => ir.innermost().unwrap(),
            };
            assert_eq!(innermost, expected);
        }
        (Err(_), _) => assert!(got.is_err(), "invalid inner message accepted when nested"),
    }
});
