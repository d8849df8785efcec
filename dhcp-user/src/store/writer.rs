//! The journal writer thread: group commit.
//!
//! Workers push records into a bounded channel. The writer takes everything
//! queued (up to `max_batch_records`), encodes it into one buffer behind a
//! batch header ([`layout::batch_header`]), writes it with one `pwrite` at the
//! end of the segment and calls one `fdatasync`; only after that returns does
//! it publish the new `durable_seq`. One sync thus
//! covers the records of every worker that appended meanwhile.
//!
//! Failure (ENOSPC, EIO): the segment is cut back to its last good length, the
//! batch is kept and retried every `retry_interval`, and `healthy` is cleared
//! so workers stop appending (and stop acknowledging). The batch is never
//! dropped, so the encoder's dictionary stays in step with the file.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{after, never, select, Receiver, RecvTimeoutError, Sender};

use super::codec::Encoder;
use super::dirfd::StateDir;
use super::file::StoreFile;
use super::journal::{JournalOptions, Shared};
use super::layout::{self, BATCH_HEADER_LEN, HEADER_LEN, SEGMENT_MAGIC};
use super::StoreError;
use crate::protocol::LeaseRecord;

/// One record on its way to disk. `first` and `last` mark the first and the
/// final record of an append (one message's lease changes).
#[derive(Clone, Copy)]
pub(crate) struct Msg {
    pub(crate) seq: u64,
    pub(crate) first: bool,
    pub(crate) last: bool,
    pub(crate) rec: LeaseRecord,
}

/// How long [`Writer::complete`] waits for the next record of an open append
/// before it gives up on it (an appender that stopped between two records).
const COMPLETE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Requests other than records.
pub(crate) enum Ctl {
    /// Flush, start a new segment, answer with its generation.
    Rotate(Sender<io::Result<u64>>),
    /// Stop taking records until `release` is dropped (tests).
    Hold {
        held: Sender<()>,
        release: Receiver<()>,
    },
    /// Write what is queued and stop.
    Shutdown,
}

/// Create segment `gen` (0600, never through a link) with its header,
/// durable (file and directory entry). A file that already has the name is
/// an error and is left where it is.
pub(crate) fn create_segment(dir: &StateDir, gen: u64) -> Result<StoreFile, StoreError> {
    let name = layout::segment_name(gen);
    let f = dir.create_new(&name)?;
    let made = f
        .write_all_at(&layout::header(SEGMENT_MAGIC, gen), 0)
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::io(&dir.path_of(&name), e))
        .and_then(|()| dir.sync());
    if let Err(e) = made {
        let _ = dir.remove_if_present(&name);
        return Err(e);
    }
    Ok(f)
}

pub(crate) struct Writer {
    pub(crate) dir: Arc<StateDir>,
    /// `None` while the segment could not be created (full disk at start-up).
    pub(crate) file: Option<StoreFile>,
    pub(crate) gen: u64,
    /// A segment after `gen` whose creation failed (a rotation), until its
    /// removal is durable. While it may still be on disk nothing more is
    /// written to `gen`: after a power loss it would make `gen` a segment
    /// that is not the last, and a torn write at its end damage.
    pub(crate) stray: Option<u64>,
    pub(crate) data: Receiver<Msg>,
    pub(crate) ctl: Receiver<Ctl>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) opts: JournalOptions,
}

struct State {
    seg_len: u64,
    enc: Encoder,
    buf: Vec<u8>,
    buf_records: usize,
    /// Appends whose last record is in `buf`.
    done: Vec<u64>,
    /// Appends whose first record is in `buf` and whose last is not yet
    /// taken. A batch is written only at zero: one message's records land
    /// in one batch, so a crash never replays half a message (a Release of
    /// the binding it moved without the Commit of the new one).
    open: usize,
    /// Highest seq with every seq ≤ it on disk.
    contiguous: u64,
    /// Durable seqs above a gap (an append that got its seq but had not yet sent).
    ahead: BinaryHeap<Reverse<u64>>,
}

