//! Typed images of the trigger registers, laid out as the RISC-V Debug
//! Specification 1.0 (Sdtrig, `xml/hwbp_registers.xml` of the ratified
//! version) defines them.
//!
//! `tdata1` of every trigger type starts with `type` (bits `XLEN-1:XLEN-4`)
//! and `dmode` (bit `XLEN-5`); the rest depends on the type. This crate
//! writes two types, both address/data match triggers:
//!
//! | bit(s) | `mcontrol` (type 2, [`MatchType::Mcontrol`]) | `mcontrol6` (type 6, [`MatchType::Mcontrol6`]) |
//! |---|---|---|
//! | `XLEN-6:XLEN-11` | `maskmax` (read-only) | 0 |
//! | 26 | — | `uncertain` |
//! | 25 | — | `hit1` |
//! | 24, 23 | — | `vs`, `vu` |
//! | 22:21 | `sizehi` (RV64 only) | 22 `hit0`, 21 `select` |
//! | 20 | `hit` | 0 |
//! | 19 | `select` | 0 |
//! | 18 | `timing` | `size` bit 2 |
//! | 17:16 | `sizelo` | `size` bits 1:0 |
//! | 15:12 | `action` | `action` |
//! | 11 | `chain` | `chain` |
//! | 10:7 | `match` | `match` |
//! | 6 | `m` | `m` |
//! | 5 | 0 | `uncertainen` |
//! | 4, 3 | `s`, `u` | `s`, `u` |
//! | 2, 1, 0 | `execute`, `store`, `load` | `execute`, `store`, `load` |
//!
//! Every field this crate does not use is written 0: `dmode` 0 (the trigger
//! belongs to M-mode software, not to an external debugger), `action` 0
//! (breakpoint exception), `chain` 0, `select` 0 (compare addresses),
//! `timing` 0 (fire before the instruction), `size` 0 (any access size),
//! `vs`/`vu` 0 (no virtualisation modes), `uncertainen` 0.

/// The register width of the hart (`XLEN`), which places `type`, `dmode` and
/// `maskmax` in `tdata1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Xlen {
    /// RV32: 32-bit CSRs and addresses.
    Rv32,
    /// RV64: 64-bit CSRs and addresses.
    Rv64,
}

impl Xlen {
    /// The width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Xlen::Rv32 => 32,
            Xlen::Rv64 => 64,
        }
    }

    /// Every bit of an XLEN-wide register.
    pub const fn mask(self) -> u64 {
        match self {
            Xlen::Rv32 => 0xFFFF_FFFF,
            Xlen::Rv64 => u64::MAX,
        }
    }

    /// The XLEN of the code this crate is compiled for (RV64 on a host).
    pub const fn native() -> Xlen {
        if cfg!(target_arch = "riscv32") {
            Xlen::Rv32
        } else {
            Xlen::Rv64
        }
    }

    const fn type_shift(self) -> u32 {
        self.bits() - 4
    }
}

/// `tdata1.type` values (Debug Specification 1.0, `tdata1`).
pub mod ty {
    /// No trigger at this `tselect`.
    pub const NONE: u8 = 0;
    /// Legacy SiFive address match trigger (never written by this crate).
    pub const LEGACY: u8 = 1;
    /// `mcontrol`: address/data match.
    pub const MCONTROL: u8 = 2;
    /// `icount`: instruction count.
    pub const ICOUNT: u8 = 3;
    /// `itrigger`: interrupt trigger.
    pub const ITRIGGER: u8 = 4;
    /// `etrigger`: exception trigger.
    pub const ETRIGGER: u8 = 5;
    /// `mcontrol6`: address/data match (replaces `mcontrol`).
    pub const MCONTROL6: u8 = 6;
    /// `tmexttrigger`: external trigger.
    pub const TMEXTTRIGGER: u8 = 7;
    /// The trigger exists but is disabled.
    pub const DISABLED: u8 = 15;
}

