//! The operations a generated script performs, one per line of its
//! `preflight()` or `actions()` function.
//!
//! Each [`Op`] is a call of a shell function from `templates/lib/*.sh` with
//! arguments from the plan. This enum is the whole contract between the
//! planner (which decides) and the templates (which print): the planner never
//! writes shell text, and the library never sees the plan. Every argument is
//! printed through the `.sh` auto-escape, so a value reaches the function as
//! exactly one word.
//!
//! Conventions of the library (see `templates/lib/core.sh`):
//! - preflight operations are read-only; they fail with a message and exit 1;
//! - action operations change the host only through `rw_run`, which honours
//!   `REWIND_DRY_RUN=1` and reports the failing command and its exit code;
//! - `SUFFIX` arguments are `rewind-<first 8 of plan sha256>`: what is moved
//!   aside goes to `<path>.<SUFFIX>`, never deleted.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A library function and the fragment file that defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Func {
    // ---- read-only checks (preflight) -------------------------------------
    /// `need_tools TOOL...`: every tool is on PATH (`command -v`).
    NeedTools,
    /// `need_env VAR...`: every variable is set and non-empty (values never printed).
    NeedEnv,
    /// `need_file PATH`: a readable regular file.
    NeedFile,
    /// `need_dir PATH`: a directory.
    NeedDir,
    /// `check_sha256 PATH HEX`: the file's sha256 is HEX.
    CheckSha256,
    /// `check_etcd_snapshot PATH`: a plain etcd snapshot's 32-byte sha256
    /// trailer matches its body; a `.zip` is tested with `unzip -t` and its
    /// single entry's trailer checked the same way.
    CheckEtcdSnapshot,
    /// `check_rke2_version BIN CURRENT TARGET`: `BIN --version` prints CURRENT
    /// (or TARGET: "already at the target", not an error).
    CheckRke2Version,
    /// `check_installed_version BIN TARGET`: `BIN --version` prints exactly TARGET.
    CheckInstalledVersion,
    /// `check_token FILE [HEX]`: the saved token exists, is not empty, and
    /// hashes to HEX when given; the token itself is never printed.
    CheckToken,
    /// `check_artifacts DIR ARCH [TARGET]`: install.sh, `rke2.linux-ARCH.tar.gz`
    /// and `sha256sum-ARCH.txt` are present, every artifact listed in the
    /// sums file that is present in DIR matches its hash, and the rke2 in the
    /// tarball says it is TARGET.
    CheckArtifacts,
    /// `check_no_server_entry CONFIG_DIR UNIT UNIT_ENV`: neither `config.yaml`
    /// nor `config.yaml.d/*.yaml` under CONFIG_DIR has a `server:` entry, and
    /// UNIT's environment files set no RKE2_URL (cluster-reset refuses to run
    /// with one).
    CheckNoServerEntry,
    /// `check_server_entry CONFIG_DIR UNIT UNIT_ENV`: a rejoining server has
    /// `server:` (or RKE2_URL in UNIT's environment files), printed; without
    /// one an empty db/etcd starts a second cluster.
    CheckServerEntry,
    /// `check_node_name CONFIG_DIR UNIT UNIT_ENV NAME`: the node registers in
    /// Kubernetes as NAME (`node-name:`, else RKE2_NODE_NAME, else the host
    /// name in lowercase), the name drain and verify use.
    CheckNodeName,
    /// `check_data_dir CONFIG_DIR UNIT UNIT_ENV DATA_DIR`: the data dir UNIT
    /// runs with (`data-dir:`, else RKE2_DATA_DIR, else the default) is DATA_DIR.
    CheckDataDir,
    /// `check_token_source CONFIG_DIR UNIT UNIT_ENV SAVED`: the token RKE2
    /// really uses (token-file:/token: in the config files, else
    /// RKE2_TOKEN_FILE/RKE2_TOKEN in the environment files; server/token
    /// only when none is set) is the saved one, compared by the hash of its
    /// key (the part after `K10<ca-hash>::server:`); never printed.
    CheckTokenSource,
    /// `stop_leftovers DATA_DIR BIN`: kill RKE2's processes that an earlier
    /// cluster-reset stopped by its time limit left running.
    StopLeftovers,
    /// `check_room FILE DIR`: DIR's filesystem has room for a copy of FILE.
    CheckRoom,
    /// `check_pg_archive FILE`: `pg_restore -l FILE` accepts its table of
    /// contents and `pg_restore -f /dev/null FILE` reads every data block (the
    /// table of contents alone accepts truncated and corrupted archives).
    CheckPgArchive,
    /// `check_mysql_dump FILE`: a complete mysqldump/mariadb-dump file
    /// (dump header, `-- Dump completed` trailer).
    CheckMysqlDump,
    /// `check_pg_restore FILE HOST PORT USER DATABASE COPY`: what the
    /// restore needs, checked before anything is dropped: the archive is of
    /// DATABASE; the folder of COPY is writable (or COPY is an earlier run's
    /// copy); USER is a superuser, or has CREATEDB and owns DATABASE (when it
    /// exists). A missing right is named with the `ALTER ROLE` / `ALTER
    /// DATABASE` that grants it. For a non-superuser, warns about what the
    /// restore cannot bring back: objects of other roles (`--no-owner`),
    /// GRANTs made by other roles (then `--no-acl`).
    CheckPgRestore,
    /// `check_mysql_restore FILE HOST PORT USER DATABASE COPY`: the dump
    /// switches to no other database; the folder of COPY is writable (or
    /// COPY exists); `SHOW GRANTS` gives USER on DATABASE (or `*.*`, or a
    /// database pattern that matches it) DROP, CREATE, SELECT, INSERT,
    /// ALTER and LOCK TABLES (and TRIGGER, CREATE VIEW, SHOW VIEW when the
    /// dump has triggers or views); a missing one is named with its `GRANT`.
    CheckMysqlRestore,
    /// `check_sqlite_db FILE`: `PRAGMA integrity_check` prints `ok` (when
    /// sqlite3 is present; otherwise says it could not check).
    CheckSqliteDb,
    /// `check_rancher_agent MANAGED TARGET MARKER...`: a node with one of the
    /// MARKER paths (rancher-system-agent's unit or config folder) is
    /// provisioned by Rancher, which applies its own Kubernetes version again;
    /// refused (naming the file and the plan key) unless MANAGED is `true`
    /// (`rancher-managed = true`: Rancher's version is set to TARGET).
    CheckRancherAgent,
    // ---- actions ----------------------------------------------------------
    /// `drain_nodes KUBECONFIG TIMEOUT NODE...`: if the API answers, cordon and
    /// drain each node (`--ignore-daemonsets --delete-emptydir-data`), and
    /// record which were drained for `verify_cluster`; if not, say so and go on.
    /// KUBECONFIG may be empty (then `$KUBECONFIG` / kubectl's default).
    DrainNodes,
    /// `stop_rke2 DATA_DIR UNIT BIN`: stop RKE2 without rke2-killall.sh
    /// (whose v1.25.8–v1.30.2 versions unmount and empty data volumes): record
    /// the data volumes and whether UNIT was enabled, `cd /`, stop and disable
    /// UNIT, kill every process whose executable is under DATA_DIR or
    /// /run/k3s (or is BIN) with its descendants, wait until none is left
    /// (`REWIND_STOP_TIMEOUT`, default 30 s), unmount only /run/k3s, kubelet's
    /// pod volumes and /run/netns/cni-*, and check the data volumes are
    /// still mounted.
    StopRke2,
    /// `check_data_mounts DATA_DIR`: list the mounts at or under DATA_DIR,
    /// /var/lib/rancher/rke2 and /var/lib/kubelet; once `stop_rke2` recorded
    /// them, fail if one is no longer mounted.
    CheckDataMounts,
    /// `move_pod_manifests_aside DIR SUFFIX`: move the static pod manifests
    /// `DIR/*.yaml` into `DIR.SUFFIX/` (old killall scripts leave kube-proxy.yaml).
    MovePodManifestsAside,
    /// `enable_unit UNIT`: enable UNIT again unless the stop step recorded
    /// that it was not enabled before.
    EnableUnit,
    /// `install_online VERSION TYPE METHOD [PREFIX]`: the upstream install
    /// script with INSTALL_RKE2_VERSION, INSTALL_RKE2_TYPE (server|agent),
    /// INSTALL_RKE2_METHOD (tar|rpm) and INSTALL_RKE2_TAR_PREFIX when PREFIX
    /// is given; `REWIND_INSTALL_SCRIPT_URL` overrides where the script is
    /// fetched from.
    InstallOnline,
    /// `check_bin_dir BIN` (read-only, K3s): BIN is an executable, and its
    /// folder is the one K3s's install script writes to (/usr/local/bin when
    /// root can write there, else /opt/bin), so that a reinstall replaces
    /// this binary and the unit's ExecStart keeps naming it.
    CheckBinDir,
    /// `check_unit_files UNIT UNIT_FILE ENV_FILE` (read-only, K3s): the
    /// unit file is there and names the unit's binary; the env file is
    /// there or, if missing, is kept missing. They are what the install
    /// step puts back after K3s's install script rewrote them.
    CheckUnitFiles,
    /// `keep_unit_files UNIT_FILE ENV_FILE SUFFIX` (K3s): copy the unit file
    /// and its env file to `<file>.SUFFIX` before the install script
    /// rewrites them; a copy already made by an earlier run is kept (it is
    /// the original).
    KeepUnitFiles,
    /// `put_back_unit_files UNIT_FILE ENV_FILE SUFFIX` (K3s): make the unit
    /// file and env file byte-equal to the copies `keep_unit_files` made
    /// (ExecStart flags, K3S_URL, K3S_TOKEN as they were), then
    /// `systemctl daemon-reload`.
    PutBackUnitFiles,
    /// `check_k3s_artifacts DIR ARCH TARGET` (K3s air-gap): install.sh,
    /// the binary of ARCH (`k3s`, `k3s-arm64`, `k3s-s390x`) and
    /// sha256sum-ARCH.txt are in DIR; every listed file present matches; the
    /// binary is listed and says it is TARGET; image archives present are listed.
    CheckK3sArtifacts,
    /// `install_k3s VERSION TYPE BIN [ARTIFACTS] [ARCH]` (K3s): run K3s's
    /// install script with INSTALL_K3S_EXEC=TYPE, INSTALL_K3S_SKIP_ENABLE and
    /// INSTALL_K3S_SKIP_START (nothing starts before its step) and
    /// INSTALL_K3S_BIN_DIR (BIN's folder): online with INSTALL_K3S_VERSION;
    /// with ARTIFACTS, the binary of ARCH is first put at BIN (checked
    /// against sha256sum-ARCH.txt) and INSTALL_K3S_SKIP_DOWNLOAD=true.
    InstallK3s,
    /// `check_rpm_target TYPE VER` (read-only): rke2-TYPE and rke2-common
    /// are installed from RPMs (versions printed, rke2-selinux's too), and
    /// every rke2 package installed is available at VER (the RPM form of the
    /// version: `1.29.3~rke2r1`) from the repositories configured now
    /// (`dnf list --showduplicates --available`, EL7 `yum list`, `zypper
    /// search -s --match-exact`); refuses with the repository fix.
    CheckRpmTarget,
    /// `install_rpm TYPE VER`: downgrade rke2-TYPE (and the other of
    /// rke2-server/rke2-agent if installed) with rke2-common to VER and the
    /// release the repositories hold, in one transaction: `dnf downgrade -y`,
    /// EL7 `yum downgrade -y`, `zypper --non-interactive install
    /// --oldpackage`; stops with the command on a transactional-update host.
    InstallRpm,
    /// `check_rpm_versions TYPE VER`: `rpm -q` shows every rke2 package
    /// installed at VER (rke2-selinux printed).
    CheckRpmVersions,
    /// `install_airgap ARTIFACTS ARCH TYPE IMAGES_DIR [PREFIX]`: `sh
    /// ARTIFACTS/install.sh` with INSTALL_RKE2_ARTIFACT_PATH,
    /// INSTALL_RKE2_TYPE, INSTALL_RKE2_AGENT_IMAGES_DIR (install.sh's default
    /// ignores the data dir) and INSTALL_RKE2_TAR_PREFIX when PREFIX is given.
    InstallAirgap,
    /// `install_images ARTIFACTS ARCH IMAGES_DIR`: copy every image archive
    /// listed in `sha256sum-ARCH.txt` that ARTIFACTS holds into IMAGES_DIR,
    /// each copy checked against its hash (install.sh moves only the main one).
    InstallImages,
    /// `check_images ARTIFACTS ARCH IMAGES_DIR`: every image archive of the
    /// target is in IMAGES_DIR and matches its hash.
    CheckImages,
    /// `move_images_aside IMAGES_DIR SUFFIX`: move `rke2-images*` archives and
    /// `.cache.json` from IMAGES_DIR into `IMAGES_DIR.SUFFIX/`.
    MoveImagesAside,
    /// `move_manifests_aside MANIFESTS_DIR DATA_DIR SUFFIX`: move the chart
    /// manifests RKE2 wrote (named like a chart in `DATA_DIR/data/*/charts/`)
    /// into `MANIFESTS_DIR.SUFFIX/`, never a HelmChartConfig (RKE2 writes its
    /// own back at start).
    MoveManifestsAside,
    /// `move_aside PATH SUFFIX`: rename PATH to `PATH.SUFFIX`; a re-run after
    /// the move says so instead of failing.
    MoveAside,
    /// `put_token SAVED DEST SUFFIX`: make DEST hold the saved token (the old
    /// DEST is moved aside if it differs); never prints the token.
    PutToken,
    /// `cluster_reset BIN RESTORE_PATH TOKEN_FILE UNIT UNIT_ENV FLAG...`: `BIN
    /// server --cluster-reset --cluster-reset-restore-path=RESTORE_PATH
    /// FLAG...` under `timeout` (`REWIND_RESET_TIMEOUT`, default 1800 s), with
    /// the variables of UNIT's environment files and RKE2_TOKEN read from
    /// TOKEN_FILE (empty: none); success is exit 0 and the "restart without
    /// --cluster-reset flag now" message.
    ClusterReset,
    /// `start_unit UNIT`: `systemctl start --no-block UNIT`, then poll
    /// `systemctl is-active` until active (`REWIND_START_TIMEOUT`, default 900 s).
    StartUnit,
    /// `restore_sqlite BACKUP DB SUFFIX`: move DB and its -wal/-shm/-journal
    /// aside, copy BACKUP in through a temporary name, check the copy.
    RestoreSqlite,
    /// `save_postgres HOST PORT USER DATABASE COPY`: keep the current
    /// DATABASE in COPY before it is dropped: `pg_dump -Fc` (umask 077) into
    /// `COPY.partial`, checked like the backup (`pg_restore -l`, `pg_restore
    /// -f /dev/null`), then renamed. An existing COPY (an earlier run's) is
    /// kept and never overwritten; a missing DATABASE leaves nothing to keep.
    SavePostgres,
    /// `save_mysql HOST PORT USER DATABASE COPY`: the same with `mysqldump`
    /// (or `mariadb-dump`) `--single-transaction --routines --triggers`,
    /// checked for the dump header and the `-- Dump completed` trailer.
    SaveMysql,
    /// `restore_postgres FILE HOST PORT USER DATABASE [COPY]`: drop and
    /// recreate DATABASE from the `pg_dump -Fc` archive (`pg_restore --clean
    /// --if-exists --create`; unless USER is a superuser, `--no-owner`, and
    /// `--no-acl` when the archive holds GRANTs made by other roles), then
    /// check the `kine` table is not empty. Empty PORT/USER
    /// mean the client's default; the password comes from PGPASSWORD or
    /// ~/.pgpass. COPY (from `save_postgres`) is named in the failure hint.
    RestorePostgres,
    /// `restore_mysql FILE HOST PORT USER DATABASE [COPY]`: drop DATABASE,
    /// create it, replay the dump, then check the `kine` table is not empty.
    /// The password comes from MYSQL_PWD or an option file. COPY (from
    /// `save_mysql`) is named in the failure hint.
    RestoreMysql,
    /// `verify_cluster KUBECONFIG TARGET NODE...`: wait (`REWIND_VERIFY_TIMEOUT`,
    /// default 900 s) until every NODE is Ready at TARGET, uncordon what
    /// `drain_nodes` drained, and list node objects and node-password secrets
    /// that do not belong to the plan.
    VerifyCluster,
    /// `suspend_upgrades KUBECONFIG TARGET MANAGED`: scale every
    /// system-upgrade-controller deployment (any namespace) to 0, recording
    /// each with its replicas in the state folder (`suc-scaled`); list the
    /// Plans (plans.upgrade.cattle.io) with their version or channel, warning
    /// about those not at TARGET; without the CRD, say so and succeed. Reports
    /// Rancher's cluster agent, warning unless MANAGED is `true`. An API error
    /// stops the step with the command.
    SuspendUpgrades,
    /// `check_upgrades KUBECONFIG TARGET`: fail if a system-upgrade-controller
    /// replica runs while a Plan targets another RKE2 version than TARGET;
    /// list such Plans with the commands that delete or pin them, and what
    /// `suspend_upgrades` scaled to 0 with the command that scales it back.
    CheckUpgrades,
    // ---- RKE1 / Rancher HA (docker, rke1 and rancher fragments) -----------
    /// `need_docker`: the docker daemon answers (`docker ps`).
    NeedDocker,
    /// `need_containers NAME...`: every NAME is a running container (a
    /// role's component that `rke up` must have started).
    NeedContainers,
    /// `need_no_containers NAME...`: no container (running or exited) has
    /// one of these names; a leftover makes rke reuse its stale output.
    NeedNoContainers,
    /// `restart_containers NAME...`: `docker restart NAME...`; every NAME
    /// must be running (checked again first).
    RestartContainers,
    /// `restart_matching_containers WORD`: `docker restart` of the running
    /// containers whose name contains WORD (pod sandboxes `k8s_POD_*`
    /// excepted); none is not an error.
    RestartMatchingContainers,
    /// `rke1_check_workstation BIN CONFIG STATE KUBECONFIG SOURCE S3`: the rke
    /// binary runs (`BIN --version`), the cluster file and its state file are
    /// readable; a missing kubeconfig is only reported (`rke up` writes it).
    /// The cluster file has s3backupconfig exactly when S3 is 1; when SOURCE
    /// is not empty, it is the first etcd node of the cluster file (the one
    /// rke restores from). Relative paths are relative to the working directory.
    Rke1CheckWorkstation,
    /// `rke1_check_snapshot DIR NAME HEX MODE`: `DIR/NAME.zip` (or `DIR/NAME`)
    /// is there and hashes to HEX (empty: not checked). MODE `source`: the
    /// copy the restore uses, a missing or different file fails; `peer`: a
    /// missing or different file is only reported (rke copies the source's).
    Rke1CheckSnapshot,
    /// `rke1_check_cluster_nodes CONFIG FAILED REPLACEMENT BLOCK`: the cluster
    /// file has an `address:` REPLACEMENT and none FAILED; otherwise prints
    /// BLOCK (the nodes list to paste) and fails.
    Rke1CheckClusterNodes,
    /// `rke1_snapshot_from_s3 DIR FILE URL ENDPOINT REGION HEX`: `s3cmd get
    /// URL` into `DIR/FILE` through a temporary name, checking HEX before the
    /// rename. Empty ENDPOINT/REGION: s3cmd's defaults; `REWIND_S3CFG` names
    /// an s3cmd configuration file; keys come from the environment.
    Rke1SnapshotFromS3,
    /// `rke1_snapshot_from_file DIR FILE SOURCE HEX`: copy SOURCE into
    /// `DIR/FILE` the same way.
    Rke1SnapshotFromFile,
    /// `rke1_snapshot_by_hand DIR NAME HEX`: create DIR; `DIR/NAME.zip` (or
    /// `DIR/NAME`) must have been copied there by the operator (and hash to HEX).
    Rke1SnapshotByHand,
    /// `rke1_snapshot_save BIN CONFIG NAME`: `BIN etcd snapshot-save --name
    /// NAME --config CONFIG`; a refusal (etcd down) is a warning, not a failure.
    Rke1SnapshotSave,
    /// `rke1_snapshot_restore BIN CONFIG NAME`: `BIN etcd snapshot-restore
    /// --name NAME --config CONFIG`.
    Rke1SnapshotRestore,
    /// `rke1_up BIN CONFIG`: `BIN up --config CONFIG`.
    Rke1Up,
    /// `rancher_check_deployment KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER`:
    /// the API answers and the deployment has that container; prints its image.
    RancherCheckDeployment,
    /// `rancher_set_image KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER TAG`:
    /// `kubectl set image` of the container to its current repository (so a
    /// private registry is kept) at TAG, then `rollout status` bounded by
    /// `REWIND_ROLLOUT_TIMEOUT` (default 600 s).
    RancherSetImage,
    /// `rancher_verify KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER TAG NODE...`:
    /// wait (`REWIND_VERIFY_TIMEOUT`, default 900 s) until the container's
    /// image has TAG with the rollout complete, and every NODE (`NAME[,NAME]`:
    /// address and host name) is a Ready node running the same kubelet
    /// version as the others.
    RancherVerify,
    // ---- capture (rewind prepare: before an upgrade) -----------------------
    /// `capture_start DIR FILE HEAD`: create DIR (root only) and the folder
    /// of FILE, and begin the facts with HEAD (the start of a JSON object).
    CaptureStart,
    /// `capture_version BIN`: record the version `BIN --version` prints.
    CaptureVersion,
    /// `capture_config CONFIG_DIR UNIT UNIT_ENV`: record whether `server:`
    /// (or `<ENV>_URL`) is set and where the token the product uses comes
    /// from.
    CaptureConfig,
    /// `capture_token TOKEN SAVED SUFFIX`: copy the server token to SAVED
    /// (root only; an existing SAVED moved aside to SAVED.SUFFIX) and record
    /// SAVED and its sha256; never printed.
    CaptureToken,
    /// `capture_etcd BIN DATA_DIR NAME UNIT FLAG...`: `BIN etcd-snapshot
    /// save --name NAME FLAG...` (asking the server running as UNIT; FLAG:
    /// the S3 upload), find the file it wrote, check its trailer, record it.
    CaptureEtcd,
    /// `capture_sqlite DB COPY SUFFIX`: `sqlite3 DB .backup` into COPY
    /// (an existing COPY moved aside to COPY.SUFFIX), checked with `PRAGMA
    /// integrity_check`, recorded.
    CaptureSqlite,
    /// `capture_backup KIND FILE`: record FILE as this host's backup.
    CaptureBackup,
    /// `capture_rke1_snapshot BIN CONFIG NAME`: `BIN etcd snapshot-save
    /// --name NAME --config CONFIG`; a refusal is a failure.
    CaptureRke1Snapshot,
    /// `capture_rke1_file DIR NAME`: record `DIR/NAME.zip` (or `DIR/NAME`).
    CaptureRke1File,
    /// `capture_finish`: write the facts file.
    CaptureFinish,
}

