//! Status codes carried in the Status Code option (RFC 9915 §21.13; IANA registry).

/// Success.
pub const SUCCESS: u16 = 0;
/// Failure, reason unspecified.
pub const UNSPEC_FAIL: u16 = 1;
/// The server has no addresses available to assign to the IA(s).
pub const NO_ADDRS_AVAIL: u16 = 2;
/// Client record (binding) unavailable.
pub const NO_BINDING: u16 = 3;
/// The prefix for the address is not appropriate for the link.
pub const NOT_ON_LINK: u16 = 4;
/// Sent by a server to force the client to use multicast (obsolete in RFC 9915).
pub const USE_MULTICAST: u16 = 5;
/// The server has no prefixes available to assign to the IA_PD(s).
pub const NO_PREFIX_AVAIL: u16 = 6;
/// Leasequery: query type not supported (RFC 5007).
pub const UNKNOWN_QUERY_TYPE: u16 = 7;
/// Leasequery: query is malformed (RFC 5007).
pub const MALFORMED_QUERY: u16 = 8;
/// Leasequery: the server does not serve the queried link (RFC 5007).
pub const NOT_CONFIGURED: u16 = 9;
/// Leasequery: the requester is not allowed to query (RFC 5007).
pub const NOT_ALLOWED: u16 = 10;
/// Bulk leasequery: query terminated (RFC 5460).
pub const QUERY_TERMINATED: u16 = 11;
