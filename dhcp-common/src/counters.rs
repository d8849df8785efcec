//! Per-CPU counters kept by the XDP program in a `PerCpuArray`.

use bytemuck::{Pod, Zeroable};

/// Index of each counter in the XDP program's per-CPU `COUNTERS` array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpCounter {
    /// Every frame the program looked at.
    Seen = 0,
    /// DHCPv6-to-server frames handed to an AF_XDP socket.
    Redirected = 1,
    /// Frames given to the kernel stack (not ours, or no socket bound).
    Passed = 2,
    /// Frames too short or malformed to classify (still passed to the kernel).
    Malformed = 3,
    /// DHCPv6-to-server frames passed because no AF_XDP socket is bound on
    /// that RX queue (its worker is restarting, or was not started): the
    /// kernel path, and the fallback listener on it, gets them.
    NoSocket = 4,
    /// UDP/547 frames not addressed to this server (another host's MAC, or
    /// an IPv6 destination that is neither ours nor a DHCPv6 group): passed
    /// to the kernel untouched (also counted in `Passed`).
    NotOurs = 5,
    /// DHCPv6-to-server frames on an RX queue at or above
    /// [`crate::MAX_QUEUES`], which has no XskMap slot at all: passed to the
    /// kernel (also counted in `Passed`, never in `NoSocket`).
    BeyondQueueLimit = 6,
}

/// Number of slots in the counters array.
pub const XDP_COUNTER_SLOTS: u32 = 7;

/// One counter slot value (a plain `u64` wrapped so it is `Pod` on both sides).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CounterValue {
    pub value: u64,
}

#[cfg(feature = "user")]
// SAFETY: `CounterValue` is `repr(C)`, has no padding and every bit pattern is valid.
unsafe impl aya::Pod for CounterValue {}