impl Func {
    /// The shell function's name.
    pub fn name(self) -> &'static str {
        match self {
            Func::NeedTools => "need_tools",
            Func::NeedEnv => "need_env",
            Func::NeedFile => "need_file",
            Func::NeedDir => "need_dir",
            Func::CheckSha256 => "check_sha256",
            Func::CheckEtcdSnapshot => "check_etcd_snapshot",
            Func::CheckRke2Version => "check_rke2_version",
            Func::CheckInstalledVersion => "check_installed_version",
            Func::CheckToken => "check_token",
            Func::CheckArtifacts => "check_artifacts",
            Func::CheckNoServerEntry => "check_no_server_entry",
            Func::CheckServerEntry => "check_server_entry",
            Func::CheckDataDir => "check_data_dir",
            Func::CheckNodeName => "check_node_name",
            Func::CheckTokenSource => "check_token_source",
            Func::StopLeftovers => "stop_leftovers",
            Func::CheckRoom => "check_room",
            Func::CheckPgArchive => "check_pg_archive",
            Func::CheckMysqlDump => "check_mysql_dump",
            Func::CheckPgRestore => "check_pg_restore",
            Func::CheckMysqlRestore => "check_mysql_restore",
            Func::CheckSqliteDb => "check_sqlite_db",
            Func::DrainNodes => "drain_nodes",
            Func::StopRke2 => "stop_rke2",
            Func::CheckDataMounts => "check_data_mounts",
            Func::MovePodManifestsAside => "move_pod_manifests_aside",
            Func::EnableUnit => "enable_unit",
            Func::InstallOnline => "install_online",
            Func::CheckBinDir => "check_bin_dir",
            Func::CheckUnitFiles => "check_unit_files",
            Func::KeepUnitFiles => "keep_unit_files",
            Func::PutBackUnitFiles => "put_back_unit_files",
            Func::CheckK3sArtifacts => "check_k3s_artifacts",
            Func::InstallK3s => "install_k3s",
            Func::CheckRpmTarget => "check_rpm_target",
            Func::InstallRpm => "install_rpm",
            Func::CheckRpmVersions => "check_rpm_versions",
            Func::InstallAirgap => "install_airgap",
            Func::InstallImages => "install_images",
            Func::CheckImages => "check_images",
            Func::MoveImagesAside => "move_images_aside",
            Func::MoveManifestsAside => "move_manifests_aside",
            Func::MoveAside => "move_aside",
            Func::PutToken => "put_token",
            Func::ClusterReset => "cluster_reset",
            Func::StartUnit => "start_unit",
            Func::RestoreSqlite => "restore_sqlite",
            Func::SavePostgres => "save_postgres",
            Func::SaveMysql => "save_mysql",
            Func::RestorePostgres => "restore_postgres",
            Func::RestoreMysql => "restore_mysql",
            Func::VerifyCluster => "verify_cluster",
            Func::CheckRancherAgent => "check_rancher_agent",
            Func::SuspendUpgrades => "suspend_upgrades",
            Func::CheckUpgrades => "check_upgrades",
            Func::NeedDocker => "need_docker",
            Func::NeedContainers => "need_containers",
            Func::NeedNoContainers => "need_no_containers",
            Func::RestartContainers => "restart_containers",
            Func::RestartMatchingContainers => "restart_matching_containers",
            Func::Rke1CheckWorkstation => "rke1_check_workstation",
            Func::Rke1CheckSnapshot => "rke1_check_snapshot",
            Func::Rke1CheckClusterNodes => "rke1_check_cluster_nodes",
            Func::Rke1SnapshotFromS3 => "rke1_snapshot_from_s3",
            Func::Rke1SnapshotFromFile => "rke1_snapshot_from_file",
            Func::Rke1SnapshotByHand => "rke1_snapshot_by_hand",
            Func::Rke1SnapshotSave => "rke1_snapshot_save",
            Func::Rke1SnapshotRestore => "rke1_snapshot_restore",
            Func::Rke1Up => "rke1_up",
            Func::RancherCheckDeployment => "rancher_check_deployment",
            Func::RancherSetImage => "rancher_set_image",
            Func::RancherVerify => "rancher_verify",
            Func::CaptureStart => "capture_start",
            Func::CaptureVersion => "capture_version",
            Func::CaptureConfig => "capture_config",
            Func::CaptureToken => "capture_token",
            Func::CaptureEtcd => "capture_etcd",
            Func::CaptureSqlite => "capture_sqlite",
            Func::CaptureBackup => "capture_backup",
            Func::CaptureRke1Snapshot => "capture_rke1_snapshot",
            Func::CaptureRke1File => "capture_rke1_file",
            Func::CaptureFinish => "capture_finish",
        }
    }

    /// The `REWIND_*` variables this operation reads besides those every
    /// script reads (see `plan::env`); the runbook lists them.
    pub fn env(self) -> &'static [&'static str] {
        match self {
            Func::ClusterReset => &["REWIND_RESET_TIMEOUT"],
            Func::StartUnit => &["REWIND_START_TIMEOUT"],
            Func::StopRke2 | Func::StopLeftovers => &["REWIND_STOP_TIMEOUT"],
            Func::VerifyCluster | Func::RancherVerify => &["REWIND_VERIFY_TIMEOUT"],
            Func::InstallOnline | Func::InstallK3s => &["REWIND_INSTALL_SCRIPT_URL"],
            Func::RancherSetImage => &["REWIND_ROLLOUT_TIMEOUT"],
            Func::Rke1SnapshotFromS3 => &["REWIND_S3CFG"],
            _ => &[],
        }
    }

    /// The library fragment (`templates/lib/<fragment>.sh`) that defines it.
    pub fn fragment(self) -> &'static str {
        match self {
            Func::NeedTools
            | Func::NeedEnv
            | Func::NeedFile
            | Func::NeedDir
            | Func::CheckSha256
            | Func::CheckRoom
            | Func::MoveAside => "files",
            Func::CheckEtcdSnapshot => "etcd",
            Func::CheckRke2Version
            | Func::CheckInstalledVersion
            | Func::StopRke2
            | Func::CheckDataMounts
            | Func::MovePodManifestsAside
            | Func::EnableUnit
            | Func::StartUnit
            | Func::CheckNoServerEntry
            | Func::CheckServerEntry
            | Func::CheckDataDir
            | Func::CheckNodeName
            | Func::CheckTokenSource
            | Func::StopLeftovers
            | Func::ClusterReset => "rke2",
            Func::CheckToken | Func::PutToken => "token",
            Func::CheckArtifacts
            | Func::InstallOnline
            | Func::InstallAirgap
            | Func::CheckRpmTarget
            | Func::InstallRpm
            | Func::CheckRpmVersions
            | Func::InstallImages
            | Func::CheckImages
            | Func::MoveImagesAside
            | Func::MoveManifestsAside => "install",
            Func::CheckPgArchive
            | Func::CheckPgRestore
            | Func::SavePostgres
            | Func::RestorePostgres => "postgres",
            Func::CheckMysqlDump
            | Func::CheckMysqlRestore
            | Func::SaveMysql
            | Func::RestoreMysql => "mysql",
            Func::CheckSqliteDb | Func::RestoreSqlite => "sqlite",
            Func::DrainNodes
            | Func::VerifyCluster
            | Func::CheckRancherAgent
            | Func::SuspendUpgrades
            | Func::CheckUpgrades => "kube",
            Func::NeedDocker
            | Func::NeedContainers
            | Func::NeedNoContainers
            | Func::RestartContainers
            | Func::RestartMatchingContainers => "docker",
            Func::Rke1CheckWorkstation
            | Func::Rke1CheckSnapshot
            | Func::Rke1CheckClusterNodes
            | Func::Rke1SnapshotFromS3
            | Func::Rke1SnapshotFromFile
            | Func::Rke1SnapshotByHand
            | Func::Rke1SnapshotSave
            | Func::Rke1SnapshotRestore
            | Func::Rke1Up => "rke1",
            Func::RancherCheckDeployment | Func::RancherSetImage | Func::RancherVerify => "rancher",
            Func::CaptureStart
            | Func::CaptureVersion
            | Func::CaptureConfig
            | Func::CaptureToken
            | Func::CaptureEtcd
            | Func::CaptureSqlite
            | Func::CaptureBackup
            | Func::CaptureRke1Snapshot
            | Func::CaptureRke1File
            | Func::CaptureFinish => "capture",
            Func::CheckBinDir
            | Func::CheckUnitFiles
            | Func::KeepUnitFiles
            | Func::PutBackUnitFiles
            | Func::CheckK3sArtifacts
            | Func::InstallK3s => "k3s",
        }
    }
}

