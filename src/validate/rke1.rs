//! Rules for `distribution = "rke1"` plans (Rancher HA on RKE1, PRODUCT.md §1.2).

use super::TargetOverride;
use super::fields::Ctx;
use crate::diagnostic::Diagnostic;
use crate::model::Rke1;
use crate::spec::Spec;

/// Validates a Rancher-on-RKE1 plan.
pub(super) fn validate(
    spec: &Spec,
    cx: &mut Ctx,
    _to: TargetOverride<'_>,
    _checked: &mut Vec<String>,
) -> Option<Rke1> {
    cx.push(
        Diagnostic::error(
            "distribution",
            spec.cluster
                .as_ref()
                .and_then(|c| c.get_ref().distribution.as_ref().map(|d| d.span())),
            "rke1 plans are not supported by this build of rewind",
        )
        .help("see issue 4"),
    );
    None
}
