//! What a request must satisfy before it is handed to `perf_event_open`.
//!
//! Three layers, first failure wins:
//! 1. the generic rules ([`BreakpointAttr::validate`]);
//! 2. the architecture's debug-register rules, checked by the same encoder the
//!    bare-metal backend uses ([`hwbp_x86::Encoder`], [`hwbp_arm64::Encoder`]);
//! 3. what Linux's perf layer adds on top: one debug register per event (no
//!    splitting of a region over several registers, no Arm `MASK` ranges), user
//!    addresses only (hwbp-linux always sets `exclude_kernel`, since a process
//!    cannot watch kernel memory), and a sample period below 2^63.
//!
//! Both architectures' rules are plain functions compiled on every host, so
//! they are unit-tested here even where they are not the native ones.

use hwbp_core::{Access, BreakpointAttr, Error};

/// The architecture-specific part of the check, and how a valid request is
/// expressed in `perf_event_attr.bp_len`.
pub trait PerfRules {
    /// Check `attr` (already with `exclude_kernel` set) against the
    /// architecture's and Linux's rules.
    fn check(&self, attr: &BreakpointAttr) -> Result<(), Error>;
    /// `bp_len` for a valid request: the region length for watchpoints; what the
    /// kernel demands for instruction breakpoints.
    fn bp_len(&self, attr: &BreakpointAttr) -> u64;
}

/// x86_64 under Linux perf.
#[derive(Clone, Copy, Debug)]
pub struct X86Perf {
    encoder: hwbp_x86::Encoder,
}

/// Linux x86_64 `TASK_SIZE_MAX` with 4-level paging: one page below the top of
/// the lower canonical half (`arch_check_bp_in_kernelspace` refuses from here).
pub const X86_64_TASK_SIZE_MAX: u64 = (1 << 47) - 4096;

impl X86Perf {
    /// The rules for a 64-bit process with 4-level paging.
    pub const fn new() -> Self {
        X86Perf {
            encoder: hwbp_x86::Encoder::new(hwbp_x86::Mode::Bits64)
                // perf gives an event exactly one debug register.
                .with_policy(hwbp_x86::RegionPolicy::Single)
                .with_user_limit(X86_64_TASK_SIZE_MAX),
        }
    }
}

impl Default for X86Perf {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfRules for X86Perf {
    fn check(&self, attr: &BreakpointAttr) -> Result<(), Error> {
        // Read-only (the x86 probe's EINVAL), lengths other than 1/2/4/8,
        // misalignment, execute with a length, kernel addresses.
        self.encoder.encode_slot(attr).map(|_| ())
    }

    fn bp_len(&self, attr: &BreakpointAttr) -> u64 {
        if attr.access == Access::EXEC {
            // arch/x86/kernel/hw_breakpoint.c: an execute breakpoint must say
            // bp_len == sizeof(long); the hardware then uses LEN = 00.
            8
        } else {
            attr.len
        }
    }
}

/// AArch64 under Linux perf.
#[derive(Clone, Copy, Debug)]
pub struct Arm64Perf {
    encoder: hwbp_arm64::Encoder,
}

impl Arm64Perf {
    /// The rules for a 64-bit process (slot counts do not matter here: perf
    /// gives one register per event and refuses with ENOSPC when none is left).
    pub const fn new() -> Self {
        Arm64Perf {
            encoder: hwbp_arm64::Encoder::aarch64(16, 16),
        }
    }
}

impl Default for Arm64Perf {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfRules for Arm64Perf {
    fn check(&self, attr: &BreakpointAttr) -> Result<(), Error> {
        if attr.access == Access::EXEC && attr.len == 2 {
            // hwbp-arm64 takes a 2-byte (T32 halfword) breakpoint when it is
            // user-only, for AArch32 compat tasks. A process running this
            // crate is A64 code, for which a halfword BAS is CONSTRAINED
            // UNPREDICTABLE, and Linux would program one: it forces bp_len 4
            // but shifts the BAS by the address's offset in its word.
            return Err(Error::UnsupportedLength { len: 2 });
        }
        let enc = self.encoder.encode(attr)?;
        let piece = match enc.pieces.as_slice() {
            [one] => *one,
            _ => {
                // A region crossing a doubleword (data) or word (exec) boundary
                // would need several registers; perf uses one. Natural
                // alignment always fits.
                return Err(Error::Misaligned {
                    addr: attr.addr,
                    align: attr.len.checked_next_power_of_two().unwrap_or(8).min(8),
                });
            }
        };
        if attr.access == Access::EXEC {
            // arch/arm64/kernel/hw_breakpoint.c: an AArch64 execute breakpoint
            // is one 4-byte instruction.
            if attr.len > 4 {
                return Err(Error::UnsupportedLength { len: attr.len });
            }
        } else if attr.len > 8 || piece.hw_len > 8 {
            // The perf interface takes bp_len 1..=8 (BAS); MASK ranges are not
            // reachable from user space.
            return Err(Error::UnsupportedLength { len: attr.len });
        }
        Ok(())
    }

