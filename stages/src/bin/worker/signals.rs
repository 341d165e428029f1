//! SIGINT and SIGTERM in a worker: the first asks the running stage to stop (it checks
//! [`CANCEL`] between units of work and fails as cancelled, committing nothing); a second one
//! exits at once with status 130.
//!
//! `pipeline` sends SIGTERM to a worker when a run is stopped and SIGKILL after a grace
//! period; a Ctrl-C in the terminal reaches the worker too, since it shares the process group.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first signal.
pub(crate) static CANCEL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    if CANCEL.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the handler for SIGINT and SIGTERM. Failing to install one leaves the default
/// (the worker dies at once), which `pipeline` reports as a killed stage.
pub(crate) fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `action` is fully initialised before use (zeroed, then the handler and an
        // empty mask set), and the handler only touches an atomic and calls _exit, both
        // async-signal-safe.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            tracing::warn!(
                signal,
                "cannot install a signal handler; a stop will kill the stage"
            );
        }
    }
}
