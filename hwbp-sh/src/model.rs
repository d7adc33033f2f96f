//! Host verification: an in-memory UBC register file and a behavioural model
//! of the UBC's matching.
//!
//! No Rust compiler target exists for SuperH, so the backend is verified by
//! running it against [`Model`] (which implements [`UbcBus`] with the
//! registers' real addresses, widths, implemented bits and write-0-to-clear
//! flags) and asking [`Model::cycle`] what the hardware would do for a
//! bus cycle given the register contents: which channels match, which flags
//! get set, whether a break is requested and what SPC would be.
//!
//! The model follows the SH7750 hardware manual §20.3 and the SH7780/SH7785
//! UBC operation sections: ID/RW/SZ/address/mask/ASID conditions, address
//! bits below the operand size not compared (§20.3.5), instruction fetches
//! compared as word accesses, PC break before (SPC = instruction) or after
//! (SPC = next instruction) execution, operand breaks after the access (SPC
//! = next instruction). Not modelled: data-value conditions (BDRB, CDR1),
//! sequential conditions (SEQ, MFE), execution-count breaks, SR.BL masking.
//!
//! [`Model::set_module_stopped`] models a UBC whose module clock is
//! stopped (its MSTP bit set): its registers read 0, ignore writes and match
//! nothing; PVR and PRR are unaffected.

use core::cell::{Cell, RefCell};

use crate::bus::UbcBus;
use crate::slot::OperandSize;
use crate::variant::{Layout, Variant, PRR, PVR};
use crate::{sh4, sh4a};
use heapless::Vec;

/// How a register reacts to writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Writable bits replace the value.
    Plain,
    /// Bits in the mask are flags: a written 0 clears, a written 1 keeps.
    Flags(u32),
    /// Writes are ignored.
    ReadOnly,
}

#[derive(Debug)]
struct Reg {
    addr: u32,
    width: u8,
    writable: u32,
    kind: Kind,
    value: Cell<u32>,
}

/// The UBC registers of one part, in memory.
///
/// Unimplemented addresses read 0 and ignore writes; accesses with the wrong
/// width are counted in [`Model::width_errors`] so tests can assert
/// the backend never makes one.
#[derive(Debug)]
pub struct Model {
    variant: Variant,
    regs: Vec<Reg, 80>,
    width_errors: Cell<u32>,
    writes: Cell<u32>,
    log: RefCell<Vec<(u32, u32), LOG_LEN>>,
    stopped: Cell<bool>,
}

/// Register writes kept in the write log (older writes are dropped).
pub const LOG_LEN: usize = 256;

/// A bus cycle presented to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BusCycle {
    /// Fetch and execute the instruction at `pc`.
    Fetch {
        /// Instruction address.
        pc: u32,
    },
    /// An operand read of `size` bytes at `addr` by the instruction at `pc`.
    Read {
        /// Accessing instruction.
        pc: u32,
        /// Operand address (aligned to `size`, as SuperH requires).
        addr: u32,
        /// 1, 2, 4 or 8.
        size: u8,
    },
    /// An operand write.
    Write {
        /// Accessing instruction.
        pc: u32,
        /// Operand address.
        addr: u32,
        /// 1, 2, 4 or 8.
        size: u8,
    },
}

/// What the UBC did for one bus cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outcome {
    /// Channels whose condition matched (their flags are now set).
    pub matched: u32,
    /// Whether a user break exception is requested.
    pub brk: bool,
    /// SPC the exception would save.
    pub spc: u32,
}

