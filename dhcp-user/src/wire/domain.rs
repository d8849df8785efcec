//! DNS names in DHCPv6 options (RFC 9915 §10: RFC 1035 §3.1 wire format,
//! uncompressed). Used by the Domain Search List (RFC 3646 §4) and Client FQDN
//! (RFC 4704 §4.2, which also allows a partial name without the root label).

use core::fmt;

use super::{Encoder, WireError};

/// Longest name in wire form, length octets and root label included (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §3.1).
pub const MAX_LABEL_LEN: usize = 63;

/// A validated domain name in wire form, borrowed from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DomainName<'a> {
    wire: &'a [u8],
    /// Ends with the root label (decided while parsing: a label's last data
    /// octet may be zero too, so the last byte alone does not tell).
    fully_qualified: bool,
}

/// Reads labels from `buf` until the root label, or until `buf` ends if
/// `partial_ok`. Returns the name's wire length and whether it ended with the root label. Never follows pointers: any
/// compression pointer is an error, so a loop cannot exist.
fn scan(buf: &[u8], partial_ok: bool) -> Result<(usize, bool), WireError> {
    let mut pos = 0;
    loop {
        let Some(&len) = buf.get(pos) else {
            // A partial name must still fit once completed with a root label.
            return if partial_ok && pos < MAX_NAME_LEN {
                Ok((pos, false))
            } else if partial_ok {
                Err(WireError::NameTooLong)
            } else {
                Err(WireError::NameNotTerminated)
            };
        };
        if len & 0xc0 == 0xc0 {
            return Err(WireError::NameCompressed);
        }
        if usize::from(len) > MAX_LABEL_LEN {
            return Err(WireError::LabelTooLong { len });
        }
        let next = pos + 1 + usize::from(len);
        if next > MAX_NAME_LEN {
            return Err(WireError::NameTooLong);
        }
        if len == 0 {
            return Ok((next, true));
        }
        if next > buf.len() {
            return Err(WireError::NameNotTerminated);
        }
        pos = next;
    }
}

impl<'a> DomainName<'a> {
    /// Parses one fully qualified name at the start of `buf`; returns it and the rest.
    pub fn parse_prefix(buf: &'a [u8]) -> Result<(Self, &'a [u8]), WireError> {
        let (len, fully_qualified) = scan(buf, false)?;
        let (wire, rest) = buf.split_at(len);
        Ok((
            DomainName {
                wire,
                fully_qualified,
            },
            rest,
        ))
    }

    /// Parses all of `buf` as one name that may be partial (RFC 4704 §4.2:
    /// no root label). A root label, if present, must be the last byte.
    pub fn parse_partial(buf: &'a [u8]) -> Result<Self, WireError> {
        let (len, fully_qualified) = scan(buf, true)?;
        if len != buf.len() {
            return Err(WireError::NameNotTerminated);
        }
        Ok(DomainName {
            wire: buf,
            fully_qualified,
        })
    }

    /// The name in wire form.
    pub fn as_wire(&self) -> &'a [u8] {
        self.wire
    }

    /// Whether the name ends with the root label.
    pub fn is_fully_qualified(&self) -> bool {
        self.fully_qualified
    }

    /// The labels, leftmost first, without the root label.
    pub fn labels(&self) -> Labels<'a> {
        Labels { rest: self.wire }
    }
}

/// Iterator over the labels of a [`DomainName`].
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let len = usize::from(len);
        if len == 0 || len > tail.len() {
            self.rest = &[];
            return None;
        }
        let (label, rest) = tail.split_at(len);
        self.rest = rest;
        Some(label)
    }
}

impl fmt::Display for DomainName<'_> {
    /// Dotted text without the trailing dot; bytes outside printable ASCII
    /// (and `.` or `\` inside a label) are escaped as `\DDD` (RFC 4343 style).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    fmt::Write::write_char(f, char::from(b))?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
        }
        Ok(())
    }
}

/// The Domain Search List option body: a sequence of fully qualified names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainList<'a> {
    wire: &'a [u8],
}

impl<'a> DomainList<'a> {
    /// Checks that `buf` is one or more complete names (RFC 3646 §4).
    pub fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut rest = buf;
        while !rest.is_empty() {
            rest = DomainName::parse_prefix(rest)?.1;
        }
        Ok(DomainList { wire: buf })
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = DomainName<'a>> + 'a {
        let mut rest = self.wire;
        core::iter::from_fn(move || {
            let (name, tail) = DomainName::parse_prefix(rest).ok()?;
            rest = tail;
            Some(name)
        })
    }

    /// The option body in wire form.
    pub fn as_wire(&self) -> &'a [u8] {
        self.wire
    }
}

