//! Issue 3: the whole manager under real threads (complements the loom model
//! checks of the dispatch protocol in `src/dispatch.rs`).
//!
//! One thread per simulated CPU raises debug exceptions (mock accesses) as fast
//! as it can and syncs its own registers when asked, as a kernel does on an
//! IPI; a control thread meanwhile registers, unregisters, modifies and forks
//! breakpoints, while the CPUs switch between tasks. Checked:
//!
//! * no handler runs for a breakpoint once `wait_quiesced` returned after its
//!   `unregister` (which itself never waits);
//! * handlers unregister breakpoints too: churned breakpoints at odd
//!   addresses are one-shot, their handler unregisters them, concurrently
//!   with the control thread and other CPUs' handlers;
//! * no hit is lost: a pinned breakpoint that stays registered throughout is
//!   credited exactly the accesses made to it (per CPU and, for an all-CPU one,
//!   summed over CPUs delivering concurrently);
//! * no hit is credited to the wrong breakpoint: every sample's address lies in
//!   the region of the breakpoint it names, and the churned breakpoints watch
//!   other addresses than the steady ones;
//! * the mock never saw a write based on a stale image.
//!
//! Rounds: `PROPTEST_CASES` scales them (default 4 rounds).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::{Access, BreakpointAttr, CpuSet, Handle, Handler, Manager, Sample, Target, TaskId};

const CPUS: u16 = 3;
/// Accesses per CPU thread per round.
const ACCESSES: u64 = 3000;

#[derive(Default)]
struct Checker {
    /// The manager, so that handlers can unregister (one-shot breakpoints).
    hw: OnceLock<&'static Hw>,
    dead: Mutex<HashSet<Handle>>,
    /// Breakpoints handlers unregistered, with the CPUs to sync.
    one_shots: Mutex<Vec<(Handle, CpuSet)>>,
    violations: Mutex<Vec<String>>,
    samples: AtomicU64,
    churned: AtomicU64,
}

impl Handler for Checker {
    fn on_sample(&self, s: &Sample) {
        self.samples.fetch_add(1, Ordering::Relaxed);
        let mut bad = Vec::new();
        if self.dead.lock().unwrap().contains(&s.handle) {
            bad.push(format!("handler ran after wait_quiesced returned: {s:?}"));
        }
        let churned = (0x4000..0x5000).contains(&s.region_addr);
        if churned && s.region_addr % 2 == 1 {
            match self.hw.get().map(|hw| hw.unregister(s.handle)) {
                Some(Ok(set)) => self.one_shots.lock().unwrap().push((s.handle, set)),
                // Unregistered meanwhile by the control thread or another
                // CPU's handler.
                Some(Err(hwbp_core::Error::StaleHandle)) => {}
                other => bad.push(format!("one-shot unregister from a handler: {other:?}")),
            }
        }
        if churned {
            self.churned.fetch_add(1, Ordering::Relaxed);
            // A churned breakpoint may be credited a hit on its previous form
            // (modify races the CPU's resync), but never one outside the churn
            // area.
            if !(0x4000..0x4050).contains(&s.addr) {
                bad.push(format!("churned breakpoint credited a foreign hit: {s:?}"));
            }
        } else if s.addr < s.region_addr || s.addr - s.region_addr >= s.region_len {
            bad.push(format!("hit outside the region it was credited to: {s:?}"));
        }
        if !bad.is_empty() {
            self.violations.lock().unwrap().extend(bad);
        }
    }
}

type Hw = Manager<Mock, Checker, 4, 16, 4>;

fn rounds() -> u64 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(4, |n| (n / 64).max(1))
}

/// Per-CPU "IPI" flags: the control thread raises them, each CPU thread syncs
/// itself.
struct Ipis([AtomicBool; CPUS as usize]);

impl Ipis {
    fn send(&self, set: CpuSet) {
        for c in set.iter() {
            self.0[usize::from(c)].store(true, Ordering::SeqCst);
        }
    }
    fn wait_all_done(&self) {
        while self.0.iter().any(|f| f.load(Ordering::SeqCst)) {
            thread::yield_now();
        }
    }
}

