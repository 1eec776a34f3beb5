//! `rewind init --from-nodes NODES.json`: an RKE2 or K3s plan from what
//! `kubectl get nodes -o json` says about the cluster.
//!
//! What a node list tells, and where from:
//!
//! - the product and the version every node runs
//!   (`status.nodeInfo.kubeletVersion`): `+rke2rN` is RKE2, `+k3sN` K3s (a
//!   list with both is refused), and the plan's names ([`Flavor`]: data dir,
//!   binary, paths in examples) are that product's; mixed versions mean an
//!   upgrade was in progress, and the highest is written;
//! - the nodes' names (`metadata.name`) and roles: a server carries one of the
//!   labels `node-role.kubernetes.io/{control-plane,etcd,master}` = `"true"`;
//! - the product's own arguments, in the `rke2.io/node-args` annotation (a
//!   JSON array of strings; `k3s.io/node-args` on K3s): `--data-dir`,
//!   `--cluster-init`, `--datastore-endpoint`, and `--server`, which every
//!   server but the first (the init server) has; the `…/node-env`
//!   annotation beside it gives the same from `K3S_URL`, `K3S_DATA_DIR`, …
//!   when the arguments lack them (K3s's install script passes them so);
//! - the datastore: external with `--datastore-endpoint`; on RKE2 embedded
//!   etcd otherwise; on K3s embedded etcd with `--cluster-init`, a server
//!   joined with `--server`, several servers or the `etcd` role label, and
//!   K3s's default, SQLite, for one server without any of them;
//! - the addresses and host name (`status.addresses`, else the
//!   `rke2.io/hostname` or `k3s.io/hostname` annotation), the OS and the
//!   architecture, written as comments (and `install.arch`).
//!
//! RKE2 and K3s mask secret arguments in the annotations (`--token
//! ********`). Only the arguments named above are read; a masked value is
//! never used, and [`PlanText::finish`] refuses a plan that would hold one.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::choice::{Arch, DatastoreKind, Distribution, Role};
use crate::init::{
    FILL, ImportError, Imported, MASKED, PlanText, STEPS, count as plural, file_name, markers,
};
use crate::model::Flavor;
use crate::version::Rke2Version;

/// Options of `init` that also apply to an import.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// `--datastore`, when given (it wins over what the nodes' arguments show).
    pub datastore: Option<&'a str>,
    /// `--airgap`.
    pub airgap: bool,
}

const SERVER_LABELS: &[&str] = &["control-plane", "etcd", "master"];
const HELP_KUBECTL: &str = "write the file with `kubectl get nodes -o json > nodes.json` (the whole list, in JSON), then run `rewind init --from-nodes nodes.json` again";

/// What one node's `rke2.io/node-args` (or `k3s.io/node-args`) says, with
/// its node-env: only the arguments rewind reads.
#[derive(Debug, Default)]
struct Args {
    /// The annotation it came from.
    key: &'static str,
    /// `server` or `agent`, the first word.
    command: Option<String>,
    data_dir: Option<String>,
    /// `--server`: the URL this node joined through.
    server: Option<String>,
    /// The variable `server` came from (`K3S_URL`), when not from `--server`.
    server_env: Option<String>,
    node_name: Option<String>,
    cluster_init: bool,
    /// `cluster_init` came from `K3S_CLUSTER_INIT` (or `RKE2_…`), not the flag.
    cluster_init_env: Option<String>,
    /// `--datastore-endpoint` is present (its value is always masked).
    datastore_endpoint: bool,
    etcd_s3: bool,
    s3: BTreeMap<&'static str, String>,
}

/// Where a node's arguments stand.
#[derive(Debug)]
enum NodeArgs {
    /// No `rke2.io/node-args` (nor `k3s.io/node-args`) annotation.
    Missing,
    /// The annotation is not a JSON array of strings.
    Unreadable(&'static str),
    Read(Args),
}

#[derive(Debug)]
struct Node {
    name: String,
    server: bool,
    role_labels: Vec<&'static str>,
    version: String,
    internal_ips: Vec<String>,
    hostname: Option<String>,
    os_image: Option<String>,
    arch: Option<String>,
    runtime: Option<String>,
    args: NodeArgs,
}

impl Node {
    /// The plan's role for it, from its labels.
    fn role(&self) -> Role {
        if self.server {
            Role::Server
        } else {
            Role::Agent
        }
    }

    fn read_args(&self) -> Option<&Args> {
        match &self.args {
            NodeArgs::Read(a) => Some(a),
            _ => None,
        }
    }
}

/// A value rewind may use: present, not masked, one line.
fn usable(v: Option<&str>) -> Option<String> {
    v.filter(|s| !s.is_empty() && !s.contains(MASKED) && !s.chars().any(char::is_control))
        .map(str::to_owned)
}

/// Reads the arguments rewind needs from a node-args list; `None` if the
/// list is not a JSON array of strings.
fn parse_args(key: &'static str, json: &str) -> Option<Args> {
    let list: Vec<String> = serde_json::from_str(json).ok()?;
    let mut a = Args {
        key,
        command: list
            .first()
            .filter(|c| matches!(c.as_str(), "server" | "agent"))
            .cloned(),
        ..Args::default()
    };
    // k3s splits `--flag=value` into two items; accept the joined form too.
    let items: Vec<&str> = list
        .iter()
        .flat_map(|s| match s.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => vec![flag, value],
            _ => vec![s.as_str()],
        })
        .collect();
    let mut i = 0;
    while i < items.len() {
        let next = items.get(i + 1).copied();
        let value = usable(next);
        // How many items this flag takes: 2 with its value, 1 without.
        let mut step = 2;
        match items[i] {
            "--data-dir" | "-d" => a.data_dir = value,
            "--server" | "-s" => a.server = value,
            "--node-name" => a.node_name = value,
            "--datastore-endpoint" => a.datastore_endpoint = true,
            flag @ ("--cluster-init" | "--etcd-s3") => {
                let on = next != Some("false");
                if flag == "--cluster-init" {
                    a.cluster_init = on;
                } else {
                    a.etcd_s3 = on;
                }
                if !matches!(next, Some("true" | "false")) {
                    step = 1;
                }
            }
            flag @ ("--etcd-s3-bucket" | "--etcd-s3-folder" | "--etcd-s3-endpoint"
            | "--etcd-s3-region") => {
                let key = &flag["--etcd-s3-".len()..];
                let key = ["bucket", "folder", "endpoint", "region"]
                    .into_iter()
                    .find(|k| *k == key)
                    .expect("one of the four");
                match value {
                    Some(v) => a.s3.insert(key, v),
                    None => a.s3.remove(key),
                };
            }
            _ => step = 1,
        }
        i += step;
    }
    Some(a)
}

