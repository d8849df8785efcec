//! The fast per-option checks of `validate_options` against the general path
//! (every option through `DhcpOption::parse`): same verdict, same error.

use proptest::prelude::*;

use super::{code, validate_options, validate_options_general, Depth};

/// Option codes the fast path handles, plus neighbours that take the general path.
const CODES: [u16; 14] = [
    code::CLIENTID,
    code::SERVERID,
    code::ELAPSED_TIME,
    code::RAPID_COMMIT,
    code::ORO,
    code::IA_NA,
    code::IA_PD,
    code::IAADDR,
    code::IAPREFIX,
    code::STATUS_CODE,
    code::IA_TA,
    code::PREFERENCE,
    code::DNS_SERVERS,
    999,
];

/// One option (code from CODES) with `data`, possibly nesting `inner` after a
/// fixed part of the right size for IA-like options, so nested areas are reached.
fn option(code_index: usize, data: &[u8], inner: &[u8]) -> Vec<u8> {
    let code = CODES[code_index % CODES.len()];
    let mut body = data.to_vec();
    if !inner.is_empty() {
        let fixed = match code {
            code::IA_NA | code::IA_PD => 12,
            code::IAADDR => 24,
            code::IAPREFIX => 25,
            _ => 0,
        };
        body.resize(fixed, 0);
        if code == code::IAPREFIX {
            body[8] = data.first().copied().unwrap_or(64) % 140;
        }
        body.extend_from_slice(inner);
    }
    let mut o = code.to_be_bytes().to_vec();
    o.extend((body.len() as u16).to_be_bytes());
    o.extend(body);
    o
}

fn area() -> impl Strategy<Value = Vec<u8>> {
    let leaf = (
        0usize..CODES.len(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(c, d)| option(c, &d, &[]));
    let nested = (
        0usize..CODES.len(),
        proptest::collection::vec(any::<u8>(), 0..30),
        proptest::collection::vec(leaf.clone(), 0..3),
    )
        .prop_map(|(c, d, inner)| option(c, &d, &inner.concat()));
    proptest::collection::vec(prop_oneof![leaf, nested.clone(), nested], 0..6)
        .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// RFC 9915 §21 option formats: both paths accept and refuse the same
    /// option areas, with the same error (including truncated framing).
    #[test]
    fn fast_path_agrees_with_general_path(bytes in area(), cut in any::<prop::sample::Index>()) {
        let fast = validate_options(&bytes, Depth::default());
        let general = validate_options_general(&bytes, Depth::default());
        prop_assert_eq!(&fast, &general);
        let cut = &bytes[..cut.index(bytes.len() + 1)];
        prop_assert_eq!(
            validate_options(cut, Depth::default()),
            validate_options_general(cut, Depth::default())
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// RFC 9915 §8: a client message is msg-type, transaction-id, options.
    /// `decode_visit` decodes exactly like `decode` and, for a message it
    /// accepts, hands over its top-level options in order.
    #[test]
    fn decode_visit_sees_each_top_level_option_once(bytes in area(), msg_type in 1u8..14) {
        let mut msg = vec![msg_type, 0, 0, 7];
        msg.extend_from_slice(&bytes);
        let mut seen = Vec::new();
        let visited = crate::wire::AnyMessage::decode_visit(&msg, |o| seen.push(o));
        prop_assert_eq!(visited, crate::wire::AnyMessage::decode(&msg));
        match visited {
            Ok(crate::wire::AnyMessage::Message(m)) => {
                prop_assert_eq!(seen, m.options.raw().collect::<Vec<_>>());
            }
            // The relay layout is not visited.
            Ok(crate::wire::AnyMessage::Relay(_)) => prop_assert!(seen.is_empty()),
            Err(_) => {}
        }
    }
}
