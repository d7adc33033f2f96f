//! [`ShBackend`]: the memory-mapped UBC backend, [`hwbp_core::Arch`] for
//! SH-4 and SH-4A.

use core::sync::atomic::{AtomicU32, Ordering};

use hwbp_core::atomic::AtomicU64;

use crate::bus::UbcBus;
use crate::decode;
use crate::encode::{Encoder, RangePolicy, SizePolicy};
use crate::exception::ShException;
use crate::slot::{BreakTiming, UbcSlot};
use crate::variant::{self, Layout, Part, Variant, USER_BREAK_EXPEVT};
use crate::{sh4, sh4a};
use hwbp_core::{
    AddressSpace, Arch, BreakpointAttr, Decoded, Encoding, Error, Fired, HardwareError, Image,
    Resume, SlotCounts, MAX_SLOTS,
};

/// The UBC of one SuperH part, driven through a [`UbcBus`].
///
/// Constructing one is `unsafe` (and `const`, so it can live in a `static`):
/// the value is the owner token of the UBC, and everything after construction
/// is safe because only the owner writes the registers.
/// [`ShBackend::new`] leaves the part to [`Arch::discover`] (which
/// `Manager::init` calls: PVR/PRR, else a probe); [`ShBackend::with_variant`]
/// names it, and discovery then only checks that the UBC takes writes.
/// Before discovery the backend has no channel and decodes nothing as its
/// own. The per-CPU step-over state is a [`ShCpuState`], kept by the manager
/// (one per CPU).
///
/// # Module clock
///
/// A module-stopped UBC ignores every write, so no breakpoint would ever
/// fire. The embedder must clear the UBC's module-stop bit (the `ubc0`
/// clock Linux enables; an MSTP bit of the part's standby control register)
/// before [`Arch::discover`] or [`Arch::init_cpu`]; both check that a
/// pattern written to CAR0 (SH-4A) / BARA (SH-4) reads back and return
/// [`HardwareError::NoDebugHardware`] if not ([`variant::check_writable`]).
///
/// # Instruction breaks before execution
///
/// A before-execution break returns to the instruction itself, which would
/// break again at once. The backend steps over it with the UBC itself: the
/// fired channel is switched to break *after* execution and the PC of the
/// break (SPC, the instruction) is recorded for the CPU; the instruction
/// runs, and the channel is switched back to before-execution at its next
/// break.
///
/// For a channel that matches a single instruction, that next break is the
/// end of the step (reported as [`Fired::None`], [`Resume::RETURN`]) whatever
/// the SPC: only the stepped instruction can raise it, and the SPC of an
/// after-execution break is wherever the CPU goes next (the following
/// instruction, a branch target, or for an instruction in a delay slot the
/// branch's destination). For a channel that matches a range of addresses
/// the next break is the end of the step only if its SPC is two past the
/// recorded PC, i.e. the stepped instruction ran and fell through. With any other
/// SPC it is reported as a real hit of the channel (after execution, so no
/// new step is needed): either the step was abandoned (the handler changed
/// the PC, the task was killed) and another instruction in the range ran,
/// or the stepped instruction branched; so a range breakpoint on a taken
/// branch or a delay slot counts twice, and no hit the PC can show is lost.
/// An abandoned step cannot be told from a completed one when the next
/// execution the channel matches is the stepped instruction itself: that
/// one hit is taken as the end of the step. A new before-execution
/// break at a different PC abandons any step still pending on the CPU (its
/// channels go back to before-execution).
///
/// # Exception sequence
///
/// [`Arch::decode`] disables every channel, reads and clears the match flags,
/// re-enables the channels that were enabled (the hardware does not accept a
/// user break while SR.BL = 1, which holds until the handler's RTE), and
/// reports only flags of channels that were enabled: flags of disabled or
/// missing channels are stray.
pub struct ShBackend<B: UbcBus> {
    bus: B,
    /// The discovered (or named) variant, packed ([`pack`]); 0 before.
    variant: AtomicU64,
    size: SizePolicy,
    range: RangePolicy,
    timing: BreakTiming,
    /// Report operand breaks with a known data address as
    /// `Fired::ByAddress`, so the core filters hits outside the region.
    by_address: bool,
}

