//! Issue 3: no public entry point of hwbp-core panics, whatever it is fed.
//!
//! Every public function and method is called with arbitrary values (any
//! address, length, access bits, CPU number, task, handle, slot count, demand,
//! raw exception, register image) and must return `Ok` or a typed `Err`. Where
//! a call succeeds, a cheap statement about its meaning is checked too, so the
//! tests also fail on nonsense results. A panic fails the property (proptest
//! catches it and shrinks the input).
//!
//! Case count: `PROPTEST_CASES` (default [`DEFAULT_CASES`]).

use hwbp_core::mock::{Mock, MockConfig, MockException, MockSlot};
use hwbp_core::{
    Access, AddressSpace, Arch, BpType, BreakpointAttr, Claim, ConstraintTable, Demand, Error,
    Fired, Handle, Image, Manager, Pool, Resume, Sample, SlotCounts, Target, TaskId, MAX_SLOTS,
};
use proptest::prelude::*;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..64,
        (0u64..64).prop_map(|x| u64::MAX - x),
        (0u64..64).prop_map(|x| 0x8000_0000 - 32 + x),
        (0u64..64).prop_map(|x| 0xffff_8000_0000_0000 - 32 + x),
    ]
}

fn edge_u16() -> impl Strategy<Value = u16> {
    prop_oneof![any::<u16>(), 0u16..70, Just(u16::MAX)]
}

fn any_access() -> impl Strategy<Value = Access> {
    any::<u8>().prop_map(Access::from_bits_retain)
}

fn any_target() -> impl Strategy<Value = Target> {
    prop_oneof![
        edge_u16().prop_map(Target::Cpu),
        Just(Target::AllCpus),
        (
            prop_oneof![0u64..4, any::<u64>()],
            prop::option::of(edge_u16())
        )
            .prop_map(|(t, cpu)| Target::Task {
                task: TaskId(t),
                cpu
            }),
    ]
}

prop_compose! {
    fn any_attr()(
        addr in edge_u64(),
        len in prop_oneof![0u64..80, edge_u64()],
        access in any_access(),
        target in any_target(),
        pinned in any::<bool>(),
        sample_period in prop_oneof![0u64..4, any::<u64>()],
        inherit in any::<bool>(),
        disabled in any::<bool>(),
        exclude_user in any::<bool>(),
        exclude_kernel in any::<bool>(),
    ) -> BreakpointAttr {
        BreakpointAttr::watch(addr, len, access)
            .target(target)
            .pinned(pinned)
            .sample_period(sample_period)
            .inherit(inherit)
            .disabled(disabled)
            .exclude_user(exclude_user)
            .exclude_kernel(exclude_kernel)
    }
}

fn any_counts() -> impl Strategy<Value = SlotCounts> {
    prop_oneof![
        any::<u8>().prop_map(SlotCounts::Shared),
        (any::<u8>(), any::<u8>()).prop_map(|(inst, data)| SlotCounts::Separate { inst, data }),
        (1u8..=16).prop_map(SlotCounts::Shared),
        (1u8..=16, 1u8..=16).prop_map(|(inst, data)| SlotCounts::Separate { inst, data }),
    ]
}

fn any_config() -> impl Strategy<Value = MockConfig> {
    (
        prop_oneof![
            Just(MockConfig::X86_LIKE),
            Just(MockConfig::ARM_LIKE),
            Just(MockConfig::SH_LIKE)
        ],
        prop_oneof![3 => prop::sample::select(vec![1u8, 2, 4, 8]), 1 => any::<u8>()],
    )
        .prop_map(|(c, max_piece)| MockConfig { max_piece, ..c })
}

fn any_fired() -> impl Strategy<Value = Fired> {
    prop_oneof![
        Just(Fired::None),
        (any::<u8>(), any::<u32>()).prop_map(|(p, mask)| Fired::Slots {
            pool: Pool(p),
            mask: mask as _
        }),
        any::<u8>().prop_map(|p| Fired::ByAddress { pool: Pool(p) }),
        any::<u8>().prop_map(|p| Fired::Unattributed { pool: Pool(p) }),
    ]
}

