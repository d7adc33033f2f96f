//! [`SampledBreakpoint`]: hits recorded by the kernel into perf ring buffers
//! and read without stopping the threads that hit.
//!
//! No signal is involved, so this works on arm64 as on x86_64: the kernel
//! writes a `PERF_RECORD_SAMPLE` (IP, pid/tid, time, data address, call chain)
//! while it handles the debug exception, steps over the access and lets the
//! thread go on.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hwbp_core::{BreakpointAttr, Target};

use crate::abi::{self, flag, mmap_page, sample, PerfEventAttr};
use crate::breakpoint::{map_errno, without_remove_on_exec};
use crate::record::{self, Record, RingBytes};
use crate::rules::{self, PerfRules};
use crate::{sys, Error};

/// When the kernel wakes a reader blocked in [`SampledBreakpoint::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// After this many records (`wakeup_events`); 1 wakes on every hit.
    Records(u32),
    /// When this many bytes are unread (`wakeup_watermark`); 0 means half the
    /// ring.
    Bytes(u32),
}

/// Whether hits made in kernel mode (a system call writing the watched user
/// memory, e.g. `read(2)` into it) are sampled, with kernel call chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelHits {
    /// User-mode hits only (`exclude_kernel`, `exclude_callchain_kernel`).
    Exclude,
    /// Kernel-mode hits and kernel call chains if `perf_event_paranoid` (≤ 1)
    /// or CAP_PERFMON allow them, else user-mode hits only
    /// ([`SampledBreakpoint::kernel_hits`] says which).
    IfPermitted,
}

/// How a [`SampledBreakpoint`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleOptions {
    /// Data pages of each ring buffer: a power of two (the mapping is one
    /// metadata page more). Records that do not fit are lost, and counted.
    pub data_pages: usize,
    /// When [`SampledBreakpoint::wait`] returns.
    pub wakeup: Wakeup,
    /// Kernel-mode hits.
    pub kernel: KernelHits,
    /// Record call chains (`PERF_SAMPLE_CALLCHAIN`).
    pub callchain: bool,
}

impl Default for SampleOptions {
    /// 64 data pages (256 KiB with 4 KiB pages) per ring, woken at half full,
    /// kernel hits if permitted, call chains.
    fn default() -> Self {
        SampleOptions {
            data_pages: 64,
            wakeup: Wakeup::Bytes(0),
            kernel: KernelHits::IfPermitted,
            callchain: true,
        }
    }
}

/// What the records read so far add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// `PERF_RECORD_SAMPLE`s read.
    pub samples: u64,
    /// Records the kernel reported lost (`PERF_RECORD_LOST`, summed).
    pub lost: u64,
    /// `PERF_RECORD_THROTTLE`s read: times the kernel stopped sampling an
    /// event for the rest of a tick (hits then count but leave no record).
    pub throttled: u64,
    /// Records of other types.
    pub other: u64,
}

/// One ring buffer: the mapping of an event's fd (metadata page + data).
#[derive(Debug)]
struct Ring {
    base: *mut u8,
    len: usize,
    data_offset: usize,
    data_size: usize,
    /// Where the next unread record starts (free-running, as `data_tail`).
    tail: u64,
    /// The descriptor the ring was mapped from (index into `fds`), for poll.
    fd: usize,
    /// poll said the event is gone (its task and inherited copies exited).
    hung_up: bool,
}

// SAFETY: the mapping is owned by the ring (unmapped on drop) and only read
// or written through `&mut SampledBreakpoint`; moving it to another thread is
// no different from moving a Vec.
unsafe impl Send for Ring {}