/// The SuperH backend's state for one CPU ([`Arch::CpuState`]): the
/// step-over of a before-execution instruction break. Touched only by its
/// own CPU; the manager keeps one per CPU.
#[derive(Debug, Default)]
pub struct ShCpuState {
    /// Channels currently switched to after-execution for a step-over.
    stepping: AtomicU32,
    /// The PC of the instruction being stepped over (meaningful while
    /// `stepping` is not 0).
    step_pc: AtomicU32,
}

impl ShCpuState {
    /// A CPU with no step-over pending.
    pub const fn new() -> Self {
        ShCpuState {
            stepping: AtomicU32::new(0),
            step_pc: AtomicU32::new(0),
        }
    }

    /// The channels switched to after-execution for a pending step-over
    /// (bit n = channel n).
    pub fn stepping(&self) -> u32 {
        self.stepping.load(Ordering::Relaxed)
    }
}

const PARTS: [Part; 11] = [
    Part::Sh7750,
    Part::Sh7750S,
    Part::Sh7750R,
    Part::Sh7751,
    Part::Sh7751R,
    Part::Sh7780,
    Part::Sh7781,
    Part::Sh7763,
    Part::Sh7785,
    Part::Sh7724,
    Part::Other,
];

/// A variant in one word, so a `static` backend can learn it at run time
/// without a lock: bit 63 set, part index (bits 40..44), layout (bit 39),
/// channels (bits 32..37), trap code (bits 0..32).
const fn pack(v: Variant) -> u64 {
    let mut part = 0;
    while part < PARTS.len() && PARTS[part] as u8 != v.part as u8 {
        part += 1;
    }
    let layout = match v.layout {
        Layout::Sh4 => 0u64,
        Layout::Sh4a => 1,
    };
    1 << 63 | (part as u64) << 40 | layout << 39 | (v.channels as u64 & 0x1f) << 32 | v.trap as u64
}

fn unpack(w: u64) -> Option<Variant> {
    if w >> 63 == 0 {
        return None;
    }
    Some(Variant {
        part: *PARTS.get(((w >> 40) & 0xf) as usize)?,
        layout: if (w >> 39) & 1 == 0 {
            Layout::Sh4
        } else {
            Layout::Sh4a
        },
        channels: ((w >> 32) & 0x1f) as u8,
        trap: w as u32,
    })
}

/// What the backend reports before discovery: no channel.
const UNKNOWN: Variant = Variant {
    part: Part::Other,
    layout: Layout::Sh4a,
    channels: 0,
    trap: USER_BREAK_EXPEVT,
};

impl<B: UbcBus> ShBackend<B> {
    /// Take ownership of the UBC; [`Arch::discover`] (from `Manager::init`)
    /// identifies the part.
    ///
    /// # Safety
    /// `bus` reaches the UBC (and the CCN identification registers) of an
    /// SH-4/SH-4A part, the caller runs privileged, and nothing else
    /// (another backend, a JTAG debugger using the UBC) writes the UBC
    /// registers while the backend lives.
    pub const unsafe fn new(bus: B) -> Self {
        ShBackend {
            bus,
            variant: AtomicU64::new(0),
            size: SizePolicy::OperandSize,
            range: RangePolicy::Split,
            timing: BreakTiming::Before,
            by_address: false,
        }
    }

    /// Take ownership of the UBC of a known variant (discovery then only
    /// checks that the UBC takes writes).
    ///
    /// # Safety
    /// As [`ShBackend::new`], and `bus` reaches a part with this `variant`.
    pub const unsafe fn with_variant(bus: B, variant: Variant) -> Self {
        ShBackend {
            bus,
            variant: AtomicU64::new(pack(variant)),
            size: SizePolicy::OperandSize,
            range: RangePolicy::Split,
            timing: BreakTiming::Before,
            by_address: false,
        }
    }

    /// Change the encoding policies.
    #[must_use]
    pub const fn with_policies(
        mut self,
        size: SizePolicy,
        range: RangePolicy,
        timing: BreakTiming,
    ) -> Self {
        self.size = size;
        self.range = range;
        self.timing = timing;
        self
    }

    /// When `on`, an operand break whose exception carries the data address
    /// ([`ShException::data_addr`]) is reported as
    /// [`Fired::ByAddress`] instead of [`Fired::Slots`]: the core then
    /// delivers it only to breakpoints whose region contains the address and
    /// counts hits that the hardware matched outside the region (a
    /// [`RangePolicy::Cover`] block, say) as stray. Off by default: the
    /// fired channels are reported exactly, and the core delivers every hit
    /// of a channel to its breakpoint.
    #[must_use]
    pub const fn filter_by_address(mut self, on: bool) -> Self {
        self.by_address = on;
        self
    }

