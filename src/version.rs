//! Version strings: RKE2 (`v1.28.9+rke2r1`, `v1.24.3-rc1+rke2r1`), K3s
//! (`v1.28.9+k3s1`, parsed as the same type with [`Rke2Version::parse_k3s`]) and Rancher
//! (`v2.4.5`), parsed into values that order the way releases do. The
//! [`Version`] trait is what validation's rules shared by both
//! distributions need of either.

use std::cmp::Ordering;
use std::fmt;

/// An RKE2 release: Kubernetes `MAJOR.MINOR.PATCH`, an optional `-rcN`, and
/// the RKE2 build number `rke2rN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rke2Version {
    /// Kubernetes major.
    pub major: u64,
    /// Kubernetes minor.
    pub minor: u64,
    /// Kubernetes patch.
    pub patch: u64,
    /// Release candidate number, if any (`-rc1` sorts before the release).
    pub rc: Option<u64>,
    /// RKE2 build (`+rke2r2` is newer than `+rke2r1`).
    pub build: u64,
    text: String,
}

/// A Rancher release `vMAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RancherVersion {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
    text: String,
}

/// What the rules shared by both distributions (direction, skipped
/// minors, the snapshot's minor) need of a version, whichever product it
/// numbers: parsing, release order, and the minor line.
pub trait Version: Ord + fmt::Display + Sized {
    /// Parses the product's version syntax.
    fn parse(s: &str) -> Option<Self>;
    /// `MAJOR`.
    fn major(&self) -> u64;
    /// `MINOR`.
    fn minor(&self) -> u64;
    /// `(MAJOR, MINOR)`: a snapshot restores only onto its own minor line.
    fn minor_line(&self) -> (u64, u64) {
        (self.major(), self.minor())
    }
}

impl Version for Rke2Version {
    fn parse(s: &str) -> Option<Self> {
        Self::parse(s)
    }
    fn major(&self) -> u64 {
        self.major
    }
    fn minor(&self) -> u64 {
        self.minor
    }
}

impl Version for RancherVersion {
    fn parse(s: &str) -> Option<Self> {
        Self::parse(s)
    }
    fn major(&self) -> u64 {
        self.major
    }
    fn minor(&self) -> u64 {
        self.minor
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn triple(s: &str) -> Option<(u64, u64, u64)> {
    let mut it = s.split('.');
    let t = (
        number(it.next()?)?,
        number(it.next()?)?,
        number(it.next()?)?,
    );
    it.next().is_none().then_some(t)
}

/// The build tag of RKE2 versions (`+rke2rN`).
pub const RKE2_BUILD: &str = "+rke2r";
/// The build tag of K3s versions (`+k3sN`).
pub const K3S_BUILD: &str = "+k3s";

impl Rke2Version {
    /// Parses `vMAJOR.MINOR.PATCH[-rcN]+rke2rN`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::parse_tagged(s, RKE2_BUILD)
    }

    /// Parses a K3s version, `vMAJOR.MINOR.PATCH[-rcN]+k3sN`: the same
    /// numbers and order as RKE2's, another build tag.
    pub fn parse_k3s(s: &str) -> Option<Self> {
        Self::parse_tagged(s, K3S_BUILD)
    }

    /// Parses `vMAJOR.MINOR.PATCH[-rcN]<tag>N` for the build tag `tag`
    /// ([`RKE2_BUILD`], [`K3S_BUILD`]).
    pub fn parse_tagged(s: &str, tag: &str) -> Option<Self> {
        let rest = s.strip_prefix('v')?;
        let (core, build) = rest.split_once(tag)?;
        // Builds and release candidates count from 1: `+rke2r0` and `-rc0`
        // were never released.
        let build = number(build).filter(|&b| b > 0)?;
        let (core, rc) = match core.split_once("-rc") {
            Some((c, rc)) => (c, Some(number(rc).filter(|&r| r > 0)?)),
            None => (core, None),
        };
        let (major, minor, patch) = triple(core)?;
        Some(Self {
            major,
            minor,
            patch,
            rc,
            build,
            text: s.to_owned(),
        })
    }

    fn key(&self) -> (u64, u64, u64, u64, u64) {
        // A release candidate sorts before the release of the same patch.
        let rc = self.rc.map_or(u64::MAX, |r| r);
        (self.major, self.minor, self.patch, rc, self.build)
    }
}

impl Ord for Rke2Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Rke2Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Rke2Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl RancherVersion {
    /// Parses `vMAJOR.MINOR.PATCH`.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor, patch) = triple(s.strip_prefix('v')?)?;
        Some(Self {
            major,
            minor,
            patch,
            text: s.to_owned(),
        })
    }
}

impl Ord for RancherVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch))
    }
}

impl PartialOrd for RancherVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for RancherVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Rke2Version {
        Rke2Version::parse(s).unwrap()
    }

    #[test]
    fn rke2_versions_order_like_releases() {
        assert!(v("v1.28.9+rke2r1") < v("v1.29.4+rke2r1"));
        assert!(v("v1.28.9+rke2r1") < v("v1.28.9+rke2r2"));
        assert!(v("v1.28.9-rc1+rke2r1") < v("v1.28.9+rke2r1"));
        assert!(v("v1.28.10+rke2r1") > v("v1.28.9+rke2r3"));
    }

    #[test]
    fn rke2_rejects_malformed() {
        for bad in [
            "1.28.9+rke2r1",
            "v1.28+rke2r1",
            "v1.28.9",
            "v1.28.9rke2r1",
            "v1.28.9+k3s1",
            "v1.28.9+rke2r0",
            "v1.28.9-rc0+rke2r1",
            "v1.28.09+rke2r1",
            "v1.28.9+rke2r",
            "v1.28.9-rc+rke2r1",
        ] {
            assert!(Rke2Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn k3s_versions_parse_and_order_like_releases() {
        let k = |s: &str| Rke2Version::parse_k3s(s).unwrap();
        assert!(k("v1.28.9+k3s1") < k("v1.29.4+k3s1"));
        assert!(k("v1.29.4+k3s1") < k("v1.29.4+k3s2"));
        assert!(k("v1.29.4-rc1+k3s1") < k("v1.29.4+k3s1"));
        assert_eq!(k("v1.29.4+k3s1").to_string(), "v1.29.4+k3s1");
        for bad in [
            "v1.29.4+rke2r1",
            "v1.29.4+k3s",
            "v1.29.4+k3s0",
            "v1.29.4+k3sr1",
            "v1.29.4-rc0+k3s1",
            "1.29.4+k3s1",
        ] {
            assert!(Rke2Version::parse_k3s(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn rancher_versions() {
        let a = RancherVersion::parse("v2.4.5").unwrap();
        let b = RancherVersion::parse("v2.4.8").unwrap();
        assert!(a < b);
        assert!(RancherVersion::parse("v2.4").is_none());
        assert!(RancherVersion::parse("2.4.5").is_none());
    }
}
