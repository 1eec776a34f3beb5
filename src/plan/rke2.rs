//! RKE2 and K3s procedures (the RKE2 rollback guide, K3s's roll-back page,
//! docs/architecture.md): embedded etcd, SQLite, and an external PostgreSQL
//! or MySQL database.
//!
//! K3s runs the same procedures: its names (binary, units, data dir,
//! config dir, variables, artifacts) come from the plan's
//! [`Flavor`], never from literals here. What only K3s has is decided in
//! one place each: its install (`install`: the unit and env file kept
//! and put back around its install script) and two preflight checks
//! (`k3s_checks`).
//!
//! The order of steps is the contract; each step's runbook text (its
//! template, `templates/runbook/rke2/<step>.md.j2`, worded from the
//! [`StepFacts`] given here) says which step of the RKE2 rollback guide it implements and which
//! known failure (upstream issues, docs/upstream-facts.md) it prevents.

use super::builder::{self, Builder, script};
use super::facts::{
    AirgapFacts, Aside, DatabaseFacts, Facts, ManualCheck, Rke2Facts, Rke2Paths, S3Facts,
    StepFacts, TokenFacts,
};
use super::{Func, Host, Op, Plan, Script};
use crate::choice::DatastoreKind;
use crate::model::{
    Datastore, ExternalDb, Flavor, Install, InstallMethod, Model, Rke2, Rke2Node, Role,
    SnapshotLocation,
};

/// Paths and names derived from the plan, shared by every step.
struct Ctx<'a> {
    r: &'a Rke2,
    f: &'static Flavor,
    suffix: String,
    rke2: String,
    config_dir: &'static str,
    unit_dir: String,
}

impl<'a> Ctx<'a> {
    fn new(r: &'a Rke2, suffix: &str) -> Self {
        let f = r.flavor;
        let (bin, unit_dir) = r.install_dirs();
        Self {
            r,
            f,
            suffix: suffix.to_owned(),
            rke2: format!("{bin}/{}", f.binary),
            config_dir: f.config_dir,
            unit_dir,
        }
    }

    /// A tar install's prefix other than install.sh's default `/usr/local`:
    /// install.sh is told it (INSTALL_RKE2_TAR_PREFIX).
    fn tar_prefix(&self) -> Option<String> {
        (self.r.install_method == InstallMethod::Tar && self.r.install_prefix != "/usr/local")
            .then(|| self.r.install_prefix.clone())
    }

    /// `CONFIG_DIR UNIT UNIT_ENV`: where the unit of node `n` takes its
    /// settings from (the first arguments of the config checks).
    fn unit_world(&self, n: &Rke2Node) -> Vec<String> {
        let unit = self.unit(n);
        vec![
            self.config_dir.to_owned(),
            unit.to_owned(),
            format!("{}/{unit}{}", self.unit_dir, self.f.unit_env),
        ]
    }

    /// Op `f` with the unit world of `n` and then `rest`.
    fn in_unit_world(&self, f: Func, n: &Rke2Node, rest: &[&str]) -> Op {
        let mut args = self.unit_world(n);
        args.extend(rest.iter().map(|s| (*s).to_owned()));
        Op::new(f, args)
    }

    /// The token checks of server `n`: the saved token is there (with its
    /// hash) and is the token its unit really uses.
    fn server_token_checks(&self, n: &Rke2Node) -> Vec<Op> {
        let mut ops = self.token_checks();
        if let Some(t) = &self.r.token {
            ops.push(self.in_unit_world(Func::CheckTokenSource, n, &[t.file.as_str()]));
        }
        ops
    }

    /// Makes `server/token` hold the saved token (used when no token is
    /// configured; equal to the configured one otherwise, as checked).
    fn put_token(&self) -> Vec<Op> {
        self.r
            .token
            .iter()
            .map(|t| {
                Op::new(
                    Func::PutToken,
                    [t.file.clone(), self.dd("server/token"), self.suffix.clone()],
                )
            })
            .collect()
    }

    fn dd(&self, rest: &str) -> String {
        format!("{}/{rest}", self.r.data_dir)
    }

    fn servers(&self) -> impl Iterator<Item = &'a Rke2Node> + 'a {
        self.r.nodes.iter().filter(|n| n.role == Role::Server)
    }

    fn agents(&self) -> impl Iterator<Item = &'a Rke2Node> + 'a {
        self.r.nodes.iter().filter(|n| n.role == Role::Agent)
    }

