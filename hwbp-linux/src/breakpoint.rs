//! [`Breakpoint`]: one hardware breakpoint opened through `perf_event_open`.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use hwbp_core::{BreakpointAttr, Target, TaskId};

use crate::abi::{self, PerfEventAttr};
use crate::rules::{self, PerfRules};
use crate::signal::{self, HitFn, Slot};
use crate::{sys, Error, Id};

/// How hits are reported.
#[derive(Clone, Copy, Debug)]
pub enum Delivery {
    /// A synchronous SIGTRAP in the thread that hit, every `sample_period`
    /// hits, calling the handler if there is one (perf `sigtrap`, Linux ≥ 5.13).
    /// Hits while SIGTRAP is blocked in that thread are coalesced into one late
    /// delivery (see [`Breakpoint::samples`] and [`crate::Hit::covers`]).
    /// Thread targets of this process only. x86_64 only: on aarch64 it is
    /// refused with [`Error::Unsupported`], because the kernel's step over a hit
    /// is spent on the signal handler and the same instruction then fires again
    /// for ever.
    Signal(Option<HitFn>),
    /// No signal: the kernel only counts. Works for every target, including
    /// per-CPU ones and threads of other processes.
    CountOnly,
}

/// A hardware breakpoint owned by this process. Closing (dropping) it removes
/// it from every thread, child and CPU it was opened on.
#[derive(Debug)]
pub struct Breakpoint {
    // Drop order matters: the table entry is freed (which waits for handlers
    // of this breakpoint running on other threads) before the events are
    // closed, because a handler reads their counts. A signal raised in between
    // finds the entry without its cookie and is dropped.
    /// The signal-table entry, for [`Delivery::Signal`] only.
    slot: Option<Slot>,
    fds: Vec<OwnedFd>,
    id: Id,
    attr: BreakpointAttr,
    /// Whether the events were opened with `remove_on_exec` (not on a kernel
    /// without it, see [`without_remove_on_exec`]): with `attr` and the
    /// slot's cookie, what rebuilds their `perf_event_attr` ([`Breakpoint::perf`]),
    /// which is not stored (it would double the size of a `Breakpoint`).
    remove_on_exec: bool,
    /// Whether the events were last asked to be enabled (by open, `enable`,
    /// `disable` or `modify`): the state a failed call rolls back to.
    enabled: AtomicBool,
    /// The process that opened it: only there may the events be switched or
    /// changed (a forked child's descriptors name the same events).
    opened_by: i32,
}

/// Apply `op` to each item in order. If it fails on item `k`, apply `undo` to
/// items `0..k` (those `op` changed), then return `k` and the error.
fn apply_all<T, E>(
    items: &[T],
    mut op: impl FnMut(&T) -> Result<(), E>,
    mut undo: impl FnMut(&T),
) -> Result<(), (usize, E)> {
    for (k, item) in items.iter().enumerate() {
        if let Err(e) = op(item) {
            items[..k].iter().rev().for_each(&mut undo);
            return Err((k, e));
        }
    }
    Ok(())
}

/// The [`Target`] for the calling thread.
pub fn current_thread() -> Target {
    thread(sys::my_tid())
}

/// The [`Target`] for thread `tid` (a kernel thread id, as from `gettid`).
///
/// A negative `tid` names no thread: opening it fails with
/// [`Error::NoSuchTask`] (it is not taken as 0, the calling thread).
pub fn thread(tid: i32) -> Target {
    // Sign-extended, a negative id is above `i32::MAX`, which `places` refuses.
    Target::Task {
        task: TaskId(i64::from(tid) as u64),
        cpu: None,
    }
}

