//! The constraint table against a brute-force oracle (issue 14 goal 5).
//!
//! The oracle keeps the list of accepted demands and recomputes, for every
//! CPU and pool, the worst case from that list alone: pinned CPU-bound
//! weight + the heaviest task's pinned weight there + reserved + 1 if any
//! flexible request can run there. A demand fits when every CPU it can run on
//! stays within its registers with it added. Every answer of the table
//! (accept / typed refusal and the CPU it names, `worst_case` everywhere, task
//! and pair counts) must be the oracle's, after every operation.
//!
//! * `small_tables_match_the_oracle`: `ConstraintTable<5, 3>` (a capacity
//!   that is not a power of two) under random demands, releases, debugger
//!   reservations and in-place resets.
//! * `large_tables_match_the_oracle`: `ConstraintTable<4, 131_072>` (10 MiB,
//!   in a `static`, configured with `reset`, never on the stack) filled with
//!   100 000 up to all 131 072 tasks, then random operations, then every
//!   reservation released (which must return: heapless' `u16` positions
//!   made it spin). Fewer cases: each one registers 100 000+ tasks.
//! * `init_builds_the_table_in_place`: a manager with `TASKS = 131_072` is
//!   initialized on a thread with a 256 KiB stack.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::{
    Access, BreakpointAttr, Claim, ConstraintTable, Demand, Error, HardwareError, Manager, Pool,
    SlotCounts, Target, TaskId,
};
use proptest::prelude::*;

/// Cases for the small shape when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn runs_on(target: Target, cpu: u16) -> bool {
    match target {
        Target::Cpu(c) | Target::Task { cpu: Some(c), .. } => c == cpu,
        Target::AllCpus | Target::Task { cpu: None, .. } => true,
    }
}

/// CPUs the oracle can model.
const MAX_CPUS: usize = 5;

/// The accepted demands and the debugger reservations, nothing else.
struct Oracle {
    counts: SlotCounts,
    nr: u16,
    cap: usize,
    list: Vec<Demand>,
    reserved: Vec<[u8; 2]>,
}

impl Oracle {
    fn new(counts: SlotCounts, nr: u16, cap: usize) -> Self {
        Oracle {
            counts,
            nr,
            cap,
            list: Vec::new(),
            reserved: vec![[0; 2]; usize::from(nr)],
        }
    }

    /// `worst[cpu][pool]` with `list` accounted, recomputed from scratch.
    fn worst<'a>(&self, list: impl Iterator<Item = &'a Demand>) -> Vec<[u16; 2]> {
        let nr = usize::from(self.nr);
        let mut cpu_pinned = vec![[0u16; 2]; nr];
        let mut flexible = vec![[false; 2]; nr];
        let mut per_task: HashMap<u64, [[u16; 2]; MAX_CPUS]> =
            HashMap::with_capacity(self.list.len() + 1);
        for d in list {
            let p = d.pool.index();
            for cpu in (0..self.nr).filter(|&c| runs_on(d.target, c)) {
                let c = usize::from(cpu);
                match (d.pinned, d.target) {
                    (false, _) => flexible[c][p] = true,
                    (true, Target::Task { task, .. }) => {
                        per_task.entry(task.0).or_insert([[0; 2]; MAX_CPUS])[c][p] +=
                            u16::from(d.weight)
                    }
                    (true, _) => cpu_pinned[c][p] += u16::from(d.weight),
                }
            }
        }
        let mut heaviest = vec![[0u16; 2]; nr];
        for weights in per_task.values() {
            for (h, w) in heaviest.iter_mut().zip(weights) {
                for p in 0..2 {
                    h[p] = h[p].max(w[p]);
                }
            }
        }
        (0..nr)
            .map(|c| {
                [0, 1].map(|p| {
                    cpu_pinned[c][p]
                        + heaviest[c][p]
                        + u16::from(self.reserved[c][p])
                        + u16::from(flexible[c][p])
                })
            })
            .collect()
    }

    /// The tasks holding pinned requests, and the (task, CPU) pairs holding
    /// pinned requests restricted to that CPU.
    fn holders(&self) -> (HashSet<u64>, HashSet<(u64, u16)>) {
        let mut tasks = HashSet::with_capacity(self.list.len());
        let mut pairs = HashSet::new();
        for d in self.list.iter().filter(|d| d.pinned) {
            if let Target::Task { task, cpu } = d.target {
                tasks.insert(task.0);
                if let Some(c) = cpu {
                    pairs.insert((task.0, c));
                }
            }
        }
        (tasks, pairs)
    }

    /// What the table must answer to `d`.
    fn fits(&self, d: &Demand) -> Result<(), Error> {
        let slots = self.counts.slots(d.pool);
        if slots == 0 {
            return Err(Error::Hardware(HardwareError::NoDebugHardware));
        }
        if d.weight == 0 || d.weight > slots {
            return Err(Error::RangeTooLarge {
                weight: d.weight,
                slots,
            });
        }
        if let Target::Cpu(c) | Target::Task { cpu: Some(c), .. } = d.target {
            if c >= self.nr {
                return Err(Error::CpuOutOfRange { cpu: c });
            }
        }
        if let (true, Target::Task { task, cpu }) = (d.pinned, d.target) {
            let (tasks, pairs) = self.holders();
            if !tasks.contains(&task.0) && tasks.len() == self.cap {
                return Err(Error::TooManyTasks);
            }
            if let Some(c) = cpu {
                if !pairs.contains(&(task.0, c)) && pairs.len() == self.cap {
                    return Err(Error::TooManyTasks);
                }
            }
        }
        let worst = self.worst(self.list.iter().chain(Some(d)));
        for cpu in (0..self.nr).filter(|&c| runs_on(d.target, c)) {
            if worst[usize::from(cpu)][d.pool.index()] > u16::from(slots) {
                return Err(Error::NoSlot { cpu });
            }
        }
        Ok(())
    }

    fn set_reserved(&mut self, cpu: u16, pool: Pool, n: u8) -> Result<(), Error> {
        if cpu >= self.nr || pool.index() >= 2 {
            return Err(Error::CpuOutOfRange { cpu });
        }
        let slots = u16::from(self.counts.slots(pool));
        let (c, p) = (usize::from(cpu), pool.index());
        let others = self.worst(self.list.iter())[c][p] - u16::from(self.reserved[c][p]);
        if slots == 0 || others + u16::from(n) > slots {
            return Err(Error::NoSlot { cpu });
        }
        self.reserved[c][p] = n;
        Ok(())
    }
}