/// Returns the hits delivered to churned breakpoints and how many one-shot
/// breakpoints their handlers unregistered.
fn round(cfg: MockConfig, seed: u64) -> (u64, usize) {
    // Leaked: handlers reach the manager through `Checker::hw`.
    let hw: &'static Hw = Box::leak(Box::new(Manager::new(Mock::new(cfg), Checker::default())));
    hw.handler().hw.set(hw).ok();
    hw.init(CPUS).unwrap();
    for c in 0..CPUS {
        hw.cpu_online(c).unwrap();
    }
    // Steady breakpoints: one per CPU at 0x1000 + 0x100 * cpu, one for all CPUs
    // at 0x8000. Churned ones live at 0x4000.. and never overlap them.
    let steady: Vec<Handle> = (0..CPUS)
        .map(|c| {
            let a = BreakpointAttr::watch(0x1000 + 0x100 * u64::from(c), 4, Access::WRITE)
                .target(Target::Cpu(c));
            hw.register(&a).unwrap().handle
        })
        .collect();
    let all = hw
        .register(&BreakpointAttr::watch(0x8000, 8, Access::RW).target(Target::AllCpus))
        .unwrap()
        .handle;
    for c in 0..CPUS {
        hw.sync(c).unwrap();
    }
    let ipis = Arc::new(Ipis(Default::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..CPUS)
        .map(|c| {
            let (ipis, stop) = (ipis.clone(), stop.clone());
            thread::spawn(move || {
                let mine = 0x1000 + 0x100 * u64::from(c);
                let mut made = 0u64;
                let mut k = 0u64;
                while made < ACCESSES || !stop.load(Ordering::SeqCst) {
                    if ipis.0[usize::from(c)].swap(false, Ordering::SeqCst) {
                        hw.sync(c).unwrap();
                    }
                    if k % 64 == 63 {
                        // A context switch on this CPU.
                        hw.sched_out(c).unwrap();
                        hw.sched_in(c, Some(TaskId((k / 64) % 4))).unwrap();
                    }
                    if made < ACCESSES {
                        hw.access(c, mine + (k % 4), 1, Access::WRITE, 0x40_0000);
                        hw.access(c, 0x8000 + (k % 8), 1, Access::READ, 0x40_0004);
                        made += 1;
                    }
                    // Churned region: whatever is there may or may not hit.
                    hw.access(c, 0x4000 + (k % 64), 2, Access::WRITE, 0x40_0008);
                    k += 1;
                }
                made
            })
        })
        .collect();

    // Control thread: churn.
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut live: Vec<Handle> = Vec::new();
    let mut one_shots = 0;
    // Handlers unregistered these: sync, wait for their handlers, then no
    // handler may run for them any more.
    let mut reap = |live: &mut Vec<Handle>| {
        let shots = std::mem::take(&mut *hw.handler().one_shots.lock().unwrap());
        for (h, set) in shots {
            ipis.send(set);
            hw.wait_quiesced(h).unwrap();
            hw.handler().dead.lock().unwrap().insert(h);
            live.retain(|&x| x != h);
            one_shots += 1;
        }
    };
    for _ in 0..400 {
        reap(&mut live);
        match next() % 6 {
            0 | 1 => {
                let r = next();
                let target = match r % 3 {
                    0 => Target::Cpu((r >> 8) as u16 % CPUS),
                    1 => Target::AllCpus,
                    _ => Target::Task {
                        task: TaskId((r >> 8) % 3),
                        cpu: None,
                    },
                };
                let mut a =
                    BreakpointAttr::watch(0x4000 + (r >> 16) % 56, 1 + (r >> 24) % 8, Access::RW)
                        .target(target)
                        .inherit(true);
                if r & (1 << 40) != 0 {
                    a = a.flexible();
                }
                if let Ok(reg) = hw.register(&a) {
                    live.push(reg.handle);
                    ipis.send(reg.sync);
                }
            }
            2 if !live.is_empty() => {
                let h = live.swap_remove(next() as usize % live.len());
                match hw.unregister(h) {
                    Ok(set) => {
                        ipis.send(set);
                        // No new delivery starts; once the ones in flight
                        // are over, no handler may run for h.
                        hw.wait_quiesced(h).unwrap();
                        hw.handler().dead.lock().unwrap().insert(h);
                    }
                    // A handler got there first (one-shot): reaped above
                    // or next time.
                    Err(e) => assert_eq!(e, hwbp_core::Error::StaleHandle),
                }
            }
            3 if !live.is_empty() => {
                let h = live[next() as usize % live.len()];
                let a = BreakpointAttr::watch(0x4000 + next() % 56, 1 + next() % 8, Access::WRITE);
                if let Ok(set) = hw.modify(h, &a) {
                    ipis.send(set);
                }
            }
            4 => {
                // A context switch is done on the CPU itself in a kernel; here the
                // switch is requested and the CPU's own thread picks it up on sync.
                let _ = hw.fork(TaskId(next() % 3), TaskId(3 + next() % 3));
                let set = hw.exit(TaskId(3 + next() % 3)).unwrap();
                ipis.send(set);
            }
            _ => thread::yield_now(),
        }
    }
    // Every CPU acknowledges the last changes, then stops after its quota.
    reap(&mut live);
    ipis.wait_all_done();
    stop.store(true, Ordering::SeqCst);
    let made: Vec<u64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    // No CPU delivers any more: nothing unregistered has a handler running.
    assert_eq!(hw.all_quiesced(), Ok(true));

    let v = hw.handler().violations.lock().unwrap().clone();
    assert!(
        v.is_empty(),
        "{} violations, first: {:?}",
        v.len(),
        v.first()
    );
    for (c, h) in steady.iter().enumerate() {
        assert_eq!(hw.hits(*h).unwrap(), made[c], "CPU {c} lost hits");
    }
    assert_eq!(
        hw.hits(all).unwrap(),
        made.iter().sum::<u64>(),
        "all-CPU breakpoint lost hits"
    );
    assert_eq!(hw.arch().desync(), 0);
    assert!(hw.handler().samples.load(Ordering::Relaxed) >= made.iter().sum::<u64>() * 2);
    (hw.handler().churned.load(Ordering::Relaxed), one_shots)
}

#[test]
fn dispatch_races_lifecycle_on_threads() {
    let (mut churned, mut one_shots) = (0, 0);
    for r in 0..rounds() {
        for cfg in [
            MockConfig::X86_LIKE,
            MockConfig::ARM_LIKE,
            MockConfig::SH_LIKE,
        ] {
            let (c, o) = round(cfg, 0x9e37_79b9_7f4a_7c15 ^ r);
            churned += c;
            one_shots += o;
        }
    }
    // The churned breakpoints did reach the hardware and fire, and handlers
    // did unregister some, so the races were real.
    assert!(churned > 0);
    assert!(one_shots > 0);
}
