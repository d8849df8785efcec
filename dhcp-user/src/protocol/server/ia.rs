//! One IA_NA or IA_PD of a client message: what to offer, commit, extend,
//! release or decline, and the IA option written back (RFC 9915 §18.3).
//!
//! Client hints (addresses or prefixes listed in Solicit/Request, a prefix
//! length hint) are not honoured: every server of an identical-prefix
//! deployment must give the same answer, so the allocation function alone
//! decides. Listed leases matter only on Renew/Rebind, to recognise a binding.

use std::net::Ipv6Addr;

use super::respond::Exchange;
use super::setup::{PoolKind, Subnet};
use super::Active;
use crate::protocol::alloc::{HASHED_PROBES, LINEAR_SCAN_LIMIT};
use crate::protocol::bindings::{ClientKey, Committed, PoolRef, Taken};
use crate::protocol::lease::{LeaseChanges, LeaseKind, LeaseOp, LeaseRecord};
use crate::protocol::{Refusal, Timestamp};
use crate::wire::options::Options;
use crate::wire::{status, Encoder, WireError};

/// What the message asks us to do with its IAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Solicit: say what we would assign, change nothing (§18.3.1).
    Offer,
    /// Request, or Solicit with Rapid Commit: assign and commit (§18.3.2).
    Commit,
    /// Renew (§18.3.4) or Rebind (§18.3.5): extend what the client holds.
    Extend { rebind: bool },
    /// Release (§18.3.7).
    Release,
    /// Decline (§18.3.8).
    Decline,
}

/// A lease chosen for an IA.
#[derive(Clone, Copy, Debug)]
struct Lease {
    addr: u128,
    prefix_len: u8,
    pool: u16,
}

