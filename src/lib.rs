//! rewind compiles a rollback plan for an RKE2 cluster (or a Rancher HA
//! install on RKE1) into a bundle of per-host POSIX shell scripts and a
//! runbook.
//!
//! The pipeline, one module per stage:
//!
//! 1. [`spec`] reads the TOML plan (the only reader of input files);
//! 2. [`validate`] checks it into a [`model::Model`], collecting every
//!    [`diagnostic::Diagnostic`];
//! 3. [`plan`] orders the steps and decides every operation of every script;
//! 4. [`render`] prints scripts, README, `plan.json` and `SHA256SUMS` through
//!    the [`templates`] (shell values quoted by [`shell`]);
//! 5. [`bundle`] writes the folder atomically (the only writer).
//!
//! [`app`] wires the stages to the command line.
#![deny(missing_docs)]

pub mod app;
pub mod audit;
pub mod bundle;
pub mod choice;
pub mod cli;
pub mod diagnostic;
pub mod diff;
pub mod escape;
pub mod golden;
pub mod init;
pub mod init_nodes;
pub mod init_rke;
pub mod interrupt;
pub mod mermaid;
pub mod model;
pub mod plan;
pub mod procedure;
pub mod render;
pub mod schema;
pub mod shell;
pub mod source;
pub mod spec;
pub mod templates;
pub mod validate;
pub mod verify;
pub mod version;