impl Ring {
    fn map(fd: &OwnedFd, data_pages: usize, index: usize) -> Result<Ring, Error> {
        let page = sys::page_size();
        let len = (data_pages + 1) * page;
        // SAFETY: a fresh shared mapping of a perf event fd, at an address the
        // kernel picks; nothing in this process aliases it.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::RingBuffer {
                errno: sys::errno(),
                bytes: len,
            });
        }
        let mut ring = Ring {
            base: base.cast(),
            len,
            data_offset: page,
            data_size: data_pages * page,
            tail: 0,
            fd: index,
            hung_up: false,
        };
        // Linux 4.1 and later say where the data area is; older ones leave 0
        // and put it right after the first page.
        let (offset, size) = (
            ring.word(mmap_page::DATA_OFFSET).load(Ordering::Relaxed),
            ring.word(mmap_page::DATA_SIZE).load(Ordering::Relaxed),
        );
        if offset != 0 {
            let fits = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .filter(|&(o, s)| {
                    s.is_power_of_two() && o.checked_add(s).is_some_and(|end| end <= len)
                });
            let Some((o, s)) = fits else {
                return Err(Error::RingCorrupt {
                    what: "data_offset/data_size outside the mapping",
                });
            };
            ring.data_offset = o;
            ring.data_size = s;
        }
        ring.tail = ring.word(mmap_page::DATA_TAIL).load(Ordering::Relaxed);
        Ok(ring)
    }

    /// A `u64` of the metadata page.
    fn word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: `offset` is one of the 8-aligned `mmap_page` offsets inside
        // the first page, which lives as long as `self`; the kernel updates
        // these words atomically, so they are read and written as atomics.
        unsafe { &*self.base.add(offset).cast::<AtomicU64>() }
    }

    /// `data_head`, with acquire: the records before it are fully written.
    fn head(&self) -> u64 {
        self.word(mmap_page::DATA_HEAD).load(Ordering::Acquire)
    }

    /// Give `..tail` back to the kernel, with release: our copies are done
    /// before it may overwrite them.
    fn release(&mut self, tail: u64) {
        self.tail = tail;
        self.word(mmap_page::DATA_TAIL)
            .store(tail, Ordering::Release);
    }
}

impl RingBytes for Ring {
    fn size(&self) -> usize {
        self.data_size
    }

    fn copy(&self, offset: usize, out: &mut [u8]) {
        if offset
            .checked_add(out.len())
            .is_some_and(|end| end <= self.data_size)
        {
            // SAFETY: inside the data area of the live mapping (checked just
            // above). The reader only copies `tail..head`, which the kernel
            // finished writing before publishing `head` (acquire in `head`)
            // and does not write again until `data_tail` passes it.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    self.base.add(self.data_offset + offset),
                    out.as_mut_ptr(),
                    out.len(),
                )
            };
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `Ring::map`, unmapped once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// A hardware breakpoint whose hits the kernel records into ring buffers,
/// read with [`SampledBreakpoint::read`]. Closing (dropping) it removes it from
/// every thread and CPU it was opened on.
///
/// Layout: per-thread events without `inherit` get one ring each. Linux
/// refuses to map an inheriting per-thread event (`cpu == -1`), so inheriting
/// ones are opened once per online CPU, and every event on a CPU sends its
/// records to that CPU's ring (`PERF_EVENT_IOC_SET_OUTPUT`), as `perf record`
/// does. Copies inherited by threads created later write to their parent's
/// ring.
#[derive(Debug)]
pub struct SampledBreakpoint {
    // Rings first: unmapped before their events close.
    rings: Vec<Ring>,
    fds: Vec<OwnedFd>,
    tasks: Vec<i32>,
    attr: BreakpointAttr,
    sample_type: u64,
    kernel: bool,
    totals: Totals,
    scratch: Vec<u8>,
    opened_by: i32,
}

impl SampledBreakpoint {
    /// Open a sampled breakpoint on `attr.target`: a thread (of this or another
    /// process, see [`crate::thread`]; with `inherit`, also every thread and
    /// process it creates from now on), a CPU or every online CPU. The kernel
    /// records every `sample_period`-th hit of each event.
    pub fn open(attr: &BreakpointAttr, options: &SampleOptions) -> Result<Self, Error> {
        let attr = attr.user_only();
        let cpus = |c: Option<u16>| -> Result<Vec<i32>, Error> {
            match c {
                Some(c) => Ok(vec![i32::from(c)]),
                None => online_cpus(),
            }
        };
        let places = match attr.target {
            Target::Task { task, cpu } => {
                let pid = i32::try_from(task.0).map_err(|_| Error::NoSuchTask { tid: task.0 })?;
                if attr.inherit || cpu.is_some() {
                    cpus(cpu)?.into_iter().map(|c| (pid, c)).collect()
                } else {
                    vec![(pid, -1)]
                }
            }
            Target::Cpu(c) => vec![(-1, i32::from(c))],
            Target::AllCpus => cpus(None)?.into_iter().map(|c| (-1, c)).collect(),
        };
        Self::open_at(attr, options, &places)
    }

