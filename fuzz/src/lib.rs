//! Shared helpers for the fuzz targets: read typed values off the fuzzer's
//! bytes (zeros once they run out, so every input is a valid program).

use hwbp_core::{Access, BreakpointAttr, Target, TaskId};

/// A cursor over the fuzzer's input.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    /// Whether the input is used up.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Next byte (0 when exhausted).
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// Next little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Next little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Next little-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// A boolean.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    /// Small values most of the time, anything sometimes.
    pub fn small_u64(&mut self) -> u64 {
        match self.u8() % 4 {
            0 => self.u64(),
            _ => u64::from(self.u8()),
        }
    }

    /// An arbitrary breakpoint request.
    pub fn attr(&mut self) -> BreakpointAttr {
        let addr = match self.u8() % 3 {
            0 => self.u64(),
            1 => 0x1000 + u64::from(self.u8()),
            _ => u64::MAX - u64::from(self.u8()),
        };
        let target = match self.u8() % 3 {
            0 => Target::Cpu(self.u16() % 8),
            1 => Target::AllCpus,
            _ => Target::Task {
                task: TaskId(u64::from(self.u8() % 6)),
                cpu: self.bool().then(|| self.u16() % 8),
            },
        };
        BreakpointAttr::watch(addr, self.small_u64(), Access::from_bits_retain(self.u8()))
            .target(target)
            .pinned(self.bool())
            .sample_period(self.small_u64())
            .inherit(self.bool())
            .disabled(self.bool())
            .exclude_user(self.bool())
            .exclude_kernel(self.bool())
    }
}
