//! System calls (Linux only).

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

/// The calling process's id.
pub fn getpid() -> i32 {
    // SAFETY: getpid takes no arguments and cannot fail; it is async-signal-safe.
    unsafe { libc::getpid() }
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
/// existence and thread group without sending anything).
pub fn is_own_thread(tid: i32) -> bool {
    // SAFETY: signal 0 performs only the permission and existence checks.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) == 0 }
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
}