fn any_exception() -> impl Strategy<Value = MockException> {
    (any_fired(), edge_u64(), any::<u64>(), any_access()).prop_map(|(fired, addr, ip, access)| {
        MockException {
            fired,
            addr,
            ip,
            access,
        }
    })
}

fn any_slot() -> impl Strategy<Value = MockSlot> {
    (edge_u64(), any::<u8>(), any_access()).prop_map(|(addr, len, access)| MockSlot {
        addr,
        len,
        access,
    })
}

fn any_image() -> impl Strategy<Value = Image<MockSlot>> {
    (
        prop::collection::vec(any_slot(), 0..=MAX_SLOTS),
        prop::collection::vec(any_slot(), 0..=MAX_SLOTS),
    )
        .prop_map(|(a, b)| Image {
            pools: [
                heapless::Vec::from_slice(&a).unwrap(),
                heapless::Vec::from_slice(&b).unwrap(),
            ],
        })
}

fn any_demand() -> impl Strategy<Value = Demand> {
    (
        prop_oneof![0u8..3, any::<u8>()],
        prop_oneof![0u8..20, any::<u8>()],
        any::<bool>(),
        any_target(),
    )
        .prop_map(|(p, weight, pinned, target)| Demand {
            pool: Pool(p),
            weight,
            pinned,
            target,
        })
}

/// Every manager call, with arbitrary arguments.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum Call {
    Init(u16),
    Online(u16),
    Offline(u16),
    Register(BreakpointAttr),
    Modify(usize, BreakpointAttr),
    Enable(usize),
    Disable(usize),
    Unregister(usize),
    Fork(u64, u64),
    Exit(u64),
    Reserve(u16, bool, u8),
    Unreserve(u16, bool),
    SchedIn(u16, Option<u64>),
    SchedOut(u16),
    Sync(u16),
    Rotate(u16),
    Image(u16),
    Restore(u16, Image<MockSlot>),
    Query(usize, u16),
    Exception(u16, MockException),
    Access(u16, u64, u64, Access),
}

fn any_call() -> impl Strategy<Value = Call> {
    let task = || prop_oneof![0u64..4, any::<u64>()];
    prop_oneof![
        1 => edge_u16().prop_map(Call::Init),
        2 => edge_u16().prop_map(Call::Online),
        1 => edge_u16().prop_map(Call::Offline),
        6 => any_attr().prop_map(Call::Register),
        2 => (any::<usize>(), any_attr()).prop_map(|(h, a)| Call::Modify(h, a)),
        1 => any::<usize>().prop_map(Call::Enable),
        1 => any::<usize>().prop_map(Call::Disable),
        2 => any::<usize>().prop_map(Call::Unregister),
        1 => (task(), task()).prop_map(|(p, c)| Call::Fork(p, c)),
        1 => task().prop_map(Call::Exit),
        1 => (edge_u16(), any::<bool>(), any::<u8>()).prop_map(|(c, i, n)| Call::Reserve(c, i, n)),
        1 => (edge_u16(), any::<bool>()).prop_map(|(c, i)| Call::Unreserve(c, i)),
        2 => (edge_u16(), prop::option::of(task())).prop_map(|(c, t)| Call::SchedIn(c, t)),
        1 => edge_u16().prop_map(Call::SchedOut),
        1 => edge_u16().prop_map(Call::Sync),
        1 => edge_u16().prop_map(Call::Rotate),
        1 => edge_u16().prop_map(Call::Image),
        1 => (edge_u16(), any_image()).prop_map(|(c, i)| Call::Restore(c, i)),
        2 => (any::<usize>(), edge_u16()).prop_map(|(h, c)| Call::Query(h, c)),
        3 => (edge_u16(), any_exception()).prop_map(|(c, e)| Call::Exception(c, e)),
        3 => (edge_u16(), edge_u64(), edge_u64(), any_access()).prop_map(|(c, a, l, k)| Call::Access(c, a, l, k)),
    ]
}