    /// Watch every thread of process `pid` (this one or another): one
    /// inheriting event per thread listed in `/proc/PID/task` and online CPU.
    /// The target of `attr` is ignored.
    ///
    /// Covered: every thread that exists when its directory is listed, and
    /// every thread or process created after that by a covered thread
    /// (inherited copies, down the tree; a child's `execve` drops its copy).
    /// Not covered: a thread created between the listing and the open of its
    /// creator's event (there is nothing yet to inherit; listing again could
    /// not tell it from a thread that inherited a copy, which would then count
    /// twice), and CPUs brought online later. `perf_event_open(pid)` alone
    /// would cover only the thread whose id is `pid`.
    ///
    /// Another user's process needs CAP_PERFMON or ptrace read rights, else
    /// [`Error::Permission`]; a process that does not exist (or exits while
    /// this runs) gives [`Error::NoSuchTask`].
    pub fn open_process(
        pid: i32,
        attr: &BreakpointAttr,
        options: &SampleOptions,
    ) -> Result<Self, Error> {
        if pid <= 0 {
            return Err(Error::NoSuchTask {
                tid: i64::from(pid) as u64,
            });
        }
        let attr = attr.user_only().inherit(true).target(crate::thread(pid));
        let tids = process_tasks(pid)?;
        let cpus = online_cpus()?;
        let places: Vec<(i32, i32)> = tids
            .iter()
            .flat_map(|&t| cpus.iter().map(move |&c| (t, c)))
            .collect();
        Self::open_at(attr, options, &places)
    }

