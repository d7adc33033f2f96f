//! Issue 14, goal 6: every public entry point uses at most 4 KiB of stack at
//! every capacity. Also prints the memory per CPU, task and event (goal 3).
//!
//! Not a criterion bench: for each shape, each entry point runs once on a
//! fresh thread whose stack was painted with a pattern from inside (below
//! the painting frame, down to a depth that comfortably exceeds anything
//! the call could use); what the call overwrote is its peak stack use. The
//! figure is what the call used below its caller's frame, to within the
//! few hundred bytes next to it that are never painted (so nothing below
//! ~300 B is told apart). Built in release by `cargo bench`, in debug by
//! `cargo test --benches` (debug builds use far more stack: only the release
//! figures count, and only they are recorded, in `target/hwbp-bench/stack.tsv`,
//! `stack-worst.tsv` and `memory.tsv`).
//!
//! By-value constructors (`Manager::new`, `ConstraintTable::new`) return
//! the whole value; they are const-evaluated into a `static` in the
//! intended use and are reported, not judged.
//!
//! `cargo bench -p hwbp-core --bench stack` (set `HWBP_BENCH_FULL=1` for the
//! largest shapes).

mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::mem::size_of;
use std::sync::Mutex;

use common::{full, out_dir, populate, task, task_watch, Wide, MANAGER_MAX_CPUS};
use hwbp_core::mock::MockException;
use hwbp_core::{
    Access, BpType, BreakpointAttr, ConstraintTable, Demand, Fired, Handle, Manager, Pool,
    SlotCounts, TaskId,
};

const PATTERN: u64 = 0x5aa5_c33c_0ff0_9669;
/// Bytes just below the painting frame left unpainted (that frame's own
/// spills).
const MARGIN: usize = 256;

/// Paint `depth` bytes of the stack below this frame; returns the address
/// the depth is counted from.
#[inline(never)]
fn paint(depth: usize) -> usize {
    let here = 0u8;
    let top = black_box(&here) as *const u8 as usize;
    let (mut a, high) = ((top - depth) & !7, (top - MARGIN) & !7);
    while a < high {
        // SAFETY: below the live frames of this thread, inside its stack
        // (the thread's stack is larger than `depth`); nothing lives there.
        unsafe { (a as *mut u64).write_volatile(PATTERN) };
        a += 8;
    }
    top
}

/// Bytes below `top` that something overwrote since [`paint`] (the lowest
/// overwritten word), or `None` if the whole painted depth was used.
#[inline(never)]
fn used(top: usize, depth: usize) -> Option<usize> {
    let (low, high) = ((top - depth) & !7, (top - MARGIN) & !7);
    let mut a = low;
    // SAFETY: the words `paint` wrote, below this thread's live frames.
    while a < high && unsafe { (a as *const u64).read_volatile() } == PATTERN {
        a += 8;
    }
    (a != low).then_some(top - a)
}

/// A call through a reference the optimiser cannot see through, so the
/// entry point's frame lies below the painted top, not in the caller's.
#[inline(never)]
fn call(f: &(dyn Fn() + Sync)) {
    black_box(f)();
}

/// Peak stack of `f`, painted `depth` bytes deep.
fn peak(depth: usize, f: &(dyn Fn() + Sync)) -> Option<usize> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(2 * depth + (16 << 20))
            .spawn_scoped(s, || {
                let top = paint(depth);
                call(f);
                used(top, depth)
            })
            .expect("spawn")
            .join()
            .expect("the measured call")
    })
}

/// Collects one shape's figures.
struct Report {
    shape: String,
    depth: usize,
    rows: String,
    worst: (usize, &'static str),
}

impl Report {
    fn new(shape: String, value_size: usize) -> Self {
        Report {
            shape,
            depth: 2 * value_size + (4 << 20),
            rows: String::new(),
            worst: (0, ""),
        }
    }

