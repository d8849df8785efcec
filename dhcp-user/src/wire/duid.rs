//! DHCP Unique Identifiers (RFC 9915 §11): a view over the bytes of a Client
//! ID, Server ID or Relay-ID option. Only the length bounds and each known
//! type's fixed fields are checked; the identifier bytes are opaque.

use super::{be16, be32, WireError};

pub use dhcp_common::{MAX_DUID_IDENTIFIER_LEN, MAX_DUID_LEN};

/// DUID type: link-layer address plus time (RFC 9915 §11.2).
pub const DUID_LLT: u16 = 1;
/// DUID type: vendor-assigned, based on enterprise number (RFC 9915 §11.3).
pub const DUID_EN: u16 = 2;
/// DUID type: link-layer address (RFC 9915 §11.4).
pub const DUID_LL: u16 = 3;
/// DUID type: UUID (RFC 6355 §4).
pub const DUID_UUID: u16 = 4;

/// A validated DUID, borrowed from the message (type code included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Duid<'a>(&'a [u8]);

/// The decoded layout of a DUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DuidKind<'a> {
    /// DUID-LLT: hardware type, time (seconds since 2000-01-01 UTC mod 2^32), link-layer address.
    Llt {
        /// IANA hardware type.
        hw_type: u16,
        /// Time the DUID was generated.
        time: u32,
        /// Link-layer address.
        addr: &'a [u8],
    },
    /// DUID-EN: enterprise number and vendor identifier.
    En {
        /// IANA private enterprise number.
        enterprise: u32,
        /// Vendor-assigned identifier.
        id: &'a [u8],
    },
    /// DUID-LL: hardware type and link-layer address.
    Ll {
        /// IANA hardware type.
        hw_type: u16,
        /// Link-layer address.
        addr: &'a [u8],
    },
    /// DUID-UUID: a 16-octet UUID.
    Uuid(&'a [u8]),
    /// A type this codec does not know; the identifier is kept as is.
    Other {
        /// DUID type code.
        duid_type: u16,
        /// Identifier bytes after the type code.
        id: &'a [u8],
    },
}

impl<'a> Duid<'a> {
    /// Checks a DUID: 2-octet type plus 1..=128 octets (RFC 9915 §11.1) and the
    /// fixed fields of LLT, EN, LL (RFC 9915 §11.2–11.4) and UUID (RFC 6355).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let len = bytes.len();
        if len < 3 {
            return Err(WireError::DuidTooShort { len });
        }
        if len > MAX_DUID_LEN {
            return Err(WireError::DuidTooLong { len });
        }
        let duid_type = be16(bytes, 0);
        let min_ok = match duid_type {
            DUID_LLT => len >= 9,
            DUID_EN => len >= 7,
            DUID_LL => len >= 5,
            DUID_UUID => len == 18,
            _ => true,
        };
        if !min_ok {
            return Err(WireError::BadDuid { duid_type });
        }
        Ok(Duid(bytes))
    }

    /// The DUID in wire form (type code included), e.g. to compare or store it.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The DUID type code.
    pub fn duid_type(&self) -> u16 {
        be16(self.0, 0)
    }

    /// The type-specific fields.
    pub fn kind(&self) -> DuidKind<'a> {
        let b = self.0;
        let tail = |from: usize| b.get(from..).unwrap_or(&[]);
        match self.duid_type() {
            DUID_LLT => DuidKind::Llt {
                hw_type: be16(b, 2),
                time: be32(b, 4),
                addr: tail(8),
            },
            DUID_EN => DuidKind::En {
                enterprise: be32(b, 2),
                id: tail(6),
            },
            DUID_LL => DuidKind::Ll {
                hw_type: be16(b, 2),
                addr: tail(4),
            },
            DUID_UUID => DuidKind::Uuid(tail(2)),
            duid_type => DuidKind::Other {
                duid_type,
                id: tail(2),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9915 §11.1: "The length of the DUID (not including the type code) is
    /// at least 1 octet and at most 128 octets."
    #[test]
    fn rfc9915_11_1_length_bounds() {
        assert_eq!(
            Duid::parse(&[0, 9]),
            Err(WireError::DuidTooShort { len: 2 })
        );
        let mut long = [0u8; 131];
        long[1] = 9;
        assert_eq!(Duid::parse(&long), Err(WireError::DuidTooLong { len: 131 }));
        assert!(Duid::parse(&long[..130]).is_ok());
        assert!(Duid::parse(&long[..3]).is_ok());
    }

    /// RFC 9915 §11.2: DUID-LLT is type 1, hardware type, time, link-layer address.
    #[test]
    fn rfc9915_11_2_llt() {
        let b = [0, 1, 0, 1, 0x2a, 0xbb, 0xcc, 0xdd, 2, 0, 0, 0, 0, 1];
        let d = Duid::parse(&b).unwrap();
        assert_eq!(
            d.kind(),
            DuidKind::Llt {
                hw_type: 1,
                time: 0x2abb_ccdd,
                addr: &[2, 0, 0, 0, 0, 1]
            }
        );
        assert_eq!(
            Duid::parse(&b[..8]),
            Err(WireError::BadDuid { duid_type: 1 })
        );
    }

    /// RFC 9915 §11.3 (DUID-EN) and §11.4 (DUID-LL).
    #[test]
    fn rfc9915_11_3_en_and_11_4_ll() {
        let en = [0, 2, 0, 0, 0x0c, 0x9c, 0xaa];
        assert_eq!(
            Duid::parse(&en).unwrap().kind(),
            DuidKind::En {
                enterprise: 3228,
                id: &[0xaa]
            }
        );
        let ll = [0, 3, 0, 1, 2, 0, 0, 0, 0, 9];
        assert_eq!(
            Duid::parse(&ll).unwrap().kind(),
            DuidKind::Ll {
                hw_type: 1,
                addr: &[2, 0, 0, 0, 0, 9]
            }
        );
    }

    /// RFC 6355 §4: DUID-UUID carries exactly a 16-octet UUID.
    #[test]
    fn rfc6355_4_uuid_is_16_octets() {
        let mut u = [7u8; 18];
        u[0] = 0;
        u[1] = 4;
        assert_eq!(Duid::parse(&u).unwrap().kind(), DuidKind::Uuid(&[7u8; 16]));
        assert_eq!(
            Duid::parse(&u[..17]),
            Err(WireError::BadDuid { duid_type: 4 })
        );
    }
}
