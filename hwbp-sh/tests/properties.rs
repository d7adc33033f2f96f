//! Property tests: the encoder, decoder and discovery never panic, and every
//! encoding the encoder accepts fires exactly where the model says it should.
//! Issue 3 also asks for each public reader and decoder to keep its documented
//! promises on arbitrary register contents:
//!
//! * `identify_never_panics`: an unknown PVR is `UnknownPart` with that PVR.
//! * `discovery_probes_the_modelled_ubc_and_restores_it`: `discover` / `probe`
//!   over arbitrary register contents.
//! * `read_channel_round_trips_installed_slots`: any slot, installed, reads
//!   back as itself (or disabled where the layout cannot hold it).
//! * `read_channel_imports_are_fixpoints`: whatever the registers hold, what
//!   `read_channel` imports, installed on a reset UBC, imports the same.
//! * `decode_follows_the_exception_sequence`: `Arch::decode` over arbitrary
//!   channel settings and match flags, in sequences (step-over state).
//! * `address_space_splits_at_p1`: `Arch::address_space`.

mod common;

use common::*;
use hwbp_core::{
    Access, AddressSpace, Arch, BreakpointAttr, Decoded, Error, Fired, Image, Pool, Resume, Target,
};
use hwbp_sh::model::{BusCycle, Model};
use hwbp_sh::variant::USER_BREAK_EXPEVT;
use hwbp_sh::{
    identify, sh4, sh4a, BreakTiming, BusCommand, CycleSelect, Encoder, Layout, OperandSize, Part,
    RangePolicy, ShException, SizePolicy, UbcBus, UbcSlot, Variant,
};
use proptest::prelude::*;

fn any_variant() -> impl Strategy<Value = Variant> {
    prop_oneof![Just(sh7750()), (1u8..=16).prop_map(sh4a)]
}

fn any_policy() -> impl Strategy<Value = (SizePolicy, RangePolicy, BreakTiming)> {
    (
        prop_oneof![Just(SizePolicy::OperandSize), Just(SizePolicy::AnySize)],
        prop_oneof![
            Just(RangePolicy::Split),
            Just(RangePolicy::Cover),
            Just(RangePolicy::Refuse)
        ],
        prop_oneof![Just(BreakTiming::Before), Just(BreakTiming::After)],
    )
}

fn any_attr() -> impl Strategy<Value = BreakpointAttr> {
    (
        prop_oneof![any::<u64>(), 0u64..0x1_0000_0000, 0u64..0x10000],
        prop_oneof![
            any::<u64>(),
            0u64..0x2000,
            Just(1u64),
            Just(2),
            Just(4),
            Just(8)
        ],
        0u8..8,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(addr, len, acc, xk, xu)| {
            BreakpointAttr::watch(addr, len, Access::from_bits_retain(acc))
                .target(Target::Cpu(0))
                .pinned(true)
                .sample_period(1)
                .inherit(false)
                .disabled(false)
                .exclude_user(xu)
                .exclude_kernel(xk)
        })
}

