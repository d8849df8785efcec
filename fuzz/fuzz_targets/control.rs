//! The control socket's answer to one request line, against a real binding
//! table. The input builds a small `Bindings` (commits, releases, declines,
//! some bindings ended but not swept yet), then either a raw request line or
//! a request built field by field, each field absent, null, valid or
//! malformed. The line goes to `control::server::respond`, what the control
//! server calls for every line it reads (it writes the answer's JSON and a
//! newline); the view's `leases` is `control::leases::page` over the table,
//! as `serve`'s view does. Whatever the bytes:
//! - no panic, and every answer is counted: an error answer is exactly
//!   `{"error": STRING}` and adds one to `control.socket.bad_request`, any
//!   other answer adds nothing;
//! - a line that is not UTF-8, not a JSON object, or names an unknown key or
//!   command gets an error; a built request gets one iff a field is
//!   malformed, `stats` has a filter, or `after` is another run's cursor;
//! - a `leases` answer has `limit` = the request's clamped to 10,000 and at
//!   most that many entries; each is a binding of the table in force now
//!   (read with `Bindings::for_each`, not `scan`) that matches every filter
//!   (checked here, not with `LeaseFilter::matches`); `total` counts the
//!   table's matches; a page `after` a cursor is a stretch of the full list;
//! - following `next` from the first page lists every matching binding
//!   exactly once, in the order of one big page, and ends with
//!   `truncated: false, next: null`; every `next` reads back as itself;
//! - a raw line accepted as `leases` is answered like its `to_json` form.
#![no_main]

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use dhcp6d::control::leases;
use dhcp6d::control::server::{respond, Refused, ServerView};
use dhcp6d::control::{LeaseCursor, LeaseFilter, LeaseList, Request, StatsSnapshot};
use dhcp6d::protocol::bindings::{Bindings, ClientKey, PoolSpans, ScanPos};
use dhcp6d::protocol::{LeaseKind, LeaseOp, Timestamp};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

/// When the table's bindings are committed.
const T0: u64 = 1_000;
/// When `leases` is asked: bindings valid until 1_001..=1_256 from `T0`, so
/// some have ended (not swept yet) and must not be listed.
const NOW: u64 = 1_100;
const RUN: u32 = 0x5eed_0001;
const CAP: u64 = 10_000;
const KEYS: [&str; 6] = ["command", "duid", "address", "prefix", "limit", "after"];
/// Clients of the table; one is a prefix of another (the filter is equality).
const DUIDS: [&[u8]; 4] = [
    &[0, 1],
    &[0, 1, 0, 1, 0x5e, 0xed],
    &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
    &[
        0, 4, 0xc1, 0x1e, 0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2a,
    ],
];
/// A DUID that holds nothing.
const STRANGER: &[u8] = &[0, 2, 0, 0, 0, 9, 1];

/// One input byte at a time (`arbitrary` reads zeros once the input runs out).
trait Byte {
    fn u8(&mut self) -> u8;
}

impl Byte for Unstructured<'_> {
    fn u8(&mut self) -> u8 {
        self.arbitrary().unwrap_or(0)
    }
}

/// The control server's view of nothing but a binding table.
struct View(Bindings);

impl ServerView for View {
    fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::default()
    }
    fn leases(&self, filter: &LeaseFilter) -> Result<LeaseList, String> {
        leases::page(&self.0, filter, NOW, RUN)
    }
}

fn na_addr(b: u8) -> u128 {
    let net = if b & 0x80 != 0 {
        0x2001_0db8_0002_0002
    } else {
        0x2001_0db8_0001_0001
    };
    (net << 64) | u128::from(b & 0x1f)
}

const PD_BASE: u128 = 0x2001_0db8_0100 << 80;

