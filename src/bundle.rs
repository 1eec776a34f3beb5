//! The bundle as bytes, and the only code that writes the output folder.
//!
//! A [`Bundle`] is a sorted map of relative paths to contents and modes.
//! [`write`] puts it into a temporary folder beside the destination and
//! renames that into place, so the destination is either the complete bundle
//! or untouched. [`read`] loads a bundle back for `verify`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;

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

/// Writes the bundle to `dir` atomically.
pub fn write(bundle: &Bundle, dir: &Utf8Path, force: bool) -> Result<(), BundleError> {
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
    let name = dir.file_name().unwrap_or("bundle");
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
    for (rel, f) in &bundle.files {
        let path = root.join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).map_err(io(p))?;
        }
        let mut file = fs::File::create(&path).map_err(io(&path))?;
        file.write_all(&f.bytes).map_err(io(&path))?;
        set_mode(&path, f.mode)?;
    }
    set_mode(&root, 0o755)?;
    if exists {
        // Move the old bundle out of the way first, then swap; the old one is
        // removed only once the new one is in place.
        let old = parent.join(format!(".{name}.rewind-old"));
        let _ = fs::remove_dir_all(&old);
        fs::rename(dir, &old).map_err(io(dir))?;
        if let Err(e) = fs::rename(&root, dir) {
            let _ = fs::rename(&old, dir);
            return Err(BundleError::Io {
                path: dir.to_owned(),
                source: e,
            });
        }
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&root, dir).map_err(io(dir))?;
    }
    // The temporary folder was renamed away; nothing is left to clean up.
    let _ = tmp.keep();
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