    fn bp_len(&self, attr: &BreakpointAttr) -> u64 {
        if attr.access == Access::EXEC {
            4
        } else {
            attr.len
        }
    }
}

/// The rules for the architecture this crate is compiled for.
#[cfg(target_arch = "x86_64")]
pub type Native = X86Perf;
/// The rules for the architecture this crate is compiled for.
#[cfg(target_arch = "aarch64")]
pub type Native = Arm64Perf;

/// Everything checked before the system call. `nr_cpus` bounds CPU numbers.
///
/// The attr must already carry `exclude_kernel` (see [`crate`] docs).
pub fn check(
    rules: &impl PerfRules,
    attr: &BreakpointAttr,
    nr_cpus: u16,
) -> Result<(), crate::Error> {
    attr.validate(nr_cpus)?;
    rules.check(attr)?;
    if attr.sample_period >= 1 << 63 {
        // perf_copy_attr refuses periods with the top bit set.
        return Err(crate::Error::Unsupported(
            "the sample period must be below 2^63",
        ));
    }
    Ok(())
}

/// `bp_type` for a valid access.
pub fn bp_type(access: Access) -> u32 {
    use crate::abi::*;
    if access == Access::EXEC {
        HW_BREAKPOINT_X
    } else if access == Access::RW {
        HW_BREAKPOINT_RW
    } else if access == Access::WRITE {
        HW_BREAKPOINT_W
    } else {
        HW_BREAKPOINT_R
    }
}

/// No system calls: these also run under Miri
/// (`cargo +nightly miri test -p hwbp-linux --lib pure_tests`).
#[cfg(test)]
mod pure_tests {
    use super::*;
    use hwbp_core::Target;

    fn user(a: BreakpointAttr) -> BreakpointAttr {
        a.user_only().target(Target::AllCpus)
    }