/// Bits shared by `mcontrol` and `mcontrol6`.
pub mod bits {
    /// Fire on loads.
    pub const LOAD: u64 = 1 << 0;
    /// Fire on stores.
    pub const STORE: u64 = 1 << 1;
    /// Fire on instruction execution.
    pub const EXECUTE: u64 = 1 << 2;
    /// Match in U-mode.
    pub const U: u64 = 1 << 3;
    /// Match in S-mode.
    pub const S: u64 = 1 << 4;
    /// Match in M-mode.
    pub const M: u64 = 1 << 6;
    /// `match` field shift (bits 10:7).
    pub const MATCH_SHIFT: u32 = 7;
    /// `match` field mask (after shifting).
    pub const MATCH_MASK: u64 = 0xF;
    /// `chain` bit.
    pub const CHAIN: u64 = 1 << 11;
    /// `action` field (bits 15:12).
    pub const ACTION: u64 = 0xF << 12;
    /// `mcontrol.sizelo` / `mcontrol6.size` low bits (17:16).
    pub const SIZE_LO: u64 = 0b11 << 16;
    /// `mcontrol.timing` (bit 18).
    pub const MCONTROL_TIMING: u64 = 1 << 18;
    /// `mcontrol6.size` bit 2 (bit 18).
    pub const MCONTROL6_SIZE_HI: u64 = 1 << 18;
    /// `mcontrol.select` (bit 19).
    pub const MCONTROL_SELECT: u64 = 1 << 19;
    /// `mcontrol.hit` (bit 20).
    pub const MCONTROL_HIT: u64 = 1 << 20;
    /// `mcontrol.sizehi` (bits 22:21, RV64 only).
    pub const MCONTROL_SIZEHI: u64 = 0b11 << 21;
    /// `mcontrol6.select` (bit 21).
    pub const MCONTROL6_SELECT: u64 = 1 << 21;
    /// `mcontrol6.hit0` (bit 22).
    pub const MCONTROL6_HIT0: u64 = 1 << 22;
    /// `mcontrol6.vu` (bit 23).
    pub const MCONTROL6_VU: u64 = 1 << 23;
    /// `mcontrol6.vs` (bit 24).
    pub const MCONTROL6_VS: u64 = 1 << 24;
    /// `mcontrol6.hit1` (bit 25).
    pub const MCONTROL6_HIT1: u64 = 1 << 25;
    /// `match` = 0: equal to `tdata2`.
    pub const MATCH_EQUAL: u64 = 0;
    /// `match` = 1: naturally aligned power-of-two range (NAPOT).
    pub const MATCH_NAPOT: u64 = 1;
}

/// `tdata1.type` of a raw `tdata1` value.
pub const fn type_of(xlen: Xlen, tdata1: u64) -> u8 {
    ((tdata1 >> xlen.type_shift()) & 0xF) as u8
}

/// `tdata1.dmode` of a raw `tdata1` value.
pub const fn dmode_of(xlen: Xlen, tdata1: u64) -> bool {
    (tdata1 >> (xlen.bits() - 5)) & 1 != 0
}

/// A `tdata1` value with `type` = `t` and every other bit from `rest`
/// (`rest`'s `type` and `dmode` bits are cleared).
pub const fn with_type(xlen: Xlen, t: u8, rest: u64) -> u64 {
    let ts = xlen.type_shift();
    let keep = (1u64 << (xlen.bits() - 5)) - 1;
    (((t as u64) & 0xF) << ts) | (rest & keep)
}

/// `mcontrol.maskmax` (bits `XLEN-6:XLEN-11`): log2 of the largest NAPOT
/// range a type-2 trigger supports, 0 when `match` = 1 is unsupported.
pub const fn maskmax_of(xlen: Xlen, tdata1: u64) -> u8 {
    ((tdata1 >> (xlen.bits() - 11)) & 0x3F) as u8
}

/// The kind of an address/data match trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MatchType {
    /// `mcontrol` (type 2).
    Mcontrol,
    /// `mcontrol6` (type 6).
    Mcontrol6,
}

