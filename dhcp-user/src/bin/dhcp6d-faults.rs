//! `dhcp6d` built with the `testing` feature, so that `DHCP6D_TEST_PANIC`
//! can make one of its threads panic (`dhcp6d::fault`): what the supervision
//! tests start. The same main as `dhcp6d`; never installed, and `dhcp6d`
//! itself is built without the feature.

#[path = "../main.rs"]
mod dhcp6d_main;

fn main() -> std::process::ExitCode {
    dhcp6d_main::main()
}