    fn init(&self) -> &'a Rke2Node {
        // Validation proved exactly one init server for etcd; SQLite has one
        // server; for external databases the first server stands in.
        self.r
            .nodes
            .iter()
            .find(|n| n.init)
            .or_else(|| self.servers().next())
            .expect("validation guarantees a server")
    }

    fn target(&self) -> String {
        self.r.target.to_string()
    }

    fn node_type(n: &Rke2Node) -> &'static str {
        match n.role {
            Role::Server => "server",
            Role::Agent => "agent",
        }
    }

    fn unit(&self, n: &Rke2Node) -> &'static str {
        self.r.unit(n.role)
    }

    /// The unit file of node `n` and its `.env` file.
    fn unit_files(&self, n: &Rke2Node) -> [String; 2] {
        let unit = self.unit(n);
        [
            format!("{}/{unit}.service", self.unit_dir),
            format!("{}/{unit}{}", self.unit_dir, self.f.unit_env),
        ]
    }

    /// K3s's preflight checks of node `n`: the binary is where its install
    /// script writes the target, and the unit files it rewrites are there
    /// to be kept. None for RKE2.
    fn k3s_checks(&self, n: &Rke2Node) -> Vec<Op> {
        if !self.f.is_k3s() {
            return Vec::new();
        }
        let [unit_file, env_file] = self.unit_files(n);
        vec![
            Op::new(Func::CheckBinDir, [self.rke2.as_str()]),
            Op::new(
                Func::CheckUnitFiles,
                [self.unit(n).to_owned(), unit_file, env_file],
            ),
        ]
    }

    /// Where the datastore backup is restored: the init server, or the
    /// external database's `restore-on` host.
    fn restore_host(&self) -> Host {
        match &self.r.datastore {
            Datastore::Postgres(db) | Datastore::Mysql(db) => match &db.restore_on {
                Some(n) => Host::Node(n.clone()),
                None => Host::Workstation,
            },
            Datastore::Etcd | Datastore::Sqlite => Host::Node(self.init().name.clone()),
        }
    }

    fn snapshot_path(&self) -> Option<&'a str> {
        match &self.r.snapshot.location {
            SnapshotLocation::Path(p) => Some(p),
            SnapshotLocation::S3(_) => None,
        }
    }

    /// Checks of the backup file on the host that restores it.
    fn snapshot_checks(&self) -> Vec<Op> {
        let mut ops = Vec::new();
        if let Some(p) = self.snapshot_path() {
            ops.push(Op::new(Func::NeedFile, [p]));
            if let Some(h) = &self.r.snapshot.sha256 {
                ops.push(Op::new(Func::CheckSha256, [p, h.as_str()]));
            }
            match &self.r.datastore {
                Datastore::Etcd => ops.push(Op::new(Func::CheckEtcdSnapshot, [p])),
                Datastore::Sqlite => ops.push(Op::new(Func::CheckSqliteDb, [p])),
                Datastore::Postgres(_) => ops.push(Op::new(Func::CheckPgArchive, [p])),
                Datastore::Mysql(_) => ops.push(Op::new(Func::CheckMysqlDump, [p])),
            }
        } else {
            ops.push(Op::new(
                Func::NeedEnv,
                ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            ));
            if let SnapshotLocation::S3(s3) = &self.r.snapshot.location
                && let Some(ca) = &s3.endpoint_ca
            {
                ops.push(Op::new(Func::NeedFile, [ca.as_str()]));
            }
        }
        ops
    }

    fn token_checks(&self) -> Vec<Op> {
        match &self.r.token {
            Some(t) => {
                let mut args = vec![t.file.clone()];
                args.extend(t.sha256.clone());
                vec![Op::new(Func::CheckToken, args)]
            }
            None => Vec::new(),
        }
    }

    fn install_checks(&self, n: &Rke2Node) -> Vec<Op> {
        match &self.r.install {
            Install::Airgap { artifacts, arch } => {
                let f = if self.f.is_k3s() {
                    Func::CheckK3sArtifacts
                } else {
                    Func::CheckArtifacts
                };
                vec![Op::new(f, [artifacts.clone(), arch.clone(), self.target()])]
            }
            Install::Online if self.r.install_method == InstallMethod::Rpm => vec![Op::new(
                Func::CheckRpmTarget,
                [Self::node_type(n).to_owned(), self.rpm_version()],
            )],
            Install::Online => Vec::new(),
        }
    }

    /// The target in RPM form (`1.29.3~rke2r1`).
    fn rpm_version(&self) -> String {
        rpm_version(&self.target())
    }

    /// What the words of the runbook share.
    fn facts(&self) -> Facts {
        let r = self.r;
        Facts::Rke2(Box::new(Rke2Facts {
            datastore: match r.datastore {
                Datastore::Etcd => DatastoreKind::Etcd,
                Datastore::Sqlite => DatastoreKind::Sqlite,
                Datastore::Postgres(_) => DatastoreKind::Postgres,
                Datastore::Mysql(_) => DatastoreKind::Mysql,
            },
            flavor: r.flavor,
            data_dir: r.data_dir.clone(),
            rke2: self.rke2.clone(),
            install_prefix: self.tar_prefix().unwrap_or_default(),
            servers: self
                .servers()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            other_servers: self
                .servers()
                .filter(|n| !n.init)
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            init: self.init().name.clone(),
            restore_host: self.restore_host().name().to_owned(),
            snapshot_path: self.snapshot_path().map(str::to_owned),
            snapshot_sha256: r.snapshot.sha256.is_some(),
            token: r.token.as_ref().map(|t| TokenFacts {
                file: t.file.clone(),
                sha256: t.sha256.is_some(),
            }),
            airgap: match &r.install {
                Install::Airgap { artifacts, arch } => Some(AirgapFacts {
                    artifacts: artifacts.clone(),
                    arch: arch.clone(),
                }),
                Install::Online => None,
            },
            rpm: r.install_method == InstallMethod::Rpm,
            rpm_version: self.rpm_version(),
            database: self.database_facts(),
            paths: Rke2Paths {
                pod_manifests: self.dd("agent/pod-manifests"),
                images: self.dd("agent/images"),
                server_manifests: self.dd("server/manifests"),
                server_db: self.dd("server/db"),
                etcd: self.dd("server/db/etcd"),
                state_db: self.dd("server/db/state.db"),
                server_token: self.dd("server/token"),
            },
        }))
    }

    /// An external database: where the restore keeps the database as it
    /// was, and the client options of the commands that bring it back.
    fn database_facts(&self) -> Option<DatabaseFacts> {
        let (db, postgres) = match &self.r.datastore {
            Datastore::Postgres(db) => (db, true),
            Datastore::Mysql(db) => (db, false),
            Datastore::Etcd | Datastore::Sqlite => return None,
        };
        let copy = external_copy_path(self.snapshot_path()?, &db.database, &self.suffix, postgres);
        let q = crate::shell::quote;
        let opt = |flag: &str, v: Option<String>| match v {
            Some(v) if !v.is_empty() => format!(" {}", q(&format!("{flag}={v}"))),
            _ => String::new(),
        };
        let conn = format!(
            "{}{}{}",
            opt("--host", Some(db.host.clone())),
            opt("--port", db.port.map(|p| p.to_string())),
            opt(
                if postgres { "--username" } else { "--user" },
                db.user.clone()
            ),
        );
        Some(DatabaseFacts {
            host: db.host.clone(),
            database: db.database.clone(),
            conn,
            database_in_quotes: db.database.replace('\'', "'\"'\"'"),
            database_word: q(&format!("--database={}", db.database)),
            copy_word: q(&copy),
            copy,
        })
    }

    /// True for a node that must hold the saved token: every server (each
    /// compares its configured token with it; the restoring one puts it in
    /// place).
    fn holds_token(&self, n: &Rke2Node) -> bool {
        n.role == Role::Server
    }

    /// External database: the rights the restore needs (and the archive's
    /// database name), checked on the restoring host. Step 1 runs it too, so
    /// that a missing right is found before anything is stopped.
    fn external_rights_check(&self) -> Option<Op> {
        let (db, postgres) = match &self.r.datastore {
            Datastore::Postgres(db) => (db, true),
            Datastore::Mysql(db) => (db, false),
            Datastore::Etcd | Datastore::Sqlite => return None,
        };
        let dump = self.snapshot_path()?.to_owned();
        let copy = external_copy_path(&dump, &db.database, &self.suffix, postgres);
        let args = vec![
            dump,
            db.host.clone(),
            db.port.map(|p| p.to_string()).unwrap_or_default(),
            db.user.clone().unwrap_or_default(),
            db.database.clone(),
            copy,
        ];
        let f = if postgres {
            Func::CheckPgRestore
        } else {
            Func::CheckMysqlRestore
        };
        Some(Op::new(f, args))
    }

    /// Air-gap: the target's image archives are in the data dir's images
    /// folder (the restore and the first start pull nothing).
    fn image_checks(&self) -> Vec<Op> {
        match &self.r.install {
            Install::Airgap { artifacts, arch } => vec![Op::new(
                Func::CheckImages,
                [artifacts.clone(), arch.clone(), self.dd("agent/images")],
            )],
            Install::Online => Vec::new(),
        }
    }

    fn tools(&self, extra: &[&str]) -> Op {
        let mut t: Vec<&str> = vec!["sha256sum"];
        t.extend_from_slice(extra);
        Op::new(Func::NeedTools, t)
    }

    fn node(&self, n: &Rke2Node, preflight: Vec<Op>, actions: Vec<Op>) -> Script {
        script(Host::Node(n.name.clone()), true, preflight, actions)
    }
}