/// Adds what the node's `<product>.io/node-env` annotation (a JSON object of
/// the `RKE2_*` or `K3S_*` variables it ran with) says for a flag its
/// arguments lack: K3s's install script passes `K3S_URL`, `K3S_DATA_DIR`,
/// `K3S_CLUSTER_INIT` and `K3S_DATASTORE_ENDPOINT` this way, and each flag
/// reads its variable when not given (`EnvVar` of the flags in
/// k3s-io/k3s:pkg/cli/cmds/server.go and agent.go; the annotation is written
/// by k3s-io/k3s:pkg/nodeconfig/nodeconfig.go, which masks the token and the
/// datastore endpoint as in node-args). `prefix` is `RKE2` or `K3S`.
fn apply_env(a: &mut Args, prefix: &str, json: &str) {
    let Ok(env) = serde_json::from_str::<BTreeMap<String, String>>(json) else {
        return;
    };
    let var = |name: &str| env.get(&format!("{prefix}_{name}")).map(String::as_str);
    if a.server.is_none()
        && let Some(url) = usable(var("URL"))
    {
        a.server = Some(url);
        a.server_env = Some(format!("{prefix}_URL"));
    }
    if a.data_dir.is_none() {
        a.data_dir = usable(var("DATA_DIR"));
    }
    if a.node_name.is_none() {
        a.node_name = usable(var("NODE_NAME"));
    }
    // What Go's strconv.ParseBool takes as true, as the flag library does.
    if !a.cluster_init
        && matches!(
            var("CLUSTER_INIT"),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    {
        a.cluster_init = true;
        a.cluster_init_env = Some(format!("{prefix}_CLUSTER_INIT"));
    }
    if var("DATASTORE_ENDPOINT").is_some_and(|v| !v.is_empty()) {
        a.datastore_endpoint = true;
    }
}

/// `host[:port]` of a join URL, without scheme, user info or path.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or(rest);
    rest.rsplit_once('@').map_or(rest, |(_, h)| h)
}

/// The host of `host[:port]` (IPv6 in brackets kept whole).
fn host_only(hostport: &str) -> &str {
    if hostport.starts_with('[') {
        return hostport
            .split_once(']')
            .map_or(hostport, |(h, _)| h.trim_start_matches('['));
    }
    hostport.split(':').next().unwrap_or(hostport)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Reads the node list into nodes, or says what is wrong with it.
fn read(file: &str, text: &str) -> Result<Vec<Node>, ImportError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json ends its message with " at line L column C"; the line
        // and column are given separately, and no message quotes the input.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        let yaml = text.trim_start().starts_with("apiVersion:");
        ImportError::new(
            file,
            format!("not JSON ({msg})"),
            if yaml {
                "this looks like YAML: run kubectl with `-o json`, not `-o yaml`".to_owned()
            } else {
                HELP_KUBECTL.to_owned()
            },
        )
        .at(e.line(), Some(e.column()))
    })?;
    let kind = doc.get("kind").and_then(Value::as_str);
    let items = match (kind, doc.get("items")) {
        (Some("List" | "NodeList"), Some(Value::Array(items))) => items,
        (Some("Node"), _) => {
            return Err(ImportError::new(
                file,
                "this is one Node, not the list of nodes",
                "run `kubectl get nodes -o json` without a node name, so that every node of the cluster is listed",
            ));
        }
        (Some(other), _) => {
            return Err(ImportError::new(
                file,
                format!(
                    "not a list of nodes: its `kind` is {}",
                    crate::init::toml_str(other)
                ),
                HELP_KUBECTL,
            ));
        }
        (None, _) => {
            return Err(ImportError::new(
                file,
                "not a list of nodes: no `kind: List` with `items`",
                HELP_KUBECTL,
            ));
        }
    };
    if items.is_empty() {
        return Err(ImportError::new(
            file,
            "the list has no nodes",
            "run `kubectl get nodes -o json` against the cluster to roll back (check the kubeconfig and context)",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| node(file, i, item))
        .collect()
}

fn node(file: &str, i: usize, item: &Value) -> Result<Node, ImportError> {
    let at = |what: &str| format!("items[{i}]{what}");
    if let Some(kind) = item.get("kind").and_then(Value::as_str)
        && kind != "Node"
    {
        return Err(ImportError::new(
            file,
            format!(
                "{} is a {}, not a Node",
                at(""),
                crate::init::toml_str(kind)
            ),
            HELP_KUBECTL,
        ));
    }
    let name = str_at(item, &["metadata", "name"])
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ImportError::new(
                file,
                format!("{} has no name", at(".metadata")),
                HELP_KUBECTL,
            )
        })?
        .to_owned();
    if name.contains(MASKED) || name.chars().any(char::is_control) {
        return Err(ImportError::new(
            file,
            format!("{} is not a node name", at(".metadata.name")),
            HELP_KUBECTL,
        ));
    }
    let version = str_at(item, &["status", "nodeInfo", "kubeletVersion"])
        .ok_or_else(|| {
            ImportError::new(
                file,
                format!(
                    "node {name} ({}) has no kubeletVersion",
                    at(".status.nodeInfo")
                ),
                HELP_KUBECTL,
            )
        })?
        .to_owned();
    let labels = item.pointer("/metadata/labels");
    let role_labels: Vec<&'static str> = SERVER_LABELS
        .iter()
        .copied()
        .filter(|r| {
            labels
                .and_then(|l| l.get(format!("node-role.kubernetes.io/{r}")))
                .and_then(Value::as_str)
                == Some("true")
        })
        .collect();
    let annotations = item.pointer("/metadata/annotations");
    let annotation = |key: &str| annotations.and_then(|a| a.get(key)).and_then(Value::as_str);
    let args = [("rke2", "rke2.io/node-args"), ("k3s", "k3s.io/node-args")]
        .into_iter()
        .find_map(|(product, key)| annotation(key).map(|json| (product, key, json)))
        .map_or(NodeArgs::Missing, |(product, key, json)| {
            match parse_args(key, json) {
                Some(mut a) => {
                    if let Some(env) = annotation(&format!("{product}.io/node-env")) {
                        apply_env(&mut a, &product.to_ascii_uppercase(), env);
                    }
                    NodeArgs::Read(a)
                }
                None => NodeArgs::Unreadable(key),
            }
        });
    let mut internal_ips = Vec::new();
    let mut hostname = None;
    if let Some(Value::Array(addresses)) = item.pointer("/status/addresses") {
        for a in addresses {
            let address = usable(a.get("address").and_then(Value::as_str));
            match (a.get("type").and_then(Value::as_str), address) {
                (Some("InternalIP"), Some(ip)) => internal_ips.push(ip),
                (Some("Hostname"), Some(h)) if hostname.is_none() => hostname = Some(h),
                _ => {}
            }
        }
    }
    // What the product's cloud provider builds status.addresses from
    // (k3s-io/k3s:pkg/cloudprovider/instances.go), for a list without them.
    if hostname.is_none() {
        hostname = usable(annotation("rke2.io/hostname").or(annotation("k3s.io/hostname")));
    }
    if internal_ips.is_empty()
        && let Some(ips) = annotation("rke2.io/internal-ip").or(annotation("k3s.io/internal-ip"))
    {
        internal_ips = ips.split(',').filter_map(|ip| usable(Some(ip))).collect();
    }
    let info = |k: &str| usable(str_at(item, &["status", "nodeInfo", k]));
    Ok(Node {
        name,
        server: !role_labels.is_empty(),
        role_labels,
        version,
        internal_ips,
        hostname,
        os_image: info("osImage"),
        arch: info("architecture"),
        runtime: info("containerRuntimeVersion"),
        args,
    })
}

