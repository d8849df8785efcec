//! Messages we encode, written into a pcap (Ethernet/IPv6/UDP with correct
//! checksums) and read back by Wireshark's dissector (`tshark`): no malformed
//! packet, no expert warning or error, and the field values we put in.
//! tshark is a prerequisite (Debian package `tshark`): without it this FAILS.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use dhcp6d::wire::{code, status, Encoder, MessageType, Xid};
use etherparse::PacketBuilder;

const CLIENT_DUID: [u8; 14] = [0, 1, 0, 1, 0x2a, 0xbb, 0xcc, 0xdd, 2, 0, 0, 0, 0, 1];
const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 0xaa];

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// One UDP datagram of DHCPv6 in an Ethernet frame, checksums computed.
fn frame(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xaa], [2, 0, 0, 0, 0, 1])
        .ipv6(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).unwrap();
    out
}

/// A classic pcap file (LINKTYPE_ETHERNET) with one record per frame.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut f = Vec::new();
    f.extend(0xa1b2_c3d4u32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(4u16.to_le_bytes());
    f.extend(0i32.to_le_bytes());
    f.extend(0u32.to_le_bytes());
    f.extend(65535u32.to_le_bytes());
    f.extend(1u32.to_le_bytes());
    for (i, fr) in frames.iter().enumerate() {
        f.extend((1_700_000_000u32 + i as u32).to_le_bytes());
        f.extend(0u32.to_le_bytes());
        let len = u32::try_from(fr.len()).unwrap();
        f.extend(len.to_le_bytes());
        f.extend(len.to_le_bytes());
        f.extend(fr);
    }
    std::fs::write(path, f).unwrap();
}

fn encode(build: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let mut enc = Encoder::new(&mut buf);
    build(&mut enc);
    let n = enc.finish().unwrap();
    buf.truncate(n);
    buf
}

fn advertise(enc: &mut Encoder<'_>, t: MessageType, xid: u32) {
    enc.message_header(t, Xid::new(xid)).unwrap();
    enc.client_id(&CLIENT_DUID).unwrap();
    enc.server_id(&SERVER_DUID).unwrap();
    let ia = enc.begin_ia_na(0x0102_0304, 1000, 2000).unwrap();
    let ad = enc
        .begin_ia_addr(a("2001:db8:1:1::77"), 3000, 4000)
        .unwrap();
    enc.status_code(status::SUCCESS, "assigned").unwrap();
    enc.end_option(ad).unwrap();
    enc.end_option(ia).unwrap();
    let pd = enc.begin_ia_pd(5, 1000, 2000).unwrap();
    enc.ia_prefix(3000, 4000, 56, a("2001:db8:100:4200::"))
        .unwrap();
    enc.end_option(pd).unwrap();
    enc.preference(255).unwrap();
    enc.dns_servers(&[a("2001:db8::53")]).unwrap();
    enc.domain_list(&["example.net", "lab.example.org"])
        .unwrap();
    enc.client_fqdn(0x01, "host.example.net").unwrap();
    enc.sol_max_rt(3600).unwrap();
    enc.inf_max_rt(7200).unwrap();
}

