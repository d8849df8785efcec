//! The `dhcp6d` binary.
fn main() {
    eprintln!("dhcp6d: not yet wired");
    std::process::exit(1);
}