impl Func {
    /// The other fragments whose functions this one calls (only the capture
    /// functions do: a rollback's operations each live in one fragment).
    pub fn calls(self) -> &'static [&'static str] {
        match self {
            Func::CaptureEtcd => &["etcd"],
            _ => &[],
        }
    }

    /// The parameters, as the function's usage line in `templates/lib/`
    /// and its doc comment here name them: `NAME` one word, `[NAME]` an
    /// optional last word, `NAME...` any number of words. [`Op::new`] checks
    /// every operation against it, and a test checks both usage lines.
    pub fn params(self) -> &'static str {
        match self {
            Func::NeedTools => "TOOL...",
            Func::NeedEnv => "VAR...",
            Func::NeedFile => "PATH",
            Func::NeedDir => "PATH",
            Func::CheckSha256 => "PATH HEX",
            Func::CheckEtcdSnapshot => "PATH",
            Func::CheckRke2Version => "BIN CURRENT TARGET",
            Func::CheckInstalledVersion => "BIN TARGET",
            Func::CheckToken => "FILE [HEX]",
            Func::CheckArtifacts => "DIR ARCH [TARGET]",
            Func::CheckNoServerEntry => "CONFIG_DIR UNIT UNIT_ENV",
            Func::CheckServerEntry => "CONFIG_DIR UNIT UNIT_ENV",
            Func::CheckNodeName => "CONFIG_DIR UNIT UNIT_ENV NAME",
            Func::CheckDataDir => "CONFIG_DIR UNIT UNIT_ENV DATA_DIR",
            Func::CheckTokenSource => "CONFIG_DIR UNIT UNIT_ENV SAVED",
            Func::StopLeftovers => "DATA_DIR BIN",
            Func::CheckRoom => "FILE DIR",
            Func::CheckPgArchive => "FILE",
            Func::CheckMysqlDump => "FILE",
            Func::CheckPgRestore => "FILE HOST PORT USER DATABASE COPY",
            Func::CheckMysqlRestore => "FILE HOST PORT USER DATABASE COPY",
            Func::CheckSqliteDb => "FILE",
            Func::CheckRancherAgent => "MANAGED TARGET MARKER...",
            Func::DrainNodes => "KUBECONFIG TIMEOUT NODE...",
            Func::StopRke2 => "DATA_DIR UNIT BIN",
            Func::CheckDataMounts => "DATA_DIR",
            Func::MovePodManifestsAside => "DIR SUFFIX",
            Func::EnableUnit => "UNIT",
            Func::InstallOnline => "VERSION TYPE METHOD [PREFIX]",
            Func::CheckBinDir => "BIN",
            Func::CheckUnitFiles => "UNIT UNIT_FILE ENV_FILE",
            Func::KeepUnitFiles => "UNIT_FILE ENV_FILE SUFFIX",
            Func::PutBackUnitFiles => "UNIT_FILE ENV_FILE SUFFIX",
            Func::CheckK3sArtifacts => "DIR ARCH TARGET",
            Func::InstallK3s => "VERSION TYPE BIN [ARTIFACTS] [ARCH]",
            Func::CheckRpmTarget => "TYPE VER",
            Func::InstallRpm => "TYPE VER",
            Func::CheckRpmVersions => "TYPE VER",
            Func::InstallAirgap => "ARTIFACTS ARCH TYPE IMAGES_DIR [PREFIX]",
            Func::InstallImages => "ARTIFACTS ARCH IMAGES_DIR",
            Func::CheckImages => "ARTIFACTS ARCH IMAGES_DIR",
            Func::MoveImagesAside => "IMAGES_DIR SUFFIX",
            Func::MoveManifestsAside => "MANIFESTS_DIR DATA_DIR SUFFIX",
            Func::MoveAside => "PATH SUFFIX",
            Func::PutToken => "SAVED DEST SUFFIX",
            Func::ClusterReset => "BIN RESTORE_PATH TOKEN_FILE UNIT UNIT_ENV FLAG...",
            Func::StartUnit => "UNIT",
            Func::RestoreSqlite => "BACKUP DB SUFFIX",
            Func::SavePostgres => "HOST PORT USER DATABASE COPY",
            Func::SaveMysql => "HOST PORT USER DATABASE COPY",
            Func::RestorePostgres => "FILE HOST PORT USER DATABASE [COPY]",
            Func::RestoreMysql => "FILE HOST PORT USER DATABASE [COPY]",
            Func::VerifyCluster => "KUBECONFIG TARGET NODE...",
            Func::SuspendUpgrades => "KUBECONFIG TARGET MANAGED",
            Func::CheckUpgrades => "KUBECONFIG TARGET",
            Func::NeedDocker => "",
            Func::NeedContainers => "NAME...",
            Func::NeedNoContainers => "NAME...",
            Func::RestartContainers => "NAME...",
            Func::RestartMatchingContainers => "WORD",
            Func::Rke1CheckWorkstation => "BIN CONFIG STATE KUBECONFIG SOURCE S3",
            Func::Rke1CheckSnapshot => "DIR NAME HEX MODE",
            Func::Rke1CheckClusterNodes => "CONFIG FAILED REPLACEMENT BLOCK",
            Func::Rke1SnapshotFromS3 => "DIR FILE URL ENDPOINT REGION HEX",
            Func::Rke1SnapshotFromFile => "DIR FILE SOURCE HEX",
            Func::Rke1SnapshotByHand => "DIR NAME HEX",
            Func::Rke1SnapshotSave => "BIN CONFIG NAME",
            Func::Rke1SnapshotRestore => "BIN CONFIG NAME",
            Func::Rke1Up => "BIN CONFIG",
            Func::RancherCheckDeployment => "KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER",
            Func::RancherSetImage => "KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER TAG",
            Func::RancherVerify => "KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER TAG NODE...",
            Func::CaptureStart => "DIR FILE HEAD",
            Func::CaptureVersion => "BIN",
            Func::CaptureConfig => "CONFIG_DIR UNIT UNIT_ENV",
            Func::CaptureToken => "TOKEN SAVED SUFFIX",
            Func::CaptureEtcd => "BIN DATA_DIR NAME UNIT FLAG...",
            Func::CaptureSqlite => "DB COPY SUFFIX",
            Func::CaptureBackup => "KIND FILE",
            Func::CaptureRke1Snapshot => "BIN CONFIG NAME",
            Func::CaptureRke1File => "DIR NAME",
            Func::CaptureFinish => "",
        }
    }
}

