//! The sandbox: runs generated scripts exactly as an operator would, on
//! fake hosts that cannot harm this machine.
//!
//! A [`World`](world::World) is one rollback: a bundle (a golden bundle, or
//! one compiled in memory), one [`Host`](host::Host) per node plus the
//! workstation, each seeded as a real RKE2 host would be ([`seed`]), and the
//! stand-ins for what cannot run here ([`stubs`]: `rke2`, `rke2-killall.sh`,
//! `systemctl`, `kubectl`, the install scripts, the database clients). Every
//! run of a script is a fresh private mount, UTS and PID namespace
//! (`unshare`) in which the host's root is an overlay of this machine's `/`
//! with the host's own disk on top (`enter.sh`): everything real is used
//! (sh, coreutils, sha256sum, tar, unzip, sqlite3, pg_restore -l...), every
//! write lands on the host's disk, and the host name is the node's. The
//! scripts contain no test switches: what the harness controls is the
//! environment (`REWIND_*`, PATH with the stand-ins first), the files on
//! each host, and the exit codes of the stand-ins.
//!
//! The stand-ins record every call, from every host, in one journal
//! ([`stubs::Call`]), which is how tests assert the order of commands across
//! hosts. Faults are injected per call ([`stubs::Fault`]), also into real
//! tools (`mv`, `cp`, `curl`...) through a shim put first on PATH.
//!
//! Needs root (mount namespaces, overlayfs, chroot) and a tmpfs for the
//! worlds (`/dev/shm`, or `REWIND_SANDBOX_DIR`): overlayfs refuses an upper
//! layer on the filesystem of its lower layer `/`. A world takes 1 to 15 MB
//! there (the 50-node bundle), and two run at a time: give it 128 MB.

pub mod checks;
pub mod faults;
pub mod host;
pub mod rke1;
pub mod seed;
pub mod shells;
pub mod stubs;
pub mod words;
pub mod world;
