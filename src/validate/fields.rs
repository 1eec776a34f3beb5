//! Field-level rules shared by both distributions: paths, hashes, host
//! names, enumerations, and the `Ctx` that collects diagnostics.

use std::ops::Range;

use crate::choice::Choice;
use crate::diagnostic::{Code, Diagnostic};
use crate::spec::S;

/// Collects diagnostics while validation walks the spec.
#[derive(Default)]
pub struct Ctx {
    /// Everything found so far.
    pub diags: Vec<Diagnostic>,
    /// Byte offset where each line of the plan starts, so that a diagnostic
    /// about one place can name the line of another (a duplicate's first
    /// occurrence) without borrowing the source.
    line_starts: Vec<usize>,
}

impl Ctx {
    /// A context for the plan text `text`.
    pub fn new(text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            diags: Vec::new(),
            line_starts,
        }
    }

    /// The 1-based line of a byte offset in the plan.
    pub fn line(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|&start| start <= offset)
            .max(1)
    }

    /// Records a diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// True once any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    /// A required value: reports `code` at `parent` when it is missing.
    pub fn require<'a, T>(
        &mut self,
        value: &'a Option<S<T>>,
        parent: Option<Range<usize>>,
        key: &str,
        help: &str,
    ) -> Option<&'a S<T>> {
        if value.is_none() {
            self.push(
                Diagnostic::error(
                    Code::Required,
                    parent,
                    format!("missing required key `{key}`"),
                )
                .label(format!(
                    "this table has no `{}`",
                    key.rsplit('.').next().unwrap_or(key)
                ))
                .help(help.to_owned()),
            );
        }
        value.as_ref()
    }

    /// An absolute path without control characters (rule `paths`).
    pub fn path(&mut self, value: &S<String>, key: &str) -> Option<String> {
        let v = value.get_ref();
        let span = Some(value.span());
        if !v.starts_with('/') {
            self.push(
                Diagnostic::error(Code::Paths, span, format!("`{key}` must be an absolute path"))
                    .label("not absolute")
                    .help("write the full path on the host, starting with `/`: scripts run from any directory"),
            );
            return None;
        }
        if let Some(c) = v.chars().find(|c| c.is_control()) {
            let what = match c {
                '\n' => "a newline".to_owned(),
                '\r' => "a carriage return".to_owned(),
                '\t' => "a tab".to_owned(),
                '\0' => "a NUL".to_owned(),
                c => format!("U+{:04X}", u32::from(c)),
            };
            self.push(
                Diagnostic::error(
                    Code::Paths,
                    span,
                    format!("`{key}` contains a control character (newline, tab, NUL, …)"),
                )
                .label(format!("contains {what}"))
                .help("write the path on one line; if a name on the host really contains such a character, rename it there: rewind refuses paths it cannot print safely in a script or runbook"),
            );
            return None;
        }
        if v.split('/').any(|c| c == "..") {
            self.push(
                Diagnostic::error(
                    Code::Paths,
                    span,
                    format!("`{key}` contains a `..` component"),
                )
                .help("write the resolved path"),
            );
            return None;
        }
        // `db//etcd`, `db/./etcd` and `db/.` name the same file as the plain
        // path but compare differently: the rule that the snapshot must not
        // sit inside the live database would not see through them.
        let body = v.strip_suffix('/').unwrap_or(v);
        if body.len() > 1 && body[1..].split('/').any(|c| c.is_empty() || c == ".") {
            let normal: Vec<&str> = v
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            self.push(
                Diagnostic::error(
                    Code::Paths,
                    span,
                    format!("`{key}` is not a normal path (`//`, `/./` or a trailing `/.`)"),
                )
                .label("an empty or `.` component")
                .help(format!("write it as `/{}`", normal.join("/"))),
            );
            return None;
        }
        if v.len() >= PATH_MAX || v.split('/').any(|c| c.len() > NAME_MAX) {
            self.push(
                Diagnostic::error(
                    Code::Paths,
                    span,
                    format!("`{key}` is longer than a path can be"),
                )
                .label(format!("{} bytes", v.len()))
                .help(format!("a path has fewer than {PATH_MAX} bytes and each name in it at most {NAME_MAX}: check the value")),
            );
            return None;
        }
        Some(v.clone())
    }

    /// An absolute directory other than `/`, returned without a trailing
    /// slash (rule `paths`): scripts append `/…` to it, so `/` would turn
    /// every derived path into a different, wrong one.
    pub fn dir(&mut self, value: &S<String>, key: &str) -> Option<String> {
        let v = self.path(value, key)?;
        let trimmed = v.trim_end_matches('/');
        if trimmed.is_empty() {
            self.push(
                Diagnostic::error(
                    Code::Paths,
                    Some(value.span()),
                    format!("`{key}` cannot be `/`"),
                )
                .label("the root directory")
                .help("write the folder itself, e.g. `/var/lib/rancher/rke2`"),
            );
            return None;
        }
        Some(trimmed.to_owned())
    }

    /// A printable single-line value (names, buckets, hosts, users).
    pub fn plain(&mut self, value: &S<String>, key: &str) -> Option<String> {
        let v = value.get_ref();
        if v.is_empty() || v.chars().any(char::is_control) {
            self.push(
                Diagnostic::error(
                    Code::Fields,
                    Some(value.span()),
                    format!("`{key}` must be a non-empty single-line value"),
                )
                .help(
                    "write a non-empty value on one line, without tabs or other control characters",
                ),
            );
            return None;
        }
        // Keys whose values have a shape of their own (kept here, beside the
        // rule every such value passes, so each distribution gets them).
        let host_port = key.ends_with(".endpoint") || key == "datastore.host";
        if host_port && !v.contains("://") && !is_host_port(v, key == "datastore.host") {
            let code = if key.starts_with("datastore.") {
                Code::DatastoreFields
            } else {
                Code::Fields
            };
            self.push(
                Diagnostic::error(
                    code,
                    Some(value.span()),
                    format!("`{key}` is not a host[:port]"),
                )
                .label("expected a host name or address, and an optional port")
                .help("write a host name (`s3.example.internal`), an IPv4 address or a bracketed IPv6 address (`[fd00::1]`), optionally followed by `:port`"),
            );
            return None;
        }
        if key.ends_with("s3.name") && (v == "." || v == "..") {
            self.push(
                Diagnostic::error(
                    Code::Fields,
                    Some(value.span()),
                    format!("`{key}` cannot be `{v}`"),
                )
                .label("not an object name")
                .help("write the snapshot's object name, e.g. `pre-upgrade-server-1-1716239400`"),
            );
            return None;
        }
        Some(v.clone())
    }

    /// A sha256 written as 64 hex digits (rule `hashes`); returned lowercase.
    pub fn sha256(&mut self, value: &S<String>, key: &str) -> Option<String> {
        let v = value.get_ref();
        if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(v.to_ascii_lowercase());
        }
        self.push(
            Diagnostic::error(
                Code::Hashes,
                Some(value.span()),
                format!("`{key}` is not a sha256"),
            )
            .label(format!("{} characters", v.chars().count()))
            .help("write the 64 hex digits that `sha256sum FILE` prints"),
        );
        None
    }

    /// One of the words of `C` (rule `fields`), listing them all when the
    /// value is none of them.
    pub fn one_of<C: Choice>(&mut self, value: &S<String>, key: &str) -> Option<C> {
        if let Some(found) = C::parse(value.get_ref()) {
            return Some(found);
        }
        let list = C::NAMES
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        self.push(
            Diagnostic::error(
                Code::Fields,
                Some(value.span()),
                format!("`{key}` must be one of {list}"),
            )
            .label("unknown value")
            .help(format!("write one of {list}")),
        );
        None
    }
}

