//! Runs one child process and measures it: wall-clock time from spawn to
//! exit, and the child's own CPU time and peak resident set size (from
//! `wait4`, so they are this child's figures, not totals over every child).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of a child cost.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Spawn to exit.
    pub wall: Duration,
    /// CPU time (user + system) of the child.
    pub cpu: Duration,
    /// Peak resident set size, bytes.
    pub max_rss: u64,
}

/// Runs `program args…` with no stdin and no stdout, and panics unless it
/// exits 0 (a benchmark of a failing command measures nothing).
///
/// The peak RSS of a child started this way includes what this process had
/// resident when it started the child (std spawns with a vfork-like clone,
/// and the kernel charges the shared memory to the child at exec): the
/// benchmark keeps itself small and reports the figure for `true`.
pub fn run(program: &Path, args: &[&str]) -> Run {
    let start = Instant::now();
    // Reaped below with wait4 (std's wait does not report resource usage).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our own child,
    // which `Child` never waits for once we have reaped it here.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    let wall = start.elapsed();
    assert_eq!(
        reaped,
        pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} {args:?} failed (wait status {status})",
        program.display()
    );
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Run {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    }
}

/// Flushes dirty pages, so that the writeback of one measured run does not
/// land inside the next one.
pub fn sync() {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Removes a folder if it exists.
pub fn remove(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", dir.display()),
    }
}

/// The median of some durations (the mean of the middle two for an even count).
pub fn median(xs: &[Duration]) -> Duration {
    assert!(!xs.is_empty(), "median of nothing");
    let mut v = xs.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// The median of some numbers.
pub fn median_f64(xs: &[f64]) -> f64 {
    assert!(!xs.is_empty(), "median of nothing");
    let mut v = xs.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

/// Total size in bytes and number of regular files under `dir`.
pub fn tree_size(dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable bundle") {
            let entry = entry.expect("readable entry");
            let ty = entry.file_type().expect("file type");
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() {
                bytes += entry.metadata().expect("metadata").len();
                files += 1;
            }
        }
    }
    (bytes, files)
}

/// The kind of filesystem `dir` is on (ext4, tmpfs, …), as the report names it.
pub fn filesystem(dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).expect("no NUL in path");
    // SAFETY: statfs fills in plain data for a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &raw mut st) } != 0 {
        return "unknown filesystem".into();
    }
    #[allow(clippy::unnecessary_cast)] // f_type's type differs between libcs
    match st.f_type as i64 {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("filesystem 0x{other:x}"),
    }
}

/// The 1-minute load average (other work on the machine slows both sides of
/// a ratio, but not equally: compile uses every core, cp -r one).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// A busy loop in a child process, so that a table can be measured while
/// one CPU is taken (a shared build machine). Pinned to the last CPU when
/// `taskset` is there; stopped by its PID.
pub struct Hog {
    child: std::process::Child,
    pinned: Option<usize>,
}

impl Hog {
    /// Starts the loop.
    pub fn start() -> Self {
        let last = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) - 1;
        let spin = ["sh", "-c", "while :; do :; done"];
        let pinned = Command::new("taskset")
            .arg("-c")
            .arg(last.to_string())
            .args(spin)
            .spawn();
        let (child, pinned) = match pinned {
            Ok(c) => (c, Some(last)),
            Err(_) => (
                Command::new(spin[0])
                    .args(&spin[1..])
                    .spawn()
                    .expect("start the CPU hog"),
                None,
            ),
        };
        Self { child, pinned }
    }

    /// For the report.
    pub fn describe(&self) -> String {
        match self.pinned {
            Some(cpu) => format!("a busy loop pinned to CPU {cpu}"),
            None => "a busy loop (not pinned: no taskset)".to_owned(),
        }
    }

    /// Kills the loop (by its PID) and reaps it.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
