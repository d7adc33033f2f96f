//! A software backend so that the whole layer runs under `cargo test`.
//!
//! [`Mock`] keeps a register file per CPU, records every register write, and
//! simulates memory accesses and instruction fetches
//! ([`Manager::access`](crate::Manager::access)): the access is matched against the
//! CPU's registers and, when one matches, a debug exception is raised into the
//! core exactly as a trap handler would.
//!
//! Its encoding rules are deliberately simple: a data region is split into
//! naturally aligned power-of-two pieces of at most [`MockConfig::max_piece`]
//! bytes (one register each, with the splitter x86 uses,
//! [`crate::region::Pieces`]), an instruction breakpoint has length 1.

use core::cell::RefCell;

use critical_section::Mutex;
use heapless::Vec;

use crate::arch::{
    AddressSpace, Arch, Decoded, Encoding, Fired, Image, Piece, Pool, Resume, SlotCounts, MAX_SLOTS,
};
use crate::region::Pieces;
use crate::{Access, BpType, BreakpointAttr, Error, Handler, Manager};

/// CPUs the mock's register file covers.
pub const MOCK_CPUS: usize = 128;

/// Register writes remembered in the log (older ones are counted, not kept).
pub const MOCK_LOG: usize = 256;

/// What the mock hardware looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MockConfig {
    /// Register pools.
    pub counts: SlotCounts,
    /// Addresses at or above this are kernel space.
    pub kernel_base: u64,
    /// `true`: exceptions say which slot fired (x86, SH). `false`: only the
    /// address is reported and the core matches it (Arm).
    pub precise: bool,
    /// Largest bytes one register covers (a power of two, 1 to 8).
    pub max_piece: u8,
}

impl MockConfig {
    /// Four shared registers, precise status (like x86).
    pub const X86_LIKE: MockConfig = MockConfig {
        counts: SlotCounts::Shared(4),
        kernel_base: 0xffff_8000_0000_0000,
        precise: true,
        max_piece: 8,
    };
    /// Six instruction and four data registers, address-only reports (like Arm).
    pub const ARM_LIKE: MockConfig = MockConfig {
        counts: SlotCounts::Separate { inst: 6, data: 4 },
        kernel_base: 0xffff_0000_0000_0000,
        precise: false,
        max_piece: 8,
    };
    /// Two shared registers (like an SH-4 UBC).
    pub const SH_LIKE: MockConfig = MockConfig {
        counts: SlotCounts::Shared(2),
        kernel_base: 0x8000_0000,
        precise: true,
        max_piece: 8,
    };
}

/// One mock register: `len == 0` means disabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MockSlot {
    /// First byte matched.
    pub addr: u64,
    /// Bytes matched (0: disabled).
    pub len: u8,
    /// Access kinds matched.
    pub access: Access,
}

impl MockSlot {
    fn matches(&self, addr: u64, len: u64, kind: Access) -> bool {
        if self.len == 0 || !self.access.intersects(kind) {
            return false;
        }
        let (start, end) = (
            u128::from(self.addr),
            u128::from(self.addr) + u128::from(self.len),
        );
        let (a, b) = (u128::from(addr), u128::from(addr) + u128::from(len.max(1)));
        a < end && start < b
    }
}

/// One recorded register write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MockWrite {
    /// CPU written.
    pub cpu: u16,
    /// Pool written.
    pub pool: Pool,
    /// Physical slot written.
    pub slot: u8,
    /// Value written.
    pub value: MockSlot,
}

/// The raw exception the mock raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MockException {
    /// What fired.
    pub fired: Fired,
    /// Address accessed or executed.
    pub addr: u64,
    /// Instruction pointer.
    pub ip: u64,
    /// Access kind.
    pub access: Access,
}

#[derive(Debug)]
struct MockHw {
    regs: [[[MockSlot; MAX_SLOTS]; 2]; MOCK_CPUS],
    writes: [u64; MOCK_CPUS],
    inits: [u32; MOCK_CPUS],
    desync: u64,
    log: Vec<MockWrite, MOCK_LOG>,
}

/// The mock backend. See the [module documentation](self).
#[derive(Debug)]
pub struct Mock {
    config: MockConfig,
    hw: Mutex<RefCell<MockHw>>,
}

