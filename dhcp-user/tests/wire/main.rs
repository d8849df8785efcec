//! The DHCPv6 codec: differential against `dhcproto`, a proptest smoke run
//! of the fuzz properties, no allocation on decode/encode, and tshark's
//! reading of what we encode.

mod differential;
mod fuzz_smoke;
mod no_alloc;
mod tshark;
