//! Turning the [`Settings`] into what the hot path reads: subnets with
//! their pools as integer ranges, lifetimes resolved, and the DNS and domain
//! search options pre-encoded once (so no per-packet allocation or encoding
//! of configuration).

use std::net::Ipv6Addr;

use crate::protocol::alloc::{prefix_mask, AllocKey, NaPool, PdPool, PoolHasher};
use crate::protocol::settings::{Lifetimes, OptionValues, Settings, SubnetSettings};
use crate::wire::{Encoder, WireError};

/// Why a [`super::Server`] could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The server DUID is not a valid DUID (RFC 9915 §11: 2-byte type, at most 130 bytes).
    #[error("server DUID is not valid: {0}")]
    BadServerDuid(WireError),
    /// A subnet names an interface that is not in the list the server was given.
    #[error("subnet {subnet}: interface {interface:?} is not one of the server's interfaces")]
    UnknownInterface {
        /// The subnet prefix.
        subnet: String,
        /// The interface name.
        interface: String,
    },
    /// A reload brought another server DUID (it needs a restart).
    #[error("the server DUID cannot change without a restart")]
    DuidChanged,
    /// More pools than a binding can index (65,534).
    #[error("too many pools ({0}); at most 65534")]
    TooManyPools(usize),
    /// A subnet option (DNS servers, domain search) cannot be encoded.
    #[error("subnet {subnet}: cannot encode {what}: {source}")]
    BadOption {
        /// The subnet prefix.
        subnet: String,
        /// Which option.
        what: &'static str,
        /// The codec's reason.
        source: WireError,
    },
}

/// One pool, as the allocator and stats see it.
#[derive(Clone, Copy, Debug)]
pub enum PoolKind {
    /// IA_NA addresses.
    Na(NaPool),
    /// IA_PD delegated prefixes.
    Pd(PdPool),
}

/// A pool with its subnet and its display name.
#[derive(Clone, Debug)]
pub struct Pool {
    /// Address or prefix pool, with the parameters the allocator hashes.
    pub kind: PoolKind,
    /// Index of the pool's subnet in the server's subnet list (= `subnet[N]` in the config).
    pub subnet: usize,
    /// The `pool` key in stats: an NA pool as CIDR when it is one aligned
    /// prefix, else `first-last`; a PD pool as `prefix/len/delegated_len`.
    pub name: String,
    /// Addresses or prefixes that can be handed out (reserved ones excluded).
    pub capacity: u128,
    /// The allocation hash state after this pool's constant bytes.
    pub hasher: PoolHasher,
}

/// A subnet ready for the hot path.
#[derive(Clone, Debug)]
pub struct Subnet {
    /// Network address of the subnet's on-link prefix, as a big-endian integer.
    pub prefix: u128,
    /// Length of the on-link prefix, 0..=128.
    pub prefix_len: u8,
    /// Other prefixes on the same link (`link_prefixes`), as (network, length).
    pub link_prefixes: Box<[(u128, u8)]>,
    /// Interface index of directly attached clients, if any.
    pub ifindex: Option<u32>,
    /// T1, T2, preferred and valid lifetimes for this subnet, in seconds
    /// (`[lifetimes]` merged with the subnet's overrides).
    pub lifetimes: Lifetimes,
    /// SOL_MAX_RT, INF_MAX_RT and Information Refresh Time sent on request.
    pub options: OptionValues,
    /// Indices into `Server::pools` of this subnet's IA_NA pools, in config order.
    pub na_pools: Vec<u16>,
    /// Indices into `Server::pools` of this subnet's IA_PD pools, in config order.
    pub pd_pools: Vec<u16>,
    /// Whole DNS Recursive Name Server option (code, length, data), or empty.
    pub dns_option: Box<[u8]>,
    /// Whole Domain Search List option, or empty.
    pub domain_option: Box<[u8]>,
}

impl Subnet {
    /// Whether `addr` is on this subnet's link: inside its prefix or one of
    /// the other prefixes configured on the same link (RFC 6853 §6.2: "the
    /// network infrastructure must in turn be configured to use multiple
    /// prefixes on the interface(s) facing the DHCPv6 clients").
    pub fn on_link(&self, addr: Ipv6Addr) -> bool {
        self.link_match_len(addr).is_some()
    }

