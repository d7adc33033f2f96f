//! AArch32 / Armv7 debug events: prefetch and data aborts with a debug fault
//! status, and the method of entry in `DBGDSCR.MOE` (Armv7-A/R ARM,
//! DDI 0406, debug events in monitor mode; DDI 0487 for AArch32).

use crate::event::DebugEvent;

/// A fault status register value (`IFSR` or `DFSR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fsr(pub u32);

impl Fsr {
    /// `LPAE`, bit 9: long-descriptor format.
    pub const fn long_descriptor(self) -> bool {
        self.0 & (1 << 9) != 0
    }

    /// The fault status: `STATUS[5:0]` in the long-descriptor format,
    /// `FS[4] (bit 10) : FS[3:0]` in the short-descriptor format.
    pub const fn status(self) -> u8 {
        if self.long_descriptor() {
            (self.0 & 0x3F) as u8
        } else {
            (((self.0 >> 6) & 0x10) | (self.0 & 0xF)) as u8
        }
    }

    /// Whether the status is "debug event" (`0b00010` short, `0b100010` long).
    pub const fn is_debug_event(self) -> bool {
        if self.long_descriptor() {
            self.status() == 0b10_0010
        } else {
            self.status() == 0b0_0010
        }
    }

    /// `DFSR.WnR`, bit 11: the access was a write.
    pub const fn wnr(self) -> bool {
        self.0 & (1 << 11) != 0
    }

    /// A debug-event status in the short-descriptor format, with `WnR`.
    pub const fn debug_event(write: bool) -> Self {
        Fsr(0b0_0010 | if write { 1 << 11 } else { 0 })
    }
}

/// Method of debug entry (`DBGDSCR.MOE`, bits \[5:2\]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Moe {
    /// `0b0000`: halt request (also what an emulator that does not record MOE
    /// leaves behind).
    HaltRequest,
    /// `0b0001`: breakpoint.
    Breakpoint,
    /// `0b0010`: asynchronous watchpoint (deprecated, v7).
    AsyncWatchpoint,
    /// `0b0011`: `BKPT` instruction.
    Bkpt,
    /// `0b0100`: external debug request.
    ExternalDebugRequest,
    /// `0b0101`: vector catch.
    VectorCatch,
    /// `0b1000`: OS unlock catch.
    OsUnlockCatch,
    /// `0b1010`: synchronous watchpoint.
    SyncWatchpoint,
    /// Any other value.
    Other(u8),
}

impl Moe {
    /// Decode the 4-bit field.
    pub const fn from_bits(v: u32) -> Self {
        match v & 0xF {
            0 => Moe::HaltRequest,
            1 => Moe::Breakpoint,
            2 => Moe::AsyncWatchpoint,
            3 => Moe::Bkpt,
            4 => Moe::ExternalDebugRequest,
            5 => Moe::VectorCatch,
            8 => Moe::OsUnlockCatch,
            10 => Moe::SyncWatchpoint,
            other => Moe::Other(other as u8),
        }
    }

    /// Encode into the 4-bit field.
    pub const fn bits(self) -> u32 {
        match self {
            Moe::HaltRequest => 0,
            Moe::Breakpoint => 1,
            Moe::AsyncWatchpoint => 2,
            Moe::Bkpt => 3,
            Moe::ExternalDebugRequest => 4,
            Moe::VectorCatch => 5,
            Moe::OsUnlockCatch => 8,
            Moe::SyncWatchpoint => 10,
            Moe::Other(v) => (v & 0xF) as u32,
        }
    }
}

/// `DBGDSCR` (the external view, `DBGDSCRext`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dbgdscr(pub u32);

impl Dbgdscr {
    /// `MDBGen`, bit 15: monitor debug-mode enable.
    pub const MDBGEN: u32 = 1 << 15;
    /// `HDBGen`, bit 14: halting debug-mode enable.
    pub const HDBGEN: u32 = 1 << 14;

    /// Method of entry.
    pub const fn moe(self) -> Moe {
        Moe::from_bits(self.0 >> 2)
    }

    /// Monitor debug-mode enabled.
    pub const fn monitor_mode(self) -> bool {
        self.0 & Self::MDBGEN != 0
    }

    /// The same value with another `MOE`.
    #[must_use]
    pub const fn with_moe(self, moe: Moe) -> Self {
        Dbgdscr((self.0 & !(0xF << 2)) | (moe.bits() << 2))
    }
}

/// Which abort vector the event came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AbortKind {
    /// Prefetch abort (breakpoints, `BKPT`, vector catch).
    Prefetch,
    /// Data abort (watchpoints).
    Data,
}

