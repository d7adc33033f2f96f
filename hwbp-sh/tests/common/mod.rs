//! Shared helpers: a backend over the in-memory register file, and a way to
//! run a bus cycle through the UBC model and the backend's decoder.
#![allow(dead_code)]

use hwbp_core::{Arch, BreakpointAttr, Decoded, Encoding, Error, Image, Pool};
use hwbp_sh::model::{BusCycle, RegisterFile};
use hwbp_sh::{Part, UbcBackend, UbcException, UbcSlot, Variant};

pub type Backend<'a> = UbcBackend<&'a RegisterFile>;

pub fn sh7750() -> Variant {
    Variant::sh4(Part::Sh7750)
}

pub fn sh4a(n: u8) -> Variant {
    Variant::sh4a(Part::Other, n).expect("1..=16 channels")
}

pub fn regs(v: Variant) -> RegisterFile {
    RegisterFile::new(v, 0, 0)
}

pub fn backend(r: &RegisterFile) -> Backend<'_> {
    // SAFETY: the "bus" is an in-memory register file owned by the test.
    let b = unsafe { UbcBackend::new(r, r.variant()) };
    b.reset();
    b
}

/// Install the pieces of `enc` into channels 0.. (everything else disabled).
pub fn install(b: &Backend<'_>, enc: &Encoding<UbcSlot>) {
    let counts = b.slot_counts();
    let current = image_of(b);
    let mut desired = Image::<UbcSlot>::empty(counts);
    for (i, p) in enc.pieces.iter().enumerate() {
        desired.pools[0][i] = p.slot;
    }
    b.install(0, &current, &desired);
}

/// The image the hardware holds now.
pub fn image_of(b: &Backend<'_>) -> Image<UbcSlot> {
    let mut img = Image::<UbcSlot>::empty(b.slot_counts());
    for (i, s) in img.pools[0].iter_mut().enumerate() {
        *s = b.read_channel(i as u8).unwrap_or_default();
    }
    img
}

/// Encode and install one request.
pub fn arm(b: &Backend<'_>, attr: &BreakpointAttr) -> Result<Encoding<UbcSlot>, Error> {
    let enc = b.encode(attr)?;
    install(b, &enc);
    Ok(enc)
}

/// Run one bus cycle through the model; if it raises a user break, decode it
/// as the exception handler would.
pub fn run(r: &RegisterFile, b: &Backend<'_>, cycle: BusCycle) -> Option<Decoded> {
    let out = r.cycle(cycle, 0);
    if !out.brk {
        return None;
    }
    let data_addr = match cycle {
        BusCycle::Fetch { .. } => None,
        BusCycle::Read { addr, .. } | BusCycle::Write { addr, .. } => Some(addr),
    };
    Some(b.decode(
        0,
        &UbcException {
            expevt: 0x1E0,
            spc: out.spc,
            data_addr,
        },
    ))
}

/// The mask of fired channels in a decoded exception (0 for none).
pub fn fired_mask(d: &Decoded) -> u32 {
    match d.fired {
        hwbp_core::Fired::Slots { pool, mask } => {
            assert_eq!(pool, Pool(0), "SuperH has one shared pool");
            mask
        }
        _ => 0,
    }
}

pub fn read(addr: u32, size: u8) -> BusCycle {
    BusCycle::Read {
        pc: 0x8c00_2000,
        addr,
        size,
    }
}

pub fn write(addr: u32, size: u8) -> BusCycle {
    BusCycle::Write {
        pc: 0x8c00_2000,
        addr,
        size,
    }
}

pub fn fetch(pc: u32) -> BusCycle {
    BusCycle::Fetch { pc }
}
