//! x86: DR6/DR7 decoding, raw register-image import (ptrace / guest images)
//! and the encoder, fed arbitrary values. An accepted image exports back
//! unchanged and every request it yields encodes.
#![no_main]

use hwbp_core::{Access, BreakpointAttr};
use hwbp_fuzz::Bytes;
use hwbp_x86::{Dr6, Dr7, Encoder, Mode, RegisterImage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let dr6 = Dr6::from_raw(b.u64());
    let _ = (dr6.slots(), dr6.to_raw());
    let dr7 = Dr7::from_raw(b.u64());
    for n in 0..8 {
        let _ = (dr7.enabled(n), dr7.condition(n), dr7.size(n), dr7.enable(n));
    }
    let _ = dr7.enabled_mask();
    let mode = if b.bool() { Mode::Bits64 } else { Mode::Bits32 };
    let enc = Encoder::new(mode).with_io_breakpoints(b.bool());
    let image = RegisterImage {
        addr: [b.u64(), b.u64(), b.u64(), b.u64()],
        dr7: b.u64(),
    };
    let template = BreakpointAttr::watch(0, 1, Access::WRITE).exclude_kernel(b.bool());
    if let Ok(imp) = enc.import(&image, &template) {
        assert_eq!(imp.export(), image);
        for (_, r) in imp.requests() {
            assert!(enc.encode(&r).is_ok());
        }
    }
    let attr = b.attr();
    let _ = enc.encode(&attr);
    let _ = enc.encode_slot(&attr);
    let _ = enc.address_space(attr.addr, attr.len);
});
