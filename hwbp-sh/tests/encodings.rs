//! Every encoding, checked by meaning: install it through the backend into
//! the register file, present bus cycles to the UBC model, and look at what
//! fires and what the decoder reports.

mod common;

use common::*;
use hwbp_core::{Access, AddressSpace, Arch, BpType, BreakpointAttr, Error, Resume};
use hwbp_sh::{BreakTiming, Encoder, RangePolicy, SizePolicy, Variant};

fn variants() -> [Variant; 3] {
    [sh7750(), sh4a(2), sh4a(4)]
}

#[test]
fn data_kinds_on_both_layouts() {
    for v in variants() {
        for (access, reads, writes) in [
            (Access::READ, true, false),
            (Access::WRITE, false, true),
            (Access::RW, true, true),
        ] {
            let r = regs(v);
            let b = backend(&r);
            let enc = arm(&b, &BreakpointAttr::watch(0x0c00_1000, 4, access)).unwrap();
            assert_eq!(enc.ty, BpType::Data);
            assert_eq!(enc.weight(), 1);
            let rd = run(&r, &b, read(0x0c00_1000, 4));
            let wr = run(&r, &b, write(0x0c00_1000, 4));
            assert_eq!(rd.is_some(), reads, "{v:?} {access:?} read");
            assert_eq!(wr.is_some(), writes, "{v:?} {access:?} write");
            for d in [rd, wr].into_iter().flatten() {
                assert_eq!(fired_mask(&d), 1);
                assert_eq!(d.addr, 0x0c00_1000);
                assert_eq!(d.access, access);
                assert_eq!(d.resume, Resume::RETURN);
                // Operand breaks are taken after the access: SPC is the next insn.
                assert_eq!(d.ip, 0x8c00_2002);
            }
            assert_eq!(r.width_errors(), 0);
        }
    }
}

#[test]
fn operand_size_lengths_match_only_that_size() {
    for v in variants() {
        for len in [1u8, 2, 4, 8] {
            let r = regs(v);
            let b = backend(&r);
            let a = 0x0c00_1000u32;
            arm(
                &b,
                &BreakpointAttr::watch(u64::from(a), u64::from(len), Access::WRITE),
            )
            .unwrap();
            assert!(run(&r, &b, write(a, len)).is_some(), "{v:?} len {len}");
            for other in [1u8, 2, 4, 8].into_iter().filter(|&s| s != len) {
                // The hardware compares the operand size: other sizes miss.
                let at = a & !(u32::from(other) - 1);
                assert!(
                    run(&r, &b, write(at, other)).is_none(),
                    "{v:?} len {len} size {other}"
                );
            }
            // The next unit does not match.
            assert!(run(&r, &b, write(a + u32::from(len), len)).is_none());
        }
    }
}

#[test]
fn any_size_lengths_match_every_overlapping_access_on_sh4a() {
    for v in [sh4a(2), sh4a(4)] {
        for len in [1u32, 2, 4, 8] {
            let r = regs(v);
            let b = backend(&r).with_policies(
                SizePolicy::AnySize,
                RangePolicy::Split,
                BreakTiming::Before,
            );
            let a = 0x0c00_1010u32;
            arm(
                &b,
                &BreakpointAttr::watch(u64::from(a), u64::from(len), Access::RW),
            )
            .unwrap();
            for size in [1u32, 2, 4, 8] {
                for at in (a - 16..a + 24).step_by(size as usize) {
                    let overlaps = at < a + len && a < at + size;
                    let hit = run(&r, &b, read(at, size as u8)).is_some();
                    assert_eq!(hit, overlaps, "{v:?} len {len} access {at:#x}/{size}");
                }
            }
        }
    }
}

#[test]
fn any_size_on_sh4_only_for_single_bytes() {
    let e = Encoder::new(sh7750()).size_policy(SizePolicy::AnySize);
    assert!(e
        .encode(&BreakpointAttr::watch(0x1000, 1, Access::READ))
        .is_ok());
    assert_eq!(
        e.encode(&BreakpointAttr::watch(0x1000, 4, Access::READ)),
        Err(Error::UnsupportedLength { len: 4 })
    );
    // A byte watch with no size condition catches the longword containing it.
    let r = regs(sh7750());
    let b = backend(&r).with_policies(SizePolicy::AnySize, RangePolicy::Split, BreakTiming::Before);
    arm(&b, &BreakpointAttr::watch(0x1002, 1, Access::READ)).unwrap();
    assert!(run(&r, &b, read(0x1000, 4)).is_some());
    assert!(run(&r, &b, read(0x1003, 1)).is_none());
}

