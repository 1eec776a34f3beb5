//! The capture steps of Rancher HA on RKE1: the workstation takes a named
//! etcd snapshot with `rke etcd snapshot-save`, then every etcd node records
//! the file rke left in its snapshot folder.

use super::{Cx, step};
use crate::model::Rke1;
use crate::plan::{Func, Host, Op, Step, script};

/// RKE1's snapshot folder on the etcd nodes.
const RKE1_SNAPSHOT_DIR: &str = "/opt/rke/etcd-snapshots";

pub(super) fn steps(cx: &Cx<'_>, r: &Rke1) -> Vec<Step> {
    let rke = &r.rke;
    let mut ws_act = vec![
        cx.start("workstation", "workstation"),
        Op::new(
            Func::CaptureRke1Snapshot,
            [rke.binary.as_str(), rke.config.as_str(), cx.name],
        ),
        Op::new(Func::CaptureFinish, Vec::<String>::new()),
    ];
    ws_act.shrink_to_fit();
    let mut steps = vec![step(
        "capture-snapshot",
        format!("Take the etcd snapshot {} before the upgrade", cx.name),
        false,
        vec![script(
            Host::Workstation,
            false,
            vec![
                Op::new(Func::NeedTools, [rke.binary.as_str()]),
                Op::new(Func::NeedFile, [rke.config.as_str()]),
            ],
            ws_act,
        )],
    )];
    let mut scripts = Vec::new();
    for n in r
        .nodes
        .iter()
        .filter(|n| n.has(crate::choice::Rke1Role::Etcd))
    {
        let folder = n.folder();
        let mut s = script(
            Host::Node(folder.to_owned()),
            true,
            vec![Op::new(Func::NeedDir, [RKE1_SNAPSHOT_DIR])],
            vec![
                cx.start(folder, "etcd"),
                Op::new(Func::CaptureRke1File, [RKE1_SNAPSHOT_DIR, cx.name]),
                Op::new(Func::CaptureFinish, Vec::<String>::new()),
            ],
        );
        s.addresses = vec![n.address.clone()];
        scripts.push(s);
    }
    steps.push(step(
        "capture-nodes",
        format!("Record the snapshot {} on every etcd node", cx.name),
        true,
        scripts,
    ));
    steps
}
