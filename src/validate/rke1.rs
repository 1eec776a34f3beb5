//! Rules for `distribution = "rke1"` plans (Rancher HA on RKE1,
//! docs/plan-format.md "Rancher HA on RKE1 plans").
//!
//! Without `[recovery]` the plan is the rollback guide's "unsuccessful upgrade": the
//! target must be older than the current Rancher version. With it, the plan is
//! the disaster-recovery procedure, where the target may equal the current
//! version (the same Rancher comes back on a replaced node). Workstation paths
//! (`[rke]`) may be relative: they are resolved from the folder the operator
//! runs the workstation scripts from, as the rollback guide runs `./rke_linux-amd64`
//! from the folder holding the cluster file.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::TargetOverride;
use super::common::{self, ObjectName, Relation, Words};
use super::fields::{Ctx, is_dns_label, is_hostname};
use crate::choice::{Deployment, Distribution, Rke1Role};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Recovery, Rke1, Rke1Node, Rke1Snapshot, RkeTool, S3};
use crate::spec::{S, S3Spec, Spec};
use crate::version::RancherVersion;

/// Rancher's wording of the rules shared with RKE2.
const WORDS: Words = Words {
    version: "a Rancher version",
    version_shape: "vMAJOR.MINOR.PATCH",
    version_help: VERSION_HELP,
    system: "Rancher",
    minor_rule: "the snapshot must come from",
    target: "the target",
    patch_label: None,
    unhashed_label: None,
};

const VERSION_HELP: &str = "Rancher versions look like `v2.4.5`: the tag of the rancher/rancher image (`kubectl -n cattle-system get deploy -o wide` shows it)";

/// Validates a Rancher-on-RKE1 plan; `checked` receives the preconditions proved.
pub(super) fn validate(
    spec: &Spec,
    cx: &mut Ctx,
    to: TargetOverride<'_>,
    checked: &mut Vec<String>,
) -> Option<Rke1> {
    let cluster = spec.cluster.as_ref()?;
    let cspan = Some(cluster.span());
    let c = cluster.get_ref();

    reject_rke2_keys(spec, cx);
    let recovery_present = spec.recovery.is_some();

    // --- versions and direction
    let current = cx
        .require(
            &c.current_version,
            cspan.clone(),
            "cluster.current-version",
            "add `current-version = \"v2.4.8\"`: the Rancher version running now",
        )
        .and_then(|v| version(cx, v, "cluster.current-version"));
    let target_span = if to.is_some() {
        None
    } else {
        c.target_version.as_ref().map(S::span)
    };
    let target = match to {
        Some(t) => RancherVersion::parse(t).or_else(|| {
            cx.push(
                Diagnostic::error(
                    Code::Versions,
                    c.target_version.as_ref().map(S::span).or(cspan.clone()),
                    format!("`--to {t}` is not a Rancher version"),
                )
                .label("`--to` gives this plan's target version")
                .help(format!("pass `--to` a version such as `v2.4.5`; {VERSION_HELP}")),
            );
            None
        }),
        None => cx
            .require(
                &c.target_version,
                cspan.clone(),
                "cluster.target-version",
                "add `target-version = \"v2.4.5\"` (the Rancher version to go back to), or pass --to",
            )
            .and_then(|v| version(cx, v, "cluster.target-version")),
    };
    if let (Some(cur), Some(tgt)) = (&current, &target) {
        direction(cx, cur, tgt, recovery_present, target_span.clone(), checked);
        rancher_scope(
            cx,
            cur,
            c.current_version.as_ref().map(S::span).or(cspan.clone()),
        );
    }

    // --- [rke]
    let rke = if let Some(r) = &spec.rke {
        rke_tool(r, cx, checked)
    } else {
        cx.push(
            Diagnostic::error(Code::Required, cspan.clone(), "the plan has no [rke] table")
                .label("an rke1 plan needs [rke]")
                .help("add [rke] with `config = \"rancher-cluster.yml\"` (the cluster file) and, if they differ from the defaults, `binary` and `kubeconfig`"),
        );
        None
    };

    // --- [snapshot]
    let snapshot = if let Some(s) = &spec.snapshot {
        snapshot(s, cx, target.as_ref(), recovery_present, checked)
    } else {
        cx.push(
            Diagnostic::error(Code::Required, cspan.clone(), "the plan has no [snapshot] table")
                .label("an rke1 plan needs [snapshot]")
                .help("add [snapshot] with the rke snapshot `name` (without .zip) and `taken-on`: without a snapshot there is no rollback"),
        );
        None
    };

    // --- nodes and [recovery]
    let nodes = nodes(spec, cx, checked);
    let recovery = match (&spec.recovery, &nodes) {
        (None, _) => Some(None),
        (Some(r), nodes) => recovery(r, cx, nodes.as_deref(), checked).map(Some),
    };

    Some(Rke1 {
        current: current?,
        target: target?,
        rke: rke?,
        snapshot: snapshot?,
        recovery: recovery?,
        nodes: nodes?,
    })
}

fn version(cx: &mut Ctx, v: &S<String>, key: &str) -> Option<RancherVersion> {
    common::version(cx, &WORDS, v, key)
}