/// The error for `perf_event_open(.., pid, cpu, ..)` failing with `errno`.
pub(crate) fn map_errno(errno: i32, pid: i32, cpu: i32, sigtrap: bool) -> Error {
    let per_cpu = pid == -1;
    match errno {
        // Per-CPU events on an offline CPU (kernel/events/core.c:
        // `if (!cpuctx->online) err = -ENODEV`); CPU numbers the kernel does not
        // have at all are refused before the call.
        libc::ENODEV if per_cpu => Error::CpuOffline {
            cpu: u32::try_from(cpu).unwrap_or(u32::MAX),
        },
        libc::ENOSPC => Error::NoSlot,
        libc::EACCES | libc::EPERM => Error::Permission {
            errno,
            paranoid: sys::perf_event_paranoid(),
            per_cpu,
        },
        libc::ENODEV | libc::ENOENT | libc::EOPNOTSUPP | libc::ENOSYS => {
            Error::NoHardware { errno }
        }
        libc::E2BIG => {
            let (major, minor) = sys::kernel_version().unwrap_or((0, 0));
            Error::KernelTooOld { major, minor }
        }
        libc::EINVAL => match sys::kernel_version() {
            Some((major, minor)) if sigtrap && (major, minor) < (5, 13) => {
                Error::KernelTooOld { major, minor }
            }
            _ => Error::Rejected {
                reason: "the kernel's breakpoint rules (address, length, type) differ from \
                         hwbp's for this CPU; hwbp-linux already refused what it knows to be \
                         invalid",
            },
        },
        libc::ESRCH => Error::NoSuchTask {
            tid: i64::from(pid) as u64,
        },
        libc::EMFILE | libc::ENFILE => Error::TooManyFiles,
        _ => Error::Os {
            call: "perf_event_open",
            errno,
        },
    }
}

/// The attr to retry with after `EINVAL` from `perf_event_open`, or `None`
/// when the cause is something else. Linux before 5.13 has no
/// `remove_on_exec` (the bit is reserved there): a count-only event is then
/// opened without it, so a copy inherited by a child survives the child's
/// `execve` there. Signal delivery needs the bit, so it is not retried.
pub(crate) fn without_remove_on_exec(
    perf: &PerfEventAttr,
    kernel: Option<(u32, u32)>,
) -> Option<PerfEventAttr> {
    let flags = perf.flags;
    let old_kernel = kernel.is_some_and(|v| v < (5, 13));
    (old_kernel && flags & abi::flag::REMOVE_ON_EXEC != 0 && flags & abi::flag::SIGTRAP == 0)
        .then_some(PerfEventAttr {
            flags: flags & !abi::flag::REMOVE_ON_EXEC,
            ..*perf
        })
}

/// Why [`Delivery::Signal`] is refused on arm64. Seen on Linux 6.1 under QEMU
/// (`cargo xtask linux-arm64`) and the reason Linux's own perf `Sigtrap` test is
/// skipped on arm64: a watchpoint or breakpoint exception is taken before the
/// instruction completes, and the kernel steps over it with a one-instruction
/// single step. When a signal is delivered in between, that step lands on the
/// handler's first instruction; the breakpoint is re-armed, `sigreturn`
/// re-executes the instruction, and it fires again, for ever. (With a sample
/// period above 1 it moves on, but every signal adds a second hit to the count.)
#[cfg(target_arch = "aarch64")]
pub(crate) const ARM64_NO_SIGTRAP: &str =
    "synchronous SIGTRAP does not work for arm64 perf breakpoints: the kernel's step over the \
     hit runs the signal handler's first instruction instead, so the breakpoint fires again on \
     the same instruction for ever; open it with Delivery::CountOnly";

/// The `(pid, cpu)` pairs of a breakpoint's events: a thread or CPU target
/// has one, kept inline (no allocation per open).
#[derive(Debug, PartialEq, Eq)]
enum Places {
    One((i32, i32)),
    Many(Vec<(i32, i32)>),
}

impl Places {
    fn as_slice(&self) -> &[(i32, i32)] {
        match self {
            Places::One(place) => core::slice::from_ref(place),
            Places::Many(places) => places,
        }
    }
}

/// `(pid, cpu)` pairs for `perf_event_open`.
fn places(target: Target, sigtrap: bool) -> Result<Places, Error> {
    let per_cpu_signal = Error::Unsupported(
        "synchronous SIGTRAP needs a thread target (the kernel signals only the task an \
         event belongs to); open per-CPU breakpoints with Delivery::CountOnly",
    );
    match target {
        Target::Cpu(c) => {
            if sigtrap {
                return Err(per_cpu_signal);
            }
            Ok(Places::One((-1, i32::from(c))))
        }
        Target::AllCpus => {
            if sigtrap {
                return Err(per_cpu_signal);
            }
            let cpus = sys::online_cpus();
            if cpus.is_empty() {
                return Err(Error::Os {
                    call: "read /sys/devices/system/cpu/online",
                    errno: 0,
                });
            }
            Ok(Places::Many(
                cpus.into_iter().map(|c| (-1, i32::from(c))).collect(),
            ))
        }
        Target::Task { task, cpu } => {
            let pid = i32::try_from(task.0).map_err(|_| Error::NoSuchTask { tid: task.0 })?;
            if sigtrap && pid != 0 && !sys::is_own_thread(pid) {
                return Err(Error::Unsupported(
                    "SIGTRAP delivery works only for threads of this process (the signal would \
                     run the other process's SIGTRAP disposition); use Delivery::CountOnly",
                ));
            }
            Ok(Places::One((pid, cpu.map_or(-1, i32::from))))
        }
    }
}