/// A delegated prefix: /48, /56, /60 or /64, 8 of each, some nested.
fn pd_prefix(b: u8) -> (u128, u8) {
    let len = [48u8, 56, 60, 64][usize::from(b >> 6)];
    (PD_BASE + (u128::from(b & 7) << (128 - u32::from(len))), len)
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

/// Build the table from the input; returns it.
fn build(input: &mut Unstructured) -> Bindings {
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    for _ in 0..input.u8() % 40 {
        let (op, at, life) = (input.u8(), input.u8(), input.u8());
        let duid = DUIDS[usize::from(op >> 2) & 3];
        let kind = if op & 0x10 == 0 {
            LeaseKind::Na
        } else {
            LeaseKind::Pd
        };
        let key = ClientKey {
            duid,
            iaid: u32::from(op >> 5 & 3),
            kind,
        };
        let (addr, len) = match kind {
            LeaseKind::Na => (na_addr(at), 128),
            LeaseKind::Pd => pd_prefix(at),
        };
        let addr = Ipv6Addr::from(addr);
        let until = T0 + 1 + u64::from(life);
        let t0 = Timestamp(T0);
        match op & 3 {
            0 | 1 => {
                let _ = b.commit(&key, addr, len, 0, until, until, t0);
            }
            2 => {
                let _ = b.release(&key, addr, t0);
            }
            _ => {
                let _ = b.decline(&key, addr, t0, until);
            }
        }
    }
    b
}

/// A binding as `leases` must list it, made here from `for_each`'s records.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    addr: u128,
    len: u8,
    duid: Vec<u8>,
    /// (kind, lease, duid, iaid, preferred_until, valid_until, state) as JSON.
    entry: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every binding and quarantine entry in force at `NOW`.
fn in_force(b: &Bindings) -> Vec<Held> {
    let mut all = Vec::new();
    b.for_each(|r| {
        if r.valid_until <= NOW {
            return;
        }
        let (kind, lease) = match r.kind {
            LeaseKind::Na => ("na", r.addr.to_string()),
            LeaseKind::Pd => ("pd", format!("{}/{}", r.addr, r.prefix_len)),
        };
        let state = if r.op == LeaseOp::Decline {
            "declined"
        } else {
            "active"
        };
        let entry = json!({
            "kind": kind, "lease": lease, "duid": hex(r.duid()), "iaid": r.iaid,
            "preferred_until": r.preferred_until, "valid_until": r.valid_until,
            "state": state,
        });
        all.push(Held {
            addr: u128::from(r.addr),
            len: r.prefix_len,
            duid: r.duid().to_vec(),
            entry: entry.to_string(),
        });
    });
    all
}

/// The filters of a `leases` request, as this target understands them.
#[derive(Clone, Debug, Default)]
struct Filters {
    duid: Option<Vec<u8>>,
    address: Option<u128>,
    prefix: Option<(u128, u8)>,
}

impl Filters {
    fn of(f: &LeaseFilter) -> Filters {
        Filters {
            duid: f.duid.clone(),
            address: f.address.map(u128::from),
            prefix: f.prefix.map(|p| (u128::from(p.addr()), p.prefix_len())),
        }
    }

    fn matches(&self, h: &Held) -> bool {
        let m = mask(h.len);
        self.duid.as_ref().is_none_or(|d| *d == h.duid)
            && self.address.is_none_or(|a| a & m == h.addr & m)
            && self
                .prefix
                .is_none_or(|(p, l)| h.len >= l && h.addr & mask(l) == p & mask(l))
    }
}

fn is_error(v: &Value) -> bool {
    v.get("error").is_some()
}

/// Answer one line as the server does, and check the answer is counted.
fn ask(view: &View, refused: &Refused, line: &[u8]) -> Value {
    let before = refused.snapshot().socket.bad_request;
    let v = respond(line, view, refused);
    let after = refused.snapshot().socket.bad_request;
    if is_error(&v) {
        let o = v.as_object().unwrap();
        assert!(
            o.len() == 1 && o["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{v}"
        );
        assert_eq!(after, before + 1, "an error answer is counted: {v}");
    } else {
        assert_eq!(after, before, "only error answers are counted: {v}");
    }
    v
}

/// A `leases` answer's entries, checked for shape.
fn page(v: &Value) -> (LeaseList, Vec<String>) {
    let o = v.as_object().unwrap_or_else(|| panic!("{v}"));
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["leases", "limit", "next", "total", "truncated"],
        "{v}"
    );
    let list: LeaseList = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    let entries = o["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e: BTreeMap<String, Value> = serde_json::from_value(e.clone()).unwrap();
            serde_json::to_string(&e).unwrap()
        })
        .collect();
    if let Some(next) = &list.next {
        let c: LeaseCursor = next.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&c.to_string(), next, "a cursor reads back as itself");
        assert_eq!(c.run, RUN);
    }
    (list, entries)
}

