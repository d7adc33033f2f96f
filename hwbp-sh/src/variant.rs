//! UBC variants and how the running part is identified.
//!
//! A [`Variant`] says which register layout the UBC has, how many channels
//! it has and which exception code a break raises. It is chosen at run time:
//!
//! 1. From the processor version register PVR (`0xFF00_0030`) and, where one
//!    PVR value covers several parts, the product register PRR
//!    (`0xFF00_0044`), comparing what Linux compares in
//!    `arch/sh/kernel/cpu/sh4/probe.c`: it reads 24 bits,
//!    `(PVR >> 8) & 0xFF_FFFF`; their top byte (PVR bits 31:24) is the family,
//!    `0x10` for SH-4A and anything else for SH-4; the low 16 bits
//!    (PVR bits 23:8) name the part, with `(PRR >> 4) & 0xFF` telling apart
//!    parts that share them. A part is known only when both agree with the
//!    table: an SH-4A part number under a non-SH-4A family byte, or an SH-4
//!    part number under the SH-4A family byte, is an
//!    [`HardwareError::UnknownPart`](hwbp_core::HardwareError::UnknownPart)
//!    like any value not in the table. The crate does not guess.
//! 2. When the PVR is not implemented (reads as all zeros or all ones), from
//!    a probe of the channel registers ([`probe`]).
//!
//! Either way [`discover`] then checks that the UBC takes writes
//! ([`check_writable`]): a module-stopped UBC ignores them.

use crate::bus::UbcBus;
use crate::{sh4, sh4a};
use hwbp_core::{Error, SlotCounts, MAX_SLOTS};

/// Processor version register (CCN, 32-bit).
pub const PVR: u32 = 0xFF00_0030;
/// Product register (CCN, 32-bit; SH-4A and SH7750R/SH7751R).
pub const PRR: u32 = 0xFF00_0044;
/// EXPEVT/vector code of the user break exception on SH-4 and SH-4A (taken
/// at VBR + 0x100, or at DBR when CBCR.UBDE / BRCR.UBDE is set).
pub const USER_BREAK_EXPEVT: u32 = 0x1E0;

/// The register layout of a UBC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Layout {
    /// SH-4 (SH7750 family): channels A and B, BAR/BAMR/BBR/BASR + BRCR.
    Sh4,
    /// SH-4A (SH7780 family): channels 0..n, CBR/CRR/CAR/CAMR + CCMFR/CBCR.
    Sh4a,
}

/// The identified part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Part {
    /// SH7750 (PVR 0x0205).
    Sh7750,
    /// SH7750S (PVR 0x0206).
    Sh7750S,
    /// SH7750R (PVR 0x0500/0x0501, PRR 0x10).
    Sh7750R,
    /// SH7751 (PVR 0x1100).
    Sh7751,
    /// SH7751R (PVR 0x0500/0x0501, PRR 0x11).
    Sh7751R,
    /// SH7780 (PVR 0x2006/0x200A, other PRR).
    Sh7780,
    /// SH7781 (PVR 0x2006/0x200A, PRR 0x61).
    Sh7781,
    /// SH7763 (PVR 0x2006/0x200A, PRR 0xA1).
    Sh7763,
    /// SH7785 (PVR 0x3004/0x3007).
    Sh7785,
    /// SH7724 (PVR 0x300B, PRR 0x20).
    Sh7724,
    /// Not identified by PVR; the layout and channel count come from a probe
    /// or from the embedder.
    Other,
}

/// A UBC variant: layout, channel count, trap code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Variant {
    /// The part.
    pub part: Part,
    /// Register layout.
    pub layout: Layout,
    /// Number of channels (1..=16).
    pub channels: u8,
    /// EXPEVT code of the break exception.
    pub trap: u32,
}

impl Variant {
    /// An SH-4 (SH7750-family) part: always two channels, A and B.
    pub const fn sh4(part: Part) -> Self {
        Variant {
            part,
            layout: Layout::Sh4,
            channels: 2,
            trap: USER_BREAK_EXPEVT,
        }
    }

    /// An SH-4A part with `channels` channels in the SH7780 layout. Returns
    /// `None` for 0 or more than 16 channels.
    pub const fn sh4a(part: Part, channels: u8) -> Option<Self> {
        if channels == 0 || channels as usize > MAX_SLOTS {
            return None;
        }
        Some(Variant {
            part,
            layout: Layout::Sh4a,
            channels,
            trap: USER_BREAK_EXPEVT,
        })
    }