type Hw = Manager<Mock, fn(&Sample), 3, 6, 2>;
/// A bigger manager whose handles name storage the small one does not have.
type Big = Manager<Mock, (), 1, 64, 2>;

fn foreign_handles() -> Vec<Handle> {
    let big: Box<Big> = Box::new(Manager::new(Mock::new(MockConfig::X86_LIKE), ()));
    big.init(1).unwrap();
    let mut out = Vec::new();
    for i in 0..64u64 {
        let r = big
            .register(&BreakpointAttr::watch(0x1000 + 8 * i, 1, Access::WRITE).flexible())
            .unwrap();
        out.push(r.handle);
    }
    out
}

fn is_cpu_error(e: &Error) -> bool {
    matches!(e, Error::CpuOutOfRange { .. } | Error::NotInitialized)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn attr_validation_never_panics(a in any_attr(), nr in edge_u16()) {
        let r = a.validate(nr);
        let _ = (a.bp_type(), a.cpu(), a.task(), a.last_byte());
        if r.is_ok() {
            prop_assert!(a.len > 0 && a.last_byte().is_some());
            prop_assert!(!a.access.is_empty() && a.sample_period > 0);
            prop_assert!(a.cpu().is_none_or(|c| c < nr));
        }
        // Display of every error is total.
        if let Err(e) = r {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn slot_counts_and_images_never_panic(c in any_counts(), p in any::<u8>(), s in any::<usize>(), ty in any::<bool>()) {
        let ty = if ty { BpType::Inst } else { BpType::Data };
        let _ = (c.pools(), c.slots(Pool(p)), c.pool_of(ty));
        let img = Image::<MockSlot>::empty(c);
        let got = img.get(Pool(p), s);
        if c.validate().is_ok() {
            prop_assert!(c.slots(c.pool_of(ty)) >= 1);
            if usize::from(p) < c.pools() && s < usize::from(c.slots(Pool(p))) {
                prop_assert_eq!(got, Some(MockSlot::default()));
            }
        } else {
            prop_assert_eq!(c.validate(), Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware)));
        }
        if s >= MAX_SLOTS {
            prop_assert_eq!(got, None);
        }
    }

    /// The mock encoder: Ok means pieces that are aligned, within the
    /// register size and exactly tile the region.
    #[test]
    fn mock_encode_never_panics(cfg in any_config(), a in any_attr(), cpu in edge_u16()) {
        let m = Mock::new(cfg);
        let _ = m.address_space(a.addr, a.len);
        let _ = m.init_cpu(cpu, &());
        match m.encode(&a) {
            // The meaning is only specified for the documented piece sizes and
            // for attrs that passed the generic validation (the manager never
            // encodes anything else).
            Ok(_) if !matches!(cfg.max_piece, 1 | 2 | 4 | 8) || a.validate(u16::MAX).is_err() => {}
            Ok(enc) => {
                prop_assert!(enc.weight() >= 1 && usize::from(enc.weight()) <= MAX_SLOTS);
                if a.access.contains(Access::EXEC) {
                    prop_assert_eq!(enc.weight(), 1);
                } else {
                    let mut next = u128::from(a.addr);
                    for p in &enc.pieces {
                        prop_assert_eq!(u128::from(p.hw_addr), next);
                        prop_assert!(p.hw_len.is_power_of_two() && p.hw_addr % p.hw_len == 0);
                        prop_assert!(p.hw_len <= u64::from(cfg.max_piece));
                        next += u128::from(p.hw_len);
                    }
                    prop_assert_eq!(next, u128::from(a.addr) + u128::from(a.len));
                }
            }
            Err(e) => prop_assert!(matches!(
                e,
                Error::UnsupportedLength { .. } | Error::RangeTooLarge { .. }
            ), "{:?}", e),
        }
    }

    #[test]
    fn mock_backend_never_panics(
        cfg in any_config(),
        cpu in edge_u16(),
        cur in any_image(),
        want in any_image(),
        e in any_exception(),
        p in any::<u8>(),
        s in any::<usize>(),
        (addr, len, kind) in (edge_u64(), edge_u64(), any_access()),
    ) {
        let m = Mock::new(cfg);
        m.scramble(cpu);
        m.install(cpu, &(), &cur, &want);
        let d = m.decode(cpu, &(), &e);
        prop_assert_eq!(d.fired, e.fired);
        let _ = (m.writes(cpu), m.inits(cpu), m.log(), m.desync());
        let _ = m.register(cpu, Pool(p), s);
        let (pool, mask) = m.matching(cpu, addr, len, kind);
        prop_assert!(usize::from(cfg.counts.slots(pool)) >= 32 - mask.leading_zeros() as usize);
    }

    /// The constraint table under arbitrary demands: refusals change nothing,
    /// accepted sets never over-commit (the table's worst case is the one
    /// the accepted demands add up to, within the registers), releasing them
    /// all restores it, and releasing what this table never reserved (claims
    /// of another table) is refused and changes nothing.
    #[test]
    fn table_never_panics(
        counts in any_counts(),
        nr in prop_oneof![0u16..6, edge_u16()],
        demands in prop::collection::vec(any_demand(), 0..40),
        reserves in prop::collection::vec((edge_u16(), any::<u8>(), any::<u8>()), 0..6),
        stray_releases in prop::collection::vec(any_demand(), 0..6),
    ) {
        let t = ConstraintTable::<4, 4>::new(counts, nr);
        let Ok(mut t) = t else {
            prop_assert!(counts.validate().is_err() || nr == 0 || nr > 4);
            return Ok(());
        };
        let fresh = t.clone();
        let mut other = ConstraintTable::<4, 4>::new(counts, nr).unwrap();
        let mut kept: Vec<Claim> = Vec::new();
        let mut strays = stray_releases.iter().filter_map(|d| other.reserve(d).ok());
        for d in &demands {
            // A demand this table never reserved, released in between.
            if let Some(foreign) = strays.next() {
                let before = t.clone();
                prop_assert_eq!(t.release(foreign), Err(Error::NotReserved));
                prop_assert_eq!(&t, &before, "a refused release changed the table");
            }
            let before = t.clone();
            let checked = t.check(d);
            match t.reserve(d) {
                Ok(claim) => {
                    prop_assert_eq!(checked, Ok(()));
                    prop_assert_eq!(claim.demand(), *d);
                    kept.push(claim);
                }
                Err(e) => {
                    prop_assert_eq!(checked, Err(e));
                    prop_assert_eq!(&t, &before, "refused {:?} changed the table", d);
                }
            }
            for (cpu, p, n) in &reserves {
                let before = t.clone();
                if t.set_reserved(*cpu, Pool(*p), *n).is_err() {
                    prop_assert_eq!(&t, &before);
                } else {
                    prop_assert_eq!(t.reserved(*cpu, Pool(*p)), *n);
                    t.set_reserved(*cpu, Pool(*p), 0).unwrap();
                }
            }
            for cpu in 0..nr {
                for p in 0..2u8 {
                    let worst = worst_case_of(&kept, cpu, p);
                    prop_assert_eq!(t.worst_case(cpu, Pool(p)), worst, "cpu {} pool {}", cpu, p);
                    prop_assert!(worst <= u16::from(counts.slots(Pool(p))), "over-committed");
                }
            }
        }
        let _ = (t.counts(), t.nr_cpus(), t.tasks(), t.worst_case(u16::MAX, Pool(9)), t.reserved(u16::MAX, Pool(9)));
        for c in kept.into_iter().rev() {
            prop_assert_eq!(t.release(c), Ok(()));
        }
        prop_assert_eq!(&t, &fresh, "releasing everything left counts behind");
    }

    /// Every manager method with arbitrary arguments, before and after init,
    /// with live, stale and foreign handles.
    #[test]
    fn manager_never_panics(
        cfg in prop_oneof![Just(MockConfig::X86_LIKE), Just(MockConfig::ARM_LIKE), Just(MockConfig::SH_LIKE)],
        init in prop::option::weighted(0.85, 1u16..=3),
        calls in prop::collection::vec(any_call(), 1..60),
    ) {
        fn on_sample(s: &Sample) {
            assert!(s.hits > 0);
        }
        let hw: Box<Hw> = Box::new(Manager::new(Mock::new(cfg), on_sample as fn(&Sample)));
        let mut handles = foreign_handles();
        if let Some(n) = init {
            hw.init(n).unwrap();
            for c in 0..n {
                hw.cpu_online(c).unwrap();
            }
        }
        for call in calls {
            let pick = |n: usize, hs: &Vec<Handle>| hs[n % hs.len()];
            match call {
                Call::Init(n) => {
                    if let Err(e) = hw.init(n) {
                        prop_assert!(matches!(e, Error::CpuOutOfRange { .. } | Error::Busy), "{:?}", e);
                    }
                }
                Call::Online(c) => {
                    if let Err(e) = hw.cpu_online(c) {
                        prop_assert!(is_cpu_error(&e), "{:?}", e);
                    }
                }
                Call::Offline(c) => {
                    if let Err(e) = hw.cpu_offline(c) {
                        prop_assert!(is_cpu_error(&e), "{:?}", e);
                    }
                }
                Call::Register(a) => {
                    if let Ok(r) = hw.register(&a) {
                        prop_assert_eq!(hw.attr(r.handle), Ok(a));
                        handles.push(r.handle);
                    }
                }
                Call::Modify(n, a) => {
                    if hw.modify(pick(n, &handles), &a).is_ok() {
                        prop_assert_eq!(hw.attr(pick(n, &handles)), Ok(a));
                    }
                }
                Call::Enable(n) => { let _ = hw.enable(pick(n, &handles)); }
                Call::Disable(n) => { let _ = hw.disable(pick(n, &handles)); }
                Call::Unregister(n) => {
                    let h = pick(n, &handles);
                    if hw.unregister(h).is_ok() {
                        prop_assert_eq!(hw.attr(h), Err(Error::StaleHandle));
                    }
                }
                Call::Fork(p, c) => { let _ = hw.fork(TaskId(p), TaskId(c)); }
                Call::Exit(t) => { let _ = hw.exit(TaskId(t)); }
                Call::Reserve(c, i, n) => {
                    let ty = if i { BpType::Inst } else { BpType::Data };
                    if let Ok(r) = hw.reserve(c, ty, n) {
                        prop_assert_eq!(r.count, n);
                        let slots = hw.slot_counts().unwrap().slots(r.pool);
                        prop_assert_eq!(u16::from(r.first) + u16::from(n), u16::from(slots));
                    }
                }
                Call::Unreserve(c, i) => {
                    let _ = hw.unreserve(c, if i { BpType::Inst } else { BpType::Data });
                }
                Call::SchedIn(c, t) => {
                    if let Err(e) = hw.sched_in(c, t.map(TaskId)) {
                        prop_assert!(is_cpu_error(&e), "{:?}", e);
                    }
                }
                Call::SchedOut(c) => { let _ = hw.sched_out(c); }
                Call::Sync(c) => { let _ = hw.sync(c); }
                Call::Rotate(c) => { let _ = hw.rotate(c); }
                Call::Image(c) => {
                    if let Ok(img) = hw.image(c) {
                        let counts = hw.slot_counts().unwrap();
                        for p in 0..2u8 {
                            prop_assert_eq!(img.pools[usize::from(p)].len(), usize::from(counts.slots(Pool(p))));
                        }
                    }
                }
                Call::Restore(c, img) => { let _ = hw.restore(c, &img); }
                Call::Query(n, c) => {
                    let h = pick(n, &handles);
                    let live = hw.attr(h).is_ok();
                    for r in [hw.hits(h).map(|_| ()), hw.times(h).map(|_| ()), hw.weight(h).map(|_| ())] {
                        prop_assert_eq!(r.is_ok(), live);
                        if let Err(e) = r {
                            prop_assert!(matches!(e, Error::StaleHandle | Error::NotInitialized), "{:?}", e);
                        }
                    }
                    let _ = (hw.slots_on(h, c), hw.stray(c), hw.len(), hw.is_empty(), hw.inspect_table(Clone::clone), hw.slot_counts());
                }
                Call::Exception(c, e) => {
                    let r = hw.handle_exception(c, &e);
                    if e.fired == Fired::None {
                        prop_assert_eq!(r, Resume::NOT_OURS);
                    }
                }
                Call::Access(c, a, l, k) => { let _ = hw.access(c, a, l, k, a ^ 1); }
            }
        }
        // Whatever happened, the bookkeeping is still consistent.
        if let Ok(t) = hw.inspect_table(Clone::clone) {
            for cpu in 0..t.nr_cpus() {
                for p in 0..2u8 {
                    prop_assert!(t.worst_case(cpu, Pool(p)) <= u16::from(t.counts().slots(Pool(p))));
                }
            }
        }
    }
}

