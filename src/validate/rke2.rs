//! Rules for `distribution = "rke2"` and `"k3s"` plans (docs/plan-format.md,
//! "RKE2 plans" and "K3s plans"): K3s plans go through the same rules,
//! worded and defaulted from their [`Flavor`].

use std::collections::HashMap;
use std::ops::Range;

use super::TargetOverride;
use super::common::{self, ObjectName, Relation, Words};
use super::fields::{Ctx, is_duration, is_hostname};
use crate::choice::{Arch, DatastoreKind, Distribution, InstallSource};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{
    Datastore, Drain, ExternalDb, Flavor, Install, InstallMethod, Rke2, Rke2Node, Role, Snapshot,
    SnapshotLocation, Token,
};
use crate::spec::{S, Spec};
use crate::version::Rke2Version;

/// RKE2's wording of the rules shared with RKE1.
const WORDS: Words = Words {
    version: "an RKE2 version",
    version_shape: "vMAJOR.MINOR.PATCH[-rcN]+rke2rN",
    version_help: "RKE2 versions look like `v1.28.9+rke2r1` (`rke2 --version` prints it; release candidates: `v1.28.9-rc1+rke2r1`)",
    system: "the cluster",
    minor_rule: "a minor rollback needs a snapshot from",
    target: "target-version",
    patch_label: Some("a newer patch than the target"),
    unhashed_label: Some("this table has no `sha256`"),
};

/// K3s's wording of the version rules (the others read as RKE2's).
const K3S_WORDS: Words = Words {
    version: "a K3s version",
    version_shape: "vMAJOR.MINOR.PATCH[-rcN]+k3sN",
    version_help: "K3s versions look like `v1.28.9+k3s1` (`k3s --version` prints it; release candidates: `v1.28.9-rc1+k3s1`)",
    ..WORDS
};

