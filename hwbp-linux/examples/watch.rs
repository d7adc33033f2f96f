//! Seed 003, answered: a user-land program programs 4 pinned hardware
//! breakpoints (1-byte granularity, R/W and X triggers) that every thread and
//! child it creates inherits; the thread that hits one is stopped at once, gets
//! SIGTRAP, runs a handler on its own stack and resumes after the access.
//!
//! ```text
//! cargo run -p hwbp-linux --example watch
//! ```
//!
//! The handler runs in signal context: it formats into a stack buffer and calls
//! `write(2)`, nothing that allocates or locks.

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod demo {
    use core::fmt::Write as _;
    use std::hint::black_box;
    use std::sync::atomic::{AtomicU64, Ordering};

    use hwbp_core::{Access, BreakpointAttr};
    use hwbp_linux::{current_thread, Breakpoint, Delivery, Error, Hit};

    static mut FLAG: u8 = 0;
    static mut NEIGHBOUR: u8 = 0;
    static mut COUNTER: u64 = 0;
    static mut BYTES: [u8; 8] = [0; 8];

    #[inline(never)]
    extern "C" fn checkpoint(x: u64) -> u64 {
        black_box(x) + 1
    }

    /// Breakpoint ids, so the handler can name what fired.
    static IDS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
    const NAMES: [&str; 4] = [
        "FLAG (1 byte, W)",
        "COUNTER (8 bytes, RW)",
        "checkpoint() (X)",
        "BYTES[4] (1 byte, W)",
    ];

    /// A fixed buffer for `core::fmt` in signal context.
    struct StackBuf {
        buf: [u8; 160],
        len: usize,
    }

    impl core::fmt::Write for StackBuf {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.len + s.len();
            let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }

    fn on_hit(hit: &Hit) {
        let name = IDS
            .iter()
            .position(|id| id.load(Ordering::Relaxed) == hit.id.0)
            .and_then(|i| NAMES.get(i))
            .unwrap_or(&"?");
        let mut out = StackBuf {
            buf: [0; 160],
            len: 0,
        };
        let _ = writeln!(
            out,
            "  [tid {}] SIGTRAP on {name} at {:#x}, pc {:#x}, sample {}",
            hit.tid, hit.addr, hit.ip, hit.sample
        );
        // SAFETY: write(2) is async-signal-safe; the buffer lives on this stack.
        unsafe { libc::write(2, out.buf.as_ptr().cast(), out.len) };
    }

    fn say(s: &str) {
        eprintln!("{s}");
    }

    pub fn main() -> Result<(), Error> {
        let me = current_thread();
        let user = |a: BreakpointAttr| a.target(me).inherit(true); // pinned by default
        let attrs = [
            user(BreakpointAttr::watch(
                &raw const FLAG as u64,
                1,
                Access::WRITE,
            )),
            user(BreakpointAttr::watch(
                &raw const COUNTER as u64,
                8,
                Access::RW,
            )),
            user(BreakpointAttr::exec(
                checkpoint as *const () as usize as u64,
            )),
            user(BreakpointAttr::watch(
                &raw const BYTES as u64 + 4,
                1,
                Access::WRITE,
            )),
        ];
        let mut bps = Vec::new();
        for (i, attr) in attrs.iter().enumerate() {
            let bp = Breakpoint::with_handler(attr, on_hit)?;
            IDS[i].store(bp.id().0, Ordering::Relaxed);
            bps.push(bp);
        }
        say("4 pinned breakpoints armed, inherited by new threads and children.");
        match Breakpoint::open(
            &user(BreakpointAttr::watch(
                &raw const NEIGHBOUR as u64,
                1,
                Access::WRITE,
            )),
            Delivery::Signal(None),
        ) {
            Err(e) => say(&format!("a 5th is refused: {e}")),
            Ok(_) => say("a 5th was accepted?! (this CPU has more than 4 slots)"),
        }

        say("main thread: writes NEIGHBOUR (no trap), then FLAG:");
        // SAFETY: single-threaded at this point; volatile so the stores happen.
        unsafe {
            (&raw mut NEIGHBOUR).write_volatile(1);
            (&raw mut FLAG).write_volatile(1);
        }

        let workers: Vec<_> = (0..2)
            .map(|n| {
                std::thread::spawn(move || {
                    // SAFETY: racy but harmless demo accesses to plain statics.
                    unsafe {
                        black_box((&raw const COUNTER).read_volatile());
                        (&raw mut FLAG).write_volatile(n);
                    }
                    black_box(checkpoint(n.into()));
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }

        say("fork: the child writes BYTES[4] and BYTES[5]:");
        // SAFETY: the child does volatile stores and _exit only.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                (&raw mut BYTES).cast::<u8>().add(4).write_volatile(1);
                (&raw mut BYTES).cast::<u8>().add(5).write_volatile(1);
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };

        say("counts (all threads and the child, summed by the kernel):");
        for (bp, name) in bps.iter().zip(NAMES) {
            say(&format!(
                "  {name}: {} hits, {} signals in this process",
                bp.count()?,
                bp.samples()
            ));
        }
        Ok(())
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn main() {
    if let Err(e) = demo::main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn main() {
    eprintln!("this example needs Linux on x86_64 or aarch64");
}