impl Mock {
    /// A mock with the given hardware shape.
    pub const fn new(config: MockConfig) -> Self {
        Mock {
            config,
            hw: Mutex::new(RefCell::new(MockHw {
                regs: [[[MockSlot {
                    addr: 0,
                    len: 0,
                    access: Access::empty(),
                }; MAX_SLOTS]; 2]; MOCK_CPUS],
                writes: [0; MOCK_CPUS],
                inits: [0; MOCK_CPUS],
                desync: 0,
                log: Vec::new(),
            })),
        }
    }

    /// The configuration.
    pub fn config(&self) -> MockConfig {
        self.config
    }

    fn with<R>(&self, f: impl FnOnce(&mut MockHw) -> R) -> R {
        critical_section::with(|cs| f(&mut self.hw.borrow_ref_mut(cs)))
    }

    /// Register writes made on `cpu` so far.
    pub fn writes(&self, cpu: u16) -> u64 {
        self.with(|hw| hw.writes.get(usize::from(cpu)).copied().unwrap_or(0))
    }

    /// Times `init_cpu` ran on `cpu`.
    pub fn inits(&self, cpu: u16) -> u32 {
        self.with(|hw| hw.inits.get(usize::from(cpu)).copied().unwrap_or(0))
    }

    /// Installs whose `current` image did not match the mock's registers (the
    /// core lost track of the hardware). Always 0 unless something is wrong.
    pub fn desync(&self) -> u64 {
        self.with(|hw| hw.desync)
    }

    /// The most recent register writes (up to [`MOCK_LOG`]).
    pub fn log(&self) -> Vec<MockWrite, MOCK_LOG> {
        self.with(|hw| hw.log.clone())
    }

    /// The value of one register.
    pub fn register(&self, cpu: u16, pool: Pool, slot: usize) -> Option<MockSlot> {
        self.with(|hw| {
            hw.regs
                .get(usize::from(cpu))?
                .get(pool.index())?
                .get(slot)
                .copied()
        })
    }

    /// Scribble on every register of `cpu`, as an UNKNOWN reset value would.
    pub fn scramble(&self, cpu: u16) {
        self.with(|hw| {
            if let Some(pools) = hw.regs.get_mut(usize::from(cpu)) {
                for (p, regs) in pools.iter_mut().enumerate() {
                    for (s, r) in regs.iter_mut().enumerate() {
                        *r = MockSlot {
                            addr: (p * 64 + s) as u64 * 8,
                            len: 8,
                            access: Access::RW | Access::EXEC,
                        };
                    }
                }
            }
        })
    }

    /// Which registers of `cpu` match an access: (pool, slot mask).
    pub fn matching(&self, cpu: u16, addr: u64, len: u64, kind: Access) -> (Pool, u32) {
        let ty = if kind.contains(Access::EXEC) {
            BpType::Inst
        } else {
            BpType::Data
        };
        let pool = self.config.counts.pool_of(ty);
        let n = usize::from(self.config.counts.slots(pool));
        let mask = self.with(|hw| {
            let Some(regs) = hw
                .regs
                .get(usize::from(cpu))
                .and_then(|p| p.get(pool.index()))
            else {
                return 0;
            };
            regs.iter()
                .take(n)
                .enumerate()
                .filter(|(_, r)| r.matches(addr, len, kind))
                .fold(0u32, |m, (s, _)| m | (1 << s))
        });
        (pool, mask)
    }
}

impl Arch for Mock {
    type Slot = MockSlot;
    type Exception = MockException;

    type CpuState = ();
    const CPU_STATE_INIT: () = ();

    fn discover(&self) -> Result<SlotCounts, Error> {
        self.config.counts.validate()?;
        Ok(self.config.counts)
    }