/// The datastore the plan describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Datastore {
    Known(DatastoreKind),
    /// Some node has `--datastore-endpoint`, whose value (and so the kind)
    /// is masked.
    External,
}

/// `names` as "a, b and c".
fn and_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What the node list says, worked out before anything is written.
struct Facts<'a> {
    /// RKE2 or K3s, from the versions: every name the plan's text uses.
    flavor: &'static Flavor,
    nodes: &'a [Node],
    servers: Vec<&'a Node>,
    agents: Vec<&'a Node>,
    /// Every version with the nodes that run it, highest first.
    versions: Vec<(Rke2Version, Vec<&'a str>)>,
    /// Nodes whose arguments are unknown.
    without_args: Vec<&'a str>,
    /// Servers with `--datastore-endpoint`.
    external: Vec<&'a str>,
    datastore: Datastore,
    /// Why the datastore is what it is, when the nodes' arguments (not
    /// `--datastore`) say so and it is not RKE2's embedded etcd.
    datastore_why: Option<String>,
    /// Every data dir with the nodes that use it.
    data_dirs: BTreeMap<String, Vec<&'a str>>,
    /// Servers whose arguments are unknown.
    unknown: Vec<&'a str>,
    /// Servers without `--server`.
    first: Vec<&'a str>,
    /// The datastore is embedded etcd, which needs an init server.
    etcd: bool,
    init: Option<&'a str>,
    /// The servers that may be the init server, when it is not known.
    candidates: Vec<&'a str>,
}

/// The product every node runs, from its version's build tag: RKE2
/// (`+rke2rN`) or K3s (`+k3sN`). A list with both, or with another version,
/// is refused.
fn flavor_of(file: &str, nodes: &[Node]) -> Result<&'static Flavor, ImportError> {
    let mut seen: Vec<(&'static Flavor, &Node)> = Vec::new();
    for n in nodes {
        let Some(flavor) = Flavor::ALL
            .into_iter()
            .find(|f| f.version(&n.version).is_some())
        else {
            return Err(ImportError::new(
                file,
                format!(
                    "node {} runs {}, which is neither an RKE2 version (vMAJOR.MINOR.PATCH+rke2rN) nor a K3s one (vMAJOR.MINOR.PATCH+k3sN)",
                    n.name,
                    crate::init::toml_str(&n.version)
                ),
                "rewind imports RKE2 and K3s clusters; for Rancher on RKE1 use `rewind init --from-rke rancher-cluster.yml`",
            ));
        };
        if !seen.iter().any(|(f, _)| *f == flavor) {
            seen.push((flavor, n));
        }
    }
    match seen.as_slice() {
        [(flavor, _)] => Ok(flavor),
        [(a, an), (b, bn), ..] => Err(ImportError::new(
            file,
            format!(
                "the nodes run both {} and {}: node {} runs {}, node {} runs {}",
                a.product, b.product, an.name, an.version, bn.name, bn.version
            ),
            "a plan rolls back one cluster of one distribution: list the nodes of that cluster only (check kubectl's context)",
        )),
        [] => unreachable!("a node list is never empty here"),
    }
}

/// The datastore the servers' arguments show, and why when the reason is
/// not RKE2's (no `--datastore-endpoint`, so embedded etcd). K3s's default
/// for a server started without `--cluster-init`, `--server` or
/// `--datastore-endpoint` is SQLite (kine); a server that initialised or
/// joined an etcd cluster carries the `etcd` role label
/// (k3s-io/k3s:pkg/etcd/metadata_controller.go, docs/upstream-facts.md "K3s"), and
/// several servers without an external datastore can only share etcd.
fn seen_datastore(
    flavor: &Flavor,
    servers: &[&Node],
    external: &[&str],
) -> (Datastore, Option<String>) {
    if !external.is_empty() {
        return (Datastore::External, None);
    }
    if !flavor.is_k3s() {
        return (Datastore::Known(DatastoreKind::Etcd), None);
    }
    let with = |test: &dyn Fn(&Node) -> bool| servers.iter().find(|n| test(n)).map(|n| &n.name);
    let etcd = if let Some(n) = with(&|n| n.read_args().is_some_and(|a| a.cluster_init)) {
        Some(format!("{n} has --cluster-init"))
    } else if let Some(n) = with(&|n| n.read_args().is_some_and(|a| a.server.is_some())) {
        Some(format!("{n} joined another server (--server)"))
    } else if servers.len() > 1 {
        Some(format!("{} servers share it", servers.len()))
    } else if let Some(n) = with(&|n| n.role_labels.contains(&"etcd")) {
        Some(format!("{n} has the etcd role label"))
    } else if servers.is_empty() {
        Some("no node has a server role label (assumed)".to_owned())
    } else {
        None
    };
    match etcd {
        Some(why) => (Datastore::Known(DatastoreKind::Etcd), Some(why)),
        None => (
            Datastore::Known(DatastoreKind::Sqlite),
            Some(format!(
                "{} is the only server, {}",
                servers[0].name,
                if servers[0].read_args().is_none() {
                    "its arguments are unknown and it has no etcd role label"
                } else {
                    "without --cluster-init or --server"
                }
            )),
        ),
    }
}

