// The oracle harness of `prop_table.rs` (and of `prop_large.rs`, which
// runs it at large capacities): the brute-force model, the operations and
// their generators, and the runner that checks the manager against the
// model after every step. Included (`include!`) by each, after it defines
// the shape: `CPUS`, `EVENTS`, `TASKS`, `NTASKS` (task ids used) and
// `PICK_CPUS` (CPU numbers the generators pick below, plus a few beyond).

#[derive(Default)]
struct Recorder(Mutex<Vec<Sample>>);

impl Handler for Recorder {
    fn on_sample(&self, s: &Sample) {
        self.0.lock().unwrap().push(*s);
    }
}

type Hw = Manager<Mock, Recorder, CPUS, EVENTS, TASKS>;

/// Whether CPU `c` starts online for an `online` mask (bit `c % 8`).
fn starts_online(online: u8, c: u16) -> bool {
    online & (1 << (c % 8)) != 0
}

// ---------------------------------------------------------------- the oracle

/// What the oracle knows about one live request.
#[derive(Clone, Debug)]
struct Live {
    /// `None` for copies made by `fork` (the manager hands out no handle for
    /// them; they live until their task exits).
    handle: Option<Handle>,
    /// Storage index of a fork copy (the manager takes the lowest free ones,
    /// in the order of the parent's breakpoints); unused with a handle.
    anon_index: u16,
    attr: BreakpointAttr,
    enabled: bool,
    pool: usize,
    pieces: Vec<MockSlot>,
}

