//! What the scale benchmarks (issue 14) share: shapes, building large
//! managers off the stack, a backend for more CPUs than the mock has register
//! files for, request builders, and criterion's settings.
//!
//! Each bench binary includes this module (`mod common;`) and uses part of it.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use hwbp_core::mock::{Mock, MockConfig, MockException, MockSlot, MOCK_CPUS};
use hwbp_core::{
    Access, AddressSpace, Arch, BreakpointAttr, Decoded, Encoding, Error, Image, Manager,
    SlotCounts, Target, TaskId,
};

/// The most CPUs the manager benches build a `Manager` for (it accepts up
/// to 65 535 since the scaling work; 1024 is the goal).
pub const MANAGER_MAX_CPUS: usize = 1024;

/// Whether to run every shape (`HWBP_BENCH_FULL` set, as `cargo xtask bench`
/// does) or only the small ones, so that `cargo test --benches` (each
/// benchmark run once, in a debug build) stays a few seconds.
pub fn full() -> bool {
    std::env::var_os("HWBP_BENCH_FULL").is_some()
}

/// Criterion with short measurements: the whole `cargo xtask bench` run must
/// finish in a few minutes on a small shared machine. Ratios, not absolute
/// times, decide the goals, and each ratio's two sides run in the same
/// process.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
        .configure_from_args()
}

/// Build a value on a thread whose stack can hold it a few times over and
/// return it boxed (a debug build makes several copies on the way). `Manager::new` builds by value; a manager with 65 535
/// events is tens of MiB, which `Box::new(Manager::new(..))` would first put
/// on the calling thread's stack (8 MiB) in a debug build. The thread's
/// stack is reserved, not committed, so the unused part costs nothing.
pub fn boxed<T: Send + 'static>(make: impl FnOnce() -> T + Send + 'static) -> Box<T> {
    let stack = 16 * core::mem::size_of::<T>() + (8 << 20);
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || Box::new(make()))
        .expect("spawn the builder thread")
        .join()
        .expect("build the value")
}

/// The x86-like mock on the CPUs it has register files for
/// ([`MOCK_CPUS`]); beyond those a CPU has no registers to write: `init_cpu`
/// and `install` do nothing there. Lets a manager run with hundreds of CPUs
/// online while the core does all of its own work for each of them.
pub struct Wide(pub Mock);

impl Wide {
    /// Four shared registers per CPU, precise status (x86).
    pub const fn x86() -> Self {
        Wide(Mock::new(MockConfig::X86_LIKE))
    }
}

impl Arch for Wide {
    type Slot = MockSlot;
    type Exception = MockException;
    type CpuState = ();
    const CPU_STATE_INIT: () = ();

    fn discover(&self) -> Result<SlotCounts, Error> {
        self.0.discover()
    }

    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<MockSlot>, Error> {
        self.0.encode(attr)
    }

    fn init_cpu(&self, cpu: u16, state: &()) -> Result<(), Error> {
        if usize::from(cpu) < MOCK_CPUS {
            self.0.init_cpu(cpu, state)
        } else {
            Ok(())
        }
    }

    fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        self.0.address_space(addr, len)
    }

    fn install(&self, cpu: u16, state: &(), current: &Image<MockSlot>, desired: &Image<MockSlot>) {
        if usize::from(cpu) < MOCK_CPUS {
            self.0.install(cpu, state, current, desired);
        }
    }

    fn decode(&self, cpu: u16, state: &(), raw: &MockException) -> Decoded {
        self.0.decode(cpu, state, raw)
    }
}

/// Initialise `hw` for `cpus` CPUs and bring them all online.
pub fn bring_up<A: Arch, const C: usize, const E: usize, const T: usize>(
    hw: &Manager<A, (), C, E, T>,
    cpus: u16,
) {
    hw.init(cpus).expect("init");
    for cpu in 0..cpus {
        hw.cpu_online(cpu).expect("cpu_online");
    }
}

/// A task target on every CPU.
pub fn task(n: u64) -> Target {
    Target::Task {
        task: TaskId(n),
        cpu: None,
    }
}

/// A pinned 4-byte write watchpoint for breakpoint `k` of task `n` (distinct
/// words).
pub fn task_watch(n: u64, k: u64) -> BreakpointAttr {
    BreakpointAttr::watch(0x10_0000 + 0x100 * n + 8 * k, 4, Access::WRITE).target(task(n))
}

/// Register `per_task` pinned watchpoints for each task in `tasks`.
pub fn populate<A: Arch, const C: usize, const E: usize, const T: usize>(
    hw: &Manager<A, (), C, E, T>,
    tasks: core::ops::Range<u64>,
    per_task: u64,
    inherit: bool,
) {
    for n in tasks {
        for k in 0..per_task {
            let r = hw
                .register(&task_watch(n, k).inherit(inherit))
                .expect("register a task's watchpoint");
            let _ = black_box(r.sync);
        }
    }
}

/// Where the benches leave figures criterion does not measure (register
/// writes, peak stack, sizes) for `cargo xtask bench`:
/// `<target>/hwbp-bench/`.
pub fn out_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    target.join("hwbp-bench")
}

/// Whether this is a measuring run (`cargo bench` passes `--bench`), not a
/// test run of a debug build (`cargo test --benches`), whose figures are
/// printed but not recorded.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Record one figure (`name`: a file name, `value`: one line) and print it;
/// only printed in a test run.
pub fn record(name: &str, value: &str) {
    println!("hwbp-bench: {name} = {value}");
    if !measuring() {
        return;
    }
    let dir = out_dir();
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(name), format!("{value}\n"));
    }
}

/// Run a bench's `main` on a thread with a 1 GiB stack (reserved, committed
/// only as used). Before the scaling work `fork` at 65 535 events uses about
/// 75 MiB of stack and would overflow the main thread's 8 MiB: the bench
/// measures time, the `stack` bench measures stack.
pub fn on_big_stack(main: fn()) {
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(main)
        .expect("spawn the bench thread")
        .join()
        .expect("the bench");
}
