//! Property tests: decoders and the encoder never panic on arbitrary input, and
//! every accepted watchpoint fires exactly on its region in the model.

use hwbp_arm64::aarch32::{Aarch32Exception, AbortKind, Dbgdscr, Fsr};
use hwbp_arm64::bcr::{Bcr, El};
use hwbp_arm64::esr::Esr;
use hwbp_arm64::model::{breakpoint_matches, watchpoint_matches, DataAccess, Fetch};
use hwbp_arm64::region;
use hwbp_arm64::wcr::Wcr;
use hwbp_arm64::{Aarch64Exception, Dbgdidr, Encoder, Flavour, IdAa64Dfr0};
use hwbp_core::{Access, BreakpointAttr, Error, Target, TaskId};
use proptest::prelude::*;

fn any_attr() -> impl Strategy<Value = BreakpointAttr> {
    (
        any::<u64>(),
        prop_oneof![0u64..20, any::<u64>(), (0u32..40).prop_map(|s| 1u64 << s)],
        0u8..16,
        any::<bool>(),
        any::<bool>(),
        0u64..3,
        any::<u16>(),
    )
        .prop_map(|(addr, len, access, xu, xk, period, cpu)| {
            BreakpointAttr::watch(addr, len, Access::from_bits_retain(access))
                .target(if cpu % 3 == 0 {
                    Target::AllCpus
                } else {
                    Target::Task {
                        task: TaskId(7),
                        cpu: Some(cpu),
                    }
                })
                .pinned(true)
                .sample_period(period)
                .inherit(false)
                .disabled(false)
                .exclude_user(xu)
                .exclude_kernel(xk)
        })
}

fn encoders() -> impl Strategy<Value = Encoder> {
    (0u8..20, 0u8..20, 0u8..3, any::<u32>()).prop_map(|(i, d, f, kb)| match f {
        0 => Encoder::aarch64(i, d),
        1 => Encoder::new(
            Flavour::Aarch32 {
                kernel_base: kb,
                wide_bas: true,
            },
            i,
            d,
        ),
        _ => Encoder::new(
            Flavour::Aarch32 {
                kernel_base: kb,
                wide_bas: false,
            },
            i,
            d,
        ),
    })
}