/// Refuses (as a bug of the planner) an operation whose words do not fit
/// its function's parameters: their count, and the shape of the few kinds
/// a wrong order would swap (a sha256, a moved-aside suffix, a flag, a port).
fn check_args(func: Func, args: &[Word]) {
    let params: Vec<&str> = func.params().split_whitespace().collect();
    let variadic = params.last().is_some_and(|p| p.ends_with("..."));
    let optional = params.iter().filter(|p| p.starts_with('[')).count();
    let required = params.len() - optional - usize::from(variadic);
    let fits = args.len() >= required && (variadic || args.len() <= params.len());
    assert!(
        fits,
        "bug in rewind: {} takes `{}`, not {} words: {args:?}",
        func.name(),
        func.params(),
        args.len()
    );
    for (param, arg) in params.iter().zip(args) {
        let name = param.trim_matches(['[', ']']).trim_end_matches("...");
        let ok = match name {
            // Empty: no hash in the plan (the function then says so).
            "HEX" => {
                arg.is_empty()
                    || arg.len() == 64
                        && arg
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }
            "SUFFIX" => arg.starts_with("rewind-"),
            "MANAGED" => matches!(&**arg, "true" | "false"),
            // Empty: the client's default port.
            "PORT" => arg.bytes().all(|b| b.is_ascii_digit()),
            _ => true,
        };
        assert!(
            ok,
            "bug in rewind: {}: `{arg}` is not a {name} ({})",
            func.name(),
            func.params()
        );
    }
}

