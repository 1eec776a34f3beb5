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

use crate::digest::sha256_hex;
use crate::manifest::{self, Manifest};

/// The file every rewind bundle has; `--force` only replaces folders holding it.
pub const MARKER: &str = manifest::FILE;

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

    /// The procedure its `plan.json` describes.
    pub fn manifest(&self) -> Result<Manifest, String> {
        let file = self
            .files
            .get(MARKER)
            .ok_or_else(|| format!("no {MARKER}: not a rewind bundle"))?;
        Manifest::from_json(&file.bytes)
    }
}

/// Why the bundle could not be written or read.
#[derive(Debug, Error)]
pub enum BundleError {
    /// DIR exists and `--force` was not given.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(Utf8PathBuf),
    /// DIR exists but is not provably a rewind bundle, so even `--force`
    /// refuses: it could hold something rewind did not write.
    #[error(
        "{0} exists and is not a rewind bundle ({1}); refusing to replace it: move what it holds elsewhere or choose another --out"
    )]
    NotABundle(Utf8PathBuf, String),
    /// SIGINT, SIGTERM or SIGHUP arrived; the temporary folder is removed.
    #[error("interrupted by signal {0}; {1} was left as it was")]
    Interrupted(i32, Utf8PathBuf),
    /// Filesystem error, with the path.
    #[error("{path}: {cause}")]
    Io {
        /// The path involved.
        path: Utf8PathBuf,
        /// The cause (printed in the message, not chained: an error chain
        /// would print it twice).
        cause: std::io::Error,
    },
}

fn io(path: &Utf8Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |cause| BundleError::Io {
        path: path.to_owned(),
        cause,
    }
}

/// `create_dir_all` failing because a part of `--out` is a file says
/// "File exists", which reads as if the bundle were there: say what it is.
fn not_a_folder(parent: &Utf8Path, e: std::io::Error) -> BundleError {
    let file = parent
        .ancestors()
        .find(|p| p.is_file())
        .map(Utf8Path::to_owned);
    match file {
        Some(path) => BundleError::Io {
            path,
            cause: std::io::Error::other(
                "is a file, not a folder: choose another --out, or move the file",
            ),
        },
        None => io(parent)(e),
    }
}

