//! Run-time discovery of the debug registers from the identification registers.
//!
//! Arm does not fix the number of breakpoint and watchpoint registers: each
//! implementation has 2..=16 of each, reported by `ID_AA64DFR0_EL1` in AArch64
//! and by `DBGDIDR` in AArch32 (the register descriptions of the Armv8 Arm ARM,
//! DDI 0487, and of the Armv7-A/R ARM, DDI 0406).
//! Both encode "count minus one" in 4-bit fields.

use hwbp_core::{Error, SlotCounts, MAX_SLOTS};

/// Clamp a decoded count to what the core's tables can hold.
fn clamp(n: u8) -> u8 {
    n.min(MAX_SLOTS as u8)
}

/// The debug architecture version of an AArch64 PE (`ID_AA64DFR0_EL1.DebugVer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DebugVer {
    /// `0b0110`: Armv8.0 debug architecture.
    V8,
    /// `0b0111`: Armv8 with the Virtualization Host Extensions (Armv8.1).
    V8Vhe,
    /// `0b1000`: Armv8.2 debug (FEAT_Debugv8p2).
    V8p2,
    /// `0b1001`: Armv8.4 debug (FEAT_Debugv8p4).
    V8p4,
    /// `0b1010`: Armv8.8 debug (FEAT_Debugv8p8).
    V8p8,
    /// `0b1011`: Armv8.9 debug (FEAT_Debugv8p9).
    V8p9,
    /// `0b1100..=0b1111`: a debug architecture newer than this crate knows,
    /// carrying the raw field. Arm ID fields follow the "higher value is a
    /// superset" scheme, so it is driven like [`DebugVer::V8p9`] (Linux arm64
    /// does not check `DebugVer` at all).
    Newer(u8),
}

impl DebugVer {
    /// Decode the 4-bit field. Values below `0b0110` (reserved: Armv8 is the
    /// first AArch64 debug architecture) and values that do not fit in 4 bits
    /// are refused with [`HardwareError::UnsupportedDebugArch`](hwbp_core::HardwareError::UnsupportedDebugArch); values above the
    /// newest known one decode to [`DebugVer::Newer`].
    pub const fn from_field(v: u8) -> Result<Self, Error> {
        Ok(match v {
            0x6 => DebugVer::V8,
            0x7 => DebugVer::V8Vhe,
            0x8 => DebugVer::V8p2,
            0x9 => DebugVer::V8p4,
            0xA => DebugVer::V8p8,
            0xB => DebugVer::V8p9,
            n @ 0xC..=0xF => DebugVer::Newer(n),
            _ => {
                return Err(Error::Hardware(
                    hwbp_core::HardwareError::UnsupportedDebugArch { version: v },
                ))
            }
        })
    }
}

/// `ID_AA64DFR0_EL1`, the AArch64 debug feature register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IdAa64Dfr0(pub u64);

impl IdAa64Dfr0 {
    const fn field(self, lsb: u32) -> u8 {
        ((self.0 >> lsb) & 0xF) as u8
    }

    /// Raw `DebugVer` field, bits \[3:0\].
    pub const fn debug_ver_field(self) -> u8 {
        self.field(0)
    }

    /// The debug architecture, or [`HardwareError::UnsupportedDebugArch`](hwbp_core::HardwareError::UnsupportedDebugArch) for a reserved
    /// value below Armv8 (values above the newest known decode to
    /// [`DebugVer::Newer`]).
    pub const fn debug_ver(self) -> Result<DebugVer, Error> {
        DebugVer::from_field(self.debug_ver_field())
    }

    /// Breakpoint registers: `BRPs` (bits \[15:12\]) + 1.
    pub const fn brps(self) -> u8 {
        self.field(12) + 1
    }

    /// Watchpoint registers: `WRPs` (bits \[23:20\]) + 1.
    pub const fn wrps(self) -> u8 {
        self.field(20) + 1
    }

    /// Context-aware breakpoints: `CTX_CMPs` (bits \[31:28\]) + 1.
    pub const fn ctx_cmps(self) -> u8 {
        self.field(28) + 1
    }

    /// The register pools, checked: a supported architecture, and counts
    /// clamped to [`MAX_SLOTS`].
    pub fn slot_counts(self) -> Result<SlotCounts, Error> {
        self.debug_ver()?;
        Ok(SlotCounts::Separate {
            inst: clamp(self.brps()),
            data: clamp(self.wrps()),
        })
    }
}

