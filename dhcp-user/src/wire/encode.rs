//! The encoder: writes a DHCPv6 message into a caller's buffer, without
//! allocating. Options that contain options are written between
//! [`Encoder::begin_option`] and [`Encoder::end_option`]; the length field is
//! patched when the option is closed. A write that would not fit fails with
//! [`WireError::BufferTooSmall`] and writes nothing: output is never truncated.

use std::net::Ipv6Addr;

use super::{MessageType, WireError, Xid};

/// Writes DHCPv6 messages into a borrowed buffer.
#[derive(Debug)]
pub struct Encoder<'b> {
    buf: &'b mut [u8],
    len: usize,
    open: usize,
}

/// An option opened by [`Encoder::begin_option`]; give it back to
/// [`Encoder::end_option`]. Not `Copy`, so it can be closed only once.
#[derive(Debug)]
#[must_use = "an open option must be closed with Encoder::end_option"]
pub struct OptionMark {
    start: usize,
    code: u16,
    depth: usize,
}

impl<'b> Encoder<'b> {
    /// An encoder writing from the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Encoder {
            buf,
            len: 0,
            open: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Ends encoding and returns the message length. Fails if an option is still open.
    pub fn finish(self) -> Result<usize, WireError> {
        if self.open != 0 {
            return Err(WireError::UnclosedOption { open: self.open });
        }
        Ok(self.len)
    }

    /// Reserves `n` bytes and returns them, or fails without writing.
    #[inline]
    fn reserve(&mut self, n: usize) -> Result<&mut [u8], WireError> {
        let capacity = self.buf.len();
        let end = self
            .len
            .checked_add(n)
            .filter(|&end| end <= capacity)
            .ok_or(WireError::BufferTooSmall {
                needed: self.len.saturating_add(n),
                capacity,
            })?;
        let start = self.len;
        self.len = end;
        Ok(&mut self.buf[start..end])
    }

    /// Appends raw bytes.
    pub fn put_slice(&mut self, data: &[u8]) -> Result<(), WireError> {
        self.reserve(data.len())?.copy_from_slice(data);
        Ok(())
    }

    /// Appends one octet.
    pub fn put_u8(&mut self, v: u8) -> Result<(), WireError> {
        self.put_slice(&[v])
    }

    /// Appends a 16-bit value in network byte order.
    pub fn put_u16(&mut self, v: u16) -> Result<(), WireError> {
        self.put_slice(&v.to_be_bytes())
    }

    /// Appends a 32-bit value in network byte order.
    pub fn put_u32(&mut self, v: u32) -> Result<(), WireError> {
        self.put_slice(&v.to_be_bytes())
    }

    /// Appends an IPv6 address (16 octets).
    pub fn put_ipv6(&mut self, addr: Ipv6Addr) -> Result<(), WireError> {
        self.put_slice(&addr.octets())
    }

    /// Writes a client/server message header: msg-type and transaction-id (RFC 9915 §8).
    pub fn message_header(&mut self, msg_type: MessageType, xid: Xid) -> Result<(), WireError> {
        let x = xid.get().to_be_bytes();
        self.put_slice(&[msg_type.code(), x[1], x[2], x[3]])
    }

    /// Writes a relay message header: msg-type, hop-count, link-address and
    /// peer-address (RFC 9915 §9).
    pub fn relay_header(
        &mut self,
        msg_type: MessageType,
        hop_count: u8,
        link_address: Ipv6Addr,
        peer_address: Ipv6Addr,
    ) -> Result<(), WireError> {
        self.put_u8(msg_type.code())?;
        self.put_u8(hop_count)?;
        self.put_ipv6(link_address)?;
        self.put_ipv6(peer_address)
    }

    /// Writes a whole option: code, length, data (RFC 9915 §21.1).
    #[inline]
    pub fn option(&mut self, code: u16, data: &[u8]) -> Result<(), WireError> {
        let len = u16::try_from(data.len()).map_err(|_| WireError::OptionTooLong { code })?;
        let out = self.reserve(4 + data.len())?;
        out[..2].copy_from_slice(&code.to_be_bytes());
        out[2..4].copy_from_slice(&len.to_be_bytes());
        out[4..].copy_from_slice(data);
        Ok(())
    }

