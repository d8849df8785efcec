//! The RFC 9915 server: decode, check, answer, and say what to persist.
//!
//! Owns the message rules (§16 validation, §18.3 server behaviour, §19 relay
//! wrapping) and the RFC 6853 failover behaviour. Never touches sockets, the
//! clock or the disk: `now` and the ingress facts come in, reply bytes and
//! [`LeaseChanges`] go out. Shared by all workers through `Arc<Server>`; all
//! mutable state is in the sharded [`Bindings`], which live once for the
//! life of the process; the [`Policy`] beside them is immutable and
//! swapped whole on a reload.

mod ia;
mod respond;
mod scan;
mod setup;

use std::net::Ipv6Addr;
use std::sync::{Arc, Mutex};

use arc_swap::cache::Cache;
use arc_swap::ArcSwap;
use ipnet::Ipv6Net;

pub use setup::{CoreError, Pool, PoolKind, Subnet};

use self::scan::Scan;
use super::alloc::prefix_mask;
use super::alloc::AllocKey;
use super::bindings::{Bindings, PoolSpan, PoolSpans};
use super::lease::{LeaseChanges, LeaseKind, LeaseRecord};
use super::limit::{RateLimiter, Source};
use super::settings::{Model, Settings};
use super::DropReason;
use super::{Handled, Handler, Ingress, Reply, Timestamp, WorkerLocal};
use crate::wire::{
    AnyMessage, Duid, Encoder, MessageType, OptionMark, CLIENT_PORT, HOP_COUNT_LIMIT, SERVER_PORT,
};

/// What the operator configured, ready for the hot path: identity,
/// preference, subnets, pools with their allocation hash state, options
/// pre-encoded. Immutable; a reload builds a new one and
/// [`Server::install`]s it.
#[derive(Debug)]
pub struct Policy {
    duid: Box<[u8]>,
    preference: u8,
    /// Answer Rapid Commit Solicits with a committed Reply (RFC 9915 §18.3.1).
    rapid_commit: bool,
    /// Create bindings on Rebind (RFC 9915 §18.3.5).
    rebind_creates_bindings: bool,
    model: Model,
    /// `limits.trusted_relays`; `None` takes Relay-forw from anyone.
    trusted_relays: Option<Vec<Ipv6Net>>,
    /// `limits.bindings_per_client`.
    bindings_per_client: u32,
    /// `limits.max_bindings`.
    max_bindings: Option<u64>,
    /// `limits.messages_per_second_per_source`; `None`: no rate check.
    rate_per_source: Option<u32>,
    key: AllocKey,
    subnets: Vec<Subnet>,
    pools: Vec<Pool>,
    /// The pools as address spans, for the binding store's pool counters.
    spans: Arc<PoolSpans>,
}

impl Policy {
    /// Build the policy from the settings, the server's DUID and the
    /// interfaces it serves (name, ifindex).
    pub fn new(
        settings: &Settings,
        server_duid: Vec<u8>,
        interfaces: &[(String, u32)],
    ) -> Result<Policy, CoreError> {
        Duid::parse(&server_duid).map_err(CoreError::BadServerDuid)?;
        let key = match settings.allocation_key {
            Some(k) => AllocKey(k),
            None => AllocKey::from_server_duid(&server_duid),
        };
        let (subnets, pools) = setup::build(settings, interfaces, &key)?;
        let spans = PoolSpans::new(
            pools
                .iter()
                .map(|p| match p.kind {
                    PoolKind::Na(n) => PoolSpan {
                        kind: LeaseKind::Na,
                        first: n.first,
                        last: n.last,
                        len: 128,
                    },
                    PoolKind::Pd(d) => PoolSpan {
                        kind: LeaseKind::Pd,
                        first: d.prefix & prefix_mask(d.prefix_len),
                        last: d.prefix | !prefix_mask(d.prefix_len),
                        len: d.delegated_len,
                    },
                })
                .collect(),
        );
        Ok(Policy {
            preference: settings.preference,
            rapid_commit: settings.rapid_commit,
            rebind_creates_bindings: settings.rebind_creates_bindings,
            model: settings.model,
            trusted_relays: settings.trusted_relays.clone(),
            bindings_per_client: settings.bindings_per_client,
            max_bindings: settings.max_bindings,
            rate_per_source: settings.messages_per_second_per_source,
            duid: server_duid.into(),
            key,
            subnets,
            pools,
            spans,
        })
    }