impl Breakpoint {
    /// Open a breakpoint.
    ///
    /// Targets:
    /// * `Target::Task { task: TaskId(tid), cpu }`: thread `tid` (0 = the calling
    ///   thread; see [`current_thread`]). With `inherit`, every thread and
    ///   process it creates from now on gets a copy, and so on down the tree:
    ///   this is Linux's only notion of "per-process" for an event (there is no
    ///   target for "all existing threads of a process"; see
    ///   [`Breakpoint::open_process`] for that).
    /// * `Target::Cpu(c)` / `Target::AllCpus`: everything that runs in user mode
    ///   on that CPU / on each online CPU (one event each). Needs
    ///   `perf_event_paranoid` ≤ 0 or CAP_PERFMON, and [`Delivery::CountOnly`].
    ///
    /// `exclude_kernel` is always set (user space cannot watch kernel memory),
    /// and so is `remove_on_exec` for thread targets, with either delivery: a
    /// thread or child that calls `execve` loses its copy (on Linux before
    /// 5.13, which lacks it, a count-only breakpoint is opened without it).
    /// The request is checked with the architecture's encoder and Linux's perf
    /// rules first ([`crate::rules`]); what the kernel still refuses maps to
    /// [`Error`].
    pub fn open(attr: &BreakpointAttr, delivery: Delivery) -> Result<Self, Error> {
        let attr = attr.user_only();
        let sigtrap = matches!(delivery, Delivery::Signal(_));
        let places = places(attr.target, sigtrap)?;
        Self::open_at(attr, delivery, places.as_slice())
    }

    /// Open a breakpoint with synchronous delivery to `handler`.
    pub fn with_handler(attr: &BreakpointAttr, handler: HitFn) -> Result<Self, Error> {
        Self::open(attr, Delivery::Signal(Some(handler)))
    }

    /// Open one inheriting copy of the breakpoint on every thread that exists in
    /// this process now (from `/proc/self/task`), so that the whole process and
    /// everything it spawns later is covered. The target of `attr` is ignored.
    /// Each copy takes one debug register of its thread.
    ///
    /// Limit: a thread spawned while this call runs, by a thread that has no
    /// copy yet, is not covered (it is not in the listing read at the start,
    /// and there is nothing for it to inherit). Re-reading the listing would
    /// not help: it cannot tell such a thread from one that inherited a copy,
    /// which would then count twice. Call it while no thread is being spawned,
    /// or open an inheriting breakpoint before spawning threads.
    pub fn open_process(attr: &BreakpointAttr, delivery: Delivery) -> Result<Self, Error> {
        let attr = attr.user_only().inherit(true).target(current_thread());
        let dir = std::fs::read_dir("/proc/self/task").map_err(|e| Error::Os {
            call: "read /proc/self/task",
            errno: e.raw_os_error().unwrap_or(0),
        })?;
        let mut places = Vec::new();
        for entry in dir.flatten() {
            if let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            {
                places.push((tid, -1));
            }
        }
        Self::open_at(attr, delivery, &places)
    }