/// Entries as `Held::entry` spells them (keys sorted).
fn spelled(h: &Held) -> String {
    let e: BTreeMap<String, Value> = serde_json::from_str(&h.entry).unwrap();
    serde_json::to_string(&e).unwrap()
}

fn leases_line(base: &Map<String, Value>, limit: u64, after: Option<&str>) -> Vec<u8> {
    let mut o = base.clone();
    o.insert("limit".into(), limit.into());
    match after {
        Some(c) => o.insert("after".into(), c.into()),
        None => o.remove("after"),
    };
    let mut line = Value::Object(o).to_string().into_bytes();
    line.push(b'\n');
    line
}

/// Check one valid `leases` answer (for `filters`, page size `limit`
/// requested, `after` given or not) against the table, then walk every page.
fn check_leases(
    (view, refused, table): (&View, &Refused, &[Held]),
    filters: &Filters,
    base: &Map<String, Value>,
    limit: u64,
    after: bool,
    v: &Value,
) {
    let (list, entries) = page(v);
    let applied = limit.min(CAP);
    let want: Vec<String> = table
        .iter()
        .filter(|h| filters.matches(h))
        .map(spelled)
        .collect();
    assert_eq!(list.limit, applied, "{v}");
    assert!(
        entries.len() as u64 <= applied,
        "{} entries over the limit {applied}",
        entries.len()
    );
    assert_eq!(list.total, want.len() as u64, "total: {v}\nwant {want:?}");
    // The whole list, in the walk's order, as one page.
    let all = ask(view, refused, &leases_line(base, CAP, None));
    let (all_list, all) = page(&all);
    assert!(!all_list.truncated && all_list.next.is_none());
    let mut sorted = all.clone();
    sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        sorted, want_sorted,
        "the listed bindings are those that match"
    );
    // This page is a stretch of it: from the start unless `after` was given.
    let start = match entries.first() {
        Some(first) => all.iter().position(|e| e == first).expect("listed"),
        None if !after => 0,
        None => all.len(),
    };
    if !after {
        assert_eq!(entries.len() as u64, applied.min(all.len() as u64), "{v}");
        assert_eq!(start, 0);
    }
    assert_eq!(
        &all[start..start + entries.len()],
        &entries[..],
        "a page is a stretch"
    );
    let rest = all.len() - start - entries.len();
    if !entries.is_empty() || !after {
        assert_eq!(list.truncated, rest > 0, "truncated: {v}");
    }
    assert_eq!(
        list.next.is_some(),
        list.truncated && !entries.is_empty() || list.truncated && after
    );
    // Walk from the first page.
    let size = applied.max(1);
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..=all.len() {
        let v = ask(view, refused, &leases_line(base, size, cursor.as_deref()));
        assert!(!is_error(&v), "a page of the walk: {v}");
        let (l, e) = page(&v);
        assert!(e.len() as u64 <= size);
        walked.extend(e);
        match l.next {
            Some(c) => {
                assert!(l.truncated);
                cursor = Some(c);
            }
            None => {
                assert!(!l.truncated, "{v}");
                assert_eq!(walked, all, "the walk lists every binding once, in order");
                return;
            }
        }
    }
    panic!(
        "the walk did not end after {} pages of {size}",
        all.len() + 1
    );
}

