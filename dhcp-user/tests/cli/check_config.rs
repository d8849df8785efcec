//! `dhcp6d check-config`: one exact error message per kind of mistake
//! (CONTRACT.md: "one clear message naming the file, the key and what is
//! wrong", exit status 2), and the summary of a good file (exit 0).

use std::path::PathBuf;
use std::process::Command;

/// A config file under cargo's per-test scratch directory.
fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_check_config");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Run check-config; returns (exit code, stdout, stderr).
fn check(path: &PathBuf) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dhcp6d"))
        .arg("check-config")
        .arg("-c")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Assert check-config rejects `text` with exactly `FILE: message`.
fn rejects(name: &str, text: &str, message: &str) {
    let path = write_config(name, text);
    let (code, stdout, stderr) = check(&path);
    assert_eq!(
        stderr,
        format!("dhcp6d: {}: {message}\n", path.display()),
        "{name}"
    );
    assert_eq!(code, 2, "{name}");
    assert_eq!(stdout, "", "{name}: nothing is printed for a bad file");
}

const SERVER: &str = "[server]\ninterfaces = [\"lo\"]\n";

#[test]
fn pool_outside_its_subnet() {
    rejects(
        "pool_outside",
        &format!(
            "{SERVER}[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\ninterface = \"lo\"\n\
             pools = [\"2001:db8:1:1::/65\", \"2001:db8:2::/65\"]\n"
        ),
        "subnet[0].pools[1]: 2001:db8:2::/65 is outside subnet prefix 2001:db8:1:1::/64",
    );
}

#[test]
fn overlapping_address_pools() {
    rejects(
        "pool_overlap",
        &format!(
            "{SERVER}[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\n\
             pools = [\"2001:db8:1:1::/65\", \"2001:db8:1:1::10-2001:db8:1:1::20\"]\n"
        ),
        "subnet[0].pools[1]: 2001:db8:1:1::10-2001:db8:1:1::20 overlaps subnet[0].pools[0] \
         2001:db8:1:1::/65",
    );
}

#[test]
fn overlapping_prefix_pools_across_subnets() {
    rejects(
        "pd_overlap",
        &format!(
            "{SERVER}[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\n\
             pd_pools = [ {{ prefix = \"2001:db8:100::/40\", delegated_length = 56 }} ]\n\
             [[subnet]]\nprefix = \"2001:db8:1:2::/64\"\n\
             pd_pools = [ {{ prefix = \"2001:db8:100:4000::/50\", delegated_length = 60 }} ]\n"
        ),
        "subnet[1].pd_pools[0]: 2001:db8:100:4000::/50 overlaps subnet[0].pd_pools[0] \
         2001:db8:100::/40",
    );
}

/// RFC 6853 §7: identical-prefix servers "must use the same algorithm and the
/// same policy"; without a shared key they would not.
#[test]
fn identical_prefix_without_allocation_key() {
    rejects(
        "identical_no_key",
        &format!("{SERVER}[redundancy]\nmodel = \"identical-prefix\"\n"),
        "redundancy.allocation_key: required when redundancy.model = \"identical-prefix\": \
         every server must use the same key so that they offer the same address to a client \
         (RFC 6853 §7)",
    );
}

#[test]
fn lifetimes_out_of_order() {
    rejects(
        "lifetimes_t1_t2",
        &format!("{SERVER}[lifetimes]\nt1 = 2500\nt2 = 2000\n"),
        "lifetimes.t2: t1 (2500) is greater than t2 (2000); required: t1 <= t2 <= preferred <= valid",
    );
    rejects(
        "lifetimes_subnet_override",
        &format!(
            "{SERVER}[lifetimes]\nvalid = 4000\n[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\n\
             preferred = 5000\n"
        ),
        "subnet[0].preferred: preferred (5000) is greater than valid (4000, from [lifetimes]); \
         required: t1 <= t2 <= preferred <= valid",
    );
}

#[test]
fn unknown_keys_name_their_path() {
    rejects(
        "unknown_server_key",
        "[server]\ninterfaces = [\"lo\"]\npreferance = 255\n",
        "server.preferance: unknown key (known keys here: interfaces, io, duid, preference, \
         rapid_commit, rebind_creates_bindings, state_dir, control_socket, metrics_listen, log_level, user)",
    );
    rejects(
        "unknown_pd_key",
        &format!(
            "{SERVER}[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\n\
             pd_pools = [ {{ prefix = \"2001:db8:100::/40\", length = 56 }} ]\n"
        ),
        "subnet[0].pd_pools[0].length: unknown key (known keys here: prefix, delegated_length)",
    );
}