    fn open_at(
        attr: BreakpointAttr,
        delivery: Delivery,
        places: &[(i32, i32)],
    ) -> Result<Self, Error> {
        let rules = rules::Native::new();
        rules::check(&rules, &attr, sys::nr_cpus())?;
        let (sigtrap, handler) = match delivery {
            Delivery::Signal(h) => (true, h),
            Delivery::CountOnly => (false, None),
        };
        // Before the SIGTRAP handler is installed: a refused request leaves the
        // process's disposition alone.
        #[cfg(target_arch = "aarch64")]
        if sigtrap {
            return Err(Error::Unsupported(ARM64_NO_SIGTRAP));
        }
        if sigtrap {
            signal::install().map_err(|errno| Error::Os {
                call: "sigaction(SIGTRAP)",
                errno,
            })?;
        }
        // Declared before the slot, so on an error return the slot is freed
        // (waiting for handlers that read these events) before they close.
        let mut fds = Vec::with_capacity(places.len());
        // Only signal delivery takes one of the table's `signal::TABLE_SIZE`
        // entries; a count-only breakpoint just needs a distinct id.
        let slot = if sigtrap {
            Some(
                Slot::claim(handler, places.len())
                    .ok_or(Error::Invalid(hwbp_core::Error::TooManyEvents))?,
            )
        } else {
            None
        };
        let id = Id(slot
            .as_ref()
            .map_or_else(signal::count_only_id, Slot::cookie));
        let mut perf =
            PerfEventAttr::breakpoint(&attr, rules.bp_len(&attr), slot.as_ref().map(Slot::cookie));
        let many = places.len() > 1;
        for &(pid, cpu) in places {
            let opened = match sys::perf_event_open(&perf, pid, cpu) {
                Err(libc::EINVAL) => match without_remove_on_exec(&perf, sys::kernel_version()) {
                    Some(older) => {
                        perf = older;
                        sys::perf_event_open(&perf, pid, cpu)
                    }
                    None => Err(libc::EINVAL),
                },
                other => other,
            };
            match opened {
                Ok(fd) => {
                    if let Some(slot) = &slot {
                        slot.record(fds.len(), std::os::fd::AsRawFd::as_raw_fd(&fd));
                    }
                    fds.push(fd);
                }
                // A thread that exited while /proc/self/task was listed.
                Err(libc::ESRCH) if many && pid > 0 => {}
                Err(e) => return Err(map_errno(e, pid, cpu, sigtrap)),
            }
        }
        let enabled = AtomicBool::new(!attr.disabled);
        let bp = Breakpoint {
            slot,
            fds,
            id,
            attr,
            remove_on_exec: perf.flags & abi::flag::REMOVE_ON_EXEC != 0,
            enabled,
            opened_by: sys::getpid(),
        };
        debug_assert_eq!(
            bp.perf(&rules),
            perf,
            "the events' attr is rebuilt as opened"
        );
        Ok(bp)
    }

    /// The `perf_event_attr` the events were opened (or last modified) with,
    /// rebuilt from the request; `rules` are [`rules::Native`]'s.
    fn perf(&self, rules: &rules::Native) -> PerfEventAttr {
        Self::perf_of(&self.attr, rules, self.slot.as_ref(), self.remove_on_exec)
    }

    /// The `perf_event_attr` for `attr` with `slot`'s cookie as `sig_data`,
    /// with or without `remove_on_exec`.
    fn perf_of(
        attr: &BreakpointAttr,
        rules: &rules::Native,
        slot: Option<&Slot>,
        remove_on_exec: bool,
    ) -> PerfEventAttr {
        let perf = PerfEventAttr::breakpoint(attr, rules.bp_len(attr), slot.map(Slot::cookie));
        let flags = perf.flags & !abi::flag::REMOVE_ON_EXEC;
        PerfEventAttr {
            flags: if remove_on_exec {
                flags | abi::flag::REMOVE_ON_EXEC
            } else {
                flags
            },
            ..perf
        }
    }

    /// The identifier handlers see in [`crate::Hit::id`].
    pub fn id(&self) -> Id {
        self.id
    }

    /// The request as opened (with `exclude_kernel` set).
    pub fn attr(&self) -> &BreakpointAttr {
        &self.attr
    }

    /// The ioctl that enables (`true`) or disables the events.
    fn switch(on: bool) -> u64 {
        if on {
            abi::PERF_EVENT_IOC_ENABLE
        } else {
            abi::PERF_EVENT_IOC_DISABLE
        }
    }

    /// Refuses to act on the events from a process other than the opener
    /// (a forked child), where they are still the parent's.
    fn check_owner(&self) -> Result<(), Error> {
        if sys::getpid() == self.opened_by {
            Ok(())
        } else {
            Err(Error::OtherProcess {
                opened_by: self.opened_by,
            })
        }
    }

    fn set_enabled(&self, on: bool, call: &'static str) -> Result<(), Error> {
        self.check_owner()?;
        let was = self.enabled.load(Ordering::Acquire);
        apply_all(
            &self.fds,
            |fd| sys::ioctl(fd, Self::switch(on), 0),
            // Best effort: if the kernel refuses this too, the events stay mixed.
            |fd| {
                if was != on {
                    let _ = sys::ioctl(fd, Self::switch(was), 0);
                }
            },
        )
        .map_err(|(_, errno)| Error::Os { call, errno })?;
        self.enabled.store(on, Ordering::Release);
        Ok(())
    }

