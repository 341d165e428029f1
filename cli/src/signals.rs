//! Ctrl-C and SIGTERM: the first asks the run to stop (running stages are stopped, nothing
//! partial is committed); a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first signal.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    if CANCEL.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the handlers.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only touches an atomic and calls _exit.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}
