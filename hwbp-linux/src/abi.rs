//! The kernel ABI used here, defined from the uapi headers' layout because the
//! `libc` crate does not carry `perf_event_attr` (0.2.191 has none for Linux) and
//! glibc's `siginfo_t` (2.36) has no `si_perf_*` fields. Pure data: builds on
//! every host.

/// `PERF_TYPE_BREAKPOINT` (`enum perf_type_id`).
pub const PERF_TYPE_BREAKPOINT: u32 = 5;
/// `PERF_ATTR_SIZE_VER7`: the layout up to and including `sig_data` (Linux 5.13).
/// A kernel that knows a larger struct treats the missing tail as zero.
pub const PERF_ATTR_SIZE_VER7: u32 = 128;

/// `HW_BREAKPOINT_R`, `_W`, `_RW`, `_X` (`linux/hw_breakpoint.h`).
pub const HW_BREAKPOINT_R: u32 = 1;
/// Write.
pub const HW_BREAKPOINT_W: u32 = 2;
/// Read or write.
pub const HW_BREAKPOINT_RW: u32 = HW_BREAKPOINT_R | HW_BREAKPOINT_W;
/// Execute.
pub const HW_BREAKPOINT_X: u32 = 4;

/// Bits of the flags word at byte 40 of `perf_event_attr` (the C bitfield starts
/// at bit 0 on little-endian targets).
pub mod flag {
    /// Start disabled.
    pub const DISABLED: u64 = 1 << 0;
    /// Children (threads and processes created later) inherit the event.
    pub const INHERIT: u64 = 1 << 1;
    /// Must always be on the hardware; an error state otherwise.
    pub const PINNED: u64 = 1 << 2;
    /// Do not count in user mode.
    pub const EXCLUDE_USER: u64 = 1 << 4;
    /// Do not count in kernel mode.
    pub const EXCLUDE_KERNEL: u64 = 1 << 5;
    /// Drop the event from the task on `execve` (Linux ≥ 5.13; a reserved bit,
    /// so `EINVAL`, before).
    pub const REMOVE_ON_EXEC: u64 = 1 << 36;
    /// Send a synchronous SIGTRAP on every overflow.
    pub const SIGTRAP: u64 = 1 << 37;
}

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER7`, with only the fields a
/// breakpoint uses named; the rest stay zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerfEventAttr {
    /// `type`.
    pub type_: u32,
    /// `size`.
    pub size: u32,
    /// `config`.
    pub config: u64,
    /// `sample_period` (union with `sample_freq`).
    pub sample_period: u64,
    /// `sample_type`.
    pub sample_type: u64,
    /// `read_format`.
    pub read_format: u64,
    /// The bitfield word (see [`flag`]).
    pub flags: u64,
    /// `wakeup_events`.
    pub wakeup_events: u32,
    /// `bp_type`.
    pub bp_type: u32,
    /// `bp_addr` (union with `config1`).
    pub bp_addr: u64,
    /// `bp_len` (union with `config2`).
    pub bp_len: u64,
    /// `branch_sample_type`, `sample_regs_user`, `sample_stack_user`, `clockid`,
    /// `sample_regs_intr`, `aux_watermark`, `sample_max_stack`, `__reserved_2`,
    /// `aux_sample_size`, `__reserved_3`: all zero for breakpoints.
    pub unused: [u64; 6],
    /// `sig_data`: returned in `si_perf_data` of the SIGTRAP.
    pub sig_data: u64,
}

// The offsets the kernel's uapi header gives (checked against the installed
// <linux/perf_event.h> with offsetof on the development machine).
const _: () = {
    assert!(core::mem::size_of::<PerfEventAttr>() == PERF_ATTR_SIZE_VER7 as usize);
    assert!(core::mem::offset_of!(PerfEventAttr, sample_period) == 16);
    assert!(core::mem::offset_of!(PerfEventAttr, flags) == 40);
    assert!(core::mem::offset_of!(PerfEventAttr, bp_type) == 52);
    assert!(core::mem::offset_of!(PerfEventAttr, bp_addr) == 56);
    assert!(core::mem::offset_of!(PerfEventAttr, bp_len) == 64);
    assert!(core::mem::offset_of!(PerfEventAttr, sig_data) == 120);
};

/// `_IO('$', 0)`.
pub const PERF_EVENT_IOC_ENABLE: u64 = 0x2400;
/// `_IO('$', 1)`.
pub const PERF_EVENT_IOC_DISABLE: u64 = 0x2401;
/// `_IOW('$', 11, struct perf_event_attr *)`: the size field is that of a
/// pointer, 8 on both supported architectures.
pub const PERF_EVENT_IOC_MODIFY_ATTRIBUTES: u64 = 0x4008_240b;

/// Byte offsets in the kernel's `siginfo_t` (`asm-generic/siginfo.h`, the same
/// on x86_64 and arm64 because both are LP64 with 8-byte pointer alignment):
/// `si_code` at 8, then the `_sigfault` union at 16 starts with `si_addr`, and
/// the `_perf` member of the inner union follows at 24.
pub mod siginfo {
    /// `si_code` (`int`).
    pub const CODE: usize = 8;
    /// `si_addr` (`void *`).
    pub const ADDR: usize = 16;
    /// `si_perf_data` (`unsigned long`).
    pub const PERF_DATA: usize = 24;
    /// `si_perf_type` (`__u32`).
    pub const PERF_TYPE: usize = 32;
    /// `si_perf_flags` (`__u32`).
    pub const PERF_FLAGS: usize = 36;
    /// `TRAP_PERF`: `si_code` of a perf event's synchronous SIGTRAP.
    pub const TRAP_PERF: i32 = 6;
    /// `TRAP_PERF_FLAG_ASYNC` in `si_perf_flags` (Linux ≥ 5.19): SIGTRAP was
    /// blocked when the event raised it, so it waited until unblocked.
    pub const TRAP_PERF_FLAG_ASYNC: u32 = 1;
}

impl PerfEventAttr {
    /// The `perf_event_attr` of a breakpoint: `attr` must already be valid, with
    /// `bp_len` as the architecture's rules give it ([`crate::rules::PerfRules::bp_len`]).
    /// `sigtrap` is the `sig_data` cookie for synchronous SIGTRAP delivery, or
    /// `None` for a counting-only event.
    pub fn breakpoint(attr: &hwbp_core::BreakpointAttr, bp_len: u64, sigtrap: Option<u64>) -> Self {
        let mut flags = 0;
        if attr.disabled {
            flags |= flag::DISABLED;
        }
        if attr.inherit {
            flags |= flag::INHERIT;
        }
        if attr.pinned {
            flags |= flag::PINNED;
        }
        if attr.exclude_user {
            flags |= flag::EXCLUDE_USER;
        }
        // User space cannot watch kernel memory: always excluded.
        flags |= flag::EXCLUDE_KERNEL;
        if matches!(attr.target, hwbp_core::Target::Task { .. }) {
            // A task's event (and its inherited copies) ends at execve: the
            // new program's addresses mean something else, its hits must
            // not count here, and it needs its debug registers.
            flags |= flag::REMOVE_ON_EXEC;
        }
        let mut sig_data = 0;
        if let Some(cookie) = sigtrap {
            // The kernel refuses sigtrap without remove_on_exec (EINVAL): after
            // execve the handler and its table are gone.
            flags |= flag::SIGTRAP | flag::REMOVE_ON_EXEC;
            sig_data = cookie;
        }
        PerfEventAttr {
            type_: PERF_TYPE_BREAKPOINT,
            size: PERF_ATTR_SIZE_VER7,
            sample_period: attr.sample_period,
            flags,
            bp_type: crate::rules::bp_type(attr.access),
            bp_addr: attr.addr,
            bp_len,
            sig_data,
            ..PerfEventAttr::default()
        }
    }
}

/// No system calls: these also run under Miri
/// (`cargo +nightly miri test -p hwbp-linux --lib pure_tests`).
#[cfg(test)]
mod pure_tests {
    use super::*;
    use hwbp_core::{Access, BreakpointAttr};

    /// Read a bitfield the way the kernel's C struct lays it out: bit `n` of
    /// the little-endian 64-bit word at byte 40.
    fn bit(a: &PerfEventAttr, n: u32) -> bool {
        // SAFETY: PerfEventAttr is repr(C) plain data of 128 bytes.
        let bytes: [u8; 128] = unsafe { core::mem::transmute(*a) };
        let word = u64::from_le_bytes(bytes[40..48].try_into().unwrap());
        word >> n & 1 == 1
    }

    #[test]
    fn breakpoint_attr_in_kernel_layout() {
        let attr = BreakpointAttr::watch(0x1234, 2, Access::RW)
            .inherit(true)
            .sample_period(100);
        let p = PerfEventAttr::breakpoint(&attr, 2, Some(0xabcd));
        // SAFETY: as above.
        let bytes: [u8; 128] = unsafe { core::mem::transmute(p) };
        assert_eq!(
            u32::from_le_bytes(bytes[0..4].try_into().unwrap()),
            5,
            "PERF_TYPE_BREAKPOINT"
        );
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 128);
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 100);
        assert_eq!(
            u32::from_le_bytes(bytes[52..56].try_into().unwrap()),
            3,
            "HW_BREAKPOINT_RW"
        );
        assert_eq!(
            u64::from_le_bytes(bytes[56..64].try_into().unwrap()),
            0x1234
        );
        assert_eq!(u64::from_le_bytes(bytes[64..72].try_into().unwrap()), 2);
        assert_eq!(
            u64::from_le_bytes(bytes[120..128].try_into().unwrap()),
            0xabcd
        );
        // disabled, inherit, pinned, exclude_user, exclude_kernel, remove_on_exec, sigtrap
        let expect = [
            (0, false),
            (1, true),
            (2, true),
            (4, false),
            (5, true),
            (36, true),
            (37, true),
        ];
        for (n, v) in expect {
            assert_eq!(bit(&p, n), v, "bit {n}");
        }
        let q = PerfEventAttr::breakpoint(&attr.disabled(true).inherit(false).flexible(), 2, None);
        let expect = [
            (0, true),
            (1, false),
            (2, false),
            (5, true),
            (36, false),
            (37, false),
        ];
        for (n, v) in expect {
            assert_eq!(bit(&q, n), v, "bit {n}");
        }
        assert_eq!(q.sig_data, 0);
        // A count-only event of a task is removed at execve all the same; a
        // per-CPU one belongs to no task.
        let task = hwbp_core::Target::Task {
            task: hwbp_core::TaskId(0),
            cpu: None,
        };
        let r = PerfEventAttr::breakpoint(&attr.target(task), 2, None);
        assert!(
            bit(&r, 36) && !bit(&r, 37),
            "remove_on_exec without sigtrap"
        );
        assert_eq!(
            r.flags & !(flag::INHERIT | flag::PINNED | flag::EXCLUDE_KERNEL),
            flag::REMOVE_ON_EXEC
        );
    }
}
