//! The bundle as bytes, and the only code that writes the output folder.
//!
//! A [`Bundle`] is a sorted map of relative paths to contents and modes.
//! A [`Writer`] puts files into a temporary folder beside the destination as
//! they come and renames that into place, so the destination is either the
//! complete bundle or untouched; [`write`] does so for a [`Bundle`] in
//! memory. [`read`] loads a bundle back for `verify`.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write as _;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use camino::{Utf8Path, Utf8PathBuf};
use thiserror::Error;

use crate::validate::sha256_hex;

/// The file every rewind bundle has; `--force` only replaces folders holding it.
pub const MARKER: &str = "plan.json";

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Contents.
    pub bytes: Vec<u8>,
    /// Unix mode (0o755 for scripts, 0o644 otherwise).
    pub mode: u32,
}

/// A complete bundle in memory, keyed by relative path (`/`-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    /// Sorted by path, so that iteration (and SHA256SUMS) is deterministic.
    pub files: BTreeMap<String, File>,
}

impl Bundle {
    /// Adds a file.
    pub fn add(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>, mode: u32) {
        self.files.insert(
            path.into(),
            File {
                bytes: bytes.into(),
                mode,
            },
        );
    }

    /// `sha256sum -c` text over every file but SHA256SUMS itself, sorted by path.
    pub fn checksums(&self) -> String {
        let mut out = String::new();
        for (path, f) in &self.files {
            if path == "SHA256SUMS" {
                continue;
            }
            out.push_str(&sha256_hex(&f.bytes));
            out.push_str("  ");
            out.push_str(path);
            out.push('\n');
        }
        out
    }

    /// Adds SHA256SUMS over the current files.
    pub fn seal(&mut self) {
        let sums = self.checksums();
        self.add("SHA256SUMS", sums, 0o644);
    }
}

/// Why the bundle could not be written or read.
#[derive(Debug, Error)]
pub enum BundleError {
    /// DIR exists and `--force` was not given.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(Utf8PathBuf),
    /// DIR exists but is not a rewind bundle, so even `--force` refuses.
    #[error("{0} exists and is not a rewind bundle (no {MARKER}); refusing to replace it")]
    NotABundle(Utf8PathBuf),
    /// Filesystem error, with the path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: Utf8PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(path: &Utf8Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes the bundle to `dir` atomically (as it is: a sealed bundle brings
/// its own `SHA256SUMS`).
pub fn write(bundle: &Bundle, dir: &Utf8Path, force: bool) -> Result<(), BundleError> {
    let mut w = Writer::create(dir, force)?;
    for (rel, f) in &bundle.files {
        w.send(rel.clone(), f.bytes.clone(), f.mode, false)?;
    }
    w.finish()
}

/// One file on its way to the disk.
struct Job {
    /// Relative path, as in `SHA256SUMS`.
    rel: String,
    bytes: Vec<u8>,
    mode: u32,
    /// Record its sha256 for [`Writer::seal`].
    hash: bool,
}

/// `(relative path, sha256)` of the files one worker hashed.
type Sums = Vec<(String, String)>;

/// Files handed to a worker at a time: one wake-up per batch rather than
/// per file (waking threads cost 5% of compile at 5,000 nodes).
const BATCH: usize = 8;

/// Batches in flight between [`Writer::add`] and the workers. Bounds memory
/// (a few megabytes of scripts) while letting rendering run ahead of writing.
const IN_FLIGHT: usize = 8;

/// At most this many workers: creating files does not scale far on one
/// folder tree, and the caller needs a core to render.
const MAX_WORKERS: usize = 4;

/// Writes a bundle file by file, atomically: files go into a temporary
/// folder beside the destination as they are added, hashed and written by
/// worker threads (one per core, so that the caller renders the next file
/// while the workers hash and the kernel creates the previous ones);
/// [`Writer::finish`] renames the folder into place. Dropped without
/// `finish`, it removes the temporary folder and leaves the destination
/// untouched.
pub struct Writer {
    dir: Utf8PathBuf,
    parent: Utf8PathBuf,
    name: String,
    exists: bool,
    root: Utf8PathBuf,
    /// Files not yet handed over.
    batch: Vec<Job>,
    /// `None` once the workers were joined (or failed).
    tx: Option<SyncSender<Vec<Job>>>,
    workers: Vec<JoinHandle<Result<Sums, BundleError>>>,
    /// What the workers hashed, once joined.
    sums: Sums,
    sealed: bool,
    /// Declared last: dropped (folder removed) after the workers are joined.
    tmp: Option<tempfile::TempDir>,
}

impl Writer {
    /// Checks the destination (an existing `dir` is replaced only with
    /// `force`, and only if it holds a rewind bundle) and creates the
    /// temporary folder beside it.
    pub fn create(dir: &Utf8Path, force: bool) -> Result<Self, BundleError> {
        let exists = dir.symlink_metadata().is_ok();
        if exists {
            if !force {
                return Err(BundleError::Exists(dir.to_owned()));
            }
            if !dir.join(MARKER).is_file() {
                return Err(BundleError::NotABundle(dir.to_owned()));
            }
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_str().is_empty() => p.to_owned(),
            _ => Utf8PathBuf::from("."),
        };
        let name = dir.file_name().unwrap_or("bundle").to_owned();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.rewind-tmp-"))
            .tempdir_in(&parent)
            .map_err(io(&parent))?;
        let root = Utf8Path::from_path(tmp.path())
            .ok_or_else(|| BundleError::Io {
                path: parent.clone(),
                source: std::io::Error::other("temporary folder path is not UTF-8"),
            })?
            .to_owned();
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let rx = Arc::new(Mutex::new(rx));
        let count = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
        let mut workers = Vec::with_capacity(count);
        for _ in 0..count {
            let (rx, root) = (Arc::clone(&rx), root.clone());
            let worker = std::thread::Builder::new()
                .name("rewind-writer".into())
                .spawn(move || write_jobs(&rx, &root))
                .map_err(io(&parent))?;
            workers.push(worker);
        }
        Ok(Self {
            dir: dir.to_owned(),
            parent,
            name,
            exists,
            root,
            batch: Vec::with_capacity(BATCH),
            tx: Some(tx),
            workers,
            sums: Vec::new(),
            sealed: false,
            tmp: Some(tmp),
        })
    }

