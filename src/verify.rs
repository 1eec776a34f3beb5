//! `rewind verify DIR`: a bundle is intact when every file is listed in
//! SHA256SUMS with the right hash, nothing unlisted was added, every script
//! `plan.json` names is there, every script has mode 0755, and the folder
//! holds nothing but regular files and folders (a link could point the
//! operator anywhere; a FIFO or device would make a checker hang).
//! `SHA256SUMS` itself must be well-formed: one `<sha256>  <path>` line per
//! file, relative paths without `.`, `..` or empty components.
//!
//! `templates/verify.sh.j2` applies the same rules on the hosts. Both
//! protect against damage in transit, not against someone who can rewrite
//! the whole folder: the digest of `SHA256SUMS` ([`Report::digest`]),
//! compared with one published out of band, does (docs/security-model.md).

use std::collections::{BTreeMap, BTreeSet};

use camino::{Utf8Path, Utf8PathBuf};

use crate::bundle::{Bundle, describe_type, open_regular, read_capped};
use crate::digest::{is_sha256_hex, sha256_hex, sha256_hex_of};
use crate::manifest::{self, Manifest};

/// The largest `SHA256SUMS` or `plan.json` read (a 5,000-node bundle's are
/// a few MiB).
const MAX_META: u64 = 64 * 1024 * 1024;

/// What `verify` found in a folder.
#[derive(Debug, Default)]
pub struct Report {
    /// Regular files listed in SHA256SUMS and checked.
    pub files: usize,
    /// sha256 of `SHA256SUMS`: one value that pins the whole bundle.
    pub digest: Option<String>,
    /// Every problem; empty means intact.
    pub problems: Vec<String>,
}

/// One entry of `SHA256SUMS`.
struct Listed {
    hash: String,
    path: String,
}

/// Parses `SHA256SUMS` strictly; malformed lines become problems.
fn parse_sums(bytes: &[u8], problems: &mut Vec<String>) -> Vec<Listed> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        problems.push("SHA256SUMS is not UTF-8 text".into());
        return Vec::new();
    };
    if !text.is_empty() && !text.ends_with('\n') {
        problems.push("SHA256SUMS: the last line has no newline (truncated?)".into());
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((hash, path)) = line.split_once("  ") else {
            problems.push(format!("SHA256SUMS line {n}: not `<sha256>  <path>`"));
            continue;
        };
        if !is_sha256_hex(hash) {
            problems.push(format!(
                "SHA256SUMS line {n}: not a lowercase sha256 before the two spaces"
            ));
            continue;
        }
        if let Err(why) = safe_path(path) {
            problems.push(format!("SHA256SUMS line {n}: {why}"));
            continue;
        }
        if path == "SHA256SUMS" {
            problems.push(format!("SHA256SUMS line {n}: lists SHA256SUMS itself"));
            continue;
        }
        if !seen.insert(path) {
            problems.push(format!("SHA256SUMS line {n}: lists {path} a second time"));
            continue;
        }
        out.push(Listed {
            hash: hash.to_owned(),
            path: path.to_owned(),
        });
    }
    out
}

/// A path a bundle may list: relative, `/`-separated, with no empty, `.`
/// or `..` component, no backslash and no control character.
fn safe_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("an empty path");
    }
    if path.starts_with('/') {
        return Err("an absolute path");
    }
    if path.split('/').any(|c| c == "..") {
        return Err("a path with `..`");
    }
    if path.split('/').any(|c| c.is_empty() || c == ".") {
        return Err("a path with an empty or `.` component");
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err("a path with a backslash or control character");
    }
    Ok(())
}

/// The scripts `plan.json` names that `exists` does not know.
fn missing_scripts(plan: &[u8], exists: impl Fn(&str) -> bool, problems: &mut Vec<String>) {
    match Manifest::from_json(plan) {
        Err(e) => problems.push(format!("{e} (it does not read as rewind's plan.json)")),
        Ok(manifest) => {
            for p in manifest.steps.iter().flat_map(|s| &s.scripts) {
                if !exists(p) {
                    problems.push(format!("{p}: named in plan.json but missing"));
                }
            }
        }
    }
}

/// True for a file that must be executable (mode 0755): every `.sh` but the
/// runtime library under `lib/`, which scripts source and nobody runs.
fn is_script(path: &str) -> bool {
    Utf8Path::new(path).extension() == Some("sh") && !crate::render::Library::is_library(path)
}

