//! Where usage records wait while no control plane takes them: on disk, a bounded append-only
//! directory of segment files (length-prefixed `UsageBatch` frames, synced per batch, oldest
//! segment dropped and counted only past the size limit) that survives a restart; in memory, a
//! bounded queue, when no directory is configured. Read back oldest first.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use prost::Message;
use tokenrouter_proto::v1::{UsageBatch, UsageRecord};

/// Default size limit of a spool directory.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// A segment is closed, and a new one started, past this size.
const SEGMENT_BYTES: u64 = 8 << 20;
/// Records the in-memory backlog holds before it drops the oldest.
const MEMORY_RECORDS: usize = 100_000;
/// A frame longer than this is corruption, not a batch.
const MAX_FRAME: usize = 64 << 20;

/// Where the spool lives and how large it may grow.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// One batch read back, with where it came from (so it can be removed once delivered).
#[derive(Debug)]
pub struct Waiting {
    pub segment: u64,
    pub batches: Vec<Vec<UsageRecord>>,
}

/// Records waiting for delivery, on disk or in memory.
#[derive(Debug)]
pub enum Backlog {
    Disk(DiskSpool),
    Memory {
        batches: VecDeque<Vec<UsageRecord>>,
        records: usize,
        next: u64,
    },
}

impl Backlog {
    /// The disk spool in `config.dir`, or memory when there is none or it cannot be opened.
    pub fn open(config: Option<&SpoolConfig>) -> Backlog {
        match config.map(DiskSpool::open) {
            Some(Ok(spool)) => {
                if spool.records > 0 {
                    tracing::info!(records = spool.records, dir = %spool.dir.display(), "usage records from an earlier run are waiting in the spool");
                }
                Backlog::Disk(spool)
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot open the usage spool; usage waits in memory only");
                Backlog::memory()
            }
            None => Backlog::memory(),
        }
    }

    fn memory() -> Backlog {
        Backlog::Memory {
            batches: VecDeque::new(),
            records: 0,
            next: 0,
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        match self {
            Backlog::Disk(d) => d.records == 0,
            Backlog::Memory { batches, .. } => batches.is_empty(),
        }
    }

    /// Records waiting.
    pub fn records(&self) -> u64 {
        match self {
            Backlog::Disk(d) => d.records,
            Backlog::Memory { records, .. } => *records as u64,
        }
    }

    /// Adds a batch behind the others; returns how many older records were dropped to make room.
    /// A batch the disk refuses is counted as dropped.
    pub fn append(&mut self, batch: Vec<UsageRecord>) -> u64 {
        if batch.is_empty() {
            return 0;
        }
        match self {
            Backlog::Disk(d) => {
                let n = batch.len() as u64;
                match d.append(&batch) {
                    Ok(dropped) => dropped,
                    Err(e) => {
                        tracing::error!(error = %e, records = n, "cannot write the usage spool; records dropped");
                        n
                    }
                }
            }
            Backlog::Memory {
                batches, records, ..
            } => {
                *records += batch.len();
                batches.push_back(batch);
                let mut dropped = 0;
                while *records > MEMORY_RECORDS && batches.len() > 1 {
                    if let Some(old) = batches.pop_front() {
                        *records -= old.len();
                        dropped += old.len() as u64;
                    }
                }
                dropped
            }
        }
    }

    /// The oldest waiting batches (a whole segment on disk, one batch in memory).
    pub fn oldest(&mut self) -> io::Result<Option<Waiting>> {
        match self {
            Backlog::Disk(d) => d.oldest(),
            Backlog::Memory { batches, next, .. } => Ok(batches.front().map(|b| Waiting {
                segment: *next,
                batches: vec![b.clone()],
            })),
        }
    }

    /// Forgets what [`Backlog::oldest`] returned, once every batch of it is delivered.
    pub fn remove(&mut self, segment: u64) {
        match self {
            Backlog::Disk(d) => d.remove(segment),
            Backlog::Memory {
                batches,
                records,
                next,
            } => {
                if *next == segment
                    && let Some(b) = batches.pop_front()
                {
                    *records -= b.len();
                    *next += 1;
                }
            }
        }
    }
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    bytes: u64,
    records: u64,
}

/// The on-disk spool: `<seq>.spool` files, oldest first; only the last is ever appended to.
#[derive(Debug)]
pub struct DiskSpool {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    writer: Option<BufWriter<File>>,
    bytes: u64,
    records: u64,
}

impl DiskSpool {
    /// Opens (creating) the directory and takes stock of the segments an earlier run left; a
    /// frame cut short by a crash is cut off.
    pub fn open(config: &SpoolConfig) -> io::Result<DiskSpool> {
        std::fs::create_dir_all(&config.dir)?;
        let mut seqs: Vec<u64> = std::fs::read_dir(&config.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".spool")?.parse().ok())
            .collect();
        seqs.sort_unstable();
        let mut spool = DiskSpool {
            dir: config.dir.clone(),
            max_bytes: config.max_bytes.max(SEGMENT_BYTES),
            segments: VecDeque::new(),
            writer: None,
            bytes: 0,
            records: 0,
        };
        for seq in seqs {
            let path = spool.path(seq);
            let (batches, good) = read_frames(&path)?;
            if good < std::fs::metadata(&path)?.len() {
                OpenOptions::new().write(true).open(&path)?.set_len(good)?;
            }
            let records = batches.iter().map(|b| b.len() as u64).sum();
            spool.bytes += good;
            spool.records += records;
            spool.segments.push_back(Segment {
                seq,
                bytes: good,
                records,
            });
        }
        Ok(spool)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.spool"))
    }