impl Model {
    /// The registers of `variant` at their reset values, with the given PVR
    /// and PRR contents (0 for a part without them).
    pub fn new(variant: Variant, pvr: u32, prr: u32) -> Self {
        let mut f = Model {
            variant,
            regs: Vec::new(),
            width_errors: Cell::new(0),
            writes: Cell::new(0),
            log: RefCell::new(Vec::new()),
            stopped: Cell::new(false),
        };
        f.add(PVR, 4, 0, Kind::ReadOnly, pvr);
        f.add(PRR, 4, 0, Kind::ReadOnly, prr);
        match variant.layout {
            Layout::Sh4a => {
                for n in 0..variant.channels.min(16) {
                    f.add(sh4a::cbr(n), 4, sh4a::Cbr::IMPLEMENTED, Kind::Plain, 0);
                    // CRR: BIE, PCB; bit 13 reads as 1.
                    f.add(
                        sh4a::crr(n),
                        4,
                        0b11,
                        Kind::Plain,
                        sh4a::Crr::RESERVED_ONE.bits(),
                    );
                    f.add(sh4a::car(n), 4, u32::MAX, Kind::Plain, 0);
                    f.add(sh4a::camr(n), 4, u32::MAX, Kind::Plain, 0);
                }
                f.add(
                    sh4a::CCMFR,
                    4,
                    variant.channel_mask(),
                    Kind::Flags(variant.channel_mask()),
                    0,
                );
                f.add(sh4a::CBCR, 4, 1, Kind::Plain, 0);
            }
            Layout::Sh4 => {
                for ch in [sh4::Channel::A, sh4::Channel::B] {
                    f.add(ch.bar(), 4, u32::MAX, Kind::Plain, 0);
                    f.add(ch.bamr(), 1, 0x0F, Kind::Plain, 0);
                    f.add(
                        ch.bbr(),
                        2,
                        u32::from(sh4::Bbr::IMPLEMENTED),
                        Kind::Plain,
                        0,
                    );
                    f.add(ch.basr(), 1, 0xFF, Kind::Plain, 0);
                }
                f.add(sh4::BDRB, 4, u32::MAX, Kind::Plain, 0);
                f.add(sh4::BDMRB, 4, u32::MAX, Kind::Plain, 0);
                let flags = u32::from((sh4::Brcr::CMFA | sh4::Brcr::CMFB).bits());
                let ctrl = u32::from(
                    (sh4::Brcr::PCBA
                        | sh4::Brcr::DBEB
                        | sh4::Brcr::PCBB
                        | sh4::Brcr::SEQ
                        | sh4::Brcr::UBDE)
                        .bits(),
                );
                f.add(sh4::BRCR, 2, flags | ctrl, Kind::Flags(flags), 0);
            }
        }
        f
    }

    fn add(&mut self, addr: u32, width: u8, writable: u32, kind: Kind, value: u32) {
        // Capacity: 2 + 16 * 4 + 2 = 68 entries at most.
        let _ = self.regs.push(Reg {
            addr,
            width,
            writable,
            kind,
            value: Cell::new(value),
        });
    }

    fn reg(&self, addr: u32) -> Option<&Reg> {
        self.regs.iter().find(|r| r.addr == addr)
    }

    /// Stop (`true`) or start the UBC's module clock. While stopped, UBC
    /// registers read 0 through the bus and ignore writes (which are neither
    /// counted nor logged), and [`Model::cycle`] matches nothing; the
    /// register contents are kept for when the clock runs again. PVR and PRR
    /// (CCN registers) are unaffected.
    pub fn set_module_stopped(&self, stopped: bool) {
        self.stopped.set(stopped);
    }

    /// Whether the UBC's module clock is stopped.
    pub fn module_stopped(&self) -> bool {
        self.stopped.get()
    }

    /// Whether bus accesses to `addr` are cut off by the module stop.
    fn cut_off(&self, addr: u32) -> bool {
        self.stopped.get() && addr != PVR && addr != PRR
    }

    /// The variant laid out.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Accesses made with the wrong width so far.
    pub fn width_errors(&self) -> u32 {
        self.width_errors.get()
    }

    /// Register writes so far (to implemented registers).
    pub fn writes(&self) -> u32 {
        self.writes.get()
    }

