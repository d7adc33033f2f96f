//! Typed records of a sampled breakpoint's perf ring buffer, and the walk that
//! copies them out of the ring. Pure data and arithmetic: builds on every
//! host, and the tests run under Miri.
//!
//! The ring is the kernel's: a power-of-two byte area that the kernel fills
//! from `data_head` on and will not overwrite beyond the reader's `data_tail`.
//! [`take`] copies every complete record between the two (a record that wraps
//! around the end of the area is copied in two parts into one buffer), checks
//! each size against what is there before copying, and only then says how far
//! the tail may move. A size that does not fit is reported as [`Malformed`],
//! never read past.

use crate::abi::{context, record, sample, RECORD_HEADER_SIZE};

/// One record of a sampled breakpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A hit (`PERF_RECORD_SAMPLE`).
    Sample(Sample),
    /// `PERF_RECORD_LOST`: the kernel found the ring full and dropped `lost`
    /// records. It writes this record with the next record that fits, so the
    /// drops of a burst are reported once the reader has made room.
    Lost {
        /// The event id (0 unless `PERF_FORMAT_ID` was asked for).
        id: u64,
        /// How many records were dropped.
        lost: u64,
    },
    /// `PERF_RECORD_THROTTLE` / `PERF_RECORD_UNTHROTTLE`: the kernel stopped
    /// (or resumed) sampling because one event produced more samples in a
    /// timer tick than `perf_event_max_sample_rate` allows. Hits while
    /// throttled are counted but not sampled.
    Throttle {
        /// When (the event's clock).
        time: u64,
        /// `true` for `UNTHROTTLE` (sampling resumed).
        resumed: bool,
    },
    /// Any other record type (none is asked for; kept so nothing is silently
    /// skipped).
    Other {
        /// The `perf_event_type`.
        kind: u32,
    },
}

/// One sampled hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// The instruction pointer the kernel recorded: on x86 the instruction
    /// after the access (data breakpoints are traps), on arm64 the accessing
    /// instruction itself.
    pub ip: u64,
    /// Process id of the thread that hit.
    pub pid: u32,
    /// Thread id of the thread that hit.
    pub tid: u32,
    /// Timestamp (the event's clock; `CLOCK_MONOTONIC` nanoseconds for
    /// hwbp-linux's sampled breakpoints).
    pub time: u64,
    /// The data address (the breakpoint's address: Linux reports `bp_addr`).
    pub addr: u64,
    /// The hit happened in kernel mode (a system call touching the watched
    /// user memory), not in user code.
    pub kernel_mode: bool,
    /// Kernel frames, innermost first (empty when the hit was in user mode or
    /// kernel call chains are not permitted).
    pub kernel_chain: Vec<u64>,
    /// User frames, innermost first: the hit's IP, then return addresses
    /// found by walking frame pointers (code built without them gives a
    /// short or wrong chain).
    pub user_chain: Vec<u64>,
}

/// A record that cannot be what the kernel wrote: a size that does not fit in
/// the data published, or a body too short for its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// What was wrong.
    pub what: &'static str,
    /// Where in the stream (the free-running position, as `data_tail` counts).
    pub at: u64,
}

/// The bytes of a ring's data area.
pub trait RingBytes {
    /// Size of the area: a power of two.
    fn size(&self) -> usize;
    /// Copy `out.len()` bytes starting at `offset`; the caller guarantees
    /// `offset + out.len() <= size()`.
    fn copy(&self, offset: usize, out: &mut [u8]);
}

impl RingBytes for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    fn copy(&self, offset: usize, out: &mut [u8]) {
        if let Some(src) = self.get(offset..offset + out.len()) {
            out.copy_from_slice(src);
        }
    }
}

/// Copy `out.len()` bytes starting at stream position `pos`, in two parts if
/// they wrap around the end of the area.
fn copy_wrapped(ring: &(impl RingBytes + ?Sized), pos: u64, out: &mut [u8]) {
    let size = ring.size();
    // `size` is a power of two, so this is `pos % size`.
    let offset = (pos & (size as u64 - 1)) as usize;
    let first = out.len().min(size - offset);
    let (a, b) = out.split_at_mut(first);
    ring.copy(offset, a);
    if !b.is_empty() {
        ring.copy(0, b);
    }
}