/// A version in RPM form (docs/upstream-facts.md §4.3): no leading `v`, `+` and `-`
/// turned into `~` (`1.29.3~rke2r1`).
fn rpm_version(version: &str) -> String {
    version
        .strip_prefix('v')
        .unwrap_or(version)
        .replace(['+', '-'], "~")
}

/// Plans an RKE2 (or K3s) rollback.
pub(super) fn plan(model: &Model, r: &Rke2) -> Plan {
    let scenario = match &r.datastore {
        Datastore::Etcd => match &r.snapshot.location {
            SnapshotLocation::Path(_) => "embedded etcd, snapshot on disk".to_owned(),
            SnapshotLocation::S3(_) => "embedded etcd, snapshot in S3".to_owned(),
        },
        Datastore::Sqlite => "SQLite, single server".to_owned(),
        Datastore::Postgres(_) => "external PostgreSQL".to_owned(),
        Datastore::Mysql(_) => "external MySQL".to_owned(),
    };
    let scenario = format!(
        "{scenario}; {} install{}",
        match r.install {
            Install::Online => "online",
            Install::Airgap { .. } => "air-gap",
        },
        match r.install_method {
            InstallMethod::Tar if r.flavor.is_k3s() => " (install script)",
            InstallMethod::Tar => " (tarball)",
            InstallMethod::Rpm => " (RPM)",
        }
    );
    let cx = Ctx::new(r, &builder::suffix(model));
    let f = r.flavor;
    let mut b = Builder::new(
        model,
        f.distribution,
        scenario,
        r.current.to_string(),
        r.target.to_string(),
        cx.facts(),
    );
    // The names the shared fragments read instead of literals.
    b.constant("REWIND_PRODUCT", f.product);
    b.constant("REWIND_BIN", f.binary);
    b.constant("REWIND_ENV", f.env);
    b.constant("REWIND_DEFAULT_DATA_DIR", f.default_data_dir);
    b.constant("REWIND_SERVER_UNIT", f.server_unit);
    b.constant("REWIND_AGENT_UNIT", f.agent_unit);
    b.constant("REWIND_IMAGES", f.images);
    b.constant("REWIND_INSTALL_URL", f.install_url);
    preflight(&mut b, &cx);
    match &r.datastore {
        Datastore::Etcd => {
            drain(&mut b, &cx);
            stop(&mut b, &cx);
            install(&mut b, &cx);
            restore_etcd(&mut b, &cx);
            start_init(&mut b, &cx);
            suspend_upgrades(&mut b, &cx);
            rejoin(&mut b, &cx);
            start_agents(&mut b, &cx);
        }
        Datastore::Sqlite => {
            // A single server drains to nowhere; its agents' pods are
            // stopped gracefully first, as in the other procedures.
            if cx.agents().next().is_some() {
                drain(&mut b, &cx);
            }
            stop(&mut b, &cx);
            install(&mut b, &cx);
            restore_sqlite(&mut b, &cx);
            start_init(&mut b, &cx);
            suspend_upgrades(&mut b, &cx);
            start_agents(&mut b, &cx);
        }
        Datastore::Postgres(db) | Datastore::Mysql(db) => {
            drain(&mut b, &cx);
            stop(&mut b, &cx);
            restore_external(&mut b, &cx, db);
            install(&mut b, &cx);
            start_servers(&mut b, &cx);
            suspend_upgrades(&mut b, &cx);
            start_agents(&mut b, &cx);
        }
    }
    verify(&mut b, &cx);
    cleanup_notes(&mut b, &cx);
    b.finish()
}

