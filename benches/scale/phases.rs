//! Where the time of `compile` goes, measured in-process stage by stage:
//! read, parse, validate, plan, render, hash, write. The stages run exactly
//! as `rewind compile` runs them, only with a clock between them.

use std::time::{Duration, Instant};

use camino::Utf8Path;
use rewind::{bundle, plan, render, spec, validate};

/// The stages, in pipeline order.
pub const STAGES: [&str; 7] = [
    "read", "parse", "validate", "plan", "render", "hash", "write",
];

/// Runs the pipeline once on `plan_path`, writing into `out` (which must not
/// exist), and returns the time of each stage in [`STAGES`] order.
pub fn once(plan_path: &Utf8Path, out: &Utf8Path) -> [Duration; 7] {
    let mut t = [Duration::ZERO; 7];
    let mut clock = Instant::now();
    let mut lap = |i: usize, t: &mut [Duration; 7]| {
        t[i] = clock.elapsed();
        clock = Instant::now();
    };
    let source = spec::load(plan_path).expect("readable plan");
    lap(0, &mut t);
    let parsed = spec::parse(&source).expect("plan parses");
    lap(1, &mut t);
    let model = validate::validate(&parsed, &source, None)
        .model
        .expect("plan is valid");
    lap(2, &mut t);
    let plan = plan::plan(&model);
    lap(3, &mut t);
    // render::bundle seals the bundle (hashes every file): time the hashing
    // on its own and count it under "hash", not "render".
    let bundle = render::bundle(&plan).expect("plan renders");
    lap(4, &mut t);
    let sums = bundle.checksums();
    lap(5, &mut t);
    std::hint::black_box(sums);
    t[4] = t[4].saturating_sub(t[5]);
    bundle::write(&bundle, out, false).expect("bundle written");
    lap(6, &mut t);
    t
}
