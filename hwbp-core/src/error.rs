//! The one error type of the crate family.
//!
//! Every refusal is a variant of [`Error`] so that a debugger or kernel above
//! hwbp can match on the reason without knowing which backend produced it.
//! Request refusals are generic (the core checks the rules every architecture
//! shares, and backends add theirs with the same variants); why a backend
//! cannot drive the hardware at all is a [`HardwareError`], nested in
//! [`Error::Hardware`]. A refused call never changes any state.

use core::fmt;

/// Why a request was refused.
///
/// Marked `#[non_exhaustive]`: new backends may add reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The region has length zero.
    ZeroLength,
    /// `address + length` does not fit in the address space.
    AddressOverflow,
    /// No access kind was given.
    NoAccess,
    /// Instruction execution was combined with a data access (only R, W, RW and X
    /// are meaningful).
    ExecWithData,
    /// Both `exclude_user` and `exclude_kernel` are set: the breakpoint could
    /// never fire.
    ExcludesEverything,
    /// The sample period is zero (use 1 to deliver every hit).
    ZeroSamplePeriod,
    /// The CPU number is not below the number of CPUs the table was built for.
    CpuOutOfRange {
        /// The CPU that was named.
        cpu: u16,
    },
    /// The address is not aligned as the hardware requires for this length or
    /// access kind.
    Misaligned {
        /// Address of the request.
        addr: u64,
        /// Required alignment in bytes.
        align: u64,
    },
    /// The hardware cannot watch a region of this length with this access kind.
    UnsupportedLength {
        /// Length of the request in bytes.
        len: u64,
    },
    /// The hardware cannot trigger on this access kind (for example a read-only
    /// watchpoint on x86, which only offers write and read-write).
    UnsupportedAccess,
    /// A request on behalf of user space (`exclude_kernel`) names kernel addresses.
    KernelAddress,
    /// The region needs more registers than the hardware has, or more than one
    /// register can cover.
    RangeTooLarge {
        /// Registers the region would need.
        weight: u8,
        /// Registers the hardware has for this breakpoint type.
        slots: u8,
    },
    /// No hardware slot is free for a pinned request (or for a debugger
    /// reservation) on at least one CPU it must run on.
    NoSlot {
        /// The first CPU on which the request did not fit.
        cpu: u16,
    },
    /// The fixed-size storage for events is full.
    TooManyEvents,
    /// The fixed-size storage for tasks is full: `TASKS` tasks already hold
    /// pinned requests, or `TASKS` (task, CPU) pairs already hold pinned
    /// requests restricted to one CPU (the constraint table keeps both in
    /// maps of `TASKS` entries).
    TooManyTasks,
    /// The handle refers to an event that has been unregistered, or comes
    /// from another manager.
    StaleHandle,
    /// The breakpoint is still registered, so its handler may run at any
    /// time: there is nothing to wait for until it is unregistered.
    StillRegistered,
    /// The backend cannot drive this hardware (identification, discovery or
    /// a raw register image it refuses).
    Hardware(HardwareError),
    /// The reservation to release was never made: no debugger reservation
    /// there, or a constraint-table claim another table issued.
    NotReserved,
    /// The manager has not been initialized with [`crate::Manager::init`].
    NotInitialized,
    /// The manager's state is being changed on this CPU already (a handler or an
    /// interrupt called in while a change was under way); try again later.
    Busy,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::ZeroLength => f.write_str("breakpoint region has length zero"),
            Error::AddressOverflow => f.write_str("breakpoint address + length overflows"),
            Error::NoAccess => f.write_str("no access kind (read, write or execute) given"),
            Error::ExecWithData => {
                f.write_str("execute cannot be combined with read or write access")
            }
            Error::ExcludesEverything => {
                f.write_str("both user and kernel are excluded: the breakpoint could never fire")
            }
            Error::ZeroSamplePeriod => f.write_str("sample period is zero"),
            Error::CpuOutOfRange { cpu } => write!(f, "CPU {cpu} is out of range"),
            Error::Misaligned { addr, align } => {
                write!(f, "address {addr:#x} is not aligned to {align} bytes")
            }
            Error::UnsupportedLength { len } => {
                write!(f, "the hardware cannot watch a length of {len} bytes")
            }
            Error::UnsupportedAccess => {
                f.write_str("the hardware cannot trigger on this access kind")
            }
            Error::KernelAddress => {
                f.write_str("a request that excludes the kernel names a kernel address")
            }
            Error::RangeTooLarge { weight, slots } => write!(
                f,
                "region needs {weight} debug registers but the hardware has {slots}"
            ),
            Error::NoSlot { cpu } => write!(f, "no free debug register slot on CPU {cpu}"),
            Error::TooManyEvents => f.write_str("event table is full"),
            Error::TooManyTasks => f.write_str("task table is full"),
            Error::StaleHandle => {
                f.write_str("handle refers to an unregistered breakpoint or to another manager's")
            }
            Error::StillRegistered => f.write_str("breakpoint is still registered"),
            Error::Hardware(e) => e.fmt(f),
            Error::NotReserved => f.write_str("no such reservation to release"),
            Error::NotInitialized => f.write_str("breakpoint manager is not initialized"),
            Error::Busy => f.write_str("breakpoint manager is busy on this CPU (re-entered)"),
        }
    }
}

impl core::error::Error for Error {}

impl From<HardwareError> for Error {
    fn from(e: HardwareError) -> Self {
        Error::Hardware(e)
    }
}

/// Why a backend cannot use the debug hardware it was given: refusals that
/// come from identifying the hardware, not from a request.
///
/// Marked `#[non_exhaustive]`: new backends may add reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HardwareError {
    /// The debug architecture reported by the CPU is not supported.
    UnsupportedDebugArch {
        /// The raw version field read from the identification register.
        version: u8,
    },
    /// The hardware reports no debug slots, a CPU reports fewer slots than the
    /// table was built for, or its debug logic cannot be used (powered down,
    /// module-stopped, locked).
    NoDebugHardware,
    /// The CPU model could not be identified, so its debug registers are unknown.
    UnknownPart {
        /// The raw identification value read.
        id: u32,
    },
    /// A raw register image (for example DR7) uses an encoding that this crate
    /// refuses (reserved or unsupported field values).
    InvalidImage,
}

impl fmt::Display for HardwareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HardwareError::UnsupportedDebugArch { version } => write!(
                f,
                "unsupported debug architecture (version field {version:#x})"
            ),
            HardwareError::NoDebugHardware => f.write_str("no usable debug registers"),
            HardwareError::UnknownPart { id } => write!(f, "unknown CPU part {id:#x}"),
            HardwareError::InvalidImage => {
                f.write_str("raw register image uses an unsupported encoding")
            }
        }
    }
}

impl core::error::Error for HardwareError {}