impl MatchType {
    /// The `tdata1.type` value.
    pub const fn code(self) -> u8 {
        match self {
            MatchType::Mcontrol => ty::MCONTROL,
            MatchType::Mcontrol6 => ty::MCONTROL6,
        }
    }

    /// The match type of a `tdata1.type` value, if it is one.
    pub const fn from_code(t: u8) -> Option<MatchType> {
        match t {
            ty::MCONTROL => Some(MatchType::Mcontrol),
            ty::MCONTROL6 => Some(MatchType::Mcontrol6),
            _ => None,
        }
    }

    /// The hit bits of this type (`mcontrol.hit`; `mcontrol6.hit0`/`hit1`).
    pub const fn hit_bits(self) -> u64 {
        match self {
            MatchType::Mcontrol => bits::MCONTROL_HIT,
            MatchType::Mcontrol6 => bits::MCONTROL6_HIT0 | bits::MCONTROL6_HIT1,
        }
    }

    /// The size field's bits (`sizelo`/`sizehi`; `size`) in `tdata1`.
    pub const fn size_bits(self, xlen: Xlen) -> u64 {
        match (self, xlen) {
            (MatchType::Mcontrol, Xlen::Rv32) => bits::SIZE_LO,
            (MatchType::Mcontrol, Xlen::Rv64) => bits::SIZE_LO | bits::MCONTROL_SIZEHI,
            (MatchType::Mcontrol6, _) => bits::SIZE_LO | bits::MCONTROL6_SIZE_HI,
        }
    }

    /// The size field of `tdata1` as one number (0 = any size, 1 = 8-bit,
    /// 2 = 16-bit, 3 = 32-bit, 5 = 64-bit, ...).
    pub const fn size_of(self, xlen: Xlen, tdata1: u64) -> u8 {
        let lo = (tdata1 >> 16) & 0b11;
        let hi = match (self, xlen) {
            (MatchType::Mcontrol, Xlen::Rv32) => 0,
            (MatchType::Mcontrol, Xlen::Rv64) => (tdata1 >> 21) & 0b11,
            (MatchType::Mcontrol6, _) => (tdata1 >> 18) & 1,
        };
        (hi << 2 | lo) as u8
    }

    /// `tdata1` with its size field set to `size` (as [`MatchType::size_of`]).
    pub const fn with_size(self, xlen: Xlen, tdata1: u64, size: u8) -> u64 {
        let s = size as u64;
        let cleared = tdata1 & !self.size_bits(xlen);
        let placed = match (self, xlen) {
            (MatchType::Mcontrol, Xlen::Rv32) => (s & 0b11) << 16,
            (MatchType::Mcontrol, Xlen::Rv64) => (s & 0b11) << 16 | ((s >> 2) & 0b11) << 21,
            (MatchType::Mcontrol6, _) => (s & 0b11) << 16 | ((s >> 2) & 1) << 18,
        };
        cleared | placed
    }

    /// The `timing` bit (`mcontrol` only: `mcontrol6` has none in 1.0).
    pub const fn timing_bit(self) -> u64 {
        match self {
            MatchType::Mcontrol => bits::MCONTROL_TIMING,
            MatchType::Mcontrol6 => 0,
        }
    }
}

/// Which privilege modes a trigger matches in (`m`, `s`, `u`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Modes {
    /// M-mode.
    pub m: bool,
    /// S-mode.
    pub s: bool,
    /// U-mode.
    pub u: bool,
}

impl Modes {
    /// All three modes.
    pub const ALL: Modes = Modes {
        m: true,
        s: true,
        u: true,
    };

    /// The `m`/`s`/`u` bits.
    pub const fn bits(self) -> u64 {
        (if self.m { bits::M } else { 0 })
            | (if self.s { bits::S } else { 0 })
            | (if self.u { bits::U } else { 0 })
    }

    /// The modes whose bits are set in `tdata1`.
    pub const fn of(tdata1: u64) -> Modes {
        Modes {
            m: tdata1 & bits::M != 0,
            s: tdata1 & bits::S != 0,
            u: tdata1 & bits::U != 0,
        }
    }