/// tempfile appends `at path "…"` to its errors; [`BundleError::Io`]
/// already names the folder, so the message would name it twice.
fn without_path(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    match text.split_once(" at path \"") {
        Some((cause, _)) if e.raw_os_error().is_none() => std::io::Error::new(e.kind(), cause),
        _ => e,
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
    /// Held on the temporary folder until it is renamed into place.
    _lock: Option<Lock>,
    /// Declared last: dropped (folder removed) after the workers are joined.
    tmp: Option<tempfile::TempDir>,
}

impl Writer {
    /// Checks the destination (an existing `dir` is replaced only with
    /// `force`, and only if it holds a rewind bundle) and creates the
    /// temporary folder beside it.
    pub fn create(dir: &Utf8Path, force: bool) -> Result<Self, BundleError> {
        let meta = dir.symlink_metadata().ok();
        let exists = meta.is_some();
        // `--force` on a link to a bundle replaces the bundle it points to and
        // leaves the link alone.
        let mut target = dir.to_owned();
        if let Some(meta) = &meta {
            if !force {
                return Err(BundleError::Exists(dir.to_owned()));
            }
            if meta.file_type().is_symlink() {
                target = resolve_link(dir)?;
            }
            if let Err(why) = inspect(&target) {
                return Err(BundleError::NotABundle(dir.to_owned(), why));
            }
        }
        let parent = match target.parent() {
            Some(p) if !p.as_str().is_empty() => p.to_owned(),
            _ => Utf8PathBuf::from("."),
        };
        let name = target.file_name().unwrap_or("bundle").to_owned();
        // Missing parents of --out are created (only now: a rejected plan
        // writes nothing).
        fs::create_dir_all(&parent).map_err(|e| not_a_folder(&parent, e))?;
        remove_stale(&parent, &name);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}{TMP_INFIX}"))
            .tempdir_in(&parent)
            .map_err(|e| io(&parent)(without_path(e)))?;
        let root = Utf8Path::from_path(tmp.path())
            .ok_or_else(|| BundleError::Io {
                path: parent.clone(),
                cause: std::io::Error::other("temporary folder path is not UTF-8"),
            })?
            .to_owned();
        // A lock and a marker: a later compile removes this folder if this
        // process dies (SIGKILL) before renaming it, never while it runs.
        let lock = Lock::take(&root).map_err(io(&root))?;
        let partial = root.join(PARTIAL);
        write_file(&partial, b"", 0o644).map_err(io(&partial))?;
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
            dir: target,
            parent,
            name,
            exists,
            root,
            _lock: lock,
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
        if let Some(sig) = crate::interrupt::pending() {
            return Err(BundleError::Interrupted(sig, self.dir.clone()));
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
    /// Returns the sha256 of that text (the bundle digest).
    pub fn seal(&mut self) -> Result<String, BundleError> {
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
        write_file(&path, out.as_bytes(), 0o644).map_err(io(&path))?;
        Ok(sha256_hex(out.as_bytes()))
    }

    /// A programming error in the caller, reported rather than ignored.
    fn misuse(&self, what: &str) -> BundleError {
        BundleError::Io {
            path: self.root.clone(),
            cause: std::io::Error::other(format!("bug in rewind: bundle writer: {what}")),
        }
    }

    /// Waits for every file, then renames the folder into place (replacing
    /// an existing bundle only now that the new one is complete).
    pub fn finish(mut self) -> Result<(), BundleError> {
        if self.tx.is_none() && !self.sealed {
            return Err(self.misuse("finished after an error"));
        }
        self.join()?;
        let (dir, root) = (&self.dir, &self.root);
        set_mode(root, 0o755)?;
        let partial = root.join(PARTIAL);
        fs::remove_file(&partial).map_err(io(&partial))?;
        if let Some(sig) = crate::interrupt::pending() {
            return Err(BundleError::Interrupted(sig, dir.clone()));
        }
        if self.exists {
            // Lock the old bundle too: once swapped, it sits at the temporary
            // path until it is removed, and no other compile may take it for
            // a stale folder meanwhile.
            let _old = Lock::take(dir).ok();
            swap(root, dir, &self.parent, &self.name)?;
            // `root` now holds the old bundle. Marked first, so that a later
            // compile recognises it even half removed.
            let _ = write_file(&root.join(PARTIAL), b"", 0o644);
            remove_marked(root);
        } else {
            rename_new(root, dir).map_err(io(dir))?;
        }
        // The temporary folder was renamed away; nothing is left to clean up.
        if let Some(tmp) = self.tmp.take() {
            let _ = tmp.keep();
        }
        Ok(())
    }
}

/// What [`Writer`] puts between the destination's name and the random
/// suffix of its temporary folder: `.NAME.rewind-tmp-XXXXXX`.
const TMP_INFIX: &str = ".rewind-tmp-";

/// The file that marks a temporary folder as an unfinished bundle; removed
/// just before the folder is renamed into place.
const PARTIAL: &str = ".rewind-partial";

/// The target of a link given as `--out`, which must be a folder.
fn resolve_link(dir: &Utf8Path) -> Result<Utf8PathBuf, BundleError> {
    let real = fs::canonicalize(dir).map_err(io(dir))?;
    Utf8PathBuf::from_path_buf(real).map_err(|p| BundleError::Io {
        path: dir.to_owned(),
        cause: std::io::Error::other(format!(
            "links to a path that is not UTF-8: {}",
            p.display()
        )),
    })
}

/// Removes what an earlier compile of the same destination left when it was
/// killed (SIGKILL, power loss): `.NAME.rewind-tmp-*` folders that nobody
/// holds locked and that are provably rewind's (empty, an unfinished bundle
/// with its marker, or a complete bundle swapped out). Anything else is left
/// alone.
fn remove_stale(parent: &Utf8Path, name: &str) {
    let prefix = format!(".{name}{TMP_INFIX}");
    let Ok(entries) = parent.read_dir_utf8() else {
        return;
    };
    for entry in entries.flatten() {
        let Some(suffix) = entry.file_name().strip_prefix(&prefix) else {
            continue;
        };
        if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let path = entry.path();
        let is_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
        if !is_dir {
            continue;
        }
        let Ok(Some(_lock)) = Lock::try_take(path) else {
            continue; // a compile is writing it now
        };
        // Killed before its marker was written, the folder is empty.
        if fs::remove_dir(path).is_ok() {
            continue;
        }
        let ours = path
            .join(PARTIAL)
            .symlink_metadata()
            .is_ok_and(|m| m.is_file())
            || inspect(path).is_ok();
        if ours {
            remove_marked(path);
        }
    }
}

/// Removes a folder of rewind's, its marker last: killed at any point, what
/// is left still carries the marker (or is empty), so the next compile
/// finishes the job. (`remove_dir_all` may delete the marker first.)
fn remove_marked(dir: &Utf8Path) {
    let Ok(entries) = dir.read_dir_utf8() else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name() == PARTIAL {
            continue;
        }
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(path);
        } else {
            let _ = fs::remove_file(path);
        }
    }
    let _ = fs::remove_file(dir.join(PARTIAL));
    let _ = fs::remove_dir(dir);
}

