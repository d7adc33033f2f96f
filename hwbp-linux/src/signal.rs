//! Synchronous delivery: the process-wide SIGTRAP handler and its event table.
//!
//! Everything reachable from `on_sigtrap` (the SIGTRAP handler this module
//! installs) is async-signal-safe by construction: it reads the kernel's `siginfo_t` by fixed offsets, looks the
//! event up in a fixed-size static array of atomics, bumps a counter, reads
//! the breakpoint's kernel count with `read(2)` (see [`Hit::covers`]), calls
//! the user's plain `fn` pointer and, for traps that are not ours, calls the
//! handler that was installed before (or re-raises with the default action).
//! No allocation, no lock, no `std` I/O.
//!
//! Fork: a child made by `fork(3)` (which runs `pthread_atfork` handlers)
//! resets the table's bookkeeping for the threads it does not have (a
//! `pthread_atfork` child handler). A child made without them (glibc's `_Fork`, a raw
//! `clone`/`SYS_fork` system call) keeps the parent's state: dropping there a
//! breakpoint whose handler was running on another parent thread at the
//! moment of the fork waits for ever, and an entry another parent thread was
//! claiming or freeing at that moment stays taken (one of the
//! [`TABLE_SIZE`] entries fewer). Such a child should `exec` or `_exit`
//! without dropping its breakpoints (as it must anyway in a multi-threaded
//! parent).

use core::cell::Cell;
use core::ffi::c_void;
use std::sync::Once;