/// Rule `rancher-version` (warning): the procedure is the one Rancher
/// documents for v2.0–v2.4 (restore the local cluster's etcd with rke, then
/// set the image). From v2.5 on, Rancher is installed with Helm and rolled
/// back with the rancher-backup operator (a `Restore` of a Rancher backup,
/// then `helm rollback`), and v2.6.4+/v2.7.7+ rollbacks first need
/// rancher-cleanup (rancher/rancher-docs: rollbacks.md).
fn rancher_scope(cx: &mut Ctx, cur: &RancherVersion, span: Option<Range<usize>>) {
    if cur.major == 2 && cur.minor <= 4 {
        return;
    }
    cx.push(
        Diagnostic::warning(
            Code::RancherVersion,
            span,
            format!("Rancher {cur} is past the v2.0–v2.4 range this procedure follows"),
        )
        .label("Rancher v2.5 and later")
        .help("from v2.5 on Rancher is installed with Helm (deployment `rancher`) and rolled back with the rancher-backup operator (a `Restore` of a backup, then `helm rollback rancher -n cattle-system`); going back from v2.6.4+ or v2.7.7+ first needs rancher-cleanup. Restoring the local cluster's etcd still works, but also rolls back everything else on that cluster: prefer the documented way when you have a rancher-backup backup"),
    );
}

fn direction(
    cx: &mut Ctx,
    cur: &RancherVersion,
    tgt: &RancherVersion,
    recovery: bool,
    target_span: Option<Range<usize>>,
    checked: &mut Vec<String>,
) {
    let (label, help) = match Relation::of(cur, tgt) {
        Relation::Older => {
            common::older(cx, cur, tgt, target_span, checked, |d| {
                d.help("allowed, but everything written to Rancher since the snapshot is lost; make sure that is intended")
            });
            return;
        }
        Relation::Same if recovery => {
            checked.push(format!(
                "direction: disaster recovery at the current version {cur}"
            ));
            return;
        }
        Relation::Same => (
            "same version",
            "a rollback after an upgrade goes to an older version; to rebuild the same version on a replaced node, add [recovery] (disaster recovery)",
        ),
        Relation::Newer => (
            "newer than current",
            "a rollback goes to an older version: check current-version against the image tag of the Rancher deployment",
        ),
    };
    cx.push(
        Diagnostic::error(
            Code::Direction,
            target_span,
            format!("target {tgt} is not older than current {cur}"),
        )
        .label(label)
        .help(help),
    );
}

/// Keys of RKE2 plans, refused here with a pointer to what rke1 plans use.
fn reject_rke2_keys(spec: &Spec, cx: &mut Ctx) {
    let mut misplaced: Vec<(Range<usize>, &str, &str)> = Vec::new();
    if let Some(c) = &spec.cluster {
        let c = c.get_ref();
        if let Some(v) = &c.data_dir {
            misplaced.push((
                v.span(),
                "cluster.data-dir",
                "remove it: RKE1 runs its components in docker containers",
            ));
        }
        if let Some(v) = &c.install_method {
            misplaced.push((
                v.span(),
                "cluster.install-method",
                "remove it: `rke up` installs the Kubernetes version of the cluster file",
            ));
        }
        if let Some(v) = &c.install_prefix {
            misplaced.push((
                v.span(),
                "cluster.install-prefix",
                "remove it: `rke up` installs the Kubernetes version of the cluster file",
            ));
        }
        if let Some(v) = &c.rancher_managed {
            misplaced.push((
                v.span(),
                "cluster.rancher-managed",
                "remove it: it is about RKE2 clusters that Rancher provisions; this plan rolls back Rancher itself",
            ));
        }
    }
    let tables = [
        (
            spec.datastore.as_ref().map(S::span),
            "[datastore]",
            "remove it: RKE1 keeps its state in etcd, restored from [snapshot]",
        ),
        (
            spec.token.as_ref().map(S::span),
            "[token]",
            "remove it: RKE1 keeps its certificates in the .rkestate beside the cluster file",
        ),
        (
            spec.install.as_ref().map(S::span),
            "[install]",
            "remove it: `rke up` brings the Kubernetes components back",
        ),
        (
            spec.drain.as_ref().map(S::span),
            "[drain]",
            "remove it: the RKE1 procedure restores etcd without draining",
        ),
    ];
    for (span, key, help) in tables {
        if let Some(span) = span {
            misplaced.push((span, key, help));
        }
    }
    for n in &spec.nodes {
        let n = n.get_ref();
        for (span, key) in [
            (n.name.as_ref().map(S::span), "nodes.name"),
            (n.role.as_ref().map(S::span), "nodes.role"),
            (n.init.as_ref().map(S::span), "nodes.init"),
            (n.node_name.as_ref().map(S::span), "nodes.node-name"),
        ] {
            if let Some(span) = span {
                misplaced.push((
                    span,
                    key,
                    "RKE1 nodes have `address`, `hostname`, `user` and `roles`",
                ));
            }
        }
    }
    for (span, key, help) in misplaced {
        common::misplaced(cx, Distribution::Rke2, span, key, help);
    }
}