    fn init_cpu(&self, cpu: u16, _: &()) -> Result<(), Error> {
        self.with(|hw| {
            let c = usize::from(cpu);
            let regs = hw.regs.get_mut(c).ok_or(Error::CpuOutOfRange { cpu })?;
            *regs = [[MockSlot::default(); MAX_SLOTS]; 2];
            if let Some(n) = hw.inits.get_mut(c) {
                *n += 1;
            }
            Ok(())
        })
    }

    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<MockSlot>, Error> {
        let ty = attr.bp_type();
        let mut pieces = Vec::new();
        if ty == BpType::Inst {
            if attr.len != 1 {
                return Err(Error::UnsupportedLength { len: attr.len });
            }
            let _ = pieces.push(Piece {
                slot: MockSlot {
                    addr: attr.addr,
                    len: 1,
                    access: Access::EXEC,
                },
                hw_addr: attr.addr,
                hw_len: 1,
            });
            return Ok(Encoding { ty, pieces });
        }
        let max = u64::from(self.config.max_piece.clamp(1, 8));
        let slots = self.config.counts.slots(self.config.counts.pool_of(ty));
        for (addr, size) in Pieces::new(attr.addr, attr.len, max) {
            let piece = Piece {
                slot: MockSlot {
                    addr,
                    len: size as u8,
                    access: attr.access,
                },
                hw_addr: addr,
                hw_len: size,
            };
            if pieces.push(piece).is_err() {
                return Err(Error::RangeTooLarge {
                    weight: u8::MAX,
                    slots,
                });
            }
        }
        Ok(Encoding { ty, pieces })
    }

    fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        let last = addr.saturating_add(len.saturating_sub(1));
        if last >= self.config.kernel_base {
            AddressSpace::Kernel
        } else {
            AddressSpace::User
        }
    }

    fn install(&self, cpu: u16, _: &(), current: &Image<MockSlot>, desired: &Image<MockSlot>) {
        self.with(|hw| {
            let c = usize::from(cpu);
            let mut out_of_sync = false;
            let mut writes = 0;
            let mut log: Vec<MockWrite, { 2 * MAX_SLOTS }> = Vec::new();
            let Some(regs) = hw.regs.get_mut(c) else {
                return;
            };
            for (p, (cur, want)) in current.pools.iter().zip(desired.pools.iter()).enumerate() {
                for (s, (old, new)) in cur.iter().zip(want.iter()).enumerate() {
                    let Some(reg) = regs.get_mut(p).and_then(|r| r.get_mut(s)) else {
                        continue;
                    };
                    // Slots whose image entry does not change are left alone
                    // (a debugger may own them); a slot about to be written
                    // must hold what the core believed.
                    if old != new {
                        out_of_sync |= *reg != *old;
                        *reg = *new;
                        writes += 1;
                        let _ = log.push(MockWrite {
                            cpu,
                            pool: Pool(p as u8),
                            slot: s as u8,
                            value: *new,
                        });
                    }
                }
            }
            if let Some(w) = hw.writes.get_mut(c) {
                *w += writes;
            }
            hw.desync += u64::from(out_of_sync);
            for w in log {
                if hw.log.is_full() {
                    hw.log.remove(0);
                }
                let _ = hw.log.push(w);
            }
        })
    }

    fn decode(&self, _cpu: u16, _: &(), raw: &MockException) -> Decoded {
        let resume = match raw.fired {
            Fired::None => Resume::NOT_OURS,
            _ if raw.access.contains(Access::EXEC) => Resume::SET_RESUME_FLAG,
            _ => Resume::RETURN,
        };
        Decoded::new(raw.fired, resume)
            .addr(raw.addr)
            .ip(raw.ip)
            .access(raw.access)
    }
}

impl<H: Handler, const CPUS: usize, const EVENTS: usize, const TASKS: usize>
    Manager<Mock, H, CPUS, EVENTS, TASKS>
{
    /// Simulate an access of `len` bytes at `addr` (or an instruction fetch with
    /// [`Access::EXEC`]) on `cpu`, from the instruction at `ip`. If a mock
    /// register matches, the debug exception is raised into
    /// [`Manager::handle_exception`] and its continuation returned.
    pub fn access(&self, cpu: u16, addr: u64, len: u64, kind: Access, ip: u64) -> Option<Resume> {
        let (pool, mask) = self.arch().matching(cpu, addr, len, kind);
        if mask == 0 {
            return None;
        }
        let fired = if self.arch().config().precise {
            Fired::Slots { pool, mask }
        } else {
            Fired::ByAddress { pool }
        };
        Some(self.handle_exception(
            cpu,
            &MockException {
                fired,
                addr,
                ip,
                access: kind,
            },
        ))
    }
}