    /// Whether none is set (the trigger can never match).
    pub const fn is_empty(self) -> bool {
        !(self.m || self.s || self.u)
    }

    /// Both sets' modes.
    pub const fn and(self, other: Modes) -> Modes {
        Modes {
            m: self.m && other.m,
            s: self.s && other.s,
            u: self.u && other.u,
        }
    }

    /// Whether `p` is among them.
    pub const fn contains(self, p: Privilege) -> bool {
        match p {
            Privilege::Machine => self.m,
            Privilege::Supervisor => self.s,
            Privilege::User => self.u,
        }
    }
}

/// A privilege mode, as `mstatus.MPP` encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Privilege {
    /// U-mode (`MPP` = 0).
    User,
    /// S-mode (`MPP` = 1).
    Supervisor,
    /// M-mode (`MPP` = 3).
    Machine,
}

impl Privilege {
    /// From `mstatus.MPP` (bits 12:11 of `mstatus`, passed here shifted down);
    /// the reserved value 2 reads as M-mode.
    pub const fn from_mpp(mpp: u64) -> Privilege {
        match mpp & 3 {
            0 => Privilege::User,
            1 => Privilege::Supervisor,
            _ => Privilege::Machine,
        }
    }
}

/// An address/data match trigger as this crate programs it: what fires it,
/// where, and in which modes. Its [`Match::tdata1`] image follows the
/// layout of the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Match {
    /// Type 2 or 6.
    pub kind: MatchType,
    /// Fire on execution of the instruction at the address.
    pub execute: bool,
    /// Fire on loads.
    pub load: bool,
    /// Fire on stores.
    pub store: bool,
    /// The modes it matches in.
    pub modes: Modes,
    /// `match` = 1 (NAPOT) instead of 0 (equal).
    pub napot: bool,
}

impl Match {
    /// The `tdata1` value (hit bits, `size`, `timing`, `select`, `chain`,
    /// `action`, `dmode` all 0).
    pub const fn tdata1(self, xlen: Xlen) -> u64 {
        let rest = (if self.execute { bits::EXECUTE } else { 0 })
            | (if self.load { bits::LOAD } else { 0 })
            | (if self.store { bits::STORE } else { 0 })
            | self.modes.bits()
            | (if self.napot {
                bits::MATCH_NAPOT << bits::MATCH_SHIFT
            } else {
                bits::MATCH_EQUAL << bits::MATCH_SHIFT
            });
        with_type(xlen, self.kind.code(), rest)
    }

    /// Parse a `tdata1` value of type 2 or 6 (other types: `None`). `match`
    /// values other than 0 and 1 read as `None` too: this crate never
    /// writes them.
    pub const fn parse(xlen: Xlen, tdata1: u64) -> Option<Match> {
        let Some(kind) = MatchType::from_code(type_of(xlen, tdata1)) else {
            return None;
        };
        let m = (tdata1 >> bits::MATCH_SHIFT) & bits::MATCH_MASK;
        if m > 1 {
            return None;
        }
        Some(Match {
            kind,
            execute: tdata1 & bits::EXECUTE != 0,
            load: tdata1 & bits::LOAD != 0,
            store: tdata1 & bits::STORE != 0,
            modes: Modes::of(tdata1),
            napot: m == 1,
        })
    }

    /// Whether it can fire at all (some mode and some access kind).
    pub const fn enabled(self) -> bool {
        !self.modes.is_empty() && (self.execute || self.load || self.store)
    }
}

/// The bytes a `tdata2` value selects: `[first, first + len)` (len a power
/// of two; for `match` = 0 the one byte at `tdata2`). `None` for a NAPOT
/// value whose mask would cover the whole address space (`M` = 0, which
/// the specification leaves undefined).
pub const fn napot_range(xlen: Xlen, tdata2: u64) -> Option<(u64, u64)> {
    let v = tdata2 & xlen.mask();
    // Index of the least-significant 0 bit.
    let k = (!v).trailing_zeros();
    if k >= xlen.bits() - 1 {
        return None;
    }
    let len = 1u64 << (k + 1);
    Some((v & !(len - 1), len))
}

