//! The client simulator: one table of clients, one timer heap, one socket, one
//! thread. Each client runs the RFC 9915 client state machine far enough to get
//! (or renew, rebind, release) its bindings, with the §15 retransmission rules.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv6Addr;
use std::time::Instant;

use dhcproto::v6::MessageType;

use super::io::{Dest, Io};
use super::stats::{Counters, Histogram, Row};
use super::wire::{parse_reply, Fill, IaKinds, ReplyInfo, Template};

/// Which exchange a stage drives every client through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Solicit → Advertise → Request → Reply (or Solicit → Reply with Rapid Commit).
    Bind,
    /// Solicit → Advertise only.
    SolicitOnly,
    /// Renew → Reply for bound clients.
    Renew,
    /// Rebind → Reply for bound clients.
    Rebind,
    /// Release → Reply for bound clients.
    Release,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum St {
    #[default]
    Idle,
    /// Waiting out the random delay before its first Solicit (RFC 9915 §18.2.1).
    Delayed,
    Soliciting,
    Requesting,
    /// Waiting for the Reply to Renew, Rebind or Release.
    Busy,
    Bound,
    Done,
    Failed,
}

/// One simulated client.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client {
    st: St,
    xid: u32,
    /// When this client's stage exchange started (ns since the stage began).
    t_start: u64,
    /// First transmission of the current message (for Elapsed Time).
    t_first: u64,
    tries: u16,
    rt_ns: u64,
    gen: u32,
    pub server: u16,
    pub na: Option<u128>,
    pub pd: Option<(u128, u8)>,
    /// The binding seen before a Renew/Rebind (it must not change).
    pub prev_na: Option<u128>,
    pub released: bool,
}

impl Client {
    /// A client holding the given bindings from server index 0 (for checks and tests).
    pub fn holding(na: Option<u128>, pd: Option<(u128, u8)>) -> Client {
        Client {
            st: St::Bound,
            na,
            pd,
            ..Client::default()
        }
    }

    pub fn bound(&self) -> bool {
        matches!(self.st, St::Bound | St::Done) && !self.released
    }
}

/// Everything a stage needs to know.
#[derive(Clone, Debug)]
pub struct Params {
    pub ia: IaKinds,
    pub hops: u8,
    pub relay_link: Ipv6Addr,
    /// Every message goes to each of these (multicast group, or each server as a relay would).
    pub dests: Vec<Dest>,
    /// Clients started per second; 0 starts them all at once.
    pub rate: f64,
    /// RFC 9915 §15 retransmission; without it a lost exchange is a drop after `timeout_ns`.
    pub retransmit: bool,
    pub timeout_ns: u64,
    /// The stage ends at the latest after this long.
    pub max_ns: u64,
    pub rapid_commit: bool,
    /// Share of extra malformed/truncated/foreign-Server-ID messages (0..1).
    pub bad_share: f64,
    /// Share of extra binding-creating messages from one source (0..1).
    pub flood_share: f64,
    pub salt: u32,
    pub progress: bool,
    /// SOL_MAX_DELAY (RFC 9915 §7.6: 1 s): a client's first Solicit waits a
    /// uniform random time in [0, this] (§18.2.1). 0: send at once.
    pub sol_max_delay_ns: u64,
}

/// What a stage measured.
#[derive(Clone, Debug, Default)]
pub struct StageResult {
    pub total: Counters,
    pub hist: Histogram,
    pub rows: Vec<Row>,
    pub elapsed_s: f64,
    /// Time from the first send until the last client finished (all clients done).
    pub all_done_s: Option<f64>,
    pub unfinished: u64,
    pub tx_errors: u64,
    /// When the last lease (or answer, for solicit-only) arrived.
    pub last_lease_s: f64,
    /// Bad messages the server answered: malformed, truncated, foreign Server ID.
    pub bad_answered_by_kind: [u64; 3],
    /// Flood messages sent, and answered.
    pub flood_sent: u64,
    pub flood_answered: u64,
}