/// An exclusive `flock` on a folder, released when dropped.
struct Lock(#[allow(dead_code)] fs::File);

impl Lock {
    /// Waits for the lock (`None` where flock does not exist).
    fn take(dir: &Utf8Path) -> std::io::Result<Option<Self>> {
        Self::flock(dir, false)
    }

    /// The lock if nobody holds it; `Ok(None)` if someone does.
    fn try_take(dir: &Utf8Path) -> std::io::Result<Option<Self>> {
        Self::flock(dir, true)
    }

    #[cfg(unix)]
    fn flock(dir: &Utf8Path, nonblocking: bool) -> std::io::Result<Option<Self>> {
        use std::os::fd::AsRawFd as _;
        let file = fs::File::open(dir)?;
        let op = libc::LOCK_EX | if nonblocking { libc::LOCK_NB } else { 0 };
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(Some(Self(file)));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Ok(None)
        } else if nonblocking {
            Err(e)
        } else {
            // A filesystem without flock: the lock is advisory anyway.
            Ok(Some(Self(file)))
        }
    }

    #[cfg(not(unix))]
    fn flock(dir: &Utf8Path, _: bool) -> std::io::Result<Option<Self>> {
        Ok(Some(Self(fs::File::open(dir)?)))
    }
}

/// Puts the complete bundle `new` at `dir` in place of the old one, so that
/// an interruption at any instant leaves `dir` the old or the new bundle:
/// one `renameat2(RENAME_EXCHANGE)` where the filesystem has it (afterwards
/// `new` holds the old bundle). Elsewhere the old folder is renamed aside to
/// a fresh `.NAME.rewind-old-XXXXXX` (never an existing name) and the new one
/// renamed in; `dir` is missing between the two renames.
fn swap(new: &Utf8Path, dir: &Utf8Path, parent: &Utf8Path, name: &str) -> Result<(), BundleError> {
    match exchange(new, dir) {
        Ok(()) => return Ok(()),
        Err(e) if !unsupported(&e) => return Err(io(dir)(e)),
        Err(_) => {}
    }
    let suffix = new
        .file_name()
        .and_then(|n| n.rsplit('-').next())
        .unwrap_or("old");
    let old = parent.join(format!(".{name}.rewind-old-{suffix}"));
    if old.symlink_metadata().is_ok() {
        return Err(io(&old)(std::io::Error::from(
            std::io::ErrorKind::AlreadyExists,
        )));
    }
    fs::rename(dir, &old).map_err(io(dir))?;
    if let Err(e) = fs::rename(new, dir) {
        let _ = fs::rename(&old, dir);
        return Err(io(dir)(e));
    }
    // Where the exchange would have left the old bundle.
    fs::rename(&old, new).map_err(io(&old))
}

/// True when the error says the filesystem or kernel lacks the call.
fn unsupported(e: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP)
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        e.kind() == std::io::ErrorKind::Unsupported
    }
}