    /// The server DUID (sent in every Server Identifier option).
    pub fn server_duid(&self) -> &[u8] {
        &self.duid
    }

    /// The allocation key in use (configured, or derived from the server DUID).
    pub fn allocation_key(&self) -> AllocKey {
        self.key
    }

    /// The RFC 6853 model from the configuration.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The Preference option value.
    pub fn preference(&self) -> u8 {
        self.preference
    }

    /// `limits.max_bindings`, if set.
    pub fn max_bindings(&self) -> Option<u64> {
        self.max_bindings
    }
}

/// The protocol core: the policy in force and the live bindings.
/// `Send + Sync`: share it with `Arc`.
///
/// The bindings live once, for the life of the process; a reload swaps only
/// the [`Policy`], behind one atomic pointer. Each message loads the policy
/// once and is answered wholly under it.
#[derive(Debug)]
pub struct Server {
    policy: Arc<ArcSwap<Policy>>,
    bindings: Bindings,
    /// The server DUID, fixed for the life of the process (it names the
    /// journal's server and is restart-only in the configuration).
    duid: Box<[u8]>,
    /// Serialises [`Server::install`].
    installing: Mutex<()>,
    /// Key of every worker's rate-limit table, derived from the index key
    /// (random per process in `serve`).
    limiter_key: [u8; 16],
}

/// Usage of one pool, for `stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// The pool as written in the config (CIDR, range, or prefix/delegated length).
    pub pool: String,
    /// Addresses (IA_NA) or prefixes (IA_PD).
    pub kind: LeaseKind,
    /// How many can be handed out (reserved anycast addresses excluded).
    pub capacity: u128,
    /// Bindings and quarantined addresses in it ([`Server::pool_usage`]
    /// counts those not yet swept; [`Server::usage_at`] does not).
    pub used: u64,
}

/// One message's view: the policy it is answered under and the bindings.
pub(crate) struct Active<'a> {
    policy: &'a Policy,
    bindings: &'a Bindings,
    /// Allocation candidates this message may still examine
    /// ([`alloc::MESSAGE_PROBE_BUDGET`](crate::protocol::alloc::MESSAGE_PROBE_BUDGET)).
    probes: std::cell::Cell<u32>,
    /// New bindings this message offered (a Solicit commits nothing, so the
    /// store's counts do not see them): they count against the limits too.
    offered: std::cell::Cell<u32>,
    /// IAs refused by a `[limits]` cap, for [`Handled::refused`].
    refused: std::cell::Cell<super::Refusals>,
    /// The per-source rate check, asked once before the message is answered.
    gate: std::cell::RefCell<Gate<'a>>,
}

impl Server {
    /// Build the core from the settings, the server's DUID and the
    /// interfaces it serves (name, ifindex), with no bindings. Its binding
    /// index is keyed from the allocation key, so the same inputs give the
    /// same table layout (tests, tools); `serve` uses
    /// [`Server::with_index_key`] and a key of its own.
    pub fn new(
        settings: &Settings,
        server_duid: Vec<u8>,
        interfaces: &[(String, u32)],
    ) -> Result<Server, CoreError> {
        Ok(Server::with_policy(Policy::new(
            settings,
            server_duid,
            interfaces,
        )?))
    }

    /// [`Server::new`] with the binding index keyed by `index_key`: a
    /// random key per process, which clients cannot learn. The allocation
    /// key is not secret from them in every deployment (identical-prefix
    /// servers share it, `plan` can derive it from public inputs), and with
    /// it crafted DUIDs could be aimed at one probe chain of the index
    /// (issue 13 item 6). The allocation function itself keeps the
    /// allocation key: it is specified, the index is internal.
    pub fn with_index_key(
        settings: &Settings,
        server_duid: Vec<u8>,
        interfaces: &[(String, u32)],
        index_key: [u8; 16],
    ) -> Result<Server, CoreError> {
        Ok(Server::with_policy_keyed(
            Policy::new(settings, server_duid, interfaces)?,
            index_key,
        ))
    }

    /// The core under `policy`, with no bindings; the index keyed from the
    /// allocation key (see [`Server::new`]).
    pub fn with_policy(policy: Policy) -> Server {
        let key = policy.key.0;
        Server::with_policy_keyed(policy, key)
    }

