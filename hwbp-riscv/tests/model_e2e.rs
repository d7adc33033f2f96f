//! The real backend (`RiscvBackend`) and hwbp-core's manager run against the
//! Sdtrig model: discovery, encodings checked by what fires, and programs
//! run on a tiny interpreter whose hits go through the step-over.

use std::cell::RefCell;
use std::collections::BTreeMap;

use hwbp_core::{
    Access, Arch, BreakpointAttr, Error, HardwareError, Manager, Resume, Sample, SlotCounts, Target,
};
use hwbp_riscv::insn::Insn;
use hwbp_riscv::model::{Model, ModelConfig};
use hwbp_riscv::{
    MatchType, Modes, Privilege, RiscvBackend, RiscvCpuState, Xlen, RV64_KERNEL_BASE,
};
use proptest::prelude::*;

type Hw = Manager<RiscvBackend<Model>, Rec, 1, 16, 2>;

#[derive(Default)]
struct Rec(RefCell<Vec<Sample>>);

impl hwbp_core::Handler for Rec {
    fn on_sample(&self, s: &Sample) {
        self.0.borrow_mut().push(*s);
    }
}

fn manager(cfg: ModelConfig) -> Hw {
    manager_split(cfg, RV64_KERNEL_BASE)
}

fn manager_split(cfg: ModelConfig, kernel_base: u64) -> Hw {
    let hw = Manager::new(
        RiscvBackend::new(Model::new(cfg), kernel_base),
        Rec::default(),
    );
    // Discovery runs in init (Arch::discover): no probe before.
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    hw
}

/// Hart 0's backend state, kept by the manager.
fn cpu0(hw: &Hw) -> &RiscvCpuState {
    hw.backend_cpu(0).unwrap()
}

fn add(hw: &Hw, attr: BreakpointAttr) -> Result<hwbp_core::Handle, Error> {
    let r = hw.register(&attr.target(Target::Cpu(0)))?;
    hw.sync(0).unwrap();
    Ok(r.handle)
}

/// A program: instruction words by address.
struct Cpu {
    pc: u64,
    x: [u64; 32],
    prog: BTreeMap<u64, u32>,
    mode: Privilege,
    traps: u32,
}

impl Cpu {
    fn new(prog: &[(u64, u32)]) -> Self {
        Cpu {
            pc: prog[0].0,
            x: [0; 32],
            prog: prog.iter().copied().collect(),
            mode: Privilege::Machine,
            traps: 0,
        }
    }

    /// Run until `pc` leaves the program (at most `limit` retired
    /// instructions plus traps). Executes `addi` (to count loops); every
    /// other instruction only moves the pc.
    fn run(&mut self, hw: &Hw, limit: u32) {
        let model = hw.arch().csrs();
        let mut budget = limit;
        while let Some(&insn) = self.prog.get(&self.pc) {
            budget = budget.checked_sub(1).expect("livelock: budget exhausted");
            if let Some(exc) = model.step(self.pc, insn, &self.x, self.mode) {
                self.traps += 1;
                let r = hw.handle_exception(0, &exc);
                assert_eq!(r, Resume::RETURN, "at {:#x}", self.pc);
                continue;
            }
            let i = Insn::decode(insn, Xlen::Rv64);
            let next = i.next_pc(self.pc, &self.x, Xlen::Rv64).unwrap();
            if insn & 0x707f == 0x13 {
                // addi rd, rs1, imm
                let rd = ((insn >> 7) & 31) as usize;
                let rs1 = ((insn >> 15) & 31) as usize;
                let imm = ((insn as i32) >> 20) as i64 as u64;
                if rd != 0 {
                    self.x[rd] = self.x[rs1].wrapping_add(imm);
                }
            }
            self.pc = next;
        }
    }
}

// Instruction words (checked against llvm-objdump).
const SW_A1_0_A0: u32 = 0x00b5_2023; // sw a1, 0(a0)
const LW_A2_0_A0: u32 = 0x0005_2603; // lw a2, 0(a0)
const NOP: u32 = 0x0000_0013; // addi zero, zero, 0
const ADDI_T0_M1: u32 = 0xfff2_8293; // addi t0, t0, -1
const BNEZ_T0_M8: u32 = 0xfe02_9ce3; // bne t0, zero, -8
const EBREAK: u32 = 0x0010_0073;
const MRET: u32 = 0x3020_0073;