    /// Adds a file (relative, `/`-separated path); its hash goes into
    /// [`Writer::seal`]'s `SHA256SUMS`.
    pub fn add(
        &mut self,
        path: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<(), BundleError> {
        self.send(path.into(), bytes.into(), mode, true)
    }

    /// Hands a file to the workers (in batches).
    fn send(
        &mut self,
        rel: String,
        bytes: Vec<u8>,
        mode: u32,
        hash: bool,
    ) -> Result<(), BundleError> {
        if self.tx.is_none() {
            return Err(self.misuse("file added after seal or after an error"));
        }
        self.batch.push(Job {
            rel,
            bytes,
            mode,
            hash,
        });
        if self.batch.len() < BATCH {
            return Ok(());
        }
        self.flush()
    }

    /// Hands the pending batch to the workers.
    fn flush(&mut self) -> Result<(), BundleError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let Some(tx) = &self.tx else {
            return Err(self.misuse("file added after seal or after an error"));
        };
        if tx.send(batch).is_ok() {
            return Ok(());
        }
        // Every worker stopped at an error: report it.
        self.join().and(Err(self.misuse("bundle writer stopped")))
    }

    /// Waits until every file is on disk; keeps the hashes; the first error.
    fn join(&mut self) -> Result<(), BundleError> {
        let flushed = if self.tx.is_some() {
            self.flush()
        } else {
            Ok(())
        };
        self.tx = None;
        let mut first = Ok(());
        for worker in self.workers.drain(..) {
            match worker.join() {
                Ok(Ok(sums)) => self.sums.extend(sums),
                Ok(Err(e)) => first = first.and(Err(e)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        first.and(flushed)
    }

    /// Writes `SHA256SUMS` over every file added so far: the same text as
    /// [`Bundle::checksums`] for the same files. Nothing can be added after.
    pub fn seal(&mut self) -> Result<(), BundleError> {
        if self.tx.is_none() {
            return Err(self.misuse("sealed twice or after an error"));
        }
        self.join()?;
        self.sealed = true;
        let mut sums = std::mem::take(&mut self.sums);
        sums.sort_unstable();
        let mut out = String::with_capacity(sums.len() * 100);
        for (path, sum) in &sums {
            out.push_str(sum);
            out.push_str("  ");
            out.push_str(path);
            out.push('\n');
        }
        let path = self.root.join("SHA256SUMS");
        write_file(&path, out.as_bytes(), 0o644).map_err(io(&path))
    }

    /// A programming error in the caller, reported rather than ignored.
    fn misuse(&self, what: &str) -> BundleError {
        BundleError::Io {
            path: self.root.clone(),
            source: std::io::Error::other(format!("bug in rewind: bundle writer: {what}")),
        }
    }

    /// Waits for every file, then renames the folder into place (replacing
    /// an existing bundle only now that the new one is complete).
    pub fn finish(mut self) -> Result<(), BundleError> {
        if self.tx.is_none() && !self.sealed {
            return Err(self.misuse("finished after an error"));
        }
        self.join()?;
        let (dir, parent, name, root) = (&self.dir, &self.parent, &self.name, &self.root);
        set_mode(root, 0o755)?;
        if self.exists {
            // Move the old bundle out of the way first, then swap; the old one is
            // removed only once the new one is in place.
            let old = parent.join(format!(".{name}.rewind-old"));
            let _ = fs::remove_dir_all(&old);
            fs::rename(dir, &old).map_err(io(dir))?;
            if let Err(e) = fs::rename(root, dir) {
                let _ = fs::rename(&old, dir);
                return Err(BundleError::Io {
                    path: dir.to_owned(),
                    source: e,
                });
            }
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(root, dir).map_err(io(dir))?;
        }
        // The temporary folder was renamed away; nothing is left to clean up.
        if let Some(tmp) = self.tmp.take() {
            let _ = tmp.keep();
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Unfinished: stop the workers before the temporary folder goes.
        self.tx = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A worker: takes files until the channel closes, hashes those that are
/// to be sealed, and writes each with its mode. Stops at the first error
/// (once every worker has, the sender fails and [`Writer::join`] reports it).
fn write_jobs(rx: &Mutex<Receiver<Vec<Job>>>, root: &Utf8Path) -> Result<Sums, BundleError> {
    let mut sums = Vec::new();
    // Scripts of one host arrive step by step, interleaved with other hosts:
    // remember the folders made rather than asking the filesystem each time.
    let mut made: HashSet<Utf8PathBuf> = HashSet::new();
    loop {
        // The guard is dropped at the end of the statement: one worker waits
        // for the next file while the others write theirs.
        let next = rx
            .lock()
            .map_err(|_| BundleError::Io {
                path: root.to_owned(),
                source: std::io::Error::other("bug in rewind: bundle writer lock poisoned"),
            })?
            .recv();
        let Ok(batch) = next else { break };
        for job in batch {
            let path = root.join(&job.rel);
            if let Some(p) = path.parent()
                && !made.contains(p)
            {
                fs::create_dir_all(p).map_err(io(p))?;
                made.insert(p.to_owned());
            }
            if job.hash {
                sums.push((job.rel, sha256_hex(&job.bytes)));
            }
            write_file(&path, &job.bytes, job.mode).map_err(io(&path))?;
        }
    }
    Ok(sums)
}

/// Creates a new file with exactly `mode` (whatever the umask took away at
/// creation is put back with `fchmod`, no second path lookup).
fn write_file(path: &Utf8Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = create_file(path, mode)?;
    file.write_all(bytes)?;
    set_file_mode(&file, mode)
}

#[cfg(unix)]
fn create_file(path: &Utf8Path, mode: u32) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn create_file(path: &Utf8Path, _: u32) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// The exact mode, whatever the umask took away at creation (`fchmod`, no
/// second path lookup).
#[cfg(unix)]
fn set_file_mode(file: &fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_file_mode(_: &fs::File, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Utf8Path, mode: u32) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))
}

#[cfg(not(unix))]
fn set_mode(_: &Utf8Path, _: u32) -> Result<(), BundleError> {
    Ok(())
}

/// Reads every regular file under `dir` (for `verify`).
pub fn read(dir: &Utf8Path) -> Result<Bundle, BundleError> {
    let mut bundle = Bundle::default();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let path = Utf8PathBuf::from_path_buf(entry.path()).map_err(|p| BundleError::Io {
                path: d.clone(),
                source: std::io::Error::other(format!("not UTF-8: {}", p.display())),
            })?;
            let ty = entry.file_type().map_err(io(&path))?;
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() {
                let bytes = fs::read(&path).map_err(io(&path))?;
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .as_str()
                    .replace('\\', "/");
                bundle.add(rel, bytes, mode_of(&entry));
            }
        }
    }
    Ok(bundle)
}

#[cfg(unix)]
fn mode_of(entry: &fs::DirEntry) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    entry
        .metadata()
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[cfg(not(unix))]
fn mode_of(_: &fs::DirEntry) -> u32 {
    0o644
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bundle {
        let mut b = Bundle::default();
        b.add("nodes/b/01-x.sh", "#!/bin/sh\n", 0o755);
        b.add("README.md", "# r\n", 0o644);
        b.add("nodes/a/01-x.sh", "#!/bin/sh\n:\n", 0o755);
        b.add(MARKER, "{}\n", 0o644);
        b
    }

    #[test]
    fn streamed_bundle_is_the_bundle_in_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(tmp.path()).unwrap().join("out");
        let mut want = sample();
        let mut w = Writer::create(&dir, false).unwrap();
        for (path, f) in &want.files {
            w.add(path.clone(), f.bytes.clone(), f.mode).unwrap();
        }
        w.seal().unwrap();
        w.finish().unwrap();
        want.seal();
        assert_eq!(read(&dir).unwrap(), want);
    }

    #[test]
    fn unfinished_writer_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(tmp.path()).unwrap().join("out");
        let mut w = Writer::create(&dir, false).unwrap();
        w.add("README.md", "x", 0o644).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn write_error_is_reported_and_nothing_is_renamed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(tmp.path()).unwrap().join("out");
        let mut w = Writer::create(&dir, false).unwrap();
        // The same path twice: the second creation fails on the writing thread.
        let mut failed = false;
        for _ in 0..=(IN_FLIGHT + 2) * BATCH {
            if w.add("README.md", "x", 0o644).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed || w.finish().is_err());
        assert!(!dir.exists());
    }
}
