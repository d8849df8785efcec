//! Correctness of what the server handed out, not only how fast: every address and
//! prefix inside a pool of the right link, no two clients sharing one, renewals
//! keeping the address, and (given a predictor) equal to the allocation function.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv6Addr;

use crate::lab::LinkPools;

use super::engine::Client;
use super::wire::IaKinds;

/// Predicts the address for client `index`: returns `None` when it cannot say.
pub type Predictor<'a> = &'a dyn Fn(u32) -> Option<u128>;

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
    predict: Option<Predictor>,
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
            if let Some(want) = predict.and_then(|f| f(i as u32)) {
                r.predicted += 1;
                if want != a {
                    r.mispredicted += 1;
                    r.note(format!(
                        "client {i}: got {}, allocation function says {}",
                        Ipv6Addr::from(a),
                        Ipv6Addr::from(want)
                    ));
                }
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
    r
}
