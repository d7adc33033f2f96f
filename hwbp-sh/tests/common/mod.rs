//! Shared helpers: a backend over the in-memory register file, and a way to
//! run a bus cycle through the UBC model and the backend's decoder.
#![allow(dead_code)]

use core::ops::Deref;

use hwbp_core::{
    Access, Arch, BreakpointAttr, Decoded, Encoding, Error, Fired, Image, Pool, Resume, SlotCounts,
};
use hwbp_sh::model::{BusCycle, Model};
use hwbp_sh::{
    BreakTiming, Part, RangePolicy, ShBackend, ShCpuState, ShException, SizePolicy, UbcBus,
    UbcSlot, Variant,
};

/// The backend on the in-memory register file (what a manager holds).
pub type Ubc<'a> = ShBackend<&'a Model>;
/// The backend driven without a manager, with one CPU's state.
pub type Backend<'a> = Rig<&'a Model>;

/// A backend and the state of `N` CPUs, as a kernel that keeps its own
/// per-CPU state would drive it. A CPU without state is refused the way the
/// manager refuses it (`Manager::cpu_online`: `CpuOutOfRange`, before touching
/// the UBC; `Manager::handle_exception`: `Resume::NOT_OURS`).
pub struct Rig<B: UbcBus, const N: usize = 1> {
    pub ubc: ShBackend<B>,
    pub cpus: [ShCpuState; N],
}

impl<B: UbcBus, const N: usize> Rig<B, N> {
    pub fn new(ubc: ShBackend<B>) -> Self {
        Rig {
            ubc,
            cpus: [const { ShCpuState::new() }; N],
        }
    }

    pub fn with_policies(self, size: SizePolicy, range: RangePolicy, timing: BreakTiming) -> Self {
        Rig {
            ubc: self.ubc.with_policies(size, range, timing),
            cpus: self.cpus,
        }
    }

    pub fn filter_by_address(self, on: bool) -> Self {
        Rig {
            ubc: self.ubc.filter_by_address(on),
            cpus: self.cpus,
        }
    }

    fn cpu(&self, cpu: u16) -> Option<&ShCpuState> {
        self.cpus.get(usize::from(cpu))
    }

    pub fn slot_counts(&self) -> SlotCounts {
        self.ubc.variant().slot_counts()
    }

    pub fn init_cpu(&self, cpu: u16) -> Result<(), Error> {
        let st = self.cpu(cpu).ok_or(Error::CpuOutOfRange { cpu })?;
        self.ubc.init_cpu(cpu, st)
    }

    pub fn install(&self, cpu: u16, current: &Image<UbcSlot>, desired: &Image<UbcSlot>) {
        if let Some(st) = self.cpu(cpu) {
            self.ubc.install(cpu, st, current, desired)
        }
    }

    pub fn decode(&self, cpu: u16, raw: &ShException) -> Decoded {
        match self.cpu(cpu) {
            Some(st) => self.ubc.decode(cpu, st, raw),
            None => Decoded::new(Fired::None, Resume::NOT_OURS)
                .addr(0)
                .ip(u64::from(raw.spc))
                .access(Access::empty()),
        }
    }
}

impl<B: UbcBus, const N: usize> Deref for Rig<B, N> {
    type Target = ShBackend<B>;
    fn deref(&self) -> &ShBackend<B> {
        &self.ubc
    }
}

/// `ShBackend::new` followed by discovery, as `Manager::init` does it.
pub fn discovered(r: &Model) -> Result<Backend<'_>, Error> {
    // SAFETY: the "bus" is an in-memory register file owned by the test.
    let b = unsafe { ShBackend::new(r) };
    b.discover()?;
    Ok(Rig::new(b))
}

/// A backend over a register file for the named variant, discovered.
pub fn with_cpus<const N: usize>(r: &Model, v: Variant) -> Rig<&Model, N> {
    // SAFETY: the "bus" is an in-memory register file owned by the test.
    let b = unsafe { ShBackend::with_variant(r, v) };
    Rig::new(b)
}

pub fn sh7750() -> Variant {
    Variant::sh4(Part::Sh7750)
}

pub fn sh4a(n: u8) -> Variant {
    Variant::sh4a(Part::Other, n).expect("1..=16 channels")
}

pub fn regs(v: Variant) -> Model {
    Model::new(v, 0, 0)
}

pub fn backend(r: &Model) -> Backend<'_> {
    let b = with_cpus(r, r.variant());
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
pub fn run(r: &Model, b: &Backend<'_>, cycle: BusCycle) -> Option<Decoded> {
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
        &ShException {
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
