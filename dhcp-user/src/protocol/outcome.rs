//! What handling one message produced: a [`Reply`] to send, or the
//! [`DropReason`] it was discarded for.
//!
//! Owns the outcome and drop-reason types every layer counts by; the core
//! and the data plane produce them, `stats` and the control socket count and
//! show them. Never touches a counter, a socket or the clock.

use std::net::Ipv6Addr;

use crate::wire::MessageType;

/// A reply the core wrote into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Bytes of DHCPv6 payload written at the start of `out`.
    pub len: usize,
    /// Where to send it: the ingress source (client or relay agent).
    pub to: Ipv6Addr,
    /// Destination UDP port: 546 to a client, 547 to a relay agent.
    pub port: u16,
    /// The outermost message type sent (Advertise, Reply or Relay-repl).
    pub sent: MessageType,
    /// The reply may only leave once every record in `changes` is on disk.
    pub needs_durable: bool,
}

/// The outcome of handling one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The message type received, when it could be read (innermost for relayed ones).
    pub received: Option<MessageType>,
    /// Whether it arrived inside Relay-forw.
    pub relayed: bool,
    /// The reply, or why there is none.
    pub result: Result<Reply, DropReason>,
    /// IAs of this message answered NoAddrsAvail / NoPrefixAvail because of a
    /// `[limits]` cap rather than a full pool.
    pub refused: Refusals,
}

impl Handled {
    /// A message that produced no reply.
    pub fn dropped(received: Option<MessageType>, relayed: bool, reason: DropReason) -> Handled {
        Handled {
            received,
            relayed,
            result: Err(reason),
            refused: Refusals::default(),
        }
    }
}

/// Why an IA got no lease although its pool may have one: a `[limits]` cap.
/// Counted apart from drops (stats `refused.*`,
/// `dhcp6d_refused_ias_total{reason}`), since the message was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The client (DUID) already holds `limits.bindings_per_client`.
    BindingsPerClient,
    /// The table holds `limits.max_bindings`.
    MaxBindings,
}

impl Refusal {
    /// Every refusal, in counter order.
    pub const ALL: [Refusal; 2] = [Refusal::BindingsPerClient, Refusal::MaxBindings];

    /// The stats key and metrics label: the `[limits]` key that refused.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::BindingsPerClient => "bindings_per_client",
            Refusal::MaxBindings => "max_bindings",
        }
    }

    /// The position in [`Refusal::ALL`] (the counter index).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// IAs refused in one message, by [`Refusal`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals([u8; Refusal::ALL.len()]);

impl Refusals {
    /// One more IA refused for `r` (saturating: a message holds few IAs).
    pub fn add(&mut self, r: Refusal) {
        let n = &mut self.0[r.index()];
        *n = n.saturating_add(1);
    }

    /// IAs refused for `r`.
    pub fn get(&self, r: Refusal) -> u8 {
        self.0[r.index()]
    }

    /// Whether nothing was refused.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }
}

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $name:ident = $label:literal, $contract:literal;)*) => {
        /// Why a received frame or message produced no reply. Each is counted
        /// apart (`stats`, `dhcp6d_dropped_messages_total{reason}`), so an
        /// operator can tell what to fix.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DropReason {
            $($(#[$doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: [DropReason; DropReason::COUNT] = [$(DropReason::$name,)*];
            /// How many reasons there are.
            pub const COUNT: usize = [$($label,)*].len();

            /// The snake_case name used as the stats key and the metrics label.
            pub fn label(self) -> &'static str {
                match self {
                    $(DropReason::$name => $label,)*
                }
            }

            /// Whether the reason has its own key in the base stats contract
            /// (CONTRACT.md); the others are summed into `other` there too.
            pub fn in_contract(self) -> bool {
                match self {
                    $(DropReason::$name => $contract,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// The bytes do not decode as a valid frame or DHCPv6 message.
    Malformed = "malformed", true;
    /// Carries another server's Server ID, or lacks ours where required (RFC 9915 §16).
    NotForUs = "not_for_us", true;
    /// A Client ID is required and missing (RFC 9915 §16).
    NoClientId = "no_client_id", true;
    /// The source is over `limits.messages_per_second_per_source` (its token
    /// bucket is empty); see [`limit`](crate::protocol::limit).
    RateLimited = "rate_limited", true;
    /// A Relay-forw from a source outside `limits.trusted_relays`.
    UntrustedRelay = "untrusted_relay", false;
    /// A client sent to a unicast address: RFC 9915 has no Server Unicast
    /// option, so clients only multicast (§18.2) and such a datagram is not accepted.
    ClientUnicast = "client_unicast", false;
    /// No configured subnet for the interface or the relay's link-address.
    NoSubnet = "no_subnet", false;
    /// A type a server does not answer (Advertise, Reply, Reconfigure, a
    /// Relay-repl, …), or a relay chain holding something other than Relay-forw.
    WrongMessageType = "wrong_message_type", false;
    /// A Solicit, Confirm or Rebind carrying a Server ID (RFC 9915 §16.2, §16.5, §16.7).
    UnexpectedServerId = "unexpected_server_id", false;
    /// An Information-request carrying an IA option (RFC 9915 §16.12).
    IaInInformationRequest = "ia_in_information_request", false;
    /// A Confirm with no address to confirm (RFC 9915 §18.3.3).
    NothingToConfirm = "nothing_to_confirm", false;
    /// More IA options than one message may change leases for.
    TooManyIas = "too_many_ias", false;
    /// The reply does not fit the buffer (or, relayed, the relay wrapping does not).
    ReplyTooLarge = "reply_too_large", false;
    /// The journal cannot take writes: a lease that is not on disk is never acknowledged.
    JournalUnavailable = "journal_unavailable", false;
    /// The queue of replies waiting for their journal sync is full.
    HoldQueueFull = "hold_queue_full", false;
    /// No IPv6 address of ours to send the reply from.
    NoSourceAddress = "no_source_address", false;
    /// The kernel or the TX ring did not take the reply.
    TransmitFailed = "transmit_failed", false;
    /// No free frame buffer to write the reply into.
    NoBuffer = "no_buffer", false;
    /// Arrived on an interface the server does not serve.
    NotOurInterface = "not_our_interface", false;
    /// A reply still waiting for its journal sync when the worker stopped.
    AbandonedAtShutdown = "abandoned_at_shutdown", false;
}

impl DropReason {
    /// The position of this reason in [`DropReason::ALL`] (the counter index).
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case_and_indices_follow_all() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(seen.insert(r.label()), "duplicate label {}", r.label());
            assert!(r
                .label()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        let contract: Vec<_> = DropReason::ALL
            .iter()
            .filter(|r| r.in_contract())
            .map(|r| r.label())
            .collect();
        assert_eq!(
            contract,
            ["malformed", "not_for_us", "no_client_id", "rate_limited"]
        );
    }
}