    /// Arm the breakpoint (in inherited copies too). If the kernel refuses it
    /// for one of the breakpoint's events (threads, CPUs), those already armed
    /// are disarmed again before the error is returned; that rollback is best
    /// effort (a refusal of it is ignored).
    ///
    /// In a forked child it is refused with [`Error::OtherProcess`]: the
    /// child's descriptors name the parent's events, so it would arm the
    /// parent's breakpoint and every inherited copy. The same holds for
    /// [`Breakpoint::disable`] and [`Breakpoint::modify`].
    ///
    /// It takes no lock (atomics and ioctls only), so a [`HitFn`] may call it.
    /// Calls of `enable` and `disable` on one breakpoint racing on several
    /// threads are not serialized: with several events (threads, CPUs) their
    /// ioctls may interleave, so serialize such calls yourself.
    pub fn enable(&self) -> Result<(), Error> {
        self.set_enabled(true, "ioctl(PERF_EVENT_IOC_ENABLE)")
    }

    /// Disarm it (in inherited copies too); it keeps its count and slot. On an
    /// error, rolled back like [`Breakpoint::enable`]. Like `enable`, usable
    /// from a [`HitFn`], not serialized against racing calls, and refused in a
    /// forked child ([`Error::OtherProcess`]).
    pub fn disable(&self) -> Result<(), Error> {
        self.set_enabled(false, "ioctl(PERF_EVENT_IOC_DISABLE)")
    }

    /// Move or retype the breakpoint in place (`PERF_EVENT_IOC_MODIFY_ATTRIBUTES`,
    /// which also updates inherited copies). Only `addr`, `len`, `access` and
    /// `disabled` may differ from the attr it was opened with; Linux refuses
    /// anything else, and so does this call, with [`Error::Unsupported`].
    ///
    /// If the kernel refuses the change for one of the breakpoint's events
    /// (threads, CPUs), the events already changed get the old attributes and
    /// enabled state back before the error is returned, so the breakpoint still
    /// matches [`Breakpoint::attr`]; that rollback is best effort (a refusal of
    /// it is ignored). Refused in a forked child ([`Error::OtherProcess`]).
    pub fn modify(&mut self, new: &BreakpointAttr) -> Result<(), Error> {
        self.check_owner()?;
        let new = new.user_only();
        let old = self.attr;
        let same = new
            .addr(old.addr)
            .len(old.len)
            .access(old.access)
            .disabled(old.disabled);
        if same != old {
            return Err(Error::Unsupported(
                "modify can change only the address, length, access and disabled state; open a \
                 new breakpoint to change the target, period, pinning or inheritance",
            ));
        }
        let rules = rules::Native::new();
        rules::check(&rules, &new, sys::nr_cpus())?;
        // The instruction pool and the data pool are one on x86 but not on Arm;
        // perf itself refuses to move an event between them.
        if new.bp_type() != old.bp_type() {
            return Err(Error::Unsupported(
                "modify cannot turn a watchpoint into an instruction breakpoint or back; open a \
                 new breakpoint",
            ));
        }
        let old_perf = self.perf(&rules);
        // As opened: without remove_on_exec on a kernel that lacks it.
        let fresh = Self::perf_of(&new, &rules, self.slot.as_ref(), self.remove_on_exec);
        let modify = |fd: &OwnedFd, attr: &PerfEventAttr| {
            let ptr = attr as *const PerfEventAttr as libc::c_ulong;
            sys::ioctl(fd, abi::PERF_EVENT_IOC_MODIFY_ATTRIBUTES, ptr)
        };
        // The kernel disables an event while it modifies it, then enables it
        // again unless its attr says `disabled` (also when the change fails), so
        // the enabled state is restored after the old attributes.
        let enabled = self.enabled.load(Ordering::Acquire);
        let restore = |fd: &OwnedFd| {
            let _ = modify(fd, &old_perf);
            let _ = sys::ioctl(fd, Self::switch(enabled), 0);
        };
        if let Err((k, errno)) = apply_all(&self.fds, |fd| modify(fd, &fresh), restore) {
            restore(&self.fds[k]);
            return Err(match errno {
                libc::EINVAL => Error::Rejected {
                    reason: "PERF_EVENT_IOC_MODIFY_ATTRIBUTES refused the new address, length or \
                             type (needs Linux 4.17 or later)",
                },
                libc::ENOSPC => Error::NoSlot,
                _ => Error::Os {
                    call: "ioctl(PERF_EVENT_IOC_MODIFY_ATTRIBUTES)",
                    errno,
                },
            });
        }
        self.attr = new;
        self.enabled.store(!new.disabled, Ordering::Release);
        Ok(())
    }