/// A fresh hart's triggers probed directly (the backend's probe rewrites
/// them: only on a backend no manager runs).
fn probed(cfg: ModelConfig) -> hwbp_riscv::Triggers {
    let r = RiscvBackend::new(Model::new(cfg), RV64_KERNEL_BASE);
    // SAFETY: a model, no trigger in use.
    let t = unsafe { r.probe() }.unwrap();
    assert_eq!(r.csrs().bad_type_writes(), 0);
    t
}

#[test]
fn discovery_qemu_like_and_never_a_foreign_type() {
    let hw = manager(ModelConfig::QEMU_LIKE);
    assert_eq!(hw.slot_counts(), Ok(SlotCounts::Shared(2)));
    // The stored result, read without touching the triggers.
    assert_eq!(
        (hw.arch().total(), hw.arch().pool().as_slice()),
        (2, &[0u8, 1][..])
    );
    assert_eq!(hw.arch().counts_now(), SlotCounts::Shared(2));
    let t = probed(ModelConfig::QEMU_LIKE);
    assert_eq!(t.total, 2);
    assert_eq!(t.kind, MatchType::Mcontrol6);
    assert_eq!((t.napot_max, t.hit), (0, false));
    assert_eq!(t.found[0].types, 0x44);
    assert_eq!(hw.arch().csrs().bad_type_writes(), 0);
}

#[test]
fn discovery_without_tinfo_uses_only_the_type_tdata1_holds() {
    // tinfo traps; tdata1 reads type 2; type 6 is not advertised and must
    // never be written.
    let cfg = ModelConfig {
        tinfo: false,
        types: 1 << 2,
        reset_type: 2,
        count: 3,
        ..ModelConfig::QEMU_LIKE
    };
    let hw = manager(cfg);
    assert_eq!(hw.arch().encoder().kind, MatchType::Mcontrol);
    assert_eq!(hw.slot_counts(), Ok(SlotCounts::Shared(3)));
    assert_eq!(hw.arch().csrs().bad_type_writes(), 0);
    let t = probed(cfg);
    assert_eq!(t.kind, MatchType::Mcontrol);
    assert_eq!(t.pool.len(), 3);
    assert_eq!(t.found[0].version, None);
    // Without tinfo and a reset type of 0 there is nothing to find: init
    // refuses with the typed reason, and nothing is written.
    let none: Hw = Manager::new(
        RiscvBackend::new(
            Model::new(ModelConfig {
                reset_type: 0,
                ..cfg
            }),
            RV64_KERNEL_BASE,
        ),
        Rec::default(),
    );
    assert_eq!(
        none.init(1),
        Err(Error::Hardware(HardwareError::NoDebugHardware))
    );
    assert_eq!(none.slot_counts(), Err(Error::NotInitialized));
    assert_eq!(none.arch().counts_now(), SlotCounts::Shared(0));
    assert_eq!(none.arch().csrs().bad_type_writes(), 0);
}

#[test]
fn discovery_rich_hart() {
    let hw = manager(ModelConfig::RICH);
    // tselect keeps 3 bits: 8 triggers, the walk stops at the wrap.
    assert_eq!((hw.arch().total(), hw.arch().pool().len()), (8, 8));
    assert_eq!(hw.arch().encoder().napot_max, 12);
    let t = probed(ModelConfig::RICH);
    assert_eq!((t.total, t.pool.len()), (8, 8));
    assert_eq!((t.napot_max, t.hit), (12, true));
    assert_eq!(hw.arch().csrs().bad_type_writes(), 0);
    // An 8-byte aligned region is one NAPOT trigger there.
    let h = add(&hw, BreakpointAttr::watch(0x1008, 8, Access::WRITE)).unwrap();
    assert_eq!(hw.weight(h), Ok(1));
}