/// Copy out and decode every complete record in `tail..head` (free-running
/// positions, as in the mmap page). Returns the new tail: the caller publishes
/// it to the kernel only after this returns, so nothing was overwritten while
/// it was copied. `scratch` is reused between calls.
///
/// On a malformed record, the records before it are in `out` and the error
/// says where it stopped; the caller should skip to `head`.
pub fn take(
    ring: &(impl RingBytes + ?Sized),
    head: u64,
    tail: u64,
    sample_type: u64,
    scratch: &mut Vec<u8>,
    out: &mut Vec<Record>,
) -> Result<u64, Malformed> {
    let size = ring.size();
    if size < RECORD_HEADER_SIZE || !size.is_power_of_two() {
        return Err(Malformed {
            what: "ring size is not a power of two",
            at: tail,
        });
    }
    let avail = head.wrapping_sub(tail);
    if avail > size as u64 {
        return Err(Malformed {
            what: "data_head is more than a ring ahead of data_tail",
            at: tail,
        });
    }
    let mut pos = tail;
    while head.wrapping_sub(pos) >= RECORD_HEADER_SIZE as u64 {
        let mut header = [0u8; RECORD_HEADER_SIZE];
        copy_wrapped(ring, pos, &mut header);
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let misc = u16::from_le_bytes([header[4], header[5]]);
        let len = usize::from(u16::from_le_bytes([header[6], header[7]]));
        if len < RECORD_HEADER_SIZE || len % 8 != 0 || len as u64 > head.wrapping_sub(pos) {
            return Err(Malformed {
                what: "record size does not fit the published data",
                at: pos,
            });
        }
        scratch.clear();
        scratch.resize(len, 0);
        copy_wrapped(ring, pos, scratch);
        let body = &scratch[RECORD_HEADER_SIZE..];
        out.push(parse(kind, misc, body, sample_type).map_err(|what| Malformed { what, at: pos })?);
        pos = pos.wrapping_add(len as u64);
    }
    if pos != head {
        return Err(Malformed {
            what: "a partial record header at data_head",
            at: pos,
        });
    }
    Ok(pos)
}

/// Reads native-endian (little-endian on both supported targets) words.
struct Words<'a>(&'a [u8]);

impl Words<'_> {
    fn u64(&mut self) -> Result<u64, &'static str> {
        let (word, rest) = self
            .0
            .split_first_chunk::<8>()
            .ok_or("record body too short")?;
        self.0 = rest;
        Ok(u64::from_le_bytes(*word))
    }
}

/// Decode one record body (after the 8-byte header).
pub fn parse(kind: u32, misc: u16, body: &[u8], sample_type: u64) -> Result<Record, &'static str> {
    let mut w = Words(body);
    match kind {
        record::SAMPLE => {
            let known = sample::IP | sample::TID | sample::TIME | sample::ADDR | sample::CALLCHAIN;
            if sample_type & !known != 0 {
                return Err("sample_type has fields this reader does not decode");
            }
            let mut s = Sample {
                kernel_mode: misc & record::MISC_CPUMODE_MASK == record::MISC_KERNEL,
                ..Sample::default()
            };
            if sample_type & sample::IP != 0 {
                s.ip = w.u64()?;
            }
            if sample_type & sample::TID != 0 {
                let ids = w.u64()?;
                s.pid = ids as u32;
                s.tid = (ids >> 32) as u32;
            }
            if sample_type & sample::TIME != 0 {
                s.time = w.u64()?;
            }
            if sample_type & sample::ADDR != 0 {
                s.addr = w.u64()?;
            }
            if sample_type & sample::CALLCHAIN != 0 {
                let nr = w.u64()?;
                if nr > (w.0.len() / 8) as u64 {
                    return Err("call chain longer than the record");
                }
                // Which part the frames belong to: the kernel puts a marker
                // before each part; hypervisor and guest parts are skipped.
                #[derive(PartialEq)]
                enum Part {
                    Kernel,
                    User,
                    Skip,
                }
                let mut part = Part::Kernel;
                for _ in 0..nr {
                    match w.u64()? {
                        context::KERNEL => part = Part::Kernel,
                        context::USER => part = Part::User,
                        m if m >= context::MAX => part = Part::Skip,
                        ip if part == Part::User => s.user_chain.push(ip),
                        ip if part == Part::Kernel => s.kernel_chain.push(ip),
                        _ => {}
                    }
                }
            }
            Ok(Record::Sample(s))
        }
        record::LOST => {
            let id = w.u64()?;
            let lost = w.u64()?;
            Ok(Record::Lost { id, lost })
        }
        record::THROTTLE | record::UNTHROTTLE => {
            let time = w.u64()?;
            Ok(Record::Throttle {
                time,
                resumed: kind == record::UNTHROTTLE,
            })
        }
        kind => Ok(Record::Other { kind }),
    }
}