#[test]
fn bad_hex_and_bad_addresses() {
    rejects(
        "bad_duid",
        "[server]\ninterfaces = [\"lo\"]\nduid = \"0001zz\"\n",
        "server.duid: \"0001zz\" is not hex (Invalid character 'z' at position 4)",
    );
    rejects(
        "bad_dns",
        &format!(
            "{SERVER}[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\n\
             dns_servers = [\"2001:db8::53\", \"2001:db8::5g\"]\n"
        ),
        "subnet[0].dns_servers[1]: \"2001:db8::5g\": invalid IPv6 address syntax",
    );
}

#[test]
fn empty_interfaces() {
    rejects(
        "no_interfaces",
        "[server]\ninterfaces = []\n",
        "server.interfaces: must list at least one interface",
    );
}

#[test]
fn subnet_interface_not_served() {
    rejects(
        "subnet_interface",
        &format!("{SERVER}[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\ninterface = \"eth9\"\n"),
        "subnet[0].interface: \"eth9\" is not listed in server.interfaces",
    );
}

#[test]
fn metrics_only_on_loopback() {
    rejects(
        "metrics_public",
        "[server]\ninterfaces = [\"lo\"]\nmetrics_listen = \"0.0.0.0:9547\"\n",
        "server.metrics_listen: 0.0.0.0:9547 is not a loopback address (the metrics endpoint \
         is loopback-only)",
    );
}

#[test]
fn not_toml_at_all() {
    let path = write_config("syntax", "[server\ninterfaces = [\"lo\"]\n");
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with(&format!(
            "dhcp6d: {}: not valid TOML: TOML parse error at line 1",
            path.display()
        )),
        "{stderr}"
    );
}

/// A file may be written for another host: a missing interface is a warning
/// here (exit 0) but `serve` refuses it (exit 2).
#[test]
fn missing_interface_warns_in_check_config_and_fails_serve() {
    let path = write_config(
        "missing_if",
        "[server]\ninterfaces = [\"lo\", \"nosuch9\"]\n",
    );
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("interfaces:      lo (ifindex 1), nosuch9 (not on this host)\n"));
    assert_eq!(
        stderr,
        format!(
            "warning: {}: server.interfaces[1]: interface \"nosuch9\" does not exist on this \
             host (`serve` would refuse to start here)\n",
            path.display()
        )
    );
    let out = Command::new(env!("CARGO_BIN_EXE_dhcp6d"))
        .args(["serve", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "dhcp6d: {}: server.interfaces[1]: interface \"nosuch9\" does not exist on this host\n",
            path.display()
        )
    );
}

#[test]
fn summary_of_a_good_file() {
    let path = write_config(
        "good",
        "[server]\ninterfaces = [\"lo\"]\npreference = 255\nduid = \"000100011c39cf88080027fe8f95\"\n\
         state_dir = \"/tmp/dhcp6d-x\"\ncontrol_socket = \"/tmp/dhcp6d-x/c.sock\"\n\
         [redundancy]\nmodel = \"split-prefix\"\n\
         [[subnet]]\nprefix = \"2001:db8:1:1::/64\"\ninterface = \"lo\"\npools = [\"2001:db8:1:1::/65\"]\n\
         pd_pools = [ { prefix = \"2001:db8:100::/40\", delegated_length = 56 } ]\n\
         dns_servers = [\"2001:db8::53\"]\ndomain_search = [\"example.net\"]\nt1 = 500\n",
    );
    let (code, stdout, stderr) = check(&path);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(
        stdout,
        format!(
            "{}: OK
interfaces:      lo (ifindex 1)
io:              xdp (XDP + AF_XDP)
server duid:     000100011c39cf88080027fe8f95
model:           split-prefix (RFC 6853 §6.1)
preference:      255
allocation key:  none
rapid commit:    off
rebind creates:  on
state dir:       /tmp/dhcp6d-x
control socket:  /tmp/dhcp6d-x/c.sock
metrics:         off
rate limit:      none
per client:      at most 16 addresses and prefixes
trusted relays:  any
max bindings:    no cap beyond the pools
subnets:         1
subnet[0] 2001:db8:1:1::/64 (on lo)
  lifetimes: t1 500 s, t2 2000 s, preferred 3000 s, valid 4000 s
  address pool 2001:db8:1:1::/65: 9223372036854775807 addresses (1 reserved anycast left out)
  prefix pool 2001:db8:100::/40 -> /56: 65536 prefixes
  dns servers: 2001:db8::53
  domain search: example.net
",
            path.display()
        )
    );
}

