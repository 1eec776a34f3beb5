//! `rewind init --from-rke CLUSTER.yml`: a Rancher-on-RKE1 plan from the RKE
//! cluster file (`rancher-cluster.yml`) that `rke up` was run with, so that
//! the nodes are not typed a second time.
//!
//! What is read: `nodes[]` (`address`, `hostname_override`, `user`, `role`;
//! `internal_address` as a comment), `cluster_name`, `kubernetes_version`
//! (a comment: it is the Kubernetes version, not Rancher's) and, when etcd is
//! backed up to S3, `services.etcd.backup_config.s3backupconfig`'s bucket,
//! folder, endpoint and region (a commented `[snapshot.s3]` for disaster
//! recovery). The S3 keys, SSH keys and everything else are never read: the
//! types below have no field for them.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::choice::{Distribution, Rke1Role};
use crate::init::{ImportError, Imported, MASKED, PlanText, STEPS, file_name, markers, toml_str};

/// The part of an RKE cluster file rewind reads.
#[derive(Debug, Deserialize)]
struct ClusterFile {
    nodes: Option<Spanned<Vec<Spanned<RkeNode>>>>,
    cluster_name: Option<String>,
    kubernetes_version: Option<String>,
    services: Option<Services>,
}

#[derive(Debug, Deserialize)]
struct Services {
    etcd: Option<Etcd>,
}

#[derive(Debug, Deserialize)]
struct Etcd {
    backup_config: Option<BackupConfig>,
}

#[derive(Debug, Deserialize)]
struct BackupConfig {
    s3backupconfig: Option<S3Config>,
}

/// `s3backupconfig` without `access_key` and `secret_key`.
#[derive(Debug, Deserialize)]
struct S3Config {
    bucket_name: Option<String>,
    folder: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RkeNode {
    address: Option<String>,
    internal_address: Option<String>,
    hostname_override: Option<String>,
    user: Option<String>,
    role: Option<Vec<String>>,
}

const HELP_FILE: &str =
    "give the cluster file `rke up` was run with (e.g. rancher-cluster.yml), as it is";

/// A YAML error as "what, at line:column", without quoting the file: the
/// values of a cluster file (S3 keys, SSH key paths) must not reach the
/// terminal, so quoted text in the parser's message is left out too.
fn yaml_error(file: &str, e: &serde_saphyr::Error) -> ImportError {
    let rendered = e
        .without_snippet()
        .render()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut message = String::new();
    let mut quoted = false;
    for c in rendered.chars() {
        if c == '"' {
            if !quoted {
                message.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            message.push(c);
        }
    }
    let message = message.split(" at line ").next().unwrap_or_default();
    // Advice meant for programs that embed the parser is no help here.
    let message = message
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let location = e.location();
    ImportError::new(
        file,
        format!("not a valid RKE cluster file ({message})"),
        HELP_FILE,
    )
    .at(
        location.map_or(0, |l| usize::try_from(l.line()).unwrap_or(0)),
        location.and_then(|l| usize::try_from(l.column()).ok()),
    )
}

/// One node of the plan.
struct Node {
    line: usize,
    address: String,
    internal_address: Option<String>,
    hostname: Option<String>,
    /// `hostname_override` as written, when it is not written as is.
    hostname_note: Option<String>,
    user: Option<String>,
    roles: Vec<Rke1Role>,
}

/// A value rewind may write: one line, not empty, not a masked secret.
fn one_line(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && !s.contains(MASKED) && !s.chars().any(char::is_control)).then(|| s.to_owned())
}

fn nodes(file: &str, cf: &ClusterFile) -> Result<Vec<Node>, ImportError> {
    let Some(list) = &cf.nodes else {
        return Err(ImportError::new(
            file,
            "no `nodes:` list: this is not an RKE cluster file",
            HELP_FILE,
        ));
    };
    if list.value.is_empty() {
        return Err(
            ImportError::new(file, "the `nodes:` list is empty", HELP_FILE)
                .at(usize::try_from(list.referenced.line()).unwrap_or(0), None),
        );
    }
    let mut out = Vec::new();
    for (i, n) in list.value.iter().enumerate() {
        let line = usize::try_from(n.referenced.line()).unwrap_or(0);
        let err =
            |message: String, help: &str| ImportError::new(file, message, help).at(line, None);
        let node = &n.value;
        let address = node.address.as_deref().and_then(one_line).ok_or_else(|| {
            err(
                format!("node {} has no `address`", i + 1),
                "every node of an RKE cluster file has the address rke connects to",
            )
        })?;
        let Some(role) = node.role.as_ref().filter(|r| !r.is_empty()) else {
            return Err(err(
                format!("node {address} has no `role` list"),
                "give each node its roles, as rke needs them: controlplane, etcd and/or worker",
            ));
        };
        let mut roles: Vec<Rke1Role> = Vec::new();
        for r in role {
            let Some(known) = Rke1Role::parse(r.trim()) else {
                return Err(err(
                    format!(
                        "node {address} has the role {}; RKE1 roles are controlplane, etcd and worker",
                        toml_str(&r.chars().take(40).collect::<String>())
                    ),
                    "fix the cluster file (rke up refuses it too)",
                ));
            };
            if !roles.contains(&known) {
                roles.push(known);
            }
        }
        let (hostname, hostname_note) = match node.hostname_override.as_deref().and_then(one_line) {
            None => (None, None),
            Some(h) => {
                let lower = h.to_ascii_lowercase();
                if crate::validate::is_hostname(&lower) {
                    let note = (lower != h).then(|| format!("hostname_override {h}, in lowercase"));
                    (Some(lower), note)
                } else {
                    (
                        None,
                        Some(format!(
                            "hostname_override {} is not a host name, so the host guard\nchecks the address only",
                            toml_str(&h)
                        )),
                    )
                }
            }
        };
        out.push(Node {
            line,
            address,
            internal_address: node.internal_address.as_deref().and_then(one_line),
            hostname,
            hostname_note,
            user: node.user.as_deref().and_then(one_line),
            roles,
        });
    }
    Ok(out)
}

/// The plan for the RKE cluster file `text` (read from `path`).
pub fn import(path: &str, text: &str) -> Result<Imported, ImportError> {
    let file = path;
    let options = serde_saphyr::options! { with_snippet: false };
    let cf: ClusterFile =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error(file, &e))?;
    let nodes = nodes(file, &cf)?;
    let source = file_name(file);
    let config = if source.starts_with('-') || source.starts_with('~') {
        format!("./{source}")
    } else {
        source.to_owned()
    };
    let stem = config.rsplit_once('.').map_or(config.as_str(), |(s, _)| s);
    let mut notes = Vec::new();

