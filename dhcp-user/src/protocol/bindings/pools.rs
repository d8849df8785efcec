//! Which pool a binding counts against: the pools of the policy in force,
//! as address spans, and the per-pool counters that go with them.
//!
//! The spans belong to a policy (rebuilt on every reload); the counters are
//! binding state (rebuilt from the bindings when a reload brings new spans,
//! see [`super::Bindings::adopt`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::protocol::alloc::prefix_mask;
use crate::protocol::lease::LeaseKind;

use super::NO_POOL;

/// One pool as an address span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpan {
    /// Address (IA_NA) or prefix (IA_PD) pool.
    pub kind: LeaseKind,
    /// First address of the span.
    pub first: u128,
    /// Last address of the span.
    pub last: u128,
    /// 128 for an address pool; the delegated length for a prefix pool.
    pub len: u8,
}

impl PoolSpan {
    fn holds(&self, kind: LeaseKind, addr: u128, len: u8) -> bool {
        kind == self.kind
            && len == self.len
            && addr >= self.first
            && addr <= self.last
            && (len >= 128 || addr & !prefix_mask(len) == 0)
    }
}

/// The pools of one policy, in its order: a binding's pool index is an index here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PoolSpans(Box<[PoolSpan]>);

impl PoolSpans {
    /// The spans, in pool order.
    pub fn new(spans: Vec<PoolSpan>) -> Arc<PoolSpans> {
        Arc::new(PoolSpans(spans.into()))
    }

    /// `n` pools no address belongs to (tests of the binding store, which
    /// pass pool indices directly).
    pub fn opaque(n: usize) -> Arc<PoolSpans> {
        PoolSpans::new(vec![
            PoolSpan {
                kind: LeaseKind::Na,
                first: 1,
                last: 0,
                len: 128,
            };
            n
        ])
    }

    /// How many pools.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The index of the pool holding `addr/len` of `kind`, or [`NO_POOL`].
    pub fn find(&self, kind: LeaseKind, addr: u128, len: u8) -> u16 {
        self.0
            .iter()
            .position(|s| s.holds(kind, addr, len))
            .map_or(NO_POOL, |i| i as u16)
    }
}

/// The spans in force in the binding store and a counter per span.
#[derive(Debug)]
pub(super) struct Accounts {
    pub(super) spans: Arc<PoolSpans>,
    pub(super) used: Box<[AtomicU64]>,
}

impl Accounts {
    pub(super) fn new(spans: Arc<PoolSpans>) -> Accounts {
        let used = (0..spans.len()).map(|_| AtomicU64::new(0)).collect();
        Accounts { spans, used }
    }
}

/// A pool index and the spans it indexes: what a commit tells the store.
/// When the store has adopted other spans since (a reload in between), it
/// finds the pool again by address.
#[derive(Clone, Copy, Debug)]
pub struct PoolRef<'a> {
    /// Index into `spans`.
    pub index: u16,
    /// The spans of the policy the caller allocated under; `None` means the
    /// spans the store holds now.
    pub spans: Option<&'a PoolSpans>,
}

impl PoolRef<'_> {
    /// Pool `index` of the spans the store holds now.
    pub fn current(index: u16) -> PoolRef<'static> {
        PoolRef { index, spans: None }
    }
}
