//! SIGINT and SIGTERM during `compile`: the bundle writer stops at the next
//! file, removes its temporary folder and the process exits with 128 + the
//! signal number, leaving the destination as it was.
//!
//! The handler only records the signal (an atomic store is all a signal
//! handler may safely do); [`pending`] is polled by the writer. A second
//! signal while the first is being handled ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal received, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Catches SIGINT, SIGTERM and SIGHUP from now on (idempotent).
pub fn install() {
    #[cfg(unix)]
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `on_signal` only performs async-signal-safe operations
        // (an atomic swap and `_exit`); the sigaction struct is zeroed and
        // filled before the call.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&raw mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &raw const action, std::ptr::null_mut());
        }
    }
}

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    if SIGNAL.swap(sig, Ordering::SeqCst) != 0 {
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
}

/// The signal received since [`install`], if any.
pub fn pending() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}