    /// The variant driven (no channel before [`Arch::discover`]).
    pub fn variant(&self) -> Variant {
        unpack(self.variant.load(Ordering::Acquire)).unwrap_or(UNKNOWN)
    }

    /// The encoder for the variant and policies in use.
    pub fn encoder(&self) -> Encoder {
        Encoder::new(self.variant())
            .size_policy(self.size)
            .range_policy(self.range)
            .exec_timing(self.timing)
    }

    /// The register bus.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    fn channels(&self) -> u8 {
        self.variant().channels.min(MAX_SLOTS as u8)
    }

    /// Put the UBC in its known idle state: every channel disabled, match
    /// flags clear, breaks vectored through VBR (UBDE = 0), no sequential
    /// conditions. [`Arch::init_cpu`] does the same and also resets the
    /// CPU's step-over state.
    pub fn reset(&self) {
        match self.variant().layout {
            Layout::Sh4a => {
                // SAFETY: SH-4A UBC registers, 32-bit, owned (constructor contract).
                unsafe {
                    self.bus.write32(sh4a::CBCR, 0);
                    for n in 0..self.channels() {
                        self.bus.write32(sh4a::cbr(n), 0);
                        self.bus.write32(sh4a::camr(n), 0);
                        self.bus.write32(sh4a::car(n), 0);
                        self.bus.write32(
                            sh4a::crr(n),
                            sh4a::Crr::for_timing(BreakTiming::Before).bits(),
                        );
                        // Dummy read so the writes are posted before we go on.
                        let _ = self.bus.read32(sh4a::crr(n));
                    }
                    self.bus.write32(sh4a::CCMFR, 0);
                }
            }
            Layout::Sh4 => {
                // SAFETY: SH-4 UBC registers with their documented widths, owned.
                unsafe {
                    self.bus.write16(sh4::BBRA, 0);
                    self.bus.write16(sh4::BBRB, 0);
                    self.bus.write16(sh4::BRCR, 0);
                    let _ = self.bus.read16(sh4::BRCR);
                }
            }
        }
    }

    /// Read channel `n` back from the hardware (`None` for a missing channel
    /// or settings this crate does not write).
    pub fn read_channel(&self, n: u8) -> Option<UbcSlot> {
        if n >= self.channels() {
            return None;
        }
        match self.variant().layout {
            Layout::Sh4a => {
                // SAFETY: channel `n` exists; SH-4A registers are 32-bit.
                let regs = unsafe {
                    sh4a::ChannelRegs {
                        cbr: sh4a::Cbr(self.bus.read32(sh4a::cbr(n))),
                        crr: self.bus.read32(sh4a::crr(n)),
                        car: self.bus.read32(sh4a::car(n)),
                        camr: self.bus.read32(sh4a::camr(n)),
                    }
                };
                regs.to_slot()
            }
            Layout::Sh4 => {
                let ch = sh4::Channel::from_index(n)?;
                // SAFETY: SH-4 channel registers with their documented widths.
                let regs = unsafe {
                    sh4::ChannelRegs {
                        bar: self.bus.read32(ch.bar()),
                        bamr: sh4::Bamr(self.bus.read8(ch.bamr())),
                        bbr: sh4::Bbr(self.bus.read16(ch.bbr())),
                        basr: self.bus.read8(ch.basr()),
                        pcb_after: sh4::Brcr::from_bits_retain(self.bus.read16(sh4::BRCR))
                            .contains(ch.pcb()),
                    }
                };
                regs.to_slot()
            }
        }
    }

    /// Write channel `n`: disable it, write the condition, enable it last.
    fn write_channel(&self, n: u8, slot: &UbcSlot) {
        match self.variant().layout {
            Layout::Sh4a => {
                let regs = sh4a::ChannelRegs::from_slot(slot);
                // SAFETY: channel `n` exists (callers loop below `channels()`);
                // SH-4A registers are 32-bit; owned.
                unsafe {
                    self.bus.write32(sh4a::cbr(n), 0);
                    self.bus.write32(sh4a::crr(n), regs.crr);
                    self.bus.write32(sh4a::car(n), regs.car);
                    self.bus.write32(sh4a::camr(n), regs.camr);
                    self.bus.write32(sh4a::cbr(n), regs.cbr.0);
                    // The manual asks for CBR to be read back after setting CE
                    // so the condition is in force for the next instruction.
                    let _ = self.bus.read32(sh4a::cbr(n));
                }
            }
            Layout::Sh4 => {
                let Some(ch) = sh4::Channel::from_index(n) else {
                    return;
                };
                // A mask BAMR cannot express never comes from the encoder;
                // leave such a channel disabled rather than watch the wrong range.
                let regs = sh4::ChannelRegs::from_slot(slot).unwrap_or_else(|| {
                    sh4::ChannelRegs::from_slot(&UbcSlot::DISABLED).unwrap_or_default()
                });
                // BBR goes last: the SH-4 manuals ask for every other break
                // register to be set before BBR enables the channel.
                // SAFETY: SH-4 channel registers with their documented widths; owned.
                unsafe {
                    self.bus.write16(ch.bbr(), 0);
                    self.bus.write32(ch.bar(), regs.bar);
                    self.bus.write8(ch.bamr(), regs.bamr.0);
                    self.bus.write8(ch.basr(), regs.basr);
                    self.set_sh4_pcb(ch, regs.pcb_after);
                    self.bus.write16(ch.bbr(), regs.bbr.0);
                    let _ = self.bus.read16(ch.bbr());
                }
            }
        }
    }

    /// Set or clear BRCR.PCBx, writing every other bit back as read (as
    /// Linux's `sh4_ubc_enable` does), so the match flags keep their value.
    ///
    /// # Safety
    /// SH-4 layout only; the UBC is owned.
    unsafe fn set_sh4_pcb(&self, ch: sh4::Channel, after: bool) {
        // SAFETY: BRCR is a 16-bit SH-4 register; the caller owns the UBC.
        unsafe {
            let brcr = self.bus.read16(sh4::BRCR);
            let v = if after {
                brcr | ch.pcb().bits()
            } else {
                brcr & !ch.pcb().bits()
            };
            self.bus.write16(sh4::BRCR, v);
        }
    }

    /// Switch channel `n` between before- and after-execution breaks.
    fn set_timing(&self, n: u8, timing: BreakTiming) {
        match self.variant().layout {
            Layout::Sh4a => {
                // SAFETY: channel `n` exists; 32-bit register; owned.
                unsafe {
                    self.bus
                        .write32(sh4a::crr(n), sh4a::Crr::for_timing(timing).bits())
                }
            }
            Layout::Sh4 => {
                if let Some(ch) = sh4::Channel::from_index(n) {
                    // SAFETY: SH-4 layout; owned.
                    unsafe { self.set_sh4_pcb(ch, timing == BreakTiming::After) }
                }
            }
        }
    }

    /// Disable every channel; returns the enable state to restore (per
    /// channel: the SH-4A CBR or the SH-4 BBR value) and the enabled mask.
    fn disable_all(&self) -> ([u32; MAX_SLOTS], u32) {
        let mut saved = [0u32; MAX_SLOTS];
        let mut enabled = 0u32;
        for (n, slot) in (0..self.channels()).zip(saved.iter_mut()) {
            match self.variant().layout {
                Layout::Sh4a => {
                    // SAFETY: channel `n` exists; 32-bit; owned.
                    let cbr = unsafe { self.bus.read32(sh4a::cbr(n)) };
                    *slot = cbr;
                    if decode::sh4a_enabled(cbr) {
                        enabled |= 1 << n;
                        // SAFETY: as above.
                        unsafe {
                            self.bus
                                .write32(sh4a::cbr(n), sh4a::Cbr(cbr).with_enabled(false).0)
                        };
                    }
                }
                Layout::Sh4 => {
                    let Some(ch) = sh4::Channel::from_index(n) else {
                        continue;
                    };
                    // SAFETY: 16-bit BBR of an SH-4 channel; owned.
                    let bbr = unsafe { self.bus.read16(ch.bbr()) };
                    *slot = u32::from(bbr);
                    if sh4::Bbr(bbr).enabled() {
                        enabled |= 1 << n;
                        // SAFETY: as above.
                        unsafe { self.bus.write16(ch.bbr(), 0) };
                    }
                }
            }
        }
        (saved, enabled)
    }

    /// Re-enable the channels in `mask` from the saved state.
    fn enable(&self, saved: &[u32; MAX_SLOTS], mask: u32) {
        for (n, &v) in (0..self.channels()).zip(saved.iter()) {
            if mask & (1 << n) == 0 {
                continue;
            }
            match self.variant().layout {
                Layout::Sh4a => {
                    // SAFETY: channel `n` exists; 32-bit; owned.
                    unsafe {
                        self.bus.write32(sh4a::cbr(n), v);
                        let _ = self.bus.read32(sh4a::cbr(n));
                    }
                }
                Layout::Sh4 => {
                    if let Some(ch) = sh4::Channel::from_index(n) {
                        // SAFETY: 16-bit BBR; owned. `v` came from a 16-bit read.
                        unsafe { self.bus.write16(ch.bbr(), v as u16) };
                    }
                }
            }
        }
    }

    /// Read the match flags and clear them (every channel is disabled).
    fn take_flags(&self) -> u32 {
        match self.variant().layout {
            Layout::Sh4a => {
                // SAFETY: CCMFR is a 32-bit SH-4A register; owned.
                unsafe {
                    let f = decode::sh4a_flags(self.bus.read32(sh4a::CCMFR));
                    if f != 0 {
                        self.bus.write32(sh4a::CCMFR, decode::sh4a_clear(f, f));
                    }
                    f
                }
            }
            Layout::Sh4 => {
                // SAFETY: BRCR is a 16-bit SH-4 register; owned.
                unsafe {
                    let brcr = self.bus.read16(sh4::BRCR);
                    let f = decode::sh4_flags(brcr);
                    if f != 0 {
                        self.bus.write16(sh4::BRCR, decode::sh4_clear(brcr, f));
                    }
                    f
                }
            }
        }
    }
}