#[test]
fn modes_that_do_not_exist_are_left_clear() {
    let cfg = ModelConfig {
        modes: Modes {
            m: true,
            s: false,
            u: true,
        },
        ..ModelConfig::QEMU_LIKE
    };
    let hw = manager(cfg);
    let h = add(&hw, BreakpointAttr::exec(0x100).exclude_user(true)).unwrap();
    let img = hw.image(0).unwrap();
    let k = hw.slots_on(h, 0).unwrap().trailing_zeros() as usize;
    assert_eq!(
        Modes::of(img.pools[0][k].tdata1),
        Modes {
            m: true,
            s: false,
            u: false
        }
    );
}

#[test]
fn store_watch_steps_over_and_counts_every_execution() {
    let hw = manager(ModelConfig::QEMU_LIKE);
    let h = add(&hw, BreakpointAttr::watch(0x8000, 1, Access::WRITE)).unwrap();
    // Three stores in a row to the watched byte (a word store covers it),
    // then a load (not watched: write only).
    let mut cpu = Cpu::new(&[
        (0x100, SW_A1_0_A0),
        (0x104, SW_A1_0_A0),
        (0x108, SW_A1_0_A0),
        (0x10c, LW_A2_0_A0),
        (0x110, NOP),
    ]);
    cpu.x[10] = 0x8000;
    cpu.run(&hw, 100);
    assert_eq!(hw.hits(h), Ok(3));
    // Each hit: the trigger exception plus the step trigger's.
    assert_eq!(cpu.traps, 6);
    let s = hw.handler().0.borrow();
    assert_eq!(
        s.iter().map(|s| s.ip).collect::<Vec<_>>(),
        [0x100, 0x104, 0x108]
    );
    assert!(s
        .iter()
        .all(|s| s.addr == 0x8000 && s.access == Access::WRITE));
    // The trigger is back as installed, nothing pending, nothing stray.
    assert!(!cpu0(&hw).step_pending());
    let k = hw.slots_on(h, 0).unwrap().trailing_zeros() as usize;
    let phys = hw.arch().pool()[k] as usize;
    let img = hw.image(0).unwrap();
    let (t1, t2) = hw.arch().csrs().trigger(phys);
    assert_eq!((t1, t2), (img.pools[0][k].tdata1, img.pools[0][k].tdata2));
    assert_eq!(hw.stray(0), 0);
    assert_eq!(cpu0(&hw).unexplained(), 0);
}

#[test]
fn breakpoint_on_a_taken_branch_steps_to_its_target() {
    // 0x200: addi t0,t0,-1 ; 0x204: bnez t0, 0x1fc? No: bne t0,zero,-8 from
    // 0x204 goes to 0x1fc, so the loop is 0x1fc..0x204.
    let hw = manager(ModelConfig::QEMU_LIKE);
    let h = add(&hw, BreakpointAttr::exec(0x204)).unwrap();
    let mut cpu = Cpu::new(&[
        (0x1f8, NOP),
        (0x1fc, NOP),
        (0x200, ADDI_T0_M1),
        (0x204, BNEZ_T0_M8),
        (0x208, NOP),
    ]);
    cpu.x[5] = 4;
    cpu.run(&hw, 200);
    // Taken three times (to 0x1fc), then falls through: every execution of
    // the branch is a hit. Stepping to the fall-through on a taken branch
    // would leave the trigger disabled and miss the later ones.
    assert_eq!(hw.hits(h), Ok(4));
    assert_eq!(cpu.x[5], 0);
    assert!(!cpu0(&hw).step_pending());
}

#[test]
fn breakpoint_and_watch_on_one_store_each_count_once() {
    let hw = manager(ModelConfig::QEMU_LIKE);
    let bp = add(&hw, BreakpointAttr::exec(0x100)).unwrap();
    let wp = add(&hw, BreakpointAttr::watch(0x8000, 1, Access::WRITE)).unwrap();
    let mut cpu = Cpu::new(&[(0x100, SW_A1_0_A0), (0x104, NOP)]);
    cpu.x[10] = 0x8000;
    cpu.run(&hw, 50);
    assert_eq!((hw.hits(bp), hw.hits(wp)), (Ok(1), Ok(1)));
    // Breakpoint, then the watch on the retry (step pending), then the step.
    assert_eq!(cpu.traps, 3);
    assert!(!cpu0(&hw).step_pending());
    assert_eq!(hw.arch().csrs().bad_type_writes(), 0);
}