#[test]
fn instruction_break_after_execution() {
    for v in variants() {
        let r = regs(v);
        let b = backend(&r).with_policies(
            SizePolicy::OperandSize,
            RangePolicy::Split,
            BreakTiming::After,
        );
        let enc = arm(&b, &BreakpointAttr::exec(0x8c01_0000)).unwrap();
        assert_eq!(enc.ty, BpType::Inst);
        assert_eq!(
            (enc.pieces[0].hw_addr, enc.pieces[0].hw_len),
            (0x8c01_0000, 2)
        );
        // Operand accesses to the same address do not fire an instruction break.
        assert!(run(&r, &b, read(0x8c01_0000, 2)).is_none());
        assert!(run(&r, &b, fetch(0x8c01_0002)).is_none());
        let d = run(&r, &b, fetch(0x8c01_0000)).expect("break");
        assert_eq!(fired_mask(&d), 1);
        assert_eq!(
            d.ip, 0x8c01_0002,
            "{v:?}: after execution SPC is the next instruction"
        );
        assert_eq!(d.addr, 0x8c01_0000);
        assert_eq!(d.access, Access::EXEC);
        // Executing it again fires again: nothing was left disabled.
        assert!(run(&r, &b, fetch(0x8c01_0000)).is_some());
        assert_eq!(r.width_errors(), 0);
    }
}

#[test]
fn instruction_break_before_execution_steps_over_itself() {
    for v in variants() {
        let r = regs(v);
        let b = backend(&r);
        arm(&b, &BreakpointAttr::exec(0x8c01_0000)).unwrap();
        // First fetch: break before the instruction runs, SPC = the instruction.
        let d = run(&r, &b, fetch(0x8c01_0000)).expect("break");
        assert_eq!(fired_mask(&d), 1);
        assert_eq!(d.ip, 0x8c01_0000);
        // Returning re-executes it: the channel now breaks after execution and
        // that break is the step-over completing, not a hit.
        let d = run(&r, &b, fetch(0x8c01_0000)).expect("step-over break");
        assert_eq!(d.fired, hwbp_core::Fired::None, "{v:?}");
        assert_eq!(d.resume, Resume::RETURN);
        // The channel is back to before-execution: the next pass hits again.
        assert_eq!(b.read_channel(0).unwrap().timing, BreakTiming::Before);
        let d = run(&r, &b, fetch(0x8c01_0000)).expect("break");
        assert_eq!((fired_mask(&d), d.ip), (1, 0x8c01_0000));
    }
}

#[test]
fn masked_power_of_two_ranges() {
    // SH-4A: any aligned power of two; SH-4: 1 KiB, 4 KiB, 64 KiB, 1 MiB.
    for (v, len) in [
        (sh4a(2), 0x100u32),
        (sh4a(2), 0x10),
        (sh7750(), 0x400),
        (sh7750(), 0x1_0000),
    ] {
        let r = regs(v);
        let b = backend(&r);
        let a = 0x0c10_0000u32;
        let enc = arm(
            &b,
            &BreakpointAttr::watch(u64::from(a), u64::from(len), Access::WRITE),
        )
        .unwrap();
        assert_eq!(enc.weight(), 1);
        assert_eq!(
            (enc.pieces[0].hw_addr, enc.pieces[0].hw_len),
            (u64::from(a), u64::from(len))
        );
        for (at, size, hit) in [
            (a, 4u8, true),
            (a + len - 1, 1, true),
            (a + len / 2, 2, true),
            (a + len - 8, 8, true),
            (a + len, 1, false),
            (a - 1, 1, false),
            (a - 8, 8, false),
        ] {
            assert_eq!(
                run(&r, &b, write(at, size)).is_some(),
                hit,
                "{v:?} len {len:#x} at {at:#x}"
            );
        }
        assert!(run(&r, &b, read(a, 4)).is_none());
    }
}

