//! Discovery (PVR/PRR, probe, unknown parts), match-flag decoding, the safe
//! exception sequence and stray filtering, against the register file.

mod common;

use common::*;
use hwbp_core::{Access, Arch, BreakpointAttr, Error, Fired, Resume, SlotCounts};
use hwbp_sh::model::Model;
use hwbp_sh::{sh4, sh4a, Layout, Part, ShException, Variant};

fn discover(r: &Model) -> Result<Variant, Error> {
    // SAFETY: in-memory register file.
    unsafe { hwbp_sh::discover(&r) }
}

#[test]
fn known_parts_from_pvr() {
    for (pvr, prr, part, layout, n) in [
        (0x0002_0500u32, 0u32, Part::Sh7750, Layout::Sh4, 2u8),
        (0x0011_0000, 0, Part::Sh7751, Layout::Sh4, 2),
        (0x0005_0000, 0x110, Part::Sh7751R, Layout::Sh4, 2),
        (0x1020_0600, 0, Part::Sh7780, Layout::Sh4a, 2),
        (0x1030_0700, 0, Part::Sh7785, Layout::Sh4a, 2),
        (0x1030_0B00, 0x200, Part::Sh7724, Layout::Sh4a, 2),
    ] {
        let layout_variant = if layout == Layout::Sh4 {
            sh7750()
        } else {
            sh4a(n)
        };
        let r = Model::new(layout_variant, pvr, prr);
        let addr_reg = if layout == Layout::Sh4 {
            sh4::BARA
        } else {
            sh4a::car(0)
        };
        r.poke(addr_reg, 0x1234_5678);
        let v = discover(&r).unwrap();
        assert_eq!(
            (v.part, v.layout, v.channels, v.trap),
            (part, layout, n, 0x1E0)
        );
        // SAFETY: in-memory register file.
        let b = discovered(&r).unwrap();
        assert_eq!(b.slot_counts(), SlotCounts::Shared(n));
        // PVR identification writes only the writability check's patterns
        // to CAR0/BARA, and restores the register.
        assert!(r.write_log().iter().all(|&(a, _)| a == addr_reg));
        assert_eq!(r.peek(addr_reg), 0x1234_5678);
    }
}

#[test]
fn unknown_part_is_an_error() {
    let r = Model::new(sh4a(2), 0x1040_0400, 0);
    assert_eq!(
        discover(&r),
        Err(Error::Hardware(hwbp_core::HardwareError::UnknownPart {
            id: 0x1040_0400
        }))
    );
    // SAFETY: in-memory register file.
    let b = discovered(&r);
    assert!(matches!(
        b,
        Err(Error::Hardware(
            hwbp_core::HardwareError::UnknownPart { .. }
        ))
    ));
}

#[test]
fn a_part_number_under_another_family_is_unknown() {
    // SH7780's part number (0x2006) with an SH-4 family byte (PVR bits
    // 31:24 not 0x10), and SH7750's (0x0205) with the SH-4A one: both were
    // once taken for the listed part. Refused like any unknown part, before
    // any UBC register is written.
    for (v, pvr) in [(sh4a(2), 0x0020_0600u32), (sh7750(), 0x1002_0500)] {
        let r = Model::new(v, pvr, 0);
        let unknown = Error::Hardware(hwbp_core::HardwareError::UnknownPart { id: pvr });
        assert_eq!(discover(&r), Err(unknown));
        let b = discovered(&r);
        assert!(matches!(b, Err(e) if e == unknown));
        assert!(r.write_log().is_empty(), "{pvr:#x}");
    }
}

#[test]
fn probe_without_pvr() {
    let r = Model::new(sh7750(), 0, 0);
    r.poke(sh4::BARA, 0x1234_5678);
    let v = discover(&r).unwrap();
    assert_eq!(
        (v.layout, v.channels, v.part),
        (Layout::Sh4, 2, Part::Other)
    );
    assert_eq!(r.peek(sh4::BARA), 0x1234_5678, "probe restores BARA");
    for n in [1u8, 2, 3, 4, 16] {
        let r = Model::new(sh4a(n), u32::MAX, 0);
        r.poke(sh4a::car(0), 0xdead_beef);
        let v = discover(&r).unwrap();
        assert_eq!((v.layout, v.channels), (Layout::Sh4a, n), "{n} channels");
        assert_eq!(r.peek(sh4a::car(0)), 0xdead_beef, "probe restores CAR0");
        assert_eq!(r.peek(sh4a::cbr(0)) & 1, 0, "probe never enables a channel");
    }
}

