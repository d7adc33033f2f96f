//! Debug registers in memory, driven by the [`Model`]: a stand-in CPU for host
//! tests of the backend and of the core on top of it.

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use critical_section::Mutex;

use crate::dr6::Dr6;
use crate::dr7::Dr7;
use crate::exception::X86Exception;
use crate::model::{CpuAccess, Model};
use crate::regs::{DebugReg, DebugRegs};

/// Capacity of the write log.
pub const LOG_LEN: usize = 256;

/// One register write seen by [`ModelRegs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegWrite {
    /// The CPU written.
    pub cpu: u16,
    /// The register written.
    pub reg: DebugReg,
    /// The value written.
    pub value: u64,
}

/// The debug registers of `CPUS` simulated CPUs.
///
/// Registers start as after reset (DR0–DR3 = 0, DR6 quiet, DR7 = `0x400`).
/// Every write is logged (up to [`LOG_LEN`]) so tests can check what a
/// backend wrote and in which order. Accesses run through the [`Model`] and
/// update DR6 as the hardware does: B0–B3 replaced, other status bits kept.
pub struct ModelRegs<const CPUS: usize> {
    model: Model,
    regs: [[AtomicU64; 6]; CPUS],
    log: Mutex<RefCell<heapless::Vec<RegWrite, LOG_LEN>>>,
    overflow: AtomicBool,
}

impl<const CPUS: usize> ModelRegs<CPUS> {
    /// Fresh registers for `model`.
    pub const fn new(model: Model) -> Self {
        let mut regs = [const { [const { AtomicU64::new(0) }; 6] }; CPUS];
        let mut i = 0;
        while i < CPUS {
            regs[i][4] = AtomicU64::new(Dr6::QUIET);
            regs[i][5] = AtomicU64::new(Dr7::RESERVED_ONE);
            i += 1;
        }
        ModelRegs {
            model,
            regs,
            log: Mutex::new(RefCell::new(heapless::Vec::new())),
            overflow: AtomicBool::new(false),
        }
    }

    /// The model.
    pub const fn model(&self) -> &Model {
        &self.model
    }

    fn cell(&self, cpu: u16, reg: DebugReg) -> Option<&AtomicU64> {
        self.regs.get(usize::from(cpu))?.get(reg.index())
    }

    fn get(&self, cpu: u16, reg: DebugReg) -> u64 {
        self.cell(cpu, reg).map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// DR0–DR3 and DR7 of `cpu`.
    pub fn image(&self, cpu: u16) -> ([u64; 4], Dr7) {
        (
            [
                self.get(cpu, DebugReg::Dr0),
                self.get(cpu, DebugReg::Dr1),
                self.get(cpu, DebugReg::Dr2),
                self.get(cpu, DebugReg::Dr3),
            ],
            Dr7::from_raw(self.get(cpu, DebugReg::Dr7)),
        )
    }

    /// Take the write log, leaving it empty. `None` if writes were lost because
    /// the log was full.
    pub fn take_log(&self) -> Option<heapless::Vec<RegWrite, LOG_LEN>> {
        let log = critical_section::with(|cs| core::mem::take(&mut *self.log.borrow_ref_mut(cs)));
        let lost = self.overflow.swap(false, Ordering::SeqCst);
        if lost {
            None
        } else {
            Some(log)
        }
    }

    /// Run an access on `cpu` at instruction pointer `ip`. If it raises #DB,
    /// update DR6 and return what the trap handler would read.
    pub fn access(&self, cpu: u16, access: &CpuAccess, ip: u64) -> Option<X86Exception> {
        let (addr, dr7) = self.image(cpu);
        let bits = self.model.access(&addr, dr7, access)?;
        Some(self.raise(cpu, bits, ip))
    }

    /// A single-step trap (RFLAGS.TF) after an instruction, with `next_ip` the
    /// next instruction. As QEMU does in `helper_single_step`, the instruction
    /// breakpoint conditions met by the next instruction are reported in B0–B3
    /// together with BS.
    pub fn single_step(&self, cpu: u16, next_ip: u64) -> X86Exception {
        let (addr, dr7) = self.image(cpu);
        let fetch = CpuAccess::fetch(next_ip);
        let mut bits = Dr6::BS;
        for (n, &a) in addr.iter().enumerate() {
            let slot = crate::slot::DrSlot::from_regs(a, dr7, n);
            if self.model.condition_met(&slot, &fetch)
                && (slot.is_enabled() || self.model.report_disabled)
            {
                bits |= Dr6::slot(n);
            }
        }
        self.raise(cpu, bits, next_ip)
    }

    fn raise(&self, cpu: u16, bits: Dr6, ip: u64) -> X86Exception {
        let old = Dr6::from_raw(self.get(cpu, DebugReg::Dr6));
        let new = old.difference(Dr6::TRAP_BITS) | bits;
        if let Some(c) = self.cell(cpu, DebugReg::Dr6) {
            c.store(new.to_raw(), Ordering::SeqCst);
        }
        X86Exception {
            dr6: new.to_raw(),
            ip,
        }
    }
}

impl<const CPUS: usize> DebugRegs for ModelRegs<CPUS> {
    fn read(&self, cpu: u16, reg: DebugReg) -> u64 {
        self.get(cpu, reg)
    }

    unsafe fn write(&self, cpu: u16, reg: DebugReg, value: u64) {
        ModelRegs::write(self, cpu, reg, value)
    }
}

impl<const CPUS: usize> ModelRegs<CPUS> {
    /// Write one register of the model (any value: the model is memory, so
    /// this is safe, unlike [`DebugRegs::write`]), and log it.
    pub fn write(&self, cpu: u16, reg: DebugReg, value: u64) {
        if let Some(c) = self.cell(cpu, reg) {
            c.store(value, Ordering::SeqCst);
        }
        let full = critical_section::with(|cs| {
            self.log
                .borrow_ref_mut(cs)
                .push(RegWrite { cpu, reg, value })
                .is_err()
        });
        if full {
            self.overflow.store(true, Ordering::SeqCst);
        }
    }
}
