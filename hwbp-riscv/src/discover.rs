//! Run-time discovery of the triggers and what each can do.
//!
//! The walk is the enumeration of the Debug Specification 1.0 (Sdtrig,
//! "Enumeration"): write `n` to `tselect` and read it back (a hart with
//! `2^k` triggers may implement only `k` bits, so a different value ends the
//! walk; a trap on `tselect` 0 means no trigger module), read `tinfo` (its
//! `info` bit `t` set: type `t` is supported; `info` = 1: no trigger at this
//! index), and where `tinfo` traps, read `tdata1.type` instead (0: no
//! trigger).
//!
//! Then each address/data match trigger is probed by WARL read-back, only
//! ever writing its own advertised type (`mcontrol6` where advertised, else
//! `mcontrol`; without `tinfo`, only the type `tdata1` already holds), and
//! only values that cannot fire (no mode bit, or no access kind):
//!
//! * `execute`/`load`/`store` written together with no mode: which stick;
//! * `m`/`s`/`u` written with no access kind: which modes exist;
//! * `match` = 1 (NAPOT): whether it sticks; then the largest range:
//!   `mcontrol.maskmax`, or for `mcontrol6` the `tdata2` read-back after
//!   writing all ones (bit `maskmax6-1` reads 0, the spec's method);
//! * the hit bits: written 1, read back;
//! * `mcontrol.timing` written 0: a trigger that can only fire *after* the
//!   instruction is not used (the step-over assumes *before*).
//!
//! A trigger that can execute, load and store in at least one mode joins the
//! pool the core schedules onto. Every trigger found is left disabled.

use crate::csr::TriggerCsrs;
use crate::tdata::{bits, maskmax_of, type_of, with_type, MatchType, Modes, Xlen};
use heapless::Vec;
use hwbp_core::{Error, HardwareError, MAX_SLOTS};

/// The most triggers the walk visits (the spec's `tselect` could name more;
/// no implementation has anywhere near this many).
pub const MAX_TRIGGERS: u64 = 64;

/// What one trigger can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TriggerInfo {
    /// Its `tselect` index.
    pub index: u8,
    /// The types it supports (bit `t` = type `t`): `tinfo.info`, or the one
    /// type `tdata1` held when `tinfo` is not implemented.
    pub types: u16,
    /// `tinfo.version`, when `tinfo` exists.
    pub version: Option<u8>,
    /// The match type this crate programs it with, if any.
    pub kind: Option<MatchType>,
    /// Access kinds that stuck: execute, load, store.
    pub execute: bool,
    /// See [`TriggerInfo::execute`].
    pub load: bool,
    /// See [`TriggerInfo::execute`].
    pub store: bool,
    /// Modes that stuck.
    pub modes: Modes,
    /// log2 of the largest NAPOT range (0: `match` = 1 unsupported).
    pub napot_max: u8,
    /// The hit bit(s) are implemented.
    pub hit: bool,
    /// It can fire before the instruction (`timing` 0 sticks).
    pub before: bool,
}

impl TriggerInfo {
    /// Whether the pool can use it.
    pub fn usable(&self) -> bool {
        self.kind.is_some()
            && self.execute
            && self.load
            && self.store
            && !self.modes.is_empty()
            && self.before
    }
}

/// The triggers of one hart.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Triggers {
    /// The hart's XLEN.
    pub xlen: Xlen,
    /// Triggers the walk found (of any type).
    pub total: u8,
    /// The first [`MAX_SLOTS`] triggers found.
    pub found: Vec<TriggerInfo, MAX_SLOTS>,
    /// The pool: `tselect` indices of the usable triggers of the common type,
    /// in order (pool slot `k` is trigger `pool[k]`).
    pub pool: Vec<u8, MAX_SLOTS>,
    /// The type every pool trigger is programmed with.
    pub kind: MatchType,
    /// Modes every pool trigger supports.
    pub modes: Modes,
    /// log2 of the largest NAPOT range every pool trigger supports (0: none).
    pub napot_max: u8,
    /// Every pool trigger has hit bits.
    pub hit: bool,
}

/// The disabled image of a trigger of type `kind`: its own type, every other
/// bit 0 (no mode, no access kind), which can never match. (The spec also
/// guarantees that writing 0 disables, but 0 is a type no trigger
/// advertises; this crate never writes a type that is not advertised.)
pub const fn disabled(xlen: Xlen, kind: MatchType) -> u64 {
    with_type(xlen, kind.code(), 0)
}

