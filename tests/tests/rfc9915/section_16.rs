//! RFC 9915 §16 (Message Validation): what the server MUST discard, and that
//! a discarded message changes nothing.
use crate::core_harness::*;

use dhcp6d::protocol::DropReason;
use dhcp6d::protocol::Ingress;
use dhcp6d::wire::{code, MessageType};

fn assert_dropped(out: &Outcome, reason: DropReason) {
    assert_eq!(out.handled.result, Err(reason));
    assert!(out.changes.is_empty(), "a dropped message changes nothing");
}

#[test]
fn solicit_without_client_id_is_dropped() {
    // §16.2: "Servers MUST discard any Solicit messages that do not include a Client
    // Identifier option or that do include a Server Identifier option."
    let s = server(BASE);
    let msg = build(MessageType::Solicit, 1, |e| ia_na(e, 1, &[]));
    assert_dropped(&direct(&s, &msg, T0), DropReason::NoClientId);
    let msg = build(MessageType::Solicit, 1, |e| {
        e.client_id(&client_duid(1))?;
        e.server_id(SERVER_DUID)?;
        ia_na(e, 1, &[])
    });
    assert_dropped(&direct(&s, &msg, T0), DropReason::UnexpectedServerId);
}

#[test]
fn request_renew_release_decline_need_our_server_id() {
    // §16.4, §16.6, §16.8, §16.9: discard if the message "does not include a Server Identifier
    // option", or "the contents of the Server Identifier option do not match the server's DUID",
    // or it "does not include a Client Identifier option".
    let s = server(BASE);
    for t in [
        MessageType::Request,
        MessageType::Renew,
        MessageType::Release,
        MessageType::Decline,
    ] {
        let none = build(t, 1, |e| {
            e.client_id(&client_duid(1))?;
            ia_na(e, 1, &[])
        });
        assert_dropped(&direct(&s, &none, T0), DropReason::NotForUs);
        let other = build(t, 1, |e| {
            e.client_id(&client_duid(1))?;
            e.server_id(OTHER_SERVER_DUID)?;
            ia_na(e, 1, &[])
        });
        let out = direct(&s, &other, T0);
        assert_dropped(&out, DropReason::NotForUs);
        let no_client = build(t, 1, |e| {
            e.server_id(SERVER_DUID)?;
            ia_na(e, 1, &[])
        });
        assert_dropped(&direct(&s, &no_client, T0), DropReason::NoClientId);
    }
    assert_eq!(s.lease_counts(), (0, 0));
}

#[test]
fn rebind_and_confirm_with_a_server_id_are_dropped() {
    // §16.5, §16.7: discard Confirm/Rebind that include a Server Identifier option or lack a Client ID.
    let s = server(BASE);
    for t in [MessageType::Rebind, MessageType::Confirm] {
        let msg = build(t, 1, |e| {
            e.client_id(&client_duid(1))?;
            e.server_id(SERVER_DUID)?;
            ia_na(e, 1, &["2001:db8:1:1::5".parse().unwrap()])
        });
        assert_dropped(&direct(&s, &msg, T0), DropReason::UnexpectedServerId);
        let msg = build(t, 1, |e| ia_na(e, 1, &["2001:db8:1:1::5".parse().unwrap()]));
        assert_dropped(&direct(&s, &msg, T0), DropReason::NoClientId);
    }
}

#[test]
fn information_request_rules() {
    // §16.12: discard when "the message includes a Server Identifier option, and the DUID in
    // the option does not match the server's DUID" or "the message includes an IA option".
    let s = server(BASE);
    let other = build(MessageType::InformationRequest, 1, |e| {
        e.server_id(OTHER_SERVER_DUID)
    });
    assert_dropped(&direct(&s, &other, T0), DropReason::NotForUs);
    let with_ia = build(MessageType::InformationRequest, 1, |e| ia_na(e, 1, &[]));
    assert_dropped(
        &direct(&s, &with_ia, T0),
        DropReason::IaInInformationRequest,
    );
    let with_ta = build(MessageType::InformationRequest, 1, |e| {
        let m = e.begin_option(code::IA_TA)?;
        e.put_u32(1)?;
        e.end_option(m)
    });
    assert_dropped(
        &direct(&s, &with_ta, T0),
        DropReason::IaInInformationRequest,
    );
    // Ours, or none, is answered; a Client ID is optional.
    let ours = build(MessageType::InformationRequest, 1, |e| {
        e.server_id(SERVER_DUID)
    });
    assert!(direct(&s, &ours, T0).handled.result.is_ok());
    let bare = build(MessageType::InformationRequest, 1, |_| Ok(()));
    assert!(direct(&s, &bare, T0).handled.result.is_ok());
}

#[test]
fn server_messages_and_garbage_are_dropped() {
    // §16.1 / §18.3: a server answers only client messages; bad bytes are counted as malformed.
    let s = server(BASE);
    for t in [
        MessageType::Advertise,
        MessageType::Reply,
        MessageType::Reconfigure,
    ] {
        let msg = build(t, 1, |e| {
            e.client_id(&client_duid(1))?;
            e.server_id(SERVER_DUID)
        });
        assert_dropped(&direct(&s, &msg, T0), DropReason::WrongMessageType);
    }
    let out = direct(&s, &[1, 0, 0], T0);
    assert_eq!(out.handled.received, None);
    assert_dropped(&out, DropReason::Malformed);
    // An option overrunning the message.
    let out = direct(&s, &[1, 0, 0, 1, 0, 1, 0, 50, 0, 1], T0);
    assert_dropped(&out, DropReason::Malformed);
}

#[test]
fn unicast_from_a_client_is_not_accepted() {
    // RFC 9915 obsoletes the Server Unicast option; clients send to All_DHCP_Relay_Agents_and_Servers.
    let s = server(BASE);
    let ingress = Ingress {
        dst_multicast: false,
        ..multicast_from_client()
    };
    let out = send(&s, &ingress, &request(1, SERVER_DUID, None), T0);
    assert_eq!(out.handled.received, Some(MessageType::Request));
    assert_dropped(&out, DropReason::ClientUnicast);
    assert_eq!(s.lease_counts(), (0, 0));
}

#[test]
fn too_many_ias_are_refused_before_any_state_changes() {
    let s = server(BASE);
    let msg = build(MessageType::Request, 1, |e| {
        e.client_id(&client_duid(1))?;
        e.server_id(SERVER_DUID)?;
        (0..17).try_for_each(|i| ia_na(e, i, &[]))
    });
    assert_dropped(&direct(&s, &msg, T0), DropReason::TooManyIas);
    assert_eq!(s.lease_counts(), (0, 0));
}