impl Writer {
    pub(crate) fn run(mut self) {
        let mut st = State {
            seg_len: HEADER_LEN as u64,
            enc: Encoder::new(),
            buf: Vec::with_capacity(1 << 20),
            buf_records: 0,
            done: Vec::with_capacity(1 << 14),
            open: 0,
            contiguous: 0,
            ahead: BinaryHeap::new(),
        };
        loop {
            if st.buf.is_empty() {
                // Without a segment (start-up on a full disk) nobody appends,
                // so retry creating it on a timer.
                let retry = if self.file.is_none() {
                    after(self.opts.retry_interval)
                } else {
                    never()
                };
                select! {
                    recv(self.data) -> m => match m {
                        Ok(m) => self.take(&mut st, &m),
                        Err(_) => return,
                    },
                    recv(self.ctl) -> c => match c {
                        Ok(c) => if self.control(&mut st, c) { return },
                        Err(_) => return,
                    },
                    recv(retry) -> _ => {
                        if self.segment().is_ok() {
                            self.recovered();
                        }
                        continue;
                    }
                }
            }
            if self.gather(&mut st) {
                return;
            }
            while st.buf_records < self.opts.max_batch_records {
                match self.data.try_recv() {
                    Ok(m) => self.take(&mut st, &m),
                    Err(_) => break,
                }
            }
            self.complete(&mut st);
            if self.flush(&mut st).is_ok() {
                if st.seg_len > self.opts.segment_max_bytes {
                    if let Err(e) = self.rotate(&mut st) {
                        tracing::warn!(error = %e, "could not start a new journal segment; staying on the current one");
                    }
                }
                continue;
            }
            // Unhealthy: keep taking what was queued before workers noticed,
            // answer control requests, retry after a pause.
            let deadline = after(self.opts.retry_interval);
            loop {
                select! {
                    recv(self.data) -> m => if let Ok(m) = m { self.take(&mut st, &m) },
                    recv(self.ctl) -> c => match c {
                        Ok(c) => if self.control(&mut st, c) { return },
                        Err(_) => return,
                    },
                    recv(deadline) -> _ => break,
                }
            }
        }
    }

    /// Let a group gather for `gather_window` before it is written, while
    /// still answering control requests at once. Records sent meanwhile
    /// wait in the channel; the writer is not woken for each of them.
    /// Returns true when the writer must stop.
    fn gather(&mut self, st: &mut State) -> bool {
        let window = self.opts.gather_window;
        // A batch limit of 1 asks for one sync per record: nothing to gather.
        // Nothing taken yet (woken by a control request): nothing to wait for.
        // A full batch already queued: waiting would only add latency.
        if window.is_zero()
            || self.opts.max_batch_records <= 1
            || self.file.is_none()
            || st.buf_records == 0
            || st.buf_records + self.data.len() >= self.opts.max_batch_records
        {
            return false;
        }
        let deadline = Instant::now() + window;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.ctl.recv_timeout(left) {
                Ok(c) => {
                    if self.control(st, c) {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                // No handle left to send control requests: just wait out the window.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left);
                    break;
                }
            }
        }
        false
    }

    fn take(&self, st: &mut State, m: &Msg) {
        if st.buf.is_empty() {
            // Room for the batch header, filled in by `flush`.
            st.buf.extend_from_slice(&[0; BATCH_HEADER_LEN]);
        }
        st.enc.encode(&m.rec, &mut st.buf);
        st.buf_records += 1;
        match (m.first, m.last) {
            (true, false) => st.open += 1,
            (false, true) => st.open = st.open.saturating_sub(1),
            _ => {}
        }
        if m.last {
            st.done.push(m.seq);
        }
    }

    /// Take the rest of every append that has records in the batch. Its
    /// sender is sending them right now (an append sends its records one
    /// after another, checked for room first), so this waits microseconds,
    /// a batch grows by at most one message's records per open append, and
    /// a sender waiting for room in the channel is freed by these receives.
    fn complete(&self, st: &mut State) {
        while st.open > 0 {
            match self.data.recv_timeout(COMPLETE_WAIT) {
                Ok(m) => self.take(st, &m),
                Err(_) => {
                    // Never seen: an appender stopped between two records
                    // of one message. Write what came; the message was
                    // not acknowledged (its seq is never complete).
                    tracing::error!(
                        open = st.open,
                        "journal: an append stopped half-way; writing its first records alone"
                    );
                    st.open = 0;
                }
            }
        }
    }

    /// Returns true when the writer must stop.
    fn control(&mut self, st: &mut State, c: Ctl) -> bool {
        match c {
            Ctl::Rotate(reply) => {
                let r = self.rotate(st);
                let _ = reply.send(r);
                false
            }
            Ctl::Hold { held, release } => {
                let _ = held.send(());
                let _ = release.recv();
                false
            }
            Ctl::Shutdown => {
                while let Ok(m) = self.data.try_recv() {
                    self.take(st, &m);
                }
                self.complete(st);
                if let Err(e) = self.flush(st) {
                    tracing::error!(error = %e, records = st.buf_records, "journal shut down with records not on disk (never acknowledged)");
                }
                true
            }
        }
    }