    fn open_at(
        attr: BreakpointAttr,
        options: &SampleOptions,
        places: &[(i32, i32)],
    ) -> Result<Self, Error> {
        let native = rules::Native::new();
        rules::check(&native, &attr, sys::nr_cpus())?;
        if options.data_pages == 0 || !options.data_pages.is_power_of_two() {
            return Err(Error::Unsupported(
                "SampleOptions::data_pages must be a power of two (1, 2, 4, ...)",
            ));
        }
        let mut perf = PerfEventAttr::breakpoint(&attr, native.bp_len(&attr), None);
        // Opened disabled, enabled once every event has its ring: a hit of an
        // event without one would be counted but neither recorded nor lost.
        perf.flags |= flag::DISABLED | flag::USE_CLOCKID | flag::EXCLUDE_HV;
        perf.clockid = libc::CLOCK_MONOTONIC;
        perf.sample_type = sample::IP | sample::TID | sample::TIME | sample::ADDR;
        if options.callchain {
            perf.sample_type |= sample::CALLCHAIN;
        }
        match options.wakeup {
            Wakeup::Records(n) => perf.wakeup_events = n.max(1),
            Wakeup::Bytes(b) => {
                perf.flags |= flag::WATERMARK;
                let half =
                    u32::try_from(options.data_pages * sys::page_size() / 2).unwrap_or(u32::MAX);
                perf.wakeup_events = if b == 0 { half } else { b };
            }
        }
        let user_only = perf.flags | flag::EXCLUDE_CALLCHAIN_KERNEL;
        let mut kernel = options.kernel == KernelHits::IfPermitted && !attr.exclude_user;
        if kernel {
            perf.flags &= !flag::EXCLUDE_KERNEL;
        } else {
            perf.flags = user_only;
        }
        let many = places.len() > 1;
        let mut fds: Vec<OwnedFd> = Vec::with_capacity(places.len());
        let mut tasks = Vec::new();
        let mut rings: Vec<Ring> = Vec::new();
        let mut ring_of_cpu: HashMap<i32, usize> = HashMap::new();
        for &(pid, cpu) in places {
            let mut opened = sys::perf_event_open(&perf, pid, cpu);
            if kernel && matches!(opened, Err(libc::EACCES | libc::EPERM)) {
                // Not permitted to see kernel mode: user mode only, from now on.
                kernel = false;
                perf.flags = user_only;
                opened = sys::perf_event_open(&perf, pid, cpu);
            }
            if matches!(opened, Err(libc::EINVAL)) {
                if let Some(older) = without_remove_on_exec(&perf, sys::kernel_version()) {
                    perf = older;
                    opened = sys::perf_event_open(&perf, pid, cpu);
                }
            }
            let fd = match opened {
                Ok(fd) => fd,
                // A thread that exited since it was listed.
                Err(libc::ESRCH) if many && pid > 0 => continue,
                Err(e) => return Err(map_errno(e, pid, cpu, false)),
            };
            match (cpu >= 0).then(|| ring_of_cpu.get(&cpu).copied()).flatten() {
                Some(r) => {
                    let target = fds[rings[r].fd].as_raw_fd();
                    sys::ioctl(&fd, abi::PERF_EVENT_IOC_SET_OUTPUT, target as libc::c_ulong)
                        .map_err(|errno| Error::Os {
                            call: "ioctl(PERF_EVENT_IOC_SET_OUTPUT)",
                            errno,
                        })?;
                }
                None => {
                    rings.push(Ring::map(&fd, options.data_pages, fds.len())?);
                    if cpu >= 0 {
                        ring_of_cpu.insert(cpu, rings.len() - 1);
                    }
                }
            }
            if pid > 0 && !tasks.contains(&pid) {
                tasks.push(pid);
            }
            fds.push(fd);
        }
        if fds.is_empty() {
            let pid = places.first().map_or(0, |p| p.0);
            return Err(Error::NoSuchTask {
                tid: i64::from(pid) as u64,
            });
        }
        let bp = SampledBreakpoint {
            rings,
            fds,
            tasks,
            attr,
            sample_type: perf.sample_type,
            kernel,
            totals: Totals::default(),
            scratch: Vec::new(),
            opened_by: sys::getpid(),
        };
        if !attr.disabled {
            bp.enable()?;
        }
        Ok(bp)
    }

    /// The request as opened (target and `inherit` as used).
    pub fn attr(&self) -> &BreakpointAttr {
        &self.attr
    }

    /// Whether kernel-mode hits and kernel call chains are recorded (see
    /// [`KernelHits`]).
    pub fn kernel_hits(&self) -> bool {
        self.kernel
    }

    /// The thread ids an event was opened on (empty for CPU targets; threads
    /// covered by inheritance are not listed).
    pub fn tasks(&self) -> &[i32] {
        &self.tasks
    }

    /// Number of ring buffers.
    pub fn rings(&self) -> usize {
        self.rings.len()
    }

    /// Append every record the kernel has published since the last call to
    /// `out`, and give their space back. Returns how many were appended.
    /// Never blocks; the watched threads are never stopped.
    ///
    /// A record that cannot be what the kernel wrote ends the read of its ring
    /// with [`Error::RingCorrupt`] (that ring's unread data is skipped; the
    /// records before it are in `out`, other rings are still read).
    pub fn read(&mut self, out: &mut Vec<Record>) -> Result<usize, Error> {
        let before = out.len();
        let mut corrupt = None;
        for ring in &mut self.rings {
            let head = ring.head();
            let from = out.len();
            let tail = match record::take(
                &*ring,
                head,
                ring.tail,
                self.sample_type,
                &mut self.scratch,
                out,
            ) {
                Ok(tail) => tail,
                Err(m) => {
                    corrupt = Some(m.what);
                    head
                }
            };
            ring.release(tail);
            for r in &out[from..] {
                match r {
                    Record::Sample(_) => self.totals.samples += 1,
                    Record::Lost { lost, .. } => self.totals.lost += lost,
                    Record::Throttle { resumed: false, .. } => self.totals.throttled += 1,
                    Record::Throttle { .. } => {}
                    Record::Other { .. } => self.totals.other += 1,
                }
            }
        }
        match corrupt {
            Some(what) => Err(Error::RingCorrupt { what }),
            None => Ok(out.len() - before),
        }
    }