/// The `tdata2` value of a NAPOT range of `2^log2` bytes at `base`
/// (`log2` ≥ 1, `base` aligned to it).
pub const fn napot_tdata2(base: u64, log2: u32) -> u64 {
    base | ((1u64 << (log2 - 1)) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_dmode_sit_at_the_top_for_each_xlen() {
        assert_eq!(with_type(Xlen::Rv64, 2, 0), 2 << 60);
        assert_eq!(with_type(Xlen::Rv32, 6, 0), 6 << 28);
        // dmode (XLEN-5) is cleared from `rest`.
        assert_eq!(with_type(Xlen::Rv32, 2, 1 << 27 | 5), 2 << 28 | 5);
        assert_eq!(type_of(Xlen::Rv64, 0x6000_0000_0000_0044), 6);
        assert!(dmode_of(Xlen::Rv64, 1 << 59));
        assert!(dmode_of(Xlen::Rv32, 1 << 27));
        // maskmax: bits XLEN-6:XLEN-11.
        assert_eq!(maskmax_of(Xlen::Rv64, 63 << 53), 63);
        assert_eq!(maskmax_of(Xlen::Rv32, 5 << 21), 5);
    }

    #[test]
    fn match_round_trips_and_places_bits_as_the_spec() {
        let m = Match {
            kind: MatchType::Mcontrol,
            execute: false,
            load: true,
            store: true,
            modes: Modes::ALL,
            napot: true,
        };
        // load 0, store 1, u 3, s 4, m 6, match 10:7 = 1.
        assert_eq!(
            m.tdata1(Xlen::Rv64),
            2 << 60 | 0b11 | 1 << 3 | 1 << 4 | 1 << 6 | 1 << 7
        );
        for xlen in [Xlen::Rv32, Xlen::Rv64] {
            for kind in [MatchType::Mcontrol, MatchType::Mcontrol6] {
                let m = Match { kind, ..m };
                assert_eq!(Match::parse(xlen, m.tdata1(xlen)), Some(m));
            }
        }
        assert_eq!(Match::parse(Xlen::Rv64, 3 << 60), None);
        assert_eq!(Match::parse(Xlen::Rv64, 2 << 60 | 2 << 7), None);
    }

    #[test]
    fn size_fields() {
        let t = with_type(Xlen::Rv64, 2, 0);
        // RV64 mcontrol 64-bit = 5: sizelo 01, sizehi 01.
        let s = MatchType::Mcontrol.with_size(Xlen::Rv64, t, 5);
        assert_eq!(s, t | 1 << 16 | 1 << 21);
        assert_eq!(MatchType::Mcontrol.size_of(Xlen::Rv64, s), 5);
        // RV32 mcontrol has no sizehi.
        assert_eq!(MatchType::Mcontrol.with_size(Xlen::Rv32, 0, 3), 3 << 16);
        // mcontrol6: size bits 18:16.
        assert_eq!(
            MatchType::Mcontrol6.with_size(Xlen::Rv64, 0, 5),
            1 << 16 | 1 << 18
        );
        assert_eq!(
            MatchType::Mcontrol6.size_of(Xlen::Rv64, 1 << 16 | 1 << 18),
            5
        );
    }

    #[test]
    fn napot_encoding_matches_the_spec_formula() {
        // 2 bytes: M = XLEN-1, tdata2 = base.
        assert_eq!(napot_tdata2(0x1000, 1), 0x1000);
        assert_eq!(napot_range(Xlen::Rv64, 0x1000), Some((0x1000, 2)));
        // 8 bytes at 0x1008: low 2 bits ones.
        assert_eq!(napot_tdata2(0x1008, 3), 0x100b);
        assert_eq!(napot_range(Xlen::Rv64, 0x100b), Some((0x1008, 8)));
        assert_eq!(napot_range(Xlen::Rv32, 0x7FFF_FFFF), None);
        assert_eq!(napot_range(Xlen::Rv32, 0x3FFF_FFFF), Some((0, 0x8000_0000)));
    }
}