fn preflight(b: &mut Builder, cx: &Ctx<'_>) {
    let restore_host = cx.restore_host();
    let mut scripts = Vec::new();
    if restore_host == Host::Workstation {
        let tools: &[&str] = match &cx.r.datastore {
            Datastore::Postgres(_) => &["pg_restore", "psql", "pg_dump"],
            Datastore::Mysql(_) => &["mysql"],
            // Only an external database is restored from the workstation.
            Datastore::Etcd | Datastore::Sqlite => &[],
        };
        let mut pre = vec![cx.tools(tools)];
        pre.extend(cx.snapshot_checks());
        pre.extend(cx.token_checks());
        pre.extend(cx.external_rights_check());
        scripts.push(script(Host::Workstation, false, pre, Vec::new()));
    }
    for n in &cx.r.nodes {
        let host = Host::Node(n.name.clone());
        let restores_here = host == restore_host;
        // cluster-reset runs under `timeout`; no other node needs it.
        // The stop step reads /proc/PID/exe; cluster-reset runs under
        // `timeout`, on the restoring node only.
        let mut extra = vec!["systemctl", "readlink"];
        if restores_here && cx.r.datastore == Datastore::Etcd {
            extra.push("timeout");
        }
        if restores_here {
            match &cx.r.datastore {
                Datastore::Etcd => {
                    if cx.snapshot_path().is_some_and(|p| p.ends_with(".zip")) {
                        extra.push("unzip");
                    }
                }
                Datastore::Postgres(_) => extra.extend(["pg_restore", "psql", "pg_dump"]),
                Datastore::Mysql(_) => extra.push("mysql"),
                Datastore::Sqlite => {}
            }
        }
        let mut pre = vec![
            cx.tools(&extra),
            cx.in_unit_world(Func::CheckDataDir, n, &[cx.r.data_dir.as_str()]),
            cx.in_unit_world(Func::CheckNodeName, n, &[n.k8s_name()]),
            Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
        ];
        pre.push(Op::new(
            Func::CheckRke2Version,
            [cx.rke2.clone(), cx.r.current.to_string(), cx.target()],
        ));
        pre.extend(cx.k3s_checks(n));
        pre.extend(cx.install_checks(n));
        if restores_here {
            pre.extend(cx.snapshot_checks());
            pre.extend(cx.external_rights_check());
            if matches!(cx.r.datastore, Datastore::Postgres(_) | Datastore::Mysql(_))
                && !cx.holds_token(n)
            {
                // The token saved with the dump sits beside it on the restoring host.
                pre.extend(cx.token_checks());
            }
        }
        if n.role == Role::Server && (n.init || cx.r.datastore == Datastore::Sqlite) {
            if cx.r.datastore == Datastore::Etcd {
                pre.push(cx.in_unit_world(Func::CheckNoServerEntry, n, &[]));
                if let Some(p) = cx.snapshot_path() {
                    pre.push(Op::new(Func::CheckRoom, [p.to_owned(), cx.dd("server/db")]));
                }
            }
            if cx.r.datastore == Datastore::Sqlite
                && let Some(p) = cx.snapshot_path()
            {
                pre.push(Op::new(Func::CheckRoom, [p.to_owned(), cx.dd("server/db")]));
            }
        }
        if n.role == Role::Server && !n.init && cx.r.datastore == Datastore::Etcd {
            pre.push(cx.in_unit_world(Func::CheckServerEntry, n, &[]));
        }
        if cx.holds_token(n) {
            pre.extend(cx.server_token_checks(n));
        }
        pre.push(rancher_agent_check(cx));
        scripts.push(cx.node(n, pre, Vec::new()));
    }
    b.step(
        "preflight",
        "Check every host (read-only)",
        true,
        false,
        StepFacts::Rke2Preflight {
            several_servers: cx.r.datastore == Datastore::Etcd && cx.servers().count() > 1,
            rancher_agent_unit: RANCHER_AGENT_UNIT,
            rancher_agent_dir: RANCHER_AGENT_DIR,
        },
        scripts,
    );
}

fn drain(b: &mut Builder, cx: &Ctx<'_>) {
    let Some(d) = &cx.r.drain else { return };
    let mut args = vec![d.kubeconfig.clone().unwrap_or_default(), d.timeout.clone()];
    args.extend(cx.agents().map(|n| n.k8s_name().to_owned()));
    args.extend(cx.servers().map(|n| n.k8s_name().to_owned()));
    let s = script(
        Host::Workstation,
        false,
        vec![Op::new(Func::NeedTools, ["kubectl"])],
        vec![Op::new(Func::DrainNodes, args)],
    );
    b.step(
        "drain",
        "Drain the nodes (workstation)",
        false,
        false,
        StepFacts::Rke2Drain {
            timeout: d.timeout.clone(),
        },
        vec![s],
    );
}