    /// Block until a ring reaches its wakeup mark ([`Wakeup`]) or `timeout`
    /// passes. Returns whether the kernel signalled data. Rings whose events
    /// are gone (their threads exited) are not waited on again; when none is
    /// left, this sleeps for `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, Error> {
        let live: Vec<usize> = (0..self.rings.len())
            .filter(|&i| !self.rings[i].hung_up)
            .collect();
        let mut polls: Vec<libc::pollfd> = live
            .iter()
            .map(|&i| libc::pollfd {
                fd: self.fds[self.rings[i].fd].as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if polls.is_empty() {
            std::thread::sleep(timeout);
            return Ok(false);
        }
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `polls` is a live array of `polls.len()` pollfds.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
        if n < 0 {
            let errno = sys::errno();
            return if errno == libc::EINTR {
                Ok(false)
            } else {
                Err(Error::Os {
                    call: "poll(perf ring)",
                    errno,
                })
            };
        }
        let mut data = false;
        for (p, &i) in polls.iter().zip(&live) {
            data |= p.revents & libc::POLLIN != 0;
            if p.revents & libc::POLLHUP != 0 {
                self.rings[i].hung_up = true;
            }
        }
        Ok(data)
    }

    /// What the records read so far add up to.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Exact number of hits so far: the kernel's count over every event and
    /// inherited copy. With a sample period of 1, once the rings are read,
    /// `count() == samples + lost` plus the hits not recorded yet: those while
    /// the kernel throttled sampling ([`Totals::throttled`]), and drops the
    /// kernel has not reported yet (it reports them with its next record).
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

    fn switch(&self, on: bool) -> Result<(), Error> {
        if sys::getpid() != self.opened_by {
            return Err(Error::OtherProcess {
                opened_by: self.opened_by,
            });
        }
        let (request, call) = if on {
            (abi::PERF_EVENT_IOC_ENABLE, "ioctl(PERF_EVENT_IOC_ENABLE)")
        } else {
            (abi::PERF_EVENT_IOC_DISABLE, "ioctl(PERF_EVENT_IOC_DISABLE)")
        };
        for fd in &self.fds {
            sys::ioctl(fd, request, 0).map_err(|errno| Error::Os { call, errno })?;
        }
        Ok(())
    }

    /// Arm every event (and inherited copies). Refused in a forked child
    /// ([`Error::OtherProcess`]).
    pub fn enable(&self) -> Result<(), Error> {
        self.switch(true)
    }

    /// Disarm every event; records already written stay readable.
    pub fn disable(&self) -> Result<(), Error> {
        self.switch(false)
    }
}

/// The online CPUs as `perf_event_open` CPU numbers.
fn online_cpus() -> Result<Vec<i32>, Error> {
    let cpus: Vec<i32> = sys::online_cpus().into_iter().map(i32::from).collect();
    if cpus.is_empty() {
        return Err(Error::Os {
            call: "read /sys/devices/system/cpu/online",
            errno: 0,
        });
    }
    Ok(cpus)
}

/// The thread ids in `/proc/PID/task`.
fn process_tasks(pid: i32) -> Result<Vec<i32>, Error> {
    let dir =
        std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::ESRCH) => Error::NoSuchTask { tid: pid as u64 },
            errno => Error::Os {
                call: "read /proc/PID/task",
                errno: errno.unwrap_or(0),
            },
        })?;
    let mut tids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    tids.sort_unstable();
    if tids.is_empty() {
        return Err(Error::NoSuchTask { tid: pid as u64 });
    }
    Ok(tids)
}
