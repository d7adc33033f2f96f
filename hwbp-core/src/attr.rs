//! The generic, architecture-independent description of a breakpoint.

use crate::{AddressSpace, Error};

bitflags::bitflags! {
    /// Which accesses trigger a breakpoint.
    ///
    /// Valid requests are `READ`, `WRITE`, `READ | WRITE` and `EXEC`.
    /// Decoded exceptions use the same type to say what the hardware saw.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Access: u8 {
        /// A data load.
        const READ = 1 << 0;
        /// A data store.
        const WRITE = 1 << 1;
        /// An instruction fetch (execution).
        const EXEC = 1 << 2;
        /// Load or store.
        const RW = Self::READ.bits() | Self::WRITE.bits();
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Access {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "Access({=u8:#x})", self.bits())
    }
}

/// An opaque task (thread, process, guest vCPU…) identifier chosen by the embedder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TaskId(pub u64);

/// Where a breakpoint applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Target {
    /// Everything that runs on one CPU.
    Cpu(u16),
    /// Everything on every CPU, including CPUs that come online later.
    AllCpus,
    /// One task wherever it runs, or only while it runs on `cpu`.
    Task {
        /// The task.
        task: TaskId,
        /// Restrict to this CPU.
        cpu: Option<u16>,
    },
}

/// The constraint space a breakpoint is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BpType {
    /// Instruction breakpoint (triggers on execution).
    Inst,
    /// Data watchpoint (triggers on load and/or store).
    Data,
}

/// A generic breakpoint request.
///
/// Build one with [`BreakpointAttr::watch`] or [`BreakpointAttr::exec`], then
/// refine it with the builder methods (one per field: [`addr`](Self::addr),
/// [`len`](Self::len), [`access`](Self::access), [`target`](Self::target),
/// [`pinned`](Self::pinned) / [`flexible`](Self::flexible),
/// [`sample_period`](Self::sample_period), [`inherit`](Self::inherit),
/// [`disabled`](Self::disabled), [`exclude_user`](Self::exclude_user),
/// [`exclude_kernel`](Self::exclude_kernel) / [`user_only`](Self::user_only)).
/// The fields are public for reading (and assignment), but the struct is
/// `#[non_exhaustive]`: later versions may add fields with a default, so
/// struct literals and `..` updates are refused outside this crate.
/// The generic rules are checked by [`BreakpointAttr::validate`]; the
/// backend adds its own when it encodes the request.
///
/// ```
/// use hwbp_core::{Access, BreakpointAttr, Target};
/// let attr = BreakpointAttr::watch(0x1000, 4, Access::WRITE)
///     .target(Target::Cpu(0))
///     .sample_period(2);
/// assert_eq!(attr.validate(1), Ok(()));
/// let moved = attr.addr(0x2000).len(8);
/// assert_eq!((moved.addr, moved.len, moved.sample_period), (0x2000, 8, 2));
/// ```
///
/// ```compile_fail
/// // A struct literal outside hwbp-core does not compile: new fields may come.
/// use hwbp_core::{Access, BreakpointAttr};
/// let base = BreakpointAttr::watch(0x1000, 4, Access::WRITE);
/// let _ = BreakpointAttr { len: 8, ..base };
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct BreakpointAttr {
    /// First byte of the watched region (or the instruction address).
    pub addr: u64,
    /// Length of the region in bytes.
    pub len: u64,
    /// What triggers the breakpoint.
    pub access: Access,
    /// Which CPUs or task the breakpoint follows.
    pub target: Target,
    /// `true`: must be on the hardware whenever its context runs (refused if that
    /// cannot be promised). `false`: flexible, multiplexed with other flexible
    /// breakpoints when there are more than free registers.
    pub pinned: bool,
    /// Deliver every `sample_period`-th hit to the handler (hits are still all
    /// counted). Must be at least 1.
    pub sample_period: u64,
    /// Copy the breakpoint into children when the task forks.
    pub inherit: bool,
    /// Register in the disabled state.
    pub disabled: bool,
    /// Do not trigger in user mode.
    pub exclude_user: bool,
    /// Do not trigger in kernel mode. Requests made on behalf of user space set
    /// this, and may then not name kernel addresses.
    pub exclude_kernel: bool,
}

impl BreakpointAttr {
    /// A data watchpoint on `len` bytes at `addr`, pinned, on CPU 0, every hit
    /// delivered.
    pub const fn watch(addr: u64, len: u64, access: Access) -> Self {
        Self {
            addr,
            len,
            access,
            target: Target::Cpu(0),
            pinned: true,
            sample_period: 1,
            inherit: false,
            disabled: false,
            exclude_user: false,
            exclude_kernel: false,
        }
    }

