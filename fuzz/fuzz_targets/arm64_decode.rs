//! Arm: exception syndromes (AArch64 ESR/FAR/ELR, AArch32 FSR/DFAR/DBGDSCR),
//! ID register decoding (ID_AA64DFR0_EL1, DBGDIDR) and the encoder, fed
//! arbitrary values; and the backend's `Arch::decode` on the register model
//! with arbitrary breakpoints installed. Decoded slot counts are always
//! usable, and a decode only ever names slots the CPU has.
#![no_main]

use hwbp_arm64::aarch32::{Aarch32Exception, AbortKind};
use hwbp_arm64::model::{Model, ModelException, ModelId};
use hwbp_arm64::{
    Aarch64Exception, ArmBackend, ArmCpuState, Dbgdidr, Encoder, Flavour, IdAa64Dfr0, StepMethod,
    AARCH32_KERNEL_BASE,
};
use hwbp_core::{Arch, Fired, Image};
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
        write: [None, Some(false), Some(true)][usize::from(b.u8() % 3)],
        thumb: b.bool(),
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

    // The backend: Cortex-A53-like AArch64 or Cortex-A15-like AArch32 model.
    let a64 = b.bool();
    let arm: ArmBackend<Model> = if a64 {
        ArmBackend::new(
            Model::new(ModelId::Aarch64(0x1030_5106)),
            Flavour::Aarch64,
            StepMethod::SoftwareStep,
        )
    } else {
        ArmBackend::new(
            Model::new(ModelId::Aarch32(0x3515_f021)),
            Flavour::Aarch32 {
                kernel_base: AARCH32_KERNEL_BASE,
                wide_bas: true,
            },
            StepMethod::Mismatch,
        )
    };
    // The per-CPU state a manager would keep (CPUs 0 and 1 of 2).
    let cpus = [ArmCpuState::new(), ArmCpuState::new()];
    let Ok(counts) = arm.discover() else {
        return;
    };
    if arm.init_cpu(0, &cpus[0]).is_err() {
        return;
    }
    let empty = Image::empty(counts);
    let mut img = empty.clone();
    for _ in 0..b.u8() % 4 {
        if let Ok(e) = arm.encode(&b.attr()) {
            let pool = counts.pool_of(e.ty).index();
            for (slot, p) in img.pools[pool].iter_mut().zip(e.pieces.iter()) {
                *slot = p.slot;
            }
        }
    }
    arm.install(0, &cpus[0], &empty, &img);
    while !b.is_empty() {
        let raw = if a64 {
            ModelException::A64(Aarch64Exception {
                esr: b.u64(),
                far: b.u64(),
                elr: b.u64(),
            })
        } else {
            ModelException::A32(Aarch32Exception {
                kind: if b.bool() {
                    AbortKind::Data
                } else {
                    AbortKind::Prefetch
                },
                fsr: b.u32(),
                far: b.u32(),
                dscr: b.u32(),
                pc: b.u32(),
                write: [None, Some(false), Some(true)][usize::from(b.u8() % 3)],
                thumb: b.bool(),
            })
        };
        let cpu = usize::from(b.u8() % 2);
        let d = arm.decode(cpu as u16, &cpus[cpu], &raw);
        if let Fired::Slots { pool, mask } = d.fired {
            let n = counts.slots(pool);
            assert!(n > 0 && u64::from(mask) >> n == 0, "{d:?} on {counts:?}");
        }
    }
});
