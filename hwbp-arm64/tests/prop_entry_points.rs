//! Issue 3 for hwbp-arm64: the public entry points that `proptests.rs` does
//! not reach, fed arbitrary values. Each must return (or decode to) what its
//! documentation promises, not merely avoid panicking:
//!
//! * `backend_decode_follows_its_rules`: `Arch::decode` of the `ArmBackend`
//!   on the register model, for any ID register, step method and installed
//!   slots, over a random mix of arbitrary syndromes, real hits raised by the
//!   model, step completions and re-installs. Each outcome is checked against
//!   the documented rules (foreign events are `Resume::NOT_OURS`, only existing slots
//!   are named, a hit masks its kind and arms the step, a step ends it), and
//!   after every operation the registers hold exactly the installed image,
//!   with E clear only for a kind held for a pending step.
//! * `probe_agrees_with_the_id_register`: `ArmBackend::probe` and `Arch::init_cpu`
//!   on arbitrary `ID_AA64DFR0_EL1` / `DBGDIDR` values.
//! * `id_register_fields_are_in_range`: every field accessor of
//!   `IdAa64Dfr0`, `Dbgdidr` and `DebugArch`, including `usable_counts`.
//! * `step_machine_follows_its_docs`: `StepOver::on_event` over arbitrary
//!   event sequences, and its byte packing.
//!
//! Case count: proptest's default, or `PROPTEST_CASES`.

mod rig;

use rig::Rig;

use hwbp_arm64::bcr::El;
use hwbp_arm64::id::{DebugArch, DebugVer};
use hwbp_arm64::model::{
    breakpoint_matches_any_el, DataAccess, Fetch, Model, ModelException, ModelId,
};
use hwbp_arm64::step::{StepEvent, StepOver};
use hwbp_arm64::{
    Aarch32Exception, Aarch64Exception, AbortKind, ArmBackend, ArmSlot, Dbgdidr, DebugEvent,
    Flavour, IdAa64Dfr0, StepMethod, AARCH32_KERNEL_BASE,
};
use hwbp_core::{
    Access, Arch, BreakpointAttr, Decoded, Error, Fired, Image, Pool, Resume, SlotCounts,
};
use proptest::prelude::*;

/// CPUs the backend under test keeps state for; decodes on higher numbers
/// must be refused.
const CPUS: usize = 1;
type Backend = Rig<Model, CPUS>;

fn any_method() -> impl Strategy<Value = StepMethod> {
    prop_oneof![
        Just(StepMethod::SoftwareStep),
        Just(StepMethod::Mismatch),
        Just(StepMethod::Manual),
    ]
}

/// An identification register: mostly a known debug version with arbitrary
/// counts (and arbitrary other fields), sometimes anything at all.
fn any_id() -> impl Strategy<Value = ModelId> {
    prop_oneof![
        3 => (any::<u64>(), 6u64..=0xB).prop_map(|(v, ver)| ModelId::Aarch64(v & !0xF | ver)),
        1 => any::<u64>().prop_map(ModelId::Aarch64),
        3 => (any::<u32>(), 3u32..=9)
            .prop_map(|(v, ver)| ModelId::Aarch32(v & !(0xF << 16) | ver << 16)),
        1 => any::<u32>().prop_map(ModelId::Aarch32),
    ]
}

/// A backend on a fresh model: A64 IDs get the AArch64 flavour, A32 IDs an
/// AArch32 one (4- or 8-bit BAS), with or without `DBGDSCR.MOE` recorded.
fn backend(id: ModelId, method: StepMethod, wide_bas: bool, moe: bool) -> Backend {
    let mut model = Model::new(id);
    if !moe {
        model = model.without_moe();
    }
    let flavour = match id {
        ModelId::Aarch64(_) => Flavour::Aarch64,
        ModelId::Aarch32(_) => {
            if !wide_bas {
                model = model.narrow_bas();
            }
            Flavour::Aarch32 {
                kernel_base: AARCH32_KERNEL_BASE,
                wide_bas,
            }
        }
    };
    Rig::new(ArmBackend::new(model, flavour, method))
}

