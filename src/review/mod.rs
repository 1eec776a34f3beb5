//! The review tools: what a reviewer or an auditor runs on plans and
//! bundles, beside the compile pipeline rather than in it. [`explain`]
//! prints the procedure a plan compiles to without writing anything;
//! [`diff`] compares two bundles as procedures (steps, hosts, scripts) for a
//! pull request; [`audit`] recompiles a folder of plans and checks each
//! against its golden bundle ([`crate::golden`]). They compile through
//! [`crate::compiler`], read bundles through their `plan.json`
//! ([`crate::manifest`]), and never write a bundle.
//!
//! The Mermaid diagram they draw ([`crate::mermaid`]) is not here: the
//! README that `render` prints embeds it, and the pipeline uses nothing in
//! this folder.

pub mod audit;
pub mod diff;
pub mod explain;