    #[test]
    fn x86_rules_match_the_kernel_probe() {
        let r = X86Perf::new();
        // Read-only is EINVAL in the kernel: refused as UnsupportedAccess.
        assert_eq!(
            check(&r, &user(BreakpointAttr::watch(0x1000, 1, Access::READ)), 2),
            Err(Error::UnsupportedAccess.into())
        );
        // Misaligned is EINVAL in the kernel.
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x1001, 2, Access::WRITE)),
                2
            ),
            Err(Error::Misaligned {
                addr: 0x1001,
                align: 2
            }
            .into())
        );
        // A region one register cannot hold is not split.
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x1000, 3, Access::WRITE)),
                2
            ),
            Err(Error::UnsupportedLength { len: 3 }.into())
        );
        assert_eq!(
            check(&r, &user(BreakpointAttr::watch(0x1000, 16, Access::RW)), 2),
            Err(Error::UnsupportedLength { len: 16 }.into())
        );
        // Kernel addresses with exclude_kernel.
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0xffff_8000_0000_0000, 8, Access::RW)),
                2
            ),
            Err(Error::KernelAddress.into())
        );
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(X86_64_TASK_SIZE_MAX, 1, Access::RW)),
                2
            ),
            Err(Error::KernelAddress.into())
        );
        for len in [1u64, 2, 4, 8] {
            let a = user(BreakpointAttr::watch(
                0x7000_0000_0000 - len,
                len,
                Access::WRITE,
            ));
            assert_eq!(check(&r, &a, 2), Ok(()));
            assert_eq!(r.bp_len(&a), len);
        }
        let x = user(BreakpointAttr::exec(0x40_1003));
        assert_eq!(check(&r, &x, 2), Ok(()));
        assert_eq!(r.bp_len(&x), 8, "perf wants sizeof(long) for X on x86");
        assert_eq!(
            check(&r, &user(BreakpointAttr::exec(0x40_1000).len(4)), 2),
            Err(Error::UnsupportedLength { len: 4 }.into())
        );
    }

    #[test]
    fn arm64_rules() {
        let r = Arm64Perf::new();
        // Arm can watch loads only.
        assert_eq!(
            check(&r, &user(BreakpointAttr::watch(0x1000, 1, Access::READ)), 2),
            Ok(())
        );
        // Any 1..=8 bytes inside one doubleword.
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x1001, 3, Access::WRITE)),
                2
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x1005, 3, Access::WRITE)),
                2
            ),
            Ok(())
        );
        // Crossing a doubleword needs two registers.
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x1006, 4, Access::WRITE)),
                2
            ),
            Err(Error::Misaligned {
                addr: 0x1006,
                align: 4
            }
            .into())
        );
        // A MASK range is one register on bare metal but not reachable via perf.
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x4000, 0x1000, Access::RW)),
                2
            ),
            Err(Error::UnsupportedLength { len: 0x1000 }.into())
        );
        let x = user(BreakpointAttr::exec(0x40_1000));
        assert_eq!(check(&r, &x, 2), Ok(()));
        assert_eq!(r.bp_len(&x), 4);
        assert_eq!(
            check(&r, &user(BreakpointAttr::exec(0x40_1002)), 2),
            Err(Error::Misaligned {
                addr: 0x40_1002,
                align: 4
            }
            .into())
        );
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0xffff_0000_0000_1000, 8, Access::RW)),
                2
            ),
            Err(Error::KernelAddress.into())
        );
    }

    /// A Linux process on arm64 runs A64 code, where a halfword `BAS` is
    /// CONSTRAINED UNPREDICTABLE; the kernel would take `bp_len` 4 at an
    /// address ending in 2 and program one. hwbp-arm64 itself takes a length
    /// of 2 for a user-only request (AArch32 compat tasks), so perf's rules
    /// refuse it here.
    #[test]
    fn arm64_refuses_halfword_instruction_breakpoints() {
        let r = Arm64Perf::new();
        for addr in [0x40_1000, 0x40_1002] {
            let half = user(BreakpointAttr::exec(addr).len(2));
            assert_eq!(
                check(&r, &half, 2),
                Err(Error::UnsupportedLength { len: 2 }.into()),
                "{addr:#x}"
            );
        }
        // Any other misaligned instruction breakpoint: misaligned.
        for (addr, len) in [(0x40_1002, 1), (0x40_1001, 3), (0x40_1002, 4)] {
            let x = user(BreakpointAttr::exec(addr).len(len));
            assert_eq!(
                check(&r, &x, 2),
                Err(Error::Misaligned { addr, align: 4 }.into()),
                "{addr:#x} len {len}"
            );
        }
        // One whole A64 instruction, however it is named.
        for len in [1, 3, 4] {
            let x = user(BreakpointAttr::exec(0x40_1004).len(len));
            assert_eq!(check(&r, &x, 2), Ok(()), "len {len}");
            assert_eq!(r.bp_len(&x), 4);
        }
    }

    #[test]
    fn generic_rules_come_first() {
        let r = X86Perf::new();
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x1000, 0, Access::WRITE)),
                2
            ),
            Err(Error::ZeroLength.into())
        );
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x1000, 1, Access::WRITE)).target(Target::Cpu(2)),
                2
            ),
            Err(Error::CpuOutOfRange { cpu: 2 }.into())
        );
        assert_eq!(
            check(
                &r,
                &user(BreakpointAttr::watch(0x1000, 1, Access::WRITE)).sample_period(1 << 63),
                2
            ),
            Err(crate::Error::Unsupported(
                "the sample period must be below 2^63"
            ))
        );
    }

    #[test]
    fn bp_types() {
        use crate::abi::*;
        assert_eq!(bp_type(Access::READ), HW_BREAKPOINT_R);
        assert_eq!(bp_type(Access::WRITE), HW_BREAKPOINT_W);
        assert_eq!(bp_type(Access::RW), HW_BREAKPOINT_RW);
        assert_eq!(bp_type(Access::EXEC), HW_BREAKPOINT_X);
    }
}