    fn rotate(&mut self, st: &mut State) -> io::Result<u64> {
        self.flush(st)?;
        // (flush skips it when nothing is queued.)
        self.clear_stray()?;
        let gen = self.gen + 1;
        let made = create_segment(&self.dir, gen).map_err(io::Error::other);
        let made = made.inspect_err(|_| self.stray = Some(gen))?;
        self.file = Some(made);
        self.gen = gen;
        st.seg_len = HEADER_LEN as u64;
        st.enc.reset();
        Ok(gen)
    }

    /// Make the removal of a segment whose creation failed durable.
    fn clear_stray(&mut self) -> io::Result<()> {
        if let Some(gen) = self.stray {
            let cleared = self
                .dir
                .remove_if_present(&layout::segment_name(gen))
                .and_then(|()| self.dir.sync())
                .map_err(io::Error::other);
            if let Err(e) = cleared {
                self.failed(&e);
                return Err(e);
            }
            self.stray = None;
        }
        Ok(())
    }

    /// The current segment, created now if start-up could not.
    fn segment(&mut self) -> io::Result<&StoreFile> {
        if self.file.is_none() {
            // A file with this name is an earlier attempt of ours whose
            // cleanup failed too (`gen` is past every segment recovery
            // found): it must not turn every retry into EEXIST.
            let made = self
                .dir
                .remove_if_present(&layout::segment_name(self.gen))
                .and_then(|()| create_segment(&self.dir, self.gen));
            match made {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    let e = io::Error::other(e);
                    self.failed(&e);
                    return Err(e);
                }
            }
        }
        Ok(self.file.as_ref().expect("set above"))
    }

    /// Count a failed write; the first failure after a success is logged.
    fn failed(&self, e: &io::Error) {
        let sh = &self.shared;
        sh.write_failures.fetch_add(1, Ordering::Relaxed);
        if sh.healthy.swap(false, Ordering::AcqRel) {
            tracing::error!(error = %e, segment = self.gen, "journal write failed: not acknowledging leases until it works again");
        }
    }

    /// Writes work (again): accept appends.
    fn recovered(&self) {
        if !self.shared.healthy.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                segment = self.gen,
                "journal writable again: acknowledging leases"
            );
        }
    }

    fn flush(&mut self, st: &mut State) -> io::Result<()> {
        if st.buf.is_empty() {
            return Ok(());
        }
        crate::fault::hit(crate::fault::Point::JournalWriter);
        let started = Instant::now();
        // (Again on a retry: records taken since are in the batch now.)
        let (head, frames) = st.buf.split_at_mut(BATCH_HEADER_LEN);
        head.copy_from_slice(&layout::batch_header(frames, st.buf_records as u32));
        let sync = self.opts.sync.clone();
        self.clear_stray()?;
        let file = self.segment()?;
        let written = file
            .write_all_at(&st.buf, st.seg_len)
            .and_then(|()| file.sync_data_with(&*sync));
        if let Err(e) = written {
            // Cut off whatever part of the batch reached the file so the retry
            // (or the next start) does not find a half record in the middle.
            let _ = file.set_len(st.seg_len);
            self.failed(&e);
            return Err(e);
        }
        let sh = &self.shared;
        st.seg_len += st.buf.len() as u64;
        sh.records
            .fetch_add(st.buf_records as u64, Ordering::Relaxed);
        sh.bytes.fetch_add(st.buf.len() as u64, Ordering::Relaxed);
        sh.fsyncs.fetch_add(1, Ordering::Relaxed);
        sh.last_commit_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        st.buf.clear();
        st.buf_records = 0;
        for s in st.done.drain(..) {
            st.ahead.push(Reverse(s));
        }
        while let Some(&Reverse(s)) = st.ahead.peek() {
            if s > st.contiguous + 1 {
                break;
            }
            st.contiguous = st.contiguous.max(s);
            st.ahead.pop();
        }
        // Healthy first, so whoever sees the new durable_seq also sees
        // appends accepted again.
        self.recovered();
        // Published only now, after the sync returned: a reply may leave.
        sh.durable.store(st.contiguous, Ordering::Release);
        sh.notify_durable();
        Ok(())
    }
}