/// The debug architecture version of an AArch32 PE (`DBGDIDR.Version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DebugArch {
    /// `0b0001`: Armv6 debug (refused).
    V6,
    /// `0b0010`: Armv6.1 debug (refused).
    V6p1,
    /// `0b0011`: Armv7 debug with all CP14 debug registers implemented
    /// ("Extended CP14"). The code is from the Armv7-A/R ARM (DDI 0406C,
    /// chapter C11 "The Debug Registers", DBGDIDR, Debug ID Register) and is
    /// Linux's `ARM_DEBUG_ARCH_V7_ECP14` (3) in
    /// `arch/arm/include/asm/hw_breakpoint.h`. (The AArch32 DBGDIDR table of
    /// DDI 0487 lists `0b0011` and `0b0100` the other way round; the Armv7
    /// manual, Linux and shipped v7 cores agree on the order used here.)
    V7Ecp14,
    /// `0b0100`: Armv7 debug with only the baseline CP14 registers, the
    /// breakpoint registers being memory-mapped only (refused: this crate
    /// uses CP14). Linux's `ARM_DEBUG_ARCH_V7_MM` (4).
    V7MemoryMapped,
    /// `0b0101`: Armv7.1 debug (Cortex-A7/A15/A17; QEMU's cortex-a15). The
    /// code is from DDI 0406C (DBGDIDR, as above) and is Linux's
    /// `ARM_DEBUG_ARCH_V7_1` (5).
    V7p1,
    /// `0b0110`: Armv8 debug, AArch32 view.
    V8,
    /// `0b0111`: Armv8.1 debug (VHE), AArch32 view.
    V8p1,
    /// `0b1000`: Armv8.2 debug, AArch32 view.
    V8p2,
    /// `0b1001`: Armv8.4 debug, AArch32 view.
    V8p4,
    /// `0b1010..=0b1111`: a debug architecture newer than this crate knows,
    /// carrying the raw field (DDI 0487 names `0b1010` Armv8.8 and `0b1011`
    /// Armv8.9). Arm ID fields follow the "higher value is a superset"
    /// scheme, so it is driven like [`DebugArch::V8p4`]. Linux arm
    /// (`arch/arm/kernel/hw_breakpoint.c`) is stricter here: its
    /// `debug_arch_supported()` passes v6, v6.1, v7 with CP14 and every value
    /// from v7.1 up, but `enable_monitor_mode()` knows only v6, v6.1, v7
    /// (CP14), v7.1, v8, v8.1, v8.2 and v8.4 and returns `-ENODEV` for any
    /// other value, so Linux drives no version above v8.4.
    Newer(u8),
    /// `0b0000`: no debug architecture (refused). Also what
    /// [`DebugArch::from_field`] returns for a value that does not fit in
    /// 4 bits.
    Unknown(u8),
}

impl DebugArch {
    /// Decode the 4-bit field.
    pub const fn from_field(v: u8) -> Self {
        match v {
            0x1 => DebugArch::V6,
            0x2 => DebugArch::V6p1,
            0x3 => DebugArch::V7Ecp14,
            0x4 => DebugArch::V7MemoryMapped,
            0x5 => DebugArch::V7p1,
            0x6 => DebugArch::V8,
            0x7 => DebugArch::V8p1,
            0x8 => DebugArch::V8p2,
            0x9 => DebugArch::V8p4,
            0xA..=0xF => DebugArch::Newer(v),
            other => DebugArch::Unknown(other),
        }
    }

    /// The raw field value.
    pub const fn field(self) -> u8 {
        match self {
            DebugArch::V6 => 0x1,
            DebugArch::V6p1 => 0x2,
            DebugArch::V7Ecp14 => 0x3,
            DebugArch::V7MemoryMapped => 0x4,
            DebugArch::V7p1 => 0x5,
            DebugArch::V8 => 0x6,
            DebugArch::V8p1 => 0x7,
            DebugArch::V8p2 => 0x8,
            DebugArch::V8p4 => 0x9,
            DebugArch::Newer(v) | DebugArch::Unknown(v) => v,
        }
    }

    /// Whether the CP14 backend of this crate drives this architecture.
    ///
    /// Refused: v6 and v6.1 (different BCR layout, no watchpoint MASK, no
    /// `DBGDSCRext` at the v7 encoding), v7 with memory-mapped-only breakpoint
    /// registers (the same choice Linux's `debug_arch_supported()` makes), and
    /// 0 (no debug). Versions newer than the newest known
    /// ([`DebugArch::Newer`]) are supported.
    pub const fn is_supported(self) -> bool {
        matches!(
            self,
            DebugArch::V7Ecp14
                | DebugArch::V7p1
                | DebugArch::V8
                | DebugArch::V8p1
                | DebugArch::V8p2
                | DebugArch::V8p4
                | DebugArch::Newer(_)
        )
    }