#[test]
fn split_ranges_use_several_channels() {
    // 0x30 bytes at 0x1000 = 0x20 @ 0x1000 + 0x10 @ 0x1020 on SH-4A.
    let attr = BreakpointAttr::watch(0x1000, 0x30, Access::READ);
    let r = regs(sh4a(2));
    let b = backend(&r);
    let enc = arm(&b, &attr).unwrap();
    assert_eq!(enc.weight(), 2);
    let ranges: Vec<_> = enc.pieces.iter().map(|p| (p.hw_addr, p.hw_len)).collect();
    assert_eq!(ranges, [(0x1000, 0x20), (0x1020, 0x10)]);
    assert_eq!(fired_mask(&run(&r, &b, read(0x1004, 4)).unwrap()), 0b01);
    assert_eq!(fired_mask(&run(&r, &b, read(0x102c, 4)).unwrap()), 0b10);
    assert!(run(&r, &b, read(0x1030, 4)).is_none());
    // With one channel the same region does not fit.
    assert_eq!(
        Encoder::new(sh4a(1)).encode(&attr),
        Err(Error::RangeTooLarge {
            weight: 2,
            slots: 1
        })
    );
    // 3 pieces need a part with at least 3 channels.
    let three = BreakpointAttr::watch(0x1000, 0x38, Access::READ);
    assert_eq!(
        Encoder::new(sh4a(2)).encode(&three),
        Err(Error::RangeTooLarge {
            weight: 3,
            slots: 2
        })
    );
    let r4 = regs(sh4a(4));
    let b4 = backend(&r4);
    assert_eq!(arm(&b4, &three).unwrap().weight(), 3);
    assert_eq!(fired_mask(&run(&r4, &b4, read(0x1034, 4)).unwrap()), 0b100);
    // SH-4 cannot mask 256 bytes: one channel per byte would be needed.
    assert!(matches!(
        Encoder::new(sh7750()).encode(&BreakpointAttr::watch(0x1000, 0x100, Access::READ)),
        Err(Error::RangeTooLarge { slots: 2, .. })
    ));
}

#[test]
fn cover_and_refuse_policies() {
    let attr = BreakpointAttr::watch(0x1003, 10, Access::WRITE);
    let cover = Encoder::new(sh4a(2)).range_policy(RangePolicy::Cover);
    let enc = cover.encode(&attr).unwrap();
    assert_eq!(enc.weight(), 1);
    // The piece says what the hardware really matches: 16 bytes at 0x1000.
    assert_eq!((enc.pieces[0].hw_addr, enc.pieces[0].hw_len), (0x1000, 16));
    // On SH-4 the smallest maskable block is 1 KiB.
    let enc = Encoder::new(sh7750())
        .range_policy(RangePolicy::Cover)
        .encode(&attr)
        .unwrap();
    assert_eq!(
        (enc.pieces[0].hw_addr, enc.pieces[0].hw_len),
        (0x1000, 0x400)
    );
    // Run the SH-4A cover through the model: hits where the hardware matches.
    let r = regs(sh4a(2));
    let b = backend(&r).with_policies(
        SizePolicy::OperandSize,
        RangePolicy::Cover,
        BreakTiming::Before,
    );
    arm(&b, &attr).unwrap();
    assert!(
        run(&r, &b, write(0x1000, 1)).is_some(),
        "outside the request, inside the block"
    );
    assert!(run(&r, &b, write(0x1010, 1)).is_none());
    assert_eq!(
        Encoder::new(sh4a(2))
            .range_policy(RangePolicy::Refuse)
            .encode(&attr),
        Err(Error::UnsupportedLength { len: 10 })
    );
    // A region that straddles 0x8000_0000 would need the whole 4 GiB.
    assert_eq!(
        cover.encode(&BreakpointAttr::watch(0x7FFF_FFFC, 8, Access::WRITE)),
        Err(Error::Misaligned {
            addr: 0x7FFF_FFFC,
            align: 8
        })
    );
    assert_eq!(
        cover.encode(&BreakpointAttr::watch(0x7FFF_FFFF, 3, Access::WRITE)),
        Err(Error::UnsupportedLength { len: 3 })
    );
}