use self::sync::{fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use crate::abi::siginfo;
use crate::sys;

/// The table's atomics: `core`'s, or loom's under `--cfg hwbp_linux_loom`,
/// which model checks the entry protocol (`loom_tests`, tests only). The
/// protocol's code is the same in both builds; only the statics and the wait
/// differ (loom's atomics are built at run time, and a model has no time).
#[macro_use]
mod sync {
    #[cfg(not(hwbp_linux_loom))]
    pub(super) use core::sync::atomic::{
        fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering,
    };
    #[cfg(hwbp_linux_loom)]
    pub(super) use loom::sync::atomic::{
        fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering,
    };

    /// One round of waiting for a handler on another thread (`spins`: rounds
    /// so far): yield a little, then sleep. `sched_yield` never hands the CPU
    /// to a lower-priority thread, so a real-time thread waiting for a handler
    /// on the same CPU could otherwise starve it.
    #[cfg(not(hwbp_linux_loom))]
    pub(super) fn pause(spins: &mut u32) {
        if *spins < 64 {
            *spins += 1;
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    /// Under loom: let the other threads of the model run (it has no time).
    #[cfg(hwbp_linux_loom)]
    pub(super) fn pause(_: &mut u32) {
        loom::thread::yield_now();
    }

    /// A `const fn`, or a plain one under loom, whose atomics cannot be built
    /// in constant context.
    macro_rules! const_unless_loom {
        ($(#[$m:meta])* fn $name:ident() -> $t:ty $body:block) => {
            #[cfg(not(hwbp_linux_loom))]
            $(#[$m])*
            const fn $name() -> $t $body
            #[cfg(hwbp_linux_loom)]
            $(#[$m])*
            fn $name() -> $t $body
        };
    }

    /// `static`s of the types above: plain ones, or under loom lazy statics
    /// that each model execution builds afresh.
    macro_rules! statics {
        ($($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;)*) => {
            $(
                #[cfg(not(hwbp_linux_loom))]
                $(#[$m])*
                static $name: $t = $init;
            )*
            #[cfg(hwbp_linux_loom)]
            loom::lazy_static! {
                $($(#[$m])* static ref $name: $t = $init;)*
            }
        };
    }

    /// A thread-local `Cell<usize>` starting at 0 (std's, or loom's, whose
    /// threads share one OS thread).
    macro_rules! thread_local_usize {
        ($(#[$m:meta])* static $name:ident;) => {
            #[cfg(not(hwbp_linux_loom))]
            std::thread_local! {
                $(#[$m])*
                static $name: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
            }
            #[cfg(hwbp_linux_loom)]
            loom::thread_local! {
                $(#[$m])*
                static $name: core::cell::Cell<usize> = core::cell::Cell::new(0);
            }
        };
    }
}

/// A hit delivered to a handler, in the thread that made the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The breakpoint ([`crate::Breakpoint::id`]).
    pub id: crate::Id,
    /// `si_addr`: the address the breakpoint watches (Linux reports the
    /// breakpoint's `bp_addr`, not the exact byte of a wider access).
    pub addr: u64,
    /// The program counter saved in the signal frame. On x86 (verified): after
    /// the accessing instruction for watchpoints (a trap), the breakpoint
    /// address for instruction breakpoints (a fault the kernel resumes past).
    /// On arm64 signal delivery is refused (see [`crate::Delivery::Signal`]).
    pub ip: u64,
    /// Kernel id of the thread that hit the breakpoint (the one running the
    /// handler).
    pub tid: i32,
    /// How many deliveries (samples) of this breakpoint this process has
    /// taken, this one included. Normally one per `sample_period` hits of each
    /// thread's copy, but SIGTRAP is a standard signal and is not queued: hits
    /// while it is blocked (in this very handler, say) raise no delivery of
    /// their own, see [`Hit::covers`].
    pub sample: u64,
    /// The kernel's count of hits, read at this delivery (before the handler
    /// runs): as [`crate::Breakpoint::count`], summed over the breakpoint's
    /// events and their inherited copies. `None` if it could not be read.
    pub count: Option<u64>,
    /// How many hits this delivery covers: [`Hit::count`] minus the count
    /// read at the delivery before it in this process (0 when `count` is
    /// `None`). With one thread hitting, `sample_period` for a delivery on
    /// time, and more for a [`Hit::late`] one that stands for hits which
    /// raised no signal. With several threads hitting at once, a delivery may
    /// cover another thread's hit whose own delivery then covers 0. The
    /// covers of all deliveries add up to the highest count read
    /// ([`crate::Breakpoint::hits_delivered`]).
    pub covers: u64,
    /// `si_perf_flags` (bit 0, `TRAP_PERF_FLAG_ASYNC`: the signal was not
    /// raised synchronously by the access; see [`Hit::late`]).
    pub flags: u32,
}

impl Hit {
    /// The kernel raised this signal while SIGTRAP was blocked in the thread
    /// (`TRAP_PERF_FLAG_ASYNC`, Linux ≥ 5.19), so it was delivered only when
    /// unblocked, after the access; [`Hit::ip`] is where the thread was then.
    /// Every hit in between was coalesced into it ([`Hit::covers`]). Before
    /// 5.19 the kernel instead forced the signal through to the default
    /// action, which ends the process.
    pub fn late(&self) -> bool {
        self.flags & siginfo::TRAP_PERF_FLAG_ASYNC != 0
    }
}

/// A user handler: runs in signal context on the thread that hit, so it must be
/// async-signal-safe itself (no allocation, no locks, no `println!`; atomics,
/// `write(2)` and the like are fine). In particular it must not drop a
/// [`crate::Breakpoint`]: that frees memory, and dropping the breakpoint it is
/// running for would wait for itself for ever (a drop waits until the handlers
/// of the breakpoint running on other threads have returned). It may call
/// [`crate::Breakpoint::enable`] and [`crate::Breakpoint::disable`] (atomics
/// and ioctls only).
pub type HitFn = fn(&Hit);

/// Number of breakpoints with [`crate::Delivery::Signal`] that can be open at
/// once in one process ([`crate::Delivery::CountOnly`] ones take no entry).
pub const TABLE_SIZE: usize = 256;

/// Cookie tag in the top 16 bits of `sig_data` ("HW"), so a TRAP_PERF signal of
/// some other perf user in the process is passed on rather than swallowed.
const TAG: u64 = 0x4857;

/// The entry number of count-only ids ([`count_only_id`]): outside the table,
/// so no count-only id equals a signal cookie, whatever their generations.
const COUNT_ONLY_ENTRY: u64 = 0xffff;

/// The `sig_data` cookie of entry `index` for generation `gen`: the tag, the
/// generation's low 32 bits, the entry number.
fn cookie_of(gen: u64, index: usize) -> u64 {
    (TAG << 48) | ((gen & 0xffff_ffff) << 16) | index as u64
}

/// The count-only id for generation `gen`: its low 48 bits, then
/// [`COUNT_ONLY_ENTRY`]. Never a `sig_data`, so it needs no tag, and a
/// long-lived id repeats only after 2^48 later count-only opens.
fn count_only_id_of(gen: u64) -> u64 {
    ((gen & 0xffff_ffff_ffff) << 16) | COUNT_ONLY_ENTRY
}

thread_local_usize! {
    /// The entry (its address) this thread is claiming or freeing, 0 for none.
    /// A fork made from a signal handler that interrupted this thread there
    /// continues that claim or release in the child, so [`reset_after_fork`]
    /// must leave that entry alone.
    static BUSY;
}

/// Marks the calling thread as inside [`Entry::claim_for`] or [`Entry::release`]
/// (see [`BUSY`]) until dropped.
struct Busy(usize);

impl Busy {
    fn mark(entry: &Entry) -> Busy {
        Busy(BUSY.with(|b| b.replace(entry as *const Entry as usize)))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(self.0));
    }
}

/// A handler as [`Entry::handler`] stores it.
fn handler_ptr(handler: Option<HitFn>) -> *mut () {
    handler.map_or(core::ptr::null_mut(), |f| f as *mut ())
}

struct Entry {
    /// Set while an open breakpoint owns the entry.
    claimed: AtomicBool,
    /// Published last: the `sig_data` of the owner, 0 when free.
    cookie: AtomicU64,
    /// The `HitFn` ([`handler_ptr`]), null for none. A pointer rather than an
    /// integer, so the function pointer read back keeps its provenance.
    handler: AtomicPtr<()>,
    samples: AtomicU64,
    /// The owner's perf event descriptors (numbers, -1 for one not opened
    /// yet): `events_len` atomics, [`Entry::own_fd`] for an owner with one
    /// event, else an array owned by its [`Slot`], which frees the entry
    /// before it closes them and frees the array. Null when free.
    events: AtomicPtr<AtomicI32>,
    events_len: AtomicUsize,
    /// The descriptor of an owner with a single event ([`Events::InEntry`]),
    /// kept here rather than in an array of its own (no allocation per open).
    /// Reset by each claim, written by the owner's [`Slot::record`].
    own_fd: AtomicI32,
    /// The highest kernel count a delivery has read: the sum of their
    /// [`Hit::covers`].
    counted: AtomicU64,
    /// Signal handlers between their cookie check and the end of the user's
    /// handler ([`Entry::enter`]). The entry is not freed (so not reclaimed by
    /// a new breakpoint) until this is 0, so a hit that passed the check always
    /// counts and runs against the owner it was checked for.
    active: AtomicUsize,
}

/// Where a new owner of an entry keeps its event descriptors.
#[derive(Clone, Copy, Debug)]
enum Events<'a> {
    /// One descriptor, in the entry itself ([`Entry::own_fd`]).
    InEntry,
    /// An array of the owner's.
    Array(&'a [AtomicI32]),
}

/// A signal handler inside an entry ([`Entry::enter`]); leaving it on drop.
struct Active<'a> {
    entry: &'a Entry,
}

impl Active<'_> {
    /// Count the sample; returns the new sample number and the handler.
    fn sample(&self) -> (u64, Option<HitFn>) {
        let sample = self
            .entry
            .samples
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1);
        let ptr = self.entry.handler.load(Ordering::Acquire);
        let handler = (!ptr.is_null()).then(|| {
            // SAFETY: a non-null value of the field is a `HitFn` stored through
            // `handler_ptr` (by `Entry::claim_for` and `Slot::set_handler` only);
            // fn pointers and data pointers have the same size here.
            unsafe { core::mem::transmute::<*mut (), HitFn>(ptr) }
        });
        (sample, handler)
    }

    /// The owner's event descriptors (see [`Entry::events`]).
    fn events(&self) -> &[AtomicI32] {
        let ptr = self.entry.events.load(Ordering::Acquire);
        let len = self.entry.events_len.load(Ordering::Acquire);
        if ptr.is_null() {
            return &[];
        }
        // SAFETY: while this guard lives the entry is not freed, so the owner's
        // `Slot`, which holds the `len` atomics at `ptr`, is not dropped.
        unsafe { core::slice::from_raw_parts(ptr, len) }
    }

    /// Account for a delivery that read `count`; returns how many hits it
    /// covers (see [`Hit::covers`]).
    fn account(&self, count: Option<u64>) -> u64 {
        count.map_or(0, |n| {
            n.saturating_sub(self.entry.counted.fetch_max(n, Ordering::AcqRel))
        })
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        // Saturating: after a fork the child's counters are reset to 0
        // (`reset_after_fork`) while its forking thread may still be inside.
        let _ = self
            .entry
            .active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }
}

impl Entry {
    const_unless_loom! {
        fn new() -> Self {
            Entry {
                claimed: AtomicBool::new(false),
                cookie: AtomicU64::new(0),
                handler: AtomicPtr::new(core::ptr::null_mut()),
                samples: AtomicU64::new(0),
                events: AtomicPtr::new(core::ptr::null_mut()),
                events_len: AtomicUsize::new(0),
                own_fd: AtomicI32::new(-1),
                counted: AtomicU64::new(0),
                active: AtomicUsize::new(0),
            }
        }
    }

    /// [`Entry::claim_for`] with the owner's array of event descriptors.
    #[cfg(test)]
    fn claim(&self, index: usize, handler: Option<HitFn>, events: &[AtomicI32]) -> Option<u64> {
        self.claim_for(index, handler, Events::Array(events))
    }

    /// Claim the entry (number `index`) if it is free; returns its cookie.
    /// An [`Events::Array`] must stay where it is until the entry is released.
    fn claim_for(&self, index: usize, handler: Option<HitFn>, events: Events<'_>) -> Option<u64> {
        // Marked before the entry is taken, so there is no moment at which this
        // thread owns it unmarked.
        let _busy = Busy::mark(self);
        if self
            .claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let cookie = cookie_of(GENERATION.fetch_add(1, Ordering::Relaxed), index);
        let events = match events {
            Events::InEntry => {
                // No hit of the previous owner is inside any more (its
                // release waited for them), so none reads this.
                self.own_fd.store(-1, Ordering::Relaxed);
                core::slice::from_ref(&self.own_fd)
            }
            Events::Array(events) => events,
        };
        self.samples.store(0, Ordering::Relaxed);
        self.counted.store(0, Ordering::Relaxed);
        self.events
            .store(events.as_ptr().cast_mut(), Ordering::Relaxed);
        self.events_len.store(events.len(), Ordering::Relaxed);
        self.handler.store(handler_ptr(handler), Ordering::Relaxed);
        // Publish: a signal that sees the cookie sees the fields above.
        self.cookie.store(cookie, Ordering::Release);
        Some(cookie)
    }

    /// Enter the entry for a hit with `cookie`: `None` when the entry is not
    /// (or no longer) owned by that breakpoint. Async-signal-safe (atomics
    /// only). While the returned guard lives, [`Entry::release`] waits, so the
    /// sample count and handler read through it are those of the owner the
    /// cookie was checked against, never of a later one.
    fn enter(&self, cookie: u64) -> Option<Active<'_>> {
        // SeqCst pairs with `release`: either this increment is seen by its
        // wait, or the cleared cookie is seen here. The SeqCst accesses alone
        // guarantee that; the fence (paired with the one in `release`) is
        // there because loom models this store-then-load handshake only
        // through SeqCst fences (it treats SeqCst accesses as AcqRel), so the
        // code it checks is the code that runs.
        self.active.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let guard = Active { entry: self };
        (self.cookie.load(Ordering::SeqCst) == cookie).then_some(guard)
    }

    /// Free the entry: no hit enters it from now on, and it is made claimable
    /// only once every hit that entered before has left (its user handler
    /// returned). Waits for handlers running on other threads, so it must not
    /// be called from a handler of this entry, which would wait for itself.
    fn release(&self) {
        let _busy = Busy::mark(self);
        // A signal still in flight for this event now finds no owner and is
        // dropped (its tag says it is ours, so it is not chained).
        self.cookie.store(0, Ordering::SeqCst);
        fence(Ordering::SeqCst); // see `enter`
        let mut spins = 0u32;
        while self.active.load(Ordering::SeqCst) != 0 {
            sync::pause(&mut spins);
        }
        self.forget_owner();
        self.claimed.store(false, Ordering::Release);
    }

    /// Drop the pointers to the owner's handler and events.
    fn forget_owner(&self) {
        self.handler.store(core::ptr::null_mut(), Ordering::Release);
        self.events.store(core::ptr::null_mut(), Ordering::Release);
        self.events_len.store(0, Ordering::Release);
    }

    /// The child side of a fork, run by its only thread; `busy_here`: that
    /// thread is inside [`Entry::claim_for`] or [`Entry::release`] of this entry
    /// ([`BUSY`]). The threads that were inside the entry's handlers do not
    /// exist here, so none is. An entry claimed but without a cookie was being
    /// claimed or freed by a parent thread that does not exist here either, so
    /// no breakpoint of the child owns it (a breakpoint gets its entry once the
    /// cookie is published, and clears the cookie only when it is dropped):
    /// it is freed, unless the forking thread itself is in the middle of that.
    fn reset_after_fork(&self, busy_here: bool) {
        self.active.store(0, Ordering::SeqCst);
        if !busy_here
            && self.claimed.load(Ordering::SeqCst)
            && self.cookie.load(Ordering::SeqCst) == 0
        {
            self.forget_owner();
            self.claimed.store(false, Ordering::Release);
        }
    }
}

#[cfg(not(hwbp_linux_loom))]
static TABLE: [Entry; TABLE_SIZE] = [const { Entry::new() }; TABLE_SIZE];
// Under loom: built on the heap, as loom's entries are too big for the stack
// of a model thread.
#[cfg(hwbp_linux_loom)]
loom::lazy_static! {
    static ref TABLE: Box<[Entry]> = (0..TABLE_SIZE).map(|_| Entry::new()).collect();
}
statics! {
    /// Where [`Slot::claim`] starts looking for a free entry (see
    /// [`claim_from`]).
    static FREE_HINT: AtomicUsize = AtomicUsize::new(0);
    static GENERATION: AtomicU64 = AtomicU64::new(1);
    static COUNT_ONLY_GENERATION: AtomicU64 = AtomicU64::new(1);
    /// The previous SIGTRAP disposition: `sa_sigaction` and `sa_flags`.
    static PREV_ACTION: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
    static PREV_FLAGS: AtomicI32 = AtomicI32::new(0);
    static INSTALL_ERRNO: AtomicI32 = AtomicI32::new(0);
}
static INSTALL: Once = Once::new();

/// A claimed table entry; frees it on drop, before its event array.
#[derive(Debug)]
pub struct Slot {
    index: usize,
    cookie: u64,
    /// The breakpoint's perf event descriptors, for the signal handler to
    /// read the count at a delivery (see [`Entry::events`]); `None` for a
    /// single one, kept in the entry ([`Entry::own_fd`]).
    events: Option<Box<[AtomicI32]>>,
}

impl Slot {
    /// Claim a free entry for a breakpoint with `handler` and up to `events`
    /// perf events ([`Slot::record`]). `None` when the table is full.
    pub fn claim(handler: Option<HitFn>, events: usize) -> Option<Slot> {
        let events: Option<Box<[AtomicI32]>> =
            (events != 1).then(|| (0..events).map(|_| AtomicI32::new(-1)).collect());
        let (index, cookie) = claim_from(
            &TABLE,
            &FREE_HINT,
            handler,
            events.as_deref().map_or(Events::InEntry, Events::Array),
        )?;
        Some(Slot {
            index,
            cookie,
            events,
        })
    }

    /// Record the descriptor of the breakpoint's `k`th event, for deliveries
    /// to read its count. The descriptor must stay open until the slot is
    /// dropped.
    pub fn record(&self, k: usize, fd: i32) {
        let event = match &self.events {
            Some(events) => events.get(k),
            None => TABLE.get(self.index).filter(|_| k == 0).map(|e| &e.own_fd),
        };
        if let Some(e) = event {
            e.store(fd, Ordering::Release);
        }
    }

    /// The highest kernel count a delivery has read in this process (the sum
    /// of the deliveries' [`Hit::covers`]).
    pub fn hits_delivered(&self) -> u64 {
        TABLE
            .get(self.index)
            .map_or(0, |e| e.counted.load(Ordering::Acquire))
    }

    /// The `sig_data` cookie.
    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// Samples delivered so far in this process.
    pub fn samples(&self) -> u64 {
        TABLE
            .get(self.index)
            .map_or(0, |e| e.samples.load(Ordering::Acquire))
    }

    /// Replace the handler.
    pub fn set_handler(&self, handler: Option<HitFn>) {
        if let Some(e) = TABLE.get(self.index) {
            e.handler.store(handler_ptr(handler), Ordering::Release);
        }
    }
}

impl Drop for Slot {
    /// Waits for user handlers of this breakpoint still running on other
    /// threads (see [`HitFn`]: a handler must not drop a breakpoint).
    fn drop(&mut self) {
        release_in(&TABLE, &FREE_HINT, self.index);
    }
}

/// Claim a free entry of `table` for `handler` and `events`: its number and
/// cookie, or `None` when every entry is taken. The search starts at `hint`
/// and wraps around, so it finds a free entry wherever the hint points (it is
/// only a hint: racing claims and releases may leave it anywhere); after a
/// claim it points past the entry taken, and a release lowers it to the entry
/// freed ([`release_in`]). Opens and drops in stack order (the usual case)
/// thus find a free entry at the first try instead of trying every entry
/// below it. Lock-free: the entries' own `claimed` flags decide who owns one.
fn claim_from(
    table: &[Entry],
    hint: &AtomicUsize,
    handler: Option<HitFn>,
    events: Events<'_>,
) -> Option<(usize, u64)> {
    let start = hint.load(Ordering::Relaxed).min(table.len());
    let (index, cookie) = (start..table.len())
        .chain(0..start)
        .find_map(|i| table.get(i)?.claim_for(i, handler, events).map(|c| (i, c)))?;
    // Only if no release lowered it (nor another claim moved it) meanwhile:
    // a free entry below the hint would then be found only after a wrap.
    let _ = hint.compare_exchange(start, index + 1, Ordering::Relaxed, Ordering::Relaxed);
    Some((index, cookie))
}

/// Free entry `index` of `table` ([`Entry::release`], which waits for its
/// handlers) and lower `hint` to it (see [`claim_from`]).
fn release_in(table: &[Entry], hint: &AtomicUsize, index: usize) {
    if let Some(e) = table.get(index) {
        e.release();
        hint.fetch_min(index, Ordering::Relaxed);
    }
}

/// An [`crate::Id`] for a breakpoint without signal delivery, which takes no
/// table entry: a 48-bit generation of its own above an entry number outside
/// the table, so it never equals a signal cookie, and repeats only after 2^48
/// later count-only opens.
pub fn count_only_id() -> u64 {
    count_only_id_of(COUNT_ONLY_GENERATION.fetch_add(1, Ordering::Relaxed))
}

/// `pthread_atfork` child handler: the forking thread is the child's only
/// thread, so no other thread is inside a table entry there
/// ([`Entry::reset_after_fork`]). Forks that skip `pthread_atfork` handlers
/// do not get this (see the module documentation).
extern "C" fn reset_after_fork() {
    let busy = BUSY.with(Cell::get);
    for e in TABLE.iter() {
        e.reset_after_fork(e as *const Entry as usize == busy);
    }
    // Entries may have been freed anywhere.
    FREE_HINT.store(0, Ordering::Relaxed);
}

/// Install the SIGTRAP handler once per process. Returns the errno of a failed
/// `sigaction`.
pub fn install() -> Result<(), i32> {
    INSTALL.call_once(|| {
        // SAFETY: registers a child handler that only stores to atomics.
        let err = unsafe {
            libc::pthread_atfork(None, None, Some(reset_after_fork as unsafe extern "C" fn()))
        };
        if err != 0 {
            INSTALL_ERRNO.store(err, Ordering::Relaxed);
            return;
        }
        // SAFETY: `old` is plain old data filled by sigaction.
        let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: querying the current disposition; `old` is writable.
        if unsafe { libc::sigaction(libc::SIGTRAP, core::ptr::null(), &mut old) } != 0 {
            INSTALL_ERRNO.store(sys::errno().max(1), Ordering::Relaxed);
            return;
        }
        PREV_ACTION.store(old.sa_sigaction, Ordering::Relaxed);
        PREV_FLAGS.store(old.sa_flags, Ordering::Relaxed);
        // SAFETY: plain old data, filled below.
        let mut new: libc::sigaction = unsafe { core::mem::zeroed() };
        new.sa_sigaction = on_sigtrap as extern "C" fn(_, _, _) as usize;
        // No SA_ONSTACK: the user handler runs on the thread's own stack, which
        // is larger than any alternate signal stack.
        new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `new.sa_mask` is a valid sigset to clear.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // SAFETY: installs a handler that only does async-signal-safe work.
        if unsafe { libc::sigaction(libc::SIGTRAP, &new, core::ptr::null_mut()) } != 0 {
            INSTALL_ERRNO.store(sys::errno().max(1), Ordering::Relaxed);
        }
    });
    match INSTALL_ERRNO.load(Ordering::Relaxed) {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Read a `T` at `offset` bytes into the kernel's siginfo.
///
/// # Safety
/// `info` must point to a kernel-filled `siginfo_t` (128 bytes) and
/// `offset + size_of::<T>() <= 128`.
unsafe fn field<T: Copy>(info: *const libc::siginfo_t, offset: usize) -> T {
    // SAFETY: in bounds per the caller; unaligned read to avoid assuming
    // anything about T's alignment.
    unsafe { core::ptr::read_unaligned(info.cast::<u8>().add(offset).cast::<T>()) }
}

/// The program counter saved in the signal frame.
///
/// # Safety
/// `ctx` must be the `ucontext_t` pointer passed to an SA_SIGINFO handler.
unsafe fn saved_pc(ctx: *const c_void) -> u64 {
    if ctx.is_null() {
        return 0;
    }
    let uc = ctx.cast::<libc::ucontext_t>();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: per the caller, `uc` is the kernel-built frame.
    return unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: per the caller, `uc` is the kernel-built frame.
    return unsafe { (*uc).uc_mcontext.pc };
}

extern "C" fn on_sigtrap(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: __errno_location returns this thread's errno slot.
    let errno_slot = unsafe { libc::__errno_location() };
    // SAFETY: valid for this thread.
    let saved_errno = unsafe { *errno_slot };
    if !info.is_null() && dispatch(info, ctx) {
        // SAFETY: as above.
        unsafe { *errno_slot = saved_errno };
        return;
    }
    chain(sig, info, ctx);
    // SAFETY: as above.
    unsafe { *errno_slot = saved_errno };
}

/// Handle the signal if it is a TRAP_PERF with one of our cookies. Returns
/// `false` to pass it on.
fn dispatch(info: *mut libc::siginfo_t, ctx: *mut c_void) -> bool {
    // SAFETY: the kernel passes a full siginfo to SA_SIGINFO handlers; the
    // offsets are those of its layout (see `abi::siginfo`).
    let code: i32 = unsafe { field(info, siginfo::CODE) };
    if code != siginfo::TRAP_PERF {
        return false;
    }
    // SAFETY: as above.
    let cookie: u64 = unsafe { field(info, siginfo::PERF_DATA) };
    if cookie >> 48 != TAG {
        return false;
    }
    let Some(entry) = TABLE.get((cookie & 0xffff) as usize) else {
        return true;
    };
    // `false`: a late signal of a closed breakpoint, dropped all the same.
    deliver(entry, cookie, read_count, |f, d| {
        let hit = Hit {
            id: crate::Id(cookie),
            // SAFETY: as above.
            addr: unsafe { field::<usize>(info, siginfo::ADDR) } as u64,
            // SAFETY: `ctx` is the handler's ucontext argument.
            ip: unsafe { saved_pc(ctx) },
            tid: sys::gettid(),
            sample: d.sample,
            count: d.count,
            covers: d.covers,
            // SAFETY: as above.
            flags: unsafe { field(info, siginfo::PERF_FLAGS) },
        };
        f(&hit);
    });
    true
}

/// What a delivery found in its entry (see [`deliver`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Delivered {
    /// [`Hit::sample`].
    sample: u64,
    /// [`Hit::count`].
    count: Option<u64>,
    /// [`Hit::covers`].
    covers: u64,
}

/// The table side of a delivery for `cookie` to `entry` (see [`dispatch`]):
/// enter the entry, count the sample, read the kernel's count over the
/// owner's events with `count_of`, account for it, and hand the owner's
/// handler (if it has one) to `run`, all before leaving the entry. Returns
/// `false`, leaving the entry as it was, when the entry is not (or no longer)
/// owned by that breakpoint.
fn deliver(
    entry: &Entry,
    cookie: u64,
    count_of: impl FnOnce(&[AtomicI32]) -> Option<u64>,
    run: impl FnOnce(HitFn, Delivered),
) -> bool {
    let Some(active) = entry.enter(cookie) else {
        return false;
    };
    let (sample, handler) = active.sample();
    let count = count_of(active.events());
    let covers = active.account(count);
    if let Some(f) = handler {
        run(
            f,
            Delivered {
                sample,
                count,
                covers,
            },
        );
    }
    drop(active);
    true
}

/// The kernel's count over `events` (descriptors; -1 for one not opened yet,
/// which has no count), or `None` if one cannot be read. Async-signal-safe
/// (`read(2)` only).
fn read_count(events: &[AtomicI32]) -> Option<u64> {
    let mut total = 0u64;
    for fd in events
        .iter()
        .map(|e| e.load(Ordering::Acquire))
        .filter(|&fd| fd >= 0)
    {
        total = total.wrapping_add(sys::read_count_raw(fd).ok()?);
    }
    Some(total)
}

/// Pass a signal that is not ours to the disposition that was there before.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let prev = PREV_ACTION.load(Ordering::Relaxed);
    let flags = PREV_FLAGS.load(Ordering::Relaxed);
    if prev == libc::SIG_IGN {
        return;
    }
    if prev == libc::SIG_DFL {
        // Restore the default action and re-raise: the signal stays blocked
        // until this handler returns, then takes its default course.
        // SAFETY: sigaction and raise are async-signal-safe.
        unsafe {
            let mut dfl: libc::sigaction = core::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, core::ptr::null_mut());
            libc::raise(sig);
        }
        return;
    }
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has
        // this signature.
        let f = unsafe {
            core::mem::transmute::<
                usize,
                extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void),
            >(prev)
        };
        f(sig, info, ctx);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes only the number.
        let f = unsafe { core::mem::transmute::<usize, extern "C" fn(libc::c_int)>(prev) };
        f(sig);
    }
}

/// No system calls: these also run under Miri
/// (`cargo +nightly miri test -p hwbp-linux --lib pure_tests`).
#[cfg(all(test, not(hwbp_linux_loom)))]
mod pure_tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    thread_local! {
        /// Which of the handlers below last ran on this thread.
        static RAN: Cell<&'static str> = const { Cell::new("none") };
    }
    fn old_handler(_: &Hit) {
        RAN.set("old");
    }
    fn new_handler(_: &Hit) {
        RAN.set("new");
    }

    /// Which handler `handler` is, found by calling it (Rust does not promise
    /// that two casts of one `fn` item give the same address, and Miri does
    /// give different ones, so addresses are not compared).
    fn which(handler: Option<HitFn>) -> &'static str {
        RAN.set("none");
        if let Some(f) = handler {
            f(&Hit {
                id: crate::Id(0),
                addr: 0,
                ip: 0,
                tid: 0,
                sample: 0,
                count: None,
                covers: 0,
                flags: 0,
            });
        }
        RAN.get()
    }

    /// The race the entry protocol closes: a hit passes the cookie check, then
    /// another thread drops the breakpoint and a new one claims the same entry
    /// before the hit reads the handler and the sample count. The drop must
    /// wait for the hit, so the hit sees only the old owner.
    #[test]
    fn a_hit_in_flight_keeps_the_entry_from_its_next_owner() {
        static E: Entry = Entry::new();
        let old = E.claim(7, Some(old_handler), &[]).expect("free entry");
        let active = E.enter(old).expect("owned by the old breakpoint");

        let (done, finished) = mpsc::channel();
        let other = std::thread::spawn(move || {
            E.release();
            let new = E
                .claim(7, Some(new_handler), &[])
                .expect("free after release");
            done.send(new).expect("test thread waits");
        });
        // The drop is blocked while the hit is inside.
        assert!(
            finished.recv_timeout(Duration::from_millis(200)).is_err(),
            "the entry was freed and reclaimed under a running hit"
        );
        let (sample, handler) = active.sample();
        assert_eq!(sample, 1);
        assert_eq!(which(handler), "old");
        drop(active);

        let new = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("release finishes");
        other.join().expect("no panic");
        assert_ne!(new, old);
        // The old breakpoint's hits no longer enter; the new owner starts clean.
        assert!(E.enter(old).is_none());
        assert_eq!(E.active.load(Ordering::SeqCst), 0);
        let active = E.enter(new).expect("owned by the new breakpoint");
        let (sample, handler) = active.sample();
        assert_eq!((sample, which(handler)), (1, "new"));
        drop(active);
        E.release();
    }

    /// A delivery covers the hits between the highest count read before it
    /// and the count it reads; a new owner starts again from 0.
    #[test]
    fn deliveries_cover_the_hits_since_the_highest_count_read() {
        static E: Entry = Entry::new();
        let events = [AtomicI32::new(5), AtomicI32::new(-1)];
        let cookie = E.claim(11, None, &events).expect("free entry");
        let active = E.enter(cookie).expect("owned");
        assert!(core::ptr::eq(active.events(), &events[..]));
        assert_eq!(active.account(Some(1)), 1, "on time");
        assert_eq!(active.account(Some(3)), 2, "late, standing for two hits");
        assert_eq!(active.account(Some(2)), 0, "read before another delivery's");
        assert_eq!(active.account(None), 0, "unreadable");
        assert_eq!(E.counted.load(Ordering::SeqCst), 3);
        drop(active);
        E.release();
        assert!(E.events.load(Ordering::SeqCst).is_null());
        assert_eq!(E.events_len.load(Ordering::SeqCst), 0);

        let cookie = E.claim(11, None, &[]).expect("free after release");
        let active = E.enter(cookie).expect("owned");
        assert!(active.events().is_empty());
        assert_eq!(active.account(Some(4)), 4);
        drop(active);
        E.release();
        // Events not opened yet have no count (and need no system call).
        assert_eq!(read_count(&[AtomicI32::new(-1)]), Some(0));
        assert_eq!(read_count(&[]), Some(0));
    }

    /// A breakpoint with one event keeps its descriptor in its entry (no
    /// array of its own): deliveries read it there, a release forgets it, and
    /// the next owner starts from "not opened yet".
    #[test]
    fn a_single_event_lives_in_the_entry() {
        let slot = Slot::claim(None, 1).expect("room in the table");
        assert!(slot.events.is_none(), "an array was allocated");
        let entry = &TABLE[slot.index];
        slot.record(0, 42);
        slot.record(1, 43); // no second event: ignored
        let active = entry.enter(slot.cookie()).expect("owned");
        let events: Vec<i32> = active
            .events()
            .iter()
            .map(|e| e.load(Ordering::SeqCst))
            .collect();
        assert_eq!(events, [42]);
        assert!(core::ptr::eq(&active.events()[0], &entry.own_fd));
        drop(active);
        drop(slot);
        assert!(entry.events.load(Ordering::SeqCst).is_null());

        static E: Entry = Entry::new();
        E.claim_for(2, None, Events::InEntry).expect("free entry");
        E.own_fd.store(7, Ordering::SeqCst);
        E.release();
        let cookie = E.claim_for(2, None, Events::InEntry).expect("free entry");
        let active = E.enter(cookie).expect("owned");
        assert_eq!(active.events().len(), 1);
        assert_eq!(
            active.events()[0].load(Ordering::SeqCst),
            -1,
            "the old owner's"
        );
        drop(active);
        E.release();
        // Several events: the slot's own array.
        let slot = Slot::claim(None, 2).expect("room in the table");
        assert_eq!(slot.events.as_deref().map(<[_]>::len), Some(2));
    }

    #[test]
    fn a_refused_hit_leaves_no_trace() {
        static E: Entry = Entry::new();
        let cookie = E.claim(3, None, &[]).expect("free entry");
        assert!(E.enter(cookie ^ (1 << 16)).is_none());
        assert_eq!(E.active.load(Ordering::SeqCst), 0);
        assert_eq!(E.samples.load(Ordering::SeqCst), 0);
        // A release with nothing inside does not wait.
        E.release();
        assert!(E.enter(cookie).is_none());
    }

    #[test]
    fn leaving_after_a_fork_reset_does_not_underflow() {
        static E: Entry = Entry::new();
        let cookie = E.claim(5, None, &[]).expect("free entry");
        let active = E.enter(cookie).expect("owned");
        E.active.store(0, Ordering::SeqCst); // as `reset_after_fork` does
        drop(active);
        assert_eq!(E.active.load(Ordering::SeqCst), 0);
        E.release();
    }

    #[test]
    fn count_only_ids_are_distinct_and_outside_the_table() {
        let a = count_only_id();
        let b = count_only_id();
        assert_ne!(a, b);
        assert_eq!(a & 0xffff, COUNT_ONLY_ENTRY);
        assert!(COUNT_ONLY_ENTRY as usize >= TABLE_SIZE);
        assert!(TABLE.get(COUNT_ONLY_ENTRY as usize).is_none());
    }

    #[test]
    fn count_only_ids_repeat_only_after_2_pow_48_opens() {
        let near = [
            0,
            1,
            2,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            (1 << 48) - 1,
        ];
        let ids: std::collections::HashSet<u64> =
            near.iter().map(|&g| count_only_id_of(g)).collect();
        assert_eq!(ids.len(), near.len(), "distinct within 2^48 generations");
        // The old 32-bit generation repeated here.
        assert_ne!(count_only_id_of(1), count_only_id_of(1 + (1 << 32)));
        assert_eq!(count_only_id_of(1), count_only_id_of(1 + (1 << 48)));
        assert_eq!(count_only_id_of((1 << 48) - 1), u64::MAX);
        // Signal cookies keep their form: tag, 32-bit generation, entry.
        assert_eq!(
            cookie_of(0x1_2345_6789, 7),
            (TAG << 48) | (0x2345_6789 << 16) | 7
        );
    }

    #[test]
    fn count_only_ids_never_equal_a_cookie() {
        // Whatever the generations: a cookie's entry number is in the table,
        // a count-only id's is not.
        for gen in [0, 1, 0x4857_0000_0000, 0xffff_ffff, 1 << 32, (1 << 48) - 1] {
            let id = count_only_id_of(gen);
            for index in [0, 1, TABLE_SIZE - 1] {
                assert_ne!(id, cookie_of(gen, index));
                assert_ne!(id, cookie_of(gen >> 16, index));
            }
            assert!(TABLE.get((id & 0xffff) as usize).is_none());
        }
    }

    #[test]
    fn a_fork_reset_frees_only_entries_no_one_in_the_child_owns() {
        static OWNED: Entry = Entry::new();
        static CLAIMING: Entry = Entry::new();
        static RELEASING: Entry = Entry::new();
        static MINE: Entry = Entry::new();
        static FREE: Entry = Entry::new();
        // A live breakpoint's entry, with a handler inside on a parent thread.
        let cookie = OWNED.claim(1, Some(old_handler), &[]).expect("free entry");
        let inside = OWNED.enter(cookie).expect("owned");
        // Another thread between taking an entry and publishing its cookie.
        CLAIMING.claimed.store(true, Ordering::SeqCst);
        CLAIMING
            .handler
            .store(handler_ptr(Some(new_handler)), Ordering::SeqCst);
        // Another thread freeing an entry, waiting for a handler inside.
        RELEASING.claim(2, None, &[]).expect("free entry");
        RELEASING.cookie.store(0, Ordering::SeqCst);
        RELEASING.active.store(1, Ordering::SeqCst);
        // The forking thread itself in the middle of a claim or release.
        MINE.claimed.store(true, Ordering::SeqCst);

        for (e, busy) in [
            (&OWNED, false),
            (&CLAIMING, false),
            (&RELEASING, false),
            (&MINE, true),
            (&FREE, false),
        ] {
            e.reset_after_fork(busy);
            assert_eq!(e.active.load(Ordering::SeqCst), 0);
        }
        assert!(
            OWNED.claimed.load(Ordering::SeqCst),
            "a live breakpoint lost its entry"
        );
        assert_eq!(OWNED.cookie.load(Ordering::SeqCst), cookie);
        assert!(!CLAIMING.claimed.load(Ordering::SeqCst));
        assert!(CLAIMING.handler.load(Ordering::SeqCst).is_null());
        assert!(!RELEASING.claimed.load(Ordering::SeqCst));
        assert!(
            MINE.claimed.load(Ordering::SeqCst),
            "the forking thread's claim was undone"
        );
        assert!(!FREE.claimed.load(Ordering::SeqCst));

        // The freed entries are claimable again, and the live one is not.
        assert!(CLAIMING.claim(3, None, &[]).is_some());
        assert!(RELEASING.claim(4, None, &[]).is_some());
        assert!(OWNED.claim(1, None, &[]).is_none());
        drop(inside);
        OWNED.release();
        CLAIMING.release();
        RELEASING.release();
    }

    /// Opens and drops in stack order claim the entry the hint points to
    /// (one try each, not one per entry below it); a free entry is found
    /// wherever the hint points, and a full table gives `None`.
    #[test]
    fn claims_start_at_the_hint_and_wrap_around() {
        static T: [Entry; 4] = [const { Entry::new() }; 4];
        static HINT: AtomicUsize = AtomicUsize::new(0);
        let claim = || claim_from(&T, &HINT, None, Events::Array(&[])).map(|(i, _)| i);
        assert_eq!((claim(), claim(), claim()), (Some(0), Some(1), Some(2)));
        assert_eq!(HINT.load(Ordering::SeqCst), 3);
        release_in(&T, &HINT, 1);
        assert_eq!(HINT.load(Ordering::SeqCst), 1, "lowered to the freed entry");
        assert_eq!(claim(), Some(1));
        assert_eq!(HINT.load(Ordering::SeqCst), 2);
        HINT.store(2, Ordering::SeqCst);
        assert_eq!(claim(), Some(3), "found past taken entries");
        assert_eq!(claim(), None, "full");
        release_in(&T, &HINT, 2);
        HINT.store(usize::MAX, Ordering::SeqCst); // as a racing claim may leave it
        assert_eq!(claim(), Some(2), "found after wrapping");
        for i in 0..4 {
            release_in(&T, &HINT, i);
        }
        assert_eq!(HINT.load(Ordering::SeqCst), 0);
        release_in(&T, &HINT, 9); // no such entry: nothing happens
        assert_eq!(HINT.load(Ordering::SeqCst), 0);
        // The search starts at the hint, not at entry 0.
        HINT.store(2, Ordering::SeqCst);
        assert_eq!(claim(), Some(2));
        release_in(&T, &HINT, 2);
    }

    #[test]
    fn claim_and_release_mark_the_thread_busy_only_meanwhile() {
        static E: Entry = Entry::new();
        static OUTER: Entry = Entry::new();
        assert_eq!(BUSY.get(), 0);
        {
            let _outer = Busy::mark(&OUTER);
            assert_eq!(BUSY.get(), &OUTER as *const Entry as usize);
            let cookie = E.claim(9, None, &[]).expect("free entry");
            // A nested mark restores the outer one.
            assert_eq!(BUSY.get(), &OUTER as *const Entry as usize);
            assert_eq!(cookie & 0xffff, 9);
        }
        assert_eq!(BUSY.get(), 0);
        E.release();
        assert_eq!(BUSY.get(), 0);
    }
}

/// Model checking of the table's entry protocol with loom (issue 13): every
/// interleaving of the threads below, up to the preemption bound, is explored
/// against the code above built with loom's atomics:
///
/// ```text
/// RUSTFLAGS="--cfg hwbp_linux_loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p hwbp-linux --release --lib loom
/// ```
///
/// A "hit" is [`deliver`], what the SIGTRAP handler does once it has a cookie
/// (its system calls replaced: the count it reads is the sum of the owner's
/// descriptor numbers, so a delivery's count says whose events it read). A
/// "drop" is [`Entry::release`], which [`Slot`]'s drop does before it frees
/// the event array. `--lib` is needed: the integration tests use the real
/// table, which under that cfg exists only inside a model.
#[cfg(all(test, hwbp_linux_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    loom::thread_local! {
        /// Which of the handlers below ran on this (model) thread.
        static RAN: Cell<&'static str> = Cell::new("none");
    }
    fn old_handler(_: &Hit) {
        RAN.with(|r| r.set("old"));
    }
    fn new_handler(_: &Hit) {
        RAN.with(|r| r.set("new"));
    }

    /// The stand-in for the kernel's count: the sum of the descriptors.
    fn fds_as_count(events: &[AtomicI32]) -> Option<u64> {
        Some(
            events
                .iter()
                .map(|e| e.load(Ordering::Acquire) as u64)
                .sum(),
        )
    }

    /// What one hit saw: `None` if it was refused, else the handler that ran
    /// ("none" for none) and what it was handed. `dropped` is set once the
    /// drop of the breakpoint has returned: no handler may run after that.
    fn hit(
        entry: &Entry,
        cookie: u64,
        count_of: impl FnOnce(&[AtomicI32]) -> Option<u64>,
        dropped: &AtomicBool,
    ) -> Option<(&'static str, Option<Delivered>)> {
        RAN.with(|r| r.set("none"));
        let mut seen = None;
        let entered = deliver(entry, cookie, count_of, |f, d| {
            let hit = Hit {
                id: crate::Id(cookie),
                addr: 0,
                ip: 0,
                tid: 0,
                sample: d.sample,
                count: d.count,
                covers: d.covers,
                flags: 0,
            };
            f(&hit);
            assert!(
                !dropped.load(Ordering::SeqCst),
                "a handler ran after the drop returned"
            );
            seen = Some(d);
        });
        entered.then(|| (RAN.with(Cell::get), seen))
    }

    fn owner(sample: u64, count: u64) -> Option<Delivered> {
        Some(Delivered {
            sample,
            count: Some(count),
            covers: count,
        })
    }

    /// A hit with the old breakpoint's cookie races its drop on a second
    /// thread and the entry's reuse by a new breakpoint opened on a third:
    /// the hit is refused, or it runs the old handler with the old owner's
    /// sample number and events, before the drop returns; the new owner gets
    /// a new cookie and starts clean either way (no sample or count of the
    /// old hit, its own handler and events), and later hits with the old
    /// cookie are refused (its generation is gone).
    #[test]
    fn loom_hit_racing_drop_and_reuse_sees_only_its_owner() {
        hit_racing_drop_and_reuse(false);
    }

    /// The same with both owners keeping their one descriptor in the entry
    /// ([`Events::InEntry`]): the new owner's claim and record, which write
    /// where the old owner's descriptor was, never reach a hit of the old one.
    #[test]
    fn loom_hit_racing_drop_and_reuse_reads_its_owners_descriptor_in_the_entry() {
        hit_racing_drop_and_reuse(true);
    }

    /// See the two tests above; `in_entry`: the owners keep their one
    /// descriptor in the entry, as [`Slot::claim`] and [`Slot::record`] do.
    fn hit_racing_drop_and_reuse(in_entry: bool) {
        loom::model(move || {
            let entry = Arc::new(Entry::new());
            let old_events = [AtomicI32::new(10)];
            let new_events = [AtomicI32::new(20)];
            let claim = |handler: HitFn, events: &[AtomicI32]| {
                if !in_entry {
                    return entry.claim(7, Some(handler), events);
                }
                let cookie = entry.claim_for(7, Some(handler), Events::InEntry)?;
                let fd = events[0].load(Ordering::SeqCst);
                entry.own_fd.store(fd, Ordering::Release);
                Some(cookie)
            };
            let old = claim(old_handler, &old_events).expect("free entry");
            let dropped = Arc::new(AtomicBool::new(false));
            let (e, d) = (entry.clone(), dropped.clone());
            let hitter = thread::spawn(move || hit(&e, old, fds_as_count, &d));
            let (e, d) = (entry.clone(), dropped.clone());
            let dropper = thread::spawn(move || {
                e.release();
                d.store(true, Ordering::SeqCst);
            });
            // The new breakpoint takes the entry if the drop has freed it by
            // now, else (below) once the drop has returned.
            let new = claim(new_handler, &new_events);
            let seen = hitter.join().expect("no panic in the hit");
            dropper.join().expect("no panic in the drop");
            let new = new
                .or_else(|| claim(new_handler, &new_events))
                .expect("free after the drop");

            assert_ne!(new, old, "a reused entry got the same cookie");
            if let Some(seen) = seen {
                assert_eq!(seen, ("old", owner(1, 10)), "the hit saw another owner");
            }
            assert_eq!(
                entry.samples.load(Ordering::SeqCst),
                0,
                "the old hit counted for the new owner"
            );
            assert_eq!(entry.counted.load(Ordering::SeqCst), 0);
            assert!(hit(&entry, old, fds_as_count, &AtomicBool::new(false)).is_none());
            assert_eq!(
                hit(&entry, new, fds_as_count, &AtomicBool::new(false)),
                Some(("new", owner(1, 20)))
            );
            entry.release();
            assert_eq!(entry.active.load(Ordering::SeqCst), 0);
        });
    }

    /// A hit whose cookie reaches it with no ordering at all (here through a
    /// relaxed atomic; the kernel's `sig_data` does order it) while the
    /// breakpoint is being opened: refused, or it sees the whole owner (its
    /// handler, its events, a fresh sample count), never a half-claimed entry.
    #[test]
    fn loom_hit_sees_a_published_owner_whole() {
        loom::model(|| {
            let entry = Arc::new(Entry::new());
            let sig_data = Arc::new(AtomicU64::new(0));
            let (e, s) = (entry.clone(), sig_data.clone());
            let hitter = thread::spawn(move || {
                let cookie = s.load(Ordering::Relaxed);
                (cookie != 0)
                    .then(|| hit(&e, cookie, fds_as_count, &AtomicBool::new(false)))
                    .flatten()
            });
            let events = [AtomicI32::new(20)];
            let cookie = entry
                .claim(3, Some(new_handler), &events)
                .expect("free entry");
            sig_data.store(cookie, Ordering::Relaxed);
            if let Some(seen) = hitter.join().expect("no panic in the hit") {
                assert_eq!(
                    seen,
                    ("new", owner(1, 20)),
                    "the hit saw a half-published owner"
                );
            }
            entry.release();
        });
    }

    /// Two hits of one breakpoint on two threads, reading counts 1 and 3,
    /// race its drop: the drop returns only after every hit that got in has
    /// left, the sample numbers are distinct and the covers of the hits that
    /// got in add up to the highest count they read.
    #[test]
    fn loom_hits_racing_a_drop_each_count_once() {
        loom::model(|| {
            let entry = Arc::new(Entry::new());
            let events = [AtomicI32::new(-1)];
            let cookie = entry
                .claim(1, Some(old_handler), &events)
                .expect("free entry");
            let dropped = Arc::new(AtomicBool::new(false));
            let spawn = |count: u64| {
                let (e, d) = (entry.clone(), dropped.clone());
                thread::spawn(move || hit(&e, cookie, |_| Some(count), &d))
            };
            let (a, b) = (spawn(1), spawn(3));
            entry.release();
            dropped.store(true, Ordering::SeqCst);
            let samples = entry.samples.load(Ordering::SeqCst);
            let counted = entry.counted.load(Ordering::SeqCst);

            let seen = [a.join().expect("no panic"), b.join().expect("no panic")];
            let got: Vec<Delivered> = seen
                .iter()
                .flatten()
                .map(|&(ran, d)| {
                    assert_eq!(ran, "old");
                    d.expect("a handler")
                })
                .collect();
            assert_eq!(
                samples,
                got.len() as u64,
                "the drop returned before a hit left"
            );
            let mut numbers: Vec<u64> = got.iter().map(|d| d.sample).collect();
            numbers.sort_unstable();
            assert_eq!(numbers, (1..=got.len() as u64).collect::<Vec<_>>());
            let highest = got.iter().filter_map(|d| d.count).max().unwrap_or(0);
            assert_eq!(got.iter().map(|d| d.covers).sum::<u64>(), highest);
            assert_eq!(counted, highest);
        });
    }

    /// A drop racing two opens, on three threads, through the free-entry
    /// hint ([`claim_from`] and [`release_in`] over the real table): the two
    /// breakpoints open together never share an entry, whatever the hint said
    /// when they looked, each hit finds its own owner, and once all are
    /// dropped every entry they used is free and a new open gets one.
    #[test]
    fn loom_opens_racing_a_drop_through_the_hint_get_their_own_entries() {
        loom::model(|| {
            let first = Slot::claim(Some(new_handler), 1).expect("room in the table");
            let used = first.index;
            let dropper = thread::spawn(move || drop(first));
            let other =
                thread::spawn(|| Slot::claim(Some(new_handler), 1).expect("room in the table"));
            let mine = Slot::claim(Some(old_handler), 1).expect("room in the table");
            dropper.join().expect("no panic");
            let other = other.join().expect("no panic");
            assert_ne!(
                mine.index, other.index,
                "two open breakpoints share an entry"
            );
            each_finds_its_owner(&mine, &other);
            let indexes = [used, mine.index, other.index];
            drop((mine, other));
            for i in indexes {
                assert!(!TABLE[i].claimed.load(Ordering::SeqCst), "entry {i} kept");
            }
            let again = Slot::claim(None, 1).expect("room in the table");
            assert!(again.index <= indexes.into_iter().max().unwrap_or(0));
        });
    }

    /// A hit with `old`'s cookie runs `old_handler`, one with `new`'s runs
    /// `new_handler`: each entry delivers to its own owner.
    fn each_finds_its_owner(old: &Slot, new: &Slot) {
        let no = AtomicBool::new(false);
        for (slot, ran) in [(old, "old"), (new, "new")] {
            let entry = &TABLE[slot.index];
            assert_eq!(
                hit(entry, slot.cookie(), |_| None, &no).map(|(r, _)| r),
                Some(ran)
            );
        }
    }

    /// Two breakpoints opened at once on two threads ([`Slot::claim`] over
    /// the real table, with its shared generation counter) get different
    /// entries and cookies, and a hit with either cookie finds its own owner.
    #[test]
    fn loom_concurrent_opens_get_their_own_entries() {
        loom::model(|| {
            let other =
                thread::spawn(|| Slot::claim(Some(new_handler), 1).expect("room in the table"));
            let mine = Slot::claim(Some(old_handler), 1).expect("room in the table");
            let other = other.join().expect("no panic");
            assert_ne!(mine.index, other.index);
            assert_ne!(mine.cookie(), other.cookie());
            each_finds_its_owner(&mine, &other);
        });
    }
}