/// Works out [`Facts`]; refuses versions that are not RKE2's or K3s's, and
/// a list that mixes the two.
fn facts<'a>(
    file: &str,
    nodes: &'a [Node],
    options: Options<'_>,
    notes: &mut Vec<String>,
) -> Result<Facts<'a>, ImportError> {
    let flavor = flavor_of(file, nodes)?;
    let mut by_version: BTreeMap<String, (Rke2Version, Vec<&str>)> = BTreeMap::new();
    for n in nodes {
        let v = flavor.version(&n.version).expect("checked by flavor_of");
        by_version
            .entry(n.version.clone())
            .or_insert_with(|| (v, Vec::new()))
            .1
            .push(&n.name);
    }
    let mut versions: Vec<(Rke2Version, Vec<&str>)> = by_version.into_values().collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));

    let servers: Vec<&Node> = nodes.iter().filter(|n| n.server).collect();
    let agents: Vec<&Node> = nodes.iter().filter(|n| !n.server).collect();
    let without_args: Vec<&str> = nodes
        .iter()
        .filter(|n| n.read_args().is_none())
        .map(|n| n.name.as_str())
        .collect();

    // The datastore: --datastore wins; --datastore-endpoint means external.
    let external: Vec<&str> = servers
        .iter()
        .filter(|n| n.read_args().is_some_and(|a| a.datastore_endpoint))
        .map(|n| n.name.as_str())
        .collect();
    let (seen, why) = seen_datastore(flavor, &servers, &external);
    let (datastore, datastore_why) = match options.datastore {
        Some(ds) => {
            let ds = DatastoreKind::parse(ds)
                .unwrap_or_else(|| panic!("bug in rewind: unknown datastore {ds}"));
            let agrees = match seen {
                Datastore::External => ds != DatastoreKind::Etcd,
                Datastore::Known(k) => ds == k,
            };
            if !agrees {
                notes.push(format!(
                    "--datastore {ds} was given, but {}",
                    match (&why, seen) {
                        (_, Datastore::External) =>
                            format!("{} has --datastore-endpoint", and_list(&external)),
                        (Some(why), Datastore::Known(k)) => format!("the nodes show {k}: {why}"),
                        (None, Datastore::Known(_)) =>
                            "no node has --datastore-endpoint in its arguments".to_owned(),
                    }
                ));
            }
            (Datastore::Known(ds), None)
        }
        None => (seen, why),
    };

    // The data dir: one for the whole plan.
    let mut data_dirs: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        if let Some(a) = n.read_args() {
            let dir = a.data_dir.clone().map_or_else(
                || flavor.default_data_dir.to_owned(),
                |d| {
                    if d.len() > 1 {
                        d.trim_end_matches('/').to_owned()
                    } else {
                        d
                    }
                },
            );
            data_dirs.entry(dir).or_default().push(&n.name);
        }
    }

    // The init server (embedded etcd only).
    let unknown: Vec<&str> = servers
        .iter()
        .filter(|n| n.read_args().is_none())
        .map(|n| n.name.as_str())
        .collect();
    let first: Vec<&str> = servers
        .iter()
        .filter(|n| n.read_args().is_some_and(|a| a.server.is_none()))
        .map(|n| n.name.as_str())
        .collect();
    let etcd = datastore == Datastore::Known(DatastoreKind::Etcd);
    let init: Option<&str> = (etcd && first.len() == 1 && unknown.is_empty()).then(|| first[0]);
    let candidates: Vec<&str> = if first.is_empty() && unknown.is_empty() {
        servers.iter().map(|n| n.name.as_str()).collect()
    } else {
        first.iter().chain(&unknown).copied().collect()
    };

    Ok(Facts {
        flavor,
        nodes,
        servers,
        agents,
        versions,
        without_args,
        external,
        datastore,
        datastore_why,
        data_dirs,
        unknown,
        first,
        etcd,
        init,
        candidates,
    })
}

/// The plan for the node list `text` (read from `path`).
pub fn import(path: &str, text: &str, options: Options<'_>) -> Result<Imported, ImportError> {
    let nodes = read(path, text)?;
    let mut notes = Vec::new();
    let f = facts(path, &nodes, options, &mut notes)?;
    let source = file_name(path);
    let mut p = PlanText::new();
    header(&mut p, &f, source);
    let data_dir = cluster(&mut p, &f, &mut notes);
    datastore(&mut p, &f, options, &mut notes);
    snapshot(&mut p, &f, &data_dir);
    token(&mut p, f.flavor, &data_dir);
    install(&mut p, &f, options.airgap, &mut notes);
    drain(&mut p);
    node_entries(&mut p, &f, &mut notes);
    let (servers, agents) = (f.servers.len(), f.agents.len());
    let plan = p.finish();
    notes.insert(
        0,
        format!(
            "imported {} ({}, {}) from {source}; replace the {}, then run `rewind check`",
            plural(f.nodes.len(), "node", "nodes"),
            plural(servers, "server", "servers"),
            plural(agents, "agent", "agents"),
            plural(markers(&plan), "<FILL: …> marker", "<FILL: …> markers"),
        ),
    );
    Ok(Imported { plan, notes })
}

/// The comment at the top: what was imported, the steps, where values come from.
fn header(p: &mut PlanText, f: &Facts<'_>, source: &str) {
    let Facts {
        nodes,
        servers,
        agents,
        ..
    } = f;
    p.para(&format!(
        "A rewind plan imported by `rewind init --from-nodes` from {source} (`kubectl get nodes -o json`): {}, {} and {}.",
        plural(nodes.len(), "node", "nodes"),
        plural(servers.len(), "server", "servers"),
        plural(agents.len(), "agent", "agents"),
    ))
    .comment(STEPS)
    .para(&format!(
        "Comments starting with \"from kubectl get nodes\" say where a value came from. \
         Secrets are not imported: {} masks the token, the datastore endpoint and the S3 keys \
         in the nodes' annotations, and the plan names the token file.",
        f.flavor.product
    ));
    p.raw("format = 1").blank();
}