/// The table says what the oracle says, everywhere.
fn same<const C: usize, const T: usize>(
    t: &ConstraintTable<C, T>,
    o: &Oracle,
) -> Result<(), TestCaseError> {
    let worst = o.worst(o.list.iter());
    for cpu in 0..o.nr {
        for p in 0..2u8 {
            prop_assert_eq!(
                t.worst_case(cpu, Pool(p)),
                worst[usize::from(cpu)][usize::from(p)],
                "worst case of CPU {} pool {}",
                cpu,
                p
            );
            prop_assert_eq!(
                t.reserved(cpu, Pool(p)),
                o.reserved[usize::from(cpu)][usize::from(p)]
            );
        }
    }
    let (tasks, pairs) = o.holders();
    prop_assert_eq!(t.tasks(), tasks.len());
    prop_assert_eq!(t.task_cpu_pairs(), pairs.len());
    Ok(())
}

#[derive(Clone, Debug)]
enum Op {
    Reserve(Demand),
    /// Release the claim at this index (modulo the number held).
    Release(usize),
    SetReserved(u16, u8, u8),
    /// `reset` in place: every claim held goes stale.
    Reset,
}

fn demand(tasks: u64, cpus: u16, weights: u8) -> impl Strategy<Value = Demand> {
    let target = prop_oneof![
        (0..cpus).prop_map(Target::Cpu),
        Just(Target::AllCpus),
        (0..tasks, prop::option::weighted(0.4, 0..cpus)).prop_map(|(t, cpu)| Target::Task {
            task: TaskId(t),
            cpu
        }),
    ];
    (
        prop_oneof![6 => 0u8..2, 1 => Just(2u8)],
        prop_oneof![8 => 1..=weights, 1 => Just(0u8), 1 => Just(weights + 1)],
        prop::bool::weighted(0.8),
        target,
    )
        .prop_map(|(p, weight, pinned, target)| Demand {
            pool: Pool(p),
            weight,
            pinned,
            target,
        })
}

fn op(tasks: u64, cpus: u16, weights: u8, resets: bool) -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => demand(tasks, cpus, weights).prop_map(Op::Reserve),
        5 => any::<usize>().prop_map(Op::Release),
        2 => (0..cpus, 0u8..3, 0u8..4).prop_map(|(c, p, n)| Op::SetReserved(c, p, n)),
        u32::from(resets) => Just(Op::Reset),
    ]
}

fn counts() -> impl Strategy<Value = SlotCounts> {
    prop_oneof![
        (1u8..=4).prop_map(SlotCounts::Shared),
        (1u8..=4, 1u8..=4).prop_map(|(inst, data)| SlotCounts::Separate { inst, data }),
    ]
}