    /// Exact number of hits so far: the kernel's count, summed over every thread,
    /// CPU and inherited copy (copies in children that have exited included;
    /// those still running are added as they are read). Read in a forked child,
    /// it is the same total, since the child's descriptors name the parent's
    /// events.
    pub fn count(&self) -> Result<u64, Error> {
        let mut total = 0u64;
        for fd in &self.fds {
            let n = sys::read_count(fd).map_err(|errno| Error::Os {
                call: "read(perf event)",
                errno,
            })?;
            total = total.wrapping_add(n);
        }
        Ok(total)
    }

    /// Number of SIGTRAPs (samples) this process has taken for the breakpoint
    /// (always 0 with [`Delivery::CountOnly`]). Forked children count in their
    /// own copy of the table.
    ///
    /// Not always `count() / sample_period`: SIGTRAP is a standard signal, so
    /// while it is blocked in a thread (by `pthread_sigmask`, or during any
    /// SIGTRAP handler, this crate's included) the first hit leaves one signal
    /// pending and the hits after it raise none. That one arrives late when
    /// SIGTRAP is unblocked ([`crate::Hit::late`]) and covers them all
    /// ([`crate::Hit::covers`]); [`Breakpoint::hits_delivered`] says how many
    /// hits the deliveries have covered.
    pub fn samples(&self) -> u64 {
        self.slot.as_ref().map_or(0, Slot::samples)
    }

    /// The hits the deliveries in this process have covered so far: the
    /// highest kernel count read at a delivery, which is the sum of their
    /// [`crate::Hit::covers`]. Equal to [`Breakpoint::count`] once every hit's
    /// signal has been handled, however many were coalesced (always 0 with
    /// [`Delivery::CountOnly`]; forked children count in their own copy).
    pub fn hits_delivered(&self) -> u64 {
        self.slot.as_ref().map_or(0, Slot::hits_delivered)
    }

    /// Replace the handler (takes effect for the next signal). Does nothing for
    /// a [`Delivery::CountOnly`] breakpoint, which raises no signal.
    pub fn set_handler(&self, handler: Option<HitFn>) {
        if let Some(slot) = &self.slot {
            slot.set_handler(handler);
        }
    }
}

/// No system calls: these also run under Miri
/// (`cargo +nightly miri test -p hwbp-linux --lib pure_tests`).
#[cfg(test)]
mod pure_tests {
    use super::*;

    #[test]
    fn a_failure_rolls_back_the_items_already_changed() {
        let mut log = Vec::new();
        let log = std::cell::RefCell::new(&mut log);
        let got = apply_all(
            &[1, 2, 3, 4],
            |&i| {
                log.borrow_mut().push(i);
                if i == 3 {
                    Err("no")
                } else {
                    Ok(())
                }
            },
            |&i| log.borrow_mut().push(-i),
        );
        assert_eq!(got, Err((2, "no")));
        assert_eq!(**log.borrow(), [1, 2, 3, -2, -1]);
        assert_eq!(
            apply_all(&[1, 2], |_| Ok::<(), ()>(()), |_| panic!("no undo")),
            Ok(())
        );
    }

    #[test]
    fn remove_on_exec_is_dropped_only_for_count_only_events_on_kernels_without_it() {
        use hwbp_core::{Access, TaskId};
        let task = BreakpointAttr::watch(0x1000, 1, Access::WRITE)
            .user_only()
            .target(Target::Task {
                task: TaskId(0),
                cpu: None,
            });
        let count_only = PerfEventAttr::breakpoint(&task, 1, None);
        let retry = without_remove_on_exec(&count_only, Some((5, 12))).expect("retried without it");
        assert_eq!(retry.flags, count_only.flags & !abi::flag::REMOVE_ON_EXEC);
        assert_eq!(
            PerfEventAttr {
                flags: count_only.flags,
                ..retry
            },
            count_only,
            "only the flag differs"
        );
        // A kernel that has it refused something else; one of unknown
        // version is not guessed at.
        for kernel in [Some((5, 13)), Some((6, 1)), None] {
            assert_eq!(
                without_remove_on_exec(&count_only, kernel),
                None,
                "{kernel:?}"
            );
        }
        // Signals need it; a per-CPU event never has it.
        let signal = PerfEventAttr::breakpoint(&task, 1, Some(0x4857 << 48));
        assert_eq!(without_remove_on_exec(&signal, Some((5, 12))), None);
        let per_cpu = PerfEventAttr::breakpoint(&task.target(Target::Cpu(0)), 1, None);
        assert_eq!(without_remove_on_exec(&per_cpu, Some((5, 12))), None);
    }
}