/// The frames: Advertise, Reply, Relay-repl (2 levels), Solicit, Reconfigure,
/// Leasequery and Leasequery-reply.
fn frames() -> Vec<Vec<u8>> {
    let server = a("fe80::aa");
    let client = a("fe80::1");
    let adv = encode(|e| advertise(e, MessageType::Advertise, 0x00abcdef));
    let reply = encode(|e| advertise(e, MessageType::Reply, 0x00123456));
    let relay_repl = encode(|e| {
        e.relay_header(
            MessageType::RelayRepl,
            1,
            a("2001:db8:2::1"),
            a("2001:db8:ffff::2"),
        )
        .unwrap();
        e.interface_id(b"outer-if").unwrap();
        let outer = e.begin_relay_msg().unwrap();
        e.relay_header(MessageType::RelayRepl, 0, a("2001:db8:3::1"), client)
            .unwrap();
        e.interface_id(b"inner-if").unwrap();
        e.relay_id(&[0, 2, 0, 0, 0x0c, 0x9c, 7]).unwrap();
        let inner = e.begin_relay_msg().unwrap();
        advertise(e, MessageType::Reply, 0x00777777);
        e.end_option(inner).unwrap();
        e.end_option(outer).unwrap();
    });
    let solicit = encode(|e| {
        e.message_header(MessageType::Solicit, Xid::new(0x00010203))
            .unwrap();
        e.client_id(&CLIENT_DUID).unwrap();
        let ia = e.begin_ia_na(1, 0, 0).unwrap();
        e.end_option(ia).unwrap();
        e.oro(&[code::DNS_SERVERS, code::DOMAIN_LIST, code::SOL_MAX_RT])
            .unwrap();
        e.elapsed_time(250).unwrap();
        e.rapid_commit().unwrap();
        e.reconf_accept().unwrap();
        e.user_class(&[b"gold"]).unwrap();
        e.vendor_class(3561, &[b"dslforum.org"]).unwrap();
        let vo = e.begin_vendor_opts(3561).unwrap();
        e.option(1, b"serial-42").unwrap();
        e.end_option(vo).unwrap();
    });
    let reconfigure = encode(|e| {
        e.message_header(MessageType::Reconfigure, Xid::new(0))
            .unwrap();
        e.server_id(&SERVER_DUID).unwrap();
        e.client_id(&CLIENT_DUID).unwrap();
        e.reconf_msg(MessageType::Renew).unwrap();
    });
    let leasequery = encode(|e| {
        e.message_header(MessageType::Leasequery, Xid::new(0x00000042))
            .unwrap();
        e.client_id(&SERVER_DUID).unwrap();
        let q = e.begin_lq_query(1, a("2001:db8:1:1::")).unwrap();
        e.ia_addr(a("2001:db8:1:1::77"), 0, 0).unwrap();
        e.end_option(q).unwrap();
    });
    let lq_reply = encode(|e| {
        e.message_header(MessageType::LeasequeryReply, Xid::new(0x00000042))
            .unwrap();
        e.server_id(&SERVER_DUID).unwrap();
        e.client_id(&SERVER_DUID).unwrap();
        let cd = e.begin_client_data().unwrap();
        e.client_id(&CLIENT_DUID).unwrap();
        e.ia_addr(a("2001:db8:1:1::77"), 3000, 4000).unwrap();
        e.clt_time(120).unwrap();
        e.end_option(cd).unwrap();
        e.lq_client_link(&[a("2001:db8:1:1::")]).unwrap();
    });
    vec![
        frame(server, client, 547, 546, &adv),
        frame(server, client, 547, 546, &reply),
        frame(server, a("2001:db8:ffff::2"), 547, 547, &relay_repl),
        frame(client, a("ff02::1:2"), 546, 547, &solicit),
        frame(server, client, 547, 546, &reconfigure),
        frame(a("2001:db8::9"), server, 547, 547, &leasequery),
        frame(server, a("2001:db8::9"), 547, 547, &lq_reply),
    ]
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark must be installed (Debian package `tshark`); this test does not skip");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pcap_path(name: &str, frames: &[Vec<u8>]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dhcp6d-wire-{}-{name}", std::process::id()));
    write_pcap(&path, frames);
    path
}

/// tshark's verdict on a pcap: its expert summary and whether any frame is malformed.
fn problems(pcap: &str) -> Vec<String> {
    let mut found = Vec::new();
    let verbose = tshark(&["-r", pcap, "-V", "-o", "udp.check_checksum:TRUE"]);
    for line in verbose.lines() {
        let l = line.trim();
        if l.contains("Malformed")
            || l.starts_with("[Expert Info (Error")
            || l.starts_with("[Expert Info (Warning")
            || l.contains("[Checksum Status: Bad]")
        {
            found.push(l.to_owned());
        }
    }
    let expert = tshark(&["-r", pcap, "-q", "-z", "expert,warn"]);
    found.extend(
        expert
            .lines()
            .filter(|l| l.starts_with("Errors (") || l.starts_with("Warns ("))
            .map(str::to_owned),
    );
    found
}

