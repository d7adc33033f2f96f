//! Access to the debug registers: the seam between the backend and the CPU.
//!
//! [`DebugRegs`] is what [`crate::X86Backend`] needs from a CPU: read and
//! write DR0–DR3, DR6 and DR7 of the calling CPU. [`Cpu`] implements it with
//! `mov %drN` (x86/x86_64 only); `model::ModelRegs` (feature `model`)
//! implements it in memory over the software model, so the same backend code
//! runs in host tests.
//!
//! The lowest level, [`read`](fn@read) and [`write`](fn@write) (x86 targets
//! only), is `unsafe`: debug registers can be touched only at CPL 0, and
//! writing them changes what the CPU traps on. [`DebugRegs::read`] is safe
//! because a value implementing the trait is itself the proof of ownership
//! ([`Cpu::new`] is `unsafe`). [`DebugRegs::write`] stays `unsafe`: the owner
//! token is reachable from safe code ([`crate::X86Backend::regs`]), and a
//! write can break what [`Cpu::new`] promises (DR7.GD set makes every later
//! debug-register access raise #DB) or what the backend believes is
//! installed.

/// One debug register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DebugReg {
    /// Address of slot 0.
    Dr0,
    /// Address of slot 1.
    Dr1,
    /// Address of slot 2.
    Dr2,
    /// Address of slot 3.
    Dr3,
    /// Debug status.
    Dr6,
    /// Debug control.
    Dr7,
}

impl DebugReg {
    /// The address register of slot `n`, if `n < 4`.
    pub const fn addr(n: usize) -> Option<Self> {
        match n {
            0 => Some(DebugReg::Dr0),
            1 => Some(DebugReg::Dr1),
            2 => Some(DebugReg::Dr2),
            3 => Some(DebugReg::Dr3),
            _ => None,
        }
    }

    /// A dense index 0..6 (DR0–DR3, then DR6, DR7).
    pub const fn index(self) -> usize {
        match self {
            DebugReg::Dr0 => 0,
            DebugReg::Dr1 => 1,
            DebugReg::Dr2 => 2,
            DebugReg::Dr3 => 3,
            DebugReg::Dr6 => 4,
            DebugReg::Dr7 => 5,
        }
    }
}

/// Read and write the debug registers of one CPU.
///
/// `cpu` names the calling CPU; an implementation on real hardware ignores it
/// (it can only reach its own registers), a model uses it to pick a register
/// file.
pub trait DebugRegs {
    /// Read one register.
    fn read(&self, cpu: u16, reg: DebugReg) -> u64;
    /// Write one register.
    ///
    /// # Safety
    ///
    /// The caller is the owner of the registers (the backend), and the value
    /// keeps the owner's invariants: DR7.GD stays clear (see [`Cpu::new`]),
    /// and a slot is enabled only at an address whose accesses the
    /// embedder's #DB handler can take.
    ///
    /// Safe code holding the backend cannot write through its token:
    ///
    /// ```compile_fail,E0133
    /// use hwbp_x86::{DebugReg, DebugRegs, Dr7, Encoder, Mode, X86Backend};
    /// struct Regs;
    /// impl DebugRegs for Regs {
    ///     fn read(&self, _: u16, _: DebugReg) -> u64 { 0 }
    ///     unsafe fn write(&self, _: u16, _: DebugReg, _: u64) {}
    /// }
    /// let hw = X86Backend::with_regs(Encoder::new(Mode::Bits64), Regs);
    /// hw.regs().write(0, DebugReg::Dr7, Dr7::GD); // error: needs `unsafe`
    /// ```
    unsafe fn write(&self, cpu: u16, reg: DebugReg, value: u64);
}

impl<R: DebugRegs + ?Sized> DebugRegs for &R {
    fn read(&self, cpu: u16, reg: DebugReg) -> u64 {
        (**self).read(cpu, reg)
    }
    unsafe fn write(&self, cpu: u16, reg: DebugReg, value: u64) {
        // SAFETY: forwarded; the caller upholds the contract.
        unsafe { (**self).write(cpu, reg, value) }
    }
}

