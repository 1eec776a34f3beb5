//! `rewind init`: a commented starting plan for one datastore, online or
//! air-gapped. Every value rewind cannot guess is a `<FILL: …>` marker that
//! `rewind check` rejects (it is not a version, path or host name), so the
//! first `check` lists exactly what is left to fill in; once filled in, the
//! plan passes.

use crate::templates;

/// The start of every value the user must replace.
pub const FILL: &str = "<FILL: ";

/// The datastores `init` knows.
pub const DATASTORES: &[&str] = &["etcd", "sqlite", "postgres", "mysql"];

/// The starting plan for `datastore` (one of [`DATASTORES`]).
pub fn plan(datastore: &str, airgap: bool) -> String {
    assert!(
        DATASTORES.contains(&datastore),
        "bug in rewind: unknown datastore {datastore}"
    );
    templates::environment()
        .get_template("init.toml")
        .and_then(|t| t.render(minijinja::context! { datastore, airgap }))
        .unwrap_or_else(|e| panic!("bug in rewind: init template: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_toml_with_markers() {
        for ds in DATASTORES {
            for airgap in [false, true] {
                let text = plan(ds, airgap);
                assert!(text.contains(FILL), "{ds}");
                assert!(
                    toml::from_str::<toml::Table>(&text).is_ok(),
                    "{ds} {airgap}\n{text}"
                );
                assert_eq!(text.contains("artifacts ="), airgap);
            }
        }
    }
}