/// The longest path the kernel takes, with its NUL (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// The longest name of one path component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// `host[:port]`: a host name (letters in either case), an IPv4 address or a
/// bracketed IPv6 address, then an optional port 1-65535. `bare_v6` also
/// takes an IPv6 address without brackets and port (a database host).
pub fn is_host_port(s: &str, bare_v6: bool) -> bool {
    if bare_v6 && s.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return false,
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    let host_ok = host.is_none_or(|h| {
        h.parse::<std::net::Ipv4Addr>().is_ok() || is_hostname(&h.to_ascii_lowercase())
    });
    port_ok && host_ok
}

/// A host name: lowercase RFC 1123 labels separated by dots, at most 253
/// characters. These names become folder names and are printed bare.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// One DNS label: `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A kubectl-style duration: digits followed by s, m or h (`90s`, `10m`, `1h`).
pub fn is_duration(s: &str) -> bool {
    let Some(unit) = s.chars().last() else {
        return false;
    };
    let digits = &s[..s.len() - unit.len_utf8()];
    matches!(unit, 's' | 'm' | 'h')
        && !digits.is_empty()
        && digits.len() <= 6
        && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(is_hostname("server-1"));
        assert!(is_hostname("node1.example.internal"));
        assert!(!is_hostname("Server-1"));
        assert!(!is_hostname("-a"));
        assert!(!is_hostname("a..b"));
        assert!(!is_hostname("a b"));
        assert!(!is_hostname("a;b"));
    }

    #[test]
    fn lines_count_from_one() {
        let cx = Ctx::new("a = 1\nb = 2\n\nc = 3");
        assert_eq!(cx.line(0), 1);
        assert_eq!(cx.line(5), 1);
        assert_eq!(cx.line(6), 2);
        assert_eq!(cx.line(13), 4);
        assert_eq!(Ctx::default().line(7), 1);
    }

    #[test]
    fn host_ports() {
        for ok in [
            "s3.example.internal:9000",
            "minio",
            "10.0.0.5:9000",
            "[fd00::1]:9000",
            "[fd00::1]",
            "S3.Example.COM",
        ] {
            assert!(is_host_port(ok, false), "{ok}");
        }
        assert!(is_host_port("fd00::1", true));
        for bad in [
            "a b",
            "host:",
            "host:0",
            "host:65536",
            "host:x",
            "a:b@c",
            "/x",
            "host/path",
            "[zz]:1",
            "",
            "a;b",
        ] {
            assert!(!is_host_port(bad, false), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert!(is_duration("10m"));
        assert!(is_duration("90s"));
        assert!(!is_duration("10"));
        assert!(!is_duration("m"));
        assert!(!is_duration("1d"));
    }
}