proptest! {
    #[test]
    fn encoder_never_panics_and_pieces_fit(v in any_variant(), p in any_policy(), attr in any_attr()) {
        let e = Encoder::new(v).size_policy(p.0).range_policy(p.1).exec_timing(p.2);
        if let Ok(enc) = e.encode(&attr) {
            prop_assert!(enc.weight() >= 1);
            prop_assert!(enc.weight() <= v.channels);
            for piece in &enc.pieces {
                prop_assert!(piece.hw_addr + piece.hw_len <= 1 << 32);
                prop_assert!(piece.slot.enabled);
                // Every piece overlaps the request.
                prop_assert!(piece.hw_addr < attr.addr + attr.len.max(2));
                prop_assert!(attr.addr < piece.hw_addr + piece.hw_len);
                if v.layout == hwbp_sh::Layout::Sh4 {
                    prop_assert!(sh4::ChannelRegs::from_slot(&piece.slot).is_some());
                }
            }
            // The pieces cover the whole request.
            let covered: u64 = enc.pieces.iter().map(|p| p.hw_len).sum();
            prop_assert!(covered >= attr.len);
        }
    }

    #[test]
    fn identify_never_panics(
        // Besides any value: every listed part number (PVR bits 23:8) under
        // any family byte (bits 31:24; SH-4A's 0x10 often) and revision.
        pvr in prop_oneof![
            any::<u32>(),
            (
                prop_oneof![Just(0x10u32), any::<u8>().prop_map(u32::from)],
                proptest::sample::select(&[
                    0x0205u32, 0x0206, 0x1100, 0x0500, 0x0501, 0x2006, 0x200A, 0x3004,
                    0x3007, 0x300B,
                ][..]),
                any::<u8>(),
            )
                .prop_map(|(family, part, rev)| family << 24 | part << 8 | u32::from(rev)),
        ],
        prr in prop_oneof![any::<u32>(), Just(0x100u32), Just(0x110), Just(0x200)],
    ) {
        match identify(pvr, prr) {
            Ok(v) => {
                prop_assert!(v.channels >= 1 && v.channels <= 16);
                prop_assert!(v.channel_mask() != 0 && v.part != Part::Other);
                prop_assert_eq!(v.trap, USER_BREAK_EXPEVT);
                prop_assert!(v.layout == Layout::Sh4a || v.channels == 2);
                // The family byte (PVR bits 31:24; 0x10 is SH-4A) agrees.
                prop_assert_eq!(v.layout == Layout::Sh4a, pvr >> 24 == 0x10);
            }
            Err(e) => prop_assert_eq!(e, Error::Hardware(hwbp_core::HardwareError::UnknownPart { id: pvr })),
        }
    }

    #[test]
    fn discovery_never_panics(v in any_variant(), pvr in any::<u32>(), junk in any::<u32>()) {
        let r = Model::new(v, pvr, 0);
        r.poke(sh4a::CCMFR, junk);
        // SAFETY: in-memory register file.
        let _ = unsafe { hwbp_sh::discover(&r) };
    }

    #[test]
    fn decoder_never_panics(
        v in any_variant(),
        regs_junk in proptest::collection::vec(any::<u32>(), 8),
        expevt in prop_oneof![Just(0x1E0u32), any::<u32>()],
        spc in any::<u32>(),
        cpu in any::<u16>(),
    ) {
        let r = regs(v);
        let b = backend(&r);
        let addrs = match v.layout {
            hwbp_sh::Layout::Sh4a => [sh4a::cbr(0), sh4a::crr(0), sh4a::car(0), sh4a::camr(0), sh4a::cbr(1), sh4a::crr(1), sh4a::CCMFR, sh4a::CBCR],
            hwbp_sh::Layout::Sh4 => [sh4::BBRA, sh4::BBRB, sh4::BAMRA, sh4::BAMRB, sh4::BARA, sh4::BASRA, sh4::BRCR, sh4::BRCR],
        };
        for (a, j) in addrs.iter().zip(regs_junk) {
            r.poke(*a, j);
        }
        let d = b.decode(cpu, &ShException { expevt, spc, data_addr: None });
        if let Fired::Slots { mask, .. } = d.fired {
            prop_assert_eq!(mask & !v.channel_mask(), 0);
        }
    }

    /// Semantic oracle on SH-4A with 16 channels: an accepted data request
    /// fires for an access exactly when the hardware rule says so.
    #[test]
    fn data_encodings_fire_where_they_should(
        any_size in any::<bool>(),
        addr in 0x1000u64..0x1100,
        len in prop_oneof![1u64..0x90, Just(1), Just(2), Just(4), Just(8)],
        access in prop_oneof![Just(Access::READ), Just(Access::WRITE), Just(Access::RW)],
        probes in proptest::collection::vec((0x0fe0u32..0x11c0, prop_oneof![Just(1u8), Just(2), Just(4), Just(8)], any::<bool>()), 40),
    ) {
        let v = sh4a(16);
        let r = regs(v);
        let size = if any_size { SizePolicy::AnySize } else { SizePolicy::OperandSize };
        let b = backend(&r).with_policies(size, RangePolicy::Split, BreakTiming::Before);
        let attr = BreakpointAttr::watch(addr, len, access);
        let Ok(_) = arm(&b, &attr) else { return Ok(()) };
        let exact_size = !any_size && matches!(len, 1 | 2 | 4 | 8);
        for (at, sz, is_write) in probes {
            let at = at & !(u32::from(sz) - 1);
            let cycle = if is_write { write(at, sz) } else { read(at, sz) };
            let kind_ok = if is_write { access.contains(Access::WRITE) } else { access.contains(Access::READ) };
            let (a, l) = (u64::from(at), u64::from(sz));
            let expected = kind_ok && if exact_size {
                l == len && a == addr
            } else {
                a < addr + len && addr < a + l
            };
            let got = run(&r, &b, cycle);
            prop_assert_eq!(got.is_some(), expected, "{:?} {:#x}/{} attr {:#x}+{}", cycle, at, sz, addr, len);
            if let Some(d) = got {
                prop_assert!(fired_mask(&d) != 0);
            }
        }
    }

    /// Instruction breakpoints (after execution, so no step-over state):
    /// fire exactly on the instructions inside the request.
    #[test]
    fn exec_encodings_fire_where_they_should(
        v in any_variant(),
        addr in (0x8c00_0000u64..0x8c00_0100).prop_map(|a| a & !1),
        len in 1u64..0x40,
        pcs in proptest::collection::vec(0x8bff_ffe0u32..0x8c00_0160, 30),
    ) {
        let r = regs(v);
        let b = backend(&r).with_policies(SizePolicy::OperandSize, RangePolicy::Split, BreakTiming::After);
        let attr = BreakpointAttr::exec(addr).len(len);
        let Ok(_) = arm(&b, &attr) else { return Ok(()) };
        let end = (addr + len + 1) & !1;
        for pc in pcs {
            let pc = pc & !1;
            let expected = u64::from(pc) >= addr && u64::from(pc) < end.max(addr + 2);
            let got = run(&r, &b, BusCycle::Fetch { pc });
            prop_assert_eq!(got.is_some(), expected, "pc {:#x} attr {:#x}+{}", pc, addr, len);
        }
    }
}