    /// An instruction breakpoint at `addr` (length 1), pinned, on CPU 0.
    pub const fn exec(addr: u64) -> Self {
        Self::watch(addr, 1, Access::EXEC)
    }

    /// Set the first byte of the region (or the instruction address).
    #[must_use]
    pub const fn addr(mut self, addr: u64) -> Self {
        self.addr = addr;
        self
    }

    /// Set the length of the region in bytes.
    #[must_use]
    pub const fn len(mut self, len: u64) -> Self {
        self.len = len;
        self
    }

    /// Set what triggers the breakpoint.
    #[must_use]
    pub const fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Set whether the breakpoint is pinned (`true`) or flexible (`false`).
    #[must_use]
    pub const fn pinned(mut self, pinned: bool) -> Self {
        self.pinned = pinned;
        self
    }

    /// Set the target.
    #[must_use]
    pub const fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// Make the breakpoint flexible (multiplexed) instead of pinned.
    #[must_use]
    pub const fn flexible(mut self) -> Self {
        self.pinned = false;
        self
    }

    /// Set the sample period.
    #[must_use]
    pub const fn sample_period(mut self, period: u64) -> Self {
        self.sample_period = period;
        self
    }

    /// Set whether children inherit the breakpoint on fork.
    #[must_use]
    pub const fn inherit(mut self, inherit: bool) -> Self {
        self.inherit = inherit;
        self
    }

    /// Set whether the breakpoint starts disabled.
    #[must_use]
    pub const fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Mark the request as made on behalf of user space: it does not trigger in
    /// the kernel and may not name kernel addresses.
    #[must_use]
    pub const fn user_only(mut self) -> Self {
        self.exclude_kernel = true;
        self
    }

    /// Set `exclude_user`.
    #[must_use]
    pub const fn exclude_user(mut self, exclude: bool) -> Self {
        self.exclude_user = exclude;
        self
    }

    /// Set `exclude_kernel`.
    #[must_use]
    pub const fn exclude_kernel(mut self, exclude: bool) -> Self {
        self.exclude_kernel = exclude;
        self
    }

    /// The constraint space of the request, assuming its access is valid.
    pub fn bp_type(&self) -> BpType {
        if self.access.contains(Access::EXEC) {
            BpType::Inst
        } else {
            BpType::Data
        }
    }

    /// The CPU named by the target, if any.
    pub const fn cpu(&self) -> Option<u16> {
        match self.target {
            Target::Cpu(c) => Some(c),
            Target::Task { cpu, .. } => cpu,
            Target::AllCpus => None,
        }
    }

    /// The task named by the target, if any.
    pub const fn task(&self) -> Option<TaskId> {
        match self.target {
            Target::Task { task, .. } => Some(task),
            _ => None,
        }
    }

    /// Last byte of the region, or `None` when the region is empty or wraps.
    pub const fn last_byte(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        self.addr.checked_add(self.len - 1)
    }

    /// Check the rules that hold on every architecture and do not depend on
    /// the address layout ([`BreakpointAttr::validate_request`] adds the
    /// kernel-address rule).
    ///
    /// `nr_cpus` is the number of CPUs the caller manages; a CPU at or above it is
    /// refused.
    pub fn validate(&self, nr_cpus: u16) -> Result<(), Error> {
        self.validate_shape()?;
        if let Some(cpu) = self.cpu() {
            if cpu >= nr_cpus {
                return Err(Error::CpuOutOfRange { cpu });
            }
        }
        Ok(())
    }

    /// Every generic rule of a request: those of
    /// [`BreakpointAttr::validate`] (the CPU range only when `nr_cpus` is
    /// given: an encoder used without a manager does not know the CPUs), then
    /// the kernel-address rule: a request that excludes the kernel
    /// (`exclude_kernel`, made on behalf of user space) may not name a byte
    /// that `address_space` classifies as kernel space
    /// ([`Error::KernelAddress`]).
    ///
    /// This is the one implementation of these rules: the manager calls it
    /// before [`Arch::encode`](crate::Arch::encode), and the backends'
    /// encoders call it when used on their own (ptrace, perf).
    /// `address_space` is called only for a region that does not wrap.
    pub fn validate_request(
        &self,
        nr_cpus: Option<u16>,
        address_space: impl FnOnce(u64, u64) -> AddressSpace,
    ) -> Result<(), Error> {
        match nr_cpus {
            Some(n) => self.validate(n)?,
            None => self.validate_shape()?,
        }
        if self.exclude_kernel && address_space(self.addr, self.len) == AddressSpace::Kernel {
            return Err(Error::KernelAddress);
        }
        Ok(())
    }