/// Run `ops` on `t` and the oracle, comparing after each; then release
/// every claim still held and compare again. With `snapshots`, a refusal
/// must leave the table's `Debug` form unchanged (a `String` on the heap:
/// no copy of the table is ever on the stack).
fn run<const C: usize, const T: usize>(
    t: &mut ConstraintTable<C, T>,
    o: &mut Oracle,
    claims: &mut Vec<Claim>,
    ops: &[Op],
    snapshots: bool,
) -> Result<(), TestCaseError> {
    let mut stale: Vec<Claim> = Vec::new();
    for op in ops {
        match op {
            Op::Reserve(d) => {
                let expect = o.fits(d);
                prop_assert_eq!(t.check(d), expect, "check {:?}", d);
                let before = snapshots.then(|| format!("{t:?}"));
                match t.reserve(d) {
                    Ok(c) => {
                        prop_assert_eq!(expect, Ok(()));
                        claims.push(c);
                        o.list.push(*d);
                    }
                    Err(e) => {
                        prop_assert_eq!(Err(e), expect, "reserve {:?}", d);
                        if let Some(b) = before {
                            prop_assert_eq!(format!("{t:?}"), b, "a refusal changed the table");
                        }
                    }
                }
            }
            Op::Release(i) if !claims.is_empty() => {
                let i = i % claims.len();
                let c = claims.swap_remove(i);
                let d = o.list.swap_remove(i);
                prop_assert_eq!(c.demand(), d);
                prop_assert_eq!(t.release(c), Ok(()));
            }
            Op::Release(_) => {
                if let Some(c) = stale.pop() {
                    let before = snapshots.then(|| format!("{t:?}"));
                    prop_assert_eq!(t.release(c), Err(Error::NotReserved));
                    if let Some(b) = before {
                        prop_assert_eq!(format!("{t:?}"), b, "a stale release changed the table");
                    }
                }
            }
            &Op::SetReserved(cpu, p, n) => {
                let expect = o.set_reserved(cpu, Pool(p), n);
                prop_assert_eq!(t.set_reserved(cpu, Pool(p), n), expect);
            }
            Op::Reset => {
                t.reset(o.counts, o.nr).unwrap();
                *o = Oracle::new(o.counts, o.nr, o.cap);
                stale.append(claims);
            }
        }
        same(t, o)?;
    }
    while let Some(c) = claims.pop() {
        o.list.pop();
        prop_assert_eq!(t.release(c), Ok(()));
    }
    same(t, o)?;
    prop_assert_eq!(t.tasks(), 0);
    prop_assert_eq!(t.task_cpu_pairs(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn small_tables_match_the_oracle(
        counts in counts(),
        nr in 1u16..=5,
        ops in prop::collection::vec(op(6, 6, 4, true), 0..60),
    ) {
        let mut t = ConstraintTable::<5, 3>::new(counts, nr).unwrap();
        let fresh = ConstraintTable::<5, 3>::new(counts, nr).unwrap();
        let mut o = Oracle::new(counts, nr, 3);
        let mut claims = Vec::new();
        run(&mut t, &mut o, &mut claims, &ops, true)?;
        // With every reservation released and the debugger's undone, it is
        // a fresh table again.
        for cpu in 0..nr {
            for p in 0..2 {
                let _ = t.set_reserved(cpu, Pool(p), 0);
            }
        }
        prop_assert!(t == fresh, "{:?} != {:?}", t, fresh);
    }
}

/// 10 MiB: kept in a `static` (laid out at compile time), configured in
/// place; never on a test thread's stack.
const BIG: usize = 131_072;
static BIG_TABLE: Mutex<ConstraintTable<4, BIG>> = Mutex::new(ConstraintTable::UNCONFIGURED);

/// One large case: `n` tasks registered in `counts`, then `ops`.
fn large_case(counts: SlotCounts, n: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut guard = BIG_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let t = &mut *guard;
    t.reset(counts, 4).unwrap();
    let mut o = Oracle::new(counts, 4, BIG);
    let mut claims = Vec::new();
    let local_pool = Pool(if counts.pools() == 2 { 1 } else { 0 });
    for i in 0..n {
        let mut fill = vec![Demand {
            pool: Pool(0),
            weight: 1,
            pinned: true,
            target: Target::Task {
                task: TaskId(i),
                cpu: None,
            },
        }];
        if i % 16 == 0 {
            fill.push(Demand {
                pool: local_pool,
                weight: 1,
                pinned: true,
                target: Target::Task {
                    task: TaskId(i),
                    cpu: Some((i / 16 % 4) as u16),
                },
            });
        }
        for d in fill {
            let c = t
                .reserve(&d)
                .map_err(|e| TestCaseError::fail(format!("fill {d:?}: {e:?}")))?;
            claims.push(c);
            o.list.push(d);
        }
    }
    same(t, &o)?;
    // The seed's failures past 65 536 tasks: an old task's second and
    // third breakpoints (worst case 2, then 4), a fifth register promised
    // on a 4-register CPU and a new task at (or past) capacity; then the
    // random operations.
    let last = TaskId(n - 1);
    let everywhere = |weight| Demand {
        pool: Pool(0),
        weight,
        pinned: true,
        target: Target::Task {
            task: last,
            cpu: None,
        },
    };
    let mut all = vec![
        Op::Reserve(everywhere(1)),
        Op::Reserve(everywhere(1)),
        Op::Reserve(everywhere(2)),
        Op::Reserve(Demand {
            target: Target::Cpu(1),
            ..everywhere(1)
        }),
        Op::Reserve(Demand {
            target: Target::Task {
                task: TaskId(n + 3),
                cpu: None,
            },
            ..everywhere(1)
        }),
    ];
    all.extend(ops);
    run(t, &mut o, &mut claims, &all, false)
}

/// `ConstraintTable<4, 131_072>` with 100 000, 131 071 and 131 072 tasks
/// against the oracle. Each case registers 100 000+ tasks and the oracle
/// walks them all after every operation, so the case count is fixed (3, not
/// `PROPTEST_CASES`, which the `proptest!` macro would apply) and a failure
/// shrinks only a little.
#[test]
fn large_tables_match_the_oracle() {
    let config = ProptestConfig {
        cases: 3,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let strategy = (
        prop_oneof![
            Just(SlotCounts::Shared(4)),
            Just(SlotCounts::Separate { inst: 4, data: 4 }),
        ],
        prop_oneof![Just(100_000u64), Just(BIG as u64 - 1), Just(BIG as u64)],
        prop::collection::vec(op(BIG as u64 + 8, 4, 3, false), 4..12),
    );
    let mut runner = proptest::test_runner::TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, |(counts, n, ops)| large_case(counts, n, ops)) {
        panic!("{e}");
    }
}

#[test]
fn large_table_answers_the_seed_failures() {
    // Deterministic form of the seed's report at TASKS = 131 072.
    let mut guard = BIG_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let t = &mut *guard;
    t.reset(SlotCounts::Shared(4), 1).unwrap();
    let d = |task: u64, weight| Demand {
        pool: Pool(0),
        weight,
        pinned: true,
        target: Target::Task {
            task: TaskId(task),
            cpu: None,
        },
    };
    let mut claims: Vec<Claim> = (0..100_000).map(|i| t.reserve(&d(i, 1)).unwrap()).collect();
    assert_eq!(t.worst_case(0, Pool(0)), 1);
    claims.push(t.reserve(&d(99_999, 1)).unwrap());
    assert_eq!(t.worst_case(0, Pool(0)), 2, "a task's second breakpoint");
    claims.push(t.reserve(&d(99_999, 2)).unwrap());
    assert_eq!(t.worst_case(0, Pool(0)), 4);
    assert_eq!(
        t.reserve(&d(99_998, 4)),
        Err(Error::NoSlot { cpu: 0 }),
        "over-commit"
    );
    assert_eq!(
        t.reserve(&Demand {
            target: Target::Cpu(0),
            ..d(0, 1)
        }),
        Err(Error::NoSlot { cpu: 0 }),
        "a fifth pinned breakpoint on a 4-register CPU"
    );
    for c in claims {
        t.release(c).unwrap();
    }
    assert_eq!(t.tasks(), 0);
    assert_eq!(t.worst_case(0, Pool(0)), 0);
}

static BIG_MANAGER: Manager<Mock, (), 1, 4, BIG> =
    Manager::new(Mock::new(MockConfig::X86_LIKE), ());

#[test]
fn init_builds_the_table_in_place() {
    // The table is 10 MiB; a thread with 256 KiB of stack overflows (and
    // aborts the test binary) if `init` builds it on the stack.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            for _ in 0..2 {
                BIG_MANAGER.init(1).unwrap();
                let attr = BreakpointAttr::watch(0x1000, 4, Access::WRITE).target(Target::Task {
                    task: TaskId(7),
                    cpu: None,
                });
                let h = BIG_MANAGER.register(&attr).unwrap();
                let _ = BIG_MANAGER.unregister(h.handle).unwrap();
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
