//! The rules RKE2 and RKE1 plans share, written once over
//! [`crate::version::Version`]: a version parses, the rollback goes to an
//! older version and says when it skips minors, the snapshot comes from the
//! target's minor and not from a newer patch, a given sha256 is one and a
//! missing one is a warning, the snapshot is a file or an S3 object but not
//! both, the `[snapshot.s3]` object, and keys of the other distribution.
//!
//! What fires, under which code, where it points and what it records as
//! checked is decided here. Only the wording differs between Kubernetes
//! releases and Rancher releases (what a version looks like, what ran when
//! the snapshot was taken, how to fix it), and each distribution gives it,
//! as a [`Words`] or as arguments, so diagnostics read as before.

use std::cmp::Ordering;
use std::ops::Range;

use super::TargetOverride;
use super::fields::Ctx;
use crate::choice::Distribution;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::S3;
use crate::spec::{S, S3Spec};
use crate::version::Version;

/// A distribution's wording of the shared rules.
pub(super) struct Words {
    /// What a value that does not parse is not: "an RKE2 version".
    pub version: &'static str,
    /// The label under it: the shape of a version.
    pub version_shape: &'static str,
    /// Its `help:`: what a version looks like and where to read it.
    pub version_help: &'static str,
    /// What ran when the snapshot was taken: "the cluster", "Rancher".
    pub system: &'static str,
    /// Why the snapshot's minor must be the target's, said before "the
    /// target's minor (X.Y)".
    pub minor_rule: &'static str,
    /// How a `help:` names the target to change: "target-version".
    pub target: &'static str,
    /// The label of `snapshot-patch`, if the distribution shows one.
    pub patch_label: Option<&'static str>,
    /// The label of `integrity` on a table without `sha256`, if shown.
    pub unhashed_label: Option<&'static str>,
}

/// Rule `versions`: `v` parses as a `V`.
pub(super) fn version<V: Version>(cx: &mut Ctx, w: &Words, v: &S<String>, key: &str) -> Option<V> {
    V::parse(v.get_ref()).or_else(|| {
        cx.push(
            Diagnostic::error(
                Code::Versions,
                Some(v.span()),
                format!("`{key}` is not {}", w.version),
            )
            .label(format!("expected {}", w.version_shape))
            .help(w.version_help),
        );
        None
    })
}

/// Where the target stands against the current version (rule `direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relation {
    /// Older: a rollback.
    Older,
    /// The same version.
    Same,
    /// Newer: an upgrade, or the two swapped.
    Newer,
}

impl Relation {
    /// How `tgt` stands against `cur`, in release order.
    pub(super) fn of<V: Version>(cur: &V, tgt: &V) -> Self {
        match tgt.cmp(cur) {
            Ordering::Less => Self::Older,
            Ordering::Equal => Self::Same,
            Ordering::Greater => Self::Newer,
        }
    }
}

/// Rules `direction` and `skipped-minors` for a target older than `cur`:
/// records the direction, and warns at `span` when the rollback crosses more
/// than one minor; `word` adds the distribution's label and help.
pub(super) fn older<V: Version>(
    cx: &mut Ctx,
    cur: &V,
    tgt: &V,
    span: Option<Range<usize>>,
    checked: &mut Vec<String>,
    word: impl FnOnce(Diagnostic) -> Diagnostic,
) {
    checked.push(format!("direction: {tgt} is older than {cur}"));
    if cur.major() == tgt.major() && cur.minor() > tgt.minor() + 1 {
        let d = Diagnostic::warning(
            Code::SkippedMinors,
            span,
            format!(
                "rolling back across {} minors ({cur} → {tgt})",
                cur.minor() - tgt.minor()
            ),
        );
        cx.push(word(d));
    }
}

/// The minors strictly between a target and a current version more than
/// one minor apart: "1 minor (1.29)", "2 minors (1.29 to 1.30)".
pub(super) fn minors_between<V: Version>(cur: &V, tgt: &V) -> String {
    let (first, last) = (tgt.minor() + 1, cur.minor() - 1);
    if first == last {
        format!("1 minor ({}.{first})", tgt.major())
    } else {
        format!(
            "{} minors ({}.{first} to {}.{last})",
            last - first + 1,
            tgt.major(),
            tgt.major()
        )
    }
}

