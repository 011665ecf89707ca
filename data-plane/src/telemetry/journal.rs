//! Write-ahead copies of usage not yet safe: the batch being gathered and the batches in flight
//! to a control plane, one `<id>.journal` file each in the spool directory, written (not synced)
//! as records arrive and removed once the batch is delivered or in the spool. A data plane that is
//! killed (SIGKILL, the OOM killer, a panic that aborts) loses no usage: its next start moves
//! what the journals hold into the spool, and the control plane stores each record once (record
//! ids), even those that had already been delivered. A machine that loses power can still lose
//! the writes its kernel had not flushed: only the spool is synced.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use tokenrouter_proto::v1::UsageRecord;

use crate::telemetry::spool::{frame, read_frames};

const SUFFIX: &str = ".journal";

/// The journal directory (the spool's).
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

/// One batch's write-ahead copy; created at its first record.
#[derive(Debug)]
pub struct Entry {
    dir: Option<PathBuf>,
    file: Option<(PathBuf, File)>,
}

impl Journal {
    pub fn new(dir: &Path) -> Journal {
        Journal {
            dir: dir.to_path_buf(),
        }
    }

    /// What earlier runs left: each journal's records (a frame torn by the crash is left out)
    /// and the file to remove once they are in the spool.
    pub fn leftovers(&self) -> Vec<(PathBuf, Vec<UsageRecord>)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(PathBuf, Vec<UsageRecord>)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.to_str().is_some_and(|s| s.ends_with(SUFFIX)))
            .filter_map(|path| match read_frames(&path) {
                Ok((batches, _)) => Some((path, batches.concat())),
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "cannot read a usage journal");
                    None
                }
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// A new, empty entry.
    pub fn begin(&self) -> Entry {
        Entry {
            dir: Some(self.dir.clone()),
            file: None,
        }
    }
}

impl Entry {
    /// An entry that writes nothing (no spool directory).
    pub fn none() -> Entry {
        Entry {
            dir: None,
            file: None,
        }
    }

    /// Appends `records`. A failure is logged and the entry stops writing: the records are still
    /// held in memory, only their crash copy is lost.
    pub fn append(&mut self, records: &[UsageRecord]) {
        if records.is_empty() {
            return;
        }
        if self.file.is_none() {
            let Some(dir) = self.dir.take() else { return };
            // Time-ordered names, so leftovers are spooled oldest first.
            let name = format!(
                "{:020}-{}{SUFFIX}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
                uuid::Uuid::new_v4().simple()
            );
            let path = dir.join(name);
            let mut options = OpenOptions::new();
            options.create_new(true).append(true);
            // Usage names keys and end users: owner-only, like the spool.
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(file) => self.file = Some((path, file)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot write the usage journal; a crash now would lose this batch");
                    return;
                }
            }
        }
        if let Some((path, file)) = &mut self.file
            && let Err(e) = file.write_all(&frame(records))
        {
            tracing::warn!(error = %e, "cannot write the usage journal; a crash now would lose this batch");
            let _ = std::fs::remove_file(path);
            self.file = None;
        }
    }

    /// The batch is delivered or spooled: its copy goes.
    pub fn finish(self) {
        if let Some((path, file)) = self.file {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(tag: &str, n: usize) -> Vec<UsageRecord> {
        (0..n)
            .map(|i| UsageRecord {
                record_id: format!("{tag}-{i}"),
                ..Default::default()
            })
            .collect()
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tr-journal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn an_unfinished_entry_is_found_by_the_next_start() {
        let dir = dir();
        let journal = Journal::new(&dir);
        let mut kept = journal.begin();
        kept.append(&records("a", 3));
        kept.append(&records("b", 2));
        let mut done = journal.begin();
        done.append(&records("c", 4));
        done.finish();
        journal.begin().finish();
        // `kept` is never finished: the process died here.
        std::mem::forget(kept);
        let left = journal.leftovers();
        assert_eq!(left.len(), 1);
        let ids: Vec<&str> = left[0].1.iter().map(|r| r.record_id.as_str()).collect();
        assert_eq!(ids, ["a-0", "a-1", "a-2", "b-0", "b-1"]);
    }

    #[test]
    fn a_torn_last_write_loses_only_itself() {
        let dir = dir();
        let journal = Journal::new(&dir);
        let mut entry = journal.begin();
        entry.append(&records("a", 2));
        let (path, _) = entry.file.as_ref().unwrap();
        let path = path.clone();
        let torn = frame(&records("b", 5));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&torn[..torn.len() / 2])
            .unwrap();
        let left = journal.leftovers();
        assert_eq!(left[0].1.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn journals_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let journal = Journal::new(&dir());
        let mut entry = journal.begin();
        entry.append(&records("a", 1));
        let (path, _) = entry.file.as_ref().unwrap();
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
