//! AArch64 exception syndrome decoding (`ESR_ELx`, Arm ARM DDI 0487 register description).

use crate::event::DebugEvent;

/// The debug-related exception classes (`ESR_ELx.EC`, bits \[31:26\]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExceptionClass {
    /// `0x30` (from a lower EL) / `0x31` (same EL): hardware breakpoint.
    Breakpoint {
        /// Taken without a change of exception level (EC 0x31).
        same_el: bool,
    },
    /// `0x32` / `0x33`: software step.
    SoftwareStep {
        /// Taken without a change of exception level (EC 0x33).
        same_el: bool,
    },
    /// `0x34` / `0x35`: watchpoint.
    Watchpoint {
        /// Taken without a change of exception level (EC 0x35).
        same_el: bool,
    },
    /// `0x38`: `BKPT` from AArch32.
    Bkpt32,
    /// `0x3C`: `BRK` from AArch64.
    Brk64,
    /// Anything else.
    Other(u8),
}

impl ExceptionClass {
    /// Decode the 6-bit class.
    pub const fn from_ec(ec: u8) -> Self {
        match ec {
            0x30 => ExceptionClass::Breakpoint { same_el: false },
            0x31 => ExceptionClass::Breakpoint { same_el: true },
            0x32 => ExceptionClass::SoftwareStep { same_el: false },
            0x33 => ExceptionClass::SoftwareStep { same_el: true },
            0x34 => ExceptionClass::Watchpoint { same_el: false },
            0x35 => ExceptionClass::Watchpoint { same_el: true },
            0x38 => ExceptionClass::Bkpt32,
            0x3C => ExceptionClass::Brk64,
            other => ExceptionClass::Other(other & 0x3F),
        }
    }
}

/// An `ESR_ELx` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Esr(pub u64);