    /// Whether the OS Lock is architecturally present and cleared through
    /// `DBGOSLAR` (v7.1 and later). In v7 it exists only when the OS Save and
    /// Restore registers do (`DBGOSLSR.OSLM[0]`), which the enable sequence
    /// reads at run time.
    pub const fn has_os_lock(self) -> bool {
        !matches!(self, DebugArch::V7Ecp14) && self.is_supported()
    }

    /// Whether `DBGOSDLR` (the OS Double Lock) exists: v7.1 and later (from
    /// Armv8.2 it may read as zero when FEAT_DoubleLock is absent). v7 has no
    /// such register.
    pub const fn has_double_lock(self) -> bool {
        self.has_os_lock()
    }
}

/// `DBGDIDR`, the AArch32 debug ID register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dbgdidr(pub u32);

impl Dbgdidr {
    const fn field(self, lsb: u32) -> u8 {
        ((self.0 >> lsb) & 0xF) as u8
    }

    /// Watchpoint registers: `WRPs` (bits \[31:28\]) + 1.
    pub const fn wrps(self) -> u8 {
        self.field(28) + 1
    }

    /// Breakpoint registers: `BRPs` (bits \[27:24\]) + 1.
    pub const fn brps(self) -> u8 {
        self.field(24) + 1
    }

    /// Context-matching breakpoints: `CTX_CMPs` (bits \[23:20\]) + 1.
    pub const fn ctx_cmps(self) -> u8 {
        self.field(20) + 1
    }

    /// The debug architecture (`Version`, bits \[19:16\]).
    pub const fn version(self) -> DebugArch {
        DebugArch::from_field(self.field(16))
    }

    /// The supported debug architecture, or [`HardwareError::UnsupportedDebugArch`](hwbp_core::HardwareError::UnsupportedDebugArch).
    pub const fn supported_version(self) -> Result<DebugArch, Error> {
        let v = self.version();
        if v.is_supported() {
            Ok(v)
        } else {
            Err(Error::Hardware(
                hwbp_core::HardwareError::UnsupportedDebugArch { version: v.field() },
            ))
        }
    }

    /// The register pools, checked: a supported architecture, and counts
    /// clamped to [`MAX_SLOTS`].
    pub fn slot_counts(self) -> Result<SlotCounts, Error> {
        self.supported_version()?;
        Ok(SlotCounts::Separate {
            inst: clamp(self.brps()),
            data: clamp(self.wrps()),
        })
    }

