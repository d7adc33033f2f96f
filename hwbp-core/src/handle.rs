//! [`Handle`]: how callers name a registered breakpoint, and why a stale or
//! foreign one is always refused (64-bit generations, the manager's identity).

/// Names one registered breakpoint of one manager.
///
/// Every call that takes a handle refuses it with [`Error::StaleHandle`](crate::Error::StaleHandle)
/// once the breakpoint is unregistered, even if its storage is reused, and
/// when the handle comes from another manager (a handle carries the identity
/// its manager took in [`Manager::init`](crate::Manager::init)).
///
/// Storage is reused lowest index first, so one index can be reused very
/// often (a debugger setting and clearing one watchpoint in a loop). The
/// generation that tells its occupants apart is therefore 64-bit: an old
/// handle could only become valid again after 2⁶⁴ reuses of its index
/// (centuries at one reuse per nanosecond). A 32-bit generation would have
/// let a handle kept by mistake name another user's breakpoint after 2³²
/// reuses, about an hour of such a loop. No 64-bit atomics are needed:
/// the exception path matches the low half and reads the high half only to
/// name the breakpoint in [`Sample::handle`](crate::Sample::handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Handle {
    pub(crate) index: u16,
    pub(crate) manager: u32,
    pub(crate) generation: u64,
}

impl Handle {
    /// The storage index (stable while the breakpoint lives).
    pub const fn index(self) -> u16 {
        self.index
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::mock::{Mock, MockConfig};
    use crate::{Access, BreakpointAttr, Error, Manager, Sample, Target};
    use std::sync::Mutex;

    static SAMPLES: Mutex<std::vec::Vec<Sample>> = Mutex::new(std::vec::Vec::new());

    fn record(s: &Sample) {
        SAMPLES.lock().unwrap().push(*s);
    }

    type Small = Manager<Mock, fn(&Sample), 1, 2, 2>;

    /// Storage index 0 reused until its generation passes 2³²: the first
    /// handle of that index must stay stale, and hits on the breakpoint now
    /// there must name its handle (whose generation's low half wrapped).
    #[test]
    fn a_handle_stays_stale_after_2_pow_32_reuses_of_its_index() {
        let hw: Box<Small> = Box::new(Manager::new(Mock::new(MockConfig::X86_LIKE), record));
        hw.init(1).unwrap();
        hw.cpu_online(0).unwrap();
        let w = BreakpointAttr::watch(0x1000, 4, Access::WRITE).target(Target::Cpu(0));
        let first = hw.register(&w).unwrap().handle;
        let _ = hw.unregister(first).unwrap();
        // As if index 0 had been registered and unregistered 2³² − 2 times
        // more (too slow to do for real).
        hw.with(|st| {
            st.generations[0] = u32::MAX.into();
            Ok(())
        })
        .unwrap();
        let last32 = hw.register(&w).unwrap().handle;
        let _ = hw.unregister(last32).unwrap();
        let now = hw.register(&w).unwrap();
        assert_eq!(now.handle.index(), first.index());
        assert_eq!(
            hw.attr(first),
            Err(Error::StaleHandle),
            "old handle valid again"
        );
        assert_eq!(hw.attr(last32), Err(Error::StaleHandle));
        assert_ne!(now.handle, first);
        hw.sync(0).unwrap();
        hw.access(0, 0x1000, 4, Access::WRITE, 0x4000);
        assert_eq!(hw.hits(now.handle), Ok(1));
        let samples = SAMPLES.lock().unwrap().clone();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].handle, now.handle);
    }
}