cfg_if::cfg_if! {
    if #[cfg(any(target_arch = "x86", target_arch = "x86_64"))] {
        use core::arch::asm;

        /// Read a debug register of the calling CPU.
        ///
        /// # Safety
        ///
        /// The CPU must run at CPL 0 (otherwise `mov` from a debug register
        /// raises #GP), and with DR7.GD set the read raises #DB.
        pub unsafe fn read(reg: DebugReg) -> u64 {
            let v: usize;
            // SAFETY: the caller guarantees CPL 0; the moves read a register
            // and touch neither memory nor flags.
            unsafe {
                match reg {
                    DebugReg::Dr0 => asm!("mov {}, dr0", out(reg) v, options(nomem, nostack, preserves_flags)),
                    DebugReg::Dr1 => asm!("mov {}, dr1", out(reg) v, options(nomem, nostack, preserves_flags)),
                    DebugReg::Dr2 => asm!("mov {}, dr2", out(reg) v, options(nomem, nostack, preserves_flags)),
                    DebugReg::Dr3 => asm!("mov {}, dr3", out(reg) v, options(nomem, nostack, preserves_flags)),
                    DebugReg::Dr6 => asm!("mov {}, dr6", out(reg) v, options(nomem, nostack, preserves_flags)),
                    DebugReg::Dr7 => asm!("mov {}, dr7", out(reg) v, options(nomem, nostack, preserves_flags)),
                }
            }
            v as u64
        }

        /// Write a debug register of the calling CPU.
        ///
        /// # Safety
        ///
        /// The CPU must run at CPL 0, the caller must own the debug registers
        /// (nothing else relies on their contents), and in 64-bit mode the upper
        /// 32 bits of DR6/DR7 must be 0 (else #GP). Enabling a breakpoint makes
        /// later accesses raise #DB, so a handler must be installed.
        pub unsafe fn write(reg: DebugReg, value: u64) {
            let v = value as usize;
            // SAFETY: the caller guarantees CPL 0, ownership and a valid value.
            // No `nomem`: the write must stay ordered with the surrounding
            // memory accesses it is meant to watch.
            unsafe {
                match reg {
                    DebugReg::Dr0 => asm!("mov dr0, {}", in(reg) v, options(nostack, preserves_flags)),
                    DebugReg::Dr1 => asm!("mov dr1, {}", in(reg) v, options(nostack, preserves_flags)),
                    DebugReg::Dr2 => asm!("mov dr2, {}", in(reg) v, options(nostack, preserves_flags)),
                    DebugReg::Dr3 => asm!("mov dr3, {}", in(reg) v, options(nostack, preserves_flags)),
                    DebugReg::Dr6 => asm!("mov dr6, {}", in(reg) v, options(nostack, preserves_flags)),
                    DebugReg::Dr7 => asm!("mov dr7, {}", in(reg) v, options(nostack, preserves_flags)),
                }
            }
        }

        /// The debug registers of the CPU the code runs on (ring 0).
        ///
        /// A zero-sized owner token: holding one means the holder may read and
        /// write DR0–DR7 of whichever CPU it runs on.
        #[derive(Debug)]
        pub struct Cpu {
            _private: (),
        }

        impl Cpu {
            /// Take ownership of the debug registers.
            ///
            /// # Safety
            ///
            /// Code using the value runs at CPL 0, DR7.GD is clear, and nothing
            /// else (another driver, a debugger stub not going through hwbp)
            /// reads or writes DR0–DR7 while it exists.
            pub const unsafe fn new() -> Self {
                Cpu { _private: () }
            }
        }

        impl DebugRegs for Cpu {
            fn read(&self, _cpu: u16, reg: DebugReg) -> u64 {
                // SAFETY: a `Cpu` exists only under `Cpu::new`'s contract: CPL 0,
                // GD clear, sole owner.
                unsafe { read(reg) }
            }

            unsafe fn write(&self, _cpu: u16, reg: DebugReg, value: u64) {
                // Writing 1s above bit 31 of DR6/DR7 raises #GP; drop them.
                let value = match reg {
                    DebugReg::Dr6 | DebugReg::Dr7 => value & 0xffff_ffff,
                    _ => value,
                };
                // SAFETY: as for `read` (CPL 0, sole owner), the caller keeps
                // GD clear, and the value has been made valid above.
                unsafe { write(reg, value) }
            }
        }
    }
}