impl<B: UbcBus> Arch for ShBackend<B> {
    type Slot = UbcSlot;
    type Exception = ShException;
    type CpuState = ShCpuState;
    // An initialiser for the manager's per-CPU array, never shared itself.
    #[allow(clippy::declare_interior_mutable_const)]
    const CPU_STATE_INIT: ShCpuState = ShCpuState::new();

    /// Identify the part ([`variant::discover`]: PVR/PRR, else a probe),
    /// unless it was named ([`ShBackend::with_variant`]), then check that
    /// the UBC takes writes ([`variant::check_writable`]). Returns one shared
    /// pool of the part's channels. Errors:
    /// [`HardwareError::UnknownPart`],
    /// [`HardwareError::NoDebugHardware`]
    /// (no UBC found, or module-stopped).
    fn discover(&self) -> Result<SlotCounts, Error> {
        let v = match unpack(self.variant.load(Ordering::Acquire)) {
            Some(v) => {
                // SAFETY: the constructor's contract: the bus reaches the UBC
                // of a part with this variant, privileged, owned.
                unsafe { variant::check_writable(&self.bus, v)? };
                v
            }
            // SAFETY: the constructor's contract: the bus reaches an
            // SH-4/SH-4A part's UBC and CCN, privileged, owned.
            None => unsafe { variant::discover(&self.bus)? },
        };
        // Release: the variant is complete before anything reads it.
        self.variant.store(pack(v), Ordering::Release);
        Ok(v.slot_counts())
    }