/// `[cluster]`; returns the data dir the other sections name.
fn cluster(p: &mut PlanText, f: &Facts<'_>, notes: &mut Vec<String>) -> String {
    let Facts {
        nodes,
        versions,
        without_args,
        data_dirs,
        flavor,
        ..
    } = f;
    let current = versions[0].0.to_string();
    let key = args_key(flavor);
    let default = flavor.default_data_dir;
    // [cluster]
    p.raw("[cluster]")
        .para("A DNS label; the operator types it to confirm every step that destroys data.")
        .fill("name", "cluster name, e.g. prod-east")
        .string(
            "distribution",
            if flavor.is_k3s() {
                Distribution::K3s
            } else {
                Distribution::Rke2
            }
            .as_str(),
        );
    if versions.len() == 1 {
        p.para(&format!(
            "from kubectl get nodes: kubeletVersion of every node ({}).",
            if nodes.len() == 1 {
                "the only one".to_owned()
            } else {
                format!("all {} agree", nodes.len())
            }
        ));
    } else {
        let mut lines = vec![
            "from kubectl get nodes: kubeletVersion. The nodes DISAGREE, so an upgrade".to_owned(),
            "was in progress; current-version is the highest:".to_owned(),
        ];
        for (v, names) in versions {
            lines.push(format!("  {v}: {}", names.join(", ")));
        }
        lines.push(
            "The preflight step accepts a node only at current-version or already at the\n\
             target: finish or undo the upgrade of a node on another version first."
                .to_owned(),
        );
        p.comment(&lines.join("\n"));
        notes.push(format!(
            "the nodes run different versions ({}): an upgrade was in progress; current-version is the highest, {current}",
            versions
                .iter()
                .map(|(v, names)| format!("{v} on {}", plural(names.len(), "node", "nodes")))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    p.string("current-version", &current)
        .para("The version to roll back to (the one before the upgrade); the backup below\nmust be from this minor.")
        .fill(
            "target-version",
            &if versions.len() > 1 {
                format!(
                    "target version; the nodes not upgraded yet run {}",
                    versions[versions.len() - 1].0
                )
            } else {
                format!("target version, e.g. {}", flavor.example_target)
            },
        );
    let data_dir = match data_dirs.len() {
        0 => {
            p.para(&format!(
                "The data dir (`data-dir:` in config.yaml) could not be read: no node has an\n\
                 {key} annotation. Default: {default}."
            ))
            .raw(&format!(
                "# data-dir = \"{default}\"{}# only if {} was configured with another",
                " ".repeat(4 + Flavor::RKE2.binary.len() - flavor.binary.len()),
                flavor.product
            ));
            default.to_owned()
        }
        1 => {
            let (dir, _) = data_dirs.iter().next().expect("one data dir");
            let whose = if without_args.is_empty() {
                "every node".to_owned()
            } else {
                format!("every node but {} (no annotation)", and_list(without_args))
            };
            if dir == default {
                p.para(&format!(
                    "from kubectl get nodes: no --data-dir in the {key} of {whose}\n(the default)."
                ));
            } else {
                p.para(&format!(
                    "from kubectl get nodes: --data-dir in the {key} of {whose}."
                ));
            }
            p.string("data-dir", dir);
            dir.clone()
        }
        _ => {
            let mut lines = vec![
                "from kubectl get nodes: the nodes use DIFFERENT data dirs, and a plan has one:"
                    .to_owned(),
            ];
            for (dir, names) in data_dirs {
                lines.push(format!("  {dir}: {}", names.join(", ")));
            }
            p.comment(&lines.join("\n")).fill(
                "data-dir",
                "the data dir of every node; rewind rolls back nodes that share one",
            );
            notes.push(
                "the nodes use different data dirs; a plan has one (see data-dir)".to_owned(),
            );
            "<data-dir>".to_owned()
        }
    };
    // K3s has one install method, its install script (no `install-method`).
    if !flavor.is_k3s() {
        p.para("how RKE2 was installed: the API does not say.").raw(
            "# install-method = \"rpm\"                # if RKE2 came from RPMs (default \"tar\")",
        );
    }
    p.blank();
    data_dir
}

/// The annotation a product writes its arguments in (`rke2.io/node-args`).
fn args_key(flavor: &Flavor) -> String {
    format!("{}.io/node-args", flavor.binary)
}

/// `[datastore]`: `--datastore`, else what `--datastore-endpoint` shows.
fn datastore(p: &mut PlanText, f: &Facts<'_>, options: Options<'_>, notes: &mut Vec<String>) {
    let (external, datastore) = (&f.external, f.datastore);
    // [datastore]
    p.raw("[datastore]");
    match datastore {
        Datastore::Known(ds @ (DatastoreKind::Etcd | DatastoreKind::Sqlite))
            if options.datastore.is_none() =>
        {
            match &f.datastore_why {
                Some(why) => p.para(&format!(
                    "from kubectl get nodes: no server has --datastore-endpoint, and {why}: {}.",
                    if ds == DatastoreKind::Etcd {
                        "embedded etcd"
                    } else {
                        "SQLite (kine), K3s's default for one server"
                    }
                )),
                None => p.para(
                    "from kubectl get nodes: no server has --datastore-endpoint, so embedded etcd.",
                ),
            }
            .string("kind", ds.as_str());
        }
        Datastore::Known(ds @ (DatastoreKind::Etcd | DatastoreKind::Sqlite)) => {
            p.para("from --datastore.").string("kind", ds.as_str());
        }
        Datastore::Known(ds @ (DatastoreKind::Postgres | DatastoreKind::Mysql)) => {
            p.para("from --datastore.");
            external_fields(p, Some(ds));
        }
        Datastore::External => {
            p.para(&format!(
                "from kubectl get nodes: {} {} --datastore-endpoint (the value is masked), so\n\
                 an external datastore; its kind is the scheme of that endpoint in config.yaml\n\
                 (for sqlite, keep only `kind`).",
                and_list(external),
                if external.len() == 1 { "has" } else { "have" }
            ))
            .fill("kind", "postgres or mysql (or sqlite, single server)");
            external_fields(p, None);
            notes.push(format!(
                "{} {} --datastore-endpoint: an external datastore whose kind and address are masked; fill in [datastore]",
                and_list(external),
                if external.len() == 1 { "has" } else { "have" }
            ));
        }
    }
    p.blank();
}

/// `[snapshot]`, with the S3 settings of the servers as a commented `[snapshot.s3]`.
fn snapshot(p: &mut PlanText, f: &Facts<'_>, data_dir: &str) {
    let Facts {
        servers, flavor, ..
    } = f;
    let (datastore, init) = (f.datastore, f.init);
    let (binary, example) = (flavor.binary, flavor.example_target);
    // [snapshot]
    p.raw("[snapshot]");
    match datastore {
        Datastore::Known(DatastoreKind::Etcd) => {
            let on = init.map_or_else(|| "the init server".to_owned(), str::to_owned);
            let example_host = init.unwrap_or("server-1");
            p.para(&format!(
                "The etcd snapshot taken BEFORE the upgrade, on {on}\n(`{binary} etcd-snapshot list`)."
            ))
            .fill(
                "path",
                &format!(
                    "snapshot file, e.g. {data_dir}/server/db/snapshots/pre-upgrade-{example_host}-1716239400"
                ),
            );
        }
        Datastore::Known(DatastoreKind::Sqlite) => {
            p.para(&format!(
                "A copy of {data_dir}/server/db/state.db made BEFORE the upgrade, on the server."
            ))
            .fill(
                "path",
                &format!("copy of state.db, e.g. /root/{binary}-backup/state.db"),
            );
        }
        Datastore::Known(DatastoreKind::Postgres | DatastoreKind::Mysql) | Datastore::External => {
            p.para("A `pg_dump -Fc` archive or a mysqldump file made BEFORE the upgrade, where the\nrestore runs.")
                .fill("path", &format!("the dump, e.g. /srv/backups/{binary}-pre-upgrade.dump"));
        }
    }
    p.para("The version the cluster ran when the backup was made.")
        .fill(
            "taken-on",
            &format!("version at backup time, e.g. {example}"),
        )
        .para(
            "Recommended: `sha256sum` of the backup; every script that touches it checks it first.",
        )
        .raw("# sha256 = \"<64 hex digits>\"");
    if datastore == Datastore::Known(DatastoreKind::Etcd) {
        s3_hint(p, servers);
    }
    p.blank();
}

/// `[token]`: the saved token file is always to fill in.
fn token(p: &mut PlanText, flavor: &Flavor, data_dir: &str) {
    // [token]
    p.para(&format!(
        "The server token saved with the backup (a copy of {data_dir}/server/token).\n\
         Restoring with another token fails with \"bootstrap data already found and\n\
         encrypted with different token\": keep this section."
    ))
    .raw("[token]")
    .fill(
        "file",
        &format!(
            "saved token file, e.g. /root/{}-backup/token",
            flavor.binary
        ),
    )
    .raw("# sha256 = \"<64 hex digits>\"          # scripts compare it without printing the token")
    .blank();
}

/// `[install]`: `--airgap`, and the architecture of the nodes.
fn install(p: &mut PlanText, f: &Facts<'_>, airgap: bool, notes: &mut Vec<String>) {
    let (nodes, binary) = (f.nodes, f.flavor.binary);
    // [install]
    p.raw("[install]");
    if airgap {
        p.string("source", "airgap")
            .para(if f.flavor.is_k3s() {
                "Copied to every node, same path: install.sh, k3s (k3s-arm64, k3s-s390x),\nk3s-airgap-images-<arch>.tar.zst and sha256sum-<arch>.txt of the TARGET version."
            } else {
                "Copied to every node, same path: install.sh, rke2.linux-<arch>.tar.gz,\nrke2-images*.tar.zst and sha256sum-<arch>.txt of the TARGET version."
            })
            .fill("artifacts", &format!("artifacts folder, e.g. /root/{binary}-artifacts"));
    } else {
        p.para("The nodes fetch the install script and the target version from the Internet.")
            .string("source", "online");
    }
    let mut arches: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        arches
            .entry(n.arch.as_deref().unwrap_or("unknown"))
            .or_default()
            .push(&n.name);
    }
    let only = match arches.keys().copied().collect::<Vec<_>>().as_slice() {
        [one] => Arch::parse(one),
        _ => None,
    };
    if let Some(arch) = only {
        p.para("from kubectl get nodes: status.nodeInfo.architecture of every node.")
            .string("arch", arch.as_str());
    } else {
        let mut lines = vec![
            "from kubectl get nodes: status.nodeInfo.architecture; a plan has one of amd64,\narm64 or s390x:".to_owned(),
        ];
        for (arch, names) in &arches {
            lines.push(format!("  {arch}: {}", names.join(", ")));
        }
        p.comment(&lines.join("\n"))
            .fill("arch", "amd64, arm64 or s390x");
        notes
            .push("the nodes' architectures are mixed or unknown; fill in install.arch".to_owned());
    }
    p.blank();
}

/// `[drain]`: the kubeconfig is always to fill in.
fn drain(p: &mut PlanText) {
    // [drain]
    p.para("Before anything stops, the workstation drains the nodes (skipped with a\nmessage if the API does not answer).")
        .raw("[drain]")
        .fill("kubeconfig", "kubeconfig on the workstation, e.g. /root/.kube/config")
        .string("timeout", "10m")
        .raw("# enabled = false                       # to skip draining")
        .blank();
}

/// `[[nodes]]`, servers first, each with what kubectl says about it, and the
/// init server (or the choice the operator must make).
fn node_entries(p: &mut PlanText, f: &Facts<'_>, notes: &mut Vec<String>) {
    let Facts {
        nodes,
        servers,
        agents,
        candidates,
        without_args,
        ..
    } = f;
    let (etcd, init) = (f.etcd, f.init);
    let key = args_key(f.flavor);
    // Which node each join URL points at, by address or host name.
    let owner = |url: &str| -> Option<&str> {
        let host = host_only(url_host(url));
        nodes
            .iter()
            .find(|n| {
                n.internal_ips.iter().any(|ip| ip == host)
                    || n.hostname.as_deref() == Some(host)
                    || n.name == host
            })
            .map(|n| n.name.as_str())
    };

    // [[nodes]]
    p.para(
        "One [[nodes]] entry per node of `kubectl get nodes`, servers first, each\n\
         with what kubectl says about it. `name` is the node's name (metadata.name); each node's\n\
         scripts refuse to run on a host of another name (`uname -n`) unless\n\
         REWIND_HOST=<name> says which node the host is.",
    );
    if etcd && init.is_none() {
        init_choice(p, f, &key, notes);
    }
    let mut renamed = Vec::new();
    for n in servers.iter().chain(agents.iter()) {
        p.blank();
        let mut about = Vec::new();
        let mut addresses = Vec::new();
        if !n.internal_ips.is_empty() {
            addresses.push(format!("InternalIP {}", n.internal_ips.join(", ")));
        }
        if let Some(h) = &n.hostname {
            addresses.push(format!("Hostname {h}"));
        }
        about.push(if addresses.is_empty() {
            format!("{}: no addresses", n.name)
        } else {
            format!("{}: {}", n.name, addresses.join(", "))
        });
        let mut host = vec![format!(
            "{} on {}",
            n.version,
            n.os_image.as_deref().unwrap_or("an unknown OS")
        )];
        host.extend(n.arch.clone());
        host.extend(n.runtime.clone());
        about.push(host.join(", "));
        about.push(if n.server {
            format!("server: labels {}", n.role_labels.join(", "))
        } else {
            "agent: no control-plane, etcd or master role label".to_owned()
        });
        match &n.args {
            NodeArgs::Missing => {
                about.push(format!("no {key} annotation: its arguments are unknown"));
            }
            NodeArgs::Unreadable(key) => about.push(format!(
                "its {key} annotation is not a JSON list of strings: arguments unknown"
            )),
            NodeArgs::Read(a) => {
                if let Some(cmd) = &a.command
                    && (cmd == "server") != n.server
                {
                    about.push(format!(
                        "NOTE: its {} says `{cmd}`, but its labels say {}",
                        a.key,
                        n.role()
                    ));
                }
                match &a.server {
                    Some(url) => {
                        let hp = url_host(url);
                        let via = owner(url).map_or_else(String::new, |o| format!(" ({o})"));
                        about.push(match &a.server_env {
                            Some(var) => {
                                format!("{}: {var} {hp}{via}", a.key.replace("-args", "-env"))
                            }
                            None => format!("{}: --server {hp}{via}", a.key),
                        });
                    }
                    None if n.server => about.push(format!(
                        "{}: no --server{}",
                        a.key,
                        match (&a.cluster_init_env, a.cluster_init) {
                            (Some(var), _) => format!(", {var} in its node-env"),
                            (None, true) => ", --cluster-init".to_owned(),
                            (None, false) => String::new(),
                        }
                    )),
                    None => {}
                }
            }
        }
        let hostname = n.hostname.as_deref().map(str::to_ascii_lowercase);
        let node_name = n.read_args().and_then(|a| a.node_name.clone());
        if let Some(h) = &hostname
            && h != &n.name
            && h.split('.').next() != Some(n.name.as_str())
        {
            about.push(format!(
                "its host is named {h}{}: run its scripts there\nwith REWIND_HOST={}",
                node_name
                    .as_deref()
                    .map_or_else(String::new, |nn| format!(" (--node-name {nn})")),
                n.name
            ));
            renamed.push(format!("{} (host {h})", n.name));
        }
        p.comment(&about.join("\n"));
        p.raw("[[nodes]]")
            .string("name", &n.name)
            .string("role", n.role().as_str());
        if etcd && n.server {
            if init == Some(n.name.as_str()) {
                p.para("from kubectl get nodes: the only server without --server: cluster-reset\nruns here and the snapshot above must be on it.")
                    .raw("init = true");
            } else if init.is_none() && candidates.contains(&n.name.as_str()) {
                p.raw("# init = true");
            }
        }
    }
    if !renamed.is_empty() {
        notes.push(format!(
            "node names that differ from their host's name: {}; their scripts need REWIND_HOST=<node name>",
            renamed.join(", ")
        ));
    }
    if !without_args.is_empty() {
        notes.push(format!(
            "{} {} no {key} annotation: data dir and init server read from the others only",
            and_list(without_args),
            if without_args.len() == 1 {
                "has"
            } else {
                "have"
            }
        ));
    }
}

/// The comment that asks for the init server when the node list cannot
/// tell it (embedded etcd), and the note that says so.
fn init_choice(p: &mut PlanText, f: &Facts<'_>, key: &str, notes: &mut Vec<String>) {
    let Facts {
        servers,
        unknown,
        first,
        candidates,
        ..
    } = f;
    let (why, short) = if servers.is_empty() {
        (
            "no node has a server role label".to_owned(),
            "no server".to_owned(),
        )
    } else if first.len() > 1 {
        let w = format!(
            "{} servers have no --server in their arguments ({})",
            first.len(),
            and_list(first)
        );
        (w.clone(), w)
    } else if first.is_empty() && unknown.is_empty() {
        (
            "every server has --server in its arguments (the first one was reconfigured to join another, or all join through a fixed registration address)".to_owned(),
            "every server has --server in its arguments".to_owned(),
        )
    } else {
        let w = format!(
            "{} {} no {key} annotation",
            and_list(unknown),
            if unknown.len() == 1 { "has" } else { "have" }
        );
        (w.clone(), w)
    };
    if candidates.is_empty() {
        p.blank().para(&format!(
            "{FILL}the init server> {why}: list the servers (role = \"server\") and set `init = true` on the one whose config.yaml has no `server:` entry."
        ));
        notes.push(format!(
            "{short}: mark the servers and the init server by hand"
        ));
    } else {
        p.blank().para(&format!(
            "{FILL}the init server> kubectl get nodes cannot tell which server is the init server: {why}. \
             Exactly one server gets `init = true`: the one whose config.yaml has no `server:` entry, \
             where the snapshot is. Candidates: {}. Uncomment the line `# init = true` of that server.",
            and_list(candidates)
        ));
        notes.push(format!(
            "the init server is not known ({short}); choose it among {} and set `init = true` on it",
            and_list(candidates)
        ));
    }
}

/// `host`, `port`, `database`, `user`, `restore-on` of an external database.
fn external_fields(p: &mut PlanText, kind: Option<DatastoreKind>) {
    if let Some(kind) = kind {
        p.string("kind", kind.as_str());
    }
    p.fill("host", "database host");
    match kind {
        Some(DatastoreKind::Postgres) => p.raw("port = 5432"),
        Some(DatastoreKind::Mysql) => p.raw("port = 3306"),
        // The kind is not known yet (or has no port): both defaults, commented.
        Some(DatastoreKind::Etcd | DatastoreKind::Sqlite) | None => p.raw("# port = 5432                           # 3306 for mysql; the client's default when absent"),
    };
    p.fill("database", "database name")
        .fill("user", "database user")
        .para("The password is never in the plan: the restore step reads PGPASSWORD or\n~/.pgpass (postgres), MYSQL_PWD or an option file (mysql).")
        .para("Where the restore runs: \"workstation\" (with the database client) or a node name.")
        .string("restore-on", "workstation");
}

/// A commented `[snapshot.s3]` from the servers' `--etcd-s3-*` arguments.
fn s3_hint(p: &mut PlanText, servers: &[&Node]) {
    let Some((name, a)) = servers.iter().find_map(|n| {
        n.read_args()
            .filter(|a| a.etcd_s3 && a.s3.contains_key("bucket"))
            .map(|a| (n.name.as_str(), a))
    }) else {
        return;
    };
    p.para(&format!(
        "from kubectl get nodes: the servers also save snapshots to S3 (--etcd-s3-*\n\
         in the {} of {name}). For a snapshot there, drop `path`\n\
         and uncomment [snapshot.s3]; the keys are read at run time from\n\
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, never from the plan.",
        a.key
    ))
    .raw("# [snapshot.s3]")
    .raw("# name = \"<the snapshot's file name>\"");
    for key in ["bucket", "folder", "endpoint", "region"] {
        if let Some(v) = a.s3.get(key) {
            p.raw(&format!("# {key} = {}", crate::init::toml_str(v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        parse_args("rke2.io/node-args", &serde_json::to_string(list).unwrap()).unwrap()
    }

    #[test]
    fn reads_only_the_arguments_it_needs_and_never_a_masked_one() {
        let a = args(&[
            "server",
            "--token",
            MASKED,
            "--data-dir=/data/rke2/",
            "-s",
            "https://10.0.0.1:9345",
            "--datastore-endpoint",
            MASKED,
            "--etcd-s3",
            "--etcd-s3-bucket",
            "b",
            "--etcd-s3-folder",
            MASKED,
        ]);
        assert_eq!(a.command.as_deref(), Some("server"));
        assert_eq!(a.data_dir.as_deref(), Some("/data/rke2/"));
        assert_eq!(a.server.as_deref(), Some("https://10.0.0.1:9345"));
        assert!(a.datastore_endpoint && a.etcd_s3 && !a.cluster_init);
        assert_eq!(a.s3.get("bucket").map(String::as_str), Some("b"));
        assert!(!a.s3.contains_key("folder"));
        let a = args(&["server", "--cluster-init", "true", "--server", MASKED]);
        assert!(a.cluster_init);
        assert_eq!(a.server, None);
        assert!(parse_args("k", "[1, 2]").is_none());
        assert!(parse_args("k", "not json").is_none());
    }

    #[test]
    fn join_urls() {
        assert_eq!(url_host("https://u:p@10.0.0.1:9345/x"), "10.0.0.1:9345");
        assert_eq!(host_only("10.0.0.1:9345"), "10.0.0.1");
        assert_eq!(host_only("[fd00::1]:9345"), "fd00::1");
        assert_eq!(host_only("lb.example"), "lb.example");
    }

    /// A node list with `(name, server?, version, node-args)` nodes.
    fn list(nodes: &[(&str, bool, &str, Option<&[&str]>)]) -> String {
        let items: Vec<Value> = nodes
            .iter()
            .map(|(name, server, version, args)| {
                let mut labels = serde_json::Map::new();
                if *server {
                    labels.insert(
                        "node-role.kubernetes.io/control-plane".into(),
                        "true".into(),
                    );
                }
                let mut annotations = serde_json::Map::new();
                if let Some(a) = args {
                    annotations.insert(
                        "rke2.io/node-args".into(),
                        serde_json::to_string(a).unwrap().into(),
                    );
                }
                serde_json::json!({
                    "kind": "Node",
                    "metadata": {"name": name, "labels": labels, "annotations": annotations},
                    "status": {"nodeInfo": {"kubeletVersion": version}},
                })
            })
            .collect();
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
    }

    fn plan_of(nodes: &[(&str, bool, &str, Option<&[&str]>)]) -> Imported {
        import("n.json", &list(nodes), Options::default()).expect("imports")
    }

    const V: &str = "v1.29.4+rke2r1";

    #[test]
    fn one_server_without_server_is_the_init_server() {
        let p = plan_of(&[("s1", true, V, Some(&["server"]))]);
        assert!(p.plan.contains("\ninit = true\n"), "{}", p.plan);
        assert!(
            p.plan.contains("data-dir = \"/var/lib/rancher/rke2\""),
            "{}",
            p.plan
        );
        assert!(!p.plan.contains("# <FILL"), "{}", p.plan);
    }

    #[test]
    fn a_server_without_arguments_leaves_the_choice_open() {
        let p = plan_of(&[
            ("s1", true, V, Some(&["server"])),
            ("s2", true, V, None),
            (
                "s3",
                true,
                V,
                Some(&["server", "--server", "https://s1:9345"]),
            ),
        ]);
        assert!(!p.plan.contains("\ninit = true\n"), "{}", p.plan);
        assert!(p.plan.contains("Candidates: s1 and s2."), "{}", p.plan);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("s2 has no rke2.io/node-args")),
            "{:?}",
            p.notes
        );
        // s2's data dir is unknown: the others' is written, and said so.
        assert!(
            p.plan
                .replace("\n# ", " ")
                .contains("every node but s2 (no annotation)"),
            "{}",
            p.plan
        );
    }

    #[test]
    fn two_first_servers_and_no_server_at_all() {
        let p = plan_of(&[
            ("s1", true, V, Some(&["server"])),
            ("s2", true, V, Some(&["server", "--cluster-init"])),
        ]);
        assert!(p.plan.contains("2 servers have no --server"), "{}", p.plan);
        let p = plan_of(&[("a1", false, V, Some(&["agent"]))]);
        assert!(
            p.plan.contains("no node has a server role label"),
            "{}",
            p.plan
        );
        assert!(!p.plan.contains("Candidates"), "{}", p.plan);
    }

    #[test]
    fn hostile_names_stay_one_toml_string() {
        let p = plan_of(&[("s1\" init = false \\", true, V, Some(&["server"]))]);
        let table: toml::Table = toml::from_str(&p.plan).expect("TOML");
        let nodes = table["nodes"].as_array().unwrap();
        assert_eq!(nodes[0]["name"].as_str(), Some("s1\" init = false \\"));
        assert_eq!(nodes[0]["init"].as_bool(), Some(true));
        for bad in [MASKED, "a\nb"] {
            let text = list(&[(bad, true, V, None)]);
            assert!(
                import("n.json", &text, Options::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_k3s_style_annotation_is_read_too() {
        let text = list(&[("s1", true, V, None)]).replace(
            r#""annotations":{}"#,
            r#""annotations":{"k3s.io/node-args":"[\"server\",\"--data-dir\",\"/srv/rke2\"]"}"#,
        );
        let p = import("n.json", &text, Options::default()).expect("imports");
        assert!(p.plan.contains("data-dir = \"/srv/rke2\""), "{}", p.plan);
        assert!(
            p.plan.contains("# k3s.io/node-args: no --server"),
            "{}",
            p.plan
        );
        assert!(p.plan.contains("\ninit = true\n"), "{}", p.plan);
    }

    const K: &str = "v1.29.4+k3s1";

    /// [`list`] as K3s writes it: `k3s.io/` annotations, and `env` (a JSON
    /// object) as every node's `k3s.io/node-env`.
    fn k3s_plan(nodes: &[(&str, bool, &str, Option<&[&str]>)], env: &str) -> Imported {
        let mut doc: Value =
            serde_json::from_str(&list(nodes).replace("rke2.io/", "k3s.io/")).unwrap();
        for item in doc["items"].as_array_mut().unwrap() {
            item["metadata"]["annotations"]["k3s.io/node-env"] = env.into();
        }
        let text = doc.to_string();
        import("n.json", &text, Options::default()).expect("imports")
    }

    fn kind(p: &Imported) -> String {
        let table: toml::Table = toml::from_str(&p.plan).expect("TOML");
        table["datastore"]["kind"].as_str().unwrap().to_owned()
    }

    #[test]
    fn k3s_datastores() {
        let one = |args: Option<&'static [&'static str]>, env: &str| {
            kind(&k3s_plan(
                &[("s1", true, K, args), ("a1", false, K, Some(&["agent"]))],
                env,
            ))
        };
        assert_eq!(one(Some(&["server"]), "{}"), "sqlite");
        assert_eq!(one(None, "{}"), "sqlite");
        assert_eq!(one(Some(&["server", "--cluster-init"]), "{}"), "etcd");
        assert_eq!(
            one(Some(&["server"]), r#"{"K3S_CLUSTER_INIT":"true"}"#),
            "etcd"
        );
        assert_eq!(
            one(Some(&["server"]), r#"{"K3S_CLUSTER_INIT":"false"}"#),
            "sqlite"
        );
        assert!(
            one(
                Some(&["server"]),
                r#"{"K3S_DATASTORE_ENDPOINT":"********"}"#
            )
            .starts_with(FILL)
        );
        assert!(one(Some(&["server", "--datastore-endpoint", MASKED]), "{}").starts_with(FILL));
        // Two servers share etcd, whatever their arguments say.
        let two = k3s_plan(&[("s1", true, K, None), ("s2", true, K, None)], "{}");
        assert_eq!(kind(&two), "etcd");
        assert!(
            two.plan.contains("no k3s.io/node-args annotation"),
            "{}",
            two.plan
        );
        // The etcd role label alone says etcd.
        let text = list(&[("s1", true, K, Some(&["server"]))])
            .replace("control-plane", "etcd")
            .replace("rke2.io/", "k3s.io/");
        let p = import("n.json", &text, Options::default()).unwrap();
        assert_eq!(kind(&p), "etcd");
        assert!(
            p.plan
                .replace("\n# ", " ")
                .contains("s1 has the etcd role label"),
            "{}",
            p.plan
        );
    }

    #[test]
    fn k3s_node_env_fills_what_the_arguments_lack() {
        let p = k3s_plan(
            &[
                ("s1", true, K, Some(&["server", "--cluster-init"])),
                ("s2", true, K, Some(&["server", "--data-dir", "/srv/k3s"])),
            ],
            r#"{"K3S_TOKEN":"********","K3S_URL":"https://s1:6443","K3S_DATA_DIR":"/srv/k3s"}"#,
        );
        // Every node has the variables here: K3S_URL stands for --server.
        assert!(
            p.plan.contains("# k3s.io/node-env: K3S_URL s1:6443 (s1)"),
            "{}",
            p.plan
        );
        assert!(p.plan.contains("data-dir = \"/srv/k3s\""), "{}", p.plan);
        assert!(!p.plan.contains(MASKED));
        // K3S_CLUSTER_INIT: the init server, said to come from node-env.
        let p = k3s_plan(
            &[("s1", true, K, Some(&["server"]))],
            r#"{"K3S_CLUSTER_INIT":"1"}"#,
        );
        assert_eq!(kind(&p), "etcd");
        assert!(
            p.plan
                .contains("# k3s.io/node-args: no --server, K3S_CLUSTER_INIT in its node-env"),
            "{}",
            p.plan
        );
        assert!(p.plan.contains("\ninit = true\n"), "{}", p.plan);
    }

    #[test]
    fn addresses_from_the_annotations_when_status_has_none() {
        let text = list(&[("s1", true, K, Some(&["server"]))]).replace(
            r#""annotations":{"#,
            r#""annotations":{"k3s.io/internal-ip":"10.0.0.1,fd00::1","k3s.io/hostname":"host-1","#,
        );
        let p = import("n.json", &text, Options::default()).unwrap();
        assert!(
            p.plan
                .contains("# s1: InternalIP 10.0.0.1, fd00::1, Hostname host-1\n"),
            "{}",
            p.plan
        );
    }

    #[test]
    fn lists() {
        assert_eq!(and_list(&["a"]), "a");
        assert_eq!(and_list(&["a", "b", "c"]), "a, b and c");
    }
}