fn stop(b: &mut Builder, cx: &Ctx<'_>) {
    let init = cx.init().name.clone();
    let scripts =
        cx.r.nodes
            .iter()
            .map(|n| {
                let mut act = vec![
                    Op::new(
                        Func::StopRke2,
                        [
                            cx.r.data_dir.clone(),
                            cx.unit(n).to_owned(),
                            cx.rke2.clone(),
                        ],
                    ),
                    Op::new(
                        Func::MovePodManifestsAside,
                        [cx.dd("agent/pod-manifests"), cx.suffix.clone()],
                    ),
                ];
                // What the restore needs must have survived the stop.
                if n.name == init
                    && matches!(cx.r.datastore, Datastore::Etcd | Datastore::Sqlite)
                    && let Some(p) = cx.snapshot_path()
                {
                    act.push(Op::new(Func::NeedFile, [p]));
                }
                if let Some(t) = &cx.r.token
                    && cx.holds_token(n)
                {
                    act.push(Op::new(Func::NeedFile, [t.file.as_str()]));
                }
                cx.node(
                    n,
                    vec![
                        Op::new(Func::NeedTools, ["systemctl", "readlink"]),
                        Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
                    ],
                    act,
                )
            })
            .collect();
    let pod_manifests = cx.dd("agent/pod-manifests");
    b.aside(Aside::PodManifests {
        to: b.aside_path(&pod_manifests),
        from: pod_manifests,
    });
    b.step(
        "stop",
        format!("Stop {} on every node", cx.f.product),
        true,
        true,
        StepFacts::Rke2Stop,
        scripts,
    );
    b.destroys(format!(
        "kills every {} process and its containers (rewind does it, not {}-killall.sh, which may unmount and empty the data dir); moves the static pod manifests aside",
        cx.f.product, cx.f.binary
    ));
}

fn install(b: &mut Builder, cx: &Ctx<'_>) {
    let target = cx.target();
    let rpm = cx.r.install_method == InstallMethod::Rpm;
    let rv = cx.rpm_version();
    let scripts =
        cx.r.nodes
            .iter()
            .map(|n| {
                let mut pre = cx.install_checks(n);
                let mut act = Vec::new();
                match &cx.r.install {
                    _ if cx.f.is_k3s() => {
                        pre.extend(cx.k3s_checks(n));
                        act = k3s_install(cx, n);
                    }
                    Install::Airgap { artifacts, arch } => {
                        act.push(Op::new(
                            Func::MoveImagesAside,
                            [cx.dd("agent/images"), cx.suffix.clone()],
                        ));
                        let mut args = vec![
                            artifacts.clone(),
                            arch.clone(),
                            Ctx::node_type(n).to_owned(),
                            cx.dd("agent/images"),
                        ];
                        args.extend(cx.tar_prefix());
                        act.push(Op::new(Func::InstallAirgap, args));
                        act.push(Op::new(
                            Func::InstallImages,
                            [artifacts.clone(), arch.clone(), cx.dd("agent/images")],
                        ));
                    }
                    Install::Online if rpm => {
                        // Not install.sh: its rpm method does not downgrade
                        // (upstream-facts.md §4.3); see templates/runbook/rke2/install.md.j2.
                        act.push(Op::new(
                            Func::MoveImagesAside,
                            [cx.dd("agent/images"), cx.suffix.clone()],
                        ));
                        act.push(Op::new(
                            Func::InstallRpm,
                            [Ctx::node_type(n).to_owned(), rv.clone()],
                        ));
                        act.push(Op::new(
                            Func::CheckRpmVersions,
                            [Ctx::node_type(n).to_owned(), rv.clone()],
                        ));
                    }
                    Install::Online => {
                        pre.insert(0, Op::new(Func::NeedTools, ["sh"]));
                        act.push(Op::new(
                            Func::MoveImagesAside,
                            [cx.dd("agent/images"), cx.suffix.clone()],
                        ));
                        let mut args = vec![
                            target.clone(),
                            Ctx::node_type(n).to_owned(),
                            "tar".to_owned(),
                        ];
                        args.extend(cx.tar_prefix());
                        act.push(Op::new(Func::InstallOnline, args));
                    }
                }
                act.push(Op::new(
                    Func::CheckInstalledVersion,
                    [cx.rke2.clone(), target.clone()],
                ));
                // K3s writes its packaged manifests again at every start
                // and has no chart folder of RKE2's layout to compare with.
                if n.role == Role::Server && !cx.f.is_k3s() {
                    act.push(Op::new(
                        Func::MoveManifestsAside,
                        [
                            cx.dd("server/manifests"),
                            cx.r.data_dir.clone(),
                            cx.suffix.clone(),
                        ],
                    ));
                }
                pre.insert(0, Op::new(Func::NeedTools, ["sha256sum"]));
                cx.node(n, pre, act)
            })
            .collect();
    let images = cx.dd("agent/images");
    b.aside(Aside::Images {
        to: b.aside_path(&images),
        from: images,
    });
    if cx.servers().next().is_some() && !cx.f.is_k3s() {
        let manifests = cx.dd("server/manifests");
        b.aside(Aside::ServerManifests {
            to: b.aside_path(&manifests),
            from: manifests,
        });
    }
    if rpm {
        b.manual(ManualCheck::RpmLocks);
        b.manual(ManualCheck::RpmSelinux);
    }
    b.step(
        "install",
        format!("Install {target} on every node"),
        true,
        true,
        if cx.f.is_k3s() {
            StepFacts::K3sInstall {
                server_files: cx.unit_files(cx.init()),
                agent_files: cx.agents().next().map(|n| cx.unit_files(n)),
            }
        } else {
            StepFacts::Rke2Install {
                current_rpm_version: rpm_version(&cx.r.current.to_string()),
            }
        },
        scripts,
    );
    b.destroys(format!(
        "replaces the installed {}{} with the target's; moves the newer version's image archives and, on servers, chart manifests aside",
        cx.f.binary,
        if rpm { " packages" } else { "" }
    ));
}