    /// The last [`LOG_LEN`] writes as `(address, value written)`, oldest
    /// first.
    pub fn write_log(&self) -> Vec<(u32, u32), LOG_LEN> {
        self.log.try_borrow().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forget the write log.
    pub fn clear_log(&self) {
        if let Ok(mut l) = self.log.try_borrow_mut() {
            l.clear();
        }
    }

    /// Current value of the register at `addr` (0 if not implemented).
    pub fn peek(&self, addr: u32) -> u32 {
        self.reg(addr).map_or(0, |r| r.value.get())
    }

    /// Set a register directly, as the hardware or a test would.
    pub fn poke(&self, addr: u32, value: u32) {
        if let Some(r) = self.reg(addr) {
            r.value.set(value);
        }
    }

    fn read(&self, addr: u32, width: u8) -> u32 {
        if self.cut_off(addr) {
            return 0;
        }
        match self.reg(addr) {
            Some(r) => {
                if r.width != width {
                    self.width_errors
                        .set(self.width_errors.get().wrapping_add(1));
                }
                r.value.get()
            }
            None => 0,
        }
    }

    fn write(&self, addr: u32, width: u8, v: u32) {
        if self.cut_off(addr) {
            return;
        }
        let Some(r) = self.reg(addr) else { return };
        if r.width != width {
            self.width_errors
                .set(self.width_errors.get().wrapping_add(1));
        }
        self.writes.set(self.writes.get().wrapping_add(1));
        if let Ok(mut log) = self.log.try_borrow_mut() {
            if log.is_full() {
                log.remove(0);
            }
            let _ = log.push((addr, v));
        }
        let old = r.value.get();
        let new = match r.kind {
            Kind::ReadOnly => old,
            Kind::Plain => (old & !r.writable) | (v & r.writable),
            Kind::Flags(flags) => {
                let ctrl = r.writable & !flags;
                (old & !ctrl & !flags) | (v & ctrl) | (old & flags & v)
            }
        };
        r.value.set(new);
    }

    /// Present one bus cycle with `asid` current: evaluate every channel, set
    /// the match flags of those that match and say whether a break follows.
    pub fn cycle(&self, cycle: BusCycle, asid: u8) -> Outcome {
        let mut out = Outcome::default();
        if self.stopped.get() {
            return out;
        }
        let mut before = false;
        for n in 0..self.variant.channels.min(16) {
            let Some(ch) = self.channel(n) else { continue };
            if !ch.matches(cycle, asid) {
                continue;
            }
            out.matched |= 1 << n;
            if ch.break_enable {
                out.brk = true;
                if matches!(cycle, BusCycle::Fetch { .. }) && !ch.after {
                    before = true;
                }
            }
        }
        if out.matched != 0 {
            self.raise_flags(out.matched);
        }
        let pc = match cycle {
            BusCycle::Fetch { pc } | BusCycle::Read { pc, .. } | BusCycle::Write { pc, .. } => pc,
        };
        // A before-execution break wins: the instruction does not run.
        out.spc = if before { pc } else { pc.wrapping_add(2) };
        out
    }

    /// Set the match flags of the channels in `mask` (bit n = channel n;
    /// channels the part lacks are ignored), as the hardware does on a match.
    pub fn raise_flags(&self, mask: u32) {
        match self.variant.layout {
            Layout::Sh4a => self.poke(
                sh4a::CCMFR,
                self.peek(sh4a::CCMFR) | mask & self.variant.channel_mask(),
            ),
            Layout::Sh4 => {
                let mut b = self.peek(sh4::BRCR);
                if mask & 1 != 0 {
                    b |= u32::from(sh4::Brcr::CMFA.bits());
                }
                if mask & 2 != 0 {
                    b |= u32::from(sh4::Brcr::CMFB.bits());
                }
                self.poke(sh4::BRCR, b);
            }
        }
    }

    /// The matching condition of channel `n`, decoded from the registers.
    fn channel(&self, n: u8) -> Option<Cond> {
        match self.variant.layout {
            Layout::Sh4a => {
                let cbr = sh4a::Cbr(self.peek(sh4a::cbr(n)));
                let crr = sh4a::Crr::from_bits_retain(self.peek(sh4a::crr(n)));
                if !cbr.enabled() {
                    return None;
                }
                let (fetch, operand) = match cbr.id() {
                    sh4a::IdSelect::Fetch => (true, false),
                    sh4a::IdSelect::Operand => (false, true),
                    sh4a::IdSelect::Either => (true, true),
                };
                let (read, write) = match cbr.rw() {
                    sh4a::RwSelect::Read => (true, false),
                    sh4a::RwSelect::Write => (false, true),
                    sh4a::RwSelect::Either => (true, true),
                };
                Some(Cond {
                    fetch,
                    operand,
                    read,
                    write,
                    // A reserved size matches nothing.
                    size: cbr.size().map_or(Size::Never, Size::from),
                    addr: self.peek(sh4a::car(n)),
                    ignored: self.peek(sh4a::camr(n)),
                    asid: cbr.asid(),
                    after: crr.contains(sh4a::Crr::PCB),
                    break_enable: crr.contains(sh4a::Crr::BIE),
                })
            }
            Layout::Sh4 => {
                let ch = sh4::Channel::from_index(n)?;
                let bbr = sh4::Bbr(self.peek(ch.bbr()) as u16);
                let bamr = sh4::Bamr(self.peek(ch.bamr()) as u8);
                let brcr = sh4::Brcr::from_bits_retain(self.peek(sh4::BRCR) as u16);
                let (fetch, operand) = match bbr.id() {
                    sh4::BbrId::Off => return None,
                    sh4::BbrId::Fetch => (true, false),
                    sh4::BbrId::Operand => (false, true),
                    sh4::BbrId::Either => (true, true),
                };
                let (read, write) = match bbr.rw() {
                    sh4::BbrRw::Off => return None,
                    sh4::BbrRw::Read => (true, false),
                    sh4::BbrRw::Write => (false, true),
                    sh4::BbrRw::Either => (true, true),
                };
                Some(Cond {
                    fetch,
                    operand,
                    read,
                    write,
                    size: bbr.size().map_or(Size::Never, Size::from),
                    addr: self.peek(ch.bar()),
                    // Reserved BAM values: treat as "compare everything".
                    ignored: bamr.mask().map_or(0, |m| m.ignored()),
                    asid: if bamr.asid_compared() {
                        Some(self.peek(ch.basr()) as u8)
                    } else {
                        None
                    },
                    after: brcr.contains(ch.pcb()),
                    break_enable: true,
                })
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Size {
    Any,
    Bytes(u32),
    Never,
}

impl From<OperandSize> for Size {
    fn from(s: OperandSize) -> Self {
        match s.bytes() {
            None => Size::Any,
            Some(b) => Size::Bytes(b),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cond {
    fetch: bool,
    operand: bool,
    read: bool,
    write: bool,
    size: Size,
    addr: u32,
    ignored: u32,
    asid: Option<u8>,
    after: bool,
    break_enable: bool,
}

impl Cond {
    fn matches(&self, cycle: BusCycle, asid: u8) -> bool {
        let (is_fetch, is_write, addr, size) = match cycle {
            // Instruction fetches are word accesses.
            BusCycle::Fetch { pc } => (true, false, pc, 2u32),
            BusCycle::Read { addr, size, .. } => (false, false, addr, u32::from(size)),
            BusCycle::Write { addr, size, .. } => (false, true, addr, u32::from(size)),
        };
        if is_fetch && !self.fetch || !is_fetch && !self.operand {
            return false;
        }
        // Instruction fetches are reads.
        if is_write && !self.write || !is_write && !self.read {
            return false;
        }
        // With a size condition only accesses of that size match, and the
        // address is compared from bit log2(size) up; without one, from bit
        // log2(access size) up (SH7750 manual §20.3.5, table in item 1).
        let unit = match self.size {
            Size::Never => return false,
            Size::Bytes(b) if is_fetch => {
                if b != 2 {
                    return false;
                }
                b
            }
            Size::Bytes(b) => {
                if b != size {
                    return false;
                }
                b
            }
            Size::Any => size,
        };
        let low = unit.max(1).wrapping_sub(1);
        let compared = !(self.ignored | low);
        if (addr ^ self.addr) & compared != 0 {
            return false;
        }
        match self.asid {
            Some(a) => a == asid,
            None => true,
        }
    }
}

impl UbcBus for Model {
    unsafe fn read8(&self, addr: u32) -> u8 {
        self.read(addr, 1) as u8
    }
    unsafe fn read16(&self, addr: u32) -> u16 {
        self.read(addr, 2) as u16
    }
    unsafe fn read32(&self, addr: u32) -> u32 {
        self.read(addr, 4)
    }
    unsafe fn write8(&self, addr: u32, value: u8) {
        self.write(addr, 1, u32::from(value));
    }
    unsafe fn write16(&self, addr: u32, value: u16) {
        self.write(addr, 2, u32::from(value));
    }
    unsafe fn write32(&self, addr: u32, value: u32) {
        self.write(addr, 4, value);
    }
}