impl Active<'_> {
    fn pool_of(&self, subnet: &Subnet, kind: LeaseKind, addr: u128, plen: u8) -> Option<u16> {
        let list = match kind {
            LeaseKind::Na => &subnet.na_pools,
            LeaseKind::Pd => &subnet.pd_pools,
        };
        list.iter()
            .copied()
            .find(|&pi| match self.policy.pools[usize::from(pi)].kind {
                PoolKind::Na(p) => plen == 128 && addr >= p.first && addr <= p.last,
                PoolKind::Pd(p) => p.contains_slot(addr, plen),
            })
    }

    /// The `[limits]` cap that forbids one more binding for `key`'s client,
    /// if any. A binding the IA already has (even expired, not yet swept)
    /// is reused or moved by a commit, never added, so it passes.
    fn limit(&self, key: &ClientKey<'_>, hash: u64) -> Option<Refusal> {
        if self.bindings.indexed(key, hash) {
            return None;
        }
        let offered = self.offered.get();
        if let Some(max) = self.policy.max_bindings {
            let (na, pd) = self.bindings.counts();
            if na + pd + u64::from(offered) >= max {
                return Some(Refusal::MaxBindings);
            }
        }
        let held = self.bindings.held_by(key.duid).saturating_add(offered);
        (held >= self.policy.bindings_per_client).then_some(Refusal::BindingsPerClient)
    }

    /// Count an IA refused by a cap.
    fn refuse(&self, r: Refusal) {
        let mut v = self.refused.get();
        v.add(r);
        self.refused.set(v);
    }

    /// The client's current lease on this subnet, or a fresh allocation: the
    /// first candidate that `take` accepts. `take` is "is it usable" for an
    /// Advertise and "commit it" for a Reply, so a Reply checks and binds a
    /// candidate in one step (no separate look-up, and no race between them).
    /// A fresh allocation first passes the `[limits]` caps; the flag says
    /// whether the lease is one (not the client's binding).
    fn choose(
        &self,
        subnet: &Subnet,
        key: &ClientKey<'_>,
        hash: u64,
        now: Timestamp,
        mut take: impl FnMut(Lease) -> bool,
    ) -> Option<(Lease, bool)> {
        if let Some(b) = self.bindings.find_hashed(key, hash, now) {
            let a = u128::from(b.addr);
            if let Some(pool) = self.pool_of(subnet, key.kind, a, b.prefix_len) {
                let lease = Lease {
                    addr: a,
                    prefix_len: b.prefix_len,
                    pool,
                };
                if take(lease) {
                    return Some((lease, false));
                }
            }
        }
        if let Some(r) = self.limit(key, hash) {
            self.refuse(r);
            return None;
        }
        let list = match key.kind {
            LeaseKind::Na => &subnet.na_pools,
            LeaseKind::Pd => &subnet.pd_pools,
        };
        for &pi in list {
            let pool = &self.policy.pools[usize::from(pi)];
            // A pool that counts as full (its count includes expired bindings
            // not yet swept) gets only the hashed probes, which find an expired
            // slot in a small pool, not the costly linear scan.
            // (Only a pool small enough for the scan needs its count read.)
            let linear = pool.capacity <= LINEAR_SCAN_LIMIT
                && u128::from(self.bindings.pool_used_in(&self.policy.spans, pi)) < pool.capacity;
            let mut budget = self.probes.get();
            let found = match pool.kind {
                PoolKind::Na(p) => p
                    .allocate_bounded(
                        &pool.hasher,
                        key.duid,
                        key.iaid,
                        linear,
                        &mut budget,
                        |addr| {
                            take(Lease {
                                addr,
                                prefix_len: 128,
                                pool: pi,
                            })
                        },
                    )
                    .map(|addr| (addr, 128)),
                PoolKind::Pd(p) => p
                    .allocate_bounded(
                        &pool.hasher,
                        key.duid,
                        key.iaid,
                        linear,
                        &mut budget,
                        |addr| {
                            take(Lease {
                                addr,
                                prefix_len: p.delegated_len,
                                pool: pi,
                            })
                        },
                    )
                    .map(|addr| (addr, p.delegated_len)),
            };
            self.probes.set(budget);
            if let Some((addr, prefix_len)) = found {
                let lease = Lease {
                    addr,
                    prefix_len,
                    pool: pi,
                };
                return Some((lease, true));
            }
        }
        None
    }

    /// Whether a lease the client holds from another server (or from us before
    /// a restart) is one our allocation function gives this client and is free
    /// here: then we confirm it (RFC 6853 §6.3 identical prefixes).
    fn own_candidate(
        &self,
        subnet: &Subnet,
        key: &ClientKey<'_>,
        addr: u128,
        plen: u8,
        now: Timestamp,
    ) -> Option<Lease> {
        let pool = self.pool_of(subnet, key.kind, addr, plen)?;
        let ph = &self.policy.pools[usize::from(pool)].hasher;
        let from_function = match self.policy.pools[usize::from(pool)].kind {
            PoolKind::Na(p) => {
                !p.is_reserved(addr)
                    && (p.size().is_some_and(|s| s <= LINEAR_SCAN_LIMIT)
                        || (0..HASHED_PROBES)
                            .any(|a| p.candidate_with(ph, key.duid, key.iaid, a) == addr))
            }
            PoolKind::Pd(p) => {
                p.slots().is_some_and(|s| s <= LINEAR_SCAN_LIMIT)
                    || (0..HASHED_PROBES)
                        .any(|a| p.candidate_with(ph, key.duid, key.iaid, a) == addr)
            }
        };
        (from_function && self.bindings.usable(addr, key, now)).then_some(Lease {
            addr,
            prefix_len: plen,
            pool,
        })
    }

    /// Commit `lease` for `key`; records go to `changes`.
    fn commit(
        &self,
        key: &ClientKey<'_>,
        hash: u64,
        lease: Lease,
        subnet: &Subnet,
        now: Timestamp,
        changes: &mut LeaseChanges,
    ) -> Result<(), Taken> {
        let lt = subnet.lifetimes;
        let pref_until = now.0 + u64::from(lt.preferred);
        let valid_until = now.0 + u64::from(lt.valid);
        let addr = Ipv6Addr::from(lease.addr);
        let r = self.bindings.commit_hashed(
            key,
            hash,
            addr,
            lease.prefix_len,
            PoolRef {
                index: lease.pool,
                spans: Some(&self.policy.spans),
            },
            pref_until,
            valid_until,
            now,
        )?;
        if let Committed::Moved(old) = r {
            push(
                changes,
                LeaseOp::Release,
                key,
                old.addr,
                old.prefix_len,
                now.0,
                now.0,
            );
        }
        push(
            changes,
            LeaseOp::Commit,
            key,
            addr,
            lease.prefix_len,
            pref_until,
            valid_until,
        );
        Ok(())
    }

    /// Handle one IA and write its IA option (or nothing, for a Release or
    /// Decline of IAs we hold, §18.3.7).
    pub(super) fn ia(
        &self,
        x: &mut Exchange<'_, '_>,
        kind: LeaseKind,
        iaid: u32,
        ia_options: Options<'_>,
        mode: Mode,
    ) -> Result<(), WireError> {
        let key = ClientKey {
            duid: x.client,
            iaid,
            kind,
        };
        let hash = self.bindings.client_hash(&key);
        match mode {
            Mode::Offer => self.ia_assign(x, &key, hash, false),
            Mode::Commit => self.ia_assign(x, &key, hash, true),
            Mode::Extend { rebind } => self.ia_extend(x, &key, hash, ia_options, rebind),
            Mode::Release => self.ia_release(x, &key, hash, ia_options, false),
            Mode::Decline => self.ia_release(x, &key, hash, ia_options, true),
        }
    }

    /// Solicit (offer) and Request or Rapid Commit (commit): the lease the
    /// allocation function gives this IA, or NoAddrsAvail / NoPrefixAvail.
    fn ia_assign(
        &self,
        x: &mut Exchange<'_, '_>,
        key: &ClientKey<'_>,
        hash: u64,
        commit: bool,
    ) -> Result<(), WireError> {
        let mut w = IaWriter::open(x.enc, key.kind, key.iaid, x.subnet)?;
        match self.assign(x.subnet, key, hash, commit, x.now, x.changes) {
            Some(lease) => w.lease(lease.addr, lease.prefix_len, true)?,
            None => w.unavailable()?,
        }
        w.close()
    }

    /// Renew and Rebind (§18.3.4, §18.3.5): extend the binding, confirm a
    /// lease our function gives the client (RFC 6853 §6.3), send the others
    /// back with lifetimes 0.
    fn ia_extend(
        &self,
        x: &mut Exchange<'_, '_>,
        key: &ClientKey<'_>,
        hash: u64,
        ia_options: Options<'_>,
        rebind: bool,
    ) -> Result<(), WireError> {
        let (subnet, now, kind, iaid) = (x.subnet, x.now, key.kind, key.iaid);
        let changes = &mut *x.changes;
        let listed = || listed(ia_options, kind);
        let existing = self
            .bindings
            .find_hashed(key, hash, now)
            .map(|b| (u128::from(b.addr), b.prefix_len))
            .filter(|(a, l)| self.pool_of(subnet, kind, *a, *l).is_some());
        let mut w = IaWriter::open(x.enc, kind, iaid, subnet)?;
        // §18.3.4: a Renew for an IA we know nothing about gets the IA
        // back with no leases and NoBinding.
        if !rebind
            && existing.is_none()
            && !listed().any(|(a, l)| self.own_candidate(subnet, key, a, l, now).is_some())
        {
            w.status(status::NO_BINDING, "no binding for this IA")?;
            return w.close();
        }
        // The lease this IA holds once extended: committed (and recorded)
        // once, however often the client lists it, so an IA causes at most
        // CHANGES_PER_IA records and never crowds out another IA's.
        let mut bound: Option<(u128, u8)> = None;
        // A cap that refused confirming a listed lease: the IA is refused
        // for it once, below.
        let mut limited: Option<Refusal> = None;
        for (addr, plen) in listed() {
            if bound == Some((addr, plen)) {
                w.lease(addr, plen, true)?;
                continue;
            }
            let confirmed = if existing == Some((addr, plen)) {
                self.pool_of(subnet, kind, addr, plen).map(|pool| Lease {
                    addr,
                    prefix_len: plen,
                    pool,
                })
            } else if existing.is_none() && bound.is_none() && limited.is_none() {
                // Confirming another server's lease adds a binding here.
                self.own_candidate(subnet, key, addr, plen, now)
                    .filter(|_| {
                        limited = self.limit(key, hash);
                        limited.is_none()
                    })
            } else {
                None
            };
            match confirmed {
                Some(lease) if self.commit(key, hash, lease, subnet, now, changes).is_ok() => {
                    bound = Some((addr, plen));
                    w.lease(addr, plen, true)?;
                }
                // §18.3.4/§18.3.5, RFC 6853 §6.1: a lease that is not
                // ours for this link goes back with lifetimes 0.
                _ => w.lease(addr, plen, false)?,
            }
        }
        let mut extended = bound.is_some();
        if !extended {
            if let Some((addr, plen)) = existing {
                // The client did not list its binding: extend and include it.
                let lease = self.pool_of(subnet, kind, addr, plen).map(|pool| Lease {
                    addr,
                    prefix_len: plen,
                    pool,
                });
                if let Some(l) = lease {
                    if self.commit(key, hash, l, subnet, now, changes).is_ok() {
                        extended = true;
                        w.lease(addr, plen, true)?;
                    }
                }
            }
        }
        if !extended {
            // §18.3.5: a server "configured to create new bindings as a
            // result of processing Rebind messages" assigns a new lease;
            // otherwise NoBinding.
            if let Some(r) = limited {
                self.refuse(r);
                w.unavailable()?;
            } else if rebind && self.policy.rebind_creates_bindings {
                match self.assign(subnet, key, hash, true, now, changes) {
                    Some(l) => w.lease(l.addr, l.prefix_len, true)?,
                    None => w.unavailable()?,
                }
            } else {
                w.status(status::NO_BINDING, "no binding for this IA")?;
            }
        }
        w.close()
    }

    /// Release (§18.3.7) and Decline (§18.3.8) of the leases the client
    /// holds here; an IA we have no binding for gets NoBinding.
    fn ia_release(
        &self,
        x: &mut Exchange<'_, '_>,
        key: &ClientKey<'_>,
        hash: u64,
        ia_options: Options<'_>,
        decline: bool,
    ) -> Result<(), WireError> {
        let (subnet, now, kind) = (x.subnet, x.now, key.kind);
        let changes = &mut *x.changes;
        let Some(b) = self.bindings.find_hashed(key, hash, now) else {
            // §18.3.7/§18.3.8: an IA we have no binding for gets NoBinding.
            let mut w = IaWriter::open(x.enc, kind, key.iaid, subnet)?;
            w.status(status::NO_BINDING, "no binding for this IA")?;
            return w.close();
        };
        for (addr, plen) in listed(ia_options, kind) {
            if addr != u128::from(b.addr) || plen != b.prefix_len {
                continue; // §18.3.7: leases not assigned to the IA are ignored.
            }
            let a = Ipv6Addr::from(addr);
            if !decline {
                if self.bindings.release(key, a, now).is_some() {
                    push(changes, LeaseOp::Release, key, a, plen, now.0, now.0);
                }
            } else if kind == LeaseKind::Na {
                // §18.3.8: a declined address is not assigned again
                // meanwhile; quarantine it for one valid lifetime.
                let until = now.0 + u64::from(subnet.lifetimes.valid);
                if self.bindings.decline(key, a, now, until).is_some() {
                    push(changes, LeaseOp::Decline, key, a, plen, 0, until);
                }
            }
        }
        Ok(())
    }

    /// Choose and (when `commit`) bind a lease.
    fn assign(
        &self,
        subnet: &Subnet,
        key: &ClientKey<'_>,
        hash: u64,
        commit: bool,
        now: Timestamp,
        changes: &mut LeaseChanges,
    ) -> Option<Lease> {
        if commit {
            self.choose(subnet, key, hash, now, |l| {
                self.commit(key, hash, l, subnet, now, changes).is_ok()
            })
            .map(|(l, _)| l)
        } else {
            let (lease, fresh) = self.choose(subnet, key, hash, now, |l| {
                self.bindings.usable(l.addr, key, now)
            })?;
            if fresh {
                self.offered.set(self.offered.get() + 1);
            }
            Some(lease)
        }
    }
}