/// Writes dotted text (`"example.net"`, trailing dot optional) as a fully
/// qualified wire name. Labels must be 1..=63 octets, the name at most 255.
pub fn write_name(enc: &mut Encoder<'_>, text: &str) -> Result<(), WireError> {
    let text = text.strip_suffix('.').unwrap_or(text);
    if !text.is_empty() {
        write_labels(enc, text.split('.').map(str::as_bytes))?;
    }
    enc.put_u8(0)
}

/// Writes labels (no root label); checks label and total name length.
pub(crate) fn write_labels<'l>(
    enc: &mut Encoder<'_>,
    labels: impl Iterator<Item = &'l [u8]>,
) -> Result<(), WireError> {
    let mut total = 1; // the root label that ends a fully qualified name
    for label in labels {
        if label.is_empty() {
            return Err(WireError::EmptyLabel);
        }
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_LABEL_LEN)
            .ok_or(WireError::LabelTooLong {
                len: u8::try_from(label.len()).unwrap_or(u8::MAX),
            })?;
        total += 1 + label.len();
        if total > MAX_NAME_LEN {
            return Err(WireError::NameTooLong);
        }
        enc.put_u8(len)?;
        enc.put_slice(label)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3646 §4 / RFC 1035 §3.1: names are label sequences ended by the root label.
    #[test]
    fn rfc3646_4_list_of_names() {
        let wire = b"\x07example\x03net\x00\x03foo\x00";
        let list = DomainList::parse(wire).unwrap();
        let names: Vec<String> = list.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["example.net", "foo"]);
    }

    /// RFC 9915 §10: "Domain names MUST NOT be stored in compressed form."
    #[test]
    fn rfc9915_10_compression_pointer_rejected() {
        // A pointer to itself would loop forever if followed.
        assert_eq!(
            DomainList::parse(b"\xc0\x00"),
            Err(WireError::NameCompressed)
        );
        assert_eq!(
            DomainList::parse(b"\x03foo\xc0\x00"),
            Err(WireError::NameCompressed)
        );
    }

    /// RFC 1035 §3.1: labels are 63 octets or less; names 255 octets or less.
    #[test]
    fn rfc1035_3_1_label_and_name_limits() {
        let mut wire = vec![64u8];
        wire.extend([b'a'; 64]);
        wire.push(0);
        assert_eq!(
            DomainList::parse(&wire),
            Err(WireError::LabelTooLong { len: 64 })
        );
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend([b'a'; 63]);
        }
        long.push(0);
        assert_eq!(DomainList::parse(&long), Err(WireError::NameTooLong));
        assert_eq!(
            DomainList::parse(b"\x03foo"),
            Err(WireError::NameNotTerminated)
        );
    }

    /// RFC 4704 §4.2: a partial name omits the root label.
    #[test]
    fn rfc4704_4_2_partial_name() {
        let n = DomainName::parse_partial(b"\x04host").unwrap();
        assert!(!n.is_fully_qualified());
        assert_eq!(n.to_string(), "host");
        assert_eq!(
            DomainName::parse_partial(b"\x04host\x00\x01a"),
            Err(WireError::NameNotTerminated)
        );
        // A label whose last data octet is zero is not a root label (found by fuzzing).
        let n = DomainName::parse_partial(b"\x04host\x02a\x00").unwrap();
        assert!(!n.is_fully_qualified());
        assert_eq!(n.labels().count(), 2);
        // 255 octets of labels cannot be completed with a root label; 254 can.
        let partial = |last: u8| {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(63);
                v.extend([b'a'; 63]);
            }
            v.push(last);
            v.extend(std::iter::repeat_n(b'b', usize::from(last)));
            v
        };
        assert_eq!(partial(62).len(), 255);
        assert_eq!(
            DomainName::parse_partial(&partial(62)),
            Err(WireError::NameTooLong)
        );
        let ok = partial(61);
        assert_eq!(
            DomainName::parse_partial(&ok).map(|n| n.labels().count()),
            Ok(4)
        );
    }

    #[test]
    fn write_name_round_trips_and_checks_labels() {
        let mut buf = [0u8; 64];
        let mut enc = Encoder::new(&mut buf);
        write_name(&mut enc, "example.net.").unwrap();
        let n = enc.finish().unwrap();
        assert_eq!(&buf[..n], b"\x07example\x03net\x00");
        let mut enc = Encoder::new(&mut buf);
        assert_eq!(write_name(&mut enc, "a..b"), Err(WireError::EmptyLabel));
        let long = "x".repeat(64);
        let mut enc = Encoder::new(&mut buf);
        assert_eq!(
            write_name(&mut enc, &long),
            Err(WireError::LabelTooLong { len: 64 })
        );
    }
}