/// The actions of K3s's install on node `n`: the newer images aside, the
/// unit and env file kept, the install script (online, or with the binary
/// put in place for air-gap) with nothing enabled or started, the target's
/// image archives, and the unit and env file put back as they were.
fn k3s_install(cx: &Ctx<'_>, n: &Rke2Node) -> Vec<Op> {
    let [unit_file, env_file] = cx.unit_files(n);
    let images = cx.dd("agent/images");
    let mut install = vec![cx.target(), Ctx::node_type(n).to_owned(), cx.rke2.clone()];
    if let Install::Airgap { artifacts, arch } = &cx.r.install {
        install.extend([artifacts.clone(), arch.clone()]);
    }
    let mut act = vec![
        Op::new(Func::MoveImagesAside, [images.clone(), cx.suffix.clone()]),
        Op::new(
            Func::KeepUnitFiles,
            [unit_file.clone(), env_file.clone(), cx.suffix.clone()],
        ),
        Op::new(Func::InstallK3s, install),
    ];
    if let Install::Airgap { artifacts, arch } = &cx.r.install {
        act.push(Op::new(
            Func::InstallImages,
            [artifacts.clone(), arch.clone(), images],
        ));
    }
    act.push(Op::new(
        Func::PutBackUnitFiles,
        [unit_file, env_file, cx.suffix.clone()],
    ));
    act
}

fn restore_etcd(b: &mut Builder, cx: &Ctx<'_>) {
    let init = cx.init();
    let mut pre = vec![
        cx.tools(&["timeout", "readlink"]),
        cx.in_unit_world(Func::CheckNoServerEntry, init, &[]),
        cx.in_unit_world(Func::CheckDataDir, init, &[cx.r.data_dir.as_str()]),
        Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
        Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
    ];
    pre.extend(cx.snapshot_checks());
    pre.extend(cx.server_token_checks(init));
    pre.extend(cx.image_checks());
    let mut act = Vec::new();
    if let Some(t) = &cx.r.token {
        act.push(Op::new(
            Func::PutToken,
            [t.file.clone(), cx.dd("server/token"), cx.suffix.clone()],
        ));
    }
    act.push(Op::new(
        Func::StopLeftovers,
        [cx.r.data_dir.clone(), cx.rke2.clone()],
    ));
    let mut args = vec![cx.rke2.clone()];
    let restore_path = match &cx.r.snapshot.location {
        SnapshotLocation::Path(p) => p.clone(),
        SnapshotLocation::S3(s3) => s3.name.clone(),
    };
    args.push(restore_path);
    args.push(
        cx.r.token
            .as_ref()
            .map(|t| t.file.clone())
            .unwrap_or_default(),
    );
    args.extend(cx.unit_world(init).into_iter().skip(1));
    if cx.r.data_dir != cx.f.default_data_dir {
        args.push(format!("--data-dir={}", cx.r.data_dir));
    }
    match &cx.r.snapshot.location {
        SnapshotLocation::Path(_) => {
            args.push("--etcd-s3=false".into());
        }
        SnapshotLocation::S3(s3) => args.extend(s3_flags("--etcd-s3", s3)),
    }
    act.push(Op::new(Func::ClusterReset, args));
    let s3 = match &cx.r.snapshot.location {
        SnapshotLocation::Path(_) => None,
        SnapshotLocation::S3(s3) => Some(S3Facts {
            name: s3.name.clone(),
            bucket: s3.bucket.clone(),
            folder: s3.folder.clone(),
        }),
    };
    let etcd = cx.dd("server/db/etcd");
    b.aside(Aside::ResetEtcd {
        host: init.name.clone(),
        to: cx.dd("server/db/etcd-old-<unix time>"),
        from: etcd,
    });
    if cx.r.token.is_some() {
        let token = cx.dd("server/token");
        b.aside(Aside::ServerToken {
            to: b.aside_path(&token),
            from: token,
        });
    }
    b.step(
        "restore",
        format!("Restore the snapshot on {}", init.name),
        false,
        true,
        StepFacts::Rke2RestoreEtcd { s3 },
        vec![cx.node(init, pre, act)],
    );
    b.destroys(if cx.r.token.is_some() {
        "replaces the etcd data with the snapshot (cluster-reset renames the current one) and server/token with the saved token (the old one moved aside)"
    } else {
        "replaces the etcd data with the snapshot (cluster-reset renames the current one)"
    });
    b.no_return();
}

fn restore_sqlite(b: &mut Builder, cx: &Ctx<'_>) {
    let init = cx.init();
    let backup = cx
        .snapshot_path()
        .expect("sqlite snapshots are files")
        .to_owned();
    let mut pre = vec![cx.tools(&[]), Op::new(Func::NeedFile, [backup.as_str()])];
    if let Some(h) = &cx.r.snapshot.sha256 {
        pre.push(Op::new(Func::CheckSha256, [backup.clone(), h.clone()]));
    }
    pre.push(Op::new(Func::CheckSqliteDb, [backup.as_str()]));
    pre.push(Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]));
    pre.extend(cx.image_checks());
    pre.push(Op::new(
        Func::CheckRoom,
        [backup.clone(), cx.dd("server/db")],
    ));
    pre.extend(cx.server_token_checks(init));
    let mut act = vec![Op::new(
        Func::RestoreSqlite,
        [
            backup.clone(),
            cx.dd("server/db/state.db"),
            cx.suffix.clone(),
        ],
    )];
    if let Some(t) = &cx.r.token {
        act.push(Op::new(
            Func::PutToken,
            [t.file.clone(), cx.dd("server/token"), cx.suffix.clone()],
        ));
    }
    let state_db = cx.dd("server/db/state.db");
    b.aside(Aside::SqliteDb {
        host: init.name.clone(),
        to: b.aside_path(&state_db),
        from: state_db,
    });
    if cx.r.token.is_some() {
        // put_token moves a differing server/token aside here too.
        let token = cx.dd("server/token");
        b.aside(Aside::ServerToken {
            to: b.aside_path(&token),
            from: token,
        });
    }
    b.step(
        "restore",
        format!("Restore the SQLite database on {}", init.name),
        false,
        true,
        StepFacts::Rke2RestoreSqlite,
        vec![cx.node(init, pre, act)],
    );
    b.destroys(if cx.r.token.is_some() {
        "replaces state.db with the backup and server/token with the saved token (both moved aside first)"
    } else {
        "replaces state.db with the backup (the current one moved aside first)"
    });
    b.no_return();
}

