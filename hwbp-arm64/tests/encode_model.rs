//! The encoder checked by meaning: its register images are run through the
//! software model of the debug hardware, and the tests assert on what fires.

use hwbp_arm64::bcr::{Bcr, El};
use hwbp_arm64::encode::Flavour;
use hwbp_arm64::model::{breakpoint_matches, watchpoint_matches_bas, DataAccess, Fetch};
use hwbp_arm64::wcr::Wcr;
use hwbp_arm64::{ArmSlot, Encoder};
use hwbp_core::{Access, AddressSpace, BpType, BreakpointAttr, Encoding, Error};

fn fires_data(enc: &Encoding<ArmSlot>, acc: &DataAccess, wide: bool) -> bool {
    enc.pieces
        .iter()
        .any(|p| watchpoint_matches_bas(p.slot.value, Wcr(p.slot.ctrl), acc, wide))
}

fn fires_exec(enc: &Encoding<ArmSlot>, f: &Fetch) -> bool {
    enc.pieces
        .iter()
        .any(|p| breakpoint_matches(p.slot.value, Bcr(p.slot.ctrl), f))
}

fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    a < b + blen && b < a + alen
}

/// Every access of 1, 2, 4, 8 or 16 bytes, load or store, in a window around the
/// region: the encoded watchpoint fires exactly when the access touches the
/// region and its kind is watched.
fn check_exact(enc: &Encoder, addr: u64, len: u64, access: Access, wide: bool) {
    let e = enc
        .encode(&BreakpointAttr::watch(addr, len, access))
        .unwrap();
    assert_eq!(e.ty, BpType::Data);
    let lo = addr.saturating_sub(24);
    let hi = addr + len + 24;
    for a in lo..hi {
        for size in [1, 2, 4, 8, 16] {
            for write in [false, true] {
                let acc = DataAccess {
                    addr: a,
                    size,
                    write,
                    el: El::El1,
                };
                let kind_ok = if write {
                    access.contains(Access::WRITE)
                } else {
                    access.contains(Access::READ)
                };
                let want = kind_ok && overlaps(a, size, addr, len);
                assert_eq!(
                    fires_data(&e, &acc, wide),
                    want,
                    "region {addr:#x}+{len} {access:?}: access {a:#x}+{size} write={write}"
                );
            }
        }
    }
    // The reported hardware ranges tile the region exactly.
    let mut next = addr;
    for p in &e.pieces {
        assert_eq!(p.hw_addr, next);
        next = p.hw_addr + p.hw_len;
    }
    assert_eq!(next, addr + len);
}

#[test]
fn watchpoints_fire_exactly_on_their_region() {
    let a64 = Encoder::aarch64(6, 16);
    let a32 = Encoder::aarch32(6, 16);
    let narrow = Encoder::new(
        Flavour::Aarch32 {
            kernel_base: 0xC000_0000,
            wide_bas: false,
        },
        6,
        16,
    );
    let regions: &[(u64, u64)] = &[
        (0x1000, 1),
        (0x1007, 1),
        (0x1003, 2),
        (0x1004, 4),
        (0x1000, 8),
        (0x1006, 4),
        (0x1004, 8),
        (0x1001, 7),
        (0x1000, 16),
        (0x1010, 48),
        (0x1003, 0x21),
        (0x1000, 0x100),
        (0x1008, 0x38),
    ];
    for &(addr, len) in regions {
        for access in [Access::READ, Access::WRITE, Access::RW] {
            check_exact(&a64, addr, len, access, true);
            check_exact(&a32, addr, len, access, true);
            check_exact(&narrow, addr, len, access, false);
        }
    }
}