/// Rules `snapshot-minor` and `snapshot-patch`: the snapshot, `taken` on the
/// version written at `at`, comes from the target's minor, and a newer patch
/// than the target is a warning. `to` is the `--to` value when the wording
/// names it.
pub(super) fn snapshot_minor<V: Version>(
    cx: &mut Ctx,
    w: &Words,
    at: Range<usize>,
    taken: &V,
    target: &V,
    to: TargetOverride<'_>,
    checked: &mut Vec<String>,
) {
    if taken.minor_line() != target.minor_line() {
        let ((tmaj, tmin), (maj, min)) = (taken.minor_line(), target.minor_line());
        let (label, set_target) = match to {
            Some(_) => (
                format!("taken on {tmaj}.{tmin}; `--to` asks for {target}"),
                format!("pass `--to {taken}`"),
            ),
            None => (
                format!("taken on {tmaj}.{tmin}"),
                format!(
                    "set {} to the version this snapshot was taken on ({taken})",
                    w.target
                ),
            ),
        };
        cx.push(
            Diagnostic::error(
                Code::SnapshotMinor,
                Some(at),
                format!(
                    "the snapshot was taken on {taken}, but the target is {target}: {} the target's minor ({maj}.{min})",
                    w.minor_rule
                ),
            )
            .label(label)
            .help(format!(
                "restore a snapshot taken while {} ran v{maj}.{min}.x, or {set_target}",
                w.system
            )),
        );
        return;
    }
    checked.push(format!(
        "snapshot-minor: the snapshot was taken on {taken}, the target's minor"
    ));
    if taken > target {
        let mut d = Diagnostic::warning(
            Code::SnapshotPatch,
            Some(at),
            format!("the snapshot was taken on {taken}, newer than the target {target}"),
        )
        .help("the restored data comes from a newer patch release; roll back to the version the snapshot was taken on if you can");
        if let Some(label) = w.patch_label {
            d = d.label(label);
        }
        cx.push(d);
    }
}

/// Rule `hashes` for the sha256 at `key`, and rule `integrity` when the
/// table (at `table`) has none: the scripts can then only check that
/// `exists` ("the file exists"); `help` says where the hash comes from.
/// `Some(None)` when there is no hash, `None` when it is not one.
pub(super) fn sha256(
    cx: &mut Ctx,
    w: &Words,
    value: &Option<S<String>>,
    key: &str,
    table: Option<Range<usize>>,
    exists: &str,
    help: &str,
) -> Option<Option<String>> {
    if let Some(h) = value {
        return cx.sha256(h, key).map(Some);
    }
    let mut d = Diagnostic::warning(
        Code::Integrity,
        table,
        format!("no `{key}`: the scripts can only check that {exists}"),
    )
    .help(help);
    if let Some(label) = w.unhashed_label {
        d = d.label(label);
    }
    cx.push(d);
    Some(None)
}

/// Rule `paths`: a snapshot is a file (`path`) or an S3 object, not both.
/// The diagnostic points at `path`; the caller adds its help.
pub(super) fn path_and_s3(path: &S<String>) -> Diagnostic {
    Diagnostic::error(
        Code::Paths,
        Some(path.span()),
        "the snapshot has both `path` and [snapshot.s3]",
    )
}

/// The object name of `[snapshot.s3]` when the plan leaves it out.
#[derive(Debug, Clone, Copy)]
pub(super) enum ObjectName<'a> {
    /// It is required (RKE2: the etcd snapshot's file name).
    Required,
    /// It is `<name>.zip`, what rke uploads for the snapshot `name` (RKE1
    /// disaster recovery); `None` when that name is itself refused.
    Snapshot(Option<&'a str>),
}