/// Every problem found in a bundle in memory; empty means intact.
pub fn problems(bundle: &Bundle) -> Vec<String> {
    let mut out = Vec::new();
    let Some(sums) = bundle.files.get("SHA256SUMS") else {
        return vec!["SHA256SUMS is missing".into()];
    };
    let listed = parse_sums(&sums.bytes, &mut out);
    let names: BTreeSet<&str> = listed.iter().map(|l| l.path.as_str()).collect();
    for l in &listed {
        match bundle.files.get(&l.path) {
            None => out.push(format!("{}: listed in SHA256SUMS but missing", l.path)),
            Some(f) if sha256_hex(&f.bytes) != l.hash => out.push(format!(
                "{}: sha256 does not match SHA256SUMS (the file was changed)",
                l.path
            )),
            Some(f) if is_script(&l.path) && f.mode & 0o777 != 0o755 => out.push(format!(
                "{}: mode {:o}, not 755 (a script must be executable and writable by its owner only)",
                l.path,
                f.mode & 0o777
            )),
            Some(_) => {}
        }
    }
    for path in bundle.files.keys() {
        if path != "SHA256SUMS" && !names.contains(path.as_str()) {
            out.push(format!(
                "{path}: not listed in SHA256SUMS (added after compile)"
            ));
        }
    }
    match bundle.files.get(manifest::FILE) {
        None => out.push("plan.json is missing".into()),
        Some(f) => missing_scripts(&f.bytes, |p| bundle.files.contains_key(p), &mut out),
    }
    out
}

/// Checks the bundle folder `dir`, streaming each file through the hash (a
/// file of any size costs a fixed buffer). Never follows a link inside the
/// folder and never opens anything but a regular file.
pub fn dir(dir: &Utf8Path) -> std::io::Result<Report> {
    let mut report = Report::default();
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other("not a folder"));
    }
    // Every entry, links not followed.
    let mut files: BTreeMap<String, u32> = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in d.read_dir_utf8()? {
            let entry = entry?;
            let rel = entry
                .path()
                .strip_prefix(dir)
                .map_or_else(|_| entry.path().to_string(), |p| p.as_str().to_owned());
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.into_path());
            } else if ty.is_file() {
                files.insert(rel, mode(&entry.path().to_owned())?);
            } else {
                report.problems.push(format!(
                    "{rel}: {} (a bundle holds only regular files and folders)",
                    describe_type(ty)
                ));
            }
        }
    }
    if !files.contains_key("SHA256SUMS") {
        report.problems.push("SHA256SUMS is missing".into());
        return Ok(report);
    }
    let sums = match read_capped(&dir.join("SHA256SUMS"), MAX_META) {
        Ok(b) => b,
        Err(e) => {
            report.problems.push(format!("SHA256SUMS: {e}"));
            return Ok(report);
        }
    };
    report.digest = Some(sha256_hex(&sums));
    let listed = parse_sums(&sums, &mut report.problems);
    let names: BTreeSet<&str> = listed.iter().map(|l| l.path.as_str()).collect();
    for l in &listed {
        let Some(&m) = files.get(&l.path) else {
            report
                .problems
                .push(format!("{}: listed in SHA256SUMS but missing", l.path));
            continue;
        };
        report.files += 1;
        match hash_file(&dir.join(&l.path)) {
            Err(e) => report.problems.push(format!("{}: {e}", l.path)),
            Ok(h) if h != l.hash => report.problems.push(format!(
                "{}: sha256 does not match SHA256SUMS (the file was changed)",
                l.path
            )),
            Ok(_) => {}
        }
        if is_script(&l.path) && m != 0o755 {
            report.problems.push(format!(
                "{}: mode {m:o}, not 755 (a script must be executable and writable by its owner only)",
                l.path
            ));
        }
    }
    for path in files.keys() {
        if path != "SHA256SUMS" && !names.contains(path.as_str()) {
            report.problems.push(format!(
                "{path}: not listed in SHA256SUMS (added after compile)"
            ));
        }
    }
    if files.contains_key(manifest::FILE) {
        match read_capped(&dir.join(manifest::FILE), MAX_META) {
            Ok(plan) => missing_scripts(&plan, |p| files.contains_key(p), &mut report.problems),
            Err(e) => report.problems.push(format!("plan.json: {e}")),
        }
    } else {
        report.problems.push("plan.json is missing".into());
    }
    Ok(report)
}

/// sha256 of a regular file, read in 64 KiB pieces.
fn hash_file(path: &Utf8PathBuf) -> std::io::Result<String> {
    sha256_hex_of(open_regular(path)?)
}

#[cfg(unix)]
fn mode(path: &Utf8PathBuf) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    Ok(std::fs::symlink_metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode(_: &Utf8PathBuf) -> std::io::Result<u32> {
    Ok(0o755)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_lines_are_strict() {
        let h = "a".repeat(64);
        let mut p = Vec::new();
        let text = format!(
            "{h}  ok.sh\n{h}  ../x\n{h}  /etc/passwd\n{h} *bin\nxyz  a\n{h}  a//b\n{h}  ./c\n{h}  ok.sh\n{}  u\n",
            "A".repeat(64)
        );
        let listed = parse_sums(text.as_bytes(), &mut p);
        assert_eq!(listed.len(), 1, "{p:#?}");
        assert_eq!(p.len(), 8, "{p:#?}");
    }
}
