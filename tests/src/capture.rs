//! A tshark capture of DHCPv6 traffic, decoded after the fact.
//!
//! Capture on a [`Segment`](crate::netns::Segment)'s bridge (tshark puts it in
//! promiscuous mode, so the bridge sees port-to-port unicast too) to see every
//! message on the link.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{require, run, Proc};
use crate::wire::Dhcpv6;
use crate::{wait, Error, Result};

/// A running capture.
#[derive(Debug)]
pub struct Capture {
    proc: Proc,
    file: PathBuf,
    ns: String,
    ifname: String,
}

/// UDP port of the end-of-capture marker (discard): no DHCPv6 agent listens there.
const MARKER_PORT: u16 = 9;

/// One captured DHCPv6 datagram.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Capture time, seconds since the epoch.
    pub time: f64,
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// UDP source port.
    pub sport: u16,
    /// UDP destination port.
    pub dport: u16,
    /// The decoded message.
    pub dhcp: Dhcpv6,
}

impl Capture {
    /// Starts capturing UDP 546/547 on `ifname` in `ns`, into `dir/name.pcap`;
    /// returns once tshark reports it is capturing.
    pub fn start(ns: &Netns, ifname: &str, dir: &std::path::Path, name: &str) -> Result<Capture> {
        require("tshark")?;
        let file = dir.join(format!("{name}.pcap"));
        let argv: Vec<String> = [
            "tshark",
            "-n",
            "-i",
            ifname,
            "-f",
            "udp port 546 or udp port 547 or udp port 9",
            "-w",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([file.display().to_string()])
        .collect();
        let mut proc = Proc::spawn(
            name,
            Some(ns.name()),
            &argv,
            &[],
            &dir.join(format!("{name}.log")),
        )?;
        wait::until(
            &format!("tshark to capture on {ifname}"),
            Duration::from_secs(15),
            || {
                proc.check_running()?;
                Ok(proc.log().contains("Capturing on").then_some(()))
            },
        )?;
        Ok(Capture {
            proc,
            file,
            ns: ns.name().to_owned(),
            ifname: ifname.to_owned(),
        })
    }

    /// Sends a marker datagram through the captured interface and waits until
    /// it is in the file. The capture hands packets over in blocks (on a
    /// timeout), so stopping right away could lose the last exchange; once the
    /// marker is written, everything before it is too.
    fn flush(&mut self) -> Result<()> {
        let target = format!("/dev/udp/ff02::1%{}/{MARKER_PORT}", self.ifname);
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            "bash",
            "-c",
            &format!("echo harness-marker > '{target}'"),
        ])?;
        let file = self.file.display().to_string();
        let filter = format!("udp.dstport == {MARKER_PORT}");
        wait::until(
            "the capture marker to reach the file",
            Duration::from_secs(10),
            || {
                self.proc.check_running()?;
                // Reading a file dumpcap is still writing may hit a cut-off last record.
                let seen = run(&["tshark", "-n", "-r", &file, "-Y", &filter])
                    .map(|out| !out.trim().is_empty())
                    .unwrap_or(false);
                Ok(seen.then_some(()))
            },
        )
    }

    /// Stops the capture and decodes every DHCPv6 datagram in it, in order.
    pub fn finish(mut self) -> Result<Vec<Packet>> {
        self.flush()?;
        self.proc.stop_with(libc::SIGINT)?;
        let file = self.file.display().to_string();
        let out = run(&[
            "tshark",
            "-n",
            "-r",
            &file,
            "-T",
            "fields",
            "-Y",
            "dhcpv6",
            "-E",
            "separator=/t",
            "-e",
            "frame.time_epoch",
            "-e",
            "ipv6.src",
            "-e",
            "ipv6.dst",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "udp.payload",
        ])?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_line)
            .collect()
    }
}

fn parse_line(line: &str) -> Result<Packet> {
    let bad = |detail: &str| Error::Parse {
        what: format!("tshark line {line:?}"),
        detail: detail.to_owned(),
    };
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() < 6 {
        return Err(bad("expected 6 fields"));
    }
    let payload = hex::decode(f[5].replace(':', "")).map_err(|e| bad(&e.to_string()))?;
    Ok(Packet {
        time: f[0].parse().map_err(|_| bad("time"))?,
        src: f[1].parse().map_err(|_| bad("ipv6.src"))?,
        dst: f[2].parse().map_err(|_| bad("ipv6.dst"))?,
        sport: f[3].parse().map_err(|_| bad("udp.srcport"))?,
        dport: f[4].parse().map_err(|_| bad("udp.dstport"))?,
        dhcp: Dhcpv6::decode(&payload)?,
    })
}