fn restore_external(b: &mut Builder, cx: &Ctx<'_>, db: &ExternalDb) {
    let host = cx.restore_host();
    let dump = cx
        .snapshot_path()
        .expect("external database dumps are files")
        .to_owned();
    let postgres = matches!(cx.r.datastore, Datastore::Postgres(_));
    let port = db.port.map(|p| p.to_string()).unwrap_or_default();
    let user = db.user.clone().unwrap_or_default();
    // The current database is dumped beside the backup before it is dropped:
    // the same host, a folder the operator already manages, a name that
    // says what it is and which plan made it.
    let copy = external_copy_path(&dump, &db.database, &cx.suffix, postgres);
    let (tools, check, rights, save, restore): (&[&str], Func, Func, Func, Func) = if postgres {
        (
            &["pg_restore", "psql", "pg_dump"],
            Func::CheckPgArchive,
            Func::CheckPgRestore,
            Func::SavePostgres,
            Func::RestorePostgres,
        )
    } else {
        (
            &["mysql"],
            Func::CheckMysqlDump,
            Func::CheckMysqlRestore,
            Func::SaveMysql,
            Func::RestoreMysql,
        )
    };
    let conn = [
        db.host.clone(),
        port.clone(),
        user.clone(),
        db.database.clone(),
    ];
    let mut pre = vec![cx.tools(tools), Op::new(Func::NeedFile, [dump.as_str()])];
    if let Some(h) = &cx.r.snapshot.sha256 {
        pre.push(Op::new(Func::CheckSha256, [dump.clone(), h.clone()]));
    }
    pre.push(Op::new(check, [dump.as_str()]));
    // The dump is useless without the token it was taken with (its bootstrap
    // data is encrypted with it): check the saved copy before dropping anything.
    pre.extend(cx.token_checks());
    // Last: the archive's database name is checked before the server is
    // asked anything, then the user's rights.
    let mut args = vec![dump.clone()];
    args.extend(conn.iter().cloned());
    args.push(copy.clone());
    pre.push(Op::new(rights, args.clone()));
    let mut save_args = conn.to_vec();
    save_args.push(copy.clone());
    let act = vec![Op::new(save, save_args), Op::new(restore, args)];
    let s = match &host {
        Host::Workstation => script(Host::Workstation, false, pre, act),
        Host::Node(n) => script(Host::Node(n.clone()), true, pre, act),
    };
    b.aside(Aside::DatabaseCopy {
        host: host.name().to_owned(),
        to: copy,
    });
    b.step(
        "restore-db",
        format!(
            "Restore the {} database on {}",
            if postgres { "PostgreSQL" } else { "MySQL" },
            host.name()
        ),
        false,
        true,
        StepFacts::Rke2RestoreDb,
        vec![s],
    );
    b.destroys(
        "drops the database and replays the dump (a dump of the current database is saved first)",
    );
    b.no_return();
}

/// `<folder of the dump>/<database>-before-rollback.<SUFFIX>.dump` (`.sql`
/// for MySQL): where the current database is kept before the restore drops
/// it. Characters of the database name other than letters, digits, `.`,
/// `_` and `-` become `_` in the file name.
fn external_copy_path(dump: &str, database: &str, suffix: &str, postgres: bool) -> String {
    let dir = match dump.rsplit_once('/') {
        Some(("", _)) => "",
        Some((d, _)) => d,
        None => ".",
    };
    let name: String = database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ext = if postgres { "dump" } else { "sql" };
    format!("{dir}/{name}-before-rollback.{suffix}.{ext}")
}

fn start_init(b: &mut Builder, cx: &Ctx<'_>) {
    let init = cx.init();
    b.step(
        "start",
        format!("Start {} on {}", cx.f.server_unit, init.name),
        false,
        false,
        StepFacts::Rke2Start,
        vec![cx.node(
            init,
            vec![
                Op::new(Func::NeedTools, ["systemctl"]),
                Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
                Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
            ],
            vec![
                Op::new(Func::EnableUnit, [cx.f.server_unit]),
                Op::new(Func::StartUnit, [cx.f.server_unit]),
            ],
        )],
    );
}

fn rejoin(b: &mut Builder, cx: &Ctx<'_>) {
    let others: Vec<&Rke2Node> = cx.servers().filter(|n| !n.init).collect();
    if others.is_empty() {
        return;
    }
    let scripts = others
        .iter()
        .map(|n| {
            let mut pre = vec![
                Op::new(Func::NeedTools, ["systemctl"]),
                Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
                Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
                cx.in_unit_world(Func::CheckServerEntry, n, &[]),
            ];
            pre.extend(cx.server_token_checks(n));
            let mut act = vec![Op::new(
                Func::MoveAside,
                [cx.dd("server/db/etcd"), cx.suffix.clone()],
            )];
            act.extend(cx.put_token());
            act.push(Op::new(Func::EnableUnit, [cx.f.server_unit]));
            act.push(Op::new(Func::StartUnit, [cx.f.server_unit]));
            cx.node(n, pre, act)
        })
        .collect();
    let etcd = cx.dd("server/db/etcd");
    b.aside(Aside::MemberData {
        to: b.aside_path(&etcd),
        from: etcd,
    });
    b.step(
        "rejoin",
        "Rejoin the other servers, one at a time",
        false,
        true,
        StepFacts::Rke2Rejoin,
        scripts,
    );
    b.destroys(if cx.r.token.is_some() {
        "moves each server's etcd member data aside (it rejoins empty); replaces server/token with the saved token (the old one moved aside)"
    } else {
        "moves each server's etcd member data aside (it rejoins empty)"
    });
}