proptest! {
    // Cheap properties: 2000 cases in a plain `cargo test`. PROPTEST_CASES,
    // when set (64 in `cargo xtask test`, 4096 with `--long`), overrides this:
    // proptest applies the variable on top of an explicit config.
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encoder_is_total(enc in encoders(), attr in any_attr()) {
        match enc.encode(&attr) {
            Ok(e) => {
                let counts = enc.slot_counts();
                prop_assert!(e.weight() >= 1);
                prop_assert!(e.weight() <= counts.slots(counts.pool_of(e.ty)));
                prop_assert!(attr.validate(u16::MAX).is_ok());
                // The hardware ranges cover the user region.
                let first = e.pieces.iter().map(|p| p.hw_addr).min().unwrap();
                prop_assert!(first <= attr.addr);
                for p in &e.pieces {
                    prop_assert!(p.hw_len >= 1);
                    prop_assert!(p.slot.enabled());
                }
            }
            Err(err) => {
                prop_assert!(matches!(
                    err,
                    Error::ZeroLength | Error::AddressOverflow | Error::NoAccess | Error::ExecWithData
                        | Error::ExcludesEverything | Error::ZeroSamplePeriod | Error::Misaligned { .. }
                        | Error::UnsupportedLength { .. }
                        | Error::UnsupportedAccess | Error::KernelAddress | Error::RangeTooLarge { .. }
                ), "{:?}", err);
                if let Error::UnsupportedLength { len } = err {
                    // Only a halfword breakpoint that can hit at EL1 on AArch64.
                    prop_assert!(len == 2 && attr.len == 2 && !attr.exclude_kernel);
                    prop_assert_eq!(enc.flavour(), Flavour::Aarch64);
                }
            }
        }
        let _ = enc.address_space(attr.addr, attr.len);
    }

    #[test]
    fn decoders_are_total(esr in any::<u64>(), far in any::<u64>(), elr in any::<u64>(),
                          fsr in any::<u32>(), dscr in any::<u32>(), pc in any::<u32>(), data in any::<bool>()) {
        let _ = Aarch64Exception { esr, far, elr }.event();
        let e = Esr(esr);
        let _ = (e.class(), e.iss(), e.wnr(), e.cm(), e.fnv(), e.fsc(), e.watchpoint_number(), e.comment());
        let kind = if data { AbortKind::Data } else { AbortKind::Prefetch };
        let _ = Aarch32Exception { kind, fsr, far: far as u32, dscr, pc, write: Some(data), thumb: data }.event();
        let _ = (Fsr(fsr).status(), Fsr(fsr).is_debug_event(), Dbgdscr(dscr).moe());
    }

    #[test]
    fn id_decoders_are_total(dfr0 in any::<u64>(), didr in any::<u32>()) {
        let a = IdAa64Dfr0(dfr0);
        match a.slot_counts() {
            Ok(c) => { prop_assert!(c.validate().is_ok()); prop_assert!(a.debug_ver().is_ok()); }
            Err(e) => {
                prop_assert_eq!(e, Error::Hardware(hwbp_core::HardwareError::UnsupportedDebugArch { version: (dfr0 & 0xF) as u8 }));
                prop_assert!(dfr0 & 0xF < 6, "only the reserved values below Armv8 are refused");
            }
        }
        let d = Dbgdidr(didr);
        match d.slot_counts() {
            Ok(c) => prop_assert!(c.validate().is_ok() && d.version().is_supported()),
            Err(e) => {
                let version = ((didr >> 16) & 0xF) as u8;
                prop_assert_eq!(e, Error::Hardware(hwbp_core::HardwareError::UnsupportedDebugArch { version }));
                prop_assert!(matches!(version, 0 | 1 | 2 | 4), "refused {:#x}", version);
            }
        }
    }

    #[test]
    fn model_is_total(v in any::<u64>(), c in any::<u32>(), addr in any::<u64>(), size in 0u64..80, w in any::<bool>()) {
        let _ = watchpoint_matches(v, Wcr(c), &DataAccess { addr, size, write: w, el: El::El1 });
        let _ = breakpoint_matches(v, Bcr(c), &Fetch { pc: addr, el: El::El0 });
    }

    /// Accepted watchpoints fire exactly when an access touches the region.
    #[test]
    fn watchpoints_fire_exactly(addr in 0x1000u64..0x3000, len in 1u64..600,
                                a in 0x0f00u64..0x3400, size in prop_oneof![Just(1u64), Just(2), Just(4), Just(8), Just(16), Just(64)],
                                write in any::<bool>(), rw in 0u8..3) {
        let access = [Access::READ, Access::WRITE, Access::RW][usize::from(rw)];
        let enc = Encoder::aarch64(6, 16);
        let e = enc.encode(&BreakpointAttr::watch(addr, len, access)).unwrap();
        let acc = DataAccess { addr: a, size, write, el: El::El1 };
        let fired = e.pieces.iter().any(|p| watchpoint_matches(p.slot.value, Wcr(p.slot.ctrl), &acc));
        let kind = if write { Access::WRITE } else { Access::READ };
        let want = access.contains(kind) && a < addr + len && addr < a + size;
        prop_assert_eq!(fired, want);
    }

    /// `Chunk::hw_range` is total on arbitrary chunks (it panicked on
    /// `bas` = 0 and on `bits` >= 64): a `Bas` range lies in the 8 bytes
    /// from `base` (wrapping) and spans the selected bytes; a `Mask` range
    /// is the block at `base`, saturated at `u64::MAX`.
    #[test]
    fn chunk_hw_range_is_total(base in any::<u64>(), bas in any::<u8>(), bits in any::<u8>()) {
        let (a, l) = region::Chunk::Bas { base, bas }.hw_range();
        if bas == 0 {
            prop_assert_eq!((a, l), (base, 0));
        } else {
            let lo = bas.trailing_zeros();
            let hi = 7 - bas.leading_zeros();
            prop_assert_eq!(a, base.wrapping_add(u64::from(lo)));
            prop_assert_eq!(l, u64::from(hi - lo + 1));
        }
        let (a, l) = region::Chunk::Mask { base, bits }.hw_range();
        prop_assert_eq!(a, base);
        if bits < 64 {
            prop_assert_eq!(l, 1u64 << bits);
        } else {
            prop_assert_eq!(l, u64::MAX);
        }
    }

    /// The planner is total; an accepted plan tiles the region exactly, in
    /// order, and a refusal reports more registers than were offered.
    #[test]
    fn plan_tiles_or_refuses(addr in any::<u64>(), len in 1u64..(1 << 40), slots in 0u8..20, g in prop_oneof![Just(4u64), Just(8)]) {
        match region::plan(addr, len, g, slots) {
            Ok(chunks) => {
                prop_assert!(!chunks.is_empty() && chunks.len() <= usize::from(slots));
                let mut next = u128::from(addr);
                for c in &chunks {
                    let (a, l) = c.hw_range();
                    prop_assert_eq!(u128::from(a), next);
                    next += u128::from(l);
                }
                prop_assert_eq!(next, u128::from(addr) + u128::from(len));
            }
            Err(Error::RangeTooLarge { weight, slots: s }) => {
                prop_assert_eq!(s, slots);
                prop_assert!(weight > slots.min(16));
            }
            Err(e) => {
                prop_assert_eq!(e, Error::AddressOverflow);
                prop_assert!(addr.checked_add(len - 1).is_none());
            }
        }
    }
}
