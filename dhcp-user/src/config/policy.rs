//! From the file's shape to the core's: [`Config::settings`].

use super::Config;
use crate::protocol::{Settings, SubnetSettings};

impl Config {
    /// The policy this configuration describes, with every subnet's
    /// lifetimes and option values resolved (its overrides over the
    /// `[lifetimes]` and `[options]` defaults). What the core is built from.
    pub fn settings(&self) -> Settings {
        Settings {
            preference: self.server.preference,
            rapid_commit: self.server.rapid_commit,
            rebind_creates_bindings: self.server.rebind_creates_bindings,
            model: self.redundancy.model,
            allocation_key: self.redundancy.allocation_key.map(|k| k.0),
            trusted_relays: self.limits.trusted_relays.clone(),
            bindings_per_client: self.limits.bindings_per_client,
            max_bindings: self.limits.max_bindings,
            messages_per_second_per_source: self.limits.messages_per_second_per_source,
            subnets: self
                .subnets
                .iter()
                .map(|s| SubnetSettings {
                    prefix: s.prefix,
                    link_prefixes: s.link_prefixes.clone(),
                    interface: s.interface.clone(),
                    pools: s.pools.clone(),
                    pd_pools: s
                        .pd_pools
                        .iter()
                        .map(|p| (p.prefix, p.delegated_length))
                        .collect(),
                    dns_servers: s.dns_servers.clone(),
                    domain_search: s.domain_search.clone(),
                    lifetimes: s.lifetimes(&self.lifetimes),
                    options: s.option_values(&self.options),
                })
                .collect(),
        }
    }
}
