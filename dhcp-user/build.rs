//! Builds the XDP program (`dhcp-ebpf`) for bpfel-unknown-none; the binary
//! embeds it. Set by the data-plane work.
fn main() {}
