//! The on-disk record encoding shared by journal segments and snapshots.
//!
//! A frame is `varint(body_len) ‖ body ‖ crc32c(varint ‖ body)` (CRC little
//! endian). The body is compact because most of a lease is predictable:
//!
//! | field | bytes |
//! | --- | --- |
//! | flags: op (bits 0-2), PD (bit 3), new DUID (bit 4), same /64 as previous (bit 5), prefix length present (bit 6) | 1 |
//! | address: low 8 bytes when the high 8 match the previous record, else 16 | 8 or 16 |
//! | prefix length, only when it is not 128 | 0 or 1 |
//! | IAID | varint |
//! | DUID: a new one is `len ‖ bytes` and gets the next dictionary id; a known one is `varint(id)` | |
//! | valid_until as zigzag delta from the previous record's | varint |
//! | valid_until − preferred_until, zigzag | varint |
//!
//! The dictionary and deltas restart with every file, so each segment and
//! snapshot decodes on its own. Decoding is sequential: a torn or corrupt frame
//! ends the usable part of the file.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::net::Ipv6Addr;

use crate::protocol::lease::MAX_DUID_LEN;
use crate::protocol::{LeaseKind, LeaseOp, LeaseRecord};

const OP_MASK: u8 = 0b0000_0111;
const FLAG_PD: u8 = 1 << 3;
const FLAG_NEW_DUID: u8 = 1 << 4;
const FLAG_SAME_HIGH: u8 = 1 << 5;
const FLAG_PREFIX_LEN: u8 = 1 << 6;

