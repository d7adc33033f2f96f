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
    /// Do not count in the hypervisor.
    pub const EXCLUDE_HV: u64 = 1 << 6;
    /// `wakeup_watermark` (bytes) instead of `wakeup_events` (records).
    pub const WATERMARK: u64 = 1 << 14;
    /// No kernel part in `PERF_SAMPLE_CALLCHAIN`.
    pub const EXCLUDE_CALLCHAIN_KERNEL: u64 = 1 << 21;
    /// `PERF_SAMPLE_TIME` is read from `clockid`.
    pub const USE_CLOCKID: u64 = 1 << 25;
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
    /// `branch_sample_type`.
    pub branch_sample_type: u64,
    /// `sample_regs_user`.
    pub sample_regs_user: u64,
    /// `sample_stack_user`.
    pub sample_stack_user: u32,
    /// `clockid` (with [`flag::USE_CLOCKID`]): the clock of `PERF_SAMPLE_TIME`.
    pub clockid: i32,
    /// `sample_regs_intr`.
    pub sample_regs_intr: u64,
    /// `aux_watermark`.
    pub aux_watermark: u32,
    /// `sample_max_stack` (0: the system's `perf_event_max_stack`).
    pub sample_max_stack: u16,
    /// `__reserved_2`.
    pub reserved_2: u16,
    /// `aux_sample_size`.
    pub aux_sample_size: u32,
    /// `__reserved_3`.
    pub reserved_3: u32,
    /// `sig_data`: returned in `si_perf_data` of the SIGTRAP.
    pub sig_data: u64,
}

// The offsets the kernel's uapi header gives (checked against the installed
// <linux/perf_event.h> with offsetof on the development machine).
static_assertions::assert_eq_size!(PerfEventAttr, [u8; PERF_ATTR_SIZE_VER7 as usize]);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, sample_period), 16);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, flags), 40);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, wakeup_events), 48);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, bp_type), 52);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, bp_addr), 56);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, bp_len), 64);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, clockid), 92);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, sample_max_stack), 108);
static_assertions::const_assert_eq!(core::mem::offset_of!(PerfEventAttr, sig_data), 120);

/// `_IO('$', 0)`.
pub const PERF_EVENT_IOC_ENABLE: u64 = 0x2400;
/// `_IO('$', 1)`.
pub const PERF_EVENT_IOC_DISABLE: u64 = 0x2401;
/// `_IOW('$', 11, struct perf_event_attr *)`: the size field is that of a
/// pointer, 8 on both supported architectures.
pub const PERF_EVENT_IOC_MODIFY_ATTRIBUTES: u64 = 0x4008_240b;

/// `_IO('$', 5)`: send this event's records to another event's ring buffer
/// (same CPU, or same task for per-task events).
pub const PERF_EVENT_IOC_SET_OUTPUT: u64 = 0x2405;

/// `enum perf_event_sample_format`: the fields of a `PERF_RECORD_SAMPLE`, in
/// the order they appear in the record.
pub mod sample {
    /// The instruction pointer of the hit.
    pub const IP: u64 = 1 << 0;
    /// `u32 pid, tid`.
    pub const TID: u64 = 1 << 1;
    /// A timestamp.
    pub const TIME: u64 = 1 << 2;
    /// The data address (for a breakpoint: its `bp_addr`).
    pub const ADDR: u64 = 1 << 3;
    /// `u64 nr, ips[nr]`, with `PERF_CONTEXT_*` markers between the parts.
    pub const CALLCHAIN: u64 = 1 << 5;
}

/// `enum perf_event_type`: the `type` of a ring-buffer record.
pub mod record {
    /// `u64 id, lost`: records the kernel could not write (ring full).
    pub const LOST: u32 = 2;
    /// `u64 time, id, stream_id`: sampling stopped (too many samples a tick).
    pub const THROTTLE: u32 = 5;
    /// Sampling resumed.
    pub const UNTHROTTLE: u32 = 6;
    /// A sample, laid out as `sample_type` says.
    pub const SAMPLE: u32 = 9;
    /// `misc & CPUMODE_MASK`: where the sampled code ran.
    pub const MISC_CPUMODE_MASK: u16 = 7;
    /// Kernel mode.
    pub const MISC_KERNEL: u16 = 1;
    /// User mode.
    pub const MISC_USER: u16 = 2;
}

/// `enum perf_callchain_context`: markers in a call chain (as `u64`, these
/// are the top 4095 values) saying whose frames follow.
pub mod context {
    /// Hypervisor frames follow.
    pub const HV: u64 = -32i64 as u64;
    /// Kernel frames follow.
    pub const KERNEL: u64 = -128i64 as u64;
    /// User frames follow.
    pub const USER: u64 = -512i64 as u64;
    /// Every value from here up is a marker (`PERF_CONTEXT_MAX`).
    pub const MAX: u64 = -4095i64 as u64;
}

/// Byte offsets in `struct perf_event_mmap_page`, the first page of an event's
/// ring-buffer mapping (the record area follows it).
pub mod mmap_page {
    /// `data_head` (`u64`): where the kernel writes next; read with acquire.
    pub const DATA_HEAD: usize = 1024;
    /// `data_tail` (`u64`): how far the reader has consumed; written with
    /// release. The kernel does not overwrite records past it.
    pub const DATA_TAIL: usize = 1032;
    /// `data_offset` (`u64`, Linux 4.1): where the record area starts.
    pub const DATA_OFFSET: usize = 1040;
    /// `data_size` (`u64`, Linux 4.1): the record area's size.
    pub const DATA_SIZE: usize = 1048;
}

/// `struct perf_event_header`: `u32 type, u16 misc, u16 size` (size includes
/// the header).
pub const RECORD_HEADER_SIZE: usize = 8;

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