impl Esr {
    /// `EC`, bits \[31:26\].
    pub const fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3F) as u8
    }

    /// The typed exception class.
    pub const fn class(self) -> ExceptionClass {
        ExceptionClass::from_ec(self.ec())
    }

    /// `IL`, bit 25: 32-bit instruction.
    pub const fn il(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// `ISS`, bits \[24:0\].
    pub const fn iss(self) -> u32 {
        (self.0 & 0x1FF_FFFF) as u32
    }

    /// Watchpoint `WnR`, bit 6: the access was a store.
    pub const fn wnr(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// Watchpoint `CM`, bit 8: the access was a cache maintenance instruction
    /// (reported with `WnR` = 1).
    pub const fn cm(self) -> bool {
        self.0 & (1 << 8) != 0
    }

    /// Watchpoint `FnV`, bit 10: `FAR` is not valid (may be set only when
    /// FEAT_SVE or FEAT_SME is implemented, DDI 0487 `ESR_ELx`).
    pub const fn fnv(self) -> bool {
        self.0 & (1 << 10) != 0
    }

    /// Watchpoint `DFSC`/breakpoint `IFSC`, bits \[5:0\] (`0b100010`: debug
    /// exception).
    pub const fn fsc(self) -> u8 {
        (self.0 & 0x3F) as u8
    }

    /// The watchpoint number (`WPTV`, bit 17 and `WPT`, bits \[23:18\]), if
    /// valid. DDI 0487 defines both fields from FEAT_Debugv8p2 (Armv8.2 debug;
    /// RES0 before): there `WPTV` is an IMPLEMENTATION DEFINED 0 or 1 unless
    /// `FnV`, `FnP` or `WPF` is set, and with FEAT_Debugv8p9 it is always 1.
    /// Older cores (and QEMU 7.2) do not report it; when it is there the
    /// backend reports that slot
    /// ([`Fired::Slots`](hwbp_core::Fired::Slots)) instead of matching by
    /// address.
    pub const fn watchpoint_number(self) -> Option<u8> {
        if self.0 & (1 << 17) != 0 {
            Some(((self.0 >> 18) & 0x3F) as u8)
        } else {
            None
        }
    }

    /// Software step `ISV`, bit 24: `EX` is valid.
    pub const fn step_isv(self) -> bool {
        self.0 & (1 << 24) != 0
    }

    /// Software step `EX`, bit 6: the stepped instruction was a load-exclusive.
    pub const fn step_ex(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// `BRK`/`BKPT` immediate, bits \[15:0\].
    pub const fn comment(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }
}

/// The raw state of an AArch64 synchronous exception, as the embedder's
/// vector saves it: `ESR_EL1`, `FAR_EL1` and `ELR_EL1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Aarch64Exception {
    /// `ESR_EL1`.
    pub esr: u64,
    /// `FAR_EL1` (the data address for watchpoints; ignored otherwise).
    pub far: u64,
    /// `ELR_EL1`: the instruction that hit (breakpoint, watchpoint, BRK) or
    /// the next instruction to run (software step).
    pub elr: u64,
}

impl Aarch64Exception {
    /// Classify the exception.
    pub const fn event(&self) -> DebugEvent {
        let esr = Esr(self.esr);
        match esr.class() {
            ExceptionClass::Breakpoint { .. } => DebugEvent::Breakpoint {
                pc: self.elr,
                unconfirmed: false,
            },
            ExceptionClass::Watchpoint { .. } => DebugEvent::Watchpoint {
                addr: if esr.fnv() { None } else { Some(self.far) },
                pc: self.elr,
                write: Some(esr.wnr()),
                slot: esr.watchpoint_number(),
            },
            ExceptionClass::SoftwareStep { .. } => DebugEvent::Step {
                pc: self.elr,
                stepped: esr.step_isv(),
            },
            ExceptionClass::Brk64 | ExceptionClass::Bkpt32 => DebugEvent::SoftwareBreakpoint {
                pc: self.elr,
                comment: esr.comment(),
            },
            ExceptionClass::Other(_) => DebugEvent::Other,
        }
    }
}

/// Build an `ESR_EL1` value for a debug exception taken to EL1 (used by the
/// model and by tests; the encoding follows the `ESR_ELx` description).
pub const fn esr_for(class: ExceptionClass, iss: u32) -> u64 {
    let ec: u64 = match class {
        ExceptionClass::Breakpoint { same_el } => 0x30 | same_el as u64,
        ExceptionClass::SoftwareStep { same_el } => 0x32 | same_el as u64,
        ExceptionClass::Watchpoint { same_el } => 0x34 | same_el as u64,
        ExceptionClass::Bkpt32 => 0x38,
        ExceptionClass::Brk64 => 0x3C,
        ExceptionClass::Other(ec) => (ec & 0x3F) as u64,
    };
    (ec << 26) | (1 << 25) | (iss as u64 & 0x1FF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let ev = |ec: u64, iss: u64| {
            Aarch64Exception {
                esr: (ec << 26) | iss,
                far: 0xF00,
                elr: 0x400,
            }
            .event()
        };
        assert_eq!(
            ev(0x31, 0x22),
            DebugEvent::Breakpoint {
                pc: 0x400,
                unconfirmed: false
            }
        );
        assert_eq!(
            ev(0x30, 0x22),
            DebugEvent::Breakpoint {
                pc: 0x400,
                unconfirmed: false
            }
        );
        assert_eq!(
            ev(0x35, 0x22 | 1 << 6),
            DebugEvent::Watchpoint {
                addr: Some(0xF00),
                pc: 0x400,
                write: Some(true),
                slot: None
            }
        );
        assert_eq!(
            ev(0x34, 0x22),
            DebugEvent::Watchpoint {
                addr: Some(0xF00),
                pc: 0x400,
                write: Some(false),
                slot: None
            }
        );
        // FnV: FAR is not valid.
        assert_eq!(
            ev(0x34, 0x22 | 1 << 10),
            DebugEvent::Watchpoint {
                addr: None,
                pc: 0x400,
                write: Some(false),
                slot: None
            }
        );
        assert_eq!(
            ev(0x33, 0),
            DebugEvent::Step {
                pc: 0x400,
                stepped: false
            }
        );
        assert_eq!(
            ev(0x32, 1 << 24),
            DebugEvent::Step {
                pc: 0x400,
                stepped: true
            }
        );
        assert_eq!(
            ev(0x3C, 0x1234),
            DebugEvent::SoftwareBreakpoint {
                pc: 0x400,
                comment: 0x1234
            }
        );
        assert_eq!(
            ev(0x38, 7),
            DebugEvent::SoftwareBreakpoint {
                pc: 0x400,
                comment: 7
            }
        );
        assert_eq!(ev(0x15, 0), DebugEvent::Other);
        assert_eq!(ev(0x25, 0), DebugEvent::Other);
    }

    #[test]
    fn watchpoint_iss_fields() {
        let e = Esr(esr_for(
            ExceptionClass::Watchpoint { same_el: true },
            0x22 | 1 << 6 | 1 << 8,
        ));
        assert_eq!(e.class(), ExceptionClass::Watchpoint { same_el: true });
        assert!(e.wnr() && e.cm() && !e.fnv() && e.il());
        assert_eq!(e.fsc(), 0x22);
        assert_eq!(e.watchpoint_number(), None);
        let v89 = Esr(esr_for(
            ExceptionClass::Watchpoint { same_el: true },
            0x22 | 1 << 17 | 5 << 18,
        ));
        assert_eq!(v89.watchpoint_number(), Some(5));
        let step = Esr(esr_for(
            ExceptionClass::SoftwareStep { same_el: true },
            1 << 24 | 1 << 6,
        ));
        assert!(step.step_isv() && step.step_ex());
        for ec in 0u8..64 {
            let c = ExceptionClass::from_ec(ec);
            assert_eq!(Esr(esr_for(c, 0)).ec(), ec);
        }
    }
}
