//! System calls (Linux only).

use core::cell::Cell;
#[cfg(test)]
use core::sync::atomic::{AtomicI32, AtomicUsize};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::os::fd::{FromRawFd, OwnedFd};

use crate::abi::PerfEventAttr;

/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

// Pointers are 8 bytes on the targets this module is built for, so the
// `_perf` struct (8-byte aligned) sits right after `si_addr`.
static_assertions::assert_eq_size!(usize, u64);
static_assertions::assert_eq_size!(libc::siginfo_t, [u8; 128]);

/// The errno of the last failed call on this thread.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)`.
pub fn perf_event_open(attr: &PerfEventAttr, pid: i32, cpu: i32) -> Result<OwnedFd, i32> {
    // SAFETY: `attr` points to a live, fully initialised struct of the size given
    // in its `size` field; the kernel only reads it (and may write `size` back on
    // E2BIG, into memory we own, but only through a mutable copy below).
    let mut copy = *attr;
    // SAFETY: see above; the other arguments are plain integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &mut copy as *mut PerfEventAttr,
            pid,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(errno());
    }
    let fd = i32::try_from(ret).map_err(|_| libc::EBADF)?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(fd, request, arg)` on a perf event descriptor.
pub fn ioctl(fd: &OwnedFd, request: u64, arg: libc::c_ulong) -> Result<(), i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: `fd` is an open perf event; the requests used here take either no
    // argument or a pointer to a live `PerfEventAttr` (cast to `arg` by the caller,
    // which keeps it alive across the call).
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Read the 8-byte counter of a perf event (default `read_format`).
pub fn read_count(fd: &OwnedFd) -> Result<u64, i32> {
    use std::os::fd::AsRawFd;
    read_count_raw(fd.as_raw_fd())
}

/// [`read_count`] of a descriptor number the caller keeps open. Async-signal-safe.
pub fn read_count_raw(fd: i32) -> Result<u64, i32> {
    let mut value = 0u64;
    loop {
        // SAFETY: reads at most 8 bytes into `value`, which lives across the call.
        let n = unsafe {
            libc::read(
                fd,
                (&mut value as *mut u64).cast(),
                core::mem::size_of::<u64>(),
            )
        };
        if n == 8 {
            return Ok(value);
        }
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        return Err(libc::EIO);
    }
}

/// The calling thread's kernel id.
pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail; it is async-signal-safe.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The calling process's id, asked of the kernel once per process.
///
/// It is cached in a page the kernel clears in the child at every fork
/// (`MADV_WIPEONFORK`, Linux ≥ 4.14), `fork(3)`, `_Fork` and raw
/// `clone`/`SYS_fork` calls alike, so a child asks again and gets its own id:
/// as exact as the system call, without one per call (an open asked twice).
/// Not in a child that shares the parent's memory (`vfork`, or `clone` with
/// `CLONE_VM` and without `CLONE_THREAD`), which sees the parent's cache
/// (and may only `exec` or `_exit`). Without `MADV_WIPEONFORK`, every call
/// asks.
pub fn getpid() -> i32 {
    match pid_cell() {
        Some(cell) => cached_ids(cell).0,
        None => ask_pid(),
    }
}

/// The process id and its epoch from the cache `cell` (see [`pid_cell`]),
/// asking the kernel when the cache is empty. The epoch is drawn from
/// [`EPOCH`] each time the cache is filled: a fork copies that counter but
/// wipes the cache, so a process never fills it with an epoch that one of
/// its ancestors (or itself, earlier) used. [`my_tid`] keys on it, not on
/// the process id, which the kernel reuses after its process exits.
fn cached_ids(cell: &AtomicU64) -> (i32, u32) {
    let cached = cell.load(Ordering::Relaxed);
    if cached != 0 && cached != ASKING {
        return unpack_ids(cached);
    }
    // Marked before asking, and stored only over the mark: if a fork (from a
    // signal handler interrupting this call) clears the page in between, the
    // child does not keep the parent's id.
    cell.store(ASKING, Ordering::Relaxed);
    let pid = ask_pid();
    let epoch = EPOCH.fetch_add(1, Ordering::Relaxed).wrapping_add(1).max(1);
    // The low half is a process id (positive), never `ASKING`'s.
    let mine = u64::from(epoch) << 32 | u64::from(pid.unsigned_abs());
    match cell.compare_exchange(ASKING, mine, Ordering::Relaxed, Ordering::Relaxed) {
        // Another thread filled it first: the same id, and its epoch for all.
        Err(other) if other != 0 && other != ASKING => unpack_ids(other),
        // Stored, or this is a child forked meanwhile (its next call asks
        // again, under a newer epoch).
        _ => (pid, epoch),
    }
}

/// The (process id, epoch) of a filled cache word.
fn unpack_ids(word: u64) -> (i32, u32) {
    ((word as u32) as i32, (word >> 32) as u32)
}

/// The epoch counter of [`cached_ids`]: ordinary memory, copied by a fork
/// (unlike the cache). Wraps only after 2^32 fills along one line of forks.
static EPOCH: AtomicU32 = AtomicU32::new(0);

/// [`pid_cell`] while a thread asks the kernel (never a filled word).
const ASKING: u64 = u64::MAX;

/// Times the kernel was asked for the process id.
#[cfg(test)]
static PID_ASKED: AtomicUsize = AtomicUsize::new(0);

/// Tests only: when not 0, the id [`ask_pid`] answers, standing for the
/// kernel giving a process an id that an exited ancestor had (ids are
/// reused), which a test cannot arrange for real.
#[cfg(test)]
static REUSED_PID: AtomicI32 = AtomicI32::new(0);

/// Ask the kernel for the process id.
fn ask_pid() -> i32 {
    #[cfg(test)]
    PID_ASKED.fetch_add(1, Ordering::Relaxed);
    #[cfg(test)]
    if let reused @ 1.. = REUSED_PID.load(Ordering::Relaxed) {
        return reused;
    }
    // SAFETY: getpid takes no arguments and cannot fail; it is async-signal-safe.
    unsafe { libc::getpid() }
}

/// The process id cache of [`getpid`]: the first word of a private page
/// marked `MADV_WIPEONFORK` (0 until asked, and in a fresh child; then the
/// epoch in the high half and the id in the low one), mapped on
/// first use and kept for the life of the process. `None` when the kernel
/// cannot wipe a page on fork. Lock-free, so it cannot block in a child forked
/// while another thread was setting it up.
fn pid_cell() -> Option<&'static AtomicU64> {
    /// Stands for "no page" in [`CELL`] (only its address is used).
    static UNAVAILABLE: AtomicU64 = AtomicU64::new(0);
    static CELL: AtomicPtr<AtomicU64> = AtomicPtr::new(core::ptr::null_mut());
    let none = (&raw const UNAVAILABLE).cast_mut();
    let mut cell = CELL.load(Ordering::Acquire);
    if cell.is_null() {
        let page = wipe_on_fork_page().unwrap_or(none);
        cell = match CELL.compare_exchange(
            core::ptr::null_mut(),
            page,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => page,
            Err(other) => {
                if page != none {
                    // SAFETY: our own mapping of one page, never shared (the
                    // exchange failed, so no one else saw it).
                    unsafe { libc::munmap(page.cast(), page_size()) };
                }
                other
            }
        };
    }
    // SAFETY: a non-null value other than `none` is a page mapped by
    // `wipe_on_fork_page` and never unmapped; an `AtomicU64` fits at its
    // (page-aligned) start, and zeroed memory is a valid one.
    (cell != none).then(|| unsafe { &*cell })
}

/// A fresh private page the kernel clears in a forked child, or `None`.
fn wipe_on_fork_page() -> Option<*mut AtomicU64> {
    let size = page_size();
    // SAFETY: a new anonymous mapping; it replaces nothing.
    let page = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: `page` is the mapping just made.
    if unsafe { libc::madvise(page, size, libc::MADV_WIPEONFORK) } != 0 {
        // SAFETY: as above; no one else has seen it.
        unsafe { libc::munmap(page, size) };
        return None;
    }
    Some(page.cast())
}

std::thread_local! {
    /// This thread's kernel id and the epoch of the process id cache it was
    /// asked under (0, 0 until asked; see [`cached_ids`]). A forked child's
    /// thread has a copy with the parent's; the child's cache, filled anew,
    /// has a newer epoch, which makes it ask again (even when the child has
    /// the process id that the thread's process had).
    static TID: Cell<(u32, i32)> = const { Cell::new((0, 0)) };
}

/// The calling thread's kernel id, asked once per thread and process (see
/// [`getpid`] for forks; without `MADV_WIPEONFORK`, asked every time). Not
/// async-signal-safe in the first call of a thread (the thread-local); use
/// [`gettid`] in signal handlers.
pub fn my_tid() -> i32 {
    let Some(cell) = pid_cell() else {
        return gettid();
    };
    let (_, epoch) = cached_ids(cell);
    match TID.get() {
        (e, tid) if e == epoch && tid > 0 => tid,
        _ => {
            let tid = gettid();
            TID.set((epoch, tid));
            tid
        }
    }
}

/// `perf_event_paranoid`, or `None` when it cannot be read.
pub fn perf_event_paranoid() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `(major, minor)` of the running kernel, from `uname`.
pub fn kernel_version() -> Option<(u32, u32)> {
    // SAFETY: `uts` is plain old data; uname fills it.
    let mut uts: libc::utsname = unsafe { core::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| u8::from_ne_bytes(c.to_ne_bytes()))
        .collect();
    let text = core::str::from_utf8(&release).ok()?;
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The CPUs listed in `/sys/devices/system/cpu/online` (e.g. `0-3,6`).
pub fn online_cpus() -> Vec<u16> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.splitn(2, '-').map(|n| n.parse::<u16>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => cpus.push(a),
            (Some(Ok(a)), Some(Ok(b))) if a <= b => cpus.extend(a..=b),
            _ => {}
        }
    }
    cpus
}

/// Number of configured CPUs (the bound for CPU numbers in a target), asked
/// of the system once per process: it does not change while the process
/// runs, and glibc's `sysconf` reads sysfs each time (~10 µs, as much as the
/// `perf_event_open` calls of an open).
pub fn nr_cpus() -> u16 {
    static NR_CPUS: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *NR_CPUS.get_or_init(ask_nr_cpus)
}

/// Times the system was asked for the number of configured CPUs.
#[cfg(test)]
static ASKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Ask the system for the number of configured CPUs.
fn ask_nr_cpus() -> u16 {
    #[cfg(test)]
    ASKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    u16::try_from(n.max(1)).unwrap_or(u16::MAX)
}

/// Whether `tid` is a thread of this process (`tgkill` with signal 0 checks
/// existence and thread group without sending anything). The calling thread
/// is answered without a system call.
pub fn is_own_thread(tid: i32) -> bool {
    if tid == my_tid() {
        return true;
    }
    // SAFETY: signal 0 performs only the permission and existence checks.
    unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, 0) == 0 }
}

/// The size of a memory page.
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc's `sysconf(_SC_NPROCESSORS_CONF)` reads sysfs (~10 µs, more than
    /// the `perf_event_open` it was asked for on every open; issue 14): the
    /// count is asked once per process.
    #[test]
    fn nr_cpus_asks_the_system_once() {
        let first = nr_cpus();
        let asked = ASKED.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..3 {
            assert_eq!(nr_cpus(), first);
        }
        assert_eq!(ASKED.load(std::sync::atomic::Ordering::Relaxed), asked);
        // SAFETY: sysconf only reads a system value.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
        assert_eq!(i64::from(first), n.clamp(1, u16::MAX.into()));
    }

    /// An open asked the kernel for the process id (and, with a handler, for
    /// it again and for the thread's): now once per process and thread.
    #[test]
    fn the_process_and_thread_ids_are_asked_once() {
        let pid = getpid();
        let tid = my_tid();
        let asked = PID_ASKED.load(Ordering::Relaxed);
        for _ in 0..3 {
            assert_eq!(getpid(), pid);
            assert_eq!(my_tid(), tid);
            assert!(is_own_thread(tid));
        }
        assert_eq!(PID_ASKED.load(Ordering::Relaxed), asked);
        // SAFETY: getpid cannot fail.
        assert_eq!(pid, unsafe { libc::getpid() });
        assert_eq!(tid, gettid());
        // Another (live) thread has its own id, and is this process's.
        let (ids, got) = std::sync::mpsc::channel();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            ids.send((my_tid(), gettid())).expect("test thread listens");
            let _ = wait.recv();
        });
        let (cached, asked) = got.recv().expect("the thread's ids");
        assert_eq!(cached, asked);
        assert_ne!(cached, tid);
        assert!(is_own_thread(cached));
        drop(done);
        other.join().expect("no panic");
    }

    /// A process id is reused once its process has exited, so a grandchild
    /// may get the id of the grandparent whose (non-main) thread forked its
    /// parent, and it has a copy of that thread's cached ids: its thread id
    /// is still asked for (here the child is handed its parent's id through
    /// [`REUSED_PID`]).
    #[test]
    fn a_child_with_a_reused_process_id_asks_for_its_own_thread_id() {
        let pid = getpid();
        let forker = std::thread::spawn(move || {
            let tid = my_tid();
            assert_ne!(tid, pid, "not the main thread");
            // SAFETY: a fork (clone with only the exit signal); the child uses
            // system calls, atomics and this thread's thread-locals only, then
            // leaves with _exit.
            let child = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
            assert!(child >= 0, "clone failed");
            if child == 0 {
                REUSED_PID.store(pid, Ordering::Relaxed);
                let mut bits = 0;
                if getpid() == pid {
                    bits |= 1;
                }
                if my_tid() == gettid() {
                    bits |= 2;
                }
                // SAFETY: leaving the child without running the parent's
                // destructors.
                unsafe { libc::_exit(bits) };
            }
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let waited = unsafe { libc::waitpid(child as i32, &mut status, 0) };
            assert_eq!(i64::from(waited), child);
            assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
            libc::WEXITSTATUS(status)
        });
        assert_eq!(
            forker.join().expect("no panic"),
            3,
            "the reused process id (1) and the child's own thread id (2)"
        );
    }

    /// A child made by a raw `clone` (no `pthread_atfork` handlers run, glibc
    /// is not told) still gets its own process and thread ids, and the
    /// parent's thread is not its own.
    #[test]
    fn a_raw_fork_child_asks_for_its_own_ids() {
        let (pid, tid) = (getpid(), my_tid());
        assert!(is_own_thread(tid));
        // SAFETY: a fork (clone with only the exit signal); the child uses
        // system calls, atomics and this thread's thread-locals only, then
        // leaves with _exit.
        let child = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
        assert!(child >= 0, "clone failed");
        if child == 0 {
            // SAFETY: getpid cannot fail.
            let real = unsafe { libc::getpid() };
            let mut bits = 0;
            if getpid() == real && real != pid {
                bits |= 1;
            }
            if my_tid() == gettid() && my_tid() != tid {
                bits |= 2;
            }
            if !is_own_thread(tid) && is_own_thread(gettid()) {
                bits |= 4;
            }
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(bits) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let waited = unsafe { libc::waitpid(child as i32, &mut status, 0) };
        assert_eq!(i64::from(waited), child);
        assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            7,
            "the child's process id (1), thread id (2) and own-thread check (4)"
        );
        assert_eq!((getpid(), my_tid()), (pid, tid));
    }
}