    /// The core under `policy`, with no bindings, the index keyed by `index_key`.
    pub fn with_policy_keyed(policy: Policy, index_key: [u8; 16]) -> Server {
        Server {
            // The shard and index hashes only spread load; they are internal
            // and never change (the bindings never move), never persisted.
            bindings: Bindings::new(policy.spans.clone(), index_key),
            duid: policy.duid.clone(),
            policy: Arc::new(ArcSwap::from_pointee(policy)),
            installing: Mutex::new(()),
            limiter_key: RateLimiter::derive_key(&index_key),
        }
    }

    /// Make `policy` the one every message from now on is answered under
    /// (SIGHUP). The bindings stay where they are: they are re-counted
    /// against the new pools, then the policy pointer is swapped. A message
    /// already being answered under the old policy finishes under it; what
    /// it commits lands in the same bindings. No sleep, no copy.
    ///
    /// The server DUID must not change (it is restart-only); a policy with
    /// another DUID is refused.
    pub fn install(&self, policy: Policy) -> Result<(), CoreError> {
        if policy.duid != self.duid {
            return Err(CoreError::DuidChanged);
        }
        let _one = self.installing.lock().unwrap_or_else(|p| p.into_inner());
        self.bindings.adopt(policy.spans.clone());
        self.policy.store(Arc::new(policy));
        Ok(())
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// The server DUID (sent in every Server Identifier option).
    pub fn server_duid(&self) -> &[u8] {
        &self.duid
    }

    /// The allocation key in use (configured, or derived from the server DUID).
    pub fn allocation_key(&self) -> AllocKey {
        self.policy.load().key
    }

    /// The RFC 6853 model from the configuration.
    pub fn model(&self) -> Model {
        self.policy.load().model
    }

    /// The live binding store (read-only uses: leases, snapshots).
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }

    /// Call `f` with a record for every binding and quarantined address.
    pub fn for_each_binding(&self, f: impl FnMut(&LeaseRecord)) {
        self.bindings.for_each(f)
    }

    /// Replay one journal record (start-up recovery).
    pub fn apply(&self, rec: &LeaseRecord) {
        let pool = self
            .bindings
            .spans()
            .find(rec.kind, u128::from(rec.addr), rec.prefix_len);
        self.bindings.apply(rec, pool);
    }

    /// Remove bindings and quarantine entries whose valid lifetime has ended;
    /// append an Expire record for each (to journal).
    pub fn sweep(&self, now: Timestamp, out: &mut Vec<LeaseRecord>) {
        self.bindings.sweep(now, out)
    }

    /// Capacity and use of every pool, in configuration order.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        let policy = self.policy.load();
        policy
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| PoolUsage {
                pool: p.name.clone(),
                kind: match p.kind {
                    PoolKind::Na(_) => LeaseKind::Na,
                    PoolKind::Pd(_) => LeaseKind::Pd,
                },
                capacity: p.capacity,
                used: self.bindings.pool_used_in(&policy.spans, i as u16),
            })
            .collect()
    }

    /// (address bindings, prefix bindings) held, including those whose valid
    /// lifetime has ended but that the sweep has not removed yet.
    pub fn lease_counts(&self) -> (u64, u64) {
        self.bindings.counts()
    }

    /// Pool use and (address, prefix) bindings in force at `now`: what
    /// [`Server::pool_usage`] and [`Server::lease_counts`] say, less what has
    /// ended by `now` and waits for the sweep. For `stats`, so that a pool
    /// is not shown fuller than it is for up to a sweep interval.
    pub fn usage_at(&self, now: Timestamp) -> (Vec<PoolUsage>, (u64, u64)) {
        let (ended, na, pd) = self.bindings.ended_by(now);
        let mut pools = self.pool_usage();
        for (p, e) in pools.iter_mut().zip(&ended) {
            p.used = p.used.saturating_sub(*e);
        }
        let (held_na, held_pd) = self.bindings.counts();
        (
            pools,
            (held_na.saturating_sub(na), held_pd.saturating_sub(pd)),
        )
    }
}

