//! Issue 14, goal 8: opening and closing 4 watchpoints through hwbp-linux
//! costs within 1.2× of the raw `perf_event_open` + `close` calls.
//!
//! * `linux-open4/count-hwbp`: 4 × `Breakpoint::open` (count only) on words
//!   of this thread, then all 4 dropped.
//! * `linux-open4/count-raw`: 4 × `perf_event_open` with the same
//!   `perf_event_attr` (`PerfEventAttr::breakpoint`), then 4 × `close`.
//! * `linux-open4/signal-hwbp` and `linux-open4/signal-raw` (x86_64): the same
//!   with synchronous SIGTRAP delivery (`Breakpoint::with_handler`; raw: the
//!   `sigtrap` flag and a cookie).
//!
//! No watched word is touched: this measures opening and closing only.
//! `cargo bench -p hwbp-linux --bench open_close`.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux {
    use std::hint::black_box;
    use std::time::Duration;

    use criterion::Criterion;
    use hwbp_core::{Access, BreakpointAttr};
    use hwbp_linux::abi::PerfEventAttr;
    use hwbp_linux::{current_thread, Breakpoint, Delivery};

    /// The watched words (never accessed by the bench).
    static WORDS: [u64; 4] = [0; 4];

    fn attrs() -> [BreakpointAttr; 4] {
        [0, 1, 2, 3].map(|i| {
            BreakpointAttr::watch(&raw const WORDS[i] as u64, 8, Access::WRITE)
                .target(current_thread())
                .user_only()
        })
    }

    /// `perf_event_open(attr, 0, -1, -1, FD_CLOEXEC)` then `close`, 4 times.
    fn raw(perf: &[PerfEventAttr; 4]) {
        let mut fds = [0; 4];
        for (fd, attr) in fds.iter_mut().zip(perf) {
            let mut copy = *attr;
            // SAFETY: `copy` is a live, initialised perf_event_attr of the size
            // in its `size` field; the other arguments are plain integers.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    &mut copy as *mut PerfEventAttr,
                    0,
                    -1,
                    -1,
                    libc::c_ulong::from(1u8 << 3), // PERF_FLAG_FD_CLOEXEC
                )
            };
            assert!(
                ret >= 0,
                "perf_event_open: {}",
                std::io::Error::last_os_error()
            );
            *fd = ret as libc::c_int;
        }
        for fd in fds {
            // SAFETY: `fd` was opened above and is closed once.
            unsafe { libc::close(fd) };
        }
    }

    fn on_hit(_: &hwbp_linux::Hit) {}

    pub fn main() {
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(1200))
            .sample_size(20)
            .configure_from_args();
        let attrs = attrs();
        // An 8-byte aligned word: bp_len 8 on both architectures.
        let count = attrs.map(|a| PerfEventAttr::breakpoint(&a, 8, None));
        let mut g = c.benchmark_group("linux-open4");
        g.bench_function("count-hwbp", |b| {
            b.iter(|| {
                let bps = attrs.map(|a| Breakpoint::open(&a, Delivery::CountOnly).expect("open"));
                black_box(&bps);
            })
        });
        g.bench_function("count-raw", |b| b.iter(|| raw(black_box(&count))));
        if cfg!(target_arch = "x86_64") {
            let signal = attrs.map(|a| PerfEventAttr::breakpoint(&a, 8, Some(1)));
            g.bench_function("signal-hwbp", |b| {
                b.iter(|| {
                    let bps = attrs.map(|a| Breakpoint::with_handler(&a, on_hit).expect("open"));
                    black_box(&bps);
                })
            });
            g.bench_function("signal-raw", |b| b.iter(|| raw(black_box(&signal))));
        }
        g.finish();
        c.final_summary();
    }
}

fn main() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    linux::main();
}