/// The addresses (IA_NA) or prefixes (IA_PD) a client listed in an IA.
fn listed(opts: Options<'_>, kind: LeaseKind) -> impl Iterator<Item = (u128, u8)> + '_ {
    let na = (kind == LeaseKind::Na).then(|| opts.ia_addrs().map(|a| (u128::from(a.addr), 128)));
    let pd = (kind == LeaseKind::Pd).then(|| {
        opts.ia_prefixes()
            .map(|p| (u128::from(p.prefix), p.prefix_len))
    });
    na.into_iter().flatten().chain(pd.into_iter().flatten())
}

fn push(
    changes: &mut LeaseChanges,
    op: LeaseOp,
    key: &ClientKey<'_>,
    addr: Ipv6Addr,
    plen: u8,
    pref_until: u64,
    valid_until: u64,
) {
    // The message was bounded to MAX_CHANGES / CHANGES_PER_IA IAs, each IA
    // commits at most once (plus the release of a moved binding), and the
    // DUID to the codec's limit, all before any state changed: neither the
    // record nor the push can fail here.
    if let Some(r) = LeaseRecord::new(
        op,
        key.kind,
        addr,
        plen,
        key.iaid,
        key.duid,
        pref_until,
        valid_until,
    ) {
        let fitted = changes.push(r);
        debug_assert!(fitted, "more lease changes than a message may cause");
    }
}

/// Writes one IA_NA or IA_PD option with the subnet's T1/T2.
struct IaWriter<'e, 'b> {
    enc: &'e mut Encoder<'b>,
    mark: crate::wire::OptionMark,
    kind: LeaseKind,
    preferred: u32,
    valid: u32,
}

impl<'e, 'b> IaWriter<'e, 'b> {
    fn open(
        enc: &'e mut Encoder<'b>,
        kind: LeaseKind,
        iaid: u32,
        subnet: &Subnet,
    ) -> Result<Self, WireError> {
        let lt = subnet.lifetimes;
        // T1/T2 come from the subnet, so they are identical across the IAs of one reply.
        let mark = match kind {
            LeaseKind::Na => enc.begin_ia_na(iaid, lt.t1, lt.t2)?,
            LeaseKind::Pd => enc.begin_ia_pd(iaid, lt.t1, lt.t2)?,
        };
        Ok(IaWriter {
            enc,
            mark,
            kind,
            preferred: lt.preferred,
            valid: lt.valid,
        })
    }

    /// An IAADDR or IAPREFIX, with the subnet's lifetimes or with 0.
    fn lease(&mut self, addr: u128, plen: u8, live: bool) -> Result<(), WireError> {
        let (p, v) = if live {
            (self.preferred, self.valid)
        } else {
            (0, 0)
        };
        let a = Ipv6Addr::from(addr);
        match self.kind {
            LeaseKind::Na => self.enc.ia_addr(a, p, v),
            LeaseKind::Pd => self.enc.ia_prefix(p, v, plen, a),
        }
    }

    /// §18.3.9: an IA we cannot fill carries NoAddrsAvail / NoPrefixAvail.
    fn unavailable(&mut self) -> Result<(), WireError> {
        match self.kind {
            LeaseKind::Na => self.status(status::NO_ADDRS_AVAIL, "no addresses available"),
            LeaseKind::Pd => self.status(status::NO_PREFIX_AVAIL, "no prefixes available"),
        }
    }

    fn status(&mut self, code: u16, text: &str) -> Result<(), WireError> {
        self.enc.status_code(code, text)
    }

    fn close(self) -> Result<(), WireError> {
        self.enc.end_option(self.mark)
    }
}