/// A workstation path: absolute, or relative to the folder the workstation
/// scripts run from. It is passed to rke and kubectl as one word.
fn workstation_path(cx: &mut Ctx, value: &S<String>, key: &str) -> Option<String> {
    let v = value.get_ref();
    let span = Some(value.span());
    let problem = if v.is_empty() {
        Some("is empty")
    } else if v.chars().any(char::is_control) {
        Some("contains a control character (newline, tab, NUL, …)")
    } else if v.starts_with('-') {
        Some("starts with `-` (it would be read as an option)")
    } else if v.starts_with('~') {
        Some("starts with `~`, which scripts do not expand")
    } else if v.ends_with('/') {
        Some("ends with `/`; it must name a file")
    } else {
        None
    };
    if let Some(problem) = problem {
        cx.push(
            Diagnostic::error(Code::Paths, span, format!("`{key}` {problem}"))
                .help("write the file's path, absolute or relative to the folder you run the workstation scripts from (the folder holding the cluster file)"),
        );
        return None;
    }
    Some(v.clone())
}

/// The folder part of a path (with its trailing `/`), or `""` for a bare name.
fn dir_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..=i])
}

/// What rke derives from the cluster file: `<config minus extension>.rkestate`
/// and `<folder>/kube_config_<file name>`.
fn derived(config: &str) -> (String, String) {
    let dir = dir_of(config);
    let file = &config[dir.len()..];
    let stem = match file.rfind('.') {
        Some(i) => &file[..i],
        None => file,
    };
    (
        format!("{dir}{stem}.rkestate"),
        format!("{dir}kube_config_{file}"),
    )
}

fn rke_tool(
    r: &S<crate::spec::RkeSpec>,
    cx: &mut Ctx,
    checked: &mut Vec<String>,
) -> Option<RkeTool> {
    let rspan = Some(r.span());
    let r = r.get_ref();
    let binary = match &r.binary {
        Some(b) => workstation_path(cx, b, "rke.binary"),
        None => Some("rke".to_owned()),
    };
    let config = cx
        .require(
            &r.config,
            rspan,
            "rke.config",
            "add `config = \"rancher-cluster.yml\"`: the cluster file that `rke up` was run with",
        )
        .and_then(|c| workstation_path(cx, c, "rke.config"));
    let derived = config.as_deref().map(derived);
    let kubeconfig = match (&r.kubeconfig, &derived) {
        (Some(k), _) => workstation_path(cx, k, "rke.kubeconfig"),
        (None, Some((_, k))) => Some(k.clone()),
        (None, None) => None,
    };
    let deployment = match &r.deployment {
        Some(d) => cx.one_of(d, "rke.deployment"),
        None => Some(Deployment::default()),
    };
    let container = match &r.container {
        Some(c) if is_dns_label(c.get_ref()) => Some(c.get_ref().clone()),
        Some(c) => {
            cx.push(
                Diagnostic::error(Code::Fields, Some(c.span()), "`rke.container` is not a container name")
                    .label("expected lowercase letters, digits and `-`")
                    .help("write the name of the Rancher container in the deployment (`cattle-server` for the RKE add-on install, `rancher` for the helm chart)"),
            );
            None
        }
        // The helm chart names both the deployment and its container `rancher`.
        None => deployment.map(|d| match d {
            Deployment::Rancher => "rancher".to_owned(),
            Deployment::Cattle => "cattle-server".to_owned(),
        }),
    };
    let (state, _) = derived?;
    checked.push(format!(
        "rke: the workstation scripts check `{}` and `{state}` (its state file) before running `rke`",
        config.as_deref().unwrap_or_default()
    ));
    Some(RkeTool {
        binary: binary?,
        config: config?,
        state,
        kubeconfig: kubeconfig?,
        deployment: deployment?.to_string(),
        container: container?,
        s3_backup: r.s3_backup.as_ref().is_some_and(|b| *b.get_ref()),
    })
}

/// An rke snapshot name: what `rke etcd snapshot-save --name` was given.
fn is_snapshot_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 200
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':' | b'+'))
}

