//! Any bytes as the state directory's files: `Journal::open` (start-up
//! recovery) never panics; it recovers or refuses with an error; a directory
//! it recovered once recovers the same way again (a torn tail is cut once).
//! The first input byte picks what the rest becomes: the body of a batched
//! segment (`D6JSEG02`), of an old plain-frame segment (`D6JSEG01`), of a
//! snapshot, or a whole file with no header given.
#![no_main]

use std::path::PathBuf;

use dhcp6d::store::Journal;
use libfuzzer_sys::fuzz_target;

fn header(magic: &[u8; 8], gen: u64) -> Vec<u8> {
    let mut h = magic.to_vec();
    h.extend_from_slice(&gen.to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let dir = PathBuf::from(format!(
        "/dev/shm/dhcp6d-fuzz-recovery-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (name, mut file) = match pick % 4 {
        0 => ("journal-0000000000000001.seg", header(b"D6JSEG02", 1)),
        1 => ("journal-0000000000000001.seg", header(b"D6JSEG01", 1)),
        2 => ("snapshot-0000000000000001.snap", header(b"D6SNAP01", 1)),
        _ => ("journal-0000000000000001.seg", Vec::new()),
    };
    file.extend_from_slice(body);
    std::fs::write(dir.join(name), &file).unwrap();
    let first = Journal::open(&dir).map(|(j, r)| {
        drop(j);
        let mut v: Vec<_> = r.iter().map(|b| format!("{b:?}")).collect();
        v.sort();
        v
    });
    if let Ok(first) = first {
        let (j, again) = Journal::open(&dir).expect("what recovered once recovers again");
        drop(j);
        let mut v: Vec<_> = again.iter().map(|b| format!("{b:?}")).collect();
        v.sort();
        assert_eq!(v, first);
    }
    let _ = std::fs::remove_dir_all(&dir);
});