impl Active<'_> {
    fn subnet_by_ifindex(&self, ifindex: u32) -> Option<usize> {
        self.policy
            .subnets
            .iter()
            .position(|s| s.ifindex == Some(ifindex))
    }

    /// A relayed client's subnet: the one whose prefix, or one of whose
    /// `link_prefixes`, holds the innermost relay's link-address (longest
    /// prefix wins). A relay on a unique-prefix link (RFC 6853 §6.2) may take
    /// its link-address from any server's /64; every server still knows the link.
    fn subnet_by_link(&self, link: Ipv6Addr) -> Option<usize> {
        if link.is_unspecified() {
            return None;
        }
        self.policy
            .subnets
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.link_match_len(link).map(|len| (i, len)))
            .max_by_key(|&(_, len)| len)
            .map(|(i, _)| i)
    }

    fn handle_direct(
        &self,
        ingress: &Ingress,
        msg: &crate::wire::Message<'_>,
        found: &Scan<'_>,
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        let kind = msg.msg_type;
        let source = Source::Direct {
            ifindex: ingress.ifindex,
            addr: ingress.src,
        };
        if !self.gate.borrow_mut().admit(&source, now) {
            return Handled::dropped(Some(kind), false, DropReason::RateLimited);
        }
        // RFC 9915 removed the Server Unicast option: clients only multicast,
        // so a unicast datagram from a client is not accepted.
        if !ingress.dst_multicast {
            return Handled::dropped(Some(kind), false, DropReason::ClientUnicast);
        }
        let Some(subnet) = self.subnet_by_ifindex(ingress.ifindex) else {
            return Handled::dropped(Some(kind), false, DropReason::NoSubnet);
        };
        let mut enc = Encoder::new(out);
        let result = self
            .respond(msg, found, subnet, now, &mut enc, changes)
            .and_then(|sent| {
                let len = enc.finish().map_err(|_| DropReason::ReplyTooLarge)?;
                Ok(Reply {
                    len,
                    to: ingress.src,
                    port: CLIENT_PORT,
                    sent,
                    needs_durable: !changes.is_empty(),
                })
            });
        Handled {
            received: Some(kind),
            relayed: false,
            result,
            refused: Default::default(),
        }
    }

    fn handle_relayed(
        &self,
        ingress: &Ingress,
        relay: &crate::wire::RelayMessage<'_>,
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        if relay.msg_type != MessageType::RelayForw {
            return Handled::dropped(Some(relay.msg_type), false, DropReason::WrongMessageType);
        }
        // Checked before anything is read from the relayed message: an
        // untrusted source can make us do no work beyond the decode.
        if let Some(trusted) = &self.policy.trusted_relays {
            if !trusted.iter().any(|net| net.contains(&ingress.src)) {
                return Handled::dropped(
                    Some(MessageType::RelayForw),
                    true,
                    DropReason::UntrustedRelay,
                );
            }
        }
        let Some(inner) = relay.innermost() else {
            return Handled::dropped(Some(MessageType::RelayForw), true, DropReason::Malformed);
        };
        let kind = inner.msg_type;
        let mut link = Ipv6Addr::UNSPECIFIED;
        let mut peer = Ipv6Addr::UNSPECIFIED;
        for level in relay.chain() {
            if level.msg_type != MessageType::RelayForw {
                return Handled::dropped(Some(kind), true, DropReason::WrongMessageType);
            }
            link = level.link_address;
            peer = level.peer_address;
        }
        // The client as the first relay saw it, not the relay: one bucket
        // per subscriber, not one for everyone behind the relay.
        let source = Source::Relayed {
            relay: ingress.src,
            link,
            peer,
        };
        if !self.gate.borrow_mut().admit(&source, now) {
            return Handled::dropped(Some(kind), true, DropReason::RateLimited);
        }
        let Some(subnet) = self.subnet_by_link(link) else {
            return Handled::dropped(Some(kind), true, DropReason::NoSubnet);
        };
        let mut enc = Encoder::new(out);
        // RFC 9915 §19.3: the Relay-repl copies hop-count, link-address,
        // peer-address and Interface-ID of each Relay-forw, nested the same way.
        let mut marks: [Option<OptionMark>; HOP_COUNT_LIMIT + 1] = std::array::from_fn(|_| None);
        let mut depth = 0;
        let wrap = (|| {
            for level in relay.chain() {
                enc.relay_header(
                    MessageType::RelayRepl,
                    level.hop_count,
                    level.link_address,
                    level.peer_address,
                )?;
                if let Some(id) = level.interface_id() {
                    enc.interface_id(id)?;
                }
                if let Some(slot) = marks.get_mut(depth) {
                    *slot = Some(enc.begin_relay_msg()?);
                    depth += 1;
                }
            }
            Ok::<(), crate::wire::WireError>(())
        })();
        if wrap.is_err() {
            return Handled::dropped(Some(kind), true, DropReason::ReplyTooLarge);
        }
        let result = self
            .respond(
                &inner,
                &Scan::of(inner.options),
                subnet,
                now,
                &mut enc,
                changes,
            )
            .and_then(|_| {
                for m in marks[..depth].iter_mut().rev() {
                    if let Some(m) = m.take() {
                        enc.end_option(m).map_err(|_| DropReason::ReplyTooLarge)?;
                    }
                }
                let len = enc.finish().map_err(|_| DropReason::ReplyTooLarge)?;
                Ok(Reply {
                    len,
                    to: ingress.src,
                    port: SERVER_PORT,
                    sent: MessageType::RelayRepl,
                    needs_durable: !changes.is_empty(),
                })
            });
        Handled {
            received: Some(kind),
            relayed: true,
            result,
            refused: Default::default(),
        }
    }
}

