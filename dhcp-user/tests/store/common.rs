//! Helpers shared by the store tests: temp dirs, records, a model of the state.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dhcp6d::protocol::{LeaseKind, LeaseOp, LeaseRecord};
use dhcp6d::store::Recovered;

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "dhcp6d-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Base of lease times in the tests (2027-01-15).
pub const T0: u64 = 1_800_000_000;

/// A distinct binding per `i`: its own address, DUID (DUID-LLT shape) and IAID.
pub fn rec(op: LeaseOp, i: u64) -> LeaseRecord {
    let addr =
        Ipv6Addr::from(0x2001_0db8_0001_0001_0000_0000_0000_0000u128 | u128::from(i * 7919 + 1));
    let mut duid = vec![0, 1, 0, 1, 0x2c, 0x3d, 0x4e, 0x5f];
    duid.extend_from_slice(&(i as u32).to_be_bytes());
    duid.extend_from_slice(&[0x02, 0x42]);
    LeaseRecord::new(
        op,
        LeaseKind::Na,
        addr,
        128,
        i as u32,
        &duid,
        T0 + 3000 + i,
        T0 + 4000 + i,
    )
    .expect("short DUID")
}

/// A delegated prefix for client `i`.
pub fn pd(op: LeaseOp, i: u64) -> LeaseRecord {
    let addr =
        Ipv6Addr::from(0x2001_0db8_0100_0000_0000_0000_0000_0000u128 | (u128::from(i) << 72));
    let duid = [
        0,
        4,
        0x55,
        0xaa,
        (i >> 8) as u8,
        i as u8,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
    ];
    LeaseRecord::new(
        op,
        LeaseKind::Pd,
        addr,
        56,
        1000 + i as u32,
        &duid,
        T0 + 100,
        T0 + 200,
    )
    .expect("short DUID")
}

pub type Key = (Vec<u8>, u32, u8, Ipv6Addr);

pub fn key(r: &LeaseRecord) -> Key {
    (r.duid().to_vec(), r.iaid, r.kind as u8, r.addr)
}

/// The reference semantics, applied record by record.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Model(pub BTreeMap<Key, LeaseRecord>);

impl Model {
    pub fn apply(&mut self, r: &LeaseRecord) {
        match r.op {
            LeaseOp::Commit | LeaseOp::Decline => {
                self.0.insert(key(r), *r);
            }
            LeaseOp::Release => {
                self.0.remove(&key(r));
            }
            // An Expire ends only a binding that had ended by then; one set
            // again since (a later lifetime) stays.
            LeaseOp::Expire => {
                if self
                    .0
                    .get(&key(r))
                    .is_some_and(|held| held.valid_until <= r.valid_until)
                {
                    self.0.remove(&key(r));
                }
            }
        }
    }
}

/// The recovered bindings as a model, for comparison.
pub fn model_of(rec: &Recovered) -> Model {
    let mut m = Model::default();
    for r in rec.iter() {
        assert!(
            m.0.insert(key(&r), r).is_none(),
            "recovery returned the same key twice: {r:?}"
        );
    }
    m
}