fn counts(arm: &Backend) -> (u8, u8) {
    match arm.slot_counts() {
        SlotCounts::Separate { inst, data } => (inst, data),
        SlotCounts::Shared(n) => panic!("Arm reported a shared pool of {n}"),
    }
}

/// Instruction addresses near the installed breakpoints most of the time,
/// so arbitrary syndromes often name them.
fn code_addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0u64..12).prop_map(|k| 0x8000 + 2 * k),
        1 => any::<u64>(),
    ]
}

fn data_addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0u64..32).prop_map(|k| 0x2000 + k),
        1 => any::<u64>(),
    ]
}

fn any_el() -> impl Strategy<Value = El> {
    prop_oneof![Just(El::El0), Just(El::El1)]
}

/// What goes into one slot of an image.
#[derive(Clone, Debug)]
enum SlotSpec {
    /// Encode a request and place its pieces from this slot on.
    Attr(u8, BreakpointAttr),
    /// Any register pair (in the data pool if `true`) at this slot.
    Raw(bool, u8, ArmSlot),
}

fn any_slot_spec() -> impl Strategy<Value = SlotSpec> {
    let access = prop_oneof![
        Just(Access::READ),
        Just(Access::WRITE),
        Just(Access::RW),
        (0u8..16).prop_map(Access::from_bits_retain),
    ];
    let watch = (any::<u8>(), data_addr(), 1u64..20, access, any::<bool>()).prop_map(
        |(at, addr, len, access, xu)| {
            let attr = BreakpointAttr::watch(addr, len, access).exclude_user(xu);
            SlotSpec::Attr(at, attr)
        },
    );
    let exec = (
        any::<u8>(),
        code_addr(),
        prop_oneof![Just(2u64), Just(4), 0u64..9],
    )
        .prop_map(|(at, addr, len)| SlotSpec::Attr(at, BreakpointAttr::exec(addr).len(len)));
    let raw = (any::<bool>(), any::<u8>(), code_addr(), any::<u32>())
        .prop_map(|(data, at, value, ctrl)| SlotSpec::Raw(data, at, ArmSlot { value, ctrl }));
    prop_oneof![3 => exec, 3 => watch, 1 => raw]
}

/// The image `specs` describe on `arm` (pieces that do not fit are dropped,
/// as are requests the encoder refuses).
fn image(arm: &Backend, specs: &[SlotSpec]) -> Image<ArmSlot> {
    let counts = arm.slot_counts();
    let mut img = Image::empty(counts);
    for spec in specs {
        match spec {
            SlotSpec::Attr(at, attr) => {
                let Ok(e) = arm.encode(attr) else { continue };
                let pool = &mut img.pools[counts.pool_of(e.ty).index()];
                if pool.is_empty() {
                    continue;
                }
                let first = usize::from(*at) % pool.len();
                for (slot, piece) in pool.iter_mut().skip(first).zip(e.pieces.iter()) {
                    *slot = piece.slot;
                }
            }
            SlotSpec::Raw(data, at, raw) => {
                let pool = &mut img.pools[usize::from(*data)];
                if !pool.is_empty() {
                    let n = usize::from(*at) % pool.len();
                    pool[n] = *raw;
                }
            }
        }
    }
    img
}

