//! A software model of the Sdtrig trigger module (Debug Specification 1.0),
//! for host tests: the real backend runs against it through
//! [`TriggerCsrs`], and tests ask it what fires.
//!
//! Modelled, for one hart:
//! * `tselect` with `count` triggers: a write of an index that does not
//!   exist is ignored (reads back the previous index), or, with
//!   `tselect_bits`, only the low bits are kept (the spec's `2^k` case);
//! * `tinfo` (`info` = the configured types, `version` 1) or, when
//!   `tinfo` is off, an illegal instruction (the walk then reads
//!   `tdata1.type`, which holds `reset_type` until written);
//! * `tdata1` WARL for types 2 and 6: `dmode`, `chain`, `action`, `select`,
//!   `timing`, `size`, `vs`/`vu`, `uncertain(en)` read 0 (this model fires
//!   before the instruction, on any access size, with a breakpoint
//!   exception); `m`/`s`/`u` keep only the implemented modes; `match` keeps
//!   0, and 1 where NAPOT is implemented (else reads 0); the hit bits stick
//!   only where implemented; `mcontrol.maskmax` reads the NAPOT limit;
//! * a `tdata1` write of a type the trigger does not advertise (0
//!   included) changes nothing and is *counted* ([`Model::bad_type_writes`]),
//!   so a test can check that the backend never writes one;
//! * `tdata2` for `mcontrol6` NAPOT: all ones in bits `maskmax6-1:0` read
//!   back with bit `maskmax6-1` clear.
//!
//! Matching (`select` = 0): an execute trigger compares the instruction's
//! address, a load/store trigger every byte the access touches (the spec's
//! recommended compare values); `match` = 0 is equality with `tdata2`,
//! `match` = 1 the NAPOT block of `tdata2`; the trigger's mode bit for the
//! current privilege must be set. Execute triggers take priority over data
//! triggers (the privileged spec's exception priority): an instruction
//! whose fetch matches raises the exception before any data trigger is
//! looked at. A firing trigger sets its hit bit (`mcontrol.hit`,
//! `mcontrol6.hit0` = "before") where implemented.

use crate::csr::TriggerCsrs;
use crate::exception::{RiscvException, MCAUSE_BREAKPOINT};
use crate::insn::{DataAccess, Insn};
use crate::tdata::{
    bits, napot_range, type_of, with_type, Match, MatchType, Modes, Privilege, Xlen,
};
use core::cell::Cell;
use hwbp_core::{Access, MAX_SLOTS};

/// The configuration of a modelled hart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    /// XLEN.
    pub xlen: Xlen,
    /// Triggers (at most [`MAX_SLOTS`]).
    pub count: u8,
    /// `tinfo.info`: the types every trigger supports.
    pub types: u16,
    /// `tinfo` is implemented.
    pub tinfo: bool,
    /// `tselect` implements only this many low bits (`None`: writes of a
    /// missing index are ignored).
    pub tselect_bits: Option<u32>,
    /// log2 of the largest NAPOT range (0: `match` = 1 unsupported).
    pub napot_max: u8,
    /// Hit bits implemented.
    pub hit: bool,
    /// Modes implemented.
    pub modes: Modes,
    /// `tdata1.type` at reset.
    pub reset_type: u8,
    /// `mtval` holds the accessed address (else 0, as QEMU).
    pub mtval: bool,
}

impl ModelConfig {
    /// QEMU 7.2's `virt` hart as measured (2 triggers, `tinfo` = `0x44`,
    /// no NAPOT, no hit bits, `mtval` = 0), but following the spec where
    /// QEMU deviates (size, disabling).
    pub const QEMU_LIKE: ModelConfig = ModelConfig {
        xlen: Xlen::Rv64,
        count: 2,
        types: 1 << 2 | 1 << 6,
        tinfo: true,
        tselect_bits: None,
        napot_max: 0,
        hit: false,
        modes: Modes::ALL,
        reset_type: 2,
        mtval: false,
    };

    /// A full-featured hart: 8 triggers of both types plus `icount`, NAPOT
    /// up to 2^12 bytes, hit bits, `mtval` set.
    pub const RICH: ModelConfig = ModelConfig {
        xlen: Xlen::Rv64,
        count: 8,
        types: 1 << 2 | 1 << 3 | 1 << 6 | 1 << 15,
        tinfo: true,
        tselect_bits: Some(3),
        napot_max: 12,
        hit: true,
        modes: Modes::ALL,
        reset_type: 15,
        mtval: true,
    };
}

