//! The backend driven without the manager, as a kernel that keeps its own
//! per-CPU state would: an `ArmBackend` and one `ArmCpuState` per CPU,
//! handed to the backend on that CPU. A CPU without state is refused the way
//! the manager refuses it (`Manager::cpu_online`: `CpuOutOfRange`;
//! `Manager::handle_exception`: `Resume::NOT_OURS`; `Manager::backend_cpu`:
//! `CpuOutOfRange`).

#![allow(dead_code)]

use core::ops::Deref;

use hwbp_arm64::step::StepOver;
use hwbp_arm64::{ArmBackend, ArmCpuState, ArmSlot, DebugRegs};
use hwbp_core::{Access, Arch, Decoded, Error, Fired, Image, Resume, SlotCounts};

/// A backend and the state of `N` CPUs.
pub struct Rig<R, const N: usize> {
    pub arm: ArmBackend<R>,
    pub cpus: [ArmCpuState; N],
}

impl<R: DebugRegs, const N: usize> Rig<R, N> {
    pub fn new(arm: ArmBackend<R>) -> Self {
        Rig {
            arm,
            cpus: [const { ArmCpuState::new() }; N],
        }
    }

    fn cpu(&self, cpu: u16) -> Option<&ArmCpuState> {
        self.cpus.get(usize::from(cpu))
    }

    pub fn init_cpu(&self, cpu: u16) -> Result<(), Error> {
        let st = self.cpu(cpu).ok_or(Error::CpuOutOfRange { cpu })?;
        self.arm.init_cpu(cpu, st)
    }

    pub fn install(&self, cpu: u16, current: &Image<ArmSlot>, desired: &Image<ArmSlot>) {
        if let Some(st) = self.cpu(cpu) {
            self.arm.install(cpu, st, current, desired)
        }
    }

    pub fn decode(&self, cpu: u16, raw: &R::Exception) -> Decoded {
        match self.cpu(cpu) {
            Some(st) => self.arm.decode(cpu, st, raw),
            None => Decoded::new(Fired::None, Resume::NOT_OURS)
                .addr(0)
                .ip(0)
                .access(Access::empty()),
        }
    }

    pub fn complete_step(&self, cpu: u16) -> bool {
        self.cpu(cpu).is_some_and(|st| self.arm.complete_step(st))
    }

    pub fn step_state(&self, cpu: u16) -> StepOver {
        self.cpu(cpu).map_or(StepOver::IDLE, ArmCpuState::step_over)
    }

    pub fn slot_counts(&self) -> SlotCounts {
        self.arm.counts_now()
    }
}

impl<R, const N: usize> Deref for Rig<R, N> {
    type Target = ArmBackend<R>;
    fn deref(&self) -> &ArmBackend<R> {
        &self.arm
    }
}