/// No system calls: these also run under Miri
/// (`cargo +nightly miri test -p hwbp-linux --lib pure_tests`).
#[cfg(test)]
mod pure_tests {
    use super::*;

    const ST: u64 = sample::IP | sample::TID | sample::TIME | sample::ADDR | sample::CALLCHAIN;

    fn header(kind: u32, misc: u16, len: usize) -> Vec<u8> {
        let mut h = kind.to_le_bytes().to_vec();
        h.extend(misc.to_le_bytes());
        h.extend(u16::try_from(len).unwrap().to_le_bytes());
        h
    }

    fn sample_bytes(ip: u64, tid: u32, chain: &[u64]) -> Vec<u8> {
        let len = 8 + 8 * 5 + 8 * chain.len();
        let mut r = header(record::SAMPLE, record::MISC_USER, len);
        for w in [
            ip,
            u64::from(tid) << 32 | 7,
            1000 + ip,
            0x5000,
            chain.len() as u64,
        ] {
            r.extend(w.to_le_bytes());
        }
        for w in chain {
            r.extend(w.to_le_bytes());
        }
        r
    }

    fn lost_bytes(lost: u64) -> Vec<u8> {
        let mut r = header(record::LOST, 0, 24);
        r.extend(9u64.to_le_bytes());
        r.extend(lost.to_le_bytes());
        r
    }

    /// Write `bytes` into a ring of `size` at free-running position `pos`.
    fn put(ring: &mut [u8], pos: u64, bytes: &[u8]) {
        let size = ring.len() as u64;
        for (i, b) in bytes.iter().enumerate() {
            ring[(pos.wrapping_add(i as u64) % size) as usize] = *b;
        }
    }

    #[test]
    fn samples_lost_and_throttle_records_decode() {
        let chain = [
            context::KERNEL,
            0xffff_8000_0000_1234,
            context::USER,
            0x401000,
            0x402000,
        ];
        let s = sample_bytes(0x401000, 42, &chain);
        let Record::Sample(got) = parse(record::SAMPLE, record::MISC_USER, &s[8..], ST).unwrap()
        else {
            panic!("not a sample")
        };
        assert_eq!(
            got,
            Sample {
                ip: 0x401000,
                pid: 7,
                tid: 42,
                time: 1000 + 0x401000,
                addr: 0x5000,
                kernel_mode: false,
                kernel_chain: vec![0xffff_8000_0000_1234],
                user_chain: vec![0x401000, 0x402000],
            }
        );
        assert_eq!(
            parse(record::LOST, 0, &lost_bytes(31)[8..], ST),
            Ok(Record::Lost { id: 9, lost: 31 })
        );
        let t = 77u64.to_le_bytes().repeat(3);
        assert_eq!(
            parse(record::UNTHROTTLE, 0, &t, ST),
            Ok(Record::Throttle {
                time: 77,
                resumed: true
            })
        );
        assert_eq!(
            parse(record::SAMPLE, record::MISC_KERNEL, &s[8..], ST).map(|r| match r {
                Record::Sample(s) => s.kernel_mode,
                _ => false,
            }),
            Ok(true)
        );
        // A chain that claims more frames than the record holds.
        let mut bad = sample_bytes(1, 1, &[context::USER, 5]);
        bad[8 + 32..8 + 40].copy_from_slice(&100u64.to_le_bytes());
        assert!(parse(record::SAMPLE, 0, &bad[8..], ST).is_err());
        assert!(parse(record::LOST, 0, &[0; 8], ST).is_err(), "short body");
        assert!(
            parse(record::SAMPLE, 0, &s[8..], ST | 1 << 7).is_err(),
            "unknown field"
        );
    }