#[test]
fn flags_decode_to_channels_and_are_cleared() {
    for v in [sh7750(), sh4a(2)] {
        let r = regs(v);
        let b = backend(&r);
        // Two channels on the same word, read and write.
        let mut img = hwbp_core::Image::empty(b.slot_counts());
        img.pools[0][0] = b
            .encode(&BreakpointAttr::watch(0x3000, 4, Access::RW))
            .unwrap()
            .pieces[0]
            .slot;
        img.pools[0][1] = b
            .encode(&BreakpointAttr::watch(0x3000, 4, Access::WRITE))
            .unwrap()
            .pieces[0]
            .slot;
        b.install(0, &image_of(&b), &img);
        let d = run(&r, &b, write(0x3000, 4)).unwrap();
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: hwbp_core::Pool(0),
                mask: 0b11
            }
        );
        assert_eq!(
            d.access,
            Access::empty(),
            "RW and W channels disagree on the kind"
        );
        let d = run(&r, &b, read(0x3000, 4)).unwrap();
        assert_eq!(fired_mask(&d), 0b01);
        assert_eq!(d.access, Access::RW);
        // Flags are clear and both channels still armed.
        match v.layout {
            Layout::Sh4a => assert_eq!(r.peek(sh4a::CCMFR), 0),
            Layout::Sh4 => assert_eq!(r.peek(sh4::BRCR) & 0xC000, 0),
        }
        assert_eq!(image_of(&b), img);
        assert_eq!(r.width_errors(), 0);
    }
}

#[test]
fn exception_sequence_disables_then_reenables() {
    let r = regs(sh4a(2));
    let b = backend(&r);
    arm(&b, &BreakpointAttr::watch(0x3000, 4, Access::WRITE)).unwrap();
    r.cycle(write(0x3000, 4), 0);
    r.clear_log();
    let d = b.decode(0, &ShException::user_break(0x8c00_2002));
    assert_eq!(fired_mask(&d), 1);
    let log = r.write_log();
    let disable = log
        .iter()
        .position(|&(a, v)| a == sh4a::cbr(0) && v & 1 == 0)
        .expect("CE cleared");
    let clear = log
        .iter()
        .position(|&(a, _)| a == sh4a::CCMFR)
        .expect("flags cleared");
    let enable = log
        .iter()
        .rposition(|&(a, v)| a == sh4a::cbr(0) && v & 1 == 1)
        .expect("CE set again");
    assert!(disable < clear && clear < enable, "{log:?}");
    // Without a data address from the embedder, the channel's address is reported.
    assert_eq!(d.addr, 0x3000);
}

#[test]
fn stray_breaks_are_filtered() {
    for v in [sh7750(), sh4a(2)] {
        let r = regs(v);
        let b = backend(&r);
        arm(&b, &BreakpointAttr::watch(0x3000, 4, Access::WRITE)).unwrap();
        // 1. A user break with no flag set.
        let d = b.decode(0, &ShException::user_break(0x100));
        assert_eq!((d.fired, d.resume), (Fired::None, Resume::RETURN));
        // 2. A flag of a channel that is not enabled (stale, or set by someone
        //    else): not reported, but cleared.
        match v.layout {
            Layout::Sh4a => r.poke(sh4a::CCMFR, 0b10),
            Layout::Sh4 => r.poke(sh4::BRCR, r.peek(sh4::BRCR) | 0x4000),
        }
        let d = b.decode(0, &ShException::user_break(0x100));
        assert_eq!(d.fired, Fired::None, "{v:?}");
        match v.layout {
            Layout::Sh4a => assert_eq!(r.peek(sh4a::CCMFR), 0),
            Layout::Sh4 => assert_eq!(r.peek(sh4::BRCR) & 0xC000, 0),
        }
        // 3. Flags above the channel count are ignored.
        if v.layout == Layout::Sh4a {
            r.poke(sh4a::CCMFR, 0xFFFF_FFFC);
            assert_eq!(
                b.decode(0, &ShException::user_break(0x100)).fired,
                Fired::None
            );
        }
        // 4. Another exception code is not ours and leaves the flags alone.
        r.cycle(write(0x3000, 4), 0);
        let d = b.decode(
            0,
            &ShException {
                expevt: 0x160,
                spc: 0x100,
                data_addr: None,
            },
        );
        assert_eq!((d.fired, d.resume), (Fired::None, Resume::NOT_OURS));
        let pending = match v.layout {
            Layout::Sh4a => r.peek(sh4a::CCMFR) & 1,
            Layout::Sh4 => (r.peek(sh4::BRCR) >> 15) & 1,
        };
        assert_eq!(pending, 1);
        // ... and the real break is still decoded afterwards.
        assert_eq!(fired_mask(&b.decode(0, &ShException::user_break(0x100))), 1);
    }
}