    let mut p = PlanText::new();
    let count = |role: Rke1Role| nodes.iter().filter(|n| n.roles.contains(&role)).count();
    p.para(&format!(
        "A rewind plan for Rancher HA on RKE1, imported by `rewind init --from-rke` from {source}: {} node{} ({} etcd, {} controlplane, {} worker).",
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" },
        count(Rke1Role::Etcd),
        count(Rke1Role::Controlplane),
        count(Rke1Role::Worker),
    ))
    .comment(STEPS)
    .para(&format!(
        "Comments starting with \"from {source}\" say where a value came from. The cluster file's S3 and SSH keys are not read."
    ));
    p.raw("format = 1").blank();

    // [cluster]
    p.raw("[cluster]");
    match cf
        .cluster_name
        .as_deref()
        .and_then(one_line)
        .filter(|n| crate::validate::is_dns_label(n))
    {
        Some(name) => {
            p.para(&format!(
                "from {source}: cluster_name. The operator types it to confirm every step\nthat destroys data."
            ))
            .string("name", &name);
        }
        None => {
            p.para("A DNS label; the operator types it to confirm every step that destroys data.")
                .fill("name", "cluster name, e.g. rancher");
        }
    }
    p.string("distribution", Distribution::Rke1.as_str());
    let mut version_note = String::from(
        "The Rancher version running now, after the failed upgrade (the image tag of\n\
         the Rancher deployment in cattle-system).",
    );
    if let Some(k) = cf.kubernetes_version.as_deref().and_then(one_line) {
        version_note.push_str(&format!(
            " The cluster file's kubernetes_version ({k}) is the version of Kubernetes, not of Rancher."
        ));
    }
    p.para(&version_note)
        .fill("current-version", "Rancher version now, e.g. v2.4.8")
        .para("The Rancher version to roll back to (for disaster recovery, the version it runs now); the snapshot below must be from its minor.")
        .fill(
            "target-version",
            "Rancher version to go back to, e.g. v2.4.5",
        )
        .blank();

    // [rke]
    p.raw("[rke]")
        .para("The rke binary on the workstation (default: `rke` found in PATH).")
        .raw("# binary = \"./rke_linux-amd64\"")
        .para(&format!(
            "from the --from-rke argument. The workstation scripts run from the folder\n\
             that holds it; {stem}.rkestate must sit beside it, and the kubeconfig\n\
             defaults to kube_config_{config} there."
        ))
        .string("config", &config)
        .para("The Rancher deployment in cattle-system (`kubectl -n cattle-system get\ndeployments`): \"cattle\" for the RKE add-on install of Rancher v2.0-v2.4, as in\nthe rollback guide, or \"rancher\" for the helm chart.")
        .fill("deployment", "cattle or rancher")
        .blank();