/// Probe trigger `n` (already selected) of type `kind`.
///
/// # Safety
/// As [`discover`].
unsafe fn probe<C: TriggerCsrs>(c: &C, kind: MatchType, info: &mut TriggerInfo) {
    let xlen = c.xlen();
    // The values written have `dmode` 0 and `action` 0, and cannot fire
    // (no mode bit, or no access kind).
    // SAFETY: the caller owns the CSRs and has no trigger in use
    // (`discover`'s contract).
    let write1 = |v: u64| unsafe { c.write_tdata1(v) };
    // SAFETY: as above.
    let write2 = |v: u64| unsafe { c.write_tdata2(v) };
    let off = disabled(xlen, kind);
    let t = |rest: u64| with_type(xlen, kind.code(), rest);
    let same_type = |v: u64| type_of(xlen, v) == kind.code();
    write1(off);
    if !same_type(c.read_tdata1()) {
        // The type did not stick: not usable as `kind`.
        info.kind = None;
        return;
    }
    info.kind = Some(kind);
    write2(0);
    // Access kinds with no mode: cannot fire.
    write1(t(bits::EXECUTE | bits::LOAD | bits::STORE));
    let v = c.read_tdata1();
    info.execute = same_type(v) && v & bits::EXECUTE != 0;
    info.load = same_type(v) && v & bits::LOAD != 0;
    info.store = same_type(v) && v & bits::STORE != 0;
    // Modes with no access kind: cannot fire.
    write1(t(Modes::ALL.bits()));
    let v = c.read_tdata1();
    info.modes = if same_type(v) {
        Modes::of(v)
    } else {
        Modes::default()
    };
    // Hit bits.
    write1(t(kind.hit_bits()));
    let v = c.read_tdata1();
    info.hit = same_type(v) && v & kind.hit_bits() != 0;
    // Timing: written 0 with everything else.
    write1(off);
    let v = c.read_tdata1();
    info.before = same_type(v) && v & kind.timing_bit() == 0;
    // NAPOT.
    write1(t(bits::MATCH_NAPOT << bits::MATCH_SHIFT));
    let v = c.read_tdata1();
    let napot = same_type(v) && (v >> bits::MATCH_SHIFT) & bits::MATCH_MASK == bits::MATCH_NAPOT;
    info.napot_max = if !napot {
        0
    } else {
        match kind {
            MatchType::Mcontrol => maskmax_of(xlen, v),
            MatchType::Mcontrol6 => {
                write2(xlen.mask());
                let back = c.read_tdata2() & xlen.mask();
                // Bits above maskmax6-1 keep the written ones; bit
                // maskmax6-1 reads 0.
                let ones = (back << (64 - xlen.bits())).leading_ones();
                let m = xlen.bits().saturating_sub(ones);
                write2(0);
                m.min(63) as u8
            }
        }
    };
    write1(off);
    write2(0);
}

/// Walk and probe the calling hart's triggers. Every trigger found is left
/// disabled, and `tselect` changed.
///
/// Errors: [`HardwareError::NoDebugHardware`] when there is no trigger
/// module (the `tselect` write traps) or no trigger can execute, load and
/// store.
///
/// # Safety
///
/// As the [`TriggerCsrs`] writes, and no trigger of the calling hart is in
/// use: the probing rewrites every one
/// ([`crate::RiscvBackend::probe`] is the backend's way in).
pub unsafe fn discover<C: TriggerCsrs>(c: &C) -> Result<Triggers, Error> {
    let xlen = c.xlen();
    let mut found: Vec<TriggerInfo, MAX_SLOTS> = Vec::new();
    let mut total = 0u8;
    for n in 0..MAX_TRIGGERS {
        // SAFETY: the caller owns the CSRs with no trigger in use.
        match unsafe { c.select(n) } {
            Some(back) if back == n => {}
            _ => break,
        }
        let (types, version) = match c.tinfo() {
            Some(t) => {
                let info = (t & 0xFFFF) as u16;
                if info == 1 || info == 0 {
                    break;
                }
                (info, Some(((t >> 24) & 0xFF) as u8))
            }
            None => {
                let t = type_of(xlen, c.read_tdata1());
                if t == 0 {
                    break;
                }
                (1u16 << t, None)
            }
        };
        total += 1;
        let mut info = TriggerInfo {
            index: n as u8,
            types,
            version,
            kind: None,
            execute: false,
            load: false,
            store: false,
            modes: Modes::default(),
            napot_max: 0,
            hit: false,
            before: false,
        };
        let kind = if types & (1 << MatchType::Mcontrol6.code()) != 0 {
            Some(MatchType::Mcontrol6)
        } else if types & (1 << MatchType::Mcontrol.code()) != 0 {
            Some(MatchType::Mcontrol)
        } else {
            None
        };
        if let Some(kind) = kind {
            // SAFETY: forwarded from the caller; trigger `n` is selected.
            unsafe { probe(c, kind, &mut info) };
        }
        if found.push(info).is_err() {
            // Beyond MAX_SLOTS: counted, not used.
        }
    }
    // The common type: the one most usable triggers are programmed with.
    let count = |k: MatchType| {
        found
            .iter()
            .filter(|i| i.usable() && i.kind == Some(k))
            .count()
    };
    let kind = if count(MatchType::Mcontrol6) >= count(MatchType::Mcontrol)
        && count(MatchType::Mcontrol6) > 0
    {
        MatchType::Mcontrol6
    } else {
        MatchType::Mcontrol
    };
    let mut pool: Vec<u8, MAX_SLOTS> = Vec::new();
    let mut modes = Modes::ALL;
    let mut napot_max = u8::MAX;
    let mut hit = true;
    for i in found.iter().filter(|i| i.usable() && i.kind == Some(kind)) {
        let _ = pool.push(i.index);
        modes = modes.and(i.modes);
        napot_max = napot_max.min(i.napot_max);
        hit &= i.hit;
    }
    if pool.is_empty() || modes.is_empty() {
        return Err(Error::Hardware(HardwareError::NoDebugHardware));
    }
    Ok(Triggers {
        xlen,
        total,
        found,
        pool,
        kind,
        modes,
        napot_max,
        hit,
    })
}