/// One line of a script: a library function and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Op {
    /// The function.
    pub func: Func,
    /// Its arguments, in order; each is printed as one shell word.
    pub args: Vec<Word>,
}

/// An argument. Shared: at 5,000 nodes the same few dozen paths and versions
/// stand in hundreds of thousands of operations, and one allocation each
/// would be most of the memory `compile` needs (docs/performance.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Word(Arc<str>);

impl std::ops::Deref for Word {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Word {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Word {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Word {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Word {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Display for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

thread_local! {
    /// Every argument seen on this thread, so that equal words share one
    /// allocation. Arguments come from plans, so the set stays small (the
    /// distinct paths, versions and names of the plans compiled here).
    static WORDS: RefCell<HashSet<Word>> = RefCell::new(HashSet::new());
}

/// The shared copy of `text`.
fn word(text: &str) -> Word {
    WORDS.with(|w| {
        let mut w = w.borrow_mut();
        if let Some(found) = w.get(text) {
            return found.clone();
        }
        let new = Word(Arc::from(text));
        w.insert(new.clone());
        new
    })
}

impl Op {
    /// Builds an operation.
    pub fn new<I, T>(func: Func, args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let args: Vec<Word> = args.into_iter().map(|a| word(a.as_ref())).collect();
        check_args(func, &args);
        Self { func, args }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant of `Func` with the first `code` of its doc comment
    /// (its usage line), read from this file.
    fn usage_lines() -> Vec<(Func, String)> {
        let source = include_str!("ops.rs");
        let start = source.find("pub enum Func {").expect("the enum");
        let body = &source[start..start + source[start..].find("\n}\n").expect("its end")];
        let mut doc = String::new();
        let mut out = Vec::new();
        for line in body.lines().skip(1).map(str::trim) {
            if let Some(d) = line.strip_prefix("///") {
                doc.push_str(d.trim());
                doc.push(' ');
            } else if let Some(variant) = line.strip_suffix(',').filter(|v| {
                v.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && v.chars().all(|c| c.is_ascii_alphanumeric())
            }) {
                let snake: String = variant
                    .chars()
                    .enumerate()
                    .flat_map(|(i, c)| {
                        let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
                        sep.into_iter()
                            .chain(std::iter::once(c.to_ascii_lowercase()))
                    })
                    .collect();
                let func: Func = serde_json::from_str(&format!("\"{snake}\""))
                    .unwrap_or_else(|e| panic!("{variant}: {e}"));
                let usage = doc
                    .split('`')
                    .nth(1)
                    .unwrap_or_else(|| panic!("{variant}: its doc comment starts with no `usage`"));
                out.push((func, usage.to_owned()));
                doc.clear();
            }
        }
        out
    }

    #[test]
    fn params_are_those_of_the_doc_comment_and_of_the_library() {
        let all = usage_lines();
        assert!(all.len() > 60, "read {} functions only", all.len());
        let mut problems = Vec::new();
        for (func, usage) in all {
            let want = format!("{} {}", func.name(), func.params());
            let want = want.trim_end();
            if usage != want {
                problems.push(format!(
                    "the doc comment of {func:?} says `{usage}`, not `{want}`"
                ));
            }
            let library = crate::templates::library(func.fragment());
            if !library.contains(&format!("\n# {want}:")) {
                problems.push(format!(
                    "templates/lib/{}.sh has no usage line `# {want}:`",
                    func.fragment()
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn a_wrong_number_or_shape_of_words_is_a_bug() {
        let ok = Op::new(Func::CheckSha256, ["/p", &"a".repeat(64)]);
        assert_eq!(ok.args.len(), 2);
        Op::new(Func::CheckToken, ["/t"]);
        Op::new(Func::NeedTools, ["a", "b", "c"]);
        for bad in [
            std::panic::catch_unwind(|| Op::new(Func::CheckSha256, ["/p"])),
            std::panic::catch_unwind(|| Op::new(Func::CheckSha256, ["/p", "xyz"])),
            std::panic::catch_unwind(|| Op::new(Func::MoveAside, ["/p", "suffix"])),
            std::panic::catch_unwind(|| Op::new(Func::CheckToken, ["/t", "", "x"])),
        ] {
            assert!(bad.is_err());
        }
    }
}