#[test]
fn hit_bits_attribute_where_present() {
    let hw = manager(ModelConfig::RICH);
    let a = add(&hw, BreakpointAttr::watch(0x8000, 4, Access::RW)).unwrap();
    let b = add(&hw, BreakpointAttr::watch(0x9000, 4, Access::RW)).unwrap();
    let mut cpu = Cpu::new(&[(0x100, LW_A2_0_A0), (0x104, NOP)]);
    cpu.x[10] = 0x9002;
    cpu.run(&hw, 50);
    assert_eq!((hw.hits(a), hw.hits(b)), (Ok(0), Ok(1)));
    let s = hw.handler().0.borrow()[0];
    // RICH reports the address in mtval.
    assert_eq!((s.addr, s.access), (0x9002, Access::READ));
}

#[test]
fn ebreak_is_not_ours() {
    let hw = manager(ModelConfig::QEMU_LIKE);
    add(&hw, BreakpointAttr::watch(0x8000, 1, Access::WRITE)).unwrap();
    let exc = hwbp_riscv::RiscvException {
        mcause: 3,
        mepc: 0x100,
        mtval: 0,
        prev: Privilege::Machine,
        insn: EBREAK,
        x: [0; 32],
    };
    assert_eq!(hw.handle_exception(0, &exc), Resume::NOT_OURS);
    assert!(!cpu0(&hw).step_pending());
}

#[test]
fn user_only_does_not_fire_in_machine_mode() {
    let hw = manager(ModelConfig::QEMU_LIKE);
    add(
        &hw,
        BreakpointAttr::watch(0x8000, 1, Access::WRITE).user_only(),
    )
    .unwrap();
    let model = hw.arch().csrs();
    let mut x = [0; 32];
    x[10] = 0x8000;
    assert!(model
        .step(0x100, SW_A1_0_A0, &x, Privilege::Machine)
        .is_none());
    assert!(model
        .step(0x100, SW_A1_0_A0, &x, Privilege::Supervisor)
        .is_none());
    assert!(model.step(0x100, SW_A1_0_A0, &x, Privilege::User).is_some());
}

#[test]
fn init_again_does_not_rewrite_triggers_in_use() {
    // Discovery probes by rewriting every trigger: once a pool is stored,
    // Arch::discover must answer from it, so a second init (refused with
    // Busy while a breakpoint is registered) leaves the installed trigger
    // as it was.
    let hw = manager(ModelConfig::QEMU_LIKE);
    let h = add(&hw, BreakpointAttr::watch(0x8000, 1, Access::WRITE)).unwrap();
    let k = hw.slots_on(h, 0).unwrap().trailing_zeros() as usize;
    let phys = hw.arch().pool()[k] as usize;
    let installed = hw.arch().csrs().trigger(phys);
    let writes = hw.arch().csrs().writes();
    assert_eq!(hw.init(1), Err(Error::Busy));
    assert_eq!(hw.arch().csrs().writes(), writes);
    assert_eq!(hw.arch().csrs().trigger(phys), installed);
    let mut x = [0; 32];
    x[10] = 0x8000;
    assert!(hw
        .arch()
        .csrs()
        .step(0x100, SW_A1_0_A0, &x, Privilege::Machine)
        .is_some());
}

#[test]
fn xret_hit_waits_for_complete_step_on_the_managers_state() {
    // A breakpoint on an mret: its successor is unknown, so no step trigger
    // is armed and the trigger stays disabled until complete_step, called
    // with the hart's state from the manager.
    let hw = manager(ModelConfig::QEMU_LIKE);
    let h = add(&hw, BreakpointAttr::exec(0x100)).unwrap();
    let model = hw.arch().csrs();
    let exc = model
        .step(0x100, MRET, &[0; 32], Privilege::Machine)
        .unwrap();
    assert_eq!(hw.handle_exception(0, &exc), Resume::RETURN);
    assert_eq!(hw.hits(h), Ok(1));
    assert!(cpu0(&hw).step_pending());
    assert!(model
        .step(0x100, MRET, &[0; 32], Privilege::Machine)
        .is_none());
    let steps = cpu0(&hw).steps();
    assert!(hw.arch().complete_step(cpu0(&hw)));
    assert!(!cpu0(&hw).step_pending());
    assert_eq!(cpu0(&hw).steps(), steps + 1);
    assert!(!hw.arch().complete_step(cpu0(&hw)));
    // Armed again.
    assert!(model
        .step(0x100, MRET, &[0; 32], Privilege::Machine)
        .is_some());
}

