//! `rewind plan --from-facts`: the rollback plan written from the facts files
//! of a capture (`rewind prepare`, docs/prepare.md), with a comment on every
//! value saying where it came from.
//!
//! The facts of one capture agree on the cluster, the capture's name and
//! the prepare plan's sha256; facts of another cluster or capture are
//! refused, and so is a capture where a host's facts are missing (named),
//! where the nodes ran different versions, or where the servers saved
//! different tokens. What no host can tell (the install source, the drain,
//! the database's address) is the prepare plan's, which every facts file
//! carries (`plan`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value as Json;

/// One host's facts file, as read.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// Where it was read from (for messages).
    pub source: String,
    /// Its JSON.
    pub json: Json,
}

impl HostFacts {
    fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Json::as_str)
    }

    fn host(&self) -> &str {
        self.str("host").unwrap_or("?")
    }

    fn backup(&self, key: &str) -> Option<&Json> {
        self.json.get("backup").and_then(|b| b.get(key))
    }

    fn token(&self, key: &str) -> Option<&str> {
        self.json
            .get("token")
            .and_then(|b| b.get(key))
            .and_then(Json::as_str)
    }
}

/// Options of the command.
#[derive(Debug, Default, Clone)]
pub struct Options<'a> {
    /// `--to`: the target version (default: the version the nodes ran).
    pub to: Option<&'a str>,
    /// `--current`: the version the nodes run after the upgrade (default:
    /// the prepare plan's `current-version`).
    pub current: Option<&'a str>,
}