/// The wording of `flavor`'s versions.
fn words(flavor: &'static Flavor) -> &'static Words {
    if flavor.is_k3s() { &K3S_WORDS } else { &WORDS }
}

/// Validates an RKE2 (or K3s, by `flavor`) plan; `checked` receives the
/// preconditions proved.
pub(super) fn validate(
    spec: &Spec,
    cx: &mut Ctx,
    flavor: &'static Flavor,
    to: TargetOverride<'_>,
    checked: &mut Vec<String>,
) -> Option<Rke2> {
    let cluster = spec.cluster.as_ref()?;
    let cspan = Some(cluster.span());
    let c = cluster.get_ref();

    reject_rke1_keys(spec, cx);

    // --- versions and direction
    let current = cx
        .require(
            &c.current_version,
            cspan.clone(),
            "cluster.current-version",
            &format!(
                "add `current-version = \"{}\"`: what the nodes run now",
                flavor.example
            ),
        )
        .and_then(|v| version(cx, flavor, v, "cluster.current-version"));
    let current_span = c.current_version.as_ref().map(S::span);
    // The plan's own target-version span; `None` when `--to` replaces it, so
    // that diagnostics about a `--to` target say where the value came from.
    let target_span = if to.is_some() {
        None
    } else {
        c.target_version.as_ref().map(S::span)
    };
    let target = match to {
        Some(t) => flavor.version(t).or_else(|| {
            let (span, label) = match &c.target_version {
                Some(v) => (Some(v.span()), "`--to` replaces this value"),
                None => (cspan.clone(), "`--to` gives this cluster's target version"),
            };
            cx.push(
                Diagnostic::error(
                    Code::Versions,
                    span,
                    format!("`--to {t}` is not {}", words(flavor).version),
                )
                .label(label)
                .help(if flavor.is_k3s() {
                    "pass `--to` a K3s version as `k3s --version` prints it, e.g. `v1.28.9+k3s1` (release candidates: `v1.28.9-rc1+k3s1`)"
                } else {
                    "pass `--to` an RKE2 version as `rke2 --version` prints it, e.g. `v1.28.9+rke2r1` (release candidates: `v1.28.9-rc1+rke2r1`)"
                }),
            );
            None
        }),
        None => cx
            .require(
                &c.target_version,
                cspan.clone(),
                "cluster.target-version",
                &format!("add `target-version = \"{}\"`, or pass --to", flavor.example_target),
            )
            .and_then(|v| version(cx, flavor, v, "cluster.target-version")),
    };
    if let (Some(cur), Some(tgt)) = (&current, &target) {
        direction(cx, cur, tgt, to, target_span.clone(), current_span, checked);
    }

    // --- snapshot
    let snapshot = spec.snapshot.as_ref().or_else(|| {
        cx.push(
            Diagnostic::error(Code::Required, cspan.clone(), "the plan has no [snapshot] table")
                .label("this plan has no [snapshot]")
                .help("add [snapshot] with the backup's `path` and `taken-on`: without a backup there is no rollback"),
        );
        None
    });

    // --- datastore
    let datastore = datastore(spec, cx);
    if let (Some(ds), Some(tgt)) = (&datastore, &target)
        && !flavor.is_k3s()
    {
        datastore_supported(cx, spec, ds, tgt, target_span.clone().or(cspan.clone()));
    }

    let snapshot = snapshot.and_then(|s| {
        snapshot_of(
            s,
            cx,
            flavor,
            datastore.as_ref(),
            target.as_ref(),
            to,
            checked,
        )
    });

    // --- cluster paths and method
    let data_dir = match &c.data_dir {
        Some(d) => cx.dir(d, "cluster.data-dir"),
        None => Some(flavor.default_data_dir.to_owned()),
    };
    let install_method = match &c.install_method {
        None => Some(InstallMethod::default()),
        Some(m) => cx.one_of(m, "cluster.install-method").and_then(|im| {
            k3s_is_not_rpm(cx, flavor, m, im);
            (!flavor.is_k3s() || im == InstallMethod::Tar).then_some(im)
        }),
    };
    let install_prefix = install_prefix(c, cx, install_method, flavor);

    // --- token
    let token = token(spec, cx, cspan.as_ref(), checked);

    // --- install
    let rpm = c
        .install_method
        .as_ref()
        .filter(|_| install_method == Some(InstallMethod::Rpm));
    let install = install(spec, cx, rpm, checked);

    // --- drain
    let drain = drain(spec, cx);

    // --- nodes
    let nodes = nodes(spec, cx, datastore.as_ref(), checked);

    restore_on_is_a_node(spec, cx, datastore.as_ref(), nodes.as_deref());
    if let (Some(dd), Some(snap), Some(ds)) = (&data_dir, &snapshot, &datastore) {
        snapshot_outside_live_db(cx, spec, dd, snap, ds);
        snapshot_under_default_data_dir(cx, spec, flavor, dd, snap);
    }
    let rancher_managed = c.rancher_managed.as_ref().is_some_and(|v| *v.get_ref());
    if rancher_managed {
        checked.push("rancher-managed: the plan says Rancher's Kubernetes version for this cluster is set to the target".into());
    }

    Some(Rke2 {
        flavor,
        current: current?,
        target: target?,
        data_dir: data_dir?,
        install_method: install_method?,
        install_prefix: install_prefix?,
        datastore: datastore?,
        snapshot: snapshot?,
        token: token?,
        install: install?,
        kubeconfig: drain
            .as_ref()?
            .as_ref()
            .and_then(|d| d.kubeconfig.clone())
            .or_else(|| {
                // drain disabled: its kubeconfig (already checked) still serves verify.
                spec.drain
                    .as_ref()?
                    .get_ref()
                    .kubeconfig
                    .as_ref()
                    .map(|k| k.get_ref().clone())
            }),
        drain: drain?,
        nodes: nodes?,
        rancher_managed,
    })
}

/// `[token]`: the saved server token and its hash (absent: a warning).
fn token(
    spec: &Spec,
    cx: &mut Ctx,
    cspan: Option<&std::ops::Range<usize>>,
    checked: &mut Vec<String>,
) -> Option<Option<Token>> {
    match &spec.token {
        None => {
            cx.push(
            // There is no [token] to point at: point at the backup it
            // belongs with (or at [cluster] when that is missing too).
            Diagnostic::warning(Code::Token, spec.snapshot.as_ref().map(S::span).or_else(|| cspan.cloned()), "no [token]: the server token saved with the snapshot is not checked")
                .label("this backup has no saved token in the plan")
                .help("add [token] file = \"/root/rke2-backup/token\" (and its sha256): a wrong token after the restore is the most common failure"),
        );
            Some(None)
        }
        Some(t) => {
            let tspan = Some(t.span());
            let t = t.get_ref();
            let file = cx
                .require(
                    &t.file,
                    tspan.clone(),
                    "token.file",
                    "add `file = \"/path/to/saved/token\"`",
                )
                .and_then(|f| cx.path(f, "token.file"));
            let sha = common::sha256(
                cx,
                &WORDS,
                &t.sha256,
                "token.sha256",
                tspan.clone(),
                "the saved token is there, not that it is the one saved with the backup",
                "add `sha256 = \"…\"` with what `sha256sum TOKEN_FILE` printed when the token was saved",
            );
            match (file, sha) {
                (Some(file), Some(sha256)) => {
                    checked.push(if sha256.is_some() {
                    "token: the saved server token and its sha256 are checked on every server before anything stops".into()
                } else {
                    "token: the saved server token is checked to be there (no sha256 in the plan), and to be the one every server's config uses".into()
                });
                    Some(Some(Token { file, sha256 }))
                }
                _ => None,
            }
        }
    }
}

/// `cluster.install-prefix`: an absolute folder, for tar installs only
/// (an RPM install puts rke2 in /usr/bin, whatever the prefix).
fn install_prefix(
    c: &crate::spec::ClusterSpec,
    cx: &mut Ctx,
    method: Option<InstallMethod>,
    flavor: &'static Flavor,
) -> Option<String> {
    let Some(p) = &c.install_prefix else {
        return Some("/usr/local".to_owned());
    };
    let dir = cx.dir(p, "cluster.install-prefix")?;
    if flavor.is_k3s() {
        // K3s's install script has no prefix, only a bin dir, which the
        // preflight checks is /usr/local/bin (docs/upstream-facts.md, K3s).
        cx.push(
            Diagnostic::error(
                Code::Fields,
                Some(p.span()),
                "`install-prefix` is for RKE2 tar installs; this plan says `distribution = \"k3s\"`",
            )
            .label("K3s's binary is in /usr/local/bin")
            .help("remove install-prefix: the preflight checks that k3s is in /usr/local/bin, and says what to do if it is not"),
        );
        return None;
    }
    if method == Some(InstallMethod::Rpm) {
        cx.push(
            Diagnostic::error(
                Code::Fields,
                Some(p.span()),
                "`install-prefix` is for tar installs; this plan says `install-method = \"rpm\"`",
            )
            .label("RPM packages put rke2 in /usr/bin")
            .help("remove install-prefix, or set install-method = \"tar\" if install.sh installed rke2 from the tarball"),
        );
        return None;
    }
    Some(dir)
}

/// `[drain]`: on by default, with a duration and an optional kubeconfig.
fn drain(spec: &Spec, cx: &mut Ctx) -> Option<Option<Drain>> {
    match &spec.drain {
        None => Some(Some(Drain {
            kubeconfig: None,
            timeout: "10m".into(),
        })),
        Some(d) => {
            let d = d.get_ref();
            let enabled = d.enabled.as_ref().is_none_or(|e| *e.get_ref());
            let kubeconfig = match &d.kubeconfig {
                Some(k) => cx.path(k, "drain.kubeconfig").map(Some),
                None => Some(None),
            };
            let timeout = match &d.timeout {
                Some(t) if is_duration(t.get_ref()) => Some(t.get_ref().clone()),
                Some(t) => {
                    cx.push(
                        Diagnostic::error(
                            Code::Fields,
                            Some(t.span()),
                            "`drain.timeout` is not a duration",
                        )
                        .help("write a number followed by s, m or h, e.g. \"10m\""),
                    );
                    None
                }
                None => Some("10m".into()),
            };
            match (kubeconfig, timeout) {
                (Some(kubeconfig), Some(timeout)) if enabled => Some(Some(Drain {
                    kubeconfig,
                    timeout,
                })),
                (Some(_), Some(_)) => Some(None),
                _ => None,
            }
        }
    }
}

/// `restore-on` must name a node that exists.
fn restore_on_is_a_node(
    spec: &Spec,
    cx: &mut Ctx,
    datastore: Option<&Datastore>,
    nodes: Option<&[Rke2Node]>,
) {
    if let (Some(Datastore::Postgres(db) | Datastore::Mysql(db)), Some(nodes)) = (datastore, nodes)
        && let Some(on) = &db.restore_on
        && !nodes.iter().any(|n| &n.name == on)
    {
        let span = spec
            .datastore
            .as_ref()
            .and_then(|d| d.get_ref().restore_on.as_ref().map(S::span));
        cx.push(
            Diagnostic::error(
                Code::DatastoreFields,
                span,
                format!("restore-on names `{on}`, which is not a node of the plan"),
            )
            .label("not in [[nodes]]")
            .help(format!(
                "write \"workstation\" (the default) or one of the plan's nodes: {}",
                nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    }
}

/// Rules `direction` and `skipped-minors`. A target from `--to` has no span
/// in the plan: its diagnostics point at current-version and name `--to`.
fn direction(
    cx: &mut Ctx,
    cur: &Rke2Version,
    tgt: &Rke2Version,
    to: TargetOverride<'_>,
    target_span: Option<Range<usize>>,
    current_span: Option<Range<usize>>,
    checked: &mut Vec<String>,
) {
    let relation = match Relation::of(cur, tgt) {
        Relation::Older => {
            let span = if to.is_some() {
                current_span
            } else {
                target_span
            };
            common::older(cx, cur, tgt, span, checked, |d| {
                let skipped = common::minors_between(cur, tgt);
                let label = match to {
                    Some(_) => format!("`--to {tgt}` skips {skipped} between this and the target"),
                    None => format!("skips {skipped} between this and current-version"),
                };
                d.label(label).help("allowed, but everything written to the cluster since the snapshot was taken is lost; make sure that is intended")
            });
            return;
        }
        Relation::Same => "the same as",
        Relation::Newer => "newer than",
    };
    let d = if to.is_some() {
        Diagnostic::error(
            Code::Direction,
            current_span,
            format!("the target given by `--to {tgt}` is not older than current-version {cur}"),
        )
        .label(format!("`--to {tgt}` is {relation} this"))
        .help("pass `--to` the older version to roll back to (the one the snapshot was taken on)")
    } else if tgt == cur {
        Diagnostic::error(
            Code::Direction,
            target_span,
            format!("target {tgt} is the same as current {cur}: there is nothing to roll back"),
        )
        .label("same as current-version")
        .help("set current-version to what `rke2 --version` prints on the upgraded nodes, and target-version to the version before the upgrade")
    } else {
        Diagnostic::error(
            Code::Direction,
            target_span,
            format!("target {tgt} is newer than current {cur}: a rollback goes to an older version"),
        )
        .label("newer than current-version")
        .help("swap the two if they are reversed: current-version is what the nodes run now (`rke2 --version`), target-version the older one to go back to")
    };
    cx.push(d);
}

/// Rule `paths`: the backup must not live where the restore moves the live
/// database away (cluster-reset renames `server/db/etcd`, docs/upstream-facts.md §7;
/// the SQLite restore moves `state.db` and its `-wal`/`-shm` aside), or the
/// restore would lose the file it is about to read.
/// A custom data dir with a snapshot under the default one: most often a
/// path copied from the documentation, and on such a node that folder is
/// empty or stale. A warning: the file may really have been put there.
fn snapshot_under_default_data_dir(
    cx: &mut Ctx,
    spec: &Spec,
    flavor: &'static Flavor,
    data_dir: &str,
    snap: &Snapshot,
) {
    let default = flavor.default_data_dir;
    let SnapshotLocation::Path(path) = &snap.location else {
        return;
    };
    if data_dir == default || !path.starts_with(&format!("{default}/")) {
        return;
    }
    let span = spec
        .snapshot
        .as_ref()
        .and_then(|s| s.get_ref().path.as_ref().map(S::span));
    let suggested = format!("{data_dir}{}", &path[default.len()..]);
    cx.push(
        Diagnostic::warning(
            Code::Paths,
            span,
            format!("the snapshot is under the default data dir `{default}`, but this cluster's data dir is `{data_dir}`"),
        )
        .label("not under `cluster.data-dir`")
        .help(format!(
            "{} writes snapshots under its data dir: if the file is at `{suggested}`, give that path; if you copied it to this path yourself, leave it",
            flavor.product
        )),
    );
}

fn snapshot_outside_live_db(
    cx: &mut Ctx,
    spec: &Spec,
    data_dir: &str,
    snap: &Snapshot,
    ds: &Datastore,
) {
    let SnapshotLocation::Path(path) = &snap.location else {
        return;
    };
    let db = format!("{data_dir}/server/db");
    // The live database and where to keep the backup instead, when the
    // backup is inside it.
    let (live, keep) = match ds {
        Datastore::Etcd if path.starts_with(&format!("{db}/etcd/")) => {
            (format!("{db}/etcd"), format!("{db}/snapshots/"))
        }
        Datastore::Sqlite
            if [".db", ".db-wal", ".db-shm"]
                .iter()
                .any(|ext| *path == format!("{db}/state{ext}")) =>
        {
            (format!("{db}/state.db"), "/root/rke2-backup/".to_owned())
        }
        // An external database lives on its own server.
        Datastore::Etcd | Datastore::Sqlite | Datastore::Postgres(_) | Datastore::Mysql(_) => {
            return;
        }
    };
    let span = spec
        .snapshot
        .as_ref()
        .and_then(|s| s.get_ref().path.as_ref().map(S::span));
    cx.push(
        Diagnostic::error(
            Code::Paths,
            span,
            format!(
                "the snapshot is inside the live database `{live}`, which the restore moves aside"
            ),
        )
        .label("moved away before it is read")
        .help(format!(
            "copy the backup elsewhere first (e.g. into `{keep}`) and give that path"
        )),
    );
}

fn version(cx: &mut Ctx, flavor: &'static Flavor, v: &S<String>, key: &str) -> Option<Rke2Version> {
    if !flavor.is_k3s() {
        return common::version(cx, &WORDS, v, key);
    }
    let w = words(flavor);
    flavor.version(v.get_ref()).or_else(|| {
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

/// K3s has no RPM of its own binary: its install script always puts the
/// binary in /usr/local/bin (or /opt/bin) and the units in
/// /etc/systemd/system (k3s-io/k3s:install.sh).
fn k3s_is_not_rpm(cx: &mut Ctx, flavor: &'static Flavor, m: &S<String>, im: InstallMethod) {
    if flavor.is_k3s() && im == InstallMethod::Rpm {
        cx.push(
            Diagnostic::error(
                Code::Fields,
                Some(m.span()),
                "K3s has no RPM install: `install-method` is only for RKE2",
            )
            .label("K3s is installed by its install script")
            .help("remove `install-method` (K3s's install script puts the binary in /usr/local/bin, or /opt/bin when /usr/local/bin is read-only)"),
        );
    }
}

fn reject_rke1_keys(spec: &Spec, cx: &mut Ctx) {
    let mut misplaced: Vec<(Range<usize>, &str)> = Vec::new();
    if let Some(r) = &spec.rke {
        misplaced.push((r.span(), "[rke]"));
    }
    if let Some(r) = &spec.recovery {
        misplaced.push((r.span(), "[recovery]"));
    }
    if let Some(s) = &spec.snapshot
        && let Some(n) = &s.get_ref().name
    {
        misplaced.push((n.span(), "snapshot.name"));
    }
    for n in &spec.nodes {
        let n = n.get_ref();
        for (v, key) in [
            (&n.address, "address"),
            (&n.hostname, "hostname"),
            (&n.user, "user"),
        ] {
            if let Some(v) = v {
                misplaced.push((v.span(), key));
            }
        }
        if let Some(r) = &n.roles {
            misplaced.push((r.span(), "roles"));
        }
    }
    for (span, key) in misplaced {
        common::misplaced(
            cx,
            Distribution::Rke1,
            span,
            key,
            "remove it, or set `distribution = \"rke1\"` in [cluster] if this is a Rancher-on-RKE1 plan",
        );
    }
}

/// The first RKE2 release of each minor that runs an external datastore
/// (`datastore-endpoint`, kine with TLS) and SQLite (`disable-etcd` without
/// `server:`), per `rancher/rke2:pkg/cli/cmds/server.go` and
/// `pkg/rke2/rke2_linux.go` at each tag (docs/upstream-facts.md §6). Minors
/// after the last listed support both from their first release.
const EXTERNAL_FROM: &[(u64, u64)] = &[(27, 13), (28, 9), (29, 4)];
const EXTERNAL_ALL_FROM_MINOR: u64 = 30;
const SQLITE_FROM: &[(u64, u64)] = &[(27, 15), (28, 11), (29, 6), (30, 2)];
const SQLITE_ALL_FROM_MINOR: u64 = 31;

/// Rule `datastore-version`: the target release runs the plan's datastore.
/// An older RKE2 ignores `datastore-endpoint` (or starts etcd instead of
/// SQLite), and the servers would come up on an empty datastore after
/// every node was stopped.
fn datastore_supported(
    cx: &mut Ctx,
    spec: &Spec,
    ds: &Datastore,
    tgt: &Rke2Version,
    span: Option<Range<usize>>,
) {
    let (what, table, all_from) = match ds {
        Datastore::Etcd => return,
        Datastore::Sqlite => ("SQLite", SQLITE_FROM, SQLITE_ALL_FROM_MINOR),
        Datastore::Postgres(_) | Datastore::Mysql(_) => (
            "an external datastore (datastore-endpoint)",
            EXTERNAL_FROM,
            EXTERNAL_ALL_FROM_MINOR,
        ),
    };
    if tgt.major != 1 || tgt.minor >= all_from {
        return;
    }
    let first = table.iter().find(|(m, _)| *m == tgt.minor).map(|(_, p)| *p);
    if first.is_some_and(|p| tgt.patch >= p) {
        return;
    }
    let since = table
        .iter()
        .map(|(m, p)| format!("v1.{m}.{p}"))
        .chain(std::iter::once(format!("v1.{all_from}.0")))
        .collect::<Vec<_>>()
        .join(", ");
    let kind_span = spec
        .datastore
        .as_ref()
        .and_then(|d| d.get_ref().kind.as_ref().map(S::span));
    cx.push(
        Diagnostic::error(
            Code::DatastoreVersion,
            span,
            format!("RKE2 {tgt} does not run {what}: it is supported from {since} on"),
        )
        .label(format!("{tgt} predates {what} in RKE2"))
        .help(match kind_span {
            Some(_) => "roll back to a release that supports this datastore, or restore onto embedded etcd by hand: a server of this release would start on an empty datastore".to_owned(),
            None => "roll back to a release that supports this datastore".to_owned(),
        }),
    );
}

fn datastore(spec: &Spec, cx: &mut Ctx) -> Option<Datastore> {
    let Some(ds) = &spec.datastore else {
        return Some(Datastore::Etcd);
    };
    let dspan = Some(ds.span());
    let d = ds.get_ref();
    let kind = match &d.kind {
        None => DatastoreKind::default(),
        Some(k) => cx.one_of(k, "datastore.kind")?,
    };
    let external: fn(ExternalDb) -> Datastore = match kind {
        DatastoreKind::Etcd => return Some(embedded(cx, d, kind, Datastore::Etcd)),
        DatastoreKind::Sqlite => return Some(embedded(cx, d, kind, Datastore::Sqlite)),
        DatastoreKind::Postgres => Datastore::Postgres,
        DatastoreKind::Mysql => Datastore::Mysql,
    };
    let host = match &d.host {
        Some(h) if h.get_ref().contains("://") => {
            cx.push(
                Diagnostic::error(
                    Code::DatastoreFields,
                    Some(h.span()),
                    "`datastore.host` is a host name, not a connection URL",
                )
                .label("a URL")
                .help("write only the database server's name or address; `port`, `database` and `user` are keys of their own, and the password is read at run time"),
            );
            None
        }
        Some(h) => cx.plain(h, "datastore.host"),
        None => {
            cx.push(
                Diagnostic::error(
                    Code::DatastoreFields,
                    dspan.clone(),
                    format!("{kind} needs `datastore.host`"),
                )
                .label("this table has no `host`")
                .help("add `host = \"<database server>\"`: the name or address the restore connects to"),
            );
            None
        }
    };
    let database = if let Some(h) = &d.database {
        cx.plain(h, "datastore.database")
            .filter(|_| super::dbname::check(cx, h, kind))
    } else {
        cx.push(
            Diagnostic::error(
                Code::DatastoreFields,
                dspan.clone(),
                format!("{kind} needs `datastore.database`"),
            )
            .label("this table has no `database`")
            .help("add `database = \"<name>\"`: the database RKE2's datastore-endpoint names, which the restore drops and recreates"),
        );
        None
    };
    let port = match &d.port {
        None => Some(None),
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(v) if v > 0 => Some(Some(v)),
            _ => {
                cx.push(
                    Diagnostic::error(
                        Code::DatastoreFields,
                        Some(p.span()),
                        "`datastore.port` is not a TCP port",
                    )
                    .label("out of range")
                    .help("write a number from 1 to 65535"),
                );
                None
            }
        },
    };
    let user = match &d.user {
        None => Some(None),
        Some(u) => cx.plain(u, "datastore.user").map(Some),
    };
    let restore_on = match &d.restore_on {
        None => Some(None),
        Some(r) if r.get_ref() == "workstation" => Some(None),
        Some(r) => cx.plain(r, "datastore.restore-on").map(Some),
    };
    let db = ExternalDb {
        host: host?,
        port: port?,
        database: database?,
        user: user?,
        restore_on: restore_on?,
    };
    Some(external(db))
}

/// An embedded datastore (`kind`, giving `datastore`): the external-database
/// keys are errors, since it lives on the servers.
fn embedded(
    cx: &mut Ctx,
    d: &crate::spec::DatastoreSpec,
    kind: DatastoreKind,
    datastore: Datastore,
) -> Datastore {
    let external_keys = [
        (d.host.as_ref().map(S::span), "host"),
        (d.port.as_ref().map(S::span), "port"),
        (d.database.as_ref().map(S::span), "database"),
        (d.user.as_ref().map(S::span), "user"),
        (d.restore_on.as_ref().map(S::span), "restore-on"),
    ];
    for (span, key) in external_keys {
        if let Some(span) = span {
            cx.push(
                Diagnostic::error(
                    Code::DatastoreFields,
                    Some(span),
                    format!("`datastore.{key}` applies only to postgres and mysql"),
                )
                .label(format!("the datastore is {kind}"))
                .help(format!(
                    "remove it: a {kind} datastore lives on the servers"
                )),
            );
        }
    }
    datastore
}

fn snapshot_of(
    s: &S<crate::spec::SnapshotSpec>,
    cx: &mut Ctx,
    flavor: &'static Flavor,
    datastore: Option<&Datastore>,
    target: Option<&Rke2Version>,
    to: TargetOverride<'_>,
    checked: &mut Vec<String>,
) -> Option<Snapshot> {
    let sspan = Some(s.span());
    let snap = s.get_ref();
    let taken_on = cx.require(
        &snap.taken_on,
        sspan.clone(),
        "snapshot.taken-on",
        &format!(
            "add `taken-on = \"{}\"`: the version the cluster ran when the backup was taken",
            flavor.example_target
        ),
    );
    let taken = taken_on.and_then(|t| version(cx, flavor, t, "snapshot.taken-on"));
    if let (Some(t), Some(taken), Some(target)) = (taken_on, &taken, target) {
        common::snapshot_minor(cx, &WORDS, t.span(), taken, target, to, checked);
    }
    let sha256 = common::sha256(
        cx,
        &WORDS,
        &snap.sha256,
        "snapshot.sha256",
        sspan.clone(),
        "the file exists",
        "add `sha256 = \"…\"` with what `sha256sum SNAPSHOT` printed when the backup was made",
    );
    if sha256.as_ref().is_some_and(Option::is_some) {
        checked
            .push("integrity: the snapshot's sha256 is checked before anything is stopped".into());
    }
    let location = match (&snap.path, &snap.s3) {
        (Some(p), None) => cx.path(p, "snapshot.path").map(SnapshotLocation::Path),
        (None, Some(s3)) => {
            if datastore.is_some_and(|d| *d != Datastore::Etcd) {
                cx.push(
                    Diagnostic::error(
                        Code::DatastoreFields,
                        Some(s3.span()),
                        "[snapshot.s3] is only for embedded etcd",
                    )
                    .label("S3 snapshots are an etcd feature")
                    .help("copy the backup to the host that restores it and give its `path` in [snapshot] instead"),
                );
                None
            } else {
                common::s3(s3, cx, ObjectName::Required).map(SnapshotLocation::S3)
            }
        }
        (Some(p), Some(s3)) => {
            let line = cx.line(s3.span().start);
            cx.push(
                common::path_and_s3(p)
                    .label(format!("and [snapshot.s3] on line {line}"))
                    .help("keep one: `path` for a file on the restoring host, [snapshot.s3] for an object in S3"),
            );
            None
        }
        (None, None) => {
            cx.push(
                Diagnostic::error(
                    Code::Paths,
                    sspan,
                    "the snapshot has neither `path` nor [snapshot.s3]",
                )
                .label("no `path` and no [snapshot.s3]")
                .help(
                    "add `path = \"/absolute/path/to/the/backup\"` (on the host that restores it), or [snapshot.s3] for an etcd snapshot kept in S3",
                ),
            );
            None
        }
    };
    Some(Snapshot {
        location: location?,
        taken_on: taken?.to_string(),
        sha256: sha256?,
    })
}

/// `[install]`; `rpm` is `cluster.install-method` when it is "rpm".
fn install(
    spec: &Spec,
    cx: &mut Ctx,
    rpm: Option<&S<String>>,
    checked: &mut Vec<String>,
) -> Option<Install> {
    let Some(i) = &spec.install else {
        return Some(Install::Online);
    };
    let ispan = Some(i.span());
    let i = i.get_ref();
    let source = match &i.source {
        None => InstallSource::default(),
        Some(s) => cx.one_of(s, "install.source")?,
    };
    let arch = match &i.arch {
        None => Some(Arch::default()),
        Some(a) => cx.one_of::<Arch>(a, "install.arch"),
    };
    if source == InstallSource::Online {
        if let Some(a) = &i.artifacts {
            cx.push(
                Diagnostic::error(
                    Code::Airgap,
                    Some(a.span()),
                    "`install.artifacts` is only read when `source = \"airgap\"`",
                )
                .help("set `source = \"airgap\"` or remove `artifacts`"),
            );
        }
        return Some(Install::Online);
    }
    // install.sh with INSTALL_RKE2_ARTIFACT_PATH always installs the tarball
    // (docs/upstream-facts.md §4); on an RPM host that mixes two installs, which
    // install.sh refuses and version checks then misread.
    if let (Some(m), Some(src)) = (rpm, &i.source) {
        cx.push(
            Diagnostic::error(
                Code::Airgap,
                Some(src.span()),
                "`source = \"airgap\"` installs the tarball, but `cluster.install-method` is \"rpm\"",
            )
            .label(format!(
                "installs the tarball; line {} says the nodes use RPMs",
                cx.line(m.span().start)
            ))
            .help("for RPM nodes without Internet access, mirror the RPM repository locally, set `source = \"online\"` and point REWIND_INSTALL_SCRIPT_URL at an install script that uses the mirror; or use the tarball on every node (`install-method = \"tar\"`)"),
        );
    }
    let artifacts = if let Some(a) = &i.artifacts {
        cx.dir(a, "install.artifacts")
    } else {
        cx.push(
            Diagnostic::error(Code::Airgap, ispan, "`source = \"airgap\"` needs `artifacts`")
                .help("add `artifacts = \"/root/rke2-artifacts\"`: the folder on every node holding install.sh, rke2.linux-<arch>.tar.gz, the image archives and sha256sum-<arch>.txt of the target version"),
        );
        None
    };
    checked.push(
        "airgap: the target's artifacts are checked against sha256sum-<arch>.txt on every node"
            .into(),
    );
    Some(Install::Airgap {
        artifacts: artifacts?,
        arch: arch?.to_string(),
    })
}

fn nodes(
    spec: &Spec,
    cx: &mut Ctx,
    datastore: Option<&Datastore>,
    checked: &mut Vec<String>,
) -> Option<Vec<Rke2Node>> {
    let mut out = Vec::new();
    let mut ok = true;
    // Hashed, not ordered: only membership is asked, once per node.
    let mut seen: HashMap<&str, Range<usize>> = HashMap::with_capacity(spec.nodes.len());
    // First label of each dotted node name -> that name and its span.
    let mut labels: HashMap<&str, (&str, Range<usize>)> = HashMap::new();
    let mut init_spans = Vec::new();
    // Per accepted node: its [[nodes]] header and its `role` value, for
    // rules about the node list as a whole.
    let mut spans: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    for n in &spec.nodes {
        let nspan = Some(n.span());
        let node = n.get_ref();
        let name = cx.require(
            &node.name,
            nspan.clone(),
            "nodes.name",
            "add `name = \"<host name>\"` to this [[nodes]] entry",
        );
        let role = cx
            .require(
                &node.role,
                nspan.clone(),
                "nodes.role",
                "add `role = \"server\"` or `role = \"agent\"`",
            )
            .and_then(|r| cx.one_of::<Role>(r, "nodes.role"));
        let role_span = node.role.as_ref().map(S::span);
        let (Some(name), Some(role), Some(role_span)) = (name, role, role_span) else {
            ok = false;
            continue;
        };
        if !is_hostname(name.get_ref()) {
            let lower = name.get_ref().to_ascii_lowercase();
            let help = if is_hostname(&lower) {
                format!(
                    "write `{lower}`: host names are case-insensitive, and rewind keeps them lowercase because they name the bundle's folders; if `uname -n` prints capitals on that host, run its scripts with REWIND_HOST={lower}"
                )
            } else {
                "write the host's name as `uname -n` prints it (lowercase letters, digits, `-`, and `.` between labels); scripts refuse to run on any other host".to_owned()
            };
            cx.push(
                Diagnostic::error(
                    Code::Names,
                    Some(name.span()),
                    "node name is not a valid host name",
                )
                .label("expected lowercase letters, digits, `-` and `.`")
                .help(help),
            );
            ok = false;
            continue;
        }
        if let Some(first) = seen.get(name.get_ref().as_str()) {
            cx.push(
                Diagnostic::error(
                    Code::Names,
                    Some(name.span()),
                    format!("node `{}` is listed twice", name.get_ref()),
                )
                .label(format!("listed again here; first on line {}", cx.line(first.start)))
                .help("every [[nodes]] entry needs its own host name: remove the second entry or correct its name"),
            );
            ok = false;
            continue;
        }
        // The host guard accepts a host whose name is the node's, or whose
        // first label is a dotless node's name (docs/running.md): a node
        // named like another's first label would let one host run both.
        // One lookup per node (a 5,000-node plan is checked in milliseconds).
        let this = name.get_ref().as_str();
        let clash = match this.split_once('.') {
            Some((label, _)) => seen
                .get_key_value(label)
                .map(|(o, r)| (*o, this, r.clone())),
            None => labels.get(this).map(|(long, r)| (this, *long, r.clone())),
        };
        if let Some((short, long, first)) = clash {
            cx.push(
                Diagnostic::error(
                    Code::Names,
                    Some(name.span()),
                    format!("host `{long}` would pass the host guard of both `{long}` and `{short}`"),
                )
                .label(format!("`{short}` is the first label of `{long}` (line {})", cx.line(first.start)))
                .help(format!("a node name without a dot also matches a host whose first label it is: give `{short}` its full name (`{short}.<domain>`), and run its scripts with REWIND_HOST={short}.<domain> if `uname -n` on it prints the short name")),
            );
            ok = false;
            continue;
        }
        if let Some((label, _)) = this.split_once('.') {
            labels.entry(label).or_insert((this, name.span()));
        }
        seen.insert(this, name.span());
        let init = node.init.as_ref().is_some_and(|i| *i.get_ref());
        if init {
            let span = node.init.as_ref().map(S::span);
            if role == Role::Agent {
                cx.push(
                    Diagnostic::error(Code::FirstServer, span, format!("agent `{}` cannot be the init server", name.get_ref()))
                        .label("only a server restores the datastore")
                        .help("set `init = true` on the server that has no `server:` entry in its config.yaml"),
                );
                ok = false;
            } else {
                init_spans.push((name.get_ref().clone(), span));
            }
        }
        spans.push((n.span(), role_span));
        let node_name = match &node.node_name {
            None => None,
            Some(v) if is_hostname(v.get_ref()) => Some(v.get_ref().clone()),
            Some(v) => {
                cx.push(
                    Diagnostic::error(
                        Code::Names,
                        Some(v.span()),
                        "`node-name` is not a valid Kubernetes node name",
                    )
                    .label("expected lowercase letters, digits, `-` and `.`")
                    .help("write it as `kubectl get nodes` shows it (the `node-name:` of this node's config.yaml)"),
                );
                ok = false;
                continue;
            }
        };
        out.push(Rke2Node {
            name: name.get_ref().clone(),
            role,
            init,
            node_name,
        });
    }
    let servers: Vec<&str> = out
        .iter()
        .filter(|n| n.role == Role::Server)
        .map(|n| n.name.as_str())
        .collect();
    if ok && servers.is_empty() {
        let d = match spans.first() {
            None => Diagnostic::error(
                Code::Servers,
                spec.cluster.as_ref().map(S::span),
                "the plan lists no nodes",
            )
            .label("this cluster has no [[nodes]]"),
            Some((_, role)) => Diagnostic::error(
                Code::Servers,
                Some(role.clone()),
                "the plan has no server node",
            )
            .label("every node is an agent"),
        };
        cx.push(d.help(
            "list every host as [[nodes]] with `name` and `role`; at least one has `role = \"server\"`",
        ));
        ok = false;
    }
    if ok && !datastore_node_rules(cx, datastore, &out, &spans, &init_spans, &servers, checked) {
        ok = false;
    }
    if ok {
        checked.push(format!(
            "names: {} node{} with unique host names ({} server{}, {} agent{})",
            out.len(),
            if out.len() == 1 { "" } else { "s" },
            servers.len(),
            if servers.len() == 1 { "" } else { "s" },
            out.len() - servers.len(),
            if out.len() - servers.len() == 1 {
                ""
            } else {
                "s"
            },
        ));
    }
    ok.then_some(out)
}

/// The datastore's rules about the node list as a whole (one init server for
/// etcd, one server alone for SQLite); false when one fails.
fn datastore_node_rules(
    cx: &mut Ctx,
    datastore: Option<&Datastore>,
    out: &[Rke2Node],
    spans: &[(Range<usize>, Range<usize>)],
    init_spans: &[(String, Option<Range<usize>>)],
    servers: &[&str],
    checked: &mut Vec<String>,
) -> bool {
    match datastore {
        Some(Datastore::Etcd) => match init_spans.len() {
            1 => checked.push(format!(
                "first-server: cluster-reset runs on {}",
                init_spans[0].0
            )),
            0 => {
                let first = out.iter().position(|n| n.role == Role::Server);
                cx.push(
                    Diagnostic::error(Code::FirstServer, first.map(|i| spans[i].0.clone()), "no server has `init = true`: rewind cannot tell where cluster-reset runs")
                        .label(format!("{} server{}, none with `init = true`", servers.len(), if servers.len() == 1 { "" } else { "s" }))
                        .help(format!(
                            "set `init = true` on the server whose config.yaml has no `server:` entry; candidates: {}",
                            servers.join(", ")
                        )),
                );
                return false;
            }
            _ => {
                let names: Vec<&str> = init_spans.iter().map(|(n, _)| n.as_str()).collect();
                let (first_name, first_span) = &init_spans[0];
                let first_line = first_span.as_ref().map_or(1, |s| cx.line(s.start));
                for (_, span) in init_spans.iter().skip(1) {
                    cx.push(
                        Diagnostic::error(Code::FirstServer, span.clone(), format!("{} servers have `init = true` ({})", names.len(), names.join(", ")))
                            .label(format!("another `init = true`; `{first_name}` has one on line {first_line}"))
                            .help("exactly one server restores the snapshot: keep `init = true` only on the one whose config.yaml has no `server:` entry"),
                    );
                }
                return false;
            }
        },
        Some(Datastore::Sqlite) => {
            // SQLite (kine) runs in one server's process: one server, and
            // any number of agents joined to it.
            let server_idx: Vec<usize> = (0..out.len())
                .filter(|&i| out[i].role == Role::Server)
                .collect();
            if server_idx.len() != 1 {
                let (span, label) = match server_idx.get(1) {
                    Some(&second) => (
                        spans[second].0.clone(),
                        format!("server 2 of {}; SQLite has one", server_idx.len()),
                    ),
                    None => (spans[0].1.clone(), "no node is a server".to_owned()),
                };
                cx.push(
                    Diagnostic::error(Code::SqliteSingle, Some(span), format!("a SQLite cluster has exactly one server; this plan has {}", server_idx.len()))
                        .label(label)
                        .help("SQLite (kine) cannot run HA: list the one server (agents may join it), or set the real datastore kind"),
                );
                return false;
            }
            let agents = out.len() - 1;
            checked.push(format!(
                "sqlite-single: {} is the only server{}",
                out[server_idx[0]].name,
                match agents {
                    0 => String::new(),
                    1 => ", with 1 agent".to_owned(),
                    n => format!(", with {n} agents"),
                }
            ));
        }
        // The datastore has no rule about the node list.
        Some(Datastore::Postgres(_) | Datastore::Mysql(_)) | None => {}
    }
    true
}