    /// The pools the backend uses: [`Dbgdidr::slot_counts`], except that
    /// before v7.1 only one watchpoint is used. There `DFAR` is UNKNOWN on a
    /// watchpoint debug event, so nothing tells two watchpoints apart (Linux
    /// makes the same restriction).
    pub fn usable_counts(self) -> Result<SlotCounts, Error> {
        let counts = self.slot_counts()?;
        match (counts, self.version()) {
            (SlotCounts::Separate { inst, .. }, DebugArch::V7Ecp14) => {
                Ok(SlotCounts::Separate { inst, data: 1 })
            }
            _ => Ok(counts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_cortex_a15_dbgdidr() {
        let id = Dbgdidr(0x3515_f021);
        assert_eq!(id.wrps(), 4);
        assert_eq!(id.brps(), 6);
        assert_eq!(id.ctx_cmps(), 2);
        assert_eq!(id.version(), DebugArch::V7p1);
        assert_eq!(
            id.slot_counts(),
            Ok(SlotCounts::Separate { inst: 6, data: 4 })
        );
    }

    #[test]
    fn dbgdidr_versions() {
        let with = |v: u32| Dbgdidr(0x1100_0000 | (v << 16));
        let table = [
            (
                0x0,
                Err(Error::Hardware(
                    hwbp_core::HardwareError::UnsupportedDebugArch { version: 0 },
                )),
            ),
            (
                0x1,
                Err(Error::Hardware(
                    hwbp_core::HardwareError::UnsupportedDebugArch { version: 1 },
                )),
            ),
            (
                0x2,
                Err(Error::Hardware(
                    hwbp_core::HardwareError::UnsupportedDebugArch { version: 2 },
                )),
            ),
            (0x3, Ok(DebugArch::V7Ecp14)),
            (
                0x4,
                Err(Error::Hardware(
                    hwbp_core::HardwareError::UnsupportedDebugArch { version: 4 },
                )),
            ),
            (0x5, Ok(DebugArch::V7p1)),
            (0x6, Ok(DebugArch::V8)),
            (0x7, Ok(DebugArch::V8p1)),
            (0x8, Ok(DebugArch::V8p2)),
            (0x9, Ok(DebugArch::V8p4)),
            (0xA, Ok(DebugArch::Newer(0xA))),
            (0xF, Ok(DebugArch::Newer(0xF))),
        ];
        for (v, want) in table {
            assert_eq!(with(v).supported_version(), want, "version {v:#x}");
            assert_eq!(DebugArch::from_field(v as u8).field(), v as u8);
        }
        assert_eq!(
            with(0x3).usable_counts(),
            Ok(SlotCounts::Separate { inst: 2, data: 1 })
        );
        assert_eq!(
            with(0x5).usable_counts(),
            Ok(SlotCounts::Separate { inst: 2, data: 2 })
        );
        assert!(DebugArch::V7p1.has_os_lock());
        assert!(!DebugArch::V7Ecp14.has_os_lock());
        assert!(DebugArch::V7p1.has_double_lock());
        assert!(!DebugArch::V7Ecp14.has_double_lock());
        // Newer than known: driven like the newest known version, with every
        // watchpoint usable and the OS lock and double lock present.
        assert_eq!(
            with(0xC).usable_counts(),
            Ok(SlotCounts::Separate { inst: 2, data: 2 })
        );
        assert!(DebugArch::Newer(0xC).has_os_lock());
        assert!(DebugArch::Newer(0xC).has_double_lock());
        assert_eq!(DebugArch::from_field(0x10), DebugArch::Unknown(0x10));
    }

    #[test]
    fn dbgdidr_odd_counts() {
        // Maximum fields: 16 and 16, context 16.
        let max = Dbgdidr(0xFFF5_0000);
        assert_eq!(
            max.slot_counts(),
            Ok(SlotCounts::Separate { inst: 16, data: 16 })
        );
        assert_eq!(max.ctx_cmps(), 16);
        // Zero fields: one of each (architecturally at least 2, but decode what
        // is there).
        let min = Dbgdidr(0x0005_0000);
        assert_eq!(
            min.slot_counts(),
            Ok(SlotCounts::Separate { inst: 1, data: 1 })
        );
        // Asymmetric: 2 breakpoints, 16 watchpoints.
        let asym = Dbgdidr(0xF136_0000);
        assert_eq!(
            asym.slot_counts(),
            Ok(SlotCounts::Separate { inst: 2, data: 16 })
        );
        assert_eq!(asym.version(), DebugArch::V8);
    }

    #[test]
    fn aa64dfr0() {
        // QEMU cortex-a53 / max: 6 breakpoints, 4 watchpoints, 2 context
        // comparators, Armv8 debug.
        let a53 = IdAa64Dfr0(0x1030_5106);
        assert_eq!(a53.brps(), 6);
        assert_eq!(a53.wrps(), 4);
        assert_eq!(a53.ctx_cmps(), 2);
        assert_eq!(a53.debug_ver(), Ok(DebugVer::V8));
        assert_eq!(
            a53.slot_counts(),
            Ok(SlotCounts::Separate { inst: 6, data: 4 })
        );
        // Upper fields (PMSVer, DoubleLock, …) do not disturb the counts.
        let busy = IdAa64Dfr0(0xFFFF_FFFF_0F0F_0F09 | (0xF << 12));
        assert_eq!(
            busy.slot_counts(),
            Ok(SlotCounts::Separate { inst: 16, data: 1 })
        );
        assert_eq!(busy.debug_ver(), Ok(DebugVer::V8p4));
        for (v, want) in [
            (0x6, DebugVer::V8),
            (0x7, DebugVer::V8Vhe),
            (0x8, DebugVer::V8p2),
            (0xB, DebugVer::V8p9),
        ] {
            assert_eq!(IdAa64Dfr0(v).debug_ver(), Ok(want));
        }
        for v in [0xCu8, 0xD, 0xF] {
            assert_eq!(IdAa64Dfr0(u64::from(v)).debug_ver(), Ok(DebugVer::Newer(v)));
            assert_eq!(
                IdAa64Dfr0(u64::from(v) | 0x5000).slot_counts(),
                Ok(SlotCounts::Separate { inst: 6, data: 1 })
            );
        }
        assert_eq!(
            DebugVer::from_field(0x1C),
            Err(Error::Hardware(
                hwbp_core::HardwareError::UnsupportedDebugArch { version: 0x1C }
            ))
        );
        for v in [0x0u8, 0x1, 0x5] {
            assert_eq!(
                IdAa64Dfr0(u64::from(v) | 0x5000).slot_counts(),
                Err(Error::Hardware(
                    hwbp_core::HardwareError::UnsupportedDebugArch { version: v }
                ))
            );
        }
    }
}
