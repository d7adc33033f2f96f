//! The program `hwbp-watch`'s README watches: two threads write the static
//! `two_paths::COUNTER` through two call paths, 300 and 700 writes a round
//! (`path_a -> bump_a` and `path_b -> bump_b`), one round a second.
//!
//! ```text
//! cargo run -p hwbp-watch --example two_paths -- [ROUNDS]
//! ```
//!
//! It prints its pid, then runs `ROUNDS` rounds (default 5) and exits.

use std::hint::black_box;
use std::time::Duration;

/// The watched static: each thread writes its own half with a plain store
/// (no data race, no library function between the store and the writer).
#[repr(C, align(8))]
struct Counter {
    a: u32,
    b: u32,
}

static mut COUNTER: Counter = Counter { a: 0, b: 0 };

#[inline(never)]
fn bump_a() {
    // SAFETY: only thread A writes this half; nothing reads it.
    unsafe { COUNTER.a = black_box(COUNTER.a).wrapping_add(1) };
}

#[inline(never)]
fn bump_b() {
    // SAFETY: only thread B writes this half; nothing reads it.
    unsafe { COUNTER.b = black_box(COUNTER.b) ^ 0x5555 };
}

/// `n` writes at most 20 a millisecond (the kernel throttles a breakpoint
/// that samples faster than `perf_event_max_sample_rate`).
#[inline(never)]
fn path_a(n: u32) {
    for i in 0..n {
        bump_a();
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[inline(never)]
fn path_b(n: u32) {
    for i in 0..n {
        bump_b();
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    println!(
        "two_paths: pid {}, {rounds} rounds of 300 + 700 writes",
        std::process::id()
    );
    for _ in 0..rounds {
        std::thread::sleep(Duration::from_secs(1));
        let a = std::thread::spawn(|| path_a(300));
        let b = std::thread::spawn(|| path_b(700));
        a.join().expect("thread a");
        b.join().expect("thread b");
    }
}