/// One field of a built request: absent, null, valid or malformed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    Absent,
    Null,
    Valid,
    Bad,
}

fn pick(b: u8) -> Pick {
    [Pick::Absent, Pick::Null, Pick::Valid, Pick::Bad][usize::from(b & 3)]
}

fn choose<T: Clone>(options: &[T], b: u8) -> T {
    options[usize::from(b) % options.len()].clone()
}

fn an_address(b: u8, c: u8) -> u128 {
    match c & 3 {
        0 => na_addr(b),
        1 => pd_prefix(b).0 | u128::from(c >> 2),
        2 => PD_BASE | u128::from(b) << 64 | u128::from(c),
        _ => u128::from(b) << 120,
    }
}

fn built(view: &View, refused: &Refused, table: &[Held], input: &mut Unstructured) {
    let mut o = Map::new();
    let mut bad = false;
    let mut filters = Filters::default();
    let mut limit = None;
    let mut after = None;
    let mut filtered = false;
    let command = input.u8();
    match command & 3 {
        0 | 1 => o.insert("command".into(), "leases".into()),
        2 => o.insert("command".into(), "stats".into()),
        _ => {
            bad = true;
            let c: Value = choose(
                &[
                    json!("lease"),
                    json!("Leases"),
                    json!(""),
                    json!(1),
                    json!(null),
                    json!(["leases"]),
                ],
                command >> 2,
            );
            o.insert("command".into(), c)
        }
    };
    let stats = command & 3 == 2;
    if command & 0x80 != 0 {
        // No command at all.
        o.remove("command");
        bad = true;
    }
    for key in &KEYS[1..] {
        let (how, x, y) = (pick(input.u8()), input.u8(), input.u8());
        let value = match how {
            Pick::Absent => continue,
            Pick::Null => Value::Null,
            Pick::Valid => {
                filtered = true;
                match *key {
                    "duid" => {
                        let d = if x & 4 != 0 {
                            STRANGER
                        } else {
                            DUIDS[usize::from(x & 3)]
                        };
                        filters.duid = Some(d.to_vec());
                        let mut s = hex(d);
                        if x & 8 != 0 {
                            s = s.to_uppercase();
                        }
                        if x & 16 != 0 {
                            let pairs: Vec<String> = d.iter().map(|b| format!("{b:02x}")).collect();
                            s = pairs.join(":");
                        }
                        s.into()
                    }
                    "address" => {
                        let a = an_address(x, y);
                        filters.address = Some(a);
                        Ipv6Addr::from(a).to_string().into()
                    }
                    "prefix" => {
                        let a = an_address(x, y);
                        let len = [0u8, 32, 40, 48, 52, 56, 60, 62, 64, 100, 128]
                            [usize::from(y >> 4) % 11];
                        filters.prefix = Some((a, len));
                        format!("{}/{len}", Ipv6Addr::from(a)).into()
                    }
                    "limit" => {
                        let n = match x >> 5 {
                            0..=5 => u64::from(x & 7),
                            6 => choose(&[CAP - 1, CAP, CAP + 1, 10_000_000], y),
                            _ => u64::MAX,
                        };
                        limit = Some(n);
                        n.into()
                    }
                    _ => {
                        let at = ScanPos {
                            shard: u32::from(x & 63),
                            slot: if y == 255 {
                                ScanPos::MAX_SLOT
                            } else {
                                u32::from(y & 3)
                            },
                        };
                        let run = if x & 0x80 != 0 { RUN ^ 1 } else { RUN };
                        if run != RUN && !stats {
                            // Another run's cursor: refused by the view.
                            bad = true;
                        }
                        after = Some(at);
                        LeaseCursor { run, at }.to_string().into()
                    }
                }
            }
            Pick::Bad => {
                bad = true;
                let options: &[Value] = match *key {
                    "duid" => &[
                        json!(""),
                        json!(":"),
                        json!("abc"),
                        json!("0g"),
                        json!(1),
                        json!([0, 1]),
                        json!("0x01"),
                    ],
                    "address" => &[
                        json!("2001:db8::g"),
                        json!("1.2.3.4"),
                        json!(""),
                        json!("::1/128"),
                        json!(7),
                        json!(true),
                    ],
                    "prefix" => &[
                        json!("2001:db8::/129"),
                        json!("2001:db8::"),
                        json!("x/64"),
                        json!(""),
                        json!("::/-1"),
                        json!(64),
                    ],
                    "limit" => &[
                        json!(-1),
                        json!(1.5),
                        json!("5"),
                        json!(18_446_744_073_709_551_616.0),
                        json!(true),
                    ],
                    _ => &[
                        json!("x"),
                        json!("5eed0001-64-0"),
                        json!("5eed0001-0-67108864"),
                        json!("5eed0001-1"),
                        json!(""),
                        json!(3),
                        json!("5eed0001-0-0-0"),
                    ],
                };
                choose(options, x)
            }
        };
        o.insert((*key).into(), value);
    }
    if input.u8() & 0x40 != 0 {
        o.insert(
            choose(&["Command", "limits", "filter", ""], input.u8()).into(),
            json!(1),
        );
        bad = true;
    }
    let want_error = bad || (stats && filtered);
    let mut line = Value::Object(o.clone()).to_string().into_bytes();
    line.push(b'\n');
    let v = ask(view, refused, &line);
    assert_eq!(
        is_error(&v),
        want_error,
        "{}: {v}",
        String::from_utf8_lossy(&line)
    );
    if want_error {
        return;
    }
    if stats {
        assert!(
            v.get("control").is_some() && v.get("leases").is_some(),
            "{v}"
        );
        return;
    }
    o.remove("limit");
    o.remove("after");
    let limit = limit.unwrap_or(CAP);
    check_leases(
        (view, refused, table),
        &filters,
        &o,
        limit,
        after.is_some(),
        &v,
    );
}