/// The UBC registers of `v` with their widths (bytes), flag registers
/// excluded.
fn registers(v: Variant) -> Vec<(u32, u8)> {
    match v.layout {
        Layout::Sh4a => (0..v.channels)
            .flat_map(|n| [sh4a::cbr(n), sh4a::crr(n), sh4a::car(n), sh4a::camr(n)])
            .chain([sh4a::CBCR])
            .map(|a| (a, 4))
            .collect(),
        Layout::Sh4 => [sh4::Channel::A, sh4::Channel::B]
            .into_iter()
            .flat_map(|ch| [(ch.bar(), 4), (ch.bamr(), 1), (ch.bbr(), 2), (ch.basr(), 1)])
            .chain([(sh4::BDRB, 4), (sh4::BDMRB, 4), (sh4::BRCR, 2)])
            .collect(),
    }
}

/// Write `junk` to every register of the part through the bus (so only the
/// implemented bits take it), then raise the match flags in `flags`, as the
/// hardware would.
fn scramble(r: &Model, junk: &[u32], flags: u32) {
    let v = r.variant();
    for ((addr, width), j) in registers(v).into_iter().zip(junk.iter().cycle()) {
        // SAFETY: the in-memory register file, at each register's own width.
        unsafe {
            match width {
                1 => r.write8(addr, *j as u8),
                2 => r.write16(addr, *j as u16),
                _ => r.write32(addr, *j),
            }
        }
    }
    r.raise_flags(flags);
}

/// The match flags of existing channels (bit n = channel n).
fn flags(r: &Model) -> u32 {
    let v = r.variant();
    match v.layout {
        Layout::Sh4a => r.peek(sh4a::CCMFR) & v.channel_mask(),
        Layout::Sh4 => hwbp_sh::decode::sh4_flags(r.peek(sh4::BRCR) as u16),
    }
}

