//! Counting checks: every check prints `ok N - ...` or `FAIL: ...` and the
//! run goes on; [`finish`] prints the summary and exits through the board.
//!
//! `N` is the check's number in the run (passed and failed ones counted), so
//! a run that passes numbers its checks 1, 2, 3, ...

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::{hooks, println};

static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);
static FINISHING: AtomicBool = AtomicBool::new(false);

/// Count a passed check and print `ok N - <what>`; returns `true`.
pub fn pass(what: fmt::Arguments<'_>) -> bool {
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + FAILED.load(Ordering::SeqCst) + 1;
    println!("ok {n:2} - {what}");
    true
}

/// Count a failed check and print `FAIL: <why>`; returns `false`.
pub fn fail(why: fmt::Arguments<'_>) -> bool {
    FAILED.fetch_add(1, Ordering::SeqCst);
    println!("FAIL: {why}");
    false
}

/// Checks passed so far.
pub fn passed() -> u32 {
    PASSED.load(Ordering::SeqCst)
}

/// Checks failed so far.
pub fn failed() -> u32 {
    FAILED.load(Ordering::SeqCst)
}

/// End the run: `hwbp <board>: N checks passed` and exit status 0, or
/// `hwbp <board>: F of N checks FAILED` and a non-zero exit status.
pub fn finish() -> ! {
    if FINISHING.swap(true, Ordering::SeqCst) {
        // A failure while printing the summary (or on another CPU at the
        // same time): the summary is under way or out, leave.
        hooks::exit(false)
    }
    let (passed, failed) = (passed(), failed());
    let board = hooks::name();
    if failed == 0 {
        println!("hwbp {board}: {passed} checks passed");
        hooks::exit(true)
    } else {
        println!(
            "hwbp {board}: {failed} of {} checks FAILED",
            passed + failed
        );
        hooks::exit(false)
    }
}

/// A failure nothing after it can survive (an unexpected exception, a
/// manager call that had to succeed): print `FAIL: <why>`, then the summary,
/// and exit non-zero.
pub fn fatal(why: fmt::Arguments<'_>) -> ! {
    fail(why);
    finish()
}

/// `check!(condition, "what was checked, {}", args)`: `ok N - WHAT` if the
/// condition holds, else `FAIL: WHAT (CONDITION is false, line L)`, WHAT
/// being the formatted message and CONDITION the condition's source; the
/// run continues either way. Evaluates to whether the check passed.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if $cond {
            $crate::checks::pass(format_args!($($arg)*))
        } else {
            $crate::checks::fail(format_args!(
                "{} (`{}` is false, line {})",
                format_args!($($arg)*),
                stringify!($cond),
                line!()
            ))
        }
    };
}

/// `fatal!("why, {}", args)`: print `FAIL: <why>` and the summary, exit
/// non-zero. See [`fatal`](crate::checks::fatal).
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => { $crate::checks::fatal(format_args!($($arg)*)) };
}

/// `must!(result)`: the `Ok` value, or `fatal!` naming the expression, the
/// error and the line.
#[macro_export]
macro_rules! must {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => $crate::fatal!("`{}` failed: {:?} (line {})", stringify!($e), err, line!()),
        }
    };
}