/// An arbitrary syndrome, biased towards the debug exception classes.
fn any_exception() -> impl Strategy<Value = ModelException> {
    let ec = prop_oneof![
        3 => 0x30u64..=0x35,
        1 => prop_oneof![Just(0x38u64), Just(0x3C)],
        1 => 0u64..64,
    ];
    let a64 = (ec, any::<u64>(), data_addr(), code_addr()).prop_map(|(ec, bits, far, elr)| {
        // Any ISS (including WPTV/WPT, FEAT_Debugv8p2 on) and upper bits.
        let esr = (bits & !(0x3F << 26)) | ec << 26;
        ModelException::A64(Aarch64Exception { esr, far, elr })
    });
    let fsr = prop_oneof![
        // Debug-event status (short and long descriptor), any WnR and junk.
        (any::<u32>(), any::<bool>()).prop_map(|(junk, long)| {
            if long {
                junk & !0x3F | 1 << 9 | 0b10_0010
            } else {
                junk & !(1 << 9 | 1 << 10 | 0xF) | 0b0010
            }
        }),
        any::<u32>(),
    ];
    let write = prop_oneof![Just(None), any::<bool>().prop_map(Some)];
    let a32 = (
        any::<bool>(),
        fsr,
        data_addr(),
        any::<u32>(),
        code_addr(),
        write,
        any::<bool>(),
    )
        .prop_map(|(data, fsr, far, dscr, pc, write, thumb)| {
            ModelException::A32(Aarch32Exception {
                kind: if data {
                    AbortKind::Data
                } else {
                    AbortKind::Prefetch
                },
                fsr,
                far: far as u32,
                dscr,
                pc: pc as u32,
                write,
                thumb,
            })
        });
    prop_oneof![a64, a32]
}

#[derive(Clone, Debug)]
enum Op {
    /// Decode an arbitrary syndrome on this CPU.
    Raw(u16, ModelException),
    /// The model fetches an instruction; decode what it raises, if anything.
    Fetch(u64, El),
    /// The model performs a data access by the instruction at `pc`, reporting
    /// `far` (imprecise) or the access address.
    Access(DataAccess, u64, Option<u64>),
    /// The stepped instruction completes; decode the step exception, if any.
    Retire(u64, El),
    /// `ArmBackend::complete_step` on this CPU.
    CompleteStep(u16),
    /// Install a new image on CPU 0.
    Install(Vec<SlotSpec>),
}

fn any_cpu() -> impl Strategy<Value = u16> {
    prop_oneof![4 => Just(0u16), 1 => any::<u16>()]
}

fn any_op() -> impl Strategy<Value = Op> {
    let access =
        (data_addr(), 1u64..17, any::<bool>(), any_el()).prop_map(|(addr, size, write, el)| {
            DataAccess {
                addr,
                size,
                write,
                el,
            }
        });
    prop_oneof![
        4 => (any_cpu(), any_exception()).prop_map(|(c, e)| Op::Raw(c, e)),
        3 => (code_addr(), any_el()).prop_map(|(pc, el)| Op::Fetch(pc, el)),
        3 => (access, code_addr(), proptest::option::of(data_addr()))
            .prop_map(|(a, pc, far)| Op::Access(a, pc, far)),
        3 => (code_addr(), any_el()).prop_map(|(pc, el)| Op::Retire(pc, el)),
        1 => any_cpu().prop_map(Op::CompleteStep),
        1 => proptest::collection::vec(any_slot_spec(), 0..6).prop_map(Op::Install),
    ]
}

/// What the test knows: the installed image and the step-over state the docs
/// predict (including the PC the step was armed at).
struct Expect {
    img: Image<ArmSlot>,
    st: StepOver,
    step_pc: u64,
}

impl Expect {
    /// A breakpoint or watchpoint hit: mask its kind, arm the step.
    fn hit(&mut self, data: bool, pc: u64) {
        self.st.pending = true;
        if data {
            self.st.data_masked = true;
        } else {
            self.st.inst_masked = true;
        }
        self.step_pc = pc;
    }
}