    /// [`Encoder::encode_validated`]: the core has checked the generic rules.
    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<UbcSlot>, Error> {
        if self.channels() == 0 {
            return Err(Error::Hardware(HardwareError::NoDebugHardware));
        }
        self.encoder().encode_validated(attr)
    }

    /// Checks that the UBC takes writes ([`variant::check_writable`]:
    /// [`HardwareError::NoDebugHardware`] for a module-stopped UBC), then clears
    /// every channel and flag and the CPU's step-over state, so the hardware
    /// matches the empty image the core starts from. Before discovery:
    /// [`HardwareError::NoDebugHardware`],
    /// touching nothing.
    fn init_cpu(&self, _cpu: u16, state: &ShCpuState) -> Result<(), Error> {
        if self.channels() == 0 {
            return Err(Error::Hardware(HardwareError::NoDebugHardware));
        }
        let (stepping, pc) = (&state.stepping, &state.step_pc);
        // SAFETY: the constructor's contract: the bus reaches the UBC of a
        // part with this variant, privileged, and the backend owns it.
        unsafe { variant::check_writable(&self.bus, self.variant())? };
        self.reset();
        stepping.store(0, Ordering::Relaxed);
        pc.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        self.encoder().address_space(addr, len)
    }

    fn install(
        &self,
        _cpu: u16,
        state: &ShCpuState,
        current: &Image<UbcSlot>,
        desired: &Image<UbcSlot>,
    ) {
        let stepping = &state.stepping;
        let cur = current.pools.first();
        let want = desired.pools.first();
        for n in 0..self.channels() {
            let i = usize::from(n);
            let c = cur.and_then(|p| p.get(i)).copied().unwrap_or_default();
            let d = want.and_then(|p| p.get(i)).copied().unwrap_or_default();
            if c == d {
                continue;
            }
            stepping.store(
                stepping.load(Ordering::Relaxed) & !(1 << n),
                Ordering::Relaxed,
            );
            self.write_channel(n, &d);
        }
    }

