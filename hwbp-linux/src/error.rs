//! Why a breakpoint could not be opened, changed or read.

use core::fmt;

/// The errors of `hwbp-linux`.
///
/// Requests are checked before the system call with the same rules as the
/// bare-metal backends ([`Error::Invalid`]); whatever the kernel still refuses
/// is turned from an errno into one of the other variants, each with a message
/// that says what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The request breaks a rule of hwbp or of the CPU's debug registers; it was
    /// refused before reaching the kernel.
    Invalid(hwbp_core::Error),
    /// `ENOSPC`: every hardware breakpoint slot the kernel can give this thread
    /// (or CPU) is taken (4 on x86).
    NoSlot,
    /// `EACCES`/`EPERM`: refused by the kernel's `perf_event_paranoid` policy (or
    /// a security module).
    Permission {
        /// The errno the kernel returned.
        errno: i32,
        /// `/proc/sys/kernel/perf_event_paranoid` at the time of the refusal,
        /// when it could be read.
        paranoid: Option<i32>,
        /// The request was per-CPU (these need a paranoid level of 0 or less).
        per_cpu: bool,
    },
    /// `ENODEV`/`ENOENT`/`EOPNOTSUPP` (`ENODEV` on a per-CPU request is
    /// [`Error::CpuOffline`]): this kernel or CPU offers no hardware
    /// breakpoints through perf (for example inside some virtual machines).
    NoHardware {
        /// The errno the kernel returned.
        errno: i32,
    },
    /// `ENODEV` on a per-CPU breakpoint: the CPU exists but is offline.
    CpuOffline {
        /// The CPU that was named.
        cpu: u32,
    },
    /// The kernel predates a feature hwbp-linux needs (`sigtrap` and
    /// `remove_on_exec`, Linux 5.13).
    KernelTooOld {
        /// Major version from `uname`.
        major: u32,
        /// Minor version from `uname`.
        minor: u32,
    },
    /// `EINVAL`: the kernel refused the parameters.
    Rejected {
        /// What is known about the cause.
        reason: &'static str,
    },
    /// `ESRCH`: the thread named by the target does not exist.
    NoSuchTask {
        /// The thread id that was named.
        tid: u64,
    },
    /// `EMFILE`/`ENFILE`: out of file descriptors (each breakpoint holds one per
    /// thread or CPU it was opened on).
    TooManyFiles,
    /// `enable`, `disable` or `modify` called in a process other than the one
    /// that opened the breakpoint (a forked child). The child's descriptors
    /// are copies of the parent's, so they name the parent's events: the call
    /// would switch or move the parent's breakpoint and every inherited copy.
    OtherProcess {
        /// The process that opened the breakpoint.
        opened_by: i32,
    },
    /// `mmap` of a sampled breakpoint's ring buffer failed: with `EPERM`, the
    /// buffer is more than this user may lock (`perf_event_mlock_kb` per CPU,
    /// then `RLIMIT_MEMLOCK`, unless CAP_IPC_LOCK).
    RingBuffer {
        /// The errno of `mmap`.
        errno: i32,
        /// Bytes asked for (metadata page included).
        bytes: usize,
    },
    /// A ring-buffer record that cannot be what the kernel wrote (a size that
    /// does not fit the published data). The reader skipped to the kernel's
    /// head; no record was read past its end.
    RingCorrupt {
        /// What was wrong.
        what: &'static str,
    },
    /// A request that hwbp-linux does not support on Linux (explained in the
    /// message).
    Unsupported(&'static str),
    /// Any other failure of a system call.
    Os {
        /// The call that failed.
        call: &'static str,
        /// Its errno.
        errno: i32,
    },
}

impl Error {
    /// The generic hwbp error that corresponds to this one, if any, so code
    /// written against several backends can match on one type.
    pub fn core(&self) -> Option<hwbp_core::Error> {
        match *self {
            Error::Invalid(e) => Some(e),
            // Linux does not say on which CPU the table is full; per-thread
            // requests follow the thread everywhere.
            Error::NoSlot => Some(hwbp_core::Error::NoSlot { cpu: 0 }),
            Error::NoHardware { .. } => Some(hwbp_core::Error::Hardware(
                hwbp_core::HardwareError::NoDebugHardware,
            )),
            _ => None,
        }
    }
}

