//! The firmware's [`Handler`]: keeps the samples it is given so the checks can
//! compare them with what they did.

use core::cell::RefCell;

use critical_section::Mutex;
use hwbp_core::{Handler, Sample};

/// Samples kept (the oldest are dropped beyond this).
const KEEP: usize = 16;

/// One delivered sample plus what the handler saw in memory.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    /// The sample as delivered by the core.
    pub sample: Sample,
    /// The watched word as the handler read it: the watchpoint fires before
    /// the access, so for a store this is the value it is about to replace.
    /// `None` for instruction breakpoints and regions that are not one
    /// aligned word.
    pub old: Option<u32>,
}

struct Log {
    count: usize,
    records: [Option<Record>; KEEP],
}

/// The handler (lives inside the `Hwbp` static).
pub struct Recorder {
    log: Mutex<RefCell<Log>>,
}

impl Recorder {
    /// Empty.
    pub const fn new() -> Self {
        Recorder {
            log: Mutex::new(RefCell::new(Log {
                count: 0,
                records: [None; KEEP],
            })),
        }
    }

    /// Forget every sample.
    pub fn clear(&self) {
        critical_section::with(|cs| {
            let mut log = self.log.borrow_ref_mut(cs);
            log.count = 0;
            log.records = [None; KEEP];
        });
    }

    /// Samples delivered since the last `clear`.
    pub fn count(&self) -> usize {
        critical_section::with(|cs| self.log.borrow_ref(cs).count)
    }

    /// The `i`-th sample since the last `clear`, if still kept.
    pub fn get(&self, i: usize) -> Option<Record> {
        critical_section::with(|cs| self.log.borrow_ref(cs).records.get(i).copied().flatten())
    }
}

impl Handler for Recorder {
    fn on_sample(&self, s: &Sample) {
        // The backend disabled the fired watchpoint before the core called us,
        // so reading the watched word does not re-enter (AArch32 has no
        // PSTATE.D to mask debug exceptions in the handler).
        let old = (s.region_len == 4
            && s.region_addr.is_multiple_of(4)
            && !s.access.contains(hwbp_core::Access::EXEC))
        .then(|| {
            // SAFETY: the region is a word the firmware registered, in RAM.
            unsafe { core::ptr::read_volatile(s.region_addr as usize as *const u32) }
        });
        critical_section::with(|cs| {
            let mut log = self.log.borrow_ref_mut(cs);
            let i = log.count;
            if let Some(slot) = log.records.get_mut(i) {
                *slot = Some(Record { sample: *s, old });
            }
            log.count = i + 1;
        });
    }
}