/// RFC 9915 §7.6 transmission and retransmission parameters, in ns (IRT, MRT, MRC).
fn timing(st: Stage, requesting: bool) -> (u64, u64, u16) {
    const S: u64 = 1_000_000_000;
    match st {
        Stage::Bind | Stage::SolicitOnly if requesting => (S, 30 * S, 10),
        Stage::Bind | Stage::SolicitOnly => (S, 3600 * S, 0),
        Stage::Renew | Stage::Rebind => (10 * S, 600 * S, 0),
        Stage::Release => (S, 0, 4),
    }
}

/// Marks the flood's DUIDs (apart from the clients' salt and the bad ones' `!salt`).
const FLOOD_SALT: u32 = 0x0f10_0d00;
/// The flood's one peer-address (relayed), outside the clients' fe80::1.. range.
pub const FLOOD_PEER: u128 = 0xfe80_0000_0000_0000_0000_0000_f100_d000;
/// The address the flood's Rebinds name (in no pool of ours).
const FOREIGN_NA: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);

pub struct Engine<'a> {
    pub clients: Vec<Client>,
    p: &'a Params,
    sock: &'a mut Io,
    servers: Vec<Vec<u8>>,
    solicit: Template,
    rebind: Template,
    /// Per server: Request, Renew, Release templates (built on first use).
    with_server: Vec<[Option<Template>; 3]>,
    bad: [Template; 3],
    /// Rebind naming a foreign address, Rapid Commit Solicit.
    flood: [Template; 2],
    flood_credit: f64,
    flood_sent: u64,
    flood_answered: u64,
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    rng: u64,
    stage: Stage,
    now: u64,
    sec: Counters,
    total: Counters,
    sec_hist: Histogram,
    hist: Histogram,
    bad_credit: f64,
    bad_next: u8,
    last_lease: u64,
    bad_answered_by_kind: [u64; 3],
}

impl<'a> Engine<'a> {
    pub fn new(p: &'a Params, sock: &'a mut Io, n: u32) -> Engine<'a> {
        let b = |t, sid: Option<&[u8]>, hints| {
            Template::build(t, p.ia, sid, hints, p.rapid_commit, p.hops, p.relay_link)
        };
        let foreign = [
            0u8, 4, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0,
            0xf0, 0xf0, 0xf0,
        ];
        let mut malformed = b(MessageType::Solicit, None, false);
        // Client Identifier (the first option, at 4 past the message header) claims
        // more bytes than the message holds.
        let at = usize::from(p.hops) * 38 + 6;
        malformed.bytes[at..at + 2].copy_from_slice(&0xfff0u16.to_be_bytes());
        let mut truncated = b(MessageType::Solicit, None, false);
        let keep = truncated.bytes.len() - 7;
        truncated.bytes.truncate(keep);
        Engine {
            clients: vec![Client::default(); n as usize],
            p,
            sock,
            servers: Vec::new(),
            solicit: b(MessageType::Solicit, None, false),
            rebind: b(MessageType::Rebind, None, true),
            with_server: Vec::new(),
            bad: [
                malformed,
                truncated,
                b(MessageType::Request, Some(&foreign), true),
            ],
            flood: [
                Template::build(
                    MessageType::Rebind,
                    p.ia,
                    None,
                    true,
                    false,
                    p.hops,
                    p.relay_link,
                ),
                Template::build(
                    MessageType::Solicit,
                    p.ia,
                    None,
                    false,
                    true,
                    p.hops,
                    p.relay_link,
                ),
            ],
            flood_credit: 0.0,
            flood_sent: 0,
            flood_answered: 0,
            heap: BinaryHeap::new(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ u64::from(p.salt),
            stage: Stage::Bind,
            now: 0,
            sec: Counters::default(),
            total: Counters::default(),
            sec_hist: Histogram::default(),
            hist: Histogram::default(),
            bad_credit: 0.0,
            bad_next: 0,
            last_lease: 0,
            bad_answered_by_kind: [0; 3],
        }
    }

    /// The server DUIDs seen, in the order first seen.
    pub fn servers(&self) -> &[Vec<u8>] {
        &self.servers
    }

