//! Correctness of what the server handed out, not only how fast: every address and
//! prefix inside a pool of the right link, no two clients sharing one, renewals
//! keeping the address, and (given a predictor) equal to the allocation function.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv6Addr;

use crate::lab::LinkPools;

use super::engine::Client;
use super::wire::{client_duid, IaKinds};

/// The allocation function as the caller knows it: from the DUID of the server
/// that answered, the client's DUID and the attempt number, the candidate
/// address (IAID 1) and delegated prefix (IAID 2); `None` where it cannot say
/// or the candidate is reserved (skipped by the allocator).
pub type Predictor<'a> = &'a dyn Fn(&[u8], &[u8], u32) -> (Option<u128>, Option<(u128, u8)>);

/// What the check needs to call a [`Predictor`]: the servers seen (clients name
/// theirs by index) and the run's DUID salt.
pub struct Prediction<'a> {
    pub predict: Predictor<'a>,
    pub servers: &'a [Vec<u8>],
    pub salt: u32,
}

#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    pub bound: u64,
    pub missing_ia: u64,
    pub out_of_pool: u64,
    pub duplicates: u64,
    pub wrong_pd_len: u64,
    pub changed_on_renew: u64,
    pub predicted: u64,
    pub mispredicted: u64,
    /// A few offending clients, for the reader.
    pub examples: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.missing_ia
            + self.out_of_pool
            + self.duplicates
            + self.wrong_pd_len
            + self.changed_on_renew
            + self.mispredicted
            == 0
    }
    fn note(&mut self, s: String) {
        if self.examples.len() < 5 {
            self.examples.push(s);
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bound: {} missing IA, {} outside pools, {} duplicates, {} wrong prefix length, {} changed on renew, {}/{} predicted",
            self.bound,
            self.missing_ia,
            self.out_of_pool,
            self.duplicates,
            self.wrong_pd_len,
            self.changed_on_renew,
            self.predicted - self.mispredicted,
            self.predicted
        )?;
        for e in &self.examples {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

fn in_na(pools: &LinkPools, a: u128) -> bool {
    pools
        .na
        .iter()
        .any(|(lo, hi)| a >= u128::from(*lo) && a <= u128::from(*hi))
}

fn in_pd(pools: &LinkPools, p: u128, len: u8) -> Option<bool> {
    for (base, plen, dlen) in &pools.pd {
        let mask = if *plen == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(*plen))
        };
        if p & mask == u128::from(*base) {
            return Some(len == *dlen);
        }
    }
    None
}

/// Check every client that holds bindings. `pools` None skips the pool test.
pub fn check(
    clients: &[Client],
    ia: IaKinds,
    pools: Option<&LinkPools>,
    renewed: bool,
    prediction: Option<&Prediction>,
) -> CheckReport {
    let mut r = CheckReport::default();
    let mut seen_na = HashSet::with_capacity(clients.len());
    let mut seen_pd = HashSet::with_capacity(clients.len());
    for (i, c) in clients.iter().enumerate() {
        if !c.bound() {
            continue;
        }
        r.bound += 1;
        if (ia.na && c.na.is_none()) || (ia.pd && c.pd.is_none()) {
            r.missing_ia += 1;
            r.note(format!("client {i}: bound without every IA asked for"));
        }
        if let Some(a) = c.na {
            if !seen_na.insert(a) {
                r.duplicates += 1;
                r.note(format!(
                    "client {i}: address {} given twice",
                    Ipv6Addr::from(a)
                ));
            }
            if pools.is_some_and(|p| !in_na(p, a)) {
                r.out_of_pool += 1;
                r.note(format!(
                    "client {i}: address {} outside every pool",
                    Ipv6Addr::from(a)
                ));
            }
            if renewed && c.prev_na.is_some_and(|p| p != a) {
                r.changed_on_renew += 1;
                r.note(format!("client {i}: address changed on renew/rebind"));
            }
        }
        if let Some((p, len)) = c.pd {
            if !seen_pd.insert((p, len)) {
                r.duplicates += 1;
                r.note(format!(
                    "client {i}: prefix {}/{len} given twice",
                    Ipv6Addr::from(p)
                ));
            }
            match pools.map(|pl| in_pd(pl, p, len)) {
                Some(None) => {
                    r.out_of_pool += 1;
                    r.note(format!(
                        "client {i}: prefix {}/{len} outside every PD pool",
                        Ipv6Addr::from(p)
                    ));
                }
                Some(Some(false)) => {
                    r.wrong_pd_len += 1;
                    r.note(format!(
                        "client {i}: prefix {}/{len} has the wrong delegated length",
                        Ipv6Addr::from(p)
                    ));
                }
                _ => {}
            }
        }
    }
    if let Some(p) = prediction {
        predict_pass(clients, p, &mut r);
    }
    r
}

