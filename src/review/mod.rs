//! The review tools: what a reviewer or an auditor runs on bundles, beside
//! the compile pipeline rather than in it. [`explain`] prints the procedure
//! a plan compiles to without writing anything; [`diff`] compares two
//! bundles as procedures (steps, hosts, scripts) for a pull request;
//! [`audit`] recompiles a folder of plans and checks each against its golden
//! bundle. They read bundles through `plan.json` ([`crate::manifest`]) and
//! draw with [`crate::mermaid`], and they never write a bundle.

pub mod audit;
pub mod diff;
pub mod explain;