#[test]
fn rules_are_typed_errors() {
    let e = Encoder::new(sh4a(2));
    assert_eq!(
        e.encode(&BreakpointAttr::watch(0x1002, 4, Access::READ)),
        Err(Error::Misaligned {
            addr: 0x1002,
            align: 4
        })
    );
    assert_eq!(
        e.encode(&BreakpointAttr::watch(0x1004, 8, Access::READ)),
        Err(Error::Misaligned {
            addr: 0x1004,
            align: 8
        })
    );
    assert_eq!(
        e.encode(&BreakpointAttr::exec(0x1001)),
        Err(Error::Misaligned {
            addr: 0x1001,
            align: 2
        })
    );
    assert_eq!(
        e.encode(&BreakpointAttr::watch(0xFFFF_FFFF, 2, Access::READ)),
        Err(Error::AddressOverflow)
    );
    assert_eq!(
        e.encode(&BreakpointAttr::watch(0x1_0000_0000, 1, Access::READ)),
        Err(Error::AddressOverflow)
    );
    assert_eq!(
        e.encode(&BreakpointAttr::watch(0x1000, 0, Access::READ)),
        Err(Error::ZeroLength)
    );
    assert_eq!(
        e.encode(&BreakpointAttr::watch(0x1000, 4, Access::empty())),
        Err(Error::NoAccess)
    );
    assert_eq!(
        e.encode(&BreakpointAttr::watch(
            0x1000,
            4,
            Access::EXEC | Access::READ
        )),
        Err(Error::ExecWithData)
    );
    assert_eq!(
        e.encode(&BreakpointAttr::watch(0x8000_0000, 4, Access::WRITE).user_only()),
        Err(Error::KernelAddress)
    );
    assert!(e
        .encode(&BreakpointAttr::watch(0x7FFF_FFFC, 4, Access::WRITE).user_only())
        .is_ok());
    assert_eq!(e.address_space(0x7FFF_FFFF, 1), AddressSpace::User);
    assert_eq!(e.address_space(0x7FFF_FFFF, 2), AddressSpace::Kernel);
    assert_eq!(e.address_space(0x8c00_0000, 4), AddressSpace::Kernel);
    assert_eq!(
        e.address_space(0xFFFF_FFFF_FFFF_FFFF, 1),
        AddressSpace::Kernel
    );
}

#[test]
fn instruction_ranges() {
    // 64 bytes of code on SH-4A: one masked channel; every instruction inside fires.
    let r = regs(sh4a(2));
    let b = backend(&r).with_policies(
        SizePolicy::OperandSize,
        RangePolicy::Split,
        BreakTiming::After,
    );
    let enc = arm(&b, &BreakpointAttr::exec(0x8c00_0040).len(64)).unwrap();
    assert_eq!(enc.weight(), 1);
    assert!(run(&r, &b, fetch(0x8c00_0040)).is_some());
    assert!(run(&r, &b, fetch(0x8c00_007e)).is_some());
    assert!(run(&r, &b, fetch(0x8c00_0080)).is_none());
    // A 3-byte request covers two instructions.
    let enc = Encoder::new(sh7750())
        .encode(&BreakpointAttr::exec(0x100).len(3))
        .unwrap();
    assert_eq!(enc.pieces.iter().map(|p| p.hw_len).sum::<u64>(), 4);
}

#[test]
fn runtime_channel_counts() {
    for n in [1u8, 2, 3, 4, 8, 16] {
        let r = regs(sh4a(n));
        let b: Backend<'_> = backend(&r);
        assert_eq!(b.slot_counts(), hwbp_core::SlotCounts::Shared(n));
        // One byte watch per channel, each on its own address.
        let mut img = hwbp_core::Image::empty(b.slot_counts());
        for i in 0..n {
            let enc = b
                .encode(&BreakpointAttr::watch(
                    0x2000 + u64::from(i) * 8,
                    1,
                    Access::WRITE,
                ))
                .unwrap();
            img.pools[0][usize::from(i)] = enc.pieces[0].slot;
        }
        b.install(0, &image_of(&b), &img);
        for i in 0..n {
            let d = run(&r, &b, write(0x2000 + u32::from(i) * 8, 1)).expect("hit");
            assert_eq!(fired_mask(&d), 1 << i, "{n} channels, channel {i}");
        }
        assert!(run(&r, &b, write(0x2000 + u32::from(n) * 8, 1)).is_none());
    }
}

/// Fetch `pc` and check that it breaks before execution on channels `mask`.
fn breaks_before(r: &hwbp_sh::model::Model, b: &Backend<'_>, pc: u32, mask: u32) {
    let d = run(r, b, fetch(pc)).expect("break");
    assert_eq!((fired_mask(&d), d.ip), (mask, u64::from(pc)));
}