/// A raw line: whatever it is, the answer follows from what it says.
fn raw(view: &View, refused: &Refused, table: &[Held], line: &[u8]) {
    let v = ask(view, refused, line);
    let json = std::str::from_utf8(line)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(t).ok());
    let Some(Value::Object(o)) = json else {
        assert!(is_error(&v), "not a JSON object, yet answered {v}");
        return;
    };
    if o.keys().any(|k| !KEYS.contains(&k.as_str()))
        || !matches!(
            o.get("command").and_then(Value::as_str),
            Some("stats" | "leases")
        )
    {
        assert!(is_error(&v), "unknown key or command, yet answered {v}");
        return;
    }
    if is_error(&v) {
        return;
    }
    let text = std::str::from_utf8(line).unwrap();
    match Request::parse(text.trim()) {
        Ok(Request::Stats) => assert!(v.get("control").is_some(), "{v}"),
        Ok(Request::Leases(f)) => {
            let again = Request::Leases(f.clone()).to_json().to_string();
            assert_eq!(Request::parse(&again), Ok(Request::Leases(f.clone())));
            assert_eq!(ask(view, refused, again.as_bytes()), v, "{again}");
            let (list, entries) = page(&v);
            let filters = Filters::of(&f);
            let want: Vec<String> = table
                .iter()
                .filter(|h| filters.matches(h))
                .map(spelled)
                .collect();
            assert_eq!(list.total, want.len() as u64, "{v}");
            assert!(entries.len() <= f.limit && f.limit as u64 <= CAP);
            assert!(
                entries.iter().all(|e| want.contains(e)),
                "{v}\nwant {want:?}"
            );
        }
        Err(e) => panic!("answered {v}, but the request does not parse: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let view = View(build(&mut input));
    let table = in_force(&view.0);
    let refused = Refused::default();
    if input.u8() & 3 == 0 {
        raw(&view, &refused, &table, input.take_rest());
    } else {
        built(&view, &refused, &table, &mut input);
    }
});
