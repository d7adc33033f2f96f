//! Arm: exception syndromes (AArch64 ESR/FAR/ELR, AArch32 FSR/DFAR/DBGDSCR),
//! ID register decoding (ID_AA64DFR0_EL1, DBGDIDR) and the encoder, fed
//! arbitrary values. Decoded slot counts are always usable.
#![no_main]

use hwbp_arm64::aarch32::{Aarch32Exception, AbortKind};
use hwbp_arm64::{Aarch64Exception, Dbgdidr, Encoder, Flavour, IdAa64Dfr0};
use hwbp_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let _ = Aarch64Exception {
        esr: b.u64(),
        far: b.u64(),
        elr: b.u64(),
    }
    .event();
    let kind = if b.bool() {
        AbortKind::Data
    } else {
        AbortKind::Prefetch
    };
    let _ = Aarch32Exception {
        kind,
        fsr: b.u32(),
        far: b.u32(),
        dscr: b.u32(),
        pc: b.u32(),
    }
    .event();
    if let Ok(c) = IdAa64Dfr0(b.u64()).slot_counts() {
        assert!(c.validate().is_ok());
    }
    let didr = Dbgdidr(b.u32());
    if let Ok(c) = didr.slot_counts() {
        assert!(c.validate().is_ok());
    }
    let _ = didr.usable_counts();
    let (i, d) = (b.u8() % 20, b.u8() % 20);
    let enc = match b.u8() % 3 {
        0 => Encoder::aarch64(i, d),
        f => Encoder::new(
            Flavour::Aarch32 {
                kernel_base: b.u32(),
                wide_bas: f == 1,
            },
            i,
            d,
        ),
    };
    let attr = b.attr();
    let _ = enc.encode(&attr);
    let _ = enc.address_space(attr.addr, attr.len);
});