/// Largest body: flags + 16 addr + 1 plen + 5 iaid + 1 len + DUID + 2 × 10 varints.
pub(crate) const MAX_BODY: usize = 1 + 16 + 1 + 5 + 1 + MAX_DUID_LEN + 20;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`; `None` when truncated or longer than 10 bytes.
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Encodes records for one file. Keeps the DUID dictionary in an arena so a
/// new client costs no heap allocation beyond amortised growth.
pub(crate) struct Encoder {
    /// DUID hash → dictionary id. A hash collision only costs a second id for
    /// a DUID (the bytes are compared), never a wrong DUID.
    ids: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    arena: Vec<u8>,
    /// Start of each id's DUID in `arena` (the length byte).
    offsets: Vec<usize>,
    hasher: RandomState,
    prev_valid: u64,
    prev_high: [u8; 8],
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Encoder {
            ids: HashMap::default(),
            arena: Vec::new(),
            offsets: Vec::new(),
            hasher: RandomState::new(),
            prev_valid: 0,
            prev_high: [0; 8],
        }
    }

    /// Start a new file: forget the dictionary and deltas.
    pub(crate) fn reset(&mut self) {
        self.ids.clear();
        self.arena.clear();
        self.offsets.clear();
        self.prev_valid = 0;
        self.prev_high = [0; 8];
    }

    fn known_id(&self, hash: u64, duid: &[u8]) -> Option<u32> {
        let id = *self.ids.get(&hash)?;
        let off = self.offsets[id as usize];
        let len = self.arena[off] as usize;
        (&self.arena[off + 1..off + 1 + len] == duid).then_some(id)
    }

    /// Append one framed record to `out`.
    pub(crate) fn encode(&mut self, rec: &LeaseRecord, out: &mut Vec<u8>) {
        let mut body = Body::default();
        let addr = rec.addr.octets();
        let duid = rec.duid();
        let hash = self.hasher.hash_one(duid);
        let known = self.known_id(hash, duid);
        let same_high = addr[..8] == self.prev_high;
        let mut flags = rec.op as u8 & OP_MASK;
        if rec.kind == LeaseKind::Pd {
            flags |= FLAG_PD;
        }
        if known.is_none() {
            flags |= FLAG_NEW_DUID;
        }
        if same_high {
            flags |= FLAG_SAME_HIGH;
        }
        if rec.prefix_len != 128 {
            flags |= FLAG_PREFIX_LEN;
        }
        body.put(&[flags]);
        body.put(if same_high { &addr[8..] } else { &addr[..] });
        if rec.prefix_len != 128 {
            body.put(&[rec.prefix_len]);
        }
        body.varint(u64::from(rec.iaid));
        match known {
            Some(id) => body.varint(u64::from(id)),
            None => {
                body.put(&[duid.len() as u8]);
                body.put(duid);
                let id = self.offsets.len() as u32;
                self.offsets.push(self.arena.len());
                self.arena.push(duid.len() as u8);
                self.arena.extend_from_slice(duid);
                self.ids.insert(hash, id);
            }
        }
        body.varint(zigzag(rec.valid_until.wrapping_sub(self.prev_valid) as i64));
        body.varint(zigzag(
            rec.valid_until.wrapping_sub(rec.preferred_until) as i64
        ));
        self.prev_valid = rec.valid_until;
        self.prev_high.copy_from_slice(&addr[..8]);

        let start = out.len();
        put_varint(out, body.len as u64);
        out.extend_from_slice(&body.buf[..body.len]);
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }
}

/// A record body being built on the stack.
struct Body {
    buf: [u8; MAX_BODY],
    len: usize,
}

impl Default for Body {
    fn default() -> Self {
        Body {
            buf: [0; MAX_BODY],
            len: 0,
        }
    }
}

impl Body {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.put(&[(v as u8) | 0x80]);
            v >>= 7;
        }
        self.put(&[v as u8]);
    }
}

/// Why a frame could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The file ends inside the frame.
    Truncated,
    /// The length is impossible or the CRC does not match.
    Corrupt,
}

/// Split the frame at `*pos`: returns its body and advances `*pos` past it.
pub(crate) fn next_frame<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], FrameError> {
    let start = *pos;
    let mut p = start;
    let len = get_varint(buf, &mut p).ok_or(if buf.len() - start < 10 {
        FrameError::Truncated
    } else {
        FrameError::Corrupt
    })? as usize;
    if len == 0 || len > MAX_BODY {
        return Err(FrameError::Corrupt);
    }
    let end = p + len;
    if end + 4 > buf.len() {
        return Err(FrameError::Truncated);
    }
    let crc = u32::from_le_bytes([buf[end], buf[end + 1], buf[end + 2], buf[end + 3]]);
    if crc32c::crc32c(&buf[start..end]) != crc {
        return Err(FrameError::Corrupt);
    }
    *pos = end + 4;
    Ok(&buf[p..end])
}

/// A recovered binding: a `LeaseRecord` whose DUID lives in a [`DuidArena`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Binding {
    pub(crate) addr: [u8; 16],
    pub(crate) preferred_until: u64,
    pub(crate) valid_until: u64,
    pub(crate) iaid: u32,
    /// Index into the arena's DUID list.
    pub(crate) duid: u32,
    pub(crate) op: LeaseOp,
    pub(crate) kind: LeaseKind,
    pub(crate) prefix_len: u8,
}

/// All DUIDs seen during recovery, without one allocation each.
#[derive(Default, Debug)]
pub(crate) struct DuidArena {
    bytes: Vec<u8>,
    offsets: Vec<usize>,
}

impl DuidArena {
    pub(crate) fn push(&mut self, duid: &[u8]) -> u32 {
        let id = self.offsets.len() as u32;
        self.offsets.push(self.bytes.len());
        self.bytes.push(duid.len() as u8);
        self.bytes.extend_from_slice(duid);
        id
    }

    pub(crate) fn get(&self, id: u32) -> &[u8] {
        let off = self.offsets[id as usize];
        let len = self.bytes[off] as usize;
        &self.bytes[off + 1..off + 1 + len]
    }

    pub(crate) fn reserve(&mut self, duids: usize) {
        self.offsets.reserve(duids);
        self.bytes.reserve(duids * 16);
    }
}

/// Decodes the bodies of one file, in order.
pub(crate) struct Decoder {
    /// Dictionary id → arena id.
    dict: Vec<u32>,
    prev_valid: u64,
    prev_high: [u8; 8],
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Decoder {
            dict: Vec::new(),
            prev_valid: 0,
            prev_high: [0; 8],
        }
    }

    /// Decode one body; `None` when it is malformed (treated like a bad CRC).
    pub(crate) fn decode(&mut self, body: &[u8], arena: &mut DuidArena) -> Option<Binding> {
        let flags = *body.first()?;
        let op = match flags & OP_MASK {
            1 => LeaseOp::Commit,
            2 => LeaseOp::Release,
            3 => LeaseOp::Decline,
            4 => LeaseOp::Expire,
            _ => return None,
        };
        if flags & 0x80 != 0 {
            return None;
        }
        let kind = if flags & FLAG_PD != 0 {
            LeaseKind::Pd
        } else {
            LeaseKind::Na
        };
        let mut pos = 1;
        let mut addr = [0u8; 16];
        if flags & FLAG_SAME_HIGH != 0 {
            addr[..8].copy_from_slice(&self.prev_high);
            addr[8..].copy_from_slice(body.get(pos..pos + 8)?);
            pos += 8;
        } else {
            addr.copy_from_slice(body.get(pos..pos + 16)?);
            pos += 16;
        }
        let prefix_len = if flags & FLAG_PREFIX_LEN != 0 {
            pos += 1;
            *body.get(pos - 1)?
        } else {
            128
        };
        let iaid = u32::try_from(get_varint(body, &mut pos)?).ok()?;
        let duid = if flags & FLAG_NEW_DUID != 0 {
            let len = *body.get(pos)? as usize;
            if len > MAX_DUID_LEN {
                return None;
            }
            let bytes = body.get(pos + 1..pos + 1 + len)?;
            pos += 1 + len;
            let id = arena.push(bytes);
            self.dict.push(id);
            id
        } else {
            let local = get_varint(body, &mut pos)?;
            *self.dict.get(usize::try_from(local).ok()?)?
        };
        let valid_until = self
            .prev_valid
            .wrapping_add(unzigzag(get_varint(body, &mut pos)?) as u64);
        let preferred_until =
            valid_until.wrapping_sub(unzigzag(get_varint(body, &mut pos)?) as u64);
        if pos != body.len() {
            return None;
        }
        self.prev_valid = valid_until;
        self.prev_high.copy_from_slice(&addr[..8]);
        Some(Binding {
            addr,
            preferred_until,
            valid_until,
            iaid,
            duid,
            op,
            kind,
            prefix_len,
        })
    }
}

impl Binding {
    /// Back to the core's record type.
    pub(crate) fn to_record(self, arena: &DuidArena) -> LeaseRecord {
        LeaseRecord::new(
            self.op,
            self.kind,
            Ipv6Addr::from(self.addr),
            self.prefix_len,
            self.iaid,
            arena.get(self.duid),
            self.preferred_until,
            self.valid_until,
        )
        .expect("decode rejects DUIDs longer than MAX_DUID_LEN")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(buf: &[u8]) -> Vec<LeaseRecord> {
        let mut arena = DuidArena::default();
        let mut dec = Decoder::new();
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < buf.len() {
            let body = next_frame(buf, &mut pos).expect("valid frame");
            let b = dec.decode(body, &mut arena).expect("valid body");
            out.push(b.to_record(&arena));
        }
        out
    }

    fn arb_record(duids: Vec<Vec<u8>>) -> impl Strategy<Value = LeaseRecord> {
        (
            1u8..=4,
            any::<bool>(),
            prop_oneof![
                any::<u128>(),
                (0u128..4).prop_map(|lo| (0x2001_0db8u128 << 96) | lo)
            ],
            any::<u8>(),
            any::<u32>(),
            0..duids.len(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(move |(op, pd, addr, plen, iaid, d, p, v)| {
                let op = [
                    LeaseOp::Commit,
                    LeaseOp::Release,
                    LeaseOp::Decline,
                    LeaseOp::Expire,
                ][usize::from(op - 1)];
                let kind = if pd { LeaseKind::Pd } else { LeaseKind::Na };
                LeaseRecord::new(op, kind, Ipv6Addr::from(addr), plen, iaid, &duids[d], p, v)
                    .unwrap()
            })
    }

    proptest! {
        /// Any record sequence decodes back to itself, dictionary and deltas included.
        #[test]
        fn encode_decode_round_trip(
            recs in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..=MAX_DUID_LEN), 1..6)
                .prop_flat_map(|duids| proptest::collection::vec(arb_record(duids), 0..40))
        ) {
            let mut enc = Encoder::new();
            let mut buf = Vec::new();
            for r in &recs {
                enc.encode(r, &mut buf);
            }
            prop_assert_eq!(decode_all(&buf), recs);
        }

        /// Garbage never panics the decoder and never reads past the buffer.
        #[test]
        fn garbage_is_rejected_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut arena = DuidArena::default();
            let mut dec = Decoder::new();
            let mut pos = 0;
            while let Ok(body) = next_frame(&bytes, &mut pos) {
                let _ = dec.decode(body, &mut arena);
            }
            prop_assert!(pos <= bytes.len());
            let _ = dec.decode(&bytes, &mut arena);
        }
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut pos = 0;
            assert_eq!(get_varint(&b, &mut pos), Some(v));
            assert_eq!(pos, b.len());
        }
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80; 11], &mut pos), None, "over-long varint");
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    /// Issue 5 goal: ≤ 64 journal bytes per lease. A new client with a
    /// DUID-LLT (14 bytes) and a random address costs one full frame; its
    /// renewal references the DUID and shares the /64.
    #[test]
    fn typical_records_are_compact() {
        let duid = [
            0, 1, 0, 1, 0x2c, 0x3d, 0x4e, 0x5f, 2, 0x42, 0xac, 0x11, 0, 2,
        ];
        let addr: Ipv6Addr = "2001:db8:1:1:8c3a:91f2:4d0e:7b61".parse().unwrap();
        let first = LeaseRecord::new(
            LeaseOp::Commit,
            LeaseKind::Na,
            addr,
            128,
            0x0102_0304,
            &duid,
            1_800_003_000,
            1_800_004_000,
        )
        .unwrap();
        let mut enc = Encoder::new();
        let mut buf = Vec::new();
        enc.encode(&first, &mut buf);
        let new_client = buf.len();
        let mut renew = first;
        renew.preferred_until += 1000;
        renew.valid_until += 1000;
        enc.encode(&renew, &mut buf);
        let renewal = buf.len() - new_client;
        assert!(new_client <= 64, "new client record is {new_client} bytes");
        assert!(renewal <= 24, "renewal record is {renewal} bytes");
        assert_eq!(decode_all(&buf), vec![first, renew]);
    }
}
