//! Option codes (IANA "DHCPv6 Option Codes"; RFC 9915 §21 unless noted).

/// Client Identifier (§21.2).
pub const CLIENTID: u16 = 1;
/// Server Identifier (§21.3).
pub const SERVERID: u16 = 2;
/// Identity Association for Non-temporary Addresses (§21.4).
pub const IA_NA: u16 = 3;
/// Identity Association for Temporary Addresses (§21.5; obsolete in RFC 9915, decoded only).
pub const IA_TA: u16 = 4;
/// IA Address (§21.6).
pub const IAADDR: u16 = 5;
/// Option Request (§21.7).
pub const ORO: u16 = 6;
/// Preference (§21.8).
pub const PREFERENCE: u16 = 7;
/// Elapsed Time (§21.9).
pub const ELAPSED_TIME: u16 = 8;
/// Relay Message (§21.10).
pub const RELAY_MSG: u16 = 9;
/// Authentication (§21.11).
pub const AUTH: u16 = 11;
/// Server Unicast (obsolete in RFC 9915, decoded only).
pub const UNICAST: u16 = 12;
/// Status Code (§21.13).
pub const STATUS_CODE: u16 = 13;
/// Rapid Commit (§21.14).
pub const RAPID_COMMIT: u16 = 14;
/// User Class (§21.15).
pub const USER_CLASS: u16 = 15;
/// Vendor Class (§21.16).
pub const VENDOR_CLASS: u16 = 16;
/// Vendor-specific Information (§21.17).
pub const VENDOR_OPTS: u16 = 17;
/// Interface-Id (§21.18).
pub const INTERFACE_ID: u16 = 18;
/// Reconfigure Message (§21.19).
pub const RECONF_MSG: u16 = 19;
/// Reconfigure Accept (§21.20).
pub const RECONF_ACCEPT: u16 = 20;
/// DNS Recursive Name Server (RFC 3646 §3).
pub const DNS_SERVERS: u16 = 23;
/// Domain Search List (RFC 3646 §4).
pub const DOMAIN_LIST: u16 = 24;
/// Identity Association for Prefix Delegation (§21.21).
pub const IA_PD: u16 = 25;
/// IA Prefix (§21.22).
pub const IAPREFIX: u16 = 26;
/// Information Refresh Time (§21.23).
pub const INFORMATION_REFRESH_TIME: u16 = 32;
/// Client FQDN (RFC 4704 §4).
pub const CLIENT_FQDN: u16 = 39;
/// Leasequery query (RFC 5007 §4.1.2.1).
pub const LQ_QUERY: u16 = 44;
/// Leasequery client data (RFC 5007 §4.1.2.2).
pub const CLIENT_DATA: u16 = 45;
/// Leasequery client last transaction time (RFC 5007 §4.1.2.3).
pub const CLT_TIME: u16 = 46;
/// Leasequery relay data (RFC 5007 §4.1.2.4).
pub const LQ_RELAY_DATA: u16 = 47;
/// Leasequery client link (RFC 5007 §4.1.2.5).
pub const LQ_CLIENT_LINK: u16 = 48;
/// Relay-ID (RFC 5460 §5.4.1).
pub const RELAY_ID: u16 = 53;
/// Client Link-Layer Address (RFC 6939 §4).
pub const CLIENT_LINKLAYER_ADDR: u16 = 79;
/// SOL_MAX_RT (§21.24).
pub const SOL_MAX_RT: u16 = 82;
/// INF_MAX_RT (§21.25).
pub const INF_MAX_RT: u16 = 83;