    fn append(&mut self, batch: &[UsageRecord]) -> io::Result<u64> {
        let frame = frame(batch);
        let len = frame.len() as u64;
        let full = self
            .segments
            .back()
            .is_none_or(|s| s.bytes + len > SEGMENT_BYTES);
        if self.writer.is_none() || full {
            let seq = self.segments.back().map_or(0, |s| s.seq + 1);
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            // Usage names keys and end users: owner-only, like the snapshot file.
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let file = options.open(self.path(seq))?;
            self.writer = Some(BufWriter::new(file));
            self.segments.push_back(Segment {
                seq,
                bytes: 0,
                records: 0,
            });
        }
        if let Some(w) = self.writer.as_mut() {
            w.write_all(&frame)?;
            w.flush()?;
            w.get_ref().sync_data()?;
        }
        if let Some(s) = self.segments.back_mut() {
            s.bytes += len;
            s.records += batch.len() as u64;
        }
        self.bytes += len;
        self.records += batch.len() as u64;
        let mut dropped = 0;
        while self.bytes > self.max_bytes && self.segments.len() > 1 {
            if let Some(old) = self.segments.pop_front() {
                let _ = std::fs::remove_file(self.path(old.seq));
                self.bytes -= old.bytes;
                self.records -= old.records;
                dropped += old.records;
            }
        }
        if dropped > 0 {
            tracing::error!(
                dropped,
                "the usage spool is full; its oldest records were dropped"
            );
        }
        Ok(dropped)
    }

    fn oldest(&mut self) -> io::Result<Option<Waiting>> {
        let Some(first) = self.segments.front() else {
            return Ok(None);
        };
        let seq = first.seq;
        if self.segments.len() == 1 {
            // Reading the segment being written: close it, so new batches go to the next one.
            self.writer = None;
        }
        let (batches, _) = read_frames(&self.path(seq))?;
        Ok(Some(Waiting {
            segment: seq,
            batches,
        }))
    }

    fn remove(&mut self, segment: u64) {
        if self.segments.front().is_some_and(|s| s.seq == segment) {
            if self.segments.len() == 1 {
                self.writer = None;
            }
            if let Some(old) = self.segments.pop_front() {
                if let Err(e) = std::fs::remove_file(self.path(old.seq)) {
                    tracing::warn!(error = %e, "cannot remove a delivered spool segment");
                }
                self.bytes -= old.bytes;
                self.records -= old.records;
            }
        }
    }
}

/// One batch as the spool and the journal store it: its length (4 bytes, little-endian), then
/// the batch (a `UsageBatch` with only its records), encoded from the borrowed records.
pub(crate) fn frame(records: &[UsageRecord]) -> Vec<u8> {
    // Field 2 of `UsageBatch`: `repeated UsageRecord records`.
    const RECORDS_FIELD: u32 = 2;
    let body_len: usize = records
        .iter()
        .map(|r| prost::encoding::message::encoded_len(RECORDS_FIELD, r))
        .sum();
    let mut frame = Vec::with_capacity(4 + body_len);
    frame.extend_from_slice(&(body_len as u32).to_le_bytes());
    for r in records {
        prost::encoding::message::encode(RECORDS_FIELD, r, &mut frame);
    }
    frame
}