/// A worker's view of the policy pointer: `load` costs one atomic load
/// while the policy is unchanged (`arc_swap::Cache`).
pub(crate) type PolicyCache = Cache<Arc<ArcSwap<Policy>>, Arc<Policy>>;

/// The per-source rate check for one message: the rate of the policy it is
/// answered under and the worker's buckets (none for [`Handler::handle`],
/// which keeps no state between messages).
pub(crate) struct Gate<'a> {
    rate: Option<u32>,
    buckets: Option<&'a mut Option<RateLimiter>>,
    key: &'a [u8; 16],
}

impl Gate<'_> {
    /// Whether `source` may have this message answered. Called before
    /// anything in the message can change state.
    #[inline(always)]
    fn admit(&mut self, source: &Source, now: Timestamp) -> bool {
        let (Some(rate), Some(slot)) = (self.rate, self.buckets.as_deref_mut()) else {
            return true;
        };
        // Allocated once per worker, at the first message a limit applies to.
        slot.get_or_insert_with(|| RateLimiter::new(self.key))
            .admit(source, rate, now)
    }
}

impl Server {
    /// Decode, validate and answer one message under `policy`.
    #[inline(always)]
    #[expect(
        clippy::too_many_arguments,
        reason = "the message, its facts and the outputs"
    )]
    fn answer(
        &self,
        policy: &Policy,
        buckets: Option<&mut Option<RateLimiter>>,
        ingress: &Ingress,
        payload: &[u8],
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        changes.clear();
        // A direct message's options are scanned while they are validated
        // (one pass); a relayed one's innermost message is scanned afterwards.
        let active = Active {
            policy,
            bindings: &self.bindings,
            probes: std::cell::Cell::new(crate::protocol::alloc::MESSAGE_PROBE_BUDGET),
            offered: std::cell::Cell::new(0),
            refused: std::cell::Cell::default(),
            gate: std::cell::RefCell::new(Gate {
                rate: policy.rate_per_source,
                buckets,
                key: &self.limiter_key,
            }),
        };
        let mut found = Scan::default();
        let mut handled = match AnyMessage::decode_visit(payload, |o| found.add(o)) {
            Err(_) => Handled::dropped(None, false, DropReason::Malformed),
            Ok(AnyMessage::Message(m)) => {
                active.handle_direct(ingress, &m, &found, now, out, changes)
            }
            Ok(AnyMessage::Relay(r)) => active.handle_relayed(ingress, &r, now, out, changes),
        };
        handled.refused = active.refused.get();
        handled
    }
}

impl Handler for Server {
    fn handle(
        &self,
        ingress: &Ingress,
        payload: &[u8],
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        self.answer(
            &self.policy.load(),
            None,
            ingress,
            payload,
            now,
            out,
            changes,
        )
    }

    fn handle_local(
        &self,
        local: &mut WorkerLocal,
        ingress: &Ingress,
        payload: &[u8],
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        let cache = match &mut local.policy {
            Some(c) if std::ptr::eq(c.arc_swap(), &*self.policy) => c,
            slot => slot.insert(Cache::new(self.policy.clone())),
        };
        // No reference count is touched: the cache holds the policy alive.
        let policy: &Policy = cache.load();
        let buckets = Some(&mut local.limiter);
        self.answer(policy, buckets, ingress, payload, now, out, changes)
    }
}
