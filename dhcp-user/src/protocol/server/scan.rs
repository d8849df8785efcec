//! The top-level options the server acts on, gathered in one pass: during
//! decoding for a direct message (the decoder hands each option over as it
//! validates it), or over the innermost message of a relay chain.

use crate::wire::options::Options;
use crate::wire::{code, RawOption};

/// What the server needs from a message's top-level options (the codec has
/// already validated every option's format).
#[derive(Default)]
pub(super) struct Scan<'a> {
    pub client_id: Option<&'a [u8]>,
    pub server_id: Option<&'a [u8]>,
    /// IA_NA and IA_PD options.
    pub ias: usize,
    /// Any IA, IA_TA included.
    pub any_ia: bool,
    pub rapid_commit: bool,
    /// The options of the first ORO that we can send, as [`Wanted`] bits.
    pub oro: Option<Wanted>,
}

impl<'a> Scan<'a> {
    /// Scan an option area in one pass.
    pub fn of(opts: Options<'a>) -> Scan<'a> {
        let mut s = Scan::default();
        for o in opts.raw() {
            s.add(o);
        }
        s
    }

    /// Take note of one top-level option.
    #[inline(always)]
    pub fn add(&mut self, o: RawOption<'a>) {
        match o.code {
            code::CLIENTID if self.client_id.is_none() => self.client_id = Some(o.data),
            code::SERVERID if self.server_id.is_none() => self.server_id = Some(o.data),
            code::IA_NA | code::IA_PD => {
                self.ias += 1;
                self.any_ia = true;
            }
            code::IA_TA => self.any_ia = true,
            code::RAPID_COMMIT => self.rapid_commit = true,
            code::ORO if self.oro.is_none() => self.oro = Some(Wanted::from_oro(o.data)),
            _ => {}
        }
    }
}

/// Requested options the server may send, one bit each: the ORO is read once
/// per message instead of searched once per option.
#[derive(Clone, Copy, Default)]
pub(super) struct Wanted(u8);

impl Wanted {
    const CODES: [u16; 4] = [
        code::DNS_SERVERS,
        code::DOMAIN_LIST,
        code::SOL_MAX_RT,
        code::INF_MAX_RT,
    ];

    /// From the data of an ORO (validated by the decoder: an even length).
    #[inline(never)]
    fn from_oro(oro: &[u8]) -> Wanted {
        let mut bits = 0u8;
        for c in oro
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
        {
            if let Some(i) = Self::CODES.iter().position(|&k| k == c) {
                bits |= 1 << i;
            }
        }
        Wanted(bits)
    }

    /// Whether the client asked for option `c` (one of [`Wanted::CODES`]).
    pub fn has(self, c: u16) -> bool {
        Self::CODES
            .iter()
            .position(|&k| k == c)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}