#[test]
fn large_masked_regions_fire_across_their_whole_range() {
    let enc = Encoder::aarch64(6, 4);
    for shift in [4u32, 12, 20, 31] {
        let size = 1u64 << shift;
        let addr = 3 * size; // naturally aligned
        let e = enc
            .encode(&BreakpointAttr::watch(addr, size, Access::WRITE))
            .unwrap();
        assert_eq!(e.weight(), 1, "2^{shift}");
        assert_eq!((e.pieces[0].hw_addr, e.pieces[0].hw_len), (addr, size));
        let st = |a: u64| DataAccess {
            addr: a,
            size: 1,
            write: true,
            el: El::El1,
        };
        assert!(fires_data(&e, &st(addr), true));
        assert!(fires_data(&e, &st(addr + size / 2 + 3), true));
        assert!(fires_data(&e, &st(addr + size - 1), true));
        assert!(!fires_data(&e, &st(addr - 1), true));
        assert!(!fires_data(&e, &st(addr + size), true));
        // Loads do not fire a store watchpoint.
        assert!(!fires_data(
            &e,
            &DataAccess {
                write: false,
                ..st(addr)
            },
            true
        ));
    }
}

#[test]
fn split_mask_refuse_decision_table() {
    // (addr, len) -> weight with 4 watchpoints, or the refusal.
    let enc = Encoder::aarch64(6, 4);
    let table: &[(u64, u64, Result<u8, Error>)] = &[
        (0x1000, 1, Ok(1)),
        (0x1000, 8, Ok(1)),
        (0x1002, 6, Ok(1)),
        (0x1000, 16, Ok(1)),
        (0x1000, 0x1000, Ok(1)),
        (0x8000_0000, 0x8000_0000, Ok(1)),
        (0x1007, 2, Ok(2)),
        (0x1004, 8, Ok(2)),
        (0x1000, 24, Ok(2)),
        (0x1000, 0x1008, Ok(2)),
        (0x1004, 16, Ok(3)),
        (0x1003, 0x20, Ok(4)),
        (0x8000_0000, 0x1_0000_0000, Ok(2)),
        (
            0x1000,
            0x1_0000_0000,
            Err(Error::RangeTooLarge {
                weight: 21,
                slots: 4,
            }),
        ),
        (0x1001, 0x20, Ok(4)),
        (
            0x1001,
            0x30,
            Err(Error::RangeTooLarge {
                weight: 5,
                slots: 4,
            }),
        ),
        (
            0x1000,
            0x3f8,
            Err(Error::RangeTooLarge {
                weight: 7,
                slots: 4,
            }),
        ),
        (
            0x1001,
            0x1000,
            Err(Error::RangeTooLarge {
                weight: 11,
                slots: 4,
            }),
        ),
        (
            0x0,
            0x1_0000_0000_0000,
            Err(Error::RangeTooLarge {
                weight: 255,
                slots: 4,
            }),
        ),
    ];
    for &(addr, len, want) in table {
        let got = enc
            .encode(&BreakpointAttr::watch(addr, len, Access::RW))
            .map(|e| e.weight());
        assert_eq!(got, want, "{addr:#x}+{len:#x}");
    }
}

#[test]
fn aarch64_breakpoints() {
    let enc = Encoder::aarch64(2, 4);
    let e = enc.encode(&BreakpointAttr::exec(0x40_1000)).unwrap();
    assert_eq!((e.ty, e.weight()), (BpType::Inst, 1));
    assert_eq!((e.pieces[0].hw_addr, e.pieces[0].hw_len), (0x40_1000, 4));
    let f = |pc: u64| Fetch { pc, el: El::El1 };
    assert!(fires_exec(&e, &f(0x40_1000)));
    assert!(!fires_exec(&e, &f(0x40_0ffc)));
    assert!(!fires_exec(&e, &f(0x40_1004)));
    // Two instructions: two registers; three exceed the two breakpoints.
    let two = enc.encode(&BreakpointAttr::exec(0x40_1000).len(8)).unwrap();
    assert_eq!(two.weight(), 2);
    assert!(fires_exec(&two, &f(0x40_1004)) && !fires_exec(&two, &f(0x40_1008)));
    assert_eq!(
        enc.encode(&BreakpointAttr::exec(0x40_1000).len(12)),
        Err(Error::RangeTooLarge {
            weight: 3,
            slots: 2
        })
    );
    // Compat (AArch32 EL0) T32 halfword breakpoints: length 2, 2-byte aligned.
    let t32 = enc
        .encode(&BreakpointAttr::exec(0x1002).len(2).user_only())
        .unwrap();
    assert_eq!(
        (
            t32.pieces[0].hw_addr,
            t32.pieces[0].hw_len,
            t32.pieces[0].slot.value
        ),
        (0x1002, 2, 0x1000)
    );
    let user = |pc: u64| Fetch { pc, el: El::El0 };
    assert!(fires_exec(&t32, &user(0x1002)) && !fires_exec(&t32, &user(0x1000)));
    assert!(!fires_exec(&t32, &f(0x1002)), "EL0 only");
    // Not user-only: EL1 code is A64, where a halfword BAS is CONSTRAINED
    // UNPREDICTABLE.
    for bp in [
        BreakpointAttr::exec(0x1002),
        BreakpointAttr::exec(0x1000),
        BreakpointAttr::exec(0xffff_8000_0000_1000),
        BreakpointAttr::exec(0x1000).exclude_user(true),
    ] {
        assert_eq!(
            enc.encode(&bp.len(2)),
            Err(Error::UnsupportedLength { len: 2 }),
            "{bp:?}"
        );
    }
    assert_eq!(
        enc.encode(&BreakpointAttr::exec(0x1001).len(2).user_only()),
        Err(Error::Misaligned {
            addr: 0x1001,
            align: 2
        })
    );
    for addr in [0x40_1001, 0x40_1002, 0x40_1003] {
        assert_eq!(
            enc.encode(&BreakpointAttr::exec(addr)),
            Err(Error::Misaligned { addr, align: 4 })
        );
    }
}

