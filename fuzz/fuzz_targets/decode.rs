//! Any bytes: decoding returns Ok or a typed error, never panics, and every
//! accessor of an accepted message works (walks all options, all levels).
#![no_main]

use dhcp6d::wire::AnyMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = AnyMessage::decode(data) {
        let opts = msg.options();
        // Touch the typed views: they must not fail on a validated message.
        let typed = opts.iter().count();
        assert_eq!(typed, opts.raw().count());
        let _ = (opts.client_id(), opts.server_id(), opts.oro(), opts.status_code());
        for ia in opts.ia_nas() {
            assert_eq!(ia.options.iter().count(), ia.options.raw().count());
        }
        for pd in opts.ia_pds() {
            let _ = pd.prefixes().count();
        }
        if let Some(list) = opts.domain_list() {
            for name in list.iter() {
                let _ = name.to_string();
            }
        }
        if let AnyMessage::Relay(r) = msg {
            assert!(r.innermost().is_some());
            assert!(r.chain().count() <= dhcp6d::wire::HOP_COUNT_LIMIT);
        }
    }
});