impl Live {
    fn weight(&self) -> u16 {
        self.pieces.len() as u16
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CpuSt {
    Offline,
    /// `sched_out` ran and no `sched_in` / `sync` followed yet: the hardware
    /// still holds the previous context.
    Out,
    In(Option<TaskId>),
}

struct Model {
    cfg: MockConfig,
    nr: u16,
    live: Vec<Live>,
    dead: Vec<Handle>,
    reserved: [[u8; 2]; CPUS],
    cpu: [CpuSt; CPUS],
    /// Per CPU, the handles live when it was switched out: while it is `Out`
    /// only those can be on its registers.
    out_live: [Vec<Handle>; CPUS],
}

fn pools(cfg: &MockConfig) -> usize {
    match cfg.counts {
        SlotCounts::Shared(_) => 1,
        SlotCounts::Separate { .. } => 2,
    }
}

fn slots(cfg: &MockConfig, pool: usize) -> u16 {
    match (cfg.counts, pool) {
        (SlotCounts::Shared(n), 0) => n.into(),
        (SlotCounts::Separate { inst, .. }, 0) => inst.into(),
        (SlotCounts::Separate { data, .. }, 1) => data.into(),
        _ => 0,
    }
}

fn pool_of(cfg: &MockConfig, attr: &BreakpointAttr) -> usize {
    match cfg.counts {
        SlotCounts::Shared(_) => 0,
        SlotCounts::Separate { .. } => usize::from(!attr.access.contains(Access::EXEC)),
    }
}

/// Whether a request with `target` may be on `cpu` at all.
fn on_cpu(target: Target, cpu: u16) -> bool {
    match target {
        Target::Cpu(c) => c == cpu,
        Target::AllCpus => true,
        Target::Task { cpu: c, .. } => c.is_none_or(|c| c == cpu),
    }
}

/// Whether an event is to be on `cpu`'s hardware while `task` runs there.
fn eligible(l: &Live, cpu: u16, task: Option<TaskId>) -> bool {
    l.enabled
        && match l.attr.target {
            Target::Task { task: t, .. } => Some(t) == task && on_cpu(l.attr.target, cpu),
            t => on_cpu(t, cpu),
        }
}

/// The pieces the mock should use, from the mock's documented rule: naturally
/// aligned power-of-two pieces of at most `max_piece` bytes, largest first.
fn expected_pieces(cfg: &MockConfig, a: &BreakpointAttr) -> Result<Vec<MockSlot>, Error> {
    if a.access.contains(Access::EXEC) {
        if a.len != 1 {
            return Err(Error::UnsupportedLength { len: a.len });
        }
        return Ok(vec![MockSlot {
            addr: a.addr,
            len: 1,
            access: Access::EXEC,
        }]);
    }
    let mut out = Vec::new();
    let (mut addr, end) = (u128::from(a.addr), u128::from(a.addr) + u128::from(a.len));
    while addr < end {
        let size = [8u128, 4, 2, 1]
            .into_iter()
            .filter(|&s| s <= u128::from(cfg.max_piece))
            .find(|&s| addr % s == 0 && addr + s <= end)
            .unwrap();
        out.push(MockSlot {
            addr: addr as u64,
            len: size as u8,
            access: a.access,
        });
        if out.len() > 16 {
            let pool = pool_of(cfg, a);
            return Err(Error::RangeTooLarge {
                weight: u8::MAX,
                slots: slots(cfg, pool) as u8,
            });
        }
        addr += size;
    }
    Ok(out)
}

impl Model {
    /// Everything `register` / `modify` check before the constraint table.
    fn encode(&self, a: &BreakpointAttr) -> Result<(usize, Vec<MockSlot>), Error> {
        let valid = Access::READ | Access::WRITE | Access::EXEC;
        if a.access.is_empty() || !valid.contains(a.access) {
            return Err(Error::NoAccess);
        }
        if a.access.contains(Access::EXEC) && a.access.intersects(Access::RW) {
            return Err(Error::ExecWithData);
        }
        if a.len == 0 {
            return Err(Error::ZeroLength);
        }
        let last = u128::from(a.addr) + u128::from(a.len) - 1;
        if last > u128::from(u64::MAX) {
            return Err(Error::AddressOverflow);
        }
        if a.exclude_user && a.exclude_kernel {
            return Err(Error::ExcludesEverything);
        }
        if a.sample_period == 0 {
            return Err(Error::ZeroSamplePeriod);
        }
        let named = match a.target {
            Target::Cpu(c) | Target::Task { cpu: Some(c), .. } => Some(c),
            _ => None,
        };
        if let Some(cpu) = named.filter(|&c| c >= self.nr) {
            return Err(Error::CpuOutOfRange { cpu });
        }
        if a.exclude_kernel && last >= u128::from(self.cfg.kernel_base) {
            return Err(Error::KernelAddress);
        }
        let pieces = expected_pieces(&self.cfg, a)?;
        let pool = pool_of(&self.cfg, a);
        let n = slots(&self.cfg, pool);
        if pieces.len() as u16 > n {
            return Err(Error::RangeTooLarge {
                weight: pieces.len() as u8,
                slots: n as u8,
            });
        }
        Ok((pool, pieces))
    }

    /// Worst case of registers of `pool` in use at once on `cpu` with `list`
    /// registered: CPU-bound pinned + heaviest task + reserved + 1 if any
    /// flexible request can run there.
    fn worst(&self, list: &[Live], cpu: u16, pool: usize) -> u16 {
        let here = |l: &&Live| l.pool == pool && on_cpu(l.attr.target, cpu);
        let cpu_pinned: u16 = list
            .iter()
            .filter(here)
            .filter(|l| l.attr.pinned && l.attr.task().is_none())
            .map(Live::weight)
            .sum();
        let tasks: BTreeSet<TaskId> = list.iter().filter_map(|l| l.attr.task()).collect();
        let max_task = tasks
            .iter()
            .map(|&t| {
                list.iter()
                    .filter(here)
                    .filter(|l| l.attr.pinned && l.attr.task() == Some(t))
                    .map(Live::weight)
                    .sum::<u16>()
            })
            .max()
            .unwrap_or(0);
        let flexible = u16::from(list.iter().filter(here).any(|l| !l.attr.pinned));
        cpu_pinned + max_task + u16::from(self.reserved[usize::from(cpu)][pool]) + flexible
    }

    fn pinned_tasks(list: &[Live]) -> BTreeSet<TaskId> {
        list.iter()
            .filter(|l| l.attr.pinned)
            .filter_map(|l| l.attr.task())
            .collect()
    }

    /// Can `new` join `list`? Every CPU must stay within its registers.
    fn fits(&self, list: &[Live], new: &Live) -> Result<(), Error> {
        if let (true, Some(t)) = (new.attr.pinned, new.attr.task()) {
            let tasks = Self::pinned_tasks(list);
            if !tasks.contains(&t) && tasks.len() == TASKS {
                return Err(Error::TooManyTasks);
            }
            // `TASKS` also bounds the (task, CPU) pairs holding pinned task
            // requests restricted to one CPU.
            if let Target::Task { cpu: Some(c), .. } = new.attr.target {
                let pairs: BTreeSet<(TaskId, u16)> = list
                    .iter()
                    .filter(|l| l.attr.pinned)
                    .filter_map(|l| match l.attr.target {
                        Target::Task { task, cpu: Some(c) } => Some((task, c)),
                        _ => None,
                    })
                    .collect();
                if !pairs.contains(&(t, c)) && pairs.len() == TASKS {
                    return Err(Error::TooManyTasks);
                }
            }
        }
        let mut with: Vec<Live> = list.to_vec();
        with.push(new.clone());
        for cpu in (0..self.nr).filter(|&c| on_cpu(new.attr.target, c)) {
            if self.worst(&with, cpu, new.pool) > slots(&self.cfg, new.pool) {
                return Err(Error::NoSlot { cpu });
            }
        }
        Ok(())
    }

    fn live_index(&self, h: Handle) -> Option<usize> {
        self.live.iter().position(|l| l.handle == Some(h))
    }

    fn known(&self) -> impl Iterator<Item = (Handle, &Live)> {
        self.live.iter().filter_map(|l| Some((l.handle?, l)))
    }

    fn reserved_mask(&self, cpu: u16, pool: usize) -> u32 {
        let n = slots(&self.cfg, pool);
        let r = u16::from(self.reserved[usize::from(cpu)][pool]);
        (n - r..n).fold(0, |m, s| m | 1 << s)
    }
}

// ---------------------------------------------------------------- operations

#[derive(Clone, Debug)]
enum Op {
    Register(BreakpointAttr),
    Modify(usize, BreakpointAttr),
    Enable(usize),
    Disable(usize),
    Unregister(usize),
    Fork(u64, u64),
    Exit(u64),
    Online(u16),
    Offline(u16),
    Reserve(u16, bool, u8),
    Unreserve(u16, bool),
    SchedIn(u16, Option<u64>),
    SchedOut(u16),
    Rotate(u16),
    Sync(u16),
    Access(u16, u64, u8, u8),
    /// An access near a live breakpoint's region: (cpu, handle pick, offset
    /// from its first byte, length, kind selector).
    AccessNear(u16, usize, i8, u8, u8),
    /// A guest loads its own debug registers on a CPU, then the host gives
    /// them back with `restore`: (cpu, guest register seed).
    Clobber(u16, u64),
    /// `init` again with a new CPU count; on success the embedder brings the
    /// CPUs in the mask online (and every CPU that was online before).
    ReInit(u16, u8),
}

fn access_strategy() -> impl Strategy<Value = Access> {
    prop_oneof![
        6 => Just(Access::WRITE),
        4 => Just(Access::READ),
        6 => Just(Access::RW),
        6 => Just(Access::EXEC),
        1 => Just(Access::EXEC | Access::WRITE),
        1 => Just(Access::empty()),
    ]
}

fn target_strategy() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => (0..PICK_CPUS + 1).prop_map(Target::Cpu),
        2 => Just(Target::AllCpus),
        5 => (0..NTASKS, prop::option::weighted(0.3, 0..PICK_CPUS + 1))
            .prop_map(|(t, cpu)| Target::Task { task: TaskId(t), cpu }),
    ]
}