/// Every whole frame of a segment, and the length they cover (a torn last frame is left out).
pub(crate) fn read_frames(path: &std::path::Path) -> io::Result<(Vec<Vec<UsageRecord>>, u64)> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut batches = Vec::new();
    let mut at = 0usize;
    while let Some(head) = bytes.get(at..at + 4) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len).filter(|_| len <= MAX_FRAME) else {
            break;
        };
        match UsageBatch::decode(body) {
            Ok(batch) => batches.push(batch.records),
            Err(_) => break,
        }
        at += 4 + len;
    }
    Ok((batches, at as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(tag: &str, n: usize) -> Vec<UsageRecord> {
        (0..n)
            .map(|i| UsageRecord {
                record_id: format!("{tag}-{i}"),
                metadata_json: "x".repeat(200),
                ..Default::default()
            })
            .collect()
    }

    fn config() -> SpoolConfig {
        SpoolConfig {
            dir: std::env::temp_dir().join(format!("tr-spool-{}", uuid::Uuid::new_v4().simple())),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// The frame encoded from borrowed records is exactly a `UsageBatch` of them.
    #[test]
    fn a_frame_is_a_usage_batch() {
        let records = batch("f", 3);
        let framed = frame(&records);
        let expected = UsageBatch {
            records: records.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(&framed[4..], expected.as_slice());
        assert_eq!(framed[..4], (expected.len() as u32).to_le_bytes());
        assert!(frame(&[]).starts_with(&[0, 0, 0, 0]));
    }

    #[test]
    fn keeps_batches_in_order_across_a_restart_and_cuts_a_torn_frame() {
        let config = config();
        let mut spool = Backlog::open(Some(&config));
        assert!(spool.is_empty());
        assert_eq!(spool.append(batch("a", 3)), 0);
        assert_eq!(spool.append(batch("b", 2)), 0);
        drop(spool);
        // A crash in the middle of a write leaves half a frame behind.
        let segment = config.dir.join(format!("{:020}.spool", 0));
        let mut f = OpenOptions::new().append(true).open(&segment).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut spool = Backlog::open(Some(&config));
        assert_eq!(spool.records(), 5);
        spool.append(batch("c", 1));
        let first = spool.oldest().unwrap().unwrap();
        let ids: Vec<Vec<String>> = first
            .batches
            .iter()
            .map(|b| b.iter().map(|r| r.record_id.clone()).collect())
            .collect();
        assert_eq!(ids, [vec!["a-0", "a-1", "a-2"], vec!["b-0", "b-1"]]);
        // After a restart new batches start a segment of their own; so do batches appended
        // while the only segment is being read.
        spool.remove(first.segment);
        assert_eq!(spool.records(), 1);
        let next = spool.oldest().unwrap().unwrap();
        spool.append(batch("d", 1));
        assert_eq!(next.batches.len(), 1);
        assert_eq!(next.batches[0][0].record_id, "c-0");
        spool.remove(next.segment);
        let last = spool.oldest().unwrap().unwrap();
        assert_eq!(last.batches[0][0].record_id, "d-0");
        spool.remove(last.segment);
        assert!(spool.is_empty());
        std::fs::remove_dir_all(&config.dir).unwrap();
    }

    #[test]
    fn past_its_limit_drops_and_counts_the_oldest_segment() {
        let config = SpoolConfig {
            max_bytes: SEGMENT_BYTES,
            ..config()
        };
        let mut spool = Backlog::open(Some(&config));
        let mut dropped = 0;
        let mut written = 0;
        // ~250 bytes a record: 2,000 records a batch is ~0.5 MiB; 40 batches pass two segments.
        for i in 0..40 {
            dropped += spool.append(batch(&i.to_string(), 2000));
            written += 2000;
        }
        assert!(dropped > 0);
        assert_eq!(spool.records() + dropped, written);
        std::fs::remove_dir_all(&config.dir).unwrap();
    }

    #[test]
    fn memory_backlog_is_bounded_and_counts_what_it_drops() {
        let mut spool = Backlog::open(None);
        let mut dropped = 0;
        for i in 0..12 {
            dropped += spool.append(batch(&i.to_string(), 10_000));
        }
        assert_eq!(dropped, 20_000);
        assert_eq!(spool.records(), 100_000);
        let first = spool.oldest().unwrap().unwrap();
        assert_eq!(first.batches[0][0].record_id, "2-0");
    }
}