fn start_servers(b: &mut Builder, cx: &Ctx<'_>) {
    let scripts = cx
        .servers()
        .map(|n| {
            let mut pre = vec![
                Op::new(Func::NeedTools, ["systemctl"]),
                Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
                Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
            ];
            pre.extend(cx.server_token_checks(n));
            let mut act = cx.put_token();
            act.push(Op::new(Func::EnableUnit, [cx.f.server_unit]));
            act.push(Op::new(Func::StartUnit, [cx.f.server_unit]));
            cx.node(n, pre, act)
        })
        .collect();
    b.step(
        "start-servers",
        format!("Start {} on every server", cx.f.server_unit),
        true,
        false,
        StepFacts::Rke2StartServers,
        scripts,
    );
}

fn start_agents(b: &mut Builder, cx: &Ctx<'_>) {
    let scripts: Vec<Script> = cx
        .agents()
        .map(|n| {
            cx.node(
                n,
                vec![
                    Op::new(Func::NeedTools, ["systemctl"]),
                    Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
                    Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
                ],
                vec![
                    Op::new(Func::EnableUnit, [cx.unit(n)]),
                    Op::new(Func::StartUnit, [cx.unit(n)]),
                ],
            )
        })
        .collect();
    if scripts.is_empty() {
        return;
    }
    b.step(
        "start-agents",
        format!("Start {} on every agent", cx.f.agent_unit),
        true,
        false,
        StepFacts::Rke2StartAgents,
        scripts,
    );
}

fn verify(b: &mut Builder, cx: &Ctx<'_>) {
    let kubeconfig =
        cx.r.drain
            .as_ref()
            .and_then(|d| d.kubeconfig.clone())
            .unwrap_or_default();
    let mut args = vec![kubeconfig, cx.target()];
    args.extend(cx.r.nodes.iter().map(|n| n.k8s_name().to_owned()));
    b.step(
        "verify",
        "Verify the cluster (workstation)",
        false,
        false,
        StepFacts::Rke2Verify,
        vec![script(
            Host::Workstation,
            false,
            vec![Op::new(Func::NeedTools, ["kubectl"])],
            vec![
                Op::new(Func::VerifyCluster, args),
                Op::new(
                    Func::CheckUpgrades,
                    [cx.r.kubeconfig.clone().unwrap_or_default(), cx.target()],
                ),
            ],
        )],
    );
}

fn cleanup_notes(b: &mut Builder, cx: &Ctx<'_>) {
    if let Install::Airgap { .. } = cx.r.install {
        b.manual(ManualCheck::AirgapArchives);
    }
    // K3s's preflight checks where its binary is (check_bin_dir).
    if cx.r.install_method == InstallMethod::Tar && !cx.f.is_k3s() {
        b.manual(ManualCheck::TarballReadOnlyUsr);
    }
    b.manual(ManualCheck::Automation);
}

/// What rancher-system-agent's installer puts on a node that Rancher
/// provisions (docs/upstream-facts.md §9, `rancher/system-agent:install.sh`).
const RANCHER_AGENT_UNIT: &str = "/etc/systemd/system/rancher-system-agent.service";
const RANCHER_AGENT_DIR: &str = "/etc/rancher/agent";

/// The preflight check of a node for Rancher's system agent.
fn rancher_agent_check(cx: &Ctx<'_>) -> Op {
    let managed = if cx.r.rancher_managed {
        "true"
    } else {
        "false"
    };
    Op::new(
        Func::CheckRancherAgent,
        [managed, &cx.target(), RANCHER_AGENT_UNIT, RANCHER_AGENT_DIR],
    )
}

/// Stops system-upgrade-controller before the rest of the cluster starts:
/// the restore brought back the backup's Plans (and node labels without the
/// newer plan's hash), so a controller suspended before the rollback is
/// active again and would upgrade every node it selects.
fn suspend_upgrades(b: &mut Builder, cx: &Ctx<'_>) {
    let kubeconfig = cx.r.kubeconfig.clone().unwrap_or_default();
    let managed = if cx.r.rancher_managed {
        "true"
    } else {
        "false"
    };
    let s = script(
        Host::Workstation,
        false,
        vec![Op::new(Func::NeedTools, ["kubectl"])],
        vec![Op::new(
            Func::SuspendUpgrades,
            [kubeconfig.as_str(), &cx.target(), managed],
        )],
    );
    b.step(
        "suspend-upgrades",
        "Stop automatic upgrades (workstation)",
        false,
        false,
        StepFacts::Rke2SuspendUpgrades,
        vec![s],
    );
}

/// The flags that point the product's S3 client at the plan's bucket, each
/// named `<prefix>…`: `--etcd-s3` for `server --cluster-reset` (the restore
/// downloads the snapshot), `--s3` for `etcd-snapshot save` (the capture
/// uploads it; the same flags under that subcommand's names,
/// docs/upstream-facts.md). The keys come from AWS_ACCESS_KEY_ID and
/// AWS_SECRET_ACCESS_KEY, never from a flag.
pub fn s3_flags(prefix: &str, s3: &crate::model::S3) -> Vec<String> {
    let mut f = vec![prefix.to_owned(), format!("{prefix}-bucket={}", s3.bucket)];
    if let Some(x) = &s3.folder {
        f.push(format!("{prefix}-folder={x}"));
    }
    if let Some(x) = &s3.endpoint {
        f.push(format!("{prefix}-endpoint={x}"));
    }
    if let Some(x) = &s3.region {
        f.push(format!("{prefix}-region={x}"));
    }
    if s3.insecure {
        f.push(format!("{prefix}-insecure"));
    }
    if s3.skip_ssl_verify {
        f.push(format!("{prefix}-skip-ssl-verify"));
    }
    if let Some(x) = &s3.endpoint_ca {
        f.push(format!("{prefix}-endpoint-ca={x}"));
    }
    f
}