/// Reads every `*.json` of the given folders (or the given files), sorted
/// by path. An unreadable or non-JSON file is an error.
pub fn read(paths: &[camino::Utf8PathBuf]) -> Result<Vec<HostFacts>, Vec<String>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            match p.read_dir_utf8() {
                Ok(entries) => {
                    let mut found: Vec<_> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.path().to_owned())
                        .filter(|f| f.extension() == Some("json") && f.is_file())
                        .collect();
                    found.sort();
                    if found.is_empty() {
                        errors.push(format!("{p} holds no facts file (*.json)"));
                    }
                    files.extend(found);
                }
                Err(e) => errors.push(format!("cannot read {p}: {e}")),
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut out = Vec::new();
    for f in files {
        match crate::bundle::read_capped(&f, 1 << 20) {
            Ok(bytes) => match serde_json::from_slice::<Json>(&bytes) {
                Ok(json) if json.get("rewind-facts").is_some() => out.push(HostFacts {
                    source: f.to_string(),
                    json,
                }),
                Ok(_) => errors.push(format!(
                    "{f} is not a rewind facts file (no \"rewind-facts\")"
                )),
                Err(e) => errors.push(format!("{f} is not JSON: {e}")),
            },
            Err(e) => errors.push(format!("cannot read {f}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `key = value` of a TOML value (a string quoted and escaped).
fn tv(v: &toml::Value) -> String {
    v.to_string()
}

fn ts(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Converts JSON (from the facts' `plan`) back to TOML.
fn to_toml(v: &Json) -> Option<toml::Value> {
    serde_json::from_value::<toml::Value>(v.clone()).ok()
}

/// The rollback plan (TOML text) from the facts of one capture.
#[allow(clippy::too_many_lines)]
pub fn plan(facts: &[HostFacts], opts: &Options<'_>) -> Result<String, Vec<String>> {
    let mut errors = Vec::new();
    let Some(first) = facts.first() else {
        return Err(vec!["no facts file was given".into()]);
    };
    for f in facts {
        if f.json.get("rewind-facts").and_then(Json::as_u64)
            != Some(u64::from(crate::prepare::FACTS_FORMAT))
        {
            errors.push(format!(
                "{}: facts format {} is not one this rewind reads ({})",
                f.source,
                f.json.get("rewind-facts").unwrap_or(&Json::Null),
                crate::prepare::FACTS_FORMAT
            ));
        }
    }
    for key in ["cluster", "capture", "plan-sha256"] {
        let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for f in facts {
            seen.entry(f.str(key).unwrap_or("(none)"))
                .or_default()
                .push(&f.source);
        }
        if seen.len() > 1 {
            let what = match key {
                "cluster" => "different clusters",
                "capture" => "different captures",
                _ => "captures prepared from different plans",
            };
            let list: Vec<String> = seen
                .iter()
                .map(|(v, files)| format!("{key} {v}: {}", files.join(", ")))
                .collect();
            errors.push(format!(
                "the facts are of {what}; give the facts of one capture only ({})",
                list.join("; ")
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut by_host: BTreeMap<&str, &HostFacts> = BTreeMap::new();
    for f in facts {
        if let Some(other) = by_host.insert(f.host(), f) {
            errors.push(format!(
                "two facts files for host {}: {} and {}",
                f.host(),
                other.source,
                f.source
            ));
        }
    }
    let plan = first.json.get("plan").cloned().unwrap_or(Json::Null);
    let Some(toml::Value::Table(mut table)) = to_toml(&plan) else {
        return Err(vec![format!(
            "{}: no prepare plan (\"plan\") in the facts",
            first.source
        )]);
    };
    // [snapshot.s3] of the prepare plan (without its name): the capture
    // uploaded the snapshot there.
    let s3 = match table.remove("snapshot") {
        Some(toml::Value::Table(mut s)) => match s.remove("s3") {
            Some(toml::Value::Table(s3)) => Some(s3),
            _ => None,
        },
        _ => None,
    };
    let distribution = first.str("distribution").unwrap_or("rke2");
    // RKE2 and K3s captures are read alike; only the binary's name, in the
    // comments, differs.
    let binary = crate::model::Flavor::named(distribution)
        .map_or(crate::model::Flavor::RKE2.binary, |f| f.binary);
    let nodes: Vec<toml::Table> = match table.remove("nodes") {
        Some(toml::Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| match v {
                toml::Value::Table(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let node_key = |t: &toml::Table| -> String {
        if distribution == "rke1" {
            t.get("hostname")
                .or_else(|| t.get("address"))
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        } else {
            t.get("name")
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        }
    };
    let datastore = first.str("datastore").unwrap_or("etcd");
    let mut expected: Vec<String> = Vec::new();
    if distribution == "rke1" {
        expected.push("workstation".into());
        for n in &nodes {
            let etcd = n
                .get("roles")
                .and_then(toml::Value::as_array)
                .is_some_and(|r| r.iter().any(|x| x.as_str() == Some("etcd")));
            if etcd {
                expected.push(node_key(n));
            }
        }
    } else {
        let restore_on = table
            .get("datastore")
            .and_then(|d| d.get("restore-on"))
            .and_then(toml::Value::as_str);
        if matches!(datastore, "postgres" | "mysql")
            && restore_on.is_none_or(|r| r == "workstation")
        {
            expected.push("workstation".into());
        }
        expected.extend(nodes.iter().map(node_key));
    }
    let missing: Vec<&str> = expected
        .iter()
        .map(String::as_str)
        .filter(|h| !by_host.contains_key(h))
        .collect();
    if !missing.is_empty() {
        errors.push(format!(
            "no facts from {}: run the capture bundle's script there and add its facts/<host>.json (capture {})",
            missing.join(", "),
            first.str("capture").unwrap_or("?")
        ));
    }
    for h in by_host.keys() {
        if !expected.iter().any(|e| e == h) {
            errors.push(format!(
                "facts from {h}, which the capture's plan does not list (facts of another plan?)"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // The version every node ran.
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in facts
        .iter()
        .filter(|f| f.str("role") != Some("workstation"))
    {
        let v = f
            .str("version")
            .or_else(|| f.str("expected-version"))
            .unwrap_or("?");
        versions.entry(v).or_default().push(f.host());
    }
    if versions.len() > 1 {
        let list: Vec<String> = versions
            .iter()
            .map(|(v, h)| format!("{v} on {}", h.join(", ")))
            .collect();
        errors.push(format!(
            "the nodes ran different versions when the capture was taken ({}): finish or undo the upgrade in progress, then prepare and capture again",
            list.join("; ")
        ));
    }
    let captured = versions
        .keys()
        .next()
        .copied()
        .unwrap_or_default()
        .to_owned();
    let backups: Vec<&HostFacts> = facts
        .iter()
        .filter(|f| f.json.get("backup").is_some())
        .collect();
    let backup = match (distribution, backups.as_slice()) {
        ("rke1", [one, ..]) => {
            // rke restores from the first etcd node of the cluster file:
            // the plan's first etcd node here.
            let first_etcd = expected.get(1).map(String::as_str);
            Some(
                backups
                    .iter()
                    .find(|b| Some(b.host()) == first_etcd)
                    .copied()
                    .unwrap_or(*one),
            )
        }
        (_, [one]) => Some(*one),
        (_, []) => {
            errors.push("no host recorded a backup: did the capture's datastore step run?".into());
            None
        }
        (_, many) => {
            let hosts: Vec<&str> = many.iter().map(|f| f.host()).collect();
            errors.push(format!(
                "more than one host recorded a backup ({}): facts of several captures?",
                hosts.join(", ")
            ));
            None
        }
    };
    let mut tokens: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in facts {
        if let Some(sha) = f.token("sha256") {
            tokens.entry(sha).or_default().push(f.host());
        }
    }
    if tokens.len() > 1 {
        let list: Vec<String> = tokens.values().map(|h| h.join(", ")).collect();
        errors.push(format!(
            "the servers saved different server tokens (groups: {}): a restored datastore opens with one token only; find out which is the cluster's before going on",
            list.join(" | ")
        ));
    }
    // The init server: the one without `server:` (etcd).
    let mut init: Option<String> = None;
    if distribution != "rke1" {
        let servers: Vec<&HostFacts> = facts
            .iter()
            .filter(|f| f.str("role") == Some("server"))
            .collect();
        let no_entry: Vec<&str> = servers
            .iter()
            .filter(|f| f.json.get("server-entry") == Some(&Json::Bool(false)))
            .map(|f| f.host())
            .collect();
        match datastore {
            "etcd" => match no_entry.as_slice() {
                [one] => init = Some((*one).to_owned()),
                [] => errors.push("every server has a server: entry: none can be the init server that restores the snapshot; remove it from the server that took the snapshot, then capture again".into()),
                many => errors.push(format!(
                    "{} servers have no server: entry ({}): only one may be the init server; add server: to the others, then capture again",
                    many.len(),
                    many.join(", ")
                )),
            },
            "sqlite" => init = servers.first().map(|f| f.host().to_owned()),
            _ => {}
        }
        if let (true, Some(i), Some(b)) = (datastore == "etcd", &init, backup)
            && b.host() != i
        {
            errors.push(format!(
                "the snapshot was taken on {} but {i} is the server without a server: entry: the restore runs there",
                b.host()
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let backup = backup.expect("checked above");
    let token_host = facts
        .iter()
        .find(|f| Some(f.host()) == init.as_deref() && f.token("file").is_some())
        .or_else(|| facts.iter().find(|f| f.token("file").is_some()));

    // ---- the text ------------------------------------------------------------
    let hosts: Vec<&str> = by_host.keys().copied().collect();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Rollback plan written by `rewind plan --from-facts` from capture {} of cluster {}",
        first.str("capture").unwrap_or("?"),
        first.str("cluster").unwrap_or("?")
    );
    let _ = writeln!(
        t,
        "# (prepared from plan sha256 {}), with the facts of: {}.",
        first.str("plan-sha256").unwrap_or("?"),
        hosts.join(", ")
    );
    let _ = writeln!(
        t,
        "# Each value says where it came from: \"facts HOST\" is what that host recorded when the"
    );
    let _ = writeln!(
        t,
        "# capture ran; \"prepare plan\" is the plan the capture bundle was prepared from."
    );
    t.push_str("format = 1\n");
    table.remove("format");
    // Top-level values of the prepare plan go before the first table.
    let scalars: Vec<String> = table
        .iter()
        .filter(|(_, v)| !v.is_table())
        .map(|(k, _)| k.clone())
        .collect();
    for k in scalars {
        if let Some(v) = table.remove(&k) {
            let _ = writeln!(t, "{k} = {}  # prepare plan", tv(&v));
        }
    }
    t.push_str("\n[cluster]\n");
    let mut cluster = match table.remove("cluster") {
        Some(toml::Value::Table(c)) => c,
        _ => toml::Table::new(),
    };
    let _ = writeln!(
        t,
        "name = {}  # facts: every host",
        ts(first.str("cluster").unwrap_or("?"))
    );
    cluster.remove("name");
    if let Some(d) = cluster.remove("distribution") {
        let _ = writeln!(t, "distribution = {}  # prepare plan", tv(&d));
    }
    let plan_current = cluster
        .remove("current-version")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    cluster.remove("target-version");
    match opts.current {
        Some(c) => {
            let _ = writeln!(t, "current-version = {}  # --current", ts(c));
        }
        None => {
            let _ = writeln!(
                t,
                "current-version = {}  # prepare plan: the upgrade the capture was taken before",
                ts(&plan_current)
            );
        }
    }
    match opts.to {
        Some(v) => {
            let _ = writeln!(t, "target-version = {}  # --to", ts(v));
        }
        None if distribution == "rke1" => {
            let _ = writeln!(
                t,
                "target-version = {}  # prepare plan (the capture does not read Rancher's version)",
                ts(&captured)
            );
        }
        None => {
            let _ = writeln!(
                t,
                "target-version = {}  # facts: the version every node ran ({binary} --version)",
                ts(&captured)
            );
        }
    }
    if distribution != "rke1" {
        cluster.remove("data-dir");
        if let Some(dd) = first.str("data-dir") {
            let _ = writeln!(
                t,
                "data-dir = {}  # facts: the data dir every node checked",
                ts(dd)
            );
        }
    }
    for (k, v) in &cluster {
        let _ = writeln!(t, "{k} = {}  # prepare plan", tv(v));
    }
    // Tables of the prepare plan, in the plan format's order.
    let mut rest: Vec<(String, toml::Value)> = table.into_iter().collect();
    let order = ["datastore", "rke", "install", "drain"];
    rest.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(order.len()));
    let emit_table = |t: &mut String, name: &str, v: &toml::Value| match v {
        toml::Value::Table(tab) => {
            let _ = writeln!(t, "\n[{name}]  # prepare plan");
            for (k, v) in tab {
                let _ = writeln!(t, "{k} = {}", tv(v));
            }
        }
        other => {
            let _ = writeln!(t, "\n# prepare plan\n{name} = {}", tv(other));
        }
    };
    for (k, v) in rest.iter().filter(|(k, _)| k == "datastore" || k == "rke") {
        emit_table(&mut t, k, v);
    }
    // The backup.
    let bsrc = format!("facts {}", backup.host());
    let bpath = backup
        .backup("path")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let bsha = backup
        .backup("sha256")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let bsize = backup
        .backup("size")
        .and_then(Json::as_u64)
        .unwrap_or_default();
    // The version the backup was taken on: what its host ran; a
    // workstation's dump, what every node ran.
    let (taken_on, taken_src) = match backup.str("version") {
        Some(v) => (
            v,
            format!("{bsrc}: the version it ran when the backup was taken"),
        ),
        None if backup.str("role") == Some("workstation") => (
            captured.as_str(),
            "facts: the version every node ran when the dump was taken".to_owned(),
        ),
        None => (
            backup.str("expected-version").unwrap_or(&captured),
            format!("{bsrc}: the version the prepare plan says it ran"),
        ),
    };
    t.push_str("\n[snapshot]\n");
    if distribution == "rke1" {
        let _ = writeln!(
            t,
            "name = {}  # facts: the capture's name (rke etcd snapshot-save --name)",
            ts(first.str("capture").unwrap_or_default())
        );
        let _ = writeln!(
            t,
            "# {bsrc}: {bpath}, {bsize} bytes (rke restores from the first etcd node's copy)"
        );
    } else if s3.is_some() {
        let _ = writeln!(
            t,
            "# {bsrc}: {bpath}, {bsize} bytes, uploaded to S3 (a local copy stays there)"
        );
    } else {
        let _ = writeln!(
            t,
            "path = {}  # {bsrc}: the backup it wrote ({bsize} bytes)",
            ts(bpath)
        );
    }
    let _ = writeln!(t, "sha256 = {}  # {bsrc}: sha256 of the backup", ts(bsha));
    let _ = writeln!(t, "taken-on = {}  # {taken_src}", ts(taken_on));
    if let Some(s3) = &s3 {
        t.push_str("\n[snapshot.s3]\n");
        let object = bpath.rsplit('/').next().unwrap_or(bpath);
        let _ = writeln!(
            t,
            "name = {}  # {bsrc}: the snapshot file {binary} wrote and uploaded",
            ts(object)
        );
        for (k, v) in s3 {
            let _ = writeln!(t, "{k} = {}  # prepare plan", tv(v));
        }
    }
    if let Some(th) = token_host {
        let _ = writeln!(t, "\n[token]");
        let _ = writeln!(
            t,
            "file = {}  # facts {}: the server token saved beside the backup (root only)",
            ts(th.token("file").unwrap_or_default()),
            th.host()
        );
        let _ = writeln!(
            t,
            "sha256 = {}  # facts {}: its sha256 (the token is not in the facts)",
            ts(th.token("sha256").unwrap_or_default()),
            th.host()
        );
    }
    for (k, v) in rest.iter().filter(|(k, _)| k != "datastore" && k != "rke") {
        emit_table(&mut t, k, v);
    }
    for n in &nodes {
        let key = node_key(n);
        let f = by_host.get(key.as_str());
        t.push_str("\n[[nodes]]\n");
        for (k, v) in n {
            if k == "init" {
                continue;
            }
            let src = match (k.as_str(), f) {
                ("role", Some(f)) if f.str("role") == v.as_str() => format!("facts {key}"),
                _ => "prepare plan".to_owned(),
            };
            let _ = writeln!(t, "{k} = {}  # {src}", tv(v));
        }
        if init.as_deref() == Some(key.as_str()) {
            let _ = writeln!(
                t,
                "init = true  # facts {key}: {}",
                if datastore == "etcd" {
                    "no server: entry, and the snapshot was taken here"
                } else {
                    "the server that holds the database"
                }
            );
        }
    }
    Ok(t)
}
