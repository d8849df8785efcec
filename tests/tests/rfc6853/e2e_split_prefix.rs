//! RFC 6853 §6.1 end to end: real `dhcp6d` servers configured by
//! `dhcp6d plan --model split-prefix`, real clients (ISC dhclient, perfdhcp),
//! dhcpcd, a real relay (ISC dhcrelay), checked on the wire with tshark.

use crate::e2e::{dhcpcd, failover, io, paths, preference, Model};
use anyhow::Result;

const MODEL: Model = Model::Split;

#[test]
fn preference_255_server_is_chosen_at_once() -> Result<()> {
    preference::preference_255_wins_at_once(MODEL, &io())
}

#[test]
fn without_255_client_waits_and_picks_highest_preference() -> Result<()> {
    preference::highest_preference_wins_after_waiting(MODEL, &io())
}

#[test]
fn perfdhcp_requests_answered_only_by_the_named_server() -> Result<()> {
    preference::perfdhcp_each_request_answered_once(MODEL, &io())
}

#[test]
fn prefix_delegation_from_the_preferred_servers_pool() -> Result<()> {
    preference::prefix_delegation_from_preferred_server(MODEL, &io())
}

#[test]
fn prefix_delegation_to_dhcpcd_from_the_granting_servers_pool() -> Result<()> {
    dhcpcd::prefix_delegation_to_dhcpcd(MODEL, &io())
}

#[test]
fn dhcpcd_restart_rebinds_its_prefix_instead_of_confirm() -> Result<()> {
    dhcpcd::restart_rebinds_the_prefix(MODEL, &io())
}

#[test]
fn relay_forwards_to_both_servers() -> Result<()> {
    paths::relayed_clients_reach_both_servers(MODEL, 1, &io())
}

#[test]
fn nested_relays_forward_to_both_servers() -> Result<()> {
    paths::relayed_clients_reach_both_servers(MODEL, 2, &io())
}

#[test]
fn confirm_success_on_same_link_not_on_link_after_moving() -> Result<()> {
    paths::confirm_success_and_not_on_link(MODEL, &io())
}

#[test]
fn failover_clients_recover_from_the_survivor() -> Result<()> {
    failover::kill_preferred_server(MODEL, &io()).map(drop)
}

/// RFC 6853 §6.1: the survivor answers the Rebind for the failed server's
/// address with lifetimes 0 and, configured by `plan` (rapid_commit), a new
/// address from its own pool in the same Reply (RFC 9915 §18.3.5).
#[test]
fn failover_survivor_answers_the_rebind_with_a_new_address() -> Result<()> {
    failover::survivor_answers_rebind(Model::Split, &io())
}

/// The same selection with the XDP + AF_XDP data plane (whatever
/// `DHCP6D_TEST_IO` says for the rest of the file).
#[test]
fn preference_255_server_is_chosen_at_once_xdp() -> Result<()> {
    preference::preference_255_wins_at_once(MODEL, "xdp")
}

/// Relayed traffic (unicast to the server's address) through the XDP path.
#[test]
fn relay_forwards_to_both_servers_xdp() -> Result<()> {
    paths::relayed_clients_reach_both_servers(MODEL, 1, "xdp")
}

/// Issue 13 item 2, hand-written configs without Rapid Commit: the client
/// moves to the survivor on its Rebind (REBIND6), not after its old lease
/// expired.
#[test]
fn failover_hand_written_pair_moves_the_client_on_its_rebind() -> Result<()> {
    failover::split_pair_moves_on_rebind(&io(), true)
}

/// The same with `rebind_creates_bindings = false`: the survivor grants
/// nothing on Rebind, and the client waits out its valid lifetime and
/// Solicits (the slow path the first test rules out).
#[test]
fn failover_without_rebind_bindings_waits_for_expiry() -> Result<()> {
    failover::split_pair_moves_on_rebind(&io(), false)
}