#[test]
fn every_error_displays() {
    let all = [
        Error::ZeroLength,
        Error::AddressOverflow,
        Error::NoAccess,
        Error::ExecWithData,
        Error::ExcludesEverything,
        Error::ZeroSamplePeriod,
        Error::CpuOutOfRange { cpu: u16::MAX },
        Error::Misaligned {
            addr: u64::MAX,
            align: 0,
        },
        Error::UnsupportedLength { len: u64::MAX },
        Error::UnsupportedAccess,
        Error::KernelAddress,
        Error::RangeTooLarge {
            weight: 255,
            slots: 0,
        },
        Error::NoSlot { cpu: 0 },
        Error::TooManyEvents,
        Error::TooManyTasks,
        Error::StaleHandle,
        Error::Hardware(hwbp_core::HardwareError::UnsupportedDebugArch { version: 0xff }),
        Error::Hardware(hwbp_core::HardwareError::NoDebugHardware),
        Error::Hardware(hwbp_core::HardwareError::UnknownPart { id: u32::MAX }),
        Error::Hardware(hwbp_core::HardwareError::InvalidImage),
        Error::NotReserved,
        Error::NotInitialized,
        Error::Busy,
    ];
    let texts: std::collections::BTreeSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), all.len(), "two errors print the same text");
    let _ = AddressSpace::User;
}

/// The worst case the accepted demands add up to on `cpu` in `pool`
/// (independently of the table's counts): CPU-bound pinned weights, the
/// heaviest task's pinned weight there, one register if flexible demands
/// exist.
fn worst_case_of(kept: &[Claim], cpu: u16, pool: u8) -> u16 {
    let mut cpu_pinned = 0u16;
    let mut tasks: std::collections::HashMap<u64, u16> = Default::default();
    let mut flexible = false;
    for d in kept.iter().map(Claim::demand) {
        let here = match d.target {
            Target::Cpu(c) | Target::Task { cpu: Some(c), .. } => c == cpu,
            Target::AllCpus | Target::Task { cpu: None, .. } => true,
        };
        if d.pool != Pool(pool) || !here {
            continue;
        }
        match (d.pinned, d.target) {
            (false, _) => flexible = true,
            (true, Target::Task { task, .. }) => {
                *tasks.entry(task.0).or_default() += u16::from(d.weight)
            }
            (true, _) => cpu_pinned += u16::from(d.weight),
        }
    }
    cpu_pinned + tasks.values().copied().max().unwrap_or(0) + u16::from(flexible)
}