#[cfg(target_os = "linux")]
fn renameat2(from: &Utf8Path, to: &Utf8Path, flags: libc::c_uint) -> std::io::Result<()> {
    use std::ffi::CString;
    let cstr = |p: &Utf8Path| {
        CString::new(p.as_str()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from, to) = (cstr(from)?, cstr(to)?);
    // SAFETY: two NUL-terminated paths that live across the call; the raw
    // syscall avoids depending on the C library's renameat2 wrapper.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Exchanges two folders atomically.
#[cfg(target_os = "linux")]
fn exchange(a: &Utf8Path, b: &Utf8Path) -> std::io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Utf8Path, _: &Utf8Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Renames the new bundle to `dir`, which must not exist (a plain rename
/// would silently replace an empty folder created meanwhile).
fn rename_new(from: &Utf8Path, to: &Utf8Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    match renameat2(from, to, libc::RENAME_NOREPLACE) {
        Err(e) if unsupported(&e) => {}
        other => return other,
    }
    if to.symlink_metadata().is_ok() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    fs::rename(from, to)
}

/// Why `dir` is not provably a bundle rewind wrote, or `Ok` if it is: a
/// folder whose `plan.json` parses as rewind's and whose `SHA256SUMS` lists
/// every file in it, with nothing else inside (no links, FIFOs, devices,
/// unlisted files or folders). Only such a folder may be replaced or removed.
pub fn inspect(dir: &Utf8Path) -> Result<(), String> {
    let meta = dir
        .symlink_metadata()
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a folder".into());
    }
    let plan = read_capped(&dir.join(MARKER), MAX_META)
        .map_err(|e| format!("no readable {MARKER}: {e}"))?;
    Manifest::from_json(&plan).map_err(|e| {
        let why = e.strip_prefix(&format!("{MARKER}: ")).unwrap_or(&e);
        format!("its {MARKER} is not rewind's: {why}")
    })?;
    let sums = read_capped(&dir.join("SHA256SUMS"), MAX_META)
        .map_err(|e| format!("no readable SHA256SUMS: {e}"))?;
    let sums = String::from_utf8(sums).map_err(|_| "its SHA256SUMS is not text".to_owned())?;
    let mut listed = HashSet::new();
    let mut folders = HashSet::new();
    for line in sums.lines() {
        let Some((_, path)) = line.split_once("  ") else {
            return Err("its SHA256SUMS is not rewind's".into());
        };
        let mut p = Utf8Path::new(path);
        while let Some(parent) = p.parent().filter(|p| !p.as_str().is_empty()) {
            folders.insert(parent.as_str().to_owned());
            p = parent;
        }
        listed.insert(path.to_owned());
    }
    let mut unknown = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = d
            .read_dir_utf8()
            .map_err(|e| format!("cannot list {d}: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list {d}: {e}"))?;
            let rel = entry
                .path()
                .strip_prefix(dir)
                .map_or_else(|_| entry.path().to_string(), |p| p.as_str().to_owned());
            let ty = entry.file_type().map_err(|e| format!("{rel}: {e}"))?;
            let known = if ty.is_dir() {
                folders.contains(&rel)
            } else if ty.is_file() {
                rel == "SHA256SUMS" || listed.contains(&rel)
            } else {
                false
            };
            if !known {
                let what = if ty.is_symlink() {
                    "a link"
                } else if ty.is_dir() {
                    "a folder"
                } else if ty.is_file() {
                    "a file"
                } else {
                    "a special file"
                };
                unknown.push(format!("{what} `{rel}`"));
            } else if ty.is_dir() {
                stack.push(entry.into_path());
            }
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    let more = unknown.len().saturating_sub(3);
    unknown.truncate(3);
    Err(format!(
        "it holds {} that its SHA256SUMS does not list{}",
        unknown.join(", "),
        if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        }
    ))
}

/// The largest `plan.json` or `SHA256SUMS` read (a 5,000-node bundle's are
/// under 2 MiB).
const MAX_META: u64 = 64 * 1024 * 1024;

/// A regular file's bytes, refusing anything else (a FIFO would block, a
/// device never end) and anything larger than `cap`.
pub fn read_capped(path: &Utf8Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let too_large = || {
        std::io::Error::other(format!(
            "larger than {} MiB, the most rewind reads",
            cap / (1024 * 1024)
        ))
    };
    let file = open_regular(path)?;
    if file.metadata()?.len() > cap {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens a path for reading only if it is a regular file: opened without
/// blocking (a FIFO without a writer would block the open itself) and
/// checked with `fstat` before a byte is read.
pub fn open_regular(path: &Utf8Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let ty = file.metadata()?.file_type();
    if !ty.is_file() {
        return Err(std::io::Error::other(format!(
            "not a regular file ({})",
            describe_type(ty)
        )));
    }
    Ok(file)
}

/// A file type in words.
pub fn describe_type(ty: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if ty.is_fifo() {
            return "a FIFO";
        }
        if ty.is_char_device() {
            return "a character device";
        }
        if ty.is_block_device() {
            return "a block device";
        }
        if ty.is_socket() {
            return "a socket";
        }
    }
    if ty.is_dir() {
        "a folder"
    } else if ty.is_symlink() {
        "a symbolic link"
    } else if ty.is_file() {
        "a regular file"
    } else {
        "a special file"
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
                cause: std::io::Error::other("bug in rewind: bundle writer lock poisoned"),
            })?
            .recv();
        let Ok(batch) = next else { break };
        if let Some(sig) = crate::interrupt::pending() {
            return Err(BundleError::Interrupted(sig, root.to_owned()));
        }
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

/// Reads every file under `dir` (for `diff` and `audit`): regular files
/// only, each at most [`MAX_META`] bytes; a link, FIFO, device or socket
/// inside is an error rather than something to follow or block on.
pub fn read(dir: &Utf8Path) -> Result<Bundle, BundleError> {
    let mut bundle = Bundle::default();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let path = Utf8PathBuf::from_path_buf(entry.path()).map_err(|p| BundleError::Io {
                path: d.clone(),
                cause: std::io::Error::other(format!("not UTF-8: {}", p.display())),
            })?;
            let ty = entry.file_type().map_err(io(&path))?;
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() {
                let bytes = read_capped(&path, MAX_META).map_err(io(&path))?;
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .as_str()
                    .replace('\\', "/");
                bundle.add(rel, bytes, mode_of(&entry));
            } else {
                return Err(io(&path)(std::io::Error::other(format!(
                    "{} in a bundle: rewind never writes one",
                    describe_type(ty)
                ))));
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
        .map_or(0, |m| m.permissions().mode() & 0o777)
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