fn snapshot(
    s: &S<crate::spec::SnapshotSpec>,
    cx: &mut Ctx,
    target: Option<&RancherVersion>,
    recovery: bool,
    checked: &mut Vec<String>,
) -> Option<Rke1Snapshot> {
    let sspan = Some(s.span());
    let snap = s.get_ref();
    let name = cx
        .require(
            &snap.name,
            sspan.clone(),
            "snapshot.name",
            "add `name = \"<snapshot name>\"`: the name given to `rke etcd snapshot-save`, without .zip",
        )
        .and_then(|n| {
            let v = n.get_ref();
            if let Some(stem) = v.strip_suffix(".zip") {
                cx.push(
                    Diagnostic::error(Code::Fields, Some(n.span()), "`snapshot.name` ends with .zip")
                        .label("rke takes the name without the extension")
                        .help(format!("write `name = \"{stem}\"`: `rke etcd snapshot-restore --name` adds .zip itself")),
                );
                None
            } else if is_snapshot_name(v) {
                Some(v.clone())
            } else {
                cx.push(
                    Diagnostic::error(Code::Fields, Some(n.span()), "`snapshot.name` is not an rke snapshot name")
                        .label("expected letters, digits, `.`, `_`, `-`, `:` and `+`, starting with a letter or digit")
                        .help("write the file name as it is in /opt/rke/etcd-snapshots/ on an etcd node, without .zip"),
                );
                None
            }
        });
    let taken_on = cx.require(
        &snap.taken_on,
        sspan.clone(),
        "snapshot.taken-on",
        "add `taken-on = \"v2.4.5\"`: the Rancher version running when the snapshot was taken",
    );
    let taken = taken_on.and_then(|t| version(cx, t, "snapshot.taken-on"));
    if let (Some(t), Some(taken), Some(target)) = (taken_on, &taken, target) {
        // The wording says "the target" whether it comes from the plan or
        // from `--to`, so `--to` is not passed.
        common::snapshot_minor(cx, &WORDS, t.span(), taken, target, None, checked);
    }
    let sha256 = common::sha256(
        cx,
        &WORDS,
        &snap.sha256,
        "snapshot.sha256",
        sspan.clone(),
        "the snapshot file exists",
        "add `sha256 = \"…\"` with what `sha256sum /opt/rke/etcd-snapshots/<name>.zip` prints on the etcd node the restore uses",
    );
    if sha256.as_ref().is_some_and(Option::is_some) {
        checked.push(if recovery {
            "integrity: the snapshot's sha256 is checked on the new node before it is put in place"
                .into()
        } else {
            "integrity: the snapshot's sha256 is checked on the etcd node rke restores from, before anything changes"
                .into()
        });
    }
    // Where disaster recovery gets the file from: S3, a copy on the
    // replacement, or (neither) the operator puts it in place by hand.
    let misplaced = snap
        .path
        .as_ref()
        .map(S::span)
        .or(snap.s3.as_ref().map(S::span));
    let (s3, path) = match (&snap.s3, &snap.path, misplaced) {
        (_, _, Some(span)) if !recovery => {
            cx.push(
                Diagnostic::error(Code::Recovery, Some(span), "[snapshot.s3] and `snapshot.path` are only read by disaster recovery")
                    .label("no [recovery] in this plan")
                    .help("remove it: after an unsuccessful upgrade rke restores the snapshot already in /opt/rke/etcd-snapshots/ on the etcd nodes (or in the S3 bucket of the cluster file's backup_config)"),
            );
            (None, None)
        }
        (Some(_), Some(p), _) => {
            cx.push(
                common::path_and_s3(p)
                    .help("keep one: [snapshot.s3] to pull it with s3cmd, `path` for a copy already on the replacement node"),
            );
            (None, None)
        }
        (Some(s3), None, _) => (s3_for_rke1(s3, cx, name.as_deref()).map(Some), Some(None)),
        (None, Some(p), _) => (Some(None), cx.path(p, "snapshot.path").map(Some)),
        (None, None, _) => (Some(None), Some(None)),
    };
    Some(Rke1Snapshot {
        name: name?,
        taken_on: taken?.to_string(),
        sha256: sha256?,
        s3: s3?,
        path: path?,
    })
}

/// `[snapshot.s3]` for disaster recovery: the shared rules, except that the
/// object name may be left out and then is `<snapshot name>.zip`, what rke
/// uploads, and that s3cmd's settings live in its configuration file.
fn s3_for_rke1(s3: &S<S3Spec>, cx: &mut Ctx, snapshot: Option<&str>) -> Option<S3> {
    let s = s3.get_ref();
    // s3cmd takes its TLS settings from its configuration file.
    for (span, key) in [
        (s.insecure.as_ref().map(S::span), "insecure"),
        (s.skip_ssl_verify.as_ref().map(S::span), "skip-ssl-verify"),
        (s.endpoint_ca.as_ref().map(S::span), "endpoint-ca"),
    ] {
        if let Some(span) = span {
            cx.push(
                Diagnostic::error(
                    Code::Fields,
                    Some(span),
                    format!("`snapshot.s3.{key}` applies to RKE2 plans only"),
                )
                .label("the snapshot is fetched with s3cmd here")
                .help("remove it, and set use_https, check_ssl_certificate or ca_certs_file in the s3cmd configuration that REWIND_S3CFG names"),
            );
            return None;
        }
    }
    if let Some(e) = &s.endpoint
        && e.get_ref().contains("://")
    {
        cx.push(
            Diagnostic::error(Code::Fields, Some(e.span()), "`snapshot.s3.endpoint` has a scheme")
                .label("expected host[:port]")
                .help("write the endpoint as host[:port]; s3cmd uses https unless the s3cmd configuration in REWIND_S3CFG says `use_https = False`"),
        );
        return None;
    }
    common::s3(s3, cx, ObjectName::Snapshot(snapshot))
}

/// An address rke connects to: an IPv4 or IPv6 address, or a host name.
/// A name whose last label is all digits is a mistyped IPv4 address, not a
/// host name (RFC 1123 §2.1).
fn is_address(s: &str) -> bool {
    let numeric_tld = s
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    s.parse::<Ipv4Addr>().is_ok()
        || s.parse::<Ipv6Addr>().is_ok()
        || (is_hostname(s) && !numeric_tld)
}

fn address(cx: &mut Ctx, v: &S<String>, key: &str) -> Option<String> {
    if is_address(v.get_ref()) {
        return Some(v.get_ref().clone());
    }
    cx.push(
        Diagnostic::error(
            Code::Names,
            Some(v.span()),
            format!("`{key}` is not an address"),
        )
        .label("expected an IPv4 or IPv6 address or a lowercase host name")
        .help("write the `address:` of the node exactly as in the cluster file"),
    );
    None
}

