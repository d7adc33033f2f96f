//! The firmware's sample handler: keeps every sample (and what the board
//! read at the watched address) so the checks can compare them with what
//! they did.

use core::cell::RefCell;
use core::ops::Deref;

use critical_section::Mutex;
use hwbp_core::{Handler, Sample};

/// One delivered sample plus what the handler saw in memory.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    /// The sample as the core delivered it.
    pub sample: Sample,
    /// What the board's `peek` read for it (the watched word, say: before the
    /// access on Arm, whose watchpoints fire before it; after on x86, whose
    /// data breakpoints are traps). `None` where the board reads nothing.
    pub value: Option<u64>,
}

impl Record {
    /// The region the sample is reported against: (first byte, length).
    pub fn region(&self) -> (u64, u64) {
        (self.sample.region_addr, self.sample.region_len)
    }
}

/// A record reads as its sample (`r.addr`, `r.ip`, ...).
impl Deref for Record {
    type Target = Sample;
    fn deref(&self) -> &Sample {
        &self.sample
    }
}

struct Log<const N: usize> {
    /// Samples delivered since the last take or clear, kept or not.
    delivered: usize,
    kept: heapless::Vec<Record, N>,
}

/// Keeps the first `N` samples delivered since the last [`Recorder::take`]
/// or [`Recorder::clear`]. A sample beyond those is a failed check (`FAIL:
/// sample buffer overflow`) but is still counted by [`Recorder::count`].
pub struct Recorder<const N: usize> {
    log: Mutex<RefCell<Log<N>>>,
    peek: fn(&Sample) -> Option<u64>,
}

impl<const N: usize> Recorder<N> {
    /// Empty; `peek` reads what a record's `value` holds (it runs in the
    /// debug exception handler).
    pub const fn new(peek: fn(&Sample) -> Option<u64>) -> Self {
        Recorder {
            log: Mutex::new(RefCell::new(Log {
                delivered: 0,
                kept: heapless::Vec::new(),
            })),
            peek,
        }
    }

    /// Record `s`; returns the record, or `None` if the buffer was full (the
    /// first such sample since the last take is a failed check).
    pub fn record(&self, s: &Sample) -> Option<Record> {
        let rec = Record {
            sample: *s,
            value: (self.peek)(s),
        };
        let (kept, delivered) = critical_section::with(|cs| {
            let mut log = self.log.borrow_ref_mut(cs);
            log.delivered += 1;
            (log.kept.push(rec).is_ok(), log.delivered)
        });
        if !kept && delivered == N + 1 {
            crate::checks::fail(format_args!(
                "sample buffer overflow: more than {N} samples"
            ));
        }
        kept.then_some(rec)
    }

    /// Take every sample kept so far, and start again.
    pub fn take(&self) -> heapless::Vec<Record, N> {
        critical_section::with(|cs| {
            let mut log = self.log.borrow_ref_mut(cs);
            log.delivered = 0;
            core::mem::take(&mut log.kept)
        })
    }

    /// Forget every sample.
    pub fn clear(&self) {
        self.take();
    }

    /// Samples delivered since the last take or clear (kept or not).
    pub fn count(&self) -> usize {
        critical_section::with(|cs| self.log.borrow_ref(cs).delivered)
    }

    /// The `i`-th sample since the last take or clear, if kept.
    pub fn get(&self, i: usize) -> Option<Record> {
        critical_section::with(|cs| self.log.borrow_ref(cs).kept.get(i).copied())
    }
}

impl<const N: usize> Handler for &'static Recorder<N> {
    fn on_sample(&self, s: &Sample) {
        self.record(s);
    }
}