    fn decode(&self, _cpu: u16, state: &ShCpuState, raw: &ShException) -> Decoded {
        let not_ours = Decoded::NOT_OURS.ip(u64::from(raw.spc));
        if raw.expevt != self.variant().trap || self.channels() == 0 {
            return not_ours;
        }
        let (stepping, step_pc) = (&state.stepping, &state.step_pc);
        // The channels' settings, read while they are still enabled.
        let mut slots = [UbcSlot::DISABLED; MAX_SLOTS];
        for (n, s) in (0..self.channels()).zip(slots.iter_mut()) {
            *s = self.read_channel(n).unwrap_or_default();
        }
        // 1. Disable every channel while the flags are examined.
        let (saved, enabled) = self.disable_all();
        // 2. Read and clear the flags; keep those of channels that were on.
        let flags = self.take_flags();
        let mut mask = decode::fired_mask(flags, enabled, self.variant().channel_mask());
        // 3. Step-over bookkeeping for before-execution instruction breaks
        //    (the rule is in the type's documentation).
        let was = stepping.load(Ordering::Relaxed);
        let pc = step_pc.load(Ordering::Relaxed);
        // Stepping channels that broke (after execution) go back to
        // before-execution; only at the stepped PC + 2 is that the end of
        // the step, otherwise it is a real hit.
        let ended = was & mask;
        // A channel that matches one instruction only can break after
        // execution on nothing but the stepped instruction, wherever the CPU
        // went next (fall-through, branch target, the branch's destination for
        // a delay slot): its break ends the step. A range channel ends it only
        // at the stepped PC + 2.
        let single: u32 = (0..self.channels())
            .filter(|&n| slots.get(usize::from(n)).is_some_and(|s| s.mask <= 1))
            .fold(0, |m, n| m | 1 << n);
        let done = if raw.spc == pc.wrapping_add(2) {
            ended
        } else {
            ended & single
        };
        let mut next = was & !ended;
        let mut started = 0u32;
        for n in 0..self.channels() {
            let bit = 1u32 << n;
            if ended & bit != 0 {
                self.set_timing(n, BreakTiming::Before);
            } else if mask & bit != 0
                && slots
                    .get(usize::from(n))
                    .is_some_and(|s| s.breaks_before_fetch())
            {
                started |= bit;
            }
        }
        if started != 0 {
            if next != 0 && pc != raw.spc {
                // The CPU is at another instruction than the one stepped:
                // that step was abandoned.
                for n in 0..self.channels() {
                    if next & (1 << n) != 0 {
                        self.set_timing(n, BreakTiming::Before);
                    }
                }
                next = 0;
            }
            // Let the instruction run once: break after it instead.
            for n in 0..self.channels() {
                if started & (1 << n) != 0 {
                    self.set_timing(n, BreakTiming::After);
                }
            }
            next |= started;
            step_pc.store(raw.spc, Ordering::Relaxed);
        }
        stepping.store(next, Ordering::Relaxed);
        mask &= !done;
        // 4. Re-enable what was enabled.
        self.enable(&saved, enabled);

        let first = slots.get(mask.trailing_zeros() as usize).copied();
        let addr = match (raw.data_addr, first) {
            (Some(a), _) => u64::from(a),
            (None, Some(s)) => u64::from(s.addr),
            (None, None) => 0,
        };
        let access = decode::reported_access(
            slots
                .iter()
                .enumerate()
                .filter(|(n, _)| mask & (1 << n) != 0)
                .map(|(_, s)| *s),
        );
        Decoded::new(
            match raw.data_addr {
                Some(_) if self.by_address && mask != 0 => Fired::ByAddress {
                    pool: hwbp_core::Pool(0),
                },
                _ => decode::fired(mask),
            },
            Resume::RETURN,
        )
        .addr(addr)
        .ip(u64::from(raw.spc))
        .access(access)
    }
}