/// RFC 9915 §8, §9, §21: Wireshark's independent dissector reads every message
/// without malformed-packet or expert warnings/errors, with correct UDP checksums.
#[test]
fn rfc9915_21_tshark_reads_our_messages_cleanly() {
    let path = pcap_path("clean.pcap", &frames());
    let found = problems(path.to_str().unwrap());
    std::fs::remove_file(&path).unwrap();
    assert!(found.is_empty(), "tshark complaints: {found:#?}");
}

/// The check above can fail: options written raw with bad lengths (RFC 9915
/// §21.4 IA_NA shorter than 12, §21.8 Preference longer than 1, §21.13 Status
/// Code shorter than 2) are flagged by tshark.
#[test]
fn tshark_flags_malformed_options() {
    let bad = [
        (code::IA_NA, &[0u8, 0][..]),
        (code::PREFERENCE, &[0, 0]),
        (code::STATUS_CODE, &[0]),
    ];
    let frames: Vec<_> = bad
        .iter()
        .map(|&(c, data)| {
            let msg = encode(|e| {
                e.message_header(MessageType::Reply, Xid::new(1)).unwrap();
                e.option(c, data).unwrap();
            });
            frame(a("fe80::aa"), a("fe80::1"), 547, 546, &msg)
        })
        .collect();
    let path = pcap_path("malformed.pcap", &frames);
    let found = problems(path.to_str().unwrap());
    std::fs::remove_file(&path).unwrap();
    assert!(
        found.iter().any(|l| l.starts_with("Errors (")),
        "{found:#?}"
    );
    assert!(
        found.iter().filter(|l| l.contains("Malformed")).count() >= 3,
        "{found:#?}"
    );
}