#[test]
fn generic_rules_come_from_the_core_in_its_order() {
    // The manager checks the generic rules before Arch::encode, the
    // standalone encoder runs the same implementation: same errors, in the
    // core's order (kernel address before the RV32 address range).
    let hw = manager_split(
        ModelConfig {
            xlen: Xlen::Rv32,
            ..ModelConfig::QEMU_LIKE
        },
        hwbp_riscv::RV32_KERNEL_BASE,
    );
    let enc = hw.arch().encoder();
    let both = BreakpointAttr::exec(0x100)
        .exclude_user(true)
        .exclude_kernel(true);
    let period0 = BreakpointAttr::watch(0x8000, 1, Access::WRITE).sample_period(0);
    // Beyond RV32 *and* in the kernel half: the kernel rule wins.
    let high = BreakpointAttr::watch(0x1_0000_0000, 1, Access::READ).user_only();
    for (attr, want) in [
        (both, Error::ExcludesEverything),
        (period0, Error::ZeroSamplePeriod),
        (high, Error::KernelAddress),
    ] {
        assert_eq!(enc.encode(&attr).unwrap_err(), want, "{attr:?}");
        assert_eq!(
            hw.register(&attr.target(Target::Cpu(0))).unwrap_err(),
            want,
            "{attr:?}"
        );
    }
    // Arch::encode itself adds only the RISC-V rules.
    assert_eq!(
        hw.arch()
            .encode(&BreakpointAttr::watch(0x1_0000_0000, 1, Access::READ))
            .unwrap_err(),
        Error::AddressOverflow
    );
}

fn check_region(cfg: ModelConfig, addr: u64, len: u64, write: bool) {
    let r = RiscvBackend::new(Model::new(cfg), RV64_KERNEL_BASE);
    let state = RiscvCpuState::new();
    let counts = r.discover().unwrap();
    r.init_cpu(0, &state).unwrap();
    let access = if write { Access::WRITE } else { Access::READ };
    let enc = match r.encode(&BreakpointAttr::watch(addr, len, access)) {
        Ok(e) => e,
        Err(Error::RangeTooLarge { weight, slots }) => {
            assert!(weight > slots);
            return;
        }
        Err(e) => panic!("{e:?}"),
    };
    let mut img = hwbp_core::Image::empty(counts);
    for (i, p) in enc.pieces.iter().enumerate() {
        img.pools[0][i] = p.slot;
    }
    r.install(0, &state, &hwbp_core::Image::empty(counts), &img);
    let m = r.csrs();
    for a in addr.saturating_sub(9)..addr + len + 9 {
        for size in [1u64, 2, 4, 8] {
            let d = hwbp_riscv::insn::DataAccess {
                addr: a,
                size,
                access,
            };
            let inside = a < addr + len && addr < a + size;
            assert_eq!(
                m.access_matches(&d, Privilege::Machine) != 0,
                inside,
                "{size} bytes at {a:#x}, region {addr:#x}+{len}"
            );
            // The other direction never fires.
            let other = hwbp_riscv::insn::DataAccess {
                access: if write { Access::READ } else { Access::WRITE },
                ..d
            };
            assert_eq!(m.access_matches(&other, Privilege::Machine), 0);
        }
    }
    assert_eq!(m.bad_type_writes(), 0);
}

proptest! {
    /// Encodings checked by what fires: every access overlapping the region
    /// fires, nothing else does, with and without NAPOT.
    #[test]
    fn exact_regions(addr in 0x1000u64..0x1100, len in 1u64..40, write: bool, rich: bool) {
        let cfg = if rich { ModelConfig::RICH } else {
            ModelConfig { count: 16, ..ModelConfig::QEMU_LIKE }
        };
        check_region(cfg, addr, len, write);
    }
}