/// `[snapshot.s3]`: bucket, folder, endpoint, region and the object name
/// (rule `fields`), and RKE2's TLS settings. RKE1 refuses those settings,
/// and an endpoint with a scheme, with its own wording before calling this.
pub(super) fn s3(s3: &S<S3Spec>, cx: &mut Ctx, default: ObjectName<'_>) -> Option<S3> {
    let span = Some(s3.span());
    let s = s3.get_ref();
    let name = match (&s.name, default) {
        (None, ObjectName::Snapshot(snapshot)) => snapshot.map(|n| format!("{n}.zip")),
        (name, _) => cx
            .require(
                name,
                span.clone(),
                "snapshot.s3.name",
                "add `name = \"<snapshot file name>\"`",
            )
            .and_then(|n| cx.plain(n, "snapshot.s3.name")),
    };
    let bucket = cx
        .require(
            &s.bucket,
            span,
            "snapshot.s3.bucket",
            "add `bucket = \"<bucket>\"`",
        )
        .and_then(|n| cx.plain(n, "snapshot.s3.bucket"));
    let opt = |cx: &mut Ctx, v: &Option<S<String>>, key: &str| match v {
        None => Some(None),
        Some(v) => cx.plain(v, key).map(Some),
    };
    let folder = opt(cx, &s.folder, "snapshot.s3.folder");
    let mut endpoint = opt(cx, &s.endpoint, "snapshot.s3.endpoint");
    // RKE2's --etcd-s3-endpoint (and s3cmd's --host) take host[:port]; a
    // scheme makes the restore fail only once the cluster is already down.
    if let (Some(Some(e)), Some(v)) = (&endpoint, &s.endpoint)
        && let Some((scheme, rest)) = e.split_once("://")
    {
        let host = rest.trim_end_matches('/');
        cx.push(
            Diagnostic::error(
                Code::Fields,
                Some(v.span()),
                "`snapshot.s3.endpoint` is a host[:port], not a URL",
            )
            .label(format!("remove `{scheme}://`"))
            .help(format!(
                "write `endpoint = \"{host}\"`: RKE2 takes the host and port only"
            )),
        );
        endpoint = None;
    }
    let region = opt(cx, &s.region, "snapshot.s3.region");
    if let Some(n) = &name
        && n.contains('/')
    {
        cx.push(
            Diagnostic::error(
                Code::Fields,
                s.name.as_ref().map(S::span),
                "`snapshot.s3.name` is a file name, not a path",
            )
            .help("put the folder part in `folder`"),
        );
        return None;
    }
    let endpoint_ca = match &s.endpoint_ca {
        None => Some(None),
        Some(v) => cx.path(v, "snapshot.s3.endpoint-ca").map(Some),
    };
    let flag = |v: &Option<S<bool>>| v.as_ref().is_some_and(|b| *b.get_ref());
    Some(S3 {
        name: name?,
        bucket: bucket?,
        folder: folder?,
        endpoint: endpoint?,
        region: region?,
        insecure: flag(&s.insecure),
        skip_ssl_verify: flag(&s.skip_ssl_verify),
        endpoint_ca: endpoint_ca?,
    })
}

/// Rule `fields`: a key of the `owner` distribution's plans, at `span`,
/// in a plan of the other one; `help` says what to do instead.
pub(super) fn misplaced(
    cx: &mut Ctx,
    owner: Distribution,
    span: Range<usize>,
    key: &str,
    help: &str,
) {
    cx.push(
        Diagnostic::error(
            Code::Fields,
            Some(span),
            format!("`{key}` belongs to {owner} plans"),
        )
        .help(help),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{RancherVersion, Rke2Version};

    fn rke2(s: &str) -> Rke2Version {
        Rke2Version::parse(s).unwrap()
    }

    #[test]
    fn relations_follow_release_order_for_both_version_types() {
        let (a, b) = (rke2("v1.28.9+rke2r1"), rke2("v1.28.9+rke2r2"));
        assert_eq!(Relation::of(&b, &a), Relation::Older);
        assert_eq!(Relation::of(&a, &a), Relation::Same);
        assert_eq!(Relation::of(&a, &b), Relation::Newer);
        let (c, d) = (
            RancherVersion::parse("v2.4.5").unwrap(),
            RancherVersion::parse("v2.4.8").unwrap(),
        );
        assert_eq!(Relation::of(&d, &c), Relation::Older);
        assert_eq!(c.minor_line(), (2, 4));
    }

    #[test]
    fn minors_between_names_the_skipped_ones() {
        let tgt = rke2("v1.28.9+rke2r1");
        assert_eq!(
            minors_between(&rke2("v1.30.1+rke2r1"), &tgt),
            "1 minor (1.29)"
        );
        assert_eq!(
            minors_between(&rke2("v1.31.0+rke2r1"), &tgt),
            "2 minors (1.29 to 1.30)"
        );
    }
}
