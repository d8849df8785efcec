//! RFC 9915 §21.23 (Information Refresh Time), §21.24 (SOL_MAX_RT) and
//! §21.25 (INF_MAX_RT): the values come from `[options]`, a subnet may
//! override them, and they are sent when the client asks for them.
use crate::core_harness::*;

use dhcp6d::wire::{code, MessageType};

/// BASE with `[options]` set, and subnet[0] overriding SOL_MAX_RT only.
fn configured() -> String {
    BASE.replace(
        "[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\n",
        "[options]\nsol_max_rt = 600\ninf_max_rt = 7200\ninformation_refresh_time = 3600\n\
         [[subnet]]\nprefix = \"2001:db8:1:1::/64\"\nsol_max_rt = 1200\n",
    )
}

fn solicit_asking(n: u32, oro: &[u16]) -> Vec<u8> {
    build(MessageType::Solicit, n, |e| {
        e.client_id(&client_duid(n))?;
        e.oro(oro)?;
        ia_na(e, 1, &[])
    })
}

fn information_request_asking(n: u32, oro: &[u16]) -> Vec<u8> {
    build(MessageType::InformationRequest, n, |e| {
        e.client_id(&client_duid(n))?;
        e.oro(oro)
    })
}

#[test]
fn the_configuration_carries_the_values() {
    let c = config(&configured());
    assert_eq!(c.options.sol_max_rt, 600);
    assert_eq!(c.subnets[0].option_values(&c.options).sol_max_rt, 1200);
    assert_eq!(c.subnets[1].option_values(&c.options).sol_max_rt, 600);
    assert_eq!(c.subnets[0].option_values(&c.options).inf_max_rt, 7200);
}

#[test]
fn section_21_24_sol_max_rt_in_advertise_and_reply_when_requested() {
    // §21.24: "The DHCP server MAY include the SOL_MAX_RT option in any response
    // it sends to a client that has included the SOL_MAX_RT option code in an
    // Option Request option." The subnet's override wins over [options].
    let s = server(&configured());
    let adv = direct(&s, &solicit_asking(3, &[code::SOL_MAX_RT]), T0);
    assert_eq!(adv.message().msg_type, MessageType::Advertise);
    assert_eq!(adv.message().options.sol_max_rt(), Some(1200));
    let addr = first_addr(&adv.message()).unwrap().0;

    let req = build(MessageType::Request, 3, |e| {
        e.client_id(&client_duid(3))?;
        e.server_id(SERVER_DUID)?;
        e.oro(&[code::SOL_MAX_RT])?;
        ia_na(e, 1, &[addr])
    });
    let reply = direct(&s, &req, T0);
    assert_eq!(reply.message().msg_type, MessageType::Reply);
    assert_eq!(reply.message().options.sol_max_rt(), Some(1200));
}

#[test]
fn section_21_24_no_sol_max_rt_unless_requested() {
    // §21.24 ties the option to "a client that has included the SOL_MAX_RT option code".
    let s = server(&configured());
    let adv = direct(&s, &solicit_asking(4, &[code::DNS_SERVERS]), T0);
    assert_eq!(adv.message().options.sol_max_rt(), None);
    assert_eq!(adv.message().options.inf_max_rt(), None);
}

#[test]
fn section_21_25_inf_max_rt_in_information_request_reply() {
    // §21.25: "A DHCP client MUST include the INF_MAX_RT option code in any Option
    // Request option ... it sends in an Information-request message." and "The DHCP
    // server MAY include the INF_MAX_RT option in any response it sends to a client
    // that has included the INF_MAX_RT option code in an Option Request option."
    let s = server(&configured());
    let out = direct(&s, &information_request_asking(5, &[code::INF_MAX_RT]), T0);
    let m = out.message();
    assert_eq!(m.msg_type, MessageType::Reply);
    assert_eq!(m.options.inf_max_rt(), Some(7200));
    assert_eq!(m.options.sol_max_rt(), None, "not requested");
}

#[test]
fn section_21_23_information_refresh_time_from_the_configuration() {
    // §21.23: "A server sending a Reply to an Information-request message SHOULD
    // include this option if it is requested in the Option Request option of the
    // Information-request." The value is the configured one.
    let s = server(&configured());
    let asked = direct(
        &s,
        &information_request_asking(6, &[code::INFORMATION_REFRESH_TIME]),
        T0,
    );
    assert_eq!(
        asked.message().options.information_refresh_time(),
        Some(3600)
    );
    // "This option MUST only appear in the top-level options area of Reply
    // messages" (in response to Information-request): never in an Advertise.
    let adv = direct(
        &s,
        &solicit_asking(6, &[code::INFORMATION_REFRESH_TIME]),
        T0,
    );
    assert_eq!(adv.message().options.information_refresh_time(), None);
}

#[test]
fn defaults_are_the_rfc_defaults() {
    // §7.6: SOL_MAX_RT 3600 s, INF_MAX_RT 3600 s, IRT_DEFAULT 86400 s.
    let s = server(BASE);
    let out = direct(
        &s,
        &information_request_asking(
            7,
            &[
                code::SOL_MAX_RT,
                code::INF_MAX_RT,
                code::INFORMATION_REFRESH_TIME,
            ],
        ),
        T0,
    );
    let m = out.message();
    assert_eq!(m.options.sol_max_rt(), Some(3600));
    assert_eq!(m.options.inf_max_rt(), Some(3600));
    assert_eq!(m.options.information_refresh_time(), Some(86_400));
}