/// These make system calls (perf_event_open, threads, uname).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_tid_names_no_thread() {
        let got = places(thread(-42), false);
        assert!(matches!(got, Err(Error::NoSuchTask { .. })), "{got:?}");
        assert!(got.unwrap_err().to_string().contains("-42"));
        let got = Breakpoint::open(
            &BreakpointAttr::watch(0x1000, 4, hwbp_core::Access::WRITE).target(thread(-1)),
            Delivery::CountOnly,
        );
        assert!(matches!(got, Err(Error::NoSuchTask { .. })), "{got:?}");
        assert_eq!(
            places(thread(0), false).expect("calling thread"),
            Places::One((0, -1))
        );
        assert_eq!(
            places(thread(1234), false).expect("a thread id").as_slice(),
            [(1234, -1)]
        );
    }

    #[test]
    fn errno_mapping() {
        // ENODEV on a per-CPU event: that CPU is offline.
        assert_eq!(
            map_errno(libc::ENODEV, -1, 3, false),
            Error::CpuOffline { cpu: 3 }
        );
        // On a thread it still means no breakpoint support.
        assert_eq!(
            map_errno(libc::ENODEV, 0, -1, false),
            Error::NoHardware {
                errno: libc::ENODEV
            }
        );
        assert_eq!(
            map_errno(libc::ENOENT, -1, 0, false),
            Error::NoHardware {
                errno: libc::ENOENT
            }
        );
        for (pid, cpu) in [(-1, 2), (0, -1)] {
            match map_errno(libc::EINVAL, pid, cpu, false) {
                Error::Rejected { reason } => assert!(!reason.contains("offline"), "{reason}"),
                other => panic!("EINVAL: {other:?}"),
            }
        }
        assert_eq!(
            map_errno(libc::ESRCH, 77, -1, false),
            Error::NoSuchTask { tid: 77 }
        );
        assert_eq!(map_errno(libc::ENOSPC, 0, -1, true), Error::NoSlot);
        assert_eq!(map_errno(libc::EMFILE, 0, -1, true), Error::TooManyFiles);
        assert!(matches!(
            map_errno(libc::EPERM, -1, 0, false),
            Error::Permission {
                errno: libc::EPERM,
                per_cpu: true,
                ..
            }
        ));
        assert_eq!(
            map_errno(libc::EBUSY, 0, -1, false),
            Error::Os {
                call: "perf_event_open",
                errno: libc::EBUSY
            }
        );
    }

    /// Count-only breakpoints take no signal-table entry, so more than
    /// `TABLE_SIZE` of them can be open (on enough threads for the debug
    /// registers), each with its own id.
    #[test]
    fn count_only_breakpoints_take_no_signal_table_entry() {
        use std::sync::{mpsc, Arc, Barrier};
        static WATCHED: u64 = 0;
        let threads = signal::TABLE_SIZE / 4 + 1;
        let release = Arc::new(Barrier::new(threads + 1));
        let (tx, rx) = mpsc::channel();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (tx, release) = (tx.clone(), Arc::clone(&release));
                std::thread::spawn(move || {
                    tx.send(sys::gettid()).expect("test thread listens");
                    release.wait();
                })
            })
            .collect();
        let mut bps = Vec::new();
        for _ in 0..threads {
            let tid = rx.recv().expect("a thread id");
            for len in [1, 2, 4, 8] {
                let attr =
                    BreakpointAttr::watch(&raw const WATCHED as u64, len, hwbp_core::Access::WRITE)
                        .target(thread(tid));
                match Breakpoint::open(&attr, Delivery::CountOnly) {
                    Ok(bp) => bps.push(bp),
                    Err(e) => panic!("count-only breakpoint {} failed: {e}", bps.len() + 1),
                }
            }
        }
        assert!(bps.len() > signal::TABLE_SIZE);
        let ids: std::collections::HashSet<Id> = bps.iter().map(Breakpoint::id).collect();
        assert_eq!(ids.len(), bps.len(), "ids are unique");
        assert!(bps.iter().all(|bp| bp.samples() == 0));
        drop(bps);
        release.wait();
        for h in handles {
            h.join().expect("no panic");
        }
    }

    /// The events' `perf_event_attr` is not stored but rebuilt (for
    /// `modify`'s rollback): as opened, and as modified, with the signal
    /// cookie and `remove_on_exec` kept.
    #[test]
    fn the_events_attr_is_rebuilt_as_opened_and_as_modified() {
        static WORDS: [u64; 2] = [0; 2];
        fn on_hit(_: &crate::Hit) {}
        let rules = rules::Native::new();
        let attr = BreakpointAttr::watch(&raw const WORDS[0] as u64, 8, hwbp_core::Access::WRITE)
            .target(current_thread());
        let moved = attr.addr(&raw const WORDS[1] as u64);
        // Signal delivery is refused on arm64 (see `Delivery::Signal`).
        let deliveries = [Delivery::CountOnly, Delivery::Signal(Some(on_hit))];
        let n = if cfg!(target_arch = "x86_64") { 2 } else { 1 };
        for &delivery in &deliveries[..n] {
            let mut bp = Breakpoint::open(&attr, delivery).expect("open");
            let cookie = bp.slot.as_ref().map(Slot::cookie);
            assert_eq!(cookie.is_some(), matches!(delivery, Delivery::Signal(_)));
            let opened = PerfEventAttr::breakpoint(&attr.user_only(), 8, cookie);
            assert_eq!(
                opened.flags & abi::flag::REMOVE_ON_EXEC,
                abi::flag::REMOVE_ON_EXEC
            );
            assert_eq!(bp.perf(&rules), opened);
            bp.modify(&moved).expect("modify");
            let perf = bp.perf(&rules);
            assert_eq!(
                perf,
                PerfEventAttr::breakpoint(&moved.user_only(), 8, cookie)
            );
            assert_eq!(perf.sig_data, cookie.unwrap_or(0));
            // Opened without remove_on_exec (an old kernel): rebuilt without.
            bp.remove_on_exec = false;
            assert_eq!(
                bp.perf(&rules).flags,
                perf.flags & !abi::flag::REMOVE_ON_EXEC
            );
        }
    }

    /// A breakpoint whose second event is not a perf event (so every ioctl on
    /// it fails): a call that fails there must undo what it did to the first.
    #[test]
    fn enable_disable_and_modify_roll_back_on_a_failing_event() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static A: AtomicU64 = AtomicU64::new(0);
        static B: AtomicU64 = AtomicU64::new(0);
        let watch = |v: &AtomicU64| {
            BreakpointAttr::watch(v.as_ptr() as u64, 8, hwbp_core::Access::WRITE)
                .target(current_thread())
        };
        let mut bp =
            Breakpoint::open(&watch(&A).disabled(true), Delivery::CountOnly).expect("open");
        let count = |bp: &Breakpoint| sys::read_count(&bp.fds[0]).expect("read");
        let not_perf = OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        bp.fds.push(not_perf);

        // enable fails on the second event: the first is disabled again.
        assert!(matches!(bp.enable(), Err(Error::Os { .. })));
        A.store(1, Ordering::SeqCst);
        assert_eq!(count(&bp), 0, "the first event was left enabled");

        let not_perf = bp.fds.pop().expect("pushed");
        bp.enable().expect("enable");
        bp.fds.push(not_perf);
        A.store(2, Ordering::SeqCst);
        assert_eq!(count(&bp), 1);

        // disable fails: the first event is enabled again.
        assert!(matches!(bp.disable(), Err(Error::Os { .. })));
        A.store(3, Ordering::SeqCst);
        assert_eq!(count(&bp), 2, "the first event was left disabled");

        // modify fails: the first event watches A again, still enabled.
        assert!(bp.modify(&watch(&B)).is_err());
        assert_eq!(bp.attr().addr, A.as_ptr() as u64);
        B.store(1, Ordering::SeqCst);
        assert_eq!(count(&bp), 2, "the first event was left watching B");
        A.store(4, Ordering::SeqCst);
        assert_eq!(count(&bp), 3, "the first event no longer watches A");
    }
}