    #[test]
    fn a_record_across_the_end_of_the_ring_is_copied_whole() {
        let mut ring = vec![0u8; 128];
        let a = sample_bytes(0x1111, 1, &[context::USER, 0x1111, 0x2222]); // 72 bytes
        let b = lost_bytes(5); // 24 bytes
        let c = sample_bytes(0x3333, 2, &[context::USER, 0x3333]); // 64 bytes
                                                                   // Start near the end: `a` fits, `b` straddles the end.
        let start = 1000 * 128 + 40;
        put(&mut ring, start, &a);
        put(&mut ring, start + 72, &b);
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        let tail = take(&ring[..], start + 96, start, ST, &mut scratch, &mut out).unwrap();
        assert_eq!(tail, start + 96);
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], Record::Sample(s) if s.user_chain == [0x1111, 0x2222]));
        assert_eq!(out[1], Record::Lost { id: 9, lost: 5 });
        // The ring holds 128 bytes: `c` is written where `a` was, as the
        // kernel would once the tail has moved past it.
        put(&mut ring, start + 96, &c);
        out.clear();
        let tail = take(&ring[..], start + 160, tail, ST, &mut scratch, &mut out).unwrap();
        assert_eq!(tail, start + 160);
        assert!(matches!(&out[..], [Record::Sample(s)] if s.ip == 0x3333 && s.tid == 2));
    }

    #[test]
    fn sizes_that_do_not_fit_are_refused_not_read() {
        let mut ring = vec![0u8; 64];
        let a = lost_bytes(1);
        put(&mut ring, 0, &a);
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        // The record says 24 bytes but only 16 are published.
        let got = take(&ring[..], 16, 0, ST, &mut scratch, &mut out);
        assert_eq!(
            got.unwrap_err().what,
            "record size does not fit the published data"
        );
        assert!(out.is_empty());
        // A zero size would loop for ever; a size that is not a multiple of 8.
        for len in [0u16, 12] {
            ring[6..8].copy_from_slice(&len.to_le_bytes());
            assert!(
                take(&ring[..], 24, 0, ST, &mut scratch, &mut out).is_err(),
                "{len}"
            );
        }
        // Head more than a ring ahead (the reader fell behind an overwrite).
        assert!(take(&ring[..], 200, 0, ST, &mut scratch, &mut out).is_err());
        // A partial header left at head.
        ring[6..8].copy_from_slice(&24u16.to_le_bytes());
        assert_eq!(
            take(&ring[..], 28, 0, ST, &mut scratch, &mut out)
                .unwrap_err()
                .what,
            "a partial record header at data_head"
        );
        assert_eq!(out, [Record::Lost { id: 9, lost: 1 }]);
        // Nothing published: nothing read, tail unchanged.
        out.clear();
        assert_eq!(take(&ring[..], 24, 24, ST, &mut scratch, &mut out), Ok(24));
        assert!(out.is_empty());
    }

    #[test]
    fn free_running_positions_wrap_around_u64() {
        let mut ring = vec![0u8; 64];
        let a = lost_bytes(3);
        let tail = u64::MAX - 7; // the record crosses 2^64
        put(&mut ring, tail, &a);
        let mut out = Vec::new();
        let got = take(
            &ring[..],
            tail.wrapping_add(24),
            tail,
            ST,
            &mut Vec::new(),
            &mut out,
        );
        assert_eq!(got, Ok(tail.wrapping_add(24)));
        assert_eq!(out, [Record::Lost { id: 9, lost: 3 }]);
    }
}