    // [snapshot]
    p.raw("[snapshot]")
        .para("The name given to `rke etcd snapshot-save --name` BEFORE the upgrade, without\n.zip: /opt/rke/etcd-snapshots/<name>.zip on the etcd nodes.")
        .fill("name", "snapshot name, e.g. pre-upgrade-2020-09-01")
        .para("The Rancher version when the snapshot was taken.")
        .fill("taken-on", "Rancher version at snapshot time, e.g. v2.4.5")
        .para("Recommended: `sha256sum` of <name>.zip; the scripts check it first.")
        .raw("# sha256 = \"<64 hex digits>\"");
    let s3 = cf
        .services
        .as_ref()
        .and_then(|s| s.etcd.as_ref())
        .and_then(|e| e.backup_config.as_ref())
        .and_then(|b| b.s3backupconfig.as_ref());
    if let Some(s3) = s3 {
        let bucket = s3.bucket_name.as_deref().and_then(one_line);
        let mut lines = vec![
            format!("from {source}: services.etcd.backup_config.s3backupconfig (its keys are not"),
            "read). For disaster recovery (a dead etcd node replaced by a new one),".to_owned(),
            "uncomment [snapshot.s3] and [recovery]: the new node pulls the snapshot with"
                .to_owned(),
            "s3cmd, with keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or REWIND_S3CFG"
                .to_owned(),
            "at run time.".to_owned(),
        ];
        if bucket.is_none() {
            lines.push("It names no bucket_name.".to_owned());
        }
        p.para(&lines.join("\n")).raw("# [snapshot.s3]");
        match &bucket {
            Some(b) => p.raw(&format!("# bucket = {}", toml_str(b))),
            None => p.raw("# bucket = \"<bucket>\""),
        };
        if let Some(f) = s3.folder.as_deref().and_then(one_line) {
            p.raw(&format!("# folder = {}", toml_str(&f)));
        }
        if let Some(e) = s3.endpoint.as_deref().and_then(one_line) {
            let e = e.split_once("://").map_or(e.as_str(), |(_, rest)| rest);
            p.raw(&format!(
                "# endpoint = {}",
                toml_str(e.trim_end_matches('/'))
            ));
        }
        if let Some(r) = s3.region.as_deref().and_then(one_line) {
            p.raw(&format!("# region = {}", toml_str(&r)));
        }
        p.raw("#")
            .raw("# [recovery]")
            .raw("# failed = \"<address of the dead node, removed from [[nodes]]>\"")
            .raw("# replacement = \"<address of the new node, in [[nodes]]>\"");
    }
    p.blank();

    // [[nodes]]
    p.para(&format!(
        "from {source}: one [[nodes]] entry per node, in the cluster file's order (rke\n\
         restores from the first etcd node that holds the snapshot). Each node's\n\
         scripts run only on the host with that address or host name.{}",
        if nodes.iter().any(|n| n.internal_address.as_ref().is_some_and(|i| *i != n.address)) {
            " An address behind NAT (a public address that is not on the host's own interfaces) does not identify the host: there the host name (`hostname`) must match, or REWIND_HOST=<the node's folder name in the bundle> says which node the host is."
        } else {
            ""
        }
    ));
    for n in &nodes {
        p.blank();
        let mut about = vec![format!("from {source} line {}", n.line)];
        if let Some(ia) = &n.internal_address {
            about[0].push_str(&format!(": internal_address {ia}"));
        }
        if let Some(note) = &n.hostname_note {
            about.push(note.clone());
        }
        p.comment(&about.join("\n"))
            .raw("[[nodes]]")
            .string("address", &n.address);
        if let Some(h) = &n.hostname {
            p.string("hostname", h);
        }
        if let Some(u) = &n.user {
            p.string("user", u);
        }
        p.raw(&format!(
            "roles = [{}]",
            n.roles
                .iter()
                .map(|r| toml_str(r.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let plan = p.finish();
    if count(Rke1Role::Etcd) == 0 || count(Rke1Role::Controlplane) == 0 {
        notes.push(
            "the cluster file has no etcd or no controlplane node; `rewind check` will refuse the plan"
                .to_owned(),
        );
    }
    notes.insert(
        0,
        format!(
            "imported {} from {source}; replace the {}, then run `rewind check`",
            crate::init::count(nodes.len(), "node", "nodes"),
            crate::init::count(markers(&plan), "<FILL: …> marker", "<FILL: …> markers"),
        ),
    );
    Ok(Imported { plan, notes })
}