    /// The length of the longest of this link's prefixes that holds `addr`.
    pub fn link_match_len(&self, addr: Ipv6Addr) -> Option<u8> {
        let a = u128::from(addr);
        let within = |net: u128, len: u8| {
            let m = prefix_mask(len);
            a & m == net & m
        };
        std::iter::once((self.prefix, self.prefix_len))
            .chain(self.link_prefixes.iter().copied())
            .filter(|&(net, len)| within(net, len))
            .map(|(_, len)| len)
            .max()
    }
}

fn encode_once(
    subnet: &SubnetSettings,
    what: &'static str,
    f: impl FnOnce(&mut Encoder<'_>) -> Result<(), WireError>,
) -> Result<Box<[u8]>, CoreError> {
    let mut buf = vec![0u8; 65_540];
    let mut enc = Encoder::new(&mut buf);
    f(&mut enc)
        .and_then(|()| enc.finish())
        .map(|n| buf[..n].into())
        .map_err(|source| CoreError::BadOption {
            subnet: subnet.prefix.to_string(),
            what,
            source,
        })
}

/// Build subnets and pools from the settings.
pub fn build(
    settings: &Settings,
    interfaces: &[(String, u32)],
    key: &AllocKey,
) -> Result<(Vec<Subnet>, Vec<Pool>), CoreError> {
    let mut subnets = Vec::new();
    let mut pools = Vec::new();
    for (si, sc) in settings.subnets.iter().enumerate() {
        let ifindex = match &sc.interface {
            None => None,
            Some(name) => Some(
                interfaces
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, i)| *i)
                    .ok_or_else(|| CoreError::UnknownInterface {
                        subnet: sc.prefix.to_string(),
                        interface: name.clone(),
                    })?,
            ),
        };
        let prefix = u128::from(sc.prefix.network());
        let prefix_len = sc.prefix.prefix_len();
        let mut na_pools = Vec::new();
        for p in &sc.pools {
            let pool = NaPool {
                first: u128::from(p.first),
                last: u128::from(p.last),
                subnet_prefix: prefix,
                subnet_len: prefix_len,
            };
            na_pools.push(pools.len() as u16);
            pools.push(Pool {
                kind: PoolKind::Na(pool),
                subnet: si,
                name: p.to_string(),
                capacity: pool.capacity(),
                hasher: pool.hasher(key),
            });
        }
        let mut pd_pools = Vec::new();
        for &(prefix, delegated_len) in &sc.pd_pools {
            let pool = PdPool {
                prefix: u128::from(prefix.network()),
                prefix_len: prefix.prefix_len(),
                delegated_len,
            };
            pd_pools.push(pools.len() as u16);
            pools.push(Pool {
                kind: PoolKind::Pd(pool),
                subnet: si,
                name: format!("{prefix}/{delegated_len}"),
                capacity: pool.slots().unwrap_or(u128::MAX),
                hasher: pool.hasher(key),
            });
        }
        if pools.len() >= usize::from(u16::MAX) {
            return Err(CoreError::TooManyPools(pools.len()));
        }
        let dns_option = if sc.dns_servers.is_empty() {
            Box::default()
        } else {
            encode_once(sc, "dns_servers", |e| e.dns_servers(&sc.dns_servers))?
        };
        let domain_option = if sc.domain_search.is_empty() {
            Box::default()
        } else {
            let names: Vec<&str> = sc.domain_search.iter().map(String::as_str).collect();
            encode_once(sc, "domain_search", |e| e.domain_list(&names))?
        };
        subnets.push(Subnet {
            prefix,
            prefix_len,
            link_prefixes: sc
                .link_prefixes
                .iter()
                .map(|p| (u128::from(p.network()), p.prefix_len()))
                .collect(),
            ifindex,
            lifetimes: sc.lifetimes,
            options: sc.options,
            na_pools,
            pd_pools,
            dns_option,
            domain_option,
        });
    }
    Ok((subnets, pools))
}