#[test]
fn aarch32_breakpoints_arm_and_thumb() {
    let enc = Encoder::aarch32(6, 4);
    let f = |pc: u64| Fetch { pc, el: El::El1 };
    // A32 at a word: BAS 0b1111 matches the word's instruction; the hardware
    // range also covers the second halfword (a T32 instruction there), which the
    // core filters because it is outside the 1-byte region.
    let arm = enc.encode(&BreakpointAttr::exec(0x8000)).unwrap();
    assert_eq!((arm.pieces[0].hw_addr, arm.pieces[0].hw_len), (0x8000, 4));
    assert!(fires_exec(&arm, &f(0x8000)) && fires_exec(&arm, &f(0x8002)));
    assert!(!fires_exec(&arm, &f(0x8004)) && !fires_exec(&arm, &f(0x7ffc)));
    // T32 halfwords, length 2: exactly that halfword.
    let lo = enc.encode(&BreakpointAttr::exec(0x8000).len(2)).unwrap();
    assert!(fires_exec(&lo, &f(0x8000)) && !fires_exec(&lo, &f(0x8002)));
    assert_eq!(Bcr(lo.pieces[0].slot.ctrl).bas(), 0b0011);
    let hi = enc.encode(&BreakpointAttr::exec(0x8002).len(2)).unwrap();
    assert!(fires_exec(&hi, &f(0x8002)) && !fires_exec(&hi, &f(0x8000)));
    assert_eq!((hi.pieces[0].hw_addr, hi.pieces[0].hw_len), (0x8002, 2));
    assert_eq!(hi.pieces[0].slot.value, 0x8000, "BVR is word aligned");
    // A T32 instruction at a halfword, default length 1.
    let t = enc.encode(&BreakpointAttr::exec(0x8006)).unwrap();
    assert!(fires_exec(&t, &f(0x8006)) && !fires_exec(&t, &f(0x8004)));
    // A 32-bit T32 instruction straddling two words: two registers.
    let wide = enc.encode(&BreakpointAttr::exec(0x8002).len(4)).unwrap();
    assert_eq!(wide.weight(), 2);
    assert_eq!(
        enc.encode(&BreakpointAttr::exec(0x8001)),
        Err(Error::Misaligned {
            addr: 0x8001,
            align: 2
        })
    );
}