/// Each binding must be the allocation function's candidate for its client at
/// some attempt, every earlier candidate being held by another client (a
/// collision moves a client to its next probe, CONTRACT.md "Allocation is a
/// pure function"); anything else is a misprediction.
fn predict_pass(clients: &[Client], p: &Prediction, r: &mut CheckReport) {
    let held_na: HashSet<u128> = clients
        .iter()
        .filter(|c| c.bound())
        .filter_map(|c| c.na)
        .collect();
    let held_pd: HashSet<u128> = clients
        .iter()
        .filter(|c| c.bound())
        .filter_map(|c| c.pd.map(|x| x.0))
        .collect();
    for (i, c) in clients.iter().enumerate() {
        if !c.bound() {
            continue;
        }
        let Some(server) = p.servers.get(usize::from(c.server)) else {
            continue;
        };
        let duid = client_duid(p.salt, i as u32);
        let cand = |attempt: u32| (p.predict)(server, &duid, attempt);
        let (first_na, first_pd) = cand(0);
        if let (Some(got), Some(_)) = (c.na, first_na) {
            r.predicted += 1;
            let found = (0..PROBES)
                .map(|k| cand(k).0)
                .try_fold((), |(), x| match x {
                    Some(x) if x == got => Err(true),
                    Some(x) if held_na.contains(&x) => Ok(()),
                    None => Ok(()),
                    Some(_) => Err(false),
                });
            if found != Err(true) {
                r.mispredicted += 1;
                r.note(format!(
                    "client {i}: got {}, allocation function says {}",
                    Ipv6Addr::from(got),
                    Ipv6Addr::from(first_na.unwrap_or(0))
                ));
            }
        }
        if let (Some(got), Some(_)) = (c.pd, first_pd) {
            r.predicted += 1;
            let found = (0..PROBES)
                .map(|k| cand(k).1)
                .try_fold((), |(), x| match x {
                    Some(x) if x == got => Err(true),
                    Some(x) if held_pd.contains(&x.0) => Ok(()),
                    None => Ok(()),
                    Some(_) => Err(false),
                });
            if found != Err(true) {
                r.mispredicted += 1;
                let w = first_pd.unwrap_or((0, 0));
                r.note(format!(
                    "client {i}: got prefix {}/{}, allocation function says {}/{}",
                    Ipv6Addr::from(got.0),
                    got.1,
                    Ipv6Addr::from(w.0),
                    w.1
                ));
            }
        }
    }
}

/// Probes the check follows (dhcp6d's allocator hashes 32 before scanning).
const PROBES: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> LinkPools {
        LinkPools {
            na: vec![(
                "2001:db8::100".parse().unwrap(),
                "2001:db8::1ff".parse().unwrap(),
            )],
            pd: vec![("2001:db8:100::".parse().unwrap(), 40, 56)],
        }
    }
    const NA: IaKinds = IaKinds {
        na: true,
        pd: false,
    };
    const BOTH: IaKinds = IaKinds { na: true, pd: true };

    fn addr(s: &str) -> u128 {
        s.parse::<Ipv6Addr>().unwrap().into()
    }

    /// The checker must catch what a broken server does: an address outside the
    /// pool, one address given to two clients, a prefix of the wrong length.
    #[test]
    fn check_flags_out_of_pool_duplicates_and_wrong_length() {
        let clients = [
            Client::holding(
                Some(addr("2001:db8::100")),
                Some((addr("2001:db8:100:100::"), 56)),
            ),
            Client::holding(
                Some(addr("2001:db8::100")),
                Some((addr("2001:db8:100:200::"), 60)),
            ),
            Client::holding(
                Some(addr("2001:db8::200")),
                Some((addr("2001:db8:200::"), 56)),
            ),
        ];
        let r = check(&clients, BOTH, Some(&pools()), false, None);
        assert_eq!(
            (r.bound, r.duplicates, r.out_of_pool, r.wrong_pd_len),
            (3, 1, 2, 1),
            "{r}"
        );
        assert!(!r.ok());
        let good = [Client::holding(Some(addr("2001:db8::101")), None)];
        assert!(check(&good, NA, Some(&pools()), false, None).ok());
    }

    /// CONTRACT.md: the address is the allocation function's until a collision moves
    /// it. A client on its second candidate is right only if the first is taken.
    #[test]
    fn prediction_accepts_collision_moves_only() {
        let salt = 7;
        let sid = vec![vec![0u8, 4, 1]];
        // Candidate k for client i is base + 10*i + k.
        let base = addr("2001:db8::100");
        let f = move |_: &[u8], duid: &[u8], k: u32| {
            let i = u32::from_be_bytes(duid[10..14].try_into().unwrap());
            (Some(base + 10 * u128::from(i) + u128::from(k)), None)
        };
        let p = Prediction {
            predict: &f,
            servers: &sid,
            salt,
        };
        // Client 1 sits on client 0's first candidate, so client 0 moved to its second.
        let moved = [
            Client::holding(Some(base + 1), None),
            Client::holding(Some(base), None),
        ];
        let r = check(&moved, NA, None, false, Some(&p));
        assert_eq!(
            (r.predicted, r.mispredicted),
            (2, 1),
            "client 1 holds base, not its own candidate: {r}"
        );
        let early = [
            Client::holding(Some(base + 1), None),
            Client::holding(Some(base + 10), None),
        ];
        let r = check(&early, NA, None, false, Some(&p));
        assert_eq!(
            r.mispredicted, 1,
            "client 0 on its 2nd candidate while the 1st is free: {r}"
        );
        let ok = [
            Client::holding(Some(base), None),
            Client::holding(Some(base + 10), None),
        ];
        let r = check(&ok, NA, None, false, Some(&p));
        assert_eq!((r.predicted, r.mispredicted), (2, 0), "{r}");
    }
}