#[test]
fn abandoned_step_over_does_not_swallow_the_next_hit() {
    for v in variants() {
        let r = regs(v);
        let b = backend(&r);
        // A before-execution instruction range (1 KiB: SH-4 BAMR can mask it).
        let enc = arm(&b, &BreakpointAttr::watch(0x8c01_0000, 0x400, Access::EXEC)).unwrap();
        assert_eq!(enc.weight(), 1, "{v:?}");
        breaks_before(&r, &b, 0x8c01_0000, 1);
        // The handler does not resume at 0x8c01_0000 (PC changed, task
        // killed). Later another instruction of the range runs: the channel
        // is still in after-execution mode, and its break is a real hit.
        let d = run(&r, &b, fetch(0x8c01_0004)).expect("break");
        assert_eq!(fired_mask(&d), 1, "{v:?}: hit not lost");
        assert_eq!((d.ip, d.resume), (0x8c01_0006, Resume::RETURN));
        // Back to before-execution: the next pass breaks before again.
        assert_eq!(b.read_channel(0).unwrap().timing, BreakTiming::Before);
        breaks_before(&r, &b, 0x8c01_0008, 1);
        // Resuming there completes that step normally.
        let d = run(&r, &b, fetch(0x8c01_0008)).expect("step end");
        assert_eq!(d.fired, hwbp_core::Fired::None);
        assert_eq!(b.read_channel(0).unwrap().timing, BreakTiming::Before);
        assert_eq!(r.width_errors(), 0);
    }
}

#[test]
fn stepping_a_branch_or_a_delay_slot_counts_one_hit() {
    for v in variants() {
        let r = regs(v);
        let b = backend(&r);
        // A taken branch: its after-execution break saves the destination,
        // not 0x8c01_0002. The channel matches that one instruction only, so
        // this is the end of the step.
        arm(&b, &BreakpointAttr::exec(0x8c01_0000)).unwrap();
        breaks_before(&r, &b, 0x8c01_0000, 1);
        r.raise_flags(1);
        let d = b.decode(0, &hwbp_sh::ShException::user_break(0x8c02_0000));
        assert_eq!(
            d.fired,
            hwbp_core::Fired::None,
            "{v:?}: branch counted twice"
        );
        assert_eq!(b.read_channel(0).unwrap().timing, BreakTiming::Before);
        // An instruction in a delay slot: the before-execution break saves
        // the branch's address, the after-execution one the branch's
        // destination (SH-4A manual, program counter value saved).
        let (branch, slot, dest) = (0x8c03_0000u32, 0x8c03_0002u32, 0x8c04_0000u32);
        let r = regs(v);
        let b = backend(&r);
        arm(&b, &BreakpointAttr::exec(u64::from(slot))).unwrap();
        r.raise_flags(1);
        let d = b.decode(0, &hwbp_sh::ShException::user_break(branch));
        assert_eq!(fired_mask(&d), 1, "{v:?}: the hit");
        r.raise_flags(1);
        let d = b.decode(0, &hwbp_sh::ShException::user_break(dest));
        assert_eq!(
            d.fired,
            hwbp_core::Fired::None,
            "{v:?}: delay slot counted twice"
        );
        assert_eq!(b.read_channel(0).unwrap().timing, BreakTiming::Before);
    }
}

#[test]
fn new_step_elsewhere_abandons_the_pending_one() {
    for v in variants() {
        let r = regs(v);
        let b = backend(&r);
        let e0 = b.encode(&BreakpointAttr::exec(0x8c01_0000)).unwrap();
        let e1 = b.encode(&BreakpointAttr::exec(0x8c03_0000)).unwrap();
        let mut img = hwbp_core::Image::empty(b.slot_counts());
        img.pools[0][0] = e0.pieces[0].slot;
        img.pools[0][1] = e1.pieces[0].slot;
        b.install(0, &image_of(&b), &img);
        breaks_before(&r, &b, 0x8c01_0000, 1);
        // Not resumed there; the other breakpoint is reached first.
        breaks_before(&r, &b, 0x8c03_0000, 2);
        assert_eq!(b.read_channel(0).unwrap().timing, BreakTiming::Before);
        assert_eq!(b.read_channel(1).unwrap().timing, BreakTiming::After);
        // Channel 0 breaks before execution again next time.
        breaks_before(&r, &b, 0x8c01_0000, 1);
    }
}