/// The registers hold `ex.img`, with `E` clear exactly for the enabled slots
/// of a kind held for a pending step; the reserved mismatch register and the
/// software-step bit are armed exactly while a step is pending; nothing
/// beyond the discovered registers was touched.
fn check_registers(arm: &Backend, ex: &Expect, probed: bool) -> Result<(), TestCaseError> {
    let m = arm.regs();
    prop_assert_eq!(m.undefined_accesses(), 0);
    prop_assert_eq!(arm.step_state(0), ex.st);
    let (inst, data) = counts(arm);
    for (pool, n_slots, masked) in [(0u8, inst, ex.st.inst_masked), (1, data, ex.st.data_masked)] {
        for n in 0..usize::from(n_slots) {
            let want = ex.img.get(Pool(pool), n).unwrap_or_default();
            let (value, ctrl) = if pool == 0 {
                let (v, c) = m.breakpoint(n).unwrap();
                (v, c.0)
            } else {
                let (v, c) = m.watchpoint(n).unwrap();
                (v, c.0)
            };
            prop_assert_eq!(value, want.value, "pool {} slot {}", pool, n);
            prop_assert_eq!(ctrl & !1, want.ctrl & !1, "pool {} slot {}", pool, n);
            prop_assert_eq!(
                ctrl & 1 != 0,
                want.enabled() && !masked,
                "pool {} slot {} in {:?}",
                pool,
                n,
                ex.st
            );
        }
    }
    match arm.step_method() {
        StepMethod::SoftwareStep => prop_assert_eq!(m.step_armed(), ex.st.pending),
        StepMethod::Mismatch if probed => {
            let reserved = m.breakpoint(usize::from(inst)).unwrap().1;
            prop_assert_eq!(reserved.enabled(), ex.st.pending);
        }
        _ => {}
    }
    Ok(())
}

/// Decode `raw` on `cpu` and check the outcome against the documented rules,
/// updating the expectation.
fn decode_and_check(
    arm: &Backend,
    ex: &mut Expect,
    cpu: u16,
    raw: &ModelException,
) -> Result<Decoded, TestCaseError> {
    let (inst, data) = counts(arm);
    let m = arm.regs();
    // Whether an enabled breakpoint register matches `pc` before the decode
    // (what confirms an AArch32 breakpoint reported without MOE).
    let registers_match = |pc: u64| {
        (0..usize::from(inst)).any(|n| {
            let (v, c) = m.breakpoint(n).unwrap();
            breakpoint_matches_any_el(v, c, pc)
        })
    };
    let mut ev = raw.event();
    if let DebugEvent::Breakpoint { pc, .. } = ev {
        // With mismatch stepping, a breakpoint elsewhere while a step is
        // pending is the step.
        if arm.step_method() == StepMethod::Mismatch && ex.st.pending && pc != ex.step_pc {
            ev = DebugEvent::Step { pc, stepped: true };
        }
    }
    let confirmed = match ev {
        DebugEvent::Breakpoint { pc, unconfirmed } => !unconfirmed || registers_match(pc),
        _ => true,
    };
    let d = arm.decode(cpu, raw);
    if usize::from(cpu) >= CPUS {
        prop_assert_eq!((d.fired, d.resume), (Fired::None, Resume::NOT_OURS));
        return Ok(d);
    }
    let ours = |fired, addr, ip, access, resume| {
        Decoded::new(fired, resume).addr(addr).ip(ip).access(access)
    };
    let want = match ev {
        DebugEvent::Other | DebugEvent::SoftwareBreakpoint { .. } => None,
        DebugEvent::Breakpoint { .. } if !confirmed => None,
        DebugEvent::Breakpoint { pc, .. } => {
            ex.hit(false, pc);
            let fired = Fired::ByAddress { pool: Pool(0) };
            Some(ours(fired, pc, pc, Access::EXEC, Resume::SINGLE_STEP))
        }
        DebugEvent::Watchpoint {
            addr,
            pc,
            write,
            slot,
        } => {
            ex.hit(true, pc);
            // A named slot wins; else the address; without a valid address
            // the core may only credit a sole candidate.
            let fired = match (slot, addr) {
                (Some(n), _) if n < data => Fired::Slots {
                    pool: Pool(1),
                    mask: 1 << n,
                },
                (_, Some(_)) => Fired::ByAddress { pool: Pool(1) },
                (_, None) => Fired::Unattributed { pool: Pool(1) },
            };
            let access = match write {
                Some(true) => Access::WRITE,
                Some(false) => Access::READ,
                None => Access::empty(),
            };
            Some(ours(
                fired,
                addr.unwrap_or(0),
                pc,
                access,
                Resume::SINGLE_STEP,
            ))
        }
        // No instruction stepped: the step-over stays pending.
        DebugEvent::Step { stepped: false, .. } => None,
        DebugEvent::Step { pc, .. } if ex.st.pending => {
            ex.st = StepOver::IDLE;
            Some(ours(Fired::None, pc, pc, Access::empty(), Resume::RETURN))
        }
        DebugEvent::Step { .. } => None,
    };
    match want {
        Some(w) => prop_assert_eq!(d, w, "{:?} from {:?}", ev, raw),
        None => prop_assert_eq!(
            (d.fired, d.resume),
            (Fired::None, Resume::NOT_OURS),
            "{:?} from {:?}",
            ev,
            raw
        ),
    }
    Ok(d)
}