    /// Measure `entry`; `judged`: whether it counts for the 4 KiB goal.
    fn measure(&mut self, entry: &'static str, judged: bool, f: &(dyn Fn() + Sync)) {
        let (bytes, text) = match peak(self.depth, f) {
            Some(n) => (n, n.to_string()),
            None => (self.depth, format!(">{}", self.depth)),
        };
        if judged && bytes > self.worst.0 {
            self.worst = (bytes, entry);
        }
        let kind = if judged { "entry" } else { "constructor" };
        let _ = writeln!(self.rows, "{}\t{entry}\t{kind}\t{text}", self.shape);
    }
}

type Hw<const C: usize, const E: usize, const T: usize> = Manager<Wide, (), C, E, T>;

fn shape<const C: usize, const E: usize, const T: usize>(out: &mut String, worst: &mut String) {
    let mut r = Report::new(format!("{C}x{E}x{T}"), size_of::<Hw<C, E, T>>());
    let hw = common::boxed(|| Hw::<C, E, T>::new(Wide::x86(), ()));
    let hw: &Hw<C, E, T> = &hw;
    let n = C as u16;
    r.measure("Manager::new", false, &|| {
        let _ = black_box(Hw::<C, E, T>::new(Wide::x86(), ()));
    });
    r.measure("init", true, &|| hw.init(n).expect("init"));
    r.measure("cpu_online", true, &|| hw.cpu_online(0).expect("online"));
    bring_up_rest(hw, n);
    populate(hw, 1..3, 3, true);
    hw.sched_in(0, Some(TaskId(1))).expect("sched_in");
    let last: Mutex<Option<Handle>> = Mutex::new(None);
    let handle = || last.lock().expect("lock").expect("a handle");
    // Tasks 1 and 2 hold 3 pinned watchpoints each: one more fits.
    let attr = task_watch(1, 8);
    r.measure("slot_counts", true, &|| {
        let _ = black_box(hw.slot_counts());
    });
    r.measure("backend_cpu", true, &|| {
        let _ = black_box(hw.backend_cpu(0));
    });
    r.measure("register", true, &|| {
        let h = hw.register(&attr).expect("register").handle;
        *last.lock().expect("lock") = Some(h);
    });
    let moved = BreakpointAttr::watch(0x9000, 8, Access::RW).target(task(1));
    r.measure("modify", true, &|| {
        let _ = black_box(hw.modify(handle(), &moved).expect("modify"));
    });
    r.measure("disable", true, &|| {
        let _ = black_box(hw.disable(handle()).expect("disable"));
    });
    r.measure("enable", true, &|| {
        let _ = black_box(hw.enable(handle()).expect("enable"));
    });
    r.measure("hits", true, &|| {
        let _ = black_box(hw.hits(handle()));
    });
    r.measure("times", true, &|| {
        let _ = black_box(hw.times(handle()));
    });
    r.measure("attr", true, &|| {
        let _ = black_box(hw.attr(handle()));
    });
    r.measure("weight", true, &|| {
        let _ = black_box(hw.weight(handle()));
    });
    r.measure("slots_on", true, &|| {
        let _ = black_box(hw.slots_on(handle(), 0));
    });
    r.measure("sync", true, &|| hw.sync(0).expect("sync"));
    r.measure("sched_out", true, &|| hw.sched_out(0).expect("sched_out"));
    r.measure("sched_in", true, &|| {
        hw.sched_in(0, Some(TaskId(1))).expect("sched_in")
    });
    r.measure("rotate", true, &|| hw.rotate(0).expect("rotate"));
    let hit = MockException {
        fired: Fired::Slots {
            pool: Pool(0),
            mask: 1,
        },
        addr: task_watch(1, 0).addr,
        ip: 0x40_0000,
        access: Access::WRITE,
    };
    r.measure("handle_exception", true, &|| {
        let _ = black_box(hw.handle_exception(0, &hit));
    });
    r.measure("unregister", true, &|| {
        let _ = black_box(hw.unregister(handle()).expect("unregister"));
    });
    r.measure("quiesced", true, &|| {
        let _ = black_box(hw.quiesced(handle()));
    });
    r.measure("wait_quiesced", true, &|| {
        hw.wait_quiesced(handle()).expect("wait_quiesced")
    });
    r.measure("all_quiesced", true, &|| {
        let _ = black_box(hw.all_quiesced());
    });
    r.measure("fork", true, &|| {
        let _ = black_box(hw.fork(TaskId(1), TaskId(7)).expect("fork"));
    });
    r.measure("exit", true, &|| {
        let _ = black_box(hw.exit(TaskId(7)).expect("exit"));
    });
    r.measure("reserve", true, &|| {
        let _ = black_box(hw.reserve(0, BpType::Data, 1).expect("reserve"));
    });
    r.measure("unreserve", true, &|| {
        hw.unreserve(0, BpType::Data).expect("unreserve")
    });
    let image = hw.image(0).expect("image");
    r.measure("image", true, &|| {
        let _ = black_box(hw.image(0));
    });
    r.measure("restore", true, &|| hw.restore(0, &image).expect("restore"));
    r.measure("stray", true, &|| {
        let _ = black_box(hw.stray(0));
    });
    r.measure("len", true, &|| {
        let _ = black_box(hw.len());
    });
    r.measure("is_empty", true, &|| {
        let _ = black_box(hw.is_empty());
    });
    r.measure("inspect_table", true, &|| {
        let _ = black_box(hw.inspect_table(|t| black_box(t).tasks()));
    });
    if n > 1 {
        r.measure("cpu_offline", true, &|| {
            hw.cpu_offline(n - 1).expect("offline")
        });
    }
    table_entries::<C, T>(&mut r, n);
    out.push_str(&r.rows);
    let _ = writeln!(worst, "{}\t{}\t{}", r.shape, r.worst.1, r.worst.0);
    println!(
        "hwbp-bench: stack {}: worst entry point {} at {} B",
        r.shape, r.worst.1, r.worst.0
    );
}

fn bring_up_rest<const C: usize, const E: usize, const T: usize>(hw: &Hw<C, E, T>, n: u16) {
    for cpu in 1..n {
        hw.cpu_online(cpu).expect("cpu_online");
    }
}

/// `ConstraintTable`'s entry points, on a table of the manager's shape.
fn table_entries<const C: usize, const T: usize>(r: &mut Report, n: u16) {
    let x86 = SlotCounts::Shared(4);
    r.measure("ConstraintTable::new", false, &|| {
        let _ = black_box(ConstraintTable::<C, T>::new(x86, n));
    });
    let t = Mutex::new(common::boxed(move || {
        ConstraintTable::<C, T>::new(x86, n).expect("table")
    }));
    let d = Demand {
        pool: Pool(0),
        weight: 1,
        pinned: true,
        target: task(5),
    };
    r.measure("ConstraintTable::check", true, &|| {
        let _ = black_box(t.lock().expect("lock").check(&d));
    });
    let claim = Mutex::new(None);
    r.measure("ConstraintTable::reserve", true, &|| {
        *claim.lock().expect("lock") = Some(t.lock().expect("lock").reserve(&d).expect("reserve"));
    });
    r.measure("ConstraintTable::worst_case", true, &|| {
        let _ = black_box(t.lock().expect("lock").worst_case(0, Pool(0)));
    });
    r.measure("ConstraintTable::release", true, &|| {
        let c = claim.lock().expect("lock").take().expect("a claim");
        t.lock().expect("lock").release(c).expect("release");
    });
    r.measure("ConstraintTable::set_reserved", true, &|| {
        t.lock()
            .expect("lock")
            .set_reserved(0, Pool(0), 1)
            .expect("set_reserved")
    });
}

/// Memory per event, per CPU and per task, from the sizes of neighbouring
/// shapes.
fn memory() -> String {
    type M<const C: usize, const E: usize, const T: usize> = Manager<Wide, (), C, E, T>;
    type Tb<const C: usize, const T: usize> = ConstraintTable<C, T>;
    let per = |a: usize, b: usize, n: usize| (b as f64 - a as f64) / n as f64;
    let mut s = String::new();
    let rows = [
        (
            "Manager<_, _, 1, 64, 64> (default)",
            "total",
            size_of::<M<1, 64, 64>>() as f64,
        ),
        (
            "Manager, default shape",
            "per event",
            per(size_of::<M<1, 64, 64>>(), size_of::<M<1, 1088, 64>>(), 1024),
        ),
        (
            "Manager, default shape",
            "per CPU",
            per(size_of::<M<1, 64, 64>>(), size_of::<M<2, 64, 64>>(), 1),
        ),
        (
            "Manager, default shape",
            "per task",
            per(size_of::<M<1, 64, 64>>(), size_of::<M<1, 64, 128>>(), 64),
        ),
        (
            "Manager<_, _, 64, 65535, 65536>",
            "total",
            size_of::<M<64, 65535, 65536>>() as f64,
        ),
        (
            "Manager, 64 CPUs × 65 536 tasks",
            "per task",
            per(
                size_of::<M<64, 64, 32768>>(),
                size_of::<M<64, 64, 65536>>(),
                32768,
            ),
        ),
        (
            "Manager, 65 536 tasks",
            "per CPU",
            per(
                size_of::<M<32, 64, 65536>>(),
                size_of::<M<64, 64, 65536>>(),
                32,
            ),
        ),
        (
            "ConstraintTable<1, 64>",
            "total",
            size_of::<Tb<1, 64>>() as f64,
        ),
        (
            "ConstraintTable, 1 CPU",
            "per task",
            per(size_of::<Tb<1, 64>>(), size_of::<Tb<1, 128>>(), 64),
        ),
        (
            "ConstraintTable<256, 65536>",
            "total",
            size_of::<Tb<256, 65536>>() as f64,
        ),
        (
            "ConstraintTable, 256 CPUs",
            "per task",
            per(
                size_of::<Tb<256, 32768>>(),
                size_of::<Tb<256, 65536>>(),
                32768,
            ),
        ),
        (
            "ConstraintTable, 64 tasks",
            "per CPU",
            per(size_of::<Tb<1, 64>>(), size_of::<Tb<1025, 64>>(), 1024),
        ),
    ];
    for (what, unit, bytes) in rows {
        let _ = writeln!(s, "{what}\t{unit}\t{bytes:.1}");
        println!("hwbp-bench: memory {what}, {unit}: {bytes:.1} B");
    }
    s
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once
    // in a debug build: same code, small shapes.
    let mut out = String::new();
    let mut worst = String::new();
    // The method checked on a call whose use is known: a 16 KiB local.
    let known = peak(1 << 20, &|| {
        let a = [1u8; 16384];
        black_box(&a);
    });
    // And on one that uses nothing: the resolution (the unpainted margin).
    let floor = peak(1 << 20, &|| {});
    let _ = writeln!(out, "calibration\t16 KiB local\tcheck\t{known:?}");
    let _ = writeln!(out, "calibration\tempty call\tcheck\t{floor:?}");
    println!("hwbp-bench: stack calibration: a 16 KiB local measures {known:?} B, an empty call {floor:?} B");
    shape::<1, 64, 64>(&mut out, &mut worst);
    shape::<4, 1024, 64>(&mut out, &mut worst);
    if full() {
        shape::<1, 16384, 64>(&mut out, &mut worst);
        shape::<1, 65535, 64>(&mut out, &mut worst);
        shape::<64, 1024, 64>(&mut out, &mut worst);
        shape::<4, 1024, 65536>(&mut out, &mut worst);
        shape::<MANAGER_MAX_CPUS, 1024, 1024>(&mut out, &mut worst);
    }
    let memory = memory();
    let dir = out_dir();
    if common::measuring() && std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("stack.tsv"), out);
        let _ = std::fs::write(dir.join("stack-worst.tsv"), worst);
        let _ = std::fs::write(dir.join("memory.tsv"), memory);
    }
}