/// The raw state of an AArch32 abort, as the embedder's abort handler saves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Aarch32Exception {
    /// Which vector.
    pub kind: AbortKind,
    /// `IFSR` (prefetch abort) or `DFSR` (data abort).
    pub fsr: u32,
    /// `DFAR` for a data abort (the watched address on v7.1 and later; UNKNOWN
    /// on v7 before 7.1); ignored for a prefetch abort.
    pub far: u32,
    /// `DBGDSCRext`, read in the handler (for `MOE`).
    pub dscr: u32,
    /// Address of the aborted instruction: `LR_abt - 4` for a prefetch abort,
    /// `LR_abt - 8` for a data abort.
    pub pc: u32,
    /// Whether the watched access was a store, when the embedder knows it
    /// (for example by decoding the aborted instruction at `pc`); `None` when
    /// it does not. This crate never reads `DFSR.WnR`: on v7.1 it is UNKNOWN
    /// for a watchpoint debug event, and QEMU leaves it clear. (Linux's
    /// `arch/arm` trusts it only when the debug architecture is v8 or later,
    /// `debug_exception_updates_fsr`, and otherwise matches by address
    /// alone.) With `None` the hit is attributed by address alone and its
    /// sample's access is empty.
    pub write: Option<bool>,
    /// The aborted instruction is T32 (Thumb): `SPSR_abt.T`, bit 5. The
    /// mismatch step ([`StepMethod::Mismatch`](crate::StepMethod::Mismatch))
    /// must exclude only the halfword the instruction starts in, or a 16-bit
    /// instruction that follows in the same word would run unstepped.
    pub thumb: bool,
}

impl Aarch32Exception {
    /// Classify the abort.
    ///
    /// Only aborts whose status is "debug event" are debug events. A prefetch
    /// abort with `MOE` = `BKPT` is a software breakpoint; with `MOE` =
    /// breakpoint it is a hardware breakpoint; with any other `MOE` (QEMU does
    /// not always record it) it is reported as an unconfirmed breakpoint that
    /// the backend checks against its registers. A data abort with a debug
    /// status is a watchpoint whatever `MOE` says.
    pub const fn event(&self) -> DebugEvent {
        let fsr = Fsr(self.fsr);
        if !fsr.is_debug_event() {
            return DebugEvent::Other;
        }
        let pc = self.pc as u64;
        match self.kind {
            AbortKind::Prefetch => match Dbgdscr(self.dscr).moe() {
                Moe::Bkpt => DebugEvent::SoftwareBreakpoint { pc, comment: 0 },
                Moe::Breakpoint => DebugEvent::Breakpoint {
                    pc,
                    unconfirmed: false,
                },
                Moe::VectorCatch | Moe::OsUnlockCatch | Moe::ExternalDebugRequest => {
                    DebugEvent::Other
                }
                _ => DebugEvent::Breakpoint {
                    pc,
                    unconfirmed: true,
                },
            },
            AbortKind::Data => DebugEvent::Watchpoint {
                addr: Some(self.far as u64),
                pc,
                write: self.write,
                slot: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsr_formats() {
        assert!(Fsr(0x002).is_debug_event());
        assert!(!Fsr(0x005).is_debug_event()); // translation fault
        assert!(!Fsr(0x402).is_debug_event()); // FS[4] set: 0b10010
        assert!(Fsr(0x222).is_debug_event()); // LPAE, STATUS 0b100010
        assert!(!Fsr(0x202).is_debug_event()); // LPAE, STATUS 0b000010
        assert!(Fsr::debug_event(true).wnr() && Fsr::debug_event(true).is_debug_event());
        assert!(!Fsr::debug_event(false).wnr());
    }

    #[test]
    fn events() {
        let base = Aarch32Exception {
            kind: AbortKind::Prefetch,
            fsr: 0x002,
            far: 0,
            dscr: 0,
            pc: 0x8000,
            write: None,
            thumb: false,
        };
        let moe = |m: Moe| Dbgdscr(Dbgdscr::MDBGEN).with_moe(m).0;
        assert_eq!(
            Aarch32Exception {
                dscr: moe(Moe::Breakpoint),
                ..base
            }
            .event(),
            DebugEvent::Breakpoint {
                pc: 0x8000,
                unconfirmed: false
            }
        );
        assert_eq!(
            base.event(),
            DebugEvent::Breakpoint {
                pc: 0x8000,
                unconfirmed: true
            }
        );
        assert_eq!(
            Aarch32Exception {
                dscr: moe(Moe::Bkpt),
                ..base
            }
            .event(),
            DebugEvent::SoftwareBreakpoint {
                pc: 0x8000,
                comment: 0
            }
        );
        assert_eq!(
            Aarch32Exception {
                dscr: moe(Moe::VectorCatch),
                ..base
            }
            .event(),
            DebugEvent::Other
        );
        assert_eq!(
            Aarch32Exception { fsr: 0x005, ..base }.event(),
            DebugEvent::Other
        );
        let data = Aarch32Exception {
            kind: AbortKind::Data,
            fsr: Fsr::debug_event(true).0,
            far: 0x2004,
            dscr: moe(Moe::SyncWatchpoint),
            pc: 0x8010,
            write: None,
            thumb: false,
        };
        // DFSR.WnR is UNKNOWN for watchpoints: set or clear, the direction is
        // what the embedder says, or unknown.
        assert_eq!(
            data.event(),
            DebugEvent::Watchpoint {
                addr: Some(0x2004),
                pc: 0x8010,
                write: None,
                slot: None
            }
        );
        for write in [Some(true), Some(false)] {
            assert_eq!(
                Aarch32Exception {
                    fsr: 0x222,
                    dscr: 0,
                    write,
                    ..data
                }
                .event(),
                DebugEvent::Watchpoint {
                    addr: Some(0x2004),
                    pc: 0x8010,
                    write,
                    slot: None
                }
            );
        }
        assert!(Dbgdscr(moe(Moe::SyncWatchpoint)).monitor_mode());
        for v in 0u32..16 {
            assert_eq!(Moe::from_bits(v).bits(), v);
        }
    }
}