#[test]
fn install_writes_only_changed_channels() {
    let r = regs(sh4a(4));
    let b = backend(&r);
    let cur = image_of(&b);
    let mut want = cur.clone();
    want.pools[0][2] = b
        .encode(&BreakpointAttr::watch(0x4000, 2, Access::READ))
        .unwrap()
        .pieces[0]
        .slot;
    r.clear_log();
    b.install(0, &cur, &want);
    let log = r.write_log();
    assert!(!log.is_empty());
    assert!(
        log.iter()
            .all(|&(a, _)| (sh4a::cbr(2)..sh4a::cbr(3)).contains(&a)),
        "{log:?}"
    );
    // Enable comes last, after the address.
    assert_eq!(
        log.last().map(|&(a, v)| (a, v & 1)),
        Some((sh4a::cbr(2), 1))
    );
    r.clear_log();
    b.install(0, &want, &want);
    assert!(r.write_log().is_empty());
}

#[test]
fn module_stopped_ubc_is_refused() {
    // Known parts (PVR identification) and probed ones alike.
    for (v, pvr, prr) in [
        (sh7750(), 0x0002_0500u32, 0u32),
        (sh4a(2), 0x1030_0700, 0),
        (sh4a(2), 0x1030_0B00, 0x200),
        (sh7750(), 0, 0),
        (sh4a(2), u32::MAX, 0),
    ] {
        let r = Model::new(v, pvr, prr);
        let addr_reg = match v.layout {
            Layout::Sh4 => sh4::BARA,
            Layout::Sh4a => sh4a::car(0),
        };
        r.poke(addr_reg, 0x0bad_cafe);
        r.set_module_stopped(true);
        assert_eq!(
            discover(&r),
            Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware)),
            "{v:?} {pvr:#x}"
        );
        // SAFETY: in-memory register file.
        let b = discovered(&r);
        assert!(matches!(
            b,
            Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
        ));
        // Clock running again: discovery works and left the register as it was.
        r.set_module_stopped(false);
        assert_eq!(r.peek(addr_reg), 0x0bad_cafe);
        assert_eq!(discover(&r).map(|d| d.layout), Ok(v.layout));
        assert_eq!(r.peek(addr_reg), 0x0bad_cafe, "check restores the register");
        assert_eq!(r.width_errors(), 0);
    }
}

#[test]
fn init_cpu_refuses_a_module_stopped_ubc() {
    for v in [sh7750(), sh4a(2)] {
        let r = regs(v);
        // SAFETY: in-memory register file.
        let b = with_cpus::<1>(&r, v);
        r.set_module_stopped(true);
        assert_eq!(
            b.init_cpu(0),
            Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
        );
        r.set_module_stopped(false);
        assert_eq!(b.init_cpu(0), Ok(()));
        // The check's patterns do not stay behind: init_cpu cleared CAR0/BARA.
        let addr_reg = match v.layout {
            Layout::Sh4 => sh4::BARA,
            Layout::Sh4a => sh4a::car(0),
        };
        assert_eq!(r.peek(addr_reg), 0);
        assert_eq!(r.width_errors(), 0);
    }
}

#[test]
fn cpus_without_step_state_are_refused() {
    for v in [sh7750(), sh4a(2)] {
        let r = regs(v);
        // SAFETY: in-memory register file.
        let b = with_cpus::<2>(&r, v);
        assert_eq!(b.init_cpu(1), Ok(()));
        r.clear_log();
        assert_eq!(b.init_cpu(2), Err(Error::CpuOutOfRange { cpu: 2 }));
        assert_eq!(
            b.init_cpu(u16::MAX),
            Err(Error::CpuOutOfRange { cpu: u16::MAX })
        );
        assert!(r.write_log().is_empty(), "refused before touching the UBC");

        // A before-execution instruction break armed on CPU 0.
        let enc = b.encode(&BreakpointAttr::exec(0x8c01_0000)).unwrap();
        let mut img = hwbp_core::Image::empty(b.slot_counts());
        img.pools[0][0] = enc.pieces[0].slot;
        // install for a CPU the backend does not serve writes nothing.
        b.install(2, &hwbp_core::Image::empty(b.slot_counts()), &img);
        assert!(r.write_log().is_empty());
        b.install(0, &hwbp_core::Image::empty(b.slot_counts()), &img);
        // Decoded on a CPU without step state, the break is not ours and the
        // UBC is left alone (no switch to a step that could never end).
        let out = r.cycle(hwbp_sh::model::BusCycle::Fetch { pc: 0x8c01_0000 }, 0);
        assert!(out.brk);
        r.clear_log();
        let d = b.decode(2, &ShException::user_break(out.spc));
        assert_eq!((d.fired, d.resume), (Fired::None, Resume::NOT_OURS));
        assert!(r.write_log().is_empty());
        // The same break on CPU 0 is a hit and starts the step-over.
        let d = b.decode(0, &ShException::user_break(out.spc));
        assert_eq!(fired_mask(&d), 1);
        assert_eq!(
            b.read_channel(0).map(|s| s.timing),
            Some(hwbp_sh::BreakTiming::After)
        );
    }
}