fn attr_strategy() -> impl Strategy<Value = BreakpointAttr> {
    let addr = prop_oneof![
        8 => (0u64..48).prop_map(|o| 0x1000 + o),
        1 => (0u64..16).prop_map(|o| 0x7fff_fff8 + o),
        1 => (0u64..16).prop_map(|o| u64::MAX - o),
    ];
    let len = prop_oneof![
        8 => 1u64..=8,
        4 => 1u64..=40,
        1 => Just(0u64),
        1 => 100u64..200,
    ];
    (
        addr,
        len,
        access_strategy(),
        target_strategy(),
        prop::bool::weighted(0.7),
        prop_oneof![12 => 1u64..4, 1 => Just(0u64)],
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(addr, len, access, target, pinned, period, inherit, disabled, xu, xk)| {
                let len = if access == Access::EXEC && len <= 8 {
                    1
                } else {
                    len
                };
                BreakpointAttr::watch(addr, len, access)
                    .target(target)
                    .pinned(pinned)
                    .sample_period(period)
                    .inherit(inherit)
                    .disabled(disabled)
                    .exclude_user(xu)
                    .exclude_kernel(xk)
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let cpu = || prop_oneof![9 => 0..PICK_CPUS, 1 => PICK_CPUS..PICK_CPUS + 5, 1 => Just(u16::MAX)];
    prop_oneof![
        16 => attr_strategy().prop_map(Op::Register),
        3 => (any::<usize>(), attr_strategy()).prop_map(|(h, a)| Op::Modify(h, a)),
        2 => any::<usize>().prop_map(Op::Enable),
        2 => any::<usize>().prop_map(Op::Disable),
        4 => any::<usize>().prop_map(Op::Unregister),
        2 => (0..NTASKS, 0..NTASKS).prop_map(|(p, c)| Op::Fork(p, c)),
        2 => (0..NTASKS).prop_map(Op::Exit),
        2 => cpu().prop_map(Op::Online),
        1 => cpu().prop_map(Op::Offline),
        3 => (cpu(), any::<bool>(), 0u8..8).prop_map(|(c, i, n)| Op::Reserve(c, i, n)),
        1 => (cpu(), any::<bool>()).prop_map(|(c, i)| Op::Unreserve(c, i)),
        5 => (cpu(), prop::option::weighted(0.8, 0..NTASKS)).prop_map(|(c, t)| Op::SchedIn(c, t)),
        2 => cpu().prop_map(Op::SchedOut),
        3 => cpu().prop_map(Op::Rotate),
        1 => cpu().prop_map(Op::Sync),
        5 => (0..PICK_CPUS, 0x1000u64..0x1038, 1u8..=8, 0u8..4).prop_map(|(c, a, l, k)| Op::Access(c, a, l, k)),
        5 => (0..PICK_CPUS, any::<usize>(), -6i8..12, 1u8..=8, any::<u8>())
            .prop_map(|(c, h, o, l, k)| Op::AccessNear(c, h, o, l, k)),
        1 => (cpu(), any::<u64>()).prop_map(|(c, g)| Op::Clobber(c, g)),
        1 => (0..PICK_CPUS + 2, any::<u8>()).prop_map(|(n, m)| Op::ReInit(n, m)),
    ]
}

/// Task-heavy sequences: small task-bound requests, forks and exits, so that the
/// task table and the event storage fill up.
fn task_op_strategy() -> impl Strategy<Value = Op> {
    let attr = (
        attr_strategy(),
        0..NTASKS,
        1u64..=2,
        prop::option::weighted(0.2, 0..PICK_CPUS),
    )
        .prop_map(|(a, t, len, cpu)| {
            a.len(if a.access == Access::EXEC { 1 } else { len })
                .addr(a.addr & !7)
                .target(Target::Task {
                    task: TaskId(t),
                    cpu,
                })
        });
    prop_oneof![
        12 => attr.prop_map(Op::Register),
        2 => any::<usize>().prop_map(Op::Unregister),
        3 => (0..NTASKS, 0..NTASKS).prop_map(|(p, c)| Op::Fork(p, c)),
        1 => (0..NTASKS).prop_map(Op::Exit),
        3 => (0..PICK_CPUS, prop::option::weighted(0.9, 0..NTASKS)).prop_map(|(c, t)| Op::SchedIn(c, t)),
        1 => (0..PICK_CPUS, any::<bool>(), 0u8..3).prop_map(|(c, i, n)| Op::Reserve(c, i, n)),
        2 => (0..PICK_CPUS, 0x1000u64..0x1038, 1u8..=8, 0u8..4).prop_map(|(c, a, l, k)| Op::Access(c, a, l, k)),
    ]
}

/// A case's operations: mixed, or task-heavy.
fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
    prop_oneof![
        3 => prop::collection::vec(op_strategy(), 1..80),
        1 => prop::collection::vec(task_op_strategy(), 1..80),
    ]
}

/// The parts of a breakpoint that an empty manager accepts on every mock
/// shape whatever its number of CPUs: see [`always_registrable`].
type Fallback = (u64, Access, u16, u8, u64, bool);

fn fallback_strategy() -> impl Strategy<Value = Fallback> {
    (
        0u64..48,
        prop_oneof![
            Just(Access::WRITE),
            Just(Access::READ),
            Just(Access::RW),
            Just(Access::EXEC)
        ],
        0..PICK_CPUS,
        0..4u8,
        0..NTASKS,
        any::<bool>(),
    )
}

/// One register, valid, its target within the `nr` CPUs: an empty manager
/// accepts it, pinned or flexible.
fn always_registrable(
    (off, access, cpu, which, task, pinned): Fallback,
    nr: u16,
) -> BreakpointAttr {
    let cpu = cpu % nr.max(1);
    let target = match which {
        0 => Target::Cpu(cpu),
        1 => Target::AllCpus,
        2 => Target::Task {
            task: TaskId(task),
            cpu: None,
        },
        _ => Target::Task {
            task: TaskId(task),
            cpu: Some(cpu),
        },
    };
    let a = BreakpointAttr::watch(0x1000 + off, 1, access).target(target);
    if pinned {
        a
    } else {
        a.flexible()
    }
}

fn config_strategy() -> impl Strategy<Value = MockConfig> {
    prop_oneof![
        Just(MockConfig::X86_LIKE),
        Just(MockConfig::ARM_LIKE),
        Just(MockConfig::SH_LIKE),
    ]
}

// ---------------------------------------------------------------- the harness

/// Outcomes seen, by operation and error, so that `the_search_reaches_every_outcome`
/// can check the generators actually reach the interesting cases.
static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
/// The error of the last refused call, set by `apply`.
static LAST_ERR: Mutex<Option<Error>> = Mutex::new(None);

fn note(op: &Op, refused: bool) {
    let name = format!("{op:?}");
    let name = name.split(['(', ' ']).next().unwrap_or("").to_string();
    let err = LAST_ERR.lock().unwrap().take();
    let what = match (refused, err) {
        (false, _) => format!("{name} ok"),
        (true, Some(e)) => format!("{name} {:?}", e)
            .split([' ', '{'])
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        (true, None) => format!("{name} refused"),
    };
    SEEN.lock().unwrap().insert(what);
}

fn refuse(e: Error) {
    *LAST_ERR.lock().unwrap() = Some(e);
}

/// What a caller can read about one handle: attr, hits, weight, slots per CPU.
type HandleView = (
    Result<BreakpointAttr, Error>,
    Result<u64, Error>,
    Result<u8, Error>,
    Vec<Result<u32, Error>>,
);

/// Everything a caller can observe, for "a refused call changes nothing".
#[derive(Debug, PartialEq)]
struct Snapshot {
    table: ConstraintTable<CPUS, TASKS>,
    len: usize,
    images: Vec<Result<Image<MockSlot>, Error>>,
    regs: Vec<Option<MockSlot>>,
    per_handle: Vec<HandleView>,
    writes: Vec<u64>,
}

struct Run {
    hw: Box<Hw>,
    m: Model,
}

impl Run {
    fn new(cfg: MockConfig, nr: u16, online: u8) -> Run {
        let hw: Box<Hw> = Box::new(Manager::new(Mock::new(cfg), Recorder::default()));
        hw.init(nr).unwrap();
        let mut m = Model {
            cfg,
            nr,
            live: Vec::new(),
            dead: Vec::new(),
            reserved: [[0; 2]; CPUS],
            cpu: [CpuSt::Offline; CPUS],
            out_live: std::array::from_fn(|_| Vec::new()),
        };
        for c in 0..nr {
            if starts_online(online, c) {
                hw.cpu_online(c).unwrap();
                m.cpu[usize::from(c)] = CpuSt::In(None);
            }
        }
        Run { hw, m }
    }

    fn handles(&self) -> Vec<Handle> {
        self.m
            .known()
            .map(|(h, _)| h)
            .chain(self.m.dead.iter().copied())
            .collect()
    }

    fn pick(&self, n: usize) -> Option<Handle> {
        let all = self.handles();
        (!all.is_empty()).then(|| all[n % all.len()])
    }

    fn snapshot(&self) -> Snapshot {
        let hw = &self.hw;
        let cpus = 0..self.m.nr;
        let mut regs = Vec::new();
        for c in cpus.clone() {
            for p in 0..2u8 {
                for s in 0..16 {
                    regs.push(hw.arch().register(c, Pool(p), s));
                }
            }
        }
        Snapshot {
            table: hw.inspect_table(Clone::clone).unwrap(),
            len: hw.len(),
            images: cpus.clone().map(|c| hw.image(c)).collect(),
            regs,
            per_handle: self
                .handles()
                .into_iter()
                .map(|h| {
                    (
                        hw.attr(h),
                        hw.hits(h),
                        hw.weight(h),
                        cpus.clone().map(|c| hw.slots_on(h, c)).collect(),
                    )
                })
                .collect(),
            writes: cpus.map(|c| hw.arch().writes(c)).collect(),
        }
    }

    /// What an embedder does with a returned CPU set.
    fn sync(&mut self, set: CpuSet) {
        for c in set.iter() {
            assert!(c < self.m.nr, "sync set names CPU {c} beyond {}", self.m.nr);
            self.hw.sync(c).unwrap();
            self.synced(c);
        }
    }

    fn synced(&mut self, c: u16) {
        if let Some(st @ CpuSt::Out) = self.m.cpu.get_mut(usize::from(c)) {
            *st = CpuSt::In(None);
        }
    }

    /// Run one step; returns an error description for proptest.
    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let before = self.snapshot();
        let refused = self.apply(op)?;
        note(op, refused);
        if refused {
            let after = self.snapshot();
            prop_assert_eq!(&before, &after, "refused {:?} changed state", op);
        }
        self.check()
    }

    /// Returns whether the call was refused.
    fn apply(&mut self, op: &Op) -> Result<bool, TestCaseError> {
        let nr = self.m.nr;
        let cpu_err =
            |c: u16| -> Option<Error> { (c >= nr).then_some(Error::CpuOutOfRange { cpu: c }) };
        match *op {
            Op::Register(ref a) => {
                let expect = self.m.encode(a).and_then(|(pool, pieces)| {
                    if self.m.live.len() == EVENTS {
                        return Err(Error::TooManyEvents);
                    }
                    let l = Live {
                        handle: None,
                        anon_index: 0,
                        attr: *a,
                        enabled: !a.disabled,
                        pool,
                        pieces,
                    };
                    self.m.fits(&self.m.live, &l)?;
                    Ok(l)
                });
                let got = self.hw.register(a);
                match (got, expect) {
                    (Ok(r), Ok(mut l)) => {
                        prop_assert!(self.m.live_index(r.handle).is_none());
                        prop_assert!(
                            !self
                                .m
                                .live
                                .iter()
                                .any(|l| l.handle.is_none() && l.anon_index == r.handle.index()),
                            "oracle's idea of fork-copy storage is wrong"
                        );
                        prop_assert_eq!(self.hw.weight(r.handle), Ok(l.pieces.len() as u8));
                        l.handle = Some(r.handle);
                        self.m.dead.retain(|&d| d != r.handle);
                        self.m.live.push(l);
                        self.sync(r.sync);
                        Ok(false)
                    }
                    (Err(e), Err(x)) => {
                        refuse(e);
                        prop_assert_eq!(e, x, "register {:?}", a);
                        Ok(true)
                    }
                    (got, expect) => Err(TestCaseError::fail(format!(
                        "register {a:?}: manager {got:?}, oracle {:?}",
                        expect.map(|l| l.pieces)
                    ))),
                }
            }
            Op::Modify(n, ref a) => {
                let Some(h) = self.pick(n) else {
                    return Ok(false);
                };
                let expect = match self.m.live_index(h) {
                    None => Err(Error::StaleHandle),
                    Some(i) => self.m.encode(a).and_then(|(pool, pieces)| {
                        let mut rest = self.m.live.clone();
                        rest.remove(i);
                        let l = Live {
                            handle: Some(h),
                            anon_index: 0,
                            attr: *a,
                            enabled: !a.disabled,
                            pool,
                            pieces,
                        };
                        self.m.fits(&rest, &l)?;
                        Ok((i, l))
                    }),
                };
                let got = self.hw.modify(h, a);
                match (got, expect) {
                    (Ok(set), Ok((i, l))) => {
                        self.m.live[i] = l;
                        self.sync(set);
                        Ok(false)
                    }
                    (Err(e), Err(x)) => {
                        refuse(e);
                        prop_assert_eq!(e, x, "modify {:?}", a);
                        Ok(true)
                    }
                    (got, expect) => Err(TestCaseError::fail(format!(
                        "modify {a:?}: manager {got:?}, oracle {:?}",
                        expect.map(|(_, l)| l.pieces)
                    ))),
                }
            }
            Op::Enable(n) | Op::Disable(n) => {
                let Some(h) = self.pick(n) else {
                    return Ok(false);
                };
                let on = matches!(op, Op::Enable(_));
                let got = if on {
                    self.hw.enable(h)
                } else {
                    self.hw.disable(h)
                };
                match (got, self.m.live_index(h)) {
                    (Ok(set), Some(i)) => {
                        self.m.live[i].enabled = on;
                        self.sync(set);
                        Ok(false)
                    }
                    (Err(Error::StaleHandle), None) => {
                        refuse(Error::StaleHandle);
                        Ok(true)
                    }
                    (got, i) => Err(TestCaseError::fail(format!(
                        "enable({on}) {got:?} live {i:?}"
                    ))),
                }
            }
            Op::Unregister(n) => {
                let Some(h) = self.pick(n) else {
                    return Ok(false);
                };
                match (self.hw.unregister(h), self.m.live_index(h)) {
                    (Ok(set), Some(i)) => {
                        self.m.live.remove(i);
                        self.m.dead.push(h);
                        self.sync(set);
                        Ok(false)
                    }
                    (Err(Error::StaleHandle), None) => {
                        refuse(Error::StaleHandle);
                        Ok(true)
                    }
                    (got, i) => Err(TestCaseError::fail(format!(
                        "unregister {got:?} live {i:?}"
                    ))),
                }
            }
            Op::Fork(p, c) => {
                let (parent, child) = (TaskId(p), TaskId(c));
                let mut copies: Vec<(u16, Live)> = self
                    .m
                    .live
                    .iter()
                    .filter(|l| l.attr.inherit && l.attr.task() == Some(parent))
                    .map(|l| {
                        let mut c = l.clone();
                        // The manager copies in storage-index order.
                        let idx = l.handle.map_or(l.anon_index, Handle::index);
                        c.handle = None;
                        if let Target::Task { cpu, .. } = l.attr.target {
                            c.attr.target = Target::Task { task: child, cpu };
                        }
                        (idx, c)
                    })
                    .collect();
                copies.sort_by_key(|(i, _)| *i);
                let expect = if copies.len() > EVENTS - self.m.live.len() {
                    Err(Error::TooManyEvents)
                } else {
                    let mut list = self.m.live.clone();
                    let mut r = Ok(());
                    for (_, c) in &copies {
                        if let Err(e) = self.m.fits(&list, c) {
                            r = Err(e);
                            break;
                        }
                        list.push(c.clone());
                    }
                    r
                };
                match (self.hw.fork(parent, child), expect) {
                    (Ok(set), Ok(())) => {
                        let used: Vec<u16> = self
                            .m
                            .live
                            .iter()
                            .map(|l| l.handle.map_or(l.anon_index, Handle::index))
                            .collect();
                        let mut free = (0..EVENTS as u16).filter(|i| !used.contains(i));
                        for (_, mut c) in copies {
                            c.anon_index = free.next().unwrap();
                            self.m.live.push(c);
                        }
                        self.sync(set);
                        Ok(false)
                    }
                    (Err(e), Err(x)) => {
                        refuse(e);
                        prop_assert_eq!(e, x, "fork {} -> {}", p, c);
                        Ok(true)
                    }
                    (got, x) => Err(TestCaseError::fail(format!(
                        "fork {p}->{c}: {got:?} oracle {x:?}"
                    ))),
                }
            }
            Op::Exit(t) => {
                let set = self.hw.exit(TaskId(t));
                prop_assert!(set.is_ok());
                let (gone, keep): (Vec<Live>, Vec<Live>) = std::mem::take(&mut self.m.live)
                    .into_iter()
                    .partition(|l| l.attr.task() == Some(TaskId(t)));
                self.m.live = keep;
                self.m.dead.extend(gone.iter().filter_map(|l| l.handle));
                self.sync(set.unwrap());
                Ok(false)
            }
            Op::Online(c) => {
                let got = self.hw.cpu_online(c);
                match cpu_err(c) {
                    Some(e) => {
                        prop_assert_eq!(got, Err(e));
                        Ok(true)
                    }
                    None => {
                        prop_assert_eq!(got, Ok(()));
                        // Re-onlining an online CPU keeps the task running
                        // there (`sched_out` already cleared it).
                        let st = &mut self.m.cpu[usize::from(c)];
                        *st = match *st {
                            CpuSt::In(task) => CpuSt::In(task),
                            CpuSt::Offline | CpuSt::Out => CpuSt::In(None),
                        };
                        Ok(false)
                    }
                }
            }
            Op::Offline(c) => {
                let got = self.hw.cpu_offline(c);
                match cpu_err(c) {
                    Some(e) => {
                        prop_assert_eq!(got, Err(e));
                        Ok(true)
                    }
                    None => {
                        prop_assert_eq!(got, Ok(()));
                        self.m.cpu[usize::from(c)] = CpuSt::Offline;
                        Ok(false)
                    }
                }
            }
            Op::Reserve(c, inst, n) => {
                let ty = if inst { BpType::Inst } else { BpType::Data };
                let probe =
                    BreakpointAttr::watch(0, 1, if inst { Access::EXEC } else { Access::WRITE });
                let pool = pool_of(&self.m.cfg, &probe);
                let total = slots(&self.m.cfg, pool);
                let expect = match cpu_err(c) {
                    Some(e) => Err(e),
                    None => {
                        let others = self.m.worst(&self.m.live, c, pool)
                            - u16::from(self.m.reserved[usize::from(c)][pool]);
                        if others + u16::from(n) > total {
                            Err(Error::NoSlot { cpu: c })
                        } else {
                            Ok(())
                        }
                    }
                };
                match (self.hw.reserve(c, ty, n), expect) {
                    (Ok(r), Ok(())) => {
                        prop_assert_eq!(r.pool, Pool(pool as u8));
                        prop_assert_eq!(u16::from(r.first), total - u16::from(n));
                        prop_assert_eq!(r.count, n);
                        self.m.reserved[usize::from(c)][pool] = n;
                        self.hw.sync(c).unwrap();
                        self.synced(c);
                        Ok(false)
                    }
                    (Err(e), Err(x)) => {
                        refuse(e);
                        prop_assert_eq!(e, x);
                        Ok(true)
                    }
                    (got, x) => Err(TestCaseError::fail(format!(
                        "reserve({c},{ty:?},{n}): {got:?} oracle {x:?}"
                    ))),
                }
            }
            Op::Unreserve(c, inst) => {
                let ty = if inst { BpType::Inst } else { BpType::Data };
                let probe =
                    BreakpointAttr::watch(0, 1, if inst { Access::EXEC } else { Access::WRITE });
                let pool = pool_of(&self.m.cfg, &probe);
                let had = self.m.reserved.get(usize::from(c)).map_or(0, |r| r[pool]);
                let got = self.hw.unreserve(c, ty);
                if let Some(e) = cpu_err(c) {
                    prop_assert_eq!(got, Err(e));
                    Ok(true)
                } else if had == 0 {
                    prop_assert_eq!(got, Err(Error::NotReserved));
                    Ok(true)
                } else {
                    prop_assert_eq!(got, Ok(()));
                    self.m.reserved[usize::from(c)][pool] = 0;
                    self.hw.sync(c).unwrap();
                    self.synced(c);
                    Ok(false)
                }
            }
            Op::SchedIn(c, t) => {
                let task = t.map(TaskId);
                let got = self.hw.sched_in(c, task);
                match cpu_err(c) {
                    Some(e) => {
                        prop_assert_eq!(got, Err(e));
                        Ok(true)
                    }
                    None => {
                        prop_assert_eq!(got, Ok(()));
                        let st = &mut self.m.cpu[usize::from(c)];
                        if *st != CpuSt::Offline {
                            *st = CpuSt::In(task);
                        }
                        Ok(false)
                    }
                }
            }
            Op::SchedOut(c) => {
                let got = self.hw.sched_out(c);
                match cpu_err(c) {
                    Some(e) => {
                        prop_assert_eq!(got, Err(e));
                        Ok(true)
                    }
                    None => {
                        prop_assert_eq!(got, Ok(()));
                        let live: Vec<Handle> = self.m.known().map(|(h, _)| h).collect();
                        let st = &mut self.m.cpu[usize::from(c)];
                        if *st != CpuSt::Offline {
                            *st = CpuSt::Out;
                            self.m.out_live[usize::from(c)] = live;
                        }
                        Ok(false)
                    }
                }
            }
            Op::Rotate(c) | Op::Sync(c) => {
                let got = if matches!(op, Op::Rotate(_)) {
                    self.hw.rotate(c)
                } else {
                    self.hw.sync(c)
                };
                match cpu_err(c) {
                    Some(e) => {
                        prop_assert_eq!(got, Err(e));
                        // A refused rotate must not even count time.
                        Ok(true)
                    }
                    None => {
                        prop_assert_eq!(got, Ok(()));
                        self.synced(c);
                        Ok(false)
                    }
                }
            }
            Op::Access(c, addr, len, kind) => {
                let (kind, len) = match kind {
                    0 => (Access::READ, len),
                    1 | 2 => (Access::WRITE, len),
                    _ => (Access::EXEC, 1),
                };
                self.access(c, addr, len, kind)?;
                Ok(false)
            }
            Op::Clobber(c, seed) => {
                if c >= nr {
                    let empty = Image::empty(self.m.cfg.counts);
                    prop_assert_eq!(
                        self.hw.restore(c, &empty),
                        Err(Error::CpuOutOfRange { cpu: c })
                    );
                    return Ok(true);
                }
                if self.m.cpu[usize::from(c)] == CpuSt::Offline {
                    return Ok(false);
                }
                let host = self.hw.image(c).unwrap();
                let mut guest = host.clone();
                for (p, regs) in guest.pools.iter_mut().enumerate() {
                    for (s, r) in regs.iter_mut().enumerate() {
                        if (seed >> ((p * 16 + s) % 64)) & 1 != 0 {
                            *r = MockSlot {
                                addr: 0x9000 + 8 * s as u64,
                                len: 1 + (seed >> 60) as u8 % 8,
                                access: Access::WRITE,
                            };
                        }
                    }
                }
                // The guest's registers, written by the hypervisor.
                self.hw.arch().install(c, &(), &host, &guest);
                prop_assert_eq!(self.hw.restore(c, &guest), Ok(()));
                Ok(false)
            }
            Op::ReInit(n, online) => {
                let expect = if n == 0 || usize::from(n) > CPUS {
                    Err(Error::CpuOutOfRange { cpu: n })
                } else if !self.m.live.is_empty() {
                    Err(Error::Busy)
                } else {
                    Ok(())
                };
                let got = self.hw.init(n);
                prop_assert_eq!(got, expect);
                if let Err(e) = got {
                    refuse(e);
                    return Ok(true);
                }
                let was: Vec<bool> = self.m.cpu.iter().map(|s| *s != CpuSt::Offline).collect();
                self.m.nr = n;
                self.m.reserved = [[0; 2]; CPUS];
                self.m.cpu = [CpuSt::Offline; CPUS];
                for c in 0..n {
                    if was[usize::from(c)] || starts_online(online, c) {
                        self.hw.cpu_online(c).unwrap();
                        self.m.cpu[usize::from(c)] = CpuSt::In(None);
                    }
                }
                Ok(false)
            }
            Op::AccessNear(c, n, off, len, sel) => {
                let Some((_, l)) = self.m.known().nth(n % self.m.live.len().max(1)) else {
                    return Ok(false);
                };
                let a = l.attr;
                let addr = a.addr.wrapping_add_signed(i64::from(off));
                let (kind, len) = if a.access.contains(Access::EXEC) {
                    (
                        if sel % 8 == 0 {
                            Access::READ
                        } else {
                            Access::EXEC
                        },
                        1,
                    )
                } else if sel % 8 == 0 {
                    (Access::EXEC, 1)
                } else if a.access == Access::RW {
                    (
                        if sel & 1 == 0 {
                            Access::READ
                        } else {
                            Access::WRITE
                        },
                        len,
                    )
                } else {
                    (
                        if sel % 4 == 1 {
                            a.access.complement() & Access::RW
                        } else {
                            a.access
                        },
                        len,
                    )
                };
                self.access(c, addr, len, kind)?;
                Ok(false)
            }
        }
    }

    fn access(&mut self, c: u16, addr: u64, len: u8, kind: Access) -> Result<(), TestCaseError> {
        if c >= self.m.nr {
            return Ok(());
        }
        let len = u64::from(len);
        let known: Vec<(Handle, Live)> = self.m.known().map(|(h, l)| (h, l.clone())).collect();
        let before: Vec<(u64, u32)> = known
            .iter()
            .map(|(h, _)| (self.hw.hits(*h).unwrap(), self.hw.slots_on(*h, c).unwrap()))
            .collect();
        self.hw.handler().0.lock().unwrap().clear();
        let hits_reg = |r: &MockSlot| {
            r.len != 0
                && r.access.intersects(kind)
                && u128::from(r.addr) < u128::from(addr) + u128::from(len)
                && u128::from(addr) < u128::from(r.addr) + u128::from(r.len)
        };
        // Between sched_out and the next sched_in the hardware still holds the
        // previous context; only the weak checks apply there.
        let scheduled = matches!(self.m.cpu[usize::from(c)], CpuSt::In(_));
        let precise = self.m.cfg.precise;
        let by_address = match self.m.cpu[usize::from(c)] {
            CpuSt::In(task) if !precise => {
                self.by_address_oracle(c, task, &known, &before, addr, len, kind)
            }
            _ => None,
        };
        self.hw.access(c, addr, len, kind, 0x40_0000);
        if let Some(expect) = by_address {
            for ((h, _), (hits0, _)) in known.iter().zip(&before) {
                let got = self.hw.hits(*h).unwrap() - hits0;
                let want = u64::from(expect.contains(h));
                prop_assert_eq!(got, want, "address-only dispatch of {:?} at {:#x}", h, addr);
            }
        }
        for ((h, l), (hits0, mask)) in known.iter().zip(before) {
            let hits1 = self.hw.hits(*h).unwrap();
            let pool = Pool(l.pool as u8);
            let matched = (0..16)
                .filter(|s| mask & (1 << s) != 0)
                .any(|s| hits_reg(&self.hw.arch().register(c, pool, s).unwrap()));
            if mask == 0 {
                prop_assert_eq!(hits1, hits0, "{:?} credited while not on CPU {}", h, c);
            } else if !scheduled {
                prop_assert!(hits1 <= hits0 + 1);
            } else if precise {
                prop_assert_eq!(hits1, hits0 + u64::from(matched), "{:?} precise", h);
            } else {
                let exact = matched
                    && l.attr.access.intersects(kind)
                    && addr >= l.attr.addr
                    && addr - l.attr.addr < l.attr.len;
                if exact {
                    prop_assert_eq!(hits1, hits0 + 1, "{:?} exact by address", h);
                } else {
                    prop_assert!(hits1 <= hits0 + 1);
                }
            }
        }
        for s in self.hw.handler().0.lock().unwrap().iter() {
            prop_assert_eq!(s.cpu, c);
            prop_assert!(
                !self.m.dead.contains(&s.handle),
                "handler ran for unregistered {:?}",
                s.handle
            );
            if let Some((_, l)) = known.iter().find(|(h, _)| *h == s.handle) {
                prop_assert_eq!((s.region_addr, s.region_len), (l.attr.addr, l.attr.len));
                prop_assert_eq!(Ok(s.hits), self.hw.hits(s.handle));
                prop_assert_eq!(s.hits % l.attr.sample_period, 0);
            }
        }
        Ok(())
    }

    /// The documented rule for hardware that reports only the address (Arm):
    /// among the occupied slots of the pool whose event watches this access
    /// kind, credit every event whose region contains the address; if none,
    /// a slot whose hardware range contains it makes the hit a filtered stray;
    /// otherwise the closest slot (first in slot order on a tie) is credited.
    /// Returns the handles to be credited, or `None` when a fork copy (whose
    /// slots the oracle cannot see) takes part.
    #[allow(clippy::too_many_arguments)]
    fn by_address_oracle(
        &self,
        c: u16,
        task: Option<TaskId>,
        known: &[(Handle, Live)],
        before: &[(u64, u32)],
        addr: u64,
        len: u64,
        kind: Access,
    ) -> Option<Vec<Handle>> {
        let pool = pool_of(&self.m.cfg, &BreakpointAttr::watch(0, 1, kind));
        let anon = self
            .m
            .live
            .iter()
            .any(|l| l.handle.is_none() && l.pool == pool && eligible(l, c, task));
        if anon {
            return None;
        }
        let n = usize::from(slots(&self.m.cfg, pool));
        let regs: Vec<MockSlot> = (0..n)
            .map(|s| self.hw.arch().register(c, Pool(pool as u8), s).unwrap())
            .collect();
        let raised = regs.iter().any(|r| {
            r.len != 0
                && r.access.intersects(kind)
                && u128::from(r.addr) < u128::from(addr) + u128::from(len)
                && u128::from(addr) < u128::from(r.addr) + u128::from(r.len)
        });
        if !raised {
            return Some(Vec::new());
        }
        SEEN.lock().unwrap().insert("ByAddress raised".into());
        // (slot, handle, its region contains addr, piece)
        let mut occ: Vec<(usize, Handle, bool, MockSlot)> = Vec::new();
        for ((h, l), (_, mask)) in known.iter().zip(before) {
            if l.pool != pool || !l.attr.access.intersects(kind) {
                continue;
            }
            for s in (0..n).filter(|s| mask & (1 << s) != 0) {
                let inside = addr >= l.attr.addr && addr - l.attr.addr < l.attr.len;
                occ.push((s, *h, inside, regs[s]));
            }
        }
        occ.sort_by_key(|o| o.0);
        let mut exact: Vec<Handle> = occ.iter().filter(|o| o.2).map(|o| o.1).collect();
        exact.dedup();
        if !exact.is_empty() {
            SEEN.lock().unwrap().insert("ByAddress exact".into());
            return Some(exact);
        }
        // Distance from `addr` to the register's bytes [addr, addr + len),
        // which may end at 2^64 (a register on the last byte): in u128.
        let dist = |r: &MockSlot| {
            let (a, start) = (u128::from(addr), u128::from(r.addr));
            let last = start + u128::from(r.len.max(1)) - 1;
            let d = if a < start {
                start - a
            } else {
                a.saturating_sub(last)
            };
            u64::try_from(d).unwrap()
        };
        if occ.iter().any(|o| dist(&o.3) == 0) {
            SEEN.lock().unwrap().insert("ByAddress filtered".into());
            return Some(Vec::new());
        }
        if self.m.reserved[usize::from(c)][pool] != 0 {
            // A debugger holds registers of this pool: no guess, it is theirs
            // to look at.
            SEEN.lock().unwrap().insert("ByAddress handed on".into());
            return Some(Vec::new());
        }
        SEEN.lock().unwrap().insert("ByAddress closest".into());
        let mut best: Option<(u64, Handle)> = None;
        for o in &occ {
            let d = dist(&o.3);
            if best.is_none_or(|(b, _)| d < b) {
                best = Some((d, o.1));
            }
        }
        Some(best.map(|(_, h)| vec![h]).unwrap_or_default())
    }

    /// The invariants that hold after every step.
    fn check(&self) -> Result<(), TestCaseError> {
        let (hw, m) = (&self.hw, &self.m);
        prop_assert_eq!(
            hw.arch().desync(),
            0,
            "mock registers diverged from the core's image"
        );
        prop_assert_eq!(hw.len(), m.live.len());
        let table = hw.inspect_table(Clone::clone).unwrap();
        prop_assert_eq!(table.tasks(), Model::pinned_tasks(&m.live).len());
        for cpu in 0..m.nr {
            for p in 0..pools(&m.cfg) {
                prop_assert_eq!(
                    table.worst_case(cpu, Pool(p as u8)),
                    m.worst(&m.live, cpu, p),
                    "worst case cpu {} pool {}",
                    cpu,
                    p
                );
                prop_assert!(
                    m.worst(&m.live, cpu, p) <= slots(&m.cfg, p),
                    "oracle over-commit"
                );
            }
        }
        for (h, l) in m.known() {
            prop_assert_eq!(hw.attr(h), Ok(l.attr));
            prop_assert_eq!(hw.weight(h), Ok(l.pieces.len() as u8));
        }
        for &h in &m.dead {
            prop_assert_eq!(hw.attr(h), Err(Error::StaleHandle));
            prop_assert_eq!(hw.hits(h), Err(Error::StaleHandle));
            prop_assert_eq!(hw.slots_on(h, 0), Err(Error::StaleHandle));
        }
        for cpu in 0..m.nr {
            self.check_cpu(cpu)?;
        }
        Ok(())
    }

    #[allow(clippy::needless_range_loop)]
    fn check_cpu(&self, cpu: u16) -> Result<(), TestCaseError> {
        let (hw, m) = (&self.hw, &self.m);
        let st = m.cpu[usize::from(cpu)];
        let image = hw.image(cpu).unwrap();
        for p in 0..pools(&m.cfg) {
            let n = usize::from(slots(&m.cfg, p));
            let regs: Vec<MockSlot> = (0..n)
                .map(|s| hw.arch().register(cpu, Pool(p as u8), s).unwrap())
                .collect();
            prop_assert_eq!(
                &image.pools[p][..],
                &regs[..],
                "image vs registers, cpu {}",
                cpu
            );
            if st == CpuSt::Offline {
                prop_assert!(
                    regs.iter().all(|r| *r == MockSlot::default()),
                    "offline CPU {} has registers set",
                    cpu
                );
            }
        }
        let mut used = [0u32; 2];
        for (h, l) in m.known() {
            let mask = hw.slots_on(h, cpu).unwrap();
            if st == CpuSt::Offline {
                prop_assert_eq!(mask, 0);
            }
            prop_assert_eq!(used[l.pool] & mask, 0, "slot shared on CPU {}", cpu);
            used[l.pool] |= mask;
            if st == CpuSt::Out && mask != 0 {
                prop_assert!(
                    m.out_live[usize::from(cpu)].contains(&h),
                    "{:?} registered after CPU {} was switched out, yet reported in slots {:#x}",
                    h,
                    cpu,
                    mask
                );
            }
            let CpuSt::In(task) = st else { continue };
            let ok = eligible(l, cpu, task);
            if mask != 0 {
                prop_assert!(
                    ok,
                    "{:?} ineligible but on CPU {} ({:?})",
                    l.attr,
                    cpu,
                    task
                );
                prop_assert_eq!(mask.count_ones(), l.weight() as u32);
                prop_assert_eq!(mask & m.reserved_mask(cpu, l.pool), 0, "reserved slot used");
                let mut regs: Vec<MockSlot> = (0..16)
                    .filter(|s| mask & (1 << s) != 0)
                    .map(|s| hw.arch().register(cpu, Pool(l.pool as u8), s).unwrap())
                    .collect();
                let mut want = l.pieces.clone();
                regs.sort_by_key(|r| (r.addr, r.len));
                want.sort_by_key(|r| (r.addr, r.len));
                prop_assert_eq!(regs, want, "registers of {:?} on CPU {}", l.attr, cpu);
            }
            if ok && l.attr.pinned {
                prop_assert_eq!(
                    mask.count_ones(),
                    l.weight() as u32,
                    "pinned {:?} not on CPU {} running {:?}",
                    l.attr,
                    cpu,
                    task
                );
            }
        }
        // Registers no known handle accounts for: fork copies (anonymous).
        let CpuSt::In(task) = st else { return Ok(()) };
        for p in 0..pools(&m.cfg) {
            let n = slots(&m.cfg, p);
            let mut rest: Vec<MockSlot> = (0..n)
                .filter(|s| used[p] & (1 << s) == 0)
                .map(|s| {
                    hw.arch()
                        .register(cpu, Pool(p as u8), usize::from(s))
                        .unwrap()
                })
                .filter(|r| *r != MockSlot::default())
                .collect();
            prop_assert!(
                rest.len() as u16 <= n - u16::from(m.reserved[usize::from(cpu)][p]),
                "reserved slot used"
            );
            let anon: Vec<&Live> = m
                .live
                .iter()
                .filter(|l| l.handle.is_none() && l.pool == p && eligible(l, cpu, task))
                .collect();
            for l in anon.iter().filter(|l| l.attr.pinned) {
                for piece in &l.pieces {
                    let Some(i) = rest.iter().position(|r| r == piece) else {
                        return Err(TestCaseError::fail(format!(
                            "pinned fork copy {:?} not on CPU {cpu}",
                            l.attr
                        )));
                    };
                    rest.swap_remove(i);
                }
            }
            for r in &rest {
                prop_assert!(
                    anon.iter().any(|l| !l.attr.pinned && l.pieces.contains(r)),
                    "register {:?} on CPU {} belongs to no eligible event",
                    r,
                    cpu
                );
            }
        }
        Ok(())
    }

    /// Release everything; the table must be as new and the hardware empty.
    fn release_all(&mut self) -> Result<(), TestCaseError> {
        let handles: Vec<Handle> = self.m.known().map(|(h, _)| h).collect();
        for h in handles {
            let set = self.hw.unregister(h).unwrap();
            self.m.live.retain(|l| l.handle != Some(h));
            self.sync(set);
        }
        for t in 0..NTASKS {
            let set = self.hw.exit(TaskId(t)).unwrap();
            self.sync(set);
        }
        for c in 0..self.m.nr {
            for ty in [BpType::Inst, BpType::Data] {
                let _ = self.hw.unreserve(c, ty);
            }
        }
        self.m.live.clear();
        self.m.reserved = [[0; 2]; CPUS];
        prop_assert_eq!(self.hw.len(), 0);
        let fresh = ConstraintTable::<CPUS, TASKS>::new(self.m.cfg.counts, self.m.nr).unwrap();
        prop_assert_eq!(self.hw.inspect_table(Clone::clone).unwrap(), fresh, "table leaked counts");
        for c in 0..self.m.nr {
            self.hw.sync(c).unwrap();
            self.synced(c);
            let empty = Image::<MockSlot>::empty(self.m.cfg.counts);
            prop_assert_eq!(self.hw.image(c).unwrap(), empty);
        }
        self.check()
    }
}

