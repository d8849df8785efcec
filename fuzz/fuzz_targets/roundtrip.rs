//! decode → encode → decode: an accepted message is written back byte for
//! byte (field by field, not copied) and decodes to an equal message.
#![no_main]

use dhcp6d::wire::AnyMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(first) = AnyMessage::decode(data) else {
        return;
    };
    let mut out = vec![0u8; data.len()];
    let n = first.encode_to(&mut out).expect("re-encoding fits in the input's size");
    assert_eq!(&out[..n], data, "re-encoding differs");
    let second = AnyMessage::decode(&out[..n]).expect("re-encoded message decodes");
    assert_eq!(first, second);
    // One byte short must be refused, never truncated.
    if n > 0 {
        assert!(first.encode_to(&mut out[..n - 1]).is_err());
    }
});