/// The channels whose enable condition is set in the registers.
fn enabled(r: &Model) -> u32 {
    let v = r.variant();
    (0..v.channels).fold(0, |m, n| {
        let on = match v.layout {
            Layout::Sh4a => sh4a::Cbr(r.peek(sh4a::cbr(n))).enabled(),
            Layout::Sh4 => sh4::Channel::from_index(n)
                .is_some_and(|ch| sh4::Bbr(r.peek(ch.bbr()) as u16).enabled()),
        };
        m | u32::from(on) << n
    })
}

/// The break timing channel `n` is set to.
fn timing(r: &Model, n: u8) -> BreakTiming {
    let after = match r.variant().layout {
        Layout::Sh4a => sh4a::Crr::from_bits_retain(r.peek(sh4a::crr(n))).contains(sh4a::Crr::PCB),
        Layout::Sh4 => sh4::Channel::from_index(n).is_some_and(|ch| {
            sh4::Brcr::from_bits_retain(r.peek(sh4::BRCR) as u16).contains(ch.pcb())
        }),
    };
    if after {
        BreakTiming::After
    } else {
        BreakTiming::Before
    }
}

fn any_slot() -> impl Strategy<Value = UbcSlot> {
    let cycle = prop_oneof![Just(CycleSelect::Operand), Just(CycleSelect::Fetch)];
    let rw = prop_oneof![
        Just(BusCommand::Read),
        Just(BusCommand::Write),
        Just(BusCommand::ReadWrite)
    ];
    let size = (0u32..5).prop_map(|b| OperandSize::from_bits(b).unwrap());
    let timing = prop_oneof![Just(BreakTiming::Before), Just(BreakTiming::After)];
    let mask = prop_oneof![
        any::<u32>(),
        (0u32..=32).prop_map(|k| 1u64.checked_shl(k).map_or(u32::MAX, |b| (b - 1) as u32)),
        Just(0x3FF),
        Just(0xF_FFFF),
    ];
    (
        any::<bool>(),
        cycle,
        rw,
        size,
        timing,
        any::<u32>(),
        mask,
        proptest::option::of(any::<u8>()),
    )
        .prop_map(
            |(enabled, cycle, rw, size, timing, addr, mask, asid)| UbcSlot {
                enabled,
                cycle,
                rw,
                size,
                timing,
                addr,
                mask,
                asid,
            },
        )
}

