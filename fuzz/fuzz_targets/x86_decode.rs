//! x86: DR6/DR7 decoding, raw register-image import (ptrace / guest images)
//! and the encoder, fed arbitrary values. An accepted image exports back
//! unchanged and every request it yields encodes. Also the backend's
//! `Arch::decode` over arbitrary DR0–DR3/DR7/DR6 contents: it only reports
//! enabled slots and asks for RF only for an execute slot.
#![no_main]

use hwbp_core::{Access, BreakpointAttr};
use hwbp_core::{Arch, Fired, Resume};
use hwbp_fuzz::Bytes;
use hwbp_x86::model::{Model, ModelRegs};
use hwbp_x86::{
    Condition, DebugReg, Dr6, Dr7, Encoder, Mode, RegisterImage, X86Backend, X86Exception,
};
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

    let regs: ModelRegs<1> = ModelRegs::new(Model::new(mode));
    for n in 0..4 {
        if let Some(r) = DebugReg::addr(n) {
            regs.write(0, r, b.u64());
        }
    }
    let dr7 = b.u32();
    regs.write(0, DebugReg::Dr7, u64::from(dr7));
    let x86 = X86Backend::with_regs(Encoder::new(mode), &regs);
    let d = x86.decode(
        0,
        &hwbp_x86::X86CpuState::new(),
        &X86Exception {
            dr6: b.u64(),
            ip: b.u64(),
        },
    );
    if let Fired::Slots { mask, .. } = d.fired {
        let dr7 = Dr7::from_raw(u64::from(dr7));
        assert_eq!(u32::from(mask) & !u32::from(dr7.enabled_mask()), 0);
        let exec = (0..4).any(|n| mask & (1 << n) != 0 && dr7.condition(n) == Condition::Execute);
        assert_eq!(d.resume == Resume::SET_RESUME_FLAG, exec);
    }
});
