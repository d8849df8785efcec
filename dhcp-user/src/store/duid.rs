//! The server's own DUID: generated once, then the same for the life of
//! `state_dir` (RFC 9915 §11: "a server ... MUST NOT change [its DUID]").

use std::fs;
use std::io::Write;
use std::path::Path;

use super::layout::sync_dir;
use super::StoreError;

const DUID_FILE: &str = "server-duid";

/// Shortest DUID: a 2-byte type code and at least one byte of content.
const MIN_DUID_LEN: usize = 3;
// Longest DUID: RFC 9915 §11.1, at most 128 octets after the type code.
use dhcp_common::MAX_DUID_LEN;

/// Return the DUID stored in `dir/server-duid`, or create it from `fresh()`
/// (written to a temp file, fsynced, renamed, directory fsynced) when the file
/// does not exist. A damaged file is an error, never silently replaced: every
/// client's binding refers to this DUID.
pub fn load_or_create_duid(
    dir: &Path,
    fresh: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    let path = dir.join(DUID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let duid = hex::decode(text.trim()).map_err(|e| StoreError::BadDuidFile {
                path: path.clone(),
                reason: format!("not hex: {e}"),
            })?;
            check_len(&duid).map_err(|reason| StoreError::BadDuidFile { path, reason })?;
            Ok(duid)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let duid = fresh();
            check_len(&duid).map_err(StoreError::InvalidDuid)?;
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
            let tmp = dir.join(format!("{DUID_FILE}.tmp"));
            let write = || -> std::io::Result<()> {
                let mut f = fs::File::create(&tmp)?;
                writeln!(f, "{}", hex::encode(&duid))?;
                f.sync_all()?;
                fs::rename(&tmp, &path)
            };
            write().map_err(|e| StoreError::io(&path, e))?;
            sync_dir(dir)?;
            Ok(duid)
        }
        Err(e) => Err(StoreError::io(&path, e)),
    }
}

fn check_len(duid: &[u8]) -> Result<(), String> {
    if (MIN_DUID_LEN..=MAX_DUID_LEN).contains(&duid.len()) {
        Ok(())
    } else {
        Err(format!(
            "a DUID is {MIN_DUID_LEN}..={MAX_DUID_LEN} bytes, this one has {}",
            duid.len()
        ))
    }
}

/// DUID-UUID (RFC 6355 §4: type 4, then the 16-byte UUID), from 16 random bytes
/// shaped as a version 4 UUID.
pub fn duid_uuid(mut random: [u8; 16]) -> Vec<u8> {
    random[6] = (random[6] & 0x0f) | 0x40;
    random[8] = (random[8] & 0x3f) | 0x80;
    let mut d = vec![0x00, 0x04];
    d.extend_from_slice(&random);
    d
}

/// DUID-LLT (RFC 9915 §11.2: type 1, hardware type, time since 2000-01-01 UTC
/// modulo 2^32, link-layer address) for an Ethernet (hardware type 1) MAC.
pub fn duid_llt(unix_time: u64, mac: [u8; 6]) -> Vec<u8> {
    const Y2K: u64 = 946_684_800;
    let t = (unix_time.saturating_sub(Y2K) & 0xffff_ffff) as u32;
    let mut d = vec![0x00, 0x01, 0x00, 0x01];
    d.extend_from_slice(&t.to_be_bytes());
    d.extend_from_slice(&mac);
    d
}
