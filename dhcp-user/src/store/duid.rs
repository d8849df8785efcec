//! The server's own DUID: generated once, then the same for the life of
//! `state_dir` (RFC 9915 §11: "a server ... MUST NOT change [its DUID]").

use std::io::Write;

use super::dirfd::StateDir;
use super::layout::{sync_dir, DUID_FILE, DUID_TMP};
use super::StoreError;

/// Shortest DUID: a 2-byte type code and at least one byte of content.
const MIN_DUID_LEN: usize = 3;
// Longest DUID: RFC 9915 §11.1, at most 128 octets after the type code.
use dhcp_common::MAX_DUID_LEN;

/// Return the DUID stored in `dir/server-duid`, or create it from `fresh()`
/// (written to a new 0600 temp file, fsynced, renamed, directory fsynced)
/// when the file does not exist. A damaged file is an error, never silently
/// replaced: every client's binding refers to this DUID. Like every file in
/// the state directory, `server-duid` must not be a link and must have the
/// owner and mode [`StateDir`] requires.
pub fn load_or_create_duid(
    dir: &StateDir,
    fresh: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    let path = dir.path_of(DUID_FILE);
    if let Some(text) = dir.read_if_present(DUID_FILE)? {
        let duid = hex::decode(text.trim_ascii()).map_err(|e| StoreError::BadDuidFile {
            path: path.clone(),
            reason: format!("not hex: {e}"),
        })?;
        check_len(&duid).map_err(|reason| StoreError::BadDuidFile { path, reason })?;
        return Ok(duid);
    }
    let duid = fresh();
    check_len(&duid).map_err(StoreError::InvalidDuid)?;
    // A temp file left by an earlier try (or a link put there) is removed,
    // never written through.
    dir.remove_if_present(DUID_TMP)?;
    let mut f = dir.create_new(DUID_TMP)?;
    writeln!(f, "{}", hex::encode(&duid))
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::io(&dir.path_of(DUID_TMP), e))?;
    dir.rename(DUID_TMP, DUID_FILE)?;
    sync_dir(dir)?;
    Ok(duid)
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