/// Decode something the model raised: a real hit or step is always ours.
fn decode_hit(
    arm: &Backend,
    ex: &mut Expect,
    raw: Option<ModelException>,
) -> Result<(), TestCaseError> {
    if let Some(raw) = raw {
        let d = decode_and_check(arm, ex, 0, &raw)?;
        prop_assert_ne!(d.resume, Resume::NOT_OURS, "{:?}", raw);
    }
    Ok(())
}

fn run_op(arm: &Backend, ex: &mut Expect, op: &Op) -> Result<(), TestCaseError> {
    let m = arm.regs();
    match op {
        Op::Raw(cpu, raw) => {
            decode_and_check(arm, ex, *cpu, raw)?;
        }
        Op::Fetch(pc, el) => decode_hit(arm, ex, m.fetch(&Fetch { pc: *pc, el: *el }))?,
        Op::Access(acc, pc, far) => decode_hit(arm, ex, m.access(acc, *pc, *far))?,
        Op::Retire(pc, el) => decode_hit(arm, ex, m.retire(*pc, *el))?,
        Op::CompleteStep(cpu) => {
            let was = usize::from(*cpu) < CPUS && ex.st.pending;
            prop_assert_eq!(arm.complete_step(*cpu), was);
            if was {
                ex.st = StepOver::IDLE;
            }
        }
        Op::Install(specs) => {
            let new = image(arm, specs);
            arm.install(0, &ex.img, &new);
            ex.img = new;
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn backend_decode_follows_its_rules(
        id in any_id(),
        method in any_method(),
        wide_bas in any::<bool>(),
        moe in any::<bool>(),
        slots in proptest::collection::vec(any_slot_spec(), 0..8),
        ops in proptest::collection::vec(any_op(), 1..24),
    ) {
        let arm = backend(id, method, wide_bas, moe);
        // An unusable ID leaves the backend with no slots; decoding must
        // still follow the rules.
        let probed = arm.probe().is_ok() && arm.init_cpu(0).is_ok();
        let mut ex = Expect {
            img: Image::empty(arm.slot_counts()),
            st: StepOver::IDLE,
            step_pc: 0,
        };
        run_op(&arm, &mut ex, &Op::Install(slots))?;
        check_registers(&arm, &ex, probed)?;
        for op in &ops {
            run_op(&arm, &mut ex, op)?;
            check_registers(&arm, &ex, probed)?;
        }
    }

    #[test]
    fn probe_agrees_with_the_id_register(
        id in any_id(),
        method in any_method(),
        cpu in 0u16..3,
    ) {
        let arm = backend(id, method, true, true);
        // What the model's ID register offers (AArch32: the usable pools),
        // less the reserved breakpoint for mismatch stepping.
        let offered = match id {
            ModelId::Aarch64(v) => IdAa64Dfr0(v).slot_counts(),
            ModelId::Aarch32(v) => Dbgdidr(v).usable_counts(),
        };
        let want = offered.and_then(|c| match (method, c) {
            (StepMethod::Mismatch, SlotCounts::Separate { inst, data }) if inst >= 2 => {
                Ok(SlotCounts::Separate { inst: inst - 1, data })
            }
            (StepMethod::Mismatch, _) => Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware)),
            (_, c) => Ok(c),
        });
        let got = arm.probe();
        prop_assert_eq!(got, want);
        let m = arm.regs();
        match got {
            Ok(c) => {
                prop_assert!(c.validate().is_ok());
                prop_assert_eq!(arm.slot_counts(), c);
                prop_assert_eq!(arm.encoder().slot_counts(), c);
                prop_assert_eq!(arm.probe(), Ok(c), "probing again on the same CPU");
                if usize::from(cpu) < CPUS {
                    prop_assert_eq!(arm.init_cpu(cpu), Ok(()));
                    // Every register the CPU has is cleared.
                    let (b, w) = m.hw_counts();
                    for n in 0..usize::from(b) {
                        prop_assert!(m.breakpoint(n).is_some_and(|(v, c)| v == 0 && c.0 == 0));
                    }
                    for n in 0..usize::from(w) {
                        prop_assert!(m.watchpoint(n).is_some_and(|(v, c)| v == 0 && c.0 == 0));
                    }
                    prop_assert!(!m.step_armed());
                    prop_assert_eq!(arm.step_state(cpu), StepOver::IDLE);
                } else {
                    prop_assert_eq!(arm.init_cpu(cpu), Err(Error::CpuOutOfRange { cpu }));
                }
            }
            Err(e) => {
                let version = match id {
                    ModelId::Aarch64(v) => IdAa64Dfr0(v).debug_ver_field(),
                    ModelId::Aarch32(v) => Dbgdidr(v).version().field(),
                };
                prop_assert!(
                    e == Error::Hardware(hwbp_core::HardwareError::UnsupportedDebugArch { version }) || e == Error::Hardware(hwbp_core::HardwareError::NoDebugHardware),
                    "{:?}",
                    e
                );
                prop_assert_eq!(arm.slot_counts(), SlotCounts::Separate { inst: 0, data: 0 });
                let init = arm.init_cpu(cpu);
                if usize::from(cpu) < CPUS {
                    prop_assert_eq!(init, Err(e));
                } else {
                    prop_assert_eq!(init, Err(Error::CpuOutOfRange { cpu }));
                }
                prop_assert_eq!(m.writes(), 0, "a refused CPU is not touched");
            }
        }
        prop_assert_eq!(m.undefined_accesses(), 0);
    }

    #[test]
    fn id_register_fields_are_in_range(dfr0 in any::<u64>(), didr in any::<u32>(), field in any::<u8>()) {
        let a = IdAa64Dfr0(dfr0);
        for n in [a.brps(), a.wrps(), a.ctx_cmps()] {
            prop_assert!((1..=16).contains(&n));
        }
        // Refused: exactly the reserved values below Armv8. Newer than the
        // newest known (Armv8.9, 0xB) is accepted as `Newer`.
        prop_assert_eq!(a.debug_ver().is_ok(), (6..=0xF).contains(&a.debug_ver_field()));
        prop_assert_eq!(
            matches!(a.debug_ver(), Ok(DebugVer::Newer(_))),
            a.debug_ver_field() >= 0xC
        );
        if let Ok(c) = a.slot_counts() {
            prop_assert_eq!(c, SlotCounts::Separate { inst: a.brps(), data: a.wrps() });
        }

        let d = Dbgdidr(didr);
        for n in [d.brps(), d.wrps(), d.ctx_cmps()] {
            prop_assert!((1..=16).contains(&n));
        }
        let v = d.version();
        prop_assert_eq!(u32::from(v.field()), (didr >> 16) & 0xF);
        prop_assert_eq!(d.supported_version().is_ok(), v.is_supported());
        // Refused: exactly 0 (no debug), v6, v6.1 and memory-mapped v7.
        prop_assert_eq!(v.is_supported(), !matches!(v.field(), 0 | 1 | 2 | 4));
        prop_assert_eq!(matches!(v, DebugArch::Newer(_)), v.field() >= 0xA);
        match (d.slot_counts(), d.usable_counts()) {
            (Ok(all), Ok(usable)) => {
                prop_assert_eq!(all, SlotCounts::Separate { inst: d.brps(), data: d.wrps() });
                // Before v7.1 only one watchpoint can be told apart.
                let data = if v == DebugArch::V7Ecp14 { 1 } else { d.wrps() };
                prop_assert_eq!(usable, SlotCounts::Separate { inst: d.brps(), data });
            }
            (Err(e), Err(u)) => {
                prop_assert_eq!(e, u);
                prop_assert_eq!(e, Error::Hardware(hwbp_core::HardwareError::UnsupportedDebugArch { version: v.field() }));
            }
            (all, usable) => prop_assert!(false, "{:?} vs usable {:?}", all, usable),
        }

        let arch = DebugArch::from_field(field);
        prop_assert_eq!(arch.field(), field);
        prop_assert!(!arch.has_os_lock() || (arch.is_supported() && arch != DebugArch::V7Ecp14));
        prop_assert_eq!(arch.has_double_lock(), arch.has_os_lock());
        prop_assert_eq!(matches!(arch, DebugArch::Newer(_)), (0xA..=0xF).contains(&field));
    }

    #[test]
    fn step_machine_follows_its_docs(
        events in proptest::collection::vec(
            prop_oneof![Just(StepEvent::Breakpoint), Just(StepEvent::Watchpoint), Just(StepEvent::Step)],
            0..24,
        ),
        armed in proptest::collection::vec(any::<bool>(), 24),
        byte in any::<u8>(),
    ) {
        prop_assert_eq!(StepOver::from_bits(byte).to_bits(), byte & 15);
        let mut s = StepOver::IDLE;
        for (ev, step_armed) in events.into_iter().zip(armed) {
            let before = s;
            let a = s.on_event(ev, step_armed);
            prop_assert_eq!(StepOver::from_bits(s.to_bits()), s);
            match ev {
                StepEvent::Breakpoint | StepEvent::Watchpoint => {
                    let data = ev == StepEvent::Watchpoint;
                    prop_assert!(a.ours && a.arm_step && !a.unmask_all);
                    prop_assert_eq!((a.mask_inst, a.mask_data), (!data, data));
                    prop_assert_eq!(a.resume, Resume::SINGLE_STEP);
                    // Masks accumulate while the step is pending.
                    prop_assert!(s.pending && s.masks(data));
                    prop_assert_eq!(s.masks(!data), before.masks(!data));
                    // A step armed before the step-over began is someone
                    // else's; one armed by the step-over itself is not.
                    let foreign = if before.pending { before.foreign_step } else { step_armed };
                    prop_assert_eq!(s.foreign_step, foreign);
                }
                StepEvent::Step if before.pending => {
                    prop_assert!(a.ours && a.unmask_all && !a.arm_step && !a.mask_inst && !a.mask_data);
                    prop_assert_eq!(a.keep_step, before.foreign_step);
                    let want = if before.foreign_step { Resume::RETURN.and_pass_on() } else { Resume::RETURN };
                    prop_assert_eq!(a.resume, want);
                    prop_assert_eq!(s, StepOver::IDLE);
                }
                StepEvent::Step => {
                    prop_assert!(!a.ours && !a.unmask_all && !a.arm_step && !a.mask_inst && !a.mask_data);
                    prop_assert_eq!(a.resume, Resume::NOT_OURS);
                    prop_assert_eq!(s, before);
                }
            }
            // Nothing is held disabled once no step is pending.
            prop_assert!(s.pending || (!s.masks(false) && !s.masks(true)), "{:?}", s);
        }
    }
}