/// One modelled hart's trigger module.
#[derive(Debug)]
pub struct Model {
    cfg: ModelConfig,
    tselect: Cell<u8>,
    tdata1: [Cell<u64>; MAX_SLOTS],
    tdata2: [Cell<u64>; MAX_SLOTS],
    bad_type_writes: Cell<u32>,
    writes: Cell<u32>,
}

impl Model {
    /// A hart in its reset state.
    pub fn new(cfg: ModelConfig) -> Self {
        let cfg = ModelConfig {
            count: cfg.count.min(MAX_SLOTS as u8),
            ..cfg
        };
        let reset = with_type(cfg.xlen, cfg.reset_type, 0);
        Model {
            cfg,
            tselect: Cell::new(0),
            tdata1: core::array::from_fn(|_| Cell::new(reset)),
            tdata2: core::array::from_fn(|_| Cell::new(0)),
            bad_type_writes: Cell::new(0),
            writes: Cell::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> ModelConfig {
        self.cfg
    }

    /// `tdata1` writes of a type the trigger does not advertise.
    pub fn bad_type_writes(&self) -> u32 {
        self.bad_type_writes.get()
    }

    /// `tdata1`/`tdata2` writes so far.
    pub fn writes(&self) -> u32 {
        self.writes.get()
    }

    /// Trigger `n`'s (`tdata1`, `tdata2`), read without selecting it.
    pub fn trigger(&self, n: usize) -> (u64, u64) {
        (
            self.tdata1.get(n).map_or(0, Cell::get),
            self.tdata2.get(n).map_or(0, Cell::get),
        )
    }

    /// [`TriggerCsrs::select`], safe: the model is no hardware.
    pub fn select(&self, n: u64) -> Option<u64> {
        if self.cfg.count == 0 {
            return None;
        }
        match self.cfg.tselect_bits {
            Some(b) => {
                let kept = n & ((1u64 << b) - 1);
                if kept < u64::from(self.cfg.count) {
                    self.tselect.set(kept as u8);
                }
            }
            None => {
                if n < u64::from(self.cfg.count) {
                    self.tselect.set(n as u8);
                }
            }
        }
        Some(u64::from(self.tselect.get()))
    }

    /// [`TriggerCsrs::write_tdata1`], safe: the model is no hardware.
    pub fn write_tdata1(&self, value: u64) {
        self.writes.set(self.writes.get() + 1);
        match self.legal(value & self.cfg.xlen.mask()) {
            Some(v) => self.tdata1[self.cur()].set(v),
            None => self.bad_type_writes.set(self.bad_type_writes.get() + 1),
        }
    }

    /// [`TriggerCsrs::write_tdata2`], safe: the model is no hardware.
    pub fn write_tdata2(&self, value: u64) {
        self.writes.set(self.writes.get() + 1);
        let xlen = self.cfg.xlen;
        let mut v = value & xlen.mask();
        let t1 = self.tdata1[self.cur()].get();
        let napot6 = type_of(xlen, t1) == MatchType::Mcontrol6.code()
            && (t1 >> bits::MATCH_SHIFT) & bits::MATCH_MASK == bits::MATCH_NAPOT;
        let k = u32::from(self.cfg.napot_max);
        if napot6 && k > 0 && k < 64 {
            let low = (1u64 << k) - 1;
            if v & low == low {
                v &= !(1u64 << (k - 1));
            }
        }
        self.tdata2[self.cur()].set(v);
    }

    fn cur(&self) -> usize {
        usize::from(self.tselect.get())
    }

    fn legal(&self, v: u64) -> Option<u64> {
        let xlen = self.cfg.xlen;
        let t = type_of(xlen, v);
        if self.cfg.types & (1 << t) == 0 {
            return None;
        }
        let Some(kind) = MatchType::from_code(t) else {
            // Another advertised type (icount, disabled...): kept as the
            // type alone.
            return Some(with_type(xlen, t, 0));
        };
        let mut keep = bits::EXECUTE | bits::LOAD | bits::STORE;
        keep |= self.cfg.modes.bits();
        if self.cfg.hit {
            keep |= kind.hit_bits();
        }
        let mut out = with_type(xlen, t, v & keep);
        let m = (v >> bits::MATCH_SHIFT) & bits::MATCH_MASK;
        if m == bits::MATCH_NAPOT && self.cfg.napot_max > 0 {
            out |= bits::MATCH_NAPOT << bits::MATCH_SHIFT;
        }
        if kind == MatchType::Mcontrol {
            out |= u64::from(self.cfg.napot_max & 0x3F) << (xlen.bits() - 11);
        }
        Some(out)
    }

    /// The triggers that fire for the fetch of the instruction at `pc` in
    /// mode `p` (bit `n` = trigger `n`).
    pub fn fetch_matches(&self, pc: u64, p: Privilege) -> u32 {
        self.matching(p, |m, range| m.execute && in_range(range, pc, 1))
    }

    /// The triggers that fire for a data access in mode `p`.
    pub fn access_matches(&self, a: &DataAccess, p: Privilege) -> u32 {
        self.matching(p, |m, range| {
            let kind = (m.load && a.access.contains(Access::READ))
                || (m.store && a.access.contains(Access::WRITE));
            kind && in_range(range, a.addr, a.size)
        })
    }

    fn matching(&self, p: Privilege, f: impl Fn(&Match, (u64, u64)) -> bool) -> u32 {
        let mut mask = 0;
        for n in 0..usize::from(self.cfg.count) {
            let (t1, t2) = self.trigger(n);
            let Some(m) = Match::parse(self.cfg.xlen, t1) else {
                continue;
            };
            if !m.modes.contains(p) {
                continue;
            }
            let range = if m.napot {
                match napot_range(self.cfg.xlen, t2) {
                    Some(r) => r,
                    None => continue,
                }
            } else {
                (t2 & self.cfg.xlen.mask(), 1)
            };
            if f(&m, range) {
                mask |= 1 << n;
            }
        }
        mask
    }

    fn set_hits(&self, mask: u32) {
        if !self.cfg.hit {
            return;
        }
        for n in (0..usize::from(self.cfg.count)).filter(|n| mask & (1 << n) != 0) {
            let t1 = self.tdata1[n].get();
            if let Some(kind) = MatchType::from_code(type_of(self.cfg.xlen, t1)) {
                let hit = match kind {
                    MatchType::Mcontrol => bits::MCONTROL_HIT,
                    // hit1:hit0 = 0b01, "before".
                    MatchType::Mcontrol6 => bits::MCONTROL6_HIT0,
                };
                self.tdata1[n].set(t1 | hit);
            }
        }
    }

    /// Run the instruction `insn` at `pc` in mode `p` with registers `x` up
    /// to the point where a trigger fires: the breakpoint exception the hart
    /// would take (before the instruction), or `None` when it retires
    /// without one. Execute triggers are checked first.
    pub fn step(&self, pc: u64, insn: u32, x: &[u64; 32], p: Privilege) -> Option<RiscvException> {
        let xlen = self.cfg.xlen;
        let exc = |mtval: u64| RiscvException {
            mcause: MCAUSE_BREAKPOINT,
            mepc: pc,
            mtval,
            prev: p,
            insn,
            x: *x,
        };
        let fetch = self.fetch_matches(pc, p);
        if fetch != 0 {
            self.set_hits(fetch);
            return Some(exc(if self.cfg.mtval { pc } else { 0 }));
        }
        let a = Insn::decode(insn, xlen).data_access(x, xlen)?;
        let data = self.access_matches(&a, p);
        if data != 0 {
            self.set_hits(data);
            return Some(exc(if self.cfg.mtval { a.addr } else { 0 }));
        }
        None
    }
}

fn in_range((first, len): (u64, u64), addr: u64, size: u64) -> bool {
    let end = u128::from(first) + u128::from(len);
    let a_end = u128::from(addr) + u128::from(size);
    u128::from(addr) < end && u128::from(first) < a_end
}

impl TriggerCsrs for Model {
    fn xlen(&self) -> Xlen {
        self.cfg.xlen
    }

    unsafe fn select(&self, n: u64) -> Option<u64> {
        Model::select(self, n)
    }

    fn tinfo(&self) -> Option<u64> {
        self.cfg
            .tinfo
            .then_some(1 << 24 | u64::from(self.cfg.types))
    }

    fn read_tdata1(&self) -> u64 {
        self.tdata1[self.cur()].get()
    }

    unsafe fn write_tdata1(&self, value: u64) {
        Model::write_tdata1(self, value)
    }

    fn read_tdata2(&self) -> u64 {
        self.tdata2[self.cur()].get()
    }

    unsafe fn write_tdata2(&self, value: u64) {
        Model::write_tdata2(self, value)
    }
}