impl From<hwbp_core::Error> for Error {
    fn from(e: hwbp_core::Error) -> Self {
        Error::Invalid(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Invalid(e) => write!(f, "invalid breakpoint: {e}"),
            Error::NoSlot => f.write_str(
                "no free hardware breakpoint slot (ENOSPC): this thread already uses all of \
                 the CPU's debug registers (4 on x86, shared by watchpoints and instruction \
                 breakpoints, counting per-CPU breakpoints too); drop (close) one first: the \
                 kernel reserves a register for every breakpoint, pinned or flexible",
            ),
            Error::Permission {
                errno,
                paranoid,
                per_cpu,
            } => {
                let name = if errno == EPERM { "EPERM" } else { "EACCES" };
                write!(f, "perf_event_open refused ({name}): ")?;
                match paranoid {
                    Some(p) => write!(f, "/proc/sys/kernel/perf_event_paranoid is {p}; ")?,
                    None => {
                        f.write_str("/proc/sys/kernel/perf_event_paranoid could not be read; ")?
                    }
                }
                if per_cpu {
                    f.write_str(
                        "per-CPU breakpoints need perf_event_paranoid <= 0 or CAP_PERFMON \
                         (CAP_SYS_ADMIN before Linux 5.8): run as root, grant the capability, or \
                         `sysctl kernel.perf_event_paranoid=0`; per-thread breakpoints need no \
                         privilege",
                    )
                } else {
                    f.write_str(
                        "per-thread breakpoints need perf_event_paranoid <= 2 (a value of 3 or \
                         more, a distribution patch, forbids perf to unprivileged users) or \
                         CAP_PERFMON: `sysctl kernel.perf_event_paranoid=2` or run with the \
                         capability; a thread of another process also needs the rights a \
                         debugger reading it would have (same user and a dumpable process, or \
                         CAP_SYS_PTRACE); a security module (SELinux perf_event class, seccomp) \
                         may also refuse the call",
                    )
                }
            }
            Error::NoHardware { errno } => write!(
                f,
                "no hardware breakpoint support (errno {errno}): the kernel was built without \
                 CONFIG_HAVE_HW_BREAKPOINT/CONFIG_PERF_EVENTS or the (virtual) CPU exposes no \
                 debug registers; run on bare metal or a hypervisor that passes them through"
            ),
            Error::CpuOffline { cpu } => write!(
                f,
                "CPU {cpu} is offline (ENODEV): per-CPU breakpoints open only on online CPUs; \
                 bring it online (/sys/devices/system/cpu/cpu{cpu}/online) or use \
                 Target::AllCpus, which opens on the CPUs online at the time"
            ),
            Error::KernelTooOld { major, minor } => write!(
                f,
                "Linux {major}.{minor} lacks perf `sigtrap`/`remove_on_exec` (added in 5.13), \
                 needed for synchronous SIGTRAP delivery; upgrade the kernel or open the \
                 breakpoint with Delivery::CountOnly"
            ),
            Error::Rejected { reason } => {
                write!(f, "the kernel refused the breakpoint (EINVAL): {reason}")
            }
            // Negative thread ids (from `thread`) are stored sign-extended.
            Error::NoSuchTask { tid } => write!(f, "no thread with id {} (ESRCH)", tid as i64),
            Error::TooManyFiles => f.write_str(
                "out of file descriptors (EMFILE/ENFILE): each breakpoint holds one per thread or \
                 CPU; close some or raise `ulimit -n`",
            ),
            Error::OtherProcess { opened_by } => write!(
                f,
                "this breakpoint was opened by process {opened_by}: a forked child shares \
                 its perf events, so enabling, disabling or moving it here would change the \
                 parent's breakpoint (and every inherited copy); open a breakpoint of the \
                 child's own instead"
            ),
            Error::RingBuffer { errno, bytes } => {
                write!(
                    f,
                    "mmap of the {bytes}-byte perf ring buffer failed (errno {errno})"
                )?;
                if errno == EPERM {
                    f.write_str(
                        ": more than this user may lock for perf (kernel.perf_event_mlock_kb per \
                         CPU, then `ulimit -l`); ask for fewer pages, raise the limits, or run \
                         with CAP_IPC_LOCK",
                    )?;
                }
                Ok(())
            }
            Error::RingCorrupt { what } => write!(
                f,
                "malformed perf ring-buffer record ({what}); the records after it up to the \
                 kernel's head were skipped"
            ),
            Error::Unsupported(why) => write!(f, "unsupported on Linux: {why}"),
            Error::Os { call, errno } => write!(f, "{call} failed with errno {errno}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

/// `EPERM` on every Linux architecture (kept here so the type builds anywhere).
const EPERM: i32 = 1;

/// No system calls: these also run under Miri
/// (`cargo +nightly miri test -p hwbp-linux --lib pure_tests`).
#[cfg(test)]
mod pure_tests {
    use super::*;

    #[test]
    fn messages_say_why_and_what_to_do() {
        let p = Error::Permission {
            errno: 13,
            paranoid: Some(3),
            per_cpu: false,
        }
        .to_string();
        assert!(
            p.contains("EACCES") && p.contains("perf_event_paranoid is 3"),
            "{p}"
        );
        assert!(p.contains("sysctl kernel.perf_event_paranoid=2"), "{p}");
        let c = Error::Permission {
            errno: 1,
            paranoid: Some(2),
            per_cpu: true,
        }
        .to_string();
        assert!(
            c.contains("EPERM") && c.contains("is 2") && c.contains("<= 0"),
            "{c}"
        );
        let u = Error::Permission {
            errno: 13,
            paranoid: None,
            per_cpu: false,
        }
        .to_string();
        assert!(u.contains("could not be read"), "{u}");
        let old = Error::KernelTooOld {
            major: 5,
            minor: 10,
        }
        .to_string();
        assert!(old.contains("Linux 5.10") && old.contains("5.13"), "{old}");
        assert!(Error::NoSlot.to_string().contains("ENOSPC"));
        let off = Error::CpuOffline { cpu: 5 }.to_string();
        assert!(
            off.contains("CPU 5 is offline") && off.contains("cpu5/online"),
            "{off}"
        );
        assert!(Error::NoSuchTask {
            tid: (-42i64) as u64
        }
        .to_string()
        .contains("id -42 "));
        assert!(Error::NoSuchTask { tid: 42 }.to_string().contains("id 42 "));
        let other = Error::OtherProcess { opened_by: 77 }.to_string();
        assert!(
            other.contains("opened by process 77") && other.contains("parent's breakpoint"),
            "{other}"
        );
        assert!(
            p.contains("another process") && p.contains("CAP_SYS_PTRACE"),
            "{p}"
        );
        let ring = Error::RingBuffer {
            errno: 1,
            bytes: 266_240,
        }
        .to_string();
        assert!(
            ring.contains("266240-byte") && ring.contains("perf_event_mlock_kb"),
            "{ring}"
        );
        let ring = Error::RingBuffer {
            errno: 12,
            bytes: 8192,
        }
        .to_string();
        assert!(ring.ends_with("(errno 12)"), "{ring}");
        let inv = Error::from(hwbp_core::Error::UnsupportedAccess).to_string();
        assert!(inv.starts_with("invalid breakpoint: "), "{inv}");
    }

    #[test]
    fn core_equivalents() {
        assert_eq!(
            Error::NoSlot.core(),
            Some(hwbp_core::Error::NoSlot { cpu: 0 })
        );
        assert_eq!(
            Error::Invalid(hwbp_core::Error::ZeroLength).core(),
            Some(hwbp_core::Error::ZeroLength)
        );
        assert_eq!(
            Error::NoHardware { errno: 19 }.core(),
            Some(hwbp_core::Error::Hardware(
                hwbp_core::HardwareError::NoDebugHardware
            ))
        );
        assert_eq!(Error::TooManyFiles.core(), None);
    }
}