    /// Opens an option whose data is written next (fields, sub-options);
    /// its length is filled in by [`Encoder::end_option`].
    pub fn begin_option(&mut self, code: u16) -> Result<OptionMark, WireError> {
        let start = self.len;
        let out = self.reserve(4)?;
        out[..2].copy_from_slice(&code.to_be_bytes());
        out[2..4].fill(0);
        self.open += 1;
        Ok(OptionMark {
            start,
            code,
            depth: self.open,
        })
    }

    /// [`Encoder::begin_option`] followed by the option's fixed fields, in one
    /// bounds check (the IA options of every reply): all or nothing.
    #[inline]
    pub fn begin_option_with(&mut self, code: u16, fixed: &[u8]) -> Result<OptionMark, WireError> {
        let start = self.len;
        let out = self.reserve(4 + fixed.len())?;
        out[..2].copy_from_slice(&code.to_be_bytes());
        out[2..4].fill(0);
        out[4..].copy_from_slice(fixed);
        self.open += 1;
        Ok(OptionMark {
            start,
            code,
            depth: self.open,
        })
    }

    /// Closes the innermost open option and patches its length.
    #[inline]
    pub fn end_option(&mut self, mark: OptionMark) -> Result<(), WireError> {
        if mark.depth != self.open || mark.start + 4 > self.len {
            return Err(WireError::InvalidValue("options closed out of order"));
        }
        let len = u16::try_from(self.len - mark.start - 4)
            .map_err(|_| WireError::OptionTooLong { code: mark.code })?;
        self.buf[mark.start + 2..mark.start + 4].copy_from_slice(&len.to_be_bytes());
        self.open -= 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9915 §21.1: option-len is the length of option-data, here
    /// including the nested options (e.g. IAADDR inside IA_NA, §21.4).
    #[test]
    fn rfc9915_21_1_nested_lengths_are_patched() {
        let mut buf = [0u8; 64];
        let mut enc = Encoder::new(&mut buf);
        let outer = enc.begin_option(3).unwrap();
        enc.put_u32(1).unwrap();
        let inner = enc.begin_option(13).unwrap();
        enc.put_u16(0).unwrap();
        enc.end_option(inner).unwrap();
        enc.end_option(outer).unwrap();
        let n = enc.finish().unwrap();
        assert_eq!(&buf[..n], &[0, 3, 0, 10, 0, 0, 0, 1, 0, 13, 0, 2, 0, 0]);
    }

    #[test]
    fn never_truncates_and_reports_needed_size() {
        let mut buf = [0u8; 6];
        let mut enc = Encoder::new(&mut buf);
        enc.put_u32(7).unwrap();
        assert_eq!(
            enc.option(1, &[1, 2, 3]),
            Err(WireError::BufferTooSmall {
                needed: 11,
                capacity: 6
            })
        );
        assert_eq!(enc.len(), 4, "a failed write leaves nothing behind");
    }

    #[test]
    fn unclosed_and_out_of_order_options_are_errors() {
        let mut buf = [0u8; 32];
        let mut enc = Encoder::new(&mut buf);
        let a = enc.begin_option(3).unwrap();
        let b = enc.begin_option(5).unwrap();
        assert!(matches!(enc.end_option(a), Err(WireError::InvalidValue(_))));
        enc.end_option(b).unwrap();
        assert_eq!(enc.finish(), Err(WireError::UnclosedOption { open: 1 }));
    }

    #[test]
    fn option_longer_than_65535_is_refused() {
        let mut buf = vec![0u8; 70_000];
        let mut enc = Encoder::new(&mut buf);
        let m = enc.begin_option(16).unwrap();
        enc.put_slice(&[0u8; 65_536]).unwrap();
        assert_eq!(
            enc.end_option(m),
            Err(WireError::OptionTooLong { code: 16 })
        );
        let mut enc = Encoder::new(&mut buf);
        assert_eq!(
            enc.option(16, &[0u8; 65_536]),
            Err(WireError::OptionTooLong { code: 16 })
        );
    }
}