proptest! {
    #[test]
    fn discovery_probes_the_modelled_ubc_and_restores_it(
        v in any_variant(),
        // 0xF111_0000: an SH7751's PVR (family byte 0xF1, SH-4 for Linux; a
        // known part, so the writability check runs), besides none and
        // random ones.
        pvr in prop_oneof![Just(0u32), Just(u32::MAX), Just(0xF111_0000u32), any::<u32>()],
        prr in any::<u32>(),
        junk in proptest::collection::vec(any::<u32>(), 1..8),
        raised in any::<u32>(),
    ) {
        let r = Model::new(v, pvr, prr);
        scramble(&r, &junk, raised);
        let before: Vec<u32> = registers(v).iter().map(|&(a, _)| r.peek(a)).collect();
        let flags_before = flags(&r);
        let writes = r.writes();
        // SAFETY: in-memory register file.
        let found = unsafe { hwbp_sh::discover(&r) };
        if pvr == 0 || pvr == u32::MAX {
            // No PVR: the probe finds exactly the modelled layout.
            let found = found.expect("the probe finds the modelled UBC");
            prop_assert_eq!((found.layout, found.channels, found.part), (v.layout, v.channels, Part::Other));
        } else {
            match identify(pvr, prr) {
                // A known part's UBC is checked for writability (module stop)
                // and restored (below).
                Ok(id) if id.layout == v.layout => prop_assert_eq!(found, Ok(id)),
                // The PVR names a part whose UBC is not the one modelled: the
                // writability check may notice.
                Ok(id) => prop_assert!(
                    found == Ok(id) || found == Err(hwbp_core::Error::Hardware(hwbp_core::HardwareError::NoDebugHardware)),
                    "{:?}",
                    found
                ),
                Err(e) => {
                    prop_assert_eq!(found, Err(e));
                    prop_assert_eq!(r.writes(), writes, "an unknown PVR writes nothing");
                }
            }
        }
        // Every register touched is restored.
        let after: Vec<u32> = registers(v).iter().map(|&(a, _)| r.peek(a)).collect();
        prop_assert_eq!(after, before);
        prop_assert_eq!(flags(&r), flags_before);
        // (A PVR naming a part with another UBC layout than the modelled one
        // makes the writability check use that layout's register widths.)
        let other_layout = pvr != 0
            && pvr != u32::MAX
            && identify(pvr, prr).is_ok_and(|id| id.layout != v.layout);
        if !other_layout {
            prop_assert_eq!(r.width_errors(), 0);
        }
    }

    #[test]
    fn read_channel_round_trips_installed_slots(v in any_variant(), slot in any_slot(), at in any::<u8>()) {
        let r = regs(v);
        let b = backend(&r);
        let n = at % v.channels;
        let mut want = Image::<UbcSlot>::empty(b.slot_counts());
        want.pools[0][usize::from(n)] = slot;
        b.install(0, &image_of(&b), &want);
        // SH-4's BAMR holds only some masks: the backend leaves a slot it
        // cannot express disabled.
        let expressible = v.layout == Layout::Sh4a || sh4::ChannelRegs::from_slot(&slot).is_some();
        let back = if slot.enabled && expressible { slot } else { UbcSlot::DISABLED };
        prop_assert_eq!(b.read_channel(n), Some(back));
        for other in (0..v.channels).filter(|&m| m != n) {
            prop_assert_eq!(b.read_channel(other), Some(UbcSlot::DISABLED));
        }
        prop_assert_eq!(b.read_channel(v.channels.max(at)), None);
        prop_assert_eq!(r.width_errors(), 0);
    }

    #[test]
    fn read_channel_imports_are_fixpoints(
        v in any_variant(),
        junk in proptest::collection::vec(any::<u32>(), 1..70),
    ) {
        let r = regs(v);
        let b = backend(&r);
        scramble(&r, &junk, 0);
        let on = enabled(&r);
        let imported = image_of(&b);
        for (n, s) in imported.pools[0].iter().enumerate() {
            // An imported slot is enabled exactly when the channel is (or
            // not imported at all: reserved settings read as disabled).
            prop_assert!(!s.enabled || on & 1 << n != 0, "channel {}: {:?}", n, s);
        }
        b.reset();
        b.install(0, &Image::empty(b.slot_counts()), &imported);
        prop_assert_eq!(image_of(&b), imported);
        prop_assert_eq!(r.width_errors(), 0);
    }

    #[test]
    fn decode_follows_the_exception_sequence(
        v in any_variant(),
        by_address in any::<bool>(),
        slots in proptest::collection::vec(any_slot(), 16),
        junk in proptest::collection::vec(any::<u32>(), 1..70),
        events in proptest::collection::vec(
            (
                prop_oneof![4 => Just(USER_BREAK_EXPEVT), 1 => any::<u32>()],
                // Mostly a few neighbouring instructions, so a step-over's
                // end (stepped PC + 2) comes up as often as other PCs.
                prop_oneof![1 => any::<u32>(), 3 => (0u32..3).prop_map(|k| 0x8c00_0100 + 2 * k)],
                proptest::option::of(any::<u32>()),
                prop_oneof![4 => Just(0u16), 1 => any::<u16>()],
                any::<u32>(),
            ),
            1..12,
        ),
    ) {
        let r = regs(v);
        let b = backend(&r).filter_by_address(by_address);
        // Channels set up by the backend most of the time, else anything.
        let mut img = Image::<UbcSlot>::empty(b.slot_counts());
        for (s, want) in img.pools[0].iter_mut().zip(&slots) {
            *s = *want;
        }
        b.install(0, &image_of(&b), &img);
        if junk.len() % 4 == 0 {
            scramble(&r, &junk, 0);
        }
        // Channels switched to break after execution for a step-over on CPU 0,
        // and the PC stepped.
        let mut stepping = 0u32;
        let mut step_pc = 0u32;
        for (expevt, spc, data_addr, cpu, raised) in events {
            r.raise_flags(raised);
            let on = enabled(&r);
            let flagged = flags(&r);
            let chans: Vec<UbcSlot> = (0..v.channels).map(|n| b.read_channel(n).unwrap_or_default()).collect();
            r.clear_log();
            let d = b.decode(cpu, &ShException { expevt, spc, data_addr });
            // Not a user break, or a CPU the backend keeps no state for (the
            // default CPUS = 1): not ours, and the UBC is not touched.
            if expevt != USER_BREAK_EXPEVT || cpu != 0 {
                prop_assert_eq!((d.fired, d.resume), (Fired::None, Resume::NOT_OURS));
                prop_assert!(r.write_log().is_empty());
                prop_assert_eq!(flags(&r), flagged);
                // The flags stay set; the next decode on CPU 0 sees them.
                continue;
            }
            // Only flags of channels that were enabled count. A flag of a
            // channel being stepped over ends that step; it is the end of the
            // step (not reported) for a single-instruction channel always, for
            // a range channel only at the stepped PC + 2; else a hit.
            let hit = flagged & on & v.channel_mask();
            let ended = stepping & hit;
            let single = (0..v.channels)
                .filter(|&n| chans[usize::from(n)].mask <= 1)
                .fold(0u32, |m, n| m | 1 << n);
            let done = if spc == step_pc.wrapping_add(2) { ended } else { ended & single };
            let fired = hit & !done;
            let started = (0..v.channels)
                .filter(|&n| hit & !ended & 1 << n != 0 && chans[usize::from(n)].breaks_before_fetch())
                .fold(0, |m, n| m | 1 << n);
            let mut next = stepping & !ended;
            let mut abandoned = 0;
            if started != 0 {
                if next != 0 && step_pc != spc {
                    abandoned = next;
                    next = 0;
                }
                next |= started;
                step_pc = spc;
            }
            stepping = next;
            for n in 0..v.channels {
                if (ended | abandoned) & 1 << n != 0 {
                    prop_assert_eq!(timing(&r, n), BreakTiming::Before, "channel {} stepped", n);
                }
                if started & 1 << n != 0 {
                    prop_assert_eq!(timing(&r, n), BreakTiming::After, "channel {} stepping", n);
                }
            }
            let fired_slots: Vec<UbcSlot> = (0..v.channels)
                .filter(|&n| fired & 1 << n != 0)
                .map(|n| chans[usize::from(n)])
                .collect();
            let access = match fired_slots.split_first() {
                Some((f, rest)) if rest.iter().all(|s| s.access() == f.access()) => f.access(),
                _ => Access::empty(),
            };
            let want = Decoded::new(match (fired, data_addr) {
                    (0, _) => Fired::None,
                    (_, Some(_)) if by_address => Fired::ByAddress { pool: Pool(0) },
                    (mask, _) => Fired::Slots { pool: Pool(0), mask },
                }, Resume::RETURN).addr(data_addr.or(fired_slots.first().map(|s| s.addr)).map_or(0, u64::from)).ip(u64::from(spc)).access(access);
            prop_assert_eq!(d, want);
            // The flags are cleared, the channels enabled as before.
            prop_assert_eq!(flags(&r), 0);
            prop_assert_eq!(enabled(&r), on);
        }
        prop_assert_eq!(r.width_errors(), 0);
    }

    #[test]
    fn address_space_splits_at_p1(
        v in any_variant(),
        attr in any_attr(),
        len in 1u64..64,
        past in -2i64..=2,
    ) {
        let r = regs(v);
        let b = backend(&r);
        let user = attr.addr.checked_add(attr.len).is_some_and(|end| end <= 0x8000_0000);
        let space = b.address_space(attr.addr, attr.len);
        prop_assert_eq!(space == AddressSpace::User, user);
        // A region ending `past` bytes after P0/U0 ends.
        let at = (0x8000_0000 - len).saturating_add_signed(past);
        let edge = if past <= 0 { AddressSpace::User } else { AddressSpace::Kernel };
        prop_assert_eq!(b.address_space(at, len), edge);
        let excluding = attr.exclude_kernel(true);
        if b.encoder().encode(&excluding).is_ok() {
            prop_assert_eq!(space, AddressSpace::User);
        }
    }
}