fn nodes(spec: &Spec, cx: &mut Ctx, checked: &mut Vec<String>) -> Option<Vec<Rke1Node>> {
    let mut out = Vec::new();
    let mut ok = true;
    // Every address and host name, and the folder each node gets: all must
    // be distinct, or two nodes would share a guard or a folder.
    let mut seen: BTreeMap<String, &'static str> = BTreeMap::new();
    for n in &spec.nodes {
        let nspan = Some(n.span());
        let node = n.get_ref();
        let addr = cx
            .require(
                &node.address,
                nspan.clone(),
                "nodes.address",
                "add `address = \"<address>\"`: the node's `address:` in the cluster file",
            )
            .and_then(|a| address(cx, a, "nodes.address"));
        let hostname = match &node.hostname {
            None => Some(None),
            Some(h) if is_hostname(h.get_ref()) => Some(Some(h.get_ref().clone())),
            Some(h) => {
                cx.push(
                    Diagnostic::error(Code::Names, Some(h.span()), "`nodes.hostname` is not a valid host name")
                        .label("expected lowercase letters, digits, `-` and `.`")
                        .help("write the host's name as `uname -n` prints it, or leave it out: the scripts then recognise the node by its address"),
                );
                None
            }
        };
        let user = match &node.user {
            None => Some(None),
            Some(u) => cx.plain(u, "nodes.user").map(Some),
        };
        let roles = cx
            .require(
                &node.roles,
                nspan.clone(),
                "nodes.roles",
                "add `roles = [\"controlplane\", \"etcd\", \"worker\"]` as in the cluster file",
            )
            .and_then(|r| roles(cx, r));
        let (Some(addr), Some(hostname), Some(user), Some(roles)) = (addr, hostname, user, roles)
        else {
            ok = false;
            continue;
        };
        let mut names = vec![(addr.clone(), "address", node.address.as_ref().map(S::span))];
        if let Some(h) = &hostname
            && *h != addr
        {
            names.push((h.clone(), "hostname", node.hostname.as_ref().map(S::span)));
        }
        let mut dup = false;
        for (name, what, span) in names.iter().cloned() {
            if let Some(prev) = seen.get(&name) {
                cx.push(
                    Diagnostic::error(
                        Code::Names,
                        span,
                        format!("`{name}` is the {what} of two nodes"),
                    )
                    .label(format!("already used as a node's {prev}"))
                    .help("every [[nodes]] entry needs its own address and host name: they name its scripts' folder and its host guard"),
                );
                dup = true;
            }
        }
        if dup {
            ok = false;
            continue;
        }
        for (name, what, _) in names {
            seen.insert(name, what);
        }
        out.push(Rke1Node {
            address: addr,
            hostname,
            user,
            roles,
        });
    }
    if !ok {
        return None;
    }
    let count = |role: Rke1Role| out.iter().filter(|n| n.has(role)).count();
    let (etcd, cp) = (count(Rke1Role::Etcd), count(Rke1Role::Controlplane));
    let mut missing = Vec::new();
    if etcd == 0 {
        missing.push(Rke1Role::Etcd.as_str());
    }
    if cp == 0 {
        missing.push(Rke1Role::Controlplane.as_str());
    }
    if !missing.is_empty() {
        let span = spec.nodes.first().map(S::span).or(Some(0..0));
        cx.push(
            Diagnostic::error(
                Code::Servers,
                span,
                format!("no node has the {} role", missing.join(" or ")),
            )
            .help("list every node of the cluster file as [[nodes]], with its roles: the snapshot is restored on the etcd nodes and the API runs on the controlplane nodes"),
        );
        return None;
    }
    checked.push(format!(
        "names: {} node{} with unique addresses ({etcd} etcd, {cp} controlplane, {} worker)",
        out.len(),
        if out.len() == 1 { "" } else { "s" },
        count(Rke1Role::Worker),
    ));
    Some(out)
}