    /// The slot counts the core sizes its tables with: one shared pool, since
    /// every channel can watch instruction fetches or operand accesses.
    pub const fn slot_counts(&self) -> SlotCounts {
        SlotCounts::Shared(self.channels)
    }

    /// Bit mask of the channels that exist.
    pub const fn channel_mask(&self) -> u32 {
        if self.channels >= 32 {
            u32::MAX
        } else {
            (1u32 << self.channels) - 1
        }
    }

    /// Whether the address mask register can ignore exactly the low `k` bits
    /// (SH-4A CAMR: any bit pattern; SH-4 BAMR: 0, 10, 12, 16 or 20 bits).
    pub const fn supports_low_mask(&self, k: u32) -> bool {
        match self.layout {
            Layout::Sh4a => k < 32,
            Layout::Sh4 => matches!(k, 0 | 10 | 12 | 16 | 20),
        }
    }
}

/// PVR family byte (PVR bits 31:24) of SH-4A parts; Linux's probe treats
/// every other value as SH-4.
const SH4A_FAMILY: u32 = 0x10;

/// Identify the part from raw PVR and PRR values.
///
/// # Errors
/// [`Error::Hardware`] with [`HardwareError::UnknownPart`](hwbp_core::HardwareError::UnknownPart)
/// (carrying the raw PVR) when the part number is not
/// in the table, when PRR names a part sharing it whose UBC is not described
/// here, or when the family byte disagrees with the part's family.
pub fn identify(pvr_raw: u32, prr_raw: u32) -> Result<Variant, Error> {
    // The 24 bits Linux reads: family byte above the 16-bit part number.
    let pvr = (pvr_raw >> 8) & 0xFF_FFFF;
    let family_sh4a = pvr >> 16 == SH4A_FAMILY;
    let prr = (prr_raw >> 4) & 0xFF;
    let unknown = Err(Error::Hardware(hwbp_core::HardwareError::UnknownPart {
        id: pvr_raw,
    }));
    // Every SH-4A part listed here documents two UBC channels (CBR0/CBR1).
    let sh4a2 = |part| {
        Variant::sh4a(part, 2).ok_or(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
    };
    let found = match pvr & 0xFFFF {
        0x0205 => Ok(Variant::sh4(Part::Sh7750)),
        0x0206 => Ok(Variant::sh4(Part::Sh7750S)),
        0x1100 => Ok(Variant::sh4(Part::Sh7751)),
        0x0500 | 0x0501 => match prr {
            0x10 => Ok(Variant::sh4(Part::Sh7750R)),
            0x11 => Ok(Variant::sh4(Part::Sh7751R)),
            // SH7760 and others share this PVR; their UBC is not described here.
            _ => unknown,
        },
        0x2006 | 0x200A => match prr {
            0x61 => sh4a2(Part::Sh7781),
            0xA1 => sh4a2(Part::Sh7763),
            _ => sh4a2(Part::Sh7780),
        },
        0x3004 | 0x3007 => sh4a2(Part::Sh7785),
        // Linux tells SH7724 (PRR 0x20) from SH7757 (0x10/0x11), SH7372
        // (0xD0/0x40) and SH7733/SH7734 (0xE0) by PRR; the UBCs of the
        // others are not described here.
        0x300B => match prr {
            0x20 => sh4a2(Part::Sh7724),
            _ => unknown,
        },
        _ => unknown,
    }?;
    // The family byte must say what the part is: Linux takes an SH-4A part
    // number under another family byte for an SH-4 (and the reverse), so
    // such a PVR names no part in the table.
    if (found.layout == Layout::Sh4a) == family_sh4a {
        Ok(found)
    } else {
        unknown
    }
}

/// A value written while probing: only reserved-on-SH-4A CBR bits (11:8 and
/// 3) plus bits that exist in an SH-4 BAR, and never CBR.CE.
const SH4_BAR_PROBE: u32 = 0x0000_0F08;
/// A value written to CAR`n` while counting SH-4A channels.
const CAR_PROBE: u32 = 0xA5C3_5A3C;

/// Find the UBC layout and channel count by touching the channel registers.
///
/// * `0xFF20_0000` is BARA (32-bit, every bit writable) on SH-4 and CBR0 on
///   SH-4A, where bits 11:8 and 3 are reserved and read as 0. Writing
///   `0x0F08` (CE stays 0) tells them apart.
/// * On SH-4A, channel `n` exists if CAR`n` holds a written pattern.
///
/// Every register touched is restored. A UBC that ignores writes (module
/// clock stopped, see [`check_writable`]) has no channel whose CAR reads
/// back, so the probe returns [`HardwareError::NoDebugHardware`](hwbp_core::HardwareError::NoDebugHardware) for it.
///
/// # Safety
/// The caller owns the UBC and runs privileged on a SuperH part whose UBC is
/// at `0xFF20_0000` (SH-4 or SH-4A); the probe writes those registers.
pub unsafe fn probe<B: UbcBus>(bus: &B) -> Result<Variant, Error> {
    // SAFETY: the caller guarantees the UBC is at 0xFF20_0000 and owned; the
    // first register is 32-bit in both layouts and the value keeps CE clear.
    let sh4 = unsafe {
        let old = bus.read32(sh4::BARA);
        bus.write32(sh4::BARA, SH4_BAR_PROBE);
        let back = bus.read32(sh4::BARA);
        bus.write32(sh4::BARA, old);
        back == SH4_BAR_PROBE
    };
    if sh4 {
        return Ok(Variant::sh4(Part::Other));
    }
    let mut n: u8 = 0;
    while (n as usize) < MAX_SLOTS {
        let addr = sh4a::car(n);
        // SAFETY: on SH-4A CAR`n` is a 32-bit register for every implemented
        // channel; past the last channel the block is reserved space inside
        // the UBC area, which the caller accepts by calling a probe.
        let present = unsafe {
            let old = bus.read32(addr);
            bus.write32(addr, CAR_PROBE);
            let back = bus.read32(addr);
            bus.write32(addr, old);
            back == CAR_PROBE
        };
        if !present {
            break;
        }
        n += 1;
    }
    Variant::sh4a(Part::Other, n).ok_or(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
}

/// Identify the UBC: from PVR/PRR when the PVR is implemented, else by
/// [`probe`]; then check that the UBC accepts writes ([`check_writable`]).
///
/// # Errors
/// [`HardwareError::UnknownPart`](hwbp_core::HardwareError::UnknownPart) for a PVR/PRR not in the table;
/// [`HardwareError::NoDebugHardware`](hwbp_core::HardwareError::NoDebugHardware) when the probe finds no UBC or the UBC ignores
/// writes (module-stopped: clear its module-stop bit first).
///
/// # Safety
/// As [`probe`]: privileged code on an SH-4/SH-4A part that owns the UBC.
pub unsafe fn discover<B: UbcBus>(bus: &B) -> Result<Variant, Error> {
    // SAFETY: PVR and PRR are 32-bit read-only CCN registers on SH-4/SH-4A.
    let (pvr, prr) = unsafe { (bus.read32(PVR), bus.read32(PRR)) };
    let v = if pvr == 0 || pvr == u32::MAX {
        // SAFETY: forwarded from the caller.
        unsafe { probe(bus)? }
    } else {
        identify(pvr, prr)?
    };
    // SAFETY: forwarded from the caller; `v` describes the part.
    unsafe { check_writable(bus, v)? };
    Ok(v)
}

/// Patterns [`check_writable`] writes (every bit of CAR0/BARA is writable).
const WRITABLE_PROBE: [u32; 2] = [0xA5C3_5A3C, 0x5A3C_A5C3];

/// Check that the UBC accepts writes: write patterns to channel 0's address
/// register (CAR0 on SH-4A, BARA on SH-4; both 32-bit with every bit
/// writable, and neither enables anything), read each back, and restore the
/// old value.
///
/// A UBC whose module clock is stopped (the MSTP bit of the part's standby
/// control register; Linux enables the `ubc0` clock before touching it)
/// ignores writes, so every breakpoint would silently never fire. The
/// embedder must clear that bit before using the backend; this check turns
/// forgetting it into an error.
///
/// # Errors
/// [`HardwareError::NoDebugHardware`](hwbp_core::HardwareError::NoDebugHardware) if a pattern does not read back.
///
/// # Safety
/// The caller owns the UBC and runs privileged on a part with `variant`'s
/// layout.
pub unsafe fn check_writable<B: UbcBus>(bus: &B, variant: Variant) -> Result<(), Error> {
    let addr = match variant.layout {
        Layout::Sh4a => sh4a::car(0),
        Layout::Sh4 => sh4::BARA,
    };
    // SAFETY: CAR0 (SH-4A) and BARA (SH-4) are 32-bit address registers of
    // channel 0, which every variant has; an address alone enables nothing;
    // the caller owns the UBC. The old value is written back.
    let ok = unsafe {
        let old = bus.read32(addr);
        let mut ok = true;
        for p in WRITABLE_PROBE {
            bus.write32(addr, p);
            ok &= bus.read32(addr) == p;
        }
        bus.write32(addr, old);
        ok
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_parts() {
        assert_eq!(identify(0x0002_0500, 0).unwrap().part, Part::Sh7750);
        assert_eq!(identify(0x0002_0601, 0).unwrap().part, Part::Sh7750S);
        assert_eq!(identify(0x0011_0000, 0).unwrap().part, Part::Sh7751);
        assert_eq!(identify(0x0005_0000, 0x100).unwrap().part, Part::Sh7750R);
        assert_eq!(identify(0x0005_0100, 0x110).unwrap().part, Part::Sh7751R);
        let sh7780 = identify(0x1020_0600, 0).unwrap();
        assert_eq!(
            (sh7780.part, sh7780.layout, sh7780.channels),
            (Part::Sh7780, Layout::Sh4a, 2)
        );
        assert_eq!(identify(0x1020_0A00, 0x610).unwrap().part, Part::Sh7781);
        assert_eq!(identify(0x1020_0600, 0xA10).unwrap().part, Part::Sh7763);
        assert_eq!(identify(0x1030_0400, 0).unwrap().part, Part::Sh7785);
        assert_eq!(identify(0x1030_0B00, 0x200).unwrap().part, Part::Sh7724);
        let sh4 = identify(0x0002_0500, 0).unwrap();
        assert_eq!(
            (sh4.layout, sh4.channels, sh4.trap),
            (Layout::Sh4, 2, 0x1E0)
        );
        assert_eq!(sh4.slot_counts(), SlotCounts::Shared(2));
    }

    #[test]
    fn unknown_parts_are_errors() {
        assert_eq!(
            identify(0x0030_0000, 0),
            Err(Error::Hardware(hwbp_core::HardwareError::UnknownPart {
                id: 0x0030_0000
            }))
        );
        // SH7760 shares PVR 0x0500 with SH7750R/SH7751R but has PRR 0x5x.
        assert_eq!(
            identify(0x0005_0000, 0x500),
            Err(Error::Hardware(hwbp_core::HardwareError::UnknownPart {
                id: 0x0005_0000
            }))
        );
        // PVR 0x300B is SH7724 only with PRR 0x20: SH7757 (0x10/0x11),
        // SH7372 (0xD0/0x40), SH7733/SH7734 (0xE0) and unlisted values are
        // not guessed to share its UBC.
        for prr in [0x000, 0x100, 0x110, 0xD00, 0x400, 0xE00, 0x210, 0x4E0] {
            assert_eq!(
                identify(0x1030_0B00, prr),
                Err(Error::Hardware(hwbp_core::HardwareError::UnknownPart {
                    id: 0x1030_0B00
                })),
                "PRR {prr:#x}"
            );
        }
    }

    #[test]
    fn the_family_byte_must_agree_with_the_part() {
        // PVR bits 31:24 are the family Linux's probe tests (0x10: SH-4A).
        // An SH-4 part number under the SH-4A family byte, and SH-4A part
        // numbers under any other, name no part in the table.
        for (pvr, prr) in [
            (0x1002_0500u32, 0u32), // SH7750's number, SH-4A family
            (0x1011_0000, 0),       // SH7751's
            (0x1005_0000, 0x110),   // SH7751R's
            (0x0020_0600, 0),       // SH7780's number, SH-4 family
            (0x0430_0700, 0),       // SH7785's
            (0xFF30_0B00, 0x200),   // SH7724's
            (0x1120_0A00, 0x610),   // SH7781's, family 0x11
        ] {
            assert_eq!(
                identify(pvr, prr),
                Err(Error::Hardware(hwbp_core::HardwareError::UnknownPart {
                    id: pvr
                })),
                "PVR {pvr:#x}"
            );
        }
        // Linux takes every family byte but 0x10 for SH-4: real SH7750-series
        // parts read 0x04 there, QEMU's models 0x00.
        assert_eq!(identify(0x0402_0500, 0).unwrap().part, Part::Sh7750);
        assert_eq!(identify(0xF111_0000, 0).unwrap().part, Part::Sh7751);
        assert_eq!(identify(0x0405_0000, 0x110).unwrap().part, Part::Sh7751R);
    }

    #[test]
    fn variant_limits() {
        assert_eq!(Variant::sh4a(Part::Other, 0), None);
        assert_eq!(Variant::sh4a(Part::Other, 17), None);
        assert_eq!(
            Variant::sh4a(Part::Other, 16).unwrap().channel_mask(),
            0xFFFF
        );
        assert!(Variant::sh4(Part::Sh7750).supports_low_mask(10));
        assert!(!Variant::sh4(Part::Sh7750).supports_low_mask(3));
    }
}