    /// Take over the servers (and their bindings' owners) seen by an earlier engine.
    pub fn adopt_servers(&mut self, servers: Vec<Vec<u8>>) {
        self.with_server = servers.iter().map(|_| [None, None, None]).collect();
        self.servers = servers;
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*: fast, good enough for jitter and transaction ids.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// RAND of RFC 9915 §15: uniform in [-0.1, 0.1] (strictly positive for the first Solicit).
    fn jitter(&mut self, positive: bool) -> f64 {
        let u = (self.rand() >> 11) as f64 / (1u64 << 53) as f64;
        if positive {
            u * 0.1 + f64::EPSILON
        } else {
            u * 0.2 - 0.1
        }
    }

    /// Run one stage over every client; in the non-Bind stages only bound clients take part.
    pub fn run(&mut self, stage: Stage) -> StageResult {
        self.stage = stage;
        self.heap.clear();
        self.total = Counters::default();
        self.sec = Counters::default();
        self.hist.clear();
        self.sec_hist.clear();
        self.last_lease = 0;
        let members: Vec<u32> = (0..self.clients.len() as u32)
            .filter(|&i| {
                stage == Stage::Bind
                    || stage == Stage::SolicitOnly
                    || self.clients[i as usize].bound()
            })
            .collect();
        let t0 = Instant::now();
        let mut rows = Vec::new();
        let mut next_start = 0usize;
        let mut next_sec = 1_000_000_000u64;
        let mut all_done = None;
        let mut pending = members.len() as u64;
        let mut rx = [0u8; 1536];
        loop {
            self.now = t0.elapsed().as_nanos() as u64;
            let target = if self.p.rate > 0.0 {
                members
                    .len()
                    .min((self.p.rate * self.now as f64 / 1e9) as usize + 1)
            } else {
                members.len()
            };
            // Bounded work per turn so replies keep being read during a burst.
            let mut budget = 2048;
            while next_start < target && budget > 0 {
                let ci = members[next_start];
                self.start(ci);
                next_start += 1;
                budget -= 1;
            }
            while let Some(Reverse((at, ci, gen))) = self.heap.peek().copied() {
                if at > self.now {
                    break;
                }
                self.heap.pop();
                if self.clients[ci as usize].gen != gen {
                    continue;
                }
                if self.clients[ci as usize].st == St::Delayed {
                    self.clients[ci as usize].st = St::Soliciting;
                    self.clients[ci as usize].t_start = self.now;
                    self.begin_message(ci);
                } else {
                    pending -= u64::from(self.timeout(ci));
                }
            }
            self.sock.flush();
            let mut got = 0;
            for _ in 0..16 {
                let n = self.sock.recv_batch();
                for k in 0..n {
                    let d = self.sock.received(k);
                    let len = d.len().min(rx.len());
                    rx[..len].copy_from_slice(&d[..len]);
                    pending -= u64::from(self.on_datagram(&rx[..len]));
                }
                got += n;
                self.sock.flush();
                if n == 0 {
                    break;
                }
            }
            if self.now >= next_sec {
                self.push_row(&mut rows, next_sec);
                next_sec += 1_000_000_000;
            }
            if pending == 0 && next_start == members.len() {
                all_done = Some(self.now as f64 / 1e9);
                break;
            }
            if self.now > self.p.max_ns {
                break;
            }
            if got == 0 && (next_start == members.len() || self.p.rate > 0.0) {
                // Sleep until the next client start or timer is due (at most 1 ms).
                let now = t0.elapsed().as_nanos() as u64;
                let mut due = now + 1_000_000;
                if next_start < members.len() && self.p.rate > 0.0 {
                    due = due.min(((next_start as f64) / self.p.rate * 1e9) as u64);
                }
                if let Some(Reverse((at, _, _))) = self.heap.peek() {
                    due = due.min(*at);
                }
                if due > now + 20_000 {
                    self.sock.wait_readable_ns(due - now);
                }
            }
        }
        let end = t0.elapsed().as_nanos() as u64;
        if self.sec.sent > 0 || self.sec.received > 0 {
            self.push_row(&mut rows, end);
        }
        if self.p.progress {
            eprintln!();
        }
        StageResult {
            total: self.total,
            hist: self.hist.clone(),
            rows,
            elapsed_s: end as f64 / 1e9,
            all_done_s: all_done,
            unfinished: pending,
            tx_errors: self.sock.tx_errors(),
            last_lease_s: self.last_lease as f64 / 1e9,
            bad_answered_by_kind: self.bad_answered_by_kind,
            flood_sent: self.flood_sent,
            flood_answered: self.flood_answered,
        }
    }

    fn push_row(&mut self, rows: &mut Vec<Row>, at: u64) {
        let row = Row {
            t: at as f64 / 1e9,
            c: self.sec,
            p50_us: self.sec_hist.quantile(0.5),
            p99_us: self.sec_hist.quantile(0.99),
        };
        if self.p.progress {
            let t = &self.total;
            eprint!(
                "\r[{:6.1}s] started {:>8} leases {:>8} ({:>7}/s) drops {:>6} retx {:>6} p50 {:>6}us p99 {:>7}us   ",
                row.t, t.started, t.leases, row.c.leases, t.drops, t.retransmits, row.p50_us, row.p99_us
            );
        }
        rows.push(row);
        self.sec = Counters::default();
        self.sec_hist.clear();
    }

    fn start(&mut self, ci: u32) {
        self.sec.started += 1;
        self.total.started += 1;
        let now = self.now;
        let c = &mut self.clients[ci as usize];
        c.t_start = now;
        c.st = match self.stage {
            Stage::Bind | Stage::SolicitOnly => St::Soliciting,
            _ => St::Busy,
        };
        c.prev_na = c.na;
        if self.stage == Stage::Bind && self.p.sol_max_delay_ns > 0 {
            // RFC 9915 §18.2.1: "The first Solicit message from the client on
            // the interface SHOULD be delayed by a random amount of time between
            // 0 and SOL_MAX_DELAY", which desynchronises clients that start
            // together, as after a power failure. The latency of this client
            // counts from the Solicit; the avalanche's time to all bound counts
            // from the common start, delay included.
            let u = (self.rand() >> 11) as f64 / (1u64 << 53) as f64;
            let at = self.now + (u * self.p.sol_max_delay_ns as f64) as u64;
            let c = &mut self.clients[ci as usize];
            c.st = St::Delayed;
            c.gen = c.gen.wrapping_add(1);
            self.heap.push(Reverse((at, ci, c.gen)));
            return;
        }
        self.begin_message(ci);
    }

    /// New transaction for the client's current state; first transmission.
    fn begin_message(&mut self, ci: u32) {
        let xid = (self.rand() & 0xff_ffff) as u32;
        let requesting = self.clients[ci as usize].st == St::Requesting;
        let (irt, _, _) = timing(self.stage, requesting);
        let first_solicit = self.clients[ci as usize].st == St::Soliciting;
        let j = self.jitter(first_solicit);
        let c = &mut self.clients[ci as usize];
        c.xid = xid;
        c.t_first = self.now;
        c.tries = 0;
        c.rt_ns = (irt as f64 * (1.0 + j)) as u64;
        self.transmit(ci);
    }

    fn transmit(&mut self, ci: u32) {
        let c = self.clients[ci as usize];
        let gen = c.gen.wrapping_add(1);
        self.clients[ci as usize].gen = gen;
        self.clients[ci as usize].tries += 1;
        let wait = if self.p.retransmit {
            c.rt_ns
        } else {
            self.p.timeout_ns
        };
        self.heap.push(Reverse((self.now + wait, ci, gen)));
        let elapsed = ((self.now - c.t_first) / 10_000_000).min(0xffff) as u16;
        let fill = Fill {
            xid: c.xid,
            salt: self.p.salt,
            index: ci,
            elapsed_cs: elapsed,
            na: c.na.unwrap_or(0),
            pd: c.pd.unwrap_or((0, 0)),
        };
        let kind = match (c.st, self.stage) {
            (St::Soliciting, _) => None,
            (St::Requesting, _) => Some(0),
            (_, Stage::Renew) => Some(1),
            (_, Stage::Release) => Some(2),
            _ => None,
        };
        let server = usize::from(c.server);
        if let Some(k) = kind {
            if self.with_server[server][k].is_none() {
                let t = [
                    MessageType::Request,
                    MessageType::Renew,
                    MessageType::Release,
                ][k];
                let p = self.p;
                self.with_server[server][k] = Some(Template::build(
                    t,
                    p.ia,
                    Some(&self.servers[server]),
                    true,
                    false,
                    p.hops,
                    p.relay_link,
                ));
            }
        }
        let tpl = match kind {
            Some(k) => self.with_server[server][k].as_ref().expect("built above"),
            None if c.st == St::Soliciting => &self.solicit,
            None => &self.rebind,
        };
        for d in &self.p.dests {
            self.sock.queue(d, |buf| tpl.write(buf, &fill));
        }
        self.sec.sent += 1;
        self.total.sent += 1;
        if c.tries > 0 {
            self.sec.retransmits += 1;
            self.total.retransmits += 1;
        }
        self.send_bad();
        self.send_flood();
    }

    /// Interleave the configured share of flood messages: one source
    /// ([`FLOOD_PEER`] when relayed), a new DUID each.
    fn send_flood(&mut self) {
        if self.p.flood_share <= 0.0 {
            return;
        }
        self.flood_credit += self.p.flood_share / (1.0 - self.p.flood_share).max(0.01);
        while self.flood_credit >= 1.0 {
            self.flood_credit -= 1.0;
            let fill = Fill {
                xid: (self.rand() & 0xff_ffff) as u32,
                salt: self.p.salt ^ FLOOD_SALT,
                index: self.flood_sent as u32,
                elapsed_cs: 0,
                // Not ours: the Rebind gets it back at lifetimes 0 and a new binding.
                na: u128::from(FOREIGN_NA),
                pd: (0, 0),
            };
            let tpl = &self.flood[(self.flood_sent % 2) as usize];
            for d in &self.p.dests {
                self.sock
                    .queue(d, |buf| tpl.write_as(buf, &fill, FLOOD_PEER));
            }
            self.flood_sent += 1;
        }
    }

    /// Interleave the configured share of bad messages with the good ones.
    fn send_bad(&mut self) {
        if self.p.bad_share <= 0.0 {
            return;
        }
        self.bad_credit += self.p.bad_share / (1.0 - self.p.bad_share).max(0.01);
        while self.bad_credit >= 1.0 {
            self.bad_credit -= 1.0;
            let which = usize::from(self.bad_next % 3);
            self.bad_next = self.bad_next.wrapping_add(1);
            // The kind rides in the top bits of the client index, so answers can be told apart.
            let index = (which as u32) << 30 | (self.rand() & 0xffff) as u32;
            let fill = Fill {
                xid: (self.rand() & 0xff_ffff) as u32,
                salt: !self.p.salt,
                index,
                elapsed_cs: 0,
                na: 0,
                pd: (0, 0),
            };
            let tpl = &self.bad[which];
            for d in &self.p.dests {
                self.sock.queue(d, |buf| tpl.write(buf, &fill));
            }
            self.sec.bad_sent += 1;
            self.total.bad_sent += 1;
        }
    }

    /// A retransmission timer fired. Returns true when the client is finished (dropped).
    fn timeout(&mut self, ci: u32) -> bool {
        let c = self.clients[ci as usize];
        let (_, mrt, mrc) = timing(self.stage, c.st == St::Requesting);
        if !self.p.retransmit || (mrc > 0 && c.tries >= mrc) {
            if self.p.retransmit && c.st == St::Requesting {
                // RFC 9915 §18.2.2: no answer to Request after REQ_MAX_RC: back to Solicit.
                self.clients[ci as usize].st = St::Soliciting;
                self.begin_message(ci);
                return false;
            }
            self.sec.drops += 1;
            self.total.drops += 1;
            self.clients[ci as usize].st = St::Failed;
            return true;
        }
        // RFC 9915 §15: RT = 2*RTprev + RAND*RTprev, capped by MRT + RAND*MRT.
        let j = self.jitter(false);
        let mut rt = (c.rt_ns as f64 * (2.0 + j)) as u64;
        if mrt > 0 && rt > mrt {
            rt = (mrt as f64 * (1.0 + j)) as u64;
        }
        self.clients[ci as usize].rt_ns = rt;
        self.transmit(ci);
        false
    }

    /// Handle one received datagram. Returns true when it finished a client.
    fn on_datagram(&mut self, d: &[u8]) -> bool {
        self.sec.received += 1;
        self.total.received += 1;
        let Some(r) = parse_reply(d) else {
            self.unexpected();
            return false;
        };
        let Some((salt, index)) = r.client else {
            self.unexpected();
            return false;
        };
        if salt == self.p.salt ^ FLOOD_SALT {
            self.flood_answered += 1;
            return false;
        }
        if salt == !self.p.salt {
            self.bad_answered_by_kind[(index >> 30).min(2) as usize] += 1;
            self.sec.bad_answered += 1;
            self.total.bad_answered += 1;
            return false;
        }
        if salt != self.p.salt
            || index as usize >= self.clients.len()
            || self.clients[index as usize].xid != r.xid
        {
            self.unexpected();
            return false;
        }
        self.on_reply(index, &r, d)
    }

    fn unexpected(&mut self) {
        self.sec.unexpected += 1;
        self.total.unexpected += 1;
    }

    fn has_all(&self, r: &ReplyInfo) -> bool {
        (!self.p.ia.na || r.na.is_some()) && (!self.p.ia.pd || r.pd.is_some())
    }

    fn on_reply(&mut self, ci: u32, r: &ReplyInfo, d: &[u8]) -> bool {
        let st = self.clients[ci as usize].st;
        match (st, r.msg_type) {
            (St::Soliciting, 2) => {
                if !self.has_all(r) || r.server_id.is_none() {
                    // RFC 9915 §18.2.9: ignore an Advertise without the addresses; keep soliciting.
                    self.count_nak();
                    return false;
                }
                let (a, b) = r.server_id.expect("checked");
                let sid = &d[a..b];
                let server = match self.servers.iter().position(|s| s == sid) {
                    Some(i) => i,
                    None => {
                        self.servers.push(sid.to_vec());
                        self.with_server.push([None, None, None]);
                        self.servers.len() - 1
                    }
                };
                let c = &mut self.clients[ci as usize];
                c.server = server as u16;
                c.na = r.na;
                c.pd = r.pd;
                if self.stage == Stage::SolicitOnly {
                    return self.finish(ci, St::Done, true);
                }
                self.clients[ci as usize].st = St::Requesting;
                self.begin_message(ci);
                false
            }
            (St::Soliciting, 7) if r.rapid_commit => self.bound_reply(ci, r, d),
            (St::Requesting, 7) => self.bound_reply(ci, r, d),
            (St::Busy, 7) if self.stage == Stage::Release => {
                if r.status.is_some_and(|s| s != 0) {
                    self.count_nak();
                }
                let c = &mut self.clients[ci as usize];
                c.released = true;
                c.na = None;
                c.pd = None;
                self.finish(ci, St::Done, false)
            }
            (St::Busy, 7) => self.bound_reply(ci, r, d),
            _ => {
                // A second server's Advertise, a duplicate, or a late reply.
                self.unexpected();
                false
            }
        }
    }

    fn count_nak(&mut self) {
        self.sec.nak += 1;
        self.total.nak += 1;
    }

    fn bound_reply(&mut self, ci: u32, r: &ReplyInfo, d: &[u8]) -> bool {
        if !self.has_all(r) {
            self.count_nak();
            return self.finish(ci, St::Failed, false);
        }
        if let Some((a, b)) = r.server_id {
            // Rebind may be answered by another server: remember who holds the binding now.
            if let Some(i) = self.servers.iter().position(|s| s[..] == d[a..b]) {
                self.clients[ci as usize].server = i as u16;
            }
        }
        let c = &mut self.clients[ci as usize];
        c.na = r.na;
        c.pd = r.pd;
        self.finish(ci, St::Bound, true)
    }

    fn finish(&mut self, ci: u32, st: St, lease: bool) -> bool {
        let c = &mut self.clients[ci as usize];
        c.st = st;
        c.gen = c.gen.wrapping_add(1);
        let us = (self.now - c.t_start) / 1000;
        if st != St::Failed {
            self.sec_hist.record(us);
            self.hist.record(us);
            self.sec.done += 1;
            self.total.done += 1;
        }
        if lease {
            self.last_lease = self.now;
            self.sec.leases += 1;
            self.total.leases += 1;
        }
        true
    }
}