    /// Access kind, length, wrap-around, exclusions and sample period.
    fn validate_shape(&self) -> Result<(), Error> {
        if self.access.is_empty() || !Access::all().contains(self.access) {
            return Err(Error::NoAccess);
        }
        if self.access.contains(Access::EXEC) && self.access.intersects(Access::RW) {
            return Err(Error::ExecWithData);
        }
        if self.len == 0 {
            return Err(Error::ZeroLength);
        }
        if self.last_byte().is_none() {
            return Err(Error::AddressOverflow);
        }
        if self.exclude_user && self.exclude_kernel {
            return Err(Error::ExcludesEverything);
        }
        if self.sample_period == 0 {
            return Err(Error::ZeroSamplePeriod);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_request_adds_the_kernel_address_rule() {
        let space = |a: u64, l: u64| {
            if a + (l - 1) >= 0x8000 {
                AddressSpace::Kernel
            } else {
                AddressSpace::User
            }
        };
        let user = BreakpointAttr::watch(0x7ffc, 8, Access::WRITE).exclude_kernel(true);
        assert_eq!(user.validate(1), Ok(()), "validate has no address layout");
        assert_eq!(
            user.validate_request(None, space),
            Err(Error::KernelAddress)
        );
        let below = BreakpointAttr::watch(0x7ff8, 8, Access::WRITE).exclude_kernel(true);
        assert_eq!(below.validate_request(None, space), Ok(()));
        // Without exclude_kernel the layout does not matter.
        let kernel = BreakpointAttr::watch(0x9000, 8, Access::WRITE);
        assert_eq!(kernel.validate_request(Some(1), space), Ok(()));
        // Generic rules first (the layout is never asked about a bad region),
        // and the CPU range only when a count is given.
        let wraps = BreakpointAttr::watch(u64::MAX, 2, Access::WRITE).exclude_kernel(true);
        assert_eq!(
            wraps.validate_request(None, |_, _| unreachable!()),
            Err(Error::AddressOverflow)
        );
        let cpu3 = below.target(Target::Cpu(3));
        assert_eq!(cpu3.validate_request(None, space), Ok(()));
        assert_eq!(
            cpu3.validate_request(Some(2), space),
            Err(Error::CpuOutOfRange { cpu: 3 })
        );
    }

    #[test]
    fn generic_rules() {
        let ok = BreakpointAttr::watch(0x1000, 8, Access::RW);
        assert_eq!(ok.validate(1), Ok(()));
        assert_eq!(
            BreakpointAttr { len: 0, ..ok }.validate(1),
            Err(Error::ZeroLength)
        );
        assert_eq!(
            BreakpointAttr::watch(u64::MAX - 2, 4, Access::WRITE).validate(1),
            Err(Error::AddressOverflow)
        );
        // The last byte of the address space itself is fine.
        assert_eq!(
            BreakpointAttr::watch(u64::MAX, 1, Access::WRITE).validate(1),
            Ok(())
        );
        assert_eq!(
            BreakpointAttr {
                access: Access::EXEC | Access::READ,
                ..ok
            }
            .validate(1),
            Err(Error::ExecWithData)
        );
        assert_eq!(
            BreakpointAttr {
                access: Access::empty(),
                ..ok
            }
            .validate(1),
            Err(Error::NoAccess)
        );
        assert_eq!(
            BreakpointAttr {
                access: Access::from_bits_retain(0x80),
                ..ok
            }
            .validate(1),
            Err(Error::NoAccess)
        );
        assert_eq!(
            ok.exclude_user(true).exclude_kernel(true).validate(1),
            Err(Error::ExcludesEverything)
        );
        assert_eq!(
            ok.sample_period(0).validate(1),
            Err(Error::ZeroSamplePeriod)
        );
        assert_eq!(
            ok.target(Target::Cpu(4)).validate(4),
            Err(Error::CpuOutOfRange { cpu: 4 })
        );
        assert_eq!(
            ok.target(Target::Task {
                task: TaskId(1),
                cpu: Some(9)
            })
            .validate(4),
            Err(Error::CpuOutOfRange { cpu: 9 })
        );
        assert_eq!(ok.target(Target::AllCpus).validate(4), Ok(()));
    }

    #[test]
    fn types() {
        assert_eq!(BreakpointAttr::exec(0x10).bp_type(), BpType::Inst);
        assert_eq!(
            BreakpointAttr::watch(0x10, 1, Access::READ).bp_type(),
            BpType::Data
        );
    }
}
