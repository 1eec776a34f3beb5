//! The six shells every generated script must run under (docs/running.md).

/// A POSIX shell, with the options that make it strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shell {
    /// Debian's and Ubuntu's /bin/sh.
    Dash,
    /// The Policy-compliant Ordinary SHell: no `printf` builtin, strictest.
    Posh,
    /// yash in POSIX mode.
    Yash,
    /// The MirBSD Korn shell.
    Mksh,
    /// busybox ash, as on minimal nodes.
    Busybox,
    /// bash in POSIX mode.
    Bash,
}

impl Shell {
    /// Every shell of the matrix.
    pub const ALL: [Shell; 6] = [
        Shell::Dash,
        Shell::Posh,
        Shell::Yash,
        Shell::Mksh,
        Shell::Busybox,
        Shell::Bash,
    ];

    /// The command line that runs a script with this shell (script appended).
    pub fn argv(self) -> &'static [&'static str] {
        match self {
            Shell::Dash => &["dash"],
            Shell::Posh => &["posh"],
            Shell::Yash => &["yash", "-o", "posixlycorrect"],
            Shell::Mksh => &["mksh"],
            Shell::Busybox => &["busybox", "sh"],
            Shell::Bash => &["bash", "--posix"],
        }
    }

    /// A short name for messages and test names.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Dash => "dash",
            Shell::Posh => "posh",
            Shell::Yash => "yash",
            Shell::Mksh => "mksh",
            Shell::Busybox => "busybox",
            Shell::Bash => "bash",
        }
    }

    /// Fails the test, saying how to install it, if the shell is missing.
    pub fn require(self) {
        crate::common::require_tool(self.argv()[0]);
    }
}