/// RFC 9915 §21 field values as tshark reads them back, frame by frame.
#[test]
fn rfc9915_21_tshark_sees_the_values_we_encoded() {
    let path = pcap_path("values.pcap", &frames());
    let fields = [
        "dhcpv6.msgtype",
        "dhcpv6.xid",
        "dhcpv6.iaid",
        "dhcpv6.iaid.t1",
        "dhcpv6.iaid.t2",
        "dhcpv6.iaaddr.ip",
        "dhcpv6.iaaddr.pref_lifetime",
        "dhcpv6.iaaddr.valid_lifetime",
        "dhcpv6.iaprefix.pref_addr",
        "dhcpv6.iaprefix.pref_len",
        "dhcpv6.option_preference",
        "dhcpv6.dns_server",
        "dhcpv6.search_list_entry",
        "dhcpv6.client_domain",
        "dhcpv6.status_code",
        "dhcpv6.status_msg",
        "dhcpv6.hopcount",
        "dhcpv6.linkaddr",
        "dhcpv6.peeraddr",
        "dhcpv6.interface_id",
        "dhcpv6.elapsed_time",
        "dhcpv6.vendorclass.enterprise",
        "dhcpv6.vendoropts.enterprise",
        "dhcpv6.reconf_msg",
        "dhcpv6.lq_query",
        "dhcpv6.lq_query_link_address",
        "dhcpv6.clt_time",
        "dhcpv6.lq_client_link",
        "dhcpv6.duid.bytes",
    ];
    let mut args = vec![
        "-r",
        path.to_str().unwrap(),
        "-T",
        "fields",
        "-E",
        "separator=|",
    ];
    for f in &fields {
        args.extend(["-e", f]);
    }
    let out = tshark(&args);
    std::fs::remove_file(&path).unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 7);
    let get = |row: usize, field: &str| {
        let col = fields.iter().position(|f| *f == field).unwrap();
        rows[row][col]
    };
    let client = "000100012abbccdd020000000001";
    let server = "000300010200000000aa";
    // Advertise and Reply (frames 1, 2) carry the same options.
    for (row, t, xid) in [(0, "2", "0xabcdef"), (1, "7", "0x123456")] {
        assert_eq!(get(row, "dhcpv6.msgtype"), t);
        assert_eq!(get(row, "dhcpv6.xid"), xid);
        assert_eq!(get(row, "dhcpv6.iaid"), "01020304,00000005");
        assert_eq!(get(row, "dhcpv6.iaid.t1"), "1000,1000");
        assert_eq!(get(row, "dhcpv6.iaid.t2"), "2000,2000");
        assert_eq!(get(row, "dhcpv6.iaaddr.ip"), "2001:db8:1:1::77");
        assert_eq!(get(row, "dhcpv6.iaaddr.pref_lifetime"), "3000");
        assert_eq!(get(row, "dhcpv6.iaaddr.valid_lifetime"), "4000");
        assert_eq!(get(row, "dhcpv6.iaprefix.pref_addr"), "2001:db8:100:4200::");
        assert_eq!(get(row, "dhcpv6.iaprefix.pref_len"), "56");
        assert_eq!(get(row, "dhcpv6.option_preference"), "255");
        assert_eq!(get(row, "dhcpv6.dns_server"), "2001:db8::53");
        assert_eq!(
            get(row, "dhcpv6.search_list_entry"),
            "example.net.,lab.example.org."
        );
        assert_eq!(get(row, "dhcpv6.client_domain"), "host.example.net.");
        assert_eq!(get(row, "dhcpv6.status_code"), "0");
        assert_eq!(get(row, "dhcpv6.status_msg"), "assigned");
        assert_eq!(get(row, "dhcpv6.duid.bytes"), format!("{client},{server}"));
    }
    // Relay-repl ⊃ Relay-repl ⊃ Reply.
    assert_eq!(get(2, "dhcpv6.msgtype"), "13,13,7");
    assert_eq!(get(2, "dhcpv6.hopcount"), "1,0");
    assert_eq!(get(2, "dhcpv6.linkaddr"), "2001:db8:2::1,2001:db8:3::1");
    assert_eq!(get(2, "dhcpv6.peeraddr"), "2001:db8:ffff::2,fe80::1");
    assert_eq!(
        get(2, "dhcpv6.interface_id"),
        "6f757465722d6966,696e6e65722d6966"
    );
    assert_eq!(get(2, "dhcpv6.xid"), "0x777777");
    // Solicit: Elapsed Time 250 hundredths = 2500 ms as tshark shows it.
    assert_eq!(get(3, "dhcpv6.msgtype"), "1");
    assert_eq!(get(3, "dhcpv6.elapsed_time"), "2500");
    assert_eq!(get(3, "dhcpv6.vendorclass.enterprise"), "3561");
    assert_eq!(get(3, "dhcpv6.vendoropts.enterprise"), "3561");
    // Reconfigure asking for Renew (5).
    assert_eq!(get(4, "dhcpv6.msgtype"), "10");
    assert_eq!(get(4, "dhcpv6.reconf_msg"), "5");
    // Leasequery by address, and its reply with CLIENT_DATA / CLT_TIME / LQ_CLIENT_LINK.
    assert_eq!(get(5, "dhcpv6.msgtype"), "14");
    assert_eq!(get(5, "dhcpv6.lq_query"), "1");
    assert_eq!(get(5, "dhcpv6.lq_query_link_address"), "2001:db8:1:1::");
    assert_eq!(get(6, "dhcpv6.msgtype"), "15");
    assert_eq!(get(6, "dhcpv6.clt_time"), "120");
    assert_eq!(get(6, "dhcpv6.lq_client_link"), "2001:db8:1:1::");
    assert_eq!(get(6, "dhcpv6.iaaddr.valid_lifetime"), "4000");
}