/// `link_prefixes` lists the other prefixes on a subnet's link (RFC 6853 §6.2:
/// the network must "use multiple prefixes on the interface(s) facing the
/// DHCPv6 clients"). A bad value, host bits, and an overlap with a subnet
/// prefix each name the exact key.
#[test]
fn link_prefixes_name_their_key() {
    let subnet = |link: &str| {
        format!(
            "{SERVER}[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\ninterface = \"lo\"\n\
             link_prefixes = [{link}]\n"
        )
    };
    rejects(
        "link_prefix_not_a_prefix",
        &subnet("\"2001:db8:1:5::/64\", \"2001:db8:1:6::\""),
        "subnet[0].link_prefixes[1]: \"2001:db8:1:6::\": invalid IP address syntax",
    );
    rejects(
        "link_prefix_not_a_string",
        &subnet("64"),
        "subnet[0].link_prefixes[0]: invalid type: integer `64`, expected IPv6 network address",
    );
    rejects(
        "link_prefix_host_bits",
        &subnet("\"2001:db8:1:5::1/64\""),
        "subnet[0].link_prefixes[0]: 2001:db8:1:5::1/64 has host bits set (did you mean \
         2001:db8:1:5::/64?)",
    );
    rejects(
        "link_prefix_is_own_prefix",
        &subnet("\"2001:db8:1:5::/64\", \"2001:db8:1:1::/64\""),
        "subnet[0].link_prefixes[1]: 2001:db8:1:1::/64 overlaps subnet[0].prefix \
         2001:db8:1:1::/64; link_prefixes are the other prefixes on this subnet's link, so \
         each is listed once and apart from the subnet's own prefix",
    );
    rejects(
        "link_prefix_is_another_subnet",
        &format!(
            "{}[[subnet]]\nprefix = \"2001:db8:1:5::/64\"\n",
            subnet("\"2001:db8:1:5::/64\"")
        ),
        "subnet[1].prefix: 2001:db8:1:5::/64 overlaps subnet[0].link_prefixes[0] \
         2001:db8:1:5::/64; a relayed client's subnet must be unambiguous",
    );
}

/// A good `link_prefixes` is shown in the summary, apart from the pools.
#[test]
fn link_prefixes_in_the_summary() {
    let path = write_config(
        "link_prefixes_good",
        &format!(
            "{SERVER}[redundancy]\nmodel = \"unique-prefix\"\n[[subnet]]\n\
             prefix = \"2001:db8:1:1::/64\"\ninterface = \"lo\"\npools = [\"2001:db8:1:1::/64\"]\n\
             link_prefixes = [\"2001:db8:1:5::/64\", \"2001:db8:1:f::/64\"]\n"
        ),
    );
    let (code, stdout, stderr) = check(&path);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(
        stdout.contains(
            "\n  also on this link (other servers): 2001:db8:1:5::/64, 2001:db8:1:f::/64\n"
        ),
        "{stdout}"
    );
}

/// `[options]` and the per-subnet overrides are checked against the ranges
/// RFC 9915 gives: §21.24 SOL_MAX_RT and §21.25 INF_MAX_RT "MUST be in this
/// range: 60 <= "value" <= 86400"; §21.23 the Information Refresh Time "MUST
/// NOT be smaller than IRT_MINIMUM" (600). Each error names its key.
#[test]
fn timer_options_out_of_rfc_range_name_their_key() {
    rejects(
        "sol_max_rt_low",
        &format!("{SERVER}[options]\nsol_max_rt = 59\n"),
        "options.sol_max_rt: 59 is outside 60..=86400 seconds (RFC 9915 §21.24)",
    );
    rejects(
        "inf_max_rt_high",
        &format!(
            "{SERVER}[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\ninterface = \"lo\"\n\
             inf_max_rt = 86401\n"
        ),
        "subnet[0].inf_max_rt: 86401 is outside 60..=86400 seconds (RFC 9915 §21.25)",
    );
    rejects(
        "irt_low",
        &format!("{SERVER}[options]\ninformation_refresh_time = 599\n"),
        "options.information_refresh_time: 599 is below IRT_MINIMUM (600 seconds, RFC 9915 \
         §21.23); 4294967295 means infinity",
    );
    rejects(
        "options_unknown_key",
        &format!("{SERVER}[options]\nsol_max = 600\n"),
        "options.sol_max: unknown key (known keys here: sol_max_rt, inf_max_rt, \
         information_refresh_time)",
    );
}

/// The edges of the ranges are accepted, infinity (§7.7: 0xffffffff) too, and
/// the summary shows what a subnet will send.
#[test]
fn timer_options_at_the_edges_are_accepted() {
    let path = write_config(
        "timers_ok",
        &format!(
            "{SERVER}[options]\nsol_max_rt = 60\ninf_max_rt = 86400\n\
             information_refresh_time = 4294967295\n\
             [[subnet]]\nprefix = \"2001:db8:1:1::/64\"\ninterface = \"lo\"\nsol_max_rt = 86400\n"
        ),
    );
    let (code, stdout, stderr) = check(&path);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(
        stdout.contains(
            "  sent on request: sol_max_rt 86400 s, inf_max_rt 86400 s, \
             information_refresh_time 4294967295 s\n"
        ),
        "{stdout}"
    );
}