#[test]
fn privilege_filter_from_excludes() {
    for enc in [Encoder::aarch64(2, 2), Encoder::aarch32(2, 2)] {
        let base = BreakpointAttr::watch(0x1000, 4, Access::RW);
        let acc = |el| DataAccess {
            addr: 0x1000,
            size: 4,
            write: true,
            el,
        };
        let both = enc.encode(&base).unwrap();
        assert!(fires_data(&both, &acc(El::El0), true) && fires_data(&both, &acc(El::El1), true));
        let user = enc.encode(&base.user_only()).unwrap();
        assert!(fires_data(&user, &acc(El::El0), true) && !fires_data(&user, &acc(El::El1), true));
        let kernel = enc.encode(&base.exclude_user(true)).unwrap();
        assert!(
            !fires_data(&kernel, &acc(El::El0), true) && fires_data(&kernel, &acc(El::El1), true)
        );
        let bp = BreakpointAttr::exec(0x2000);
        let f = |el| Fetch { pc: 0x2000, el };
        let ub = enc.encode(&bp.user_only()).unwrap();
        assert!(fires_exec(&ub, &f(El::El0)) && !fires_exec(&ub, &f(El::El1)));
        let kb = enc.encode(&bp.exclude_user(true)).unwrap();
        assert!(!fires_exec(&kb, &f(El::El0)) && fires_exec(&kb, &f(El::El1)));
        assert_eq!(
            enc.encode(&base.exclude_user(true).exclude_kernel(true)),
            Err(Error::ExcludesEverything)
        );
    }
}

#[test]
fn address_spaces_and_refusals() {
    let a64 = Encoder::aarch64(2, 2);
    assert_eq!(
        a64.address_space(0x0000_ffff_ffff_f000, 0x1000),
        AddressSpace::User
    );
    assert_eq!(
        a64.address_space(0xffff_0000_0000_1000, 8),
        AddressSpace::Kernel
    );
    // Tagged (TBI) user pointer: bit 55 clear.
    assert_eq!(
        a64.address_space(0x2a00_0000_1234_0000, 8),
        AddressSpace::User
    );
    // A region crossing bit 55 touches kernel addresses.
    assert_eq!(
        a64.address_space(0x007f_ffff_ffff_fff8, 16),
        AddressSpace::Kernel
    );
    assert_eq!(
        a64.encode(&BreakpointAttr::watch(0xffff_8000_0000_0000, 8, Access::WRITE).user_only()),
        Err(Error::KernelAddress)
    );
    assert!(a64
        .encode(&BreakpointAttr::watch(
            0xffff_8000_0000_0000,
            8,
            Access::WRITE
        ))
        .is_ok());
    // Not representable in DBGWVR (bits 63:49 not a copy of bit 48).
    assert_eq!(
        a64.encode(&BreakpointAttr::watch(
            0x0002_0000_0000_0000,
            8,
            Access::WRITE
        )),
        Err(Error::AddressOverflow)
    );
    assert_eq!(
        a64.encode(&BreakpointAttr::watch(
            0x2a00_0000_1234_0000,
            8,
            Access::WRITE
        )),
        Err(Error::AddressOverflow)
    );

    let a32 = Encoder::aarch32(2, 2);
    assert_eq!(a32.address_space(0xbfff_fff8, 8), AddressSpace::User);
    assert_eq!(a32.address_space(0xbfff_fffc, 8), AddressSpace::Kernel);
    assert_eq!(
        a32.encode(&BreakpointAttr::watch(0xc000_0000, 4, Access::READ).user_only()),
        Err(Error::KernelAddress)
    );
    assert_eq!(
        a32.encode(&BreakpointAttr::watch(0xffff_fffe, 4, Access::READ)),
        Err(Error::AddressOverflow)
    );
    let fw = Encoder::new(
        Flavour::Aarch32 {
            kernel_base: 0x8000_0000,
            wide_bas: true,
        },
        2,
        2,
    );
    assert_eq!(fw.address_space(0x8000_0000, 1), AddressSpace::Kernel);

    // Generic refusals pass through.
    assert_eq!(
        a64.encode(&BreakpointAttr::watch(0x1000, 0, Access::READ)),
        Err(Error::ZeroLength)
    );
    assert_eq!(
        a64.encode(&BreakpointAttr::exec(0x1000).access(Access::EXEC | Access::READ)),
        Err(Error::ExecWithData)
    );
}

#[test]
fn encoder_clamps_counts() {
    assert_eq!(
        Encoder::aarch64(40, 17).slot_counts(),
        hwbp_core::SlotCounts::Separate { inst: 16, data: 16 }
    );
    assert_eq!(
        Encoder::aarch64(2, 0).encode(&BreakpointAttr::watch(0x1000, 4, Access::READ)),
        Err(Error::RangeTooLarge {
            weight: 1,
            slots: 0
        })
    );
}