fn roles(cx: &mut Ctx, r: &S<Vec<S<String>>>) -> Option<Vec<Rke1Role>> {
    let mut out: Vec<Rke1Role> = Vec::new();
    let mut ok = true;
    for role in r.get_ref() {
        match cx.one_of::<Rke1Role>(role, "nodes.roles") {
            Some(v) if out.contains(&v) => {
                cx.push(
                    Diagnostic::error(
                        Code::Fields,
                        Some(role.span()),
                        format!("role `{v}` is listed twice"),
                    )
                    .help("list each role once"),
                );
                ok = false;
            }
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    if ok && out.is_empty() {
        cx.push(
            Diagnostic::error(Code::Fields, Some(r.span()), "`nodes.roles` is empty")
                .help("write the node's roles as in the cluster file, e.g. [\"controlplane\", \"etcd\", \"worker\"]"),
        );
        ok = false;
    }
    // The model keeps the canonical order (Rke1Role's), not the plan's, so
    // scripts are identical for `["etcd", "worker"]` and `["worker", "etcd"]`.
    out.sort_unstable();
    ok.then_some(out)
}

fn recovery(
    r: &S<crate::spec::RecoverySpec>,
    cx: &mut Ctx,
    nodes: Option<&[Rke1Node]>,
    checked: &mut Vec<String>,
) -> Option<Recovery> {
    let rspan = Some(r.span());
    let rv = r.get_ref();
    let failed_v = cx.require(
        &rv.failed,
        rspan.clone(),
        "recovery.failed",
        "add `failed = \"<address>\"`: the address of the dead node",
    );
    let replacement_v = cx.require(
        &rv.replacement,
        rspan,
        "recovery.replacement",
        "add `replacement = \"<address>\"`: the address of the new node, also listed in [[nodes]]",
    );
    let failed = failed_v.and_then(|f| address(cx, f, "recovery.failed"));
    let replacement = replacement_v.and_then(|f| address(cx, f, "recovery.replacement"));
    let (failed, replacement, nodes) = (failed?, replacement?, nodes?);
    let mut ok = true;
    if nodes.iter().any(|n| n.address == failed) {
        cx.push(
            Diagnostic::error(
                Code::Recovery,
                failed_v.map(S::span),
                format!("the failed node {failed} is still listed in [[nodes]]"),
            )
            .help("remove the dead node from [[nodes]] (and from the cluster file): rke must not try to reach it"),
        );
        ok = false;
    }
    match nodes.iter().find(|n| n.address == replacement) {
        None => {
            cx.push(
                Diagnostic::error(
                    Code::Recovery,
                    replacement_v.map(S::span),
                    format!("the replacement {replacement} is not listed in [[nodes]]"),
                )
                .help("add the new node to [[nodes]] with the roles of the node it replaces"),
            );
            ok = false;
        }
        Some(n) if !n.has(Rke1Role::Etcd) => {
            cx.push(
                Diagnostic::error(
                    Code::Recovery,
                    replacement_v.map(S::span),
                    format!("the replacement {replacement} has no etcd role"),
                )
                .help("disaster recovery restores etcd onto a new etcd node; a lost controlplane or worker node is replaced by `rke up` alone"),
            );
            ok = false;
        }
        Some(_) => {}
    }
    if !ok {
        return None;
    }
    checked.push(format!(
        "recovery: {failed} is not in the plan's nodes; {replacement} (etcd) replaces it"
    ));
    Some(Recovery {
        failed,
        replacement,
    })
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::Severity;
    use crate::model::{Kind, Rke1};
    use crate::source::SourceFile;
    use crate::validate::{Checked, check};

    const UPGRADE: &str = r#"
[cluster]
name = "rancher"
distribution = "rke1"
current-version = "v2.4.8"
target-version = "v2.4.5"

[rke]
binary = "./rke_linux-amd64"
config = "rancher-cluster.yml"

[snapshot]
name = "pre-upgrade-2020-09-01"
taken-on = "v2.4.5"
sha256 = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

[[nodes]]
address = "1.1.1.1"
user = "root"
roles = ["controlplane", "etcd", "worker"]

[[nodes]]
address = "2.2.2.2"
hostname = "rancher-2"
roles = ["worker", "etcd", "controlplane"]
"#;

    fn run(text: &str) -> Checked {
        check(&SourceFile::new("t.toml", text), None)
    }

    fn codes(c: &Checked, severity: Severity) -> Vec<&'static str> {
        c.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .map(|d| d.code.as_str())
            .collect()
    }

    fn errors(text: &str) -> Vec<&'static str> {
        codes(&run(text), Severity::Error)
    }

    fn model(text: &str) -> Rke1 {
        let c = run(text);
        let m = c
            .model
            .unwrap_or_else(|| panic!("rejected: {:?}", c.diagnostics));
        match m.kind {
            Kind::Rke1(r) => r,
            Kind::Rke2(_) => panic!("not rke1"),
        }
    }

    #[test]
    fn the_seed_upgrade_plan_is_accepted_with_defaults() {
        let r = model(UPGRADE);
        assert_eq!(r.target.to_string(), "v2.4.5");
        assert_eq!(r.rke.binary, "./rke_linux-amd64");
        assert_eq!(r.rke.state, "rancher-cluster.rkestate");
        assert_eq!(r.rke.kubeconfig, "kube_config_rancher-cluster.yml");
        assert_eq!(
            (r.rke.deployment.as_str(), r.rke.container.as_str()),
            ("cattle", "cattle-server")
        );
        assert_eq!(r.nodes[1].roles, crate::choice::Rke1Role::ALL);
        assert_eq!(r.nodes[1].folder(), "rancher-2");
        assert_eq!(r.nodes[0].folder(), "1.1.1.1");
        assert!(r.recovery.is_none());
        assert!(codes(&run(UPGRADE), Severity::Warning).is_empty());
    }

    #[test]
    fn rancher_past_v2_4_compiles_with_a_warning_naming_the_documented_way() {
        let text = UPGRADE
            .replace("v2.4.8", "v2.6.3")
            .replace("v2.4.5", "v2.5.9");
        let c = run(&text);
        assert!(c.model.is_some(), "{:?}", c.diagnostics);
        assert_eq!(codes(&c, Severity::Warning), ["rancher-version"]);
        let help = c.diagnostics[0].help.clone().unwrap_or_default();
        assert!(help.contains("rancher-backup"), "{help}");
        assert!(help.contains("helm rollback"), "{help}");
    }

    #[test]
    fn derived_files_follow_the_cluster_file() {
        let r = model(&UPGRADE.replace(
            "config = \"rancher-cluster.yml\"",
            "config = \"/root/rke/cluster.yaml\"\ndeployment = \"rancher\"",
        ));
        assert_eq!(r.rke.state, "/root/rke/cluster.rkestate");
        assert_eq!(r.rke.kubeconfig, "/root/rke/kube_config_cluster.yaml");
        assert_eq!(r.rke.container, "rancher");
        assert_eq!(
            super::derived("cluster"),
            ("cluster.rkestate".into(), "kube_config_cluster".into())
        );
    }

    #[test]
    fn versions_must_be_rancher_versions() {
        let e = errors(&UPGRADE.replace("\"v2.4.8\"", "\"v1.28.9+rke2r1\""));
        assert_eq!(e, ["versions"]);
        let e = errors(&UPGRADE.replace("taken-on = \"v2.4.5\"", "taken-on = \"2.4.5\""));
        assert_eq!(e, ["versions"]);
    }

    #[test]
    fn direction_needs_an_older_target_unless_recovering() {
        assert_eq!(
            errors(&UPGRADE.replace("\"v2.4.8\"", "\"v2.4.5\"")),
            ["direction"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("\"v2.4.8\"", "\"v2.4.1\"")),
            ["direction"]
        );
        let dr = recovery_plan("");
        let r = model(&dr.replace("\"v2.4.8\"", "\"v2.4.5\""));
        assert!(r.recovery.is_some());
        assert_eq!(
            errors(&dr.replace("\"v2.4.8\"", "\"v2.4.1\"")),
            ["direction"],
            "newer is refused even when recovering"
        );
    }

    #[test]
    fn to_overrides_the_target() {
        let c = check(&SourceFile::new("t.toml", UPGRADE), Some("v2.4.6"));
        assert!(codes(&c, Severity::Error).is_empty());
        assert!(codes(&c, Severity::Warning).is_empty());
        let c = check(&SourceFile::new("t.toml", UPGRADE), Some("v2.3.0"));
        assert_eq!(codes(&c, Severity::Error), ["snapshot-minor"]);
        let c = check(&SourceFile::new("t.toml", UPGRADE), Some("2.4"));
        assert_eq!(codes(&c, Severity::Error), ["versions"]);
    }

    #[test]
    fn snapshot_rules() {
        assert_eq!(
            errors(&UPGRADE.replace("taken-on = \"v2.4.5\"", "taken-on = \"v2.3.9\"")),
            ["snapshot-minor"]
        );
        let c = run(&UPGRADE.replace("taken-on = \"v2.4.5\"", "taken-on = \"v2.4.7\""));
        assert_eq!(codes(&c, Severity::Warning), ["snapshot-patch"]);
        assert!(c.model.is_some());
        assert_eq!(
            errors(&UPGRADE.replace("pre-upgrade-2020-09-01", "pre-upgrade.zip")),
            ["fields"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("pre-upgrade-2020-09-01", "a/b")),
            ["fields"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("pre-upgrade-2020-09-01", "$(id)")),
            ["fields"]
        );
        let no_hash = UPGRADE.replace(
            "sha256 = \"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\"\n",
            "",
        );
        let c = run(&no_hash);
        assert_eq!(codes(&c, Severity::Warning), ["integrity"]);
        assert_eq!(errors(&UPGRADE.replace("a1b2c3d4e5f6", "zz")), ["hashes"]);
    }

    #[test]
    fn s3_and_path_belong_to_disaster_recovery() {
        let s3 = "\n[snapshot.s3]\nbucket = \"rke-etcd-snapshots\"\n";
        let e = errors(&UPGRADE.replacen("\n[[nodes]]", &format!("{s3}\n[[nodes]]"), 1));
        assert_eq!(e, ["recovery"]);
        let r = model(&recovery_plan(s3));
        let s3m = r.snapshot.s3.expect("s3");
        assert_eq!(
            (s3m.name.as_str(), s3m.bucket.as_str()),
            ("pre-upgrade-2020-09-01.zip", "rke-etcd-snapshots")
        );
        let r = model(&recovery_plan(
            "\n[snapshot.s3]\nname = \"other.zip\"\nbucket = \"b\"\nfolder = \"rancher\"\n",
        ));
        assert_eq!(r.snapshot.s3.expect("s3").name, "other.zip");
        assert_eq!(
            errors(&recovery_plan(
                "\n[snapshot.s3]\nbucket = \"b\"\nendpoint = \"http://s3:9000\"\n"
            )),
            ["fields"]
        );
        let r =
            model(&recovery_plan("").replace("taken-on", "path = \"/root/snap.zip\"\ntaken-on"));
        assert_eq!(r.snapshot.path.as_deref(), Some("/root/snap.zip"));
        assert_eq!(
            errors(&recovery_plan("").replace("taken-on", "path = \"snap.zip\"\ntaken-on")),
            ["paths"]
        );
    }

    #[test]
    fn nodes_need_etcd_and_controlplane() {
        let only_workers = UPGRADE
            .replace("[\"controlplane\", \"etcd\", \"worker\"]", "[\"worker\"]")
            .replace("[\"worker\", \"etcd\", \"controlplane\"]", "[\"worker\"]");
        assert_eq!(errors(&only_workers), ["servers"]);
        let split = UPGRADE
            .replace("[\"controlplane\", \"etcd\", \"worker\"]", "[\"etcd\"]")
            .replace(
                "[\"worker\", \"etcd\", \"controlplane\"]",
                "[\"controlplane\"]",
            );
        assert!(run(&split).model.is_some());
        assert_eq!(
            errors(&UPGRADE.replace("[\"worker\", \"etcd\", \"controlplane\"]", "[]")),
            ["fields"]
        );
        assert_eq!(
            errors(&UPGRADE.replace(
                "[\"worker\", \"etcd\", \"controlplane\"]",
                "[\"etcd\", \"etcd\"]"
            )),
            ["fields"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("[\"worker\", \"etcd\", \"controlplane\"]", "[\"server\"]")),
            ["fields"]
        );
    }

    #[test]
    fn addresses_are_unique_and_valid() {
        assert_eq!(errors(&UPGRADE.replace("2.2.2.2", "1.1.1.1")), ["names"]);
        assert_eq!(
            errors(&UPGRADE.replace("2.2.2.2", "1.1.1.1; reboot")),
            ["names"]
        );
        assert_eq!(errors(&UPGRADE.replace("2.2.2.2", "1.1.1.256")), ["names"]);
        assert_eq!(
            errors(&UPGRADE.replace("hostname = \"rancher-2\"", "hostname = \"1.1.1.1\"")),
            ["names"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("rancher-2", "Rancher_2")),
            ["names"]
        );
        let v6 = model(&UPGRADE.replace("2.2.2.2", "fd00::2"));
        assert_eq!(v6.nodes[1].address, "fd00::2");
        let dns = model(&UPGRADE.replace("1.1.1.1", "node1.example.internal"));
        assert_eq!(dns.nodes[0].folder(), "node1.example.internal");
    }

    #[test]
    fn workstation_paths_may_be_relative_but_not_options() {
        assert_eq!(
            errors(&UPGRADE.replace("./rke_linux-amd64", "-rke")),
            ["paths"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("./rke_linux-amd64", "~/rke")),
            ["paths"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("rancher-cluster.yml\"", "rke/\"")),
            ["paths"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("[rke]", "[rke]\ncontainer = \"Cattle Server\"")),
            ["fields"]
        );
        assert_eq!(
            errors(&UPGRADE.replace("[rke]", "[rke]\ndeployment = \"rancher-v2\"")),
            ["fields"]
        );
        let no_rke = UPGRADE.replace(
            "[rke]\nbinary = \"./rke_linux-amd64\"\nconfig = \"rancher-cluster.yml\"\n",
            "",
        );
        assert_eq!(errors(&no_rke), ["required"]);
        assert_eq!(
            model(&UPGRADE.replace("binary = \"./rke_linux-amd64\"\n", ""))
                .rke
                .binary,
            "rke"
        );
    }

    #[test]
    fn rke2_keys_are_refused() {
        let e = errors(&UPGRADE.replace("[rke]", "[drain]\nenabled = false\n\n[rke]"));
        assert_eq!(e, ["fields"]);
        let e = errors(&UPGRADE.replace("user = \"root\"", "user = \"root\"\nname = \"x\""));
        assert_eq!(e, ["fields"]);
        let e = errors(&UPGRADE.replace(
            "distribution = \"rke1\"",
            "distribution = \"rke1\"\ndata-dir = \"/x\"",
        ));
        assert_eq!(e, ["fields"]);
    }

    fn recovery_plan(extra_snapshot: &str) -> String {
        UPGRADE.replace(
            "\n[[nodes]]\naddress = \"1.1.1.1\"",
            &format!("{extra_snapshot}\n[recovery]\nfailed = \"3.3.3.3\"\nreplacement = \"2.2.2.2\"\n\n[[nodes]]\naddress = \"1.1.1.1\""),
        )
    }

    #[test]
    fn recovery_rules() {
        let r = model(&recovery_plan(""));
        let rec = r.recovery.expect("recovery");
        assert_eq!(
            (rec.failed.as_str(), rec.replacement.as_str()),
            ("3.3.3.3", "2.2.2.2")
        );
        assert_eq!(
            errors(&recovery_plan("").replace("failed = \"3.3.3.3\"", "failed = \"1.1.1.1\"")),
            ["recovery"]
        );
        assert_eq!(
            errors(
                &recovery_plan("")
                    .replace("replacement = \"2.2.2.2\"", "replacement = \"4.4.4.4\"")
            ),
            ["recovery"]
        );
        let worker =
            recovery_plan("").replace("[\"worker\", \"etcd\", \"controlplane\"]", "[\"worker\"]");
        assert_eq!(errors(&worker), ["recovery"]);
        assert_eq!(
            errors(&recovery_plan("").replace("failed = \"3.3.3.3\"\n", "")),
            ["required"]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let bad = UPGRADE
            .replace("\"v2.4.5\"\n\n[rke]", "\"v2.5.0\"\n\n[rke]")
            .replace("taken-on = \"v2.4.5\"", "taken-on = \"v2.3.0\"")
            .replace("2.2.2.2", "1.1.1.1");
        let mut e = errors(&bad);
        e.sort_unstable();
        assert_eq!(e, ["direction", "names", "snapshot-minor"]);
    }
}
