//! Property tests: the encoder, decoder and discovery never panic, and every
//! encoding the encoder accepts fires exactly where the model says it should.

mod common;

use common::*;
use hwbp_core::{Access, Arch, BreakpointAttr, Fired, Target};
use hwbp_sh::model::{BusCycle, RegisterFile};
use hwbp_sh::{
    identify, sh4, sh4a, BreakTiming, Encoder, RangePolicy, SizePolicy, UbcException, Variant,
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
        .prop_map(|(addr, len, acc, xk, xu)| BreakpointAttr {
            addr,
            len,
            access: Access::from_bits_retain(acc),
            target: Target::Cpu(0),
            pinned: true,
            sample_period: 1,
            inherit: false,
            disabled: false,
            exclude_user: xu,
            exclude_kernel: xk,
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
    fn identify_never_panics(pvr in any::<u32>(), prr in any::<u32>()) {
        if let Ok(v) = identify(pvr, prr) {
            prop_assert!(v.channels >= 1 && v.channels <= 16);
        }
    }

    #[test]
    fn discovery_never_panics(v in any_variant(), pvr in any::<u32>(), junk in any::<u32>()) {
        let r = RegisterFile::new(v, pvr, 0);
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
        let d = b.decode(cpu, &UbcException { expevt, spc, data_addr: None });
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
        let attr = BreakpointAttr { len, ..BreakpointAttr::exec(addr) };
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
