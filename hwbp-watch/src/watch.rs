//! The watch: resolve, open, read and print, report.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hwbp_core::{Access, BreakpointAttr};
use hwbp_linux::symbols::{ChainReport, Frame, SymbolError, Symbolizer};
use hwbp_linux::{Error, Record, Sample, SampleOptions, SampledBreakpoint};

use crate::args::{self, Args, Kind, What};
use crate::json;

/// Set by SIGINT (Ctrl-C): stop and report.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn catch_sigint() {
    // SAFETY: a zeroed sigaction with a handler that only stores an atomic
    // (async-signal-safe); no SA_RESTART, so a blocked poll returns EINTR.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_sigint as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, core::ptr::null_mut());
    }
}

/// A refusal: a short kind for `--json`, and the message.
struct Refusal {
    kind: &'static str,
    message: String,
}

fn refusal_of(pid: i32, e: &Error) -> Refusal {
    let (kind, what) = match e {
        Error::Permission { .. } => ("permission", "not permitted".to_owned()),
        Error::NoSlot => (
            "no-free-debug-register",
            "no free debug register".to_owned(),
        ),
        Error::NoSuchTask { .. } => (
            "process-gone",
            format!("process {pid} is gone (or never existed)"),
        ),
        Error::NoHardware { .. } => ("no-hardware", "no hardware breakpoints".to_owned()),
        Error::Invalid(_) => ("invalid", "the CPU cannot watch this".to_owned()),
        Error::RingBuffer { .. } => ("ring-buffer", "no ring buffer".to_owned()),
        _ => ("error", "failed".to_owned()),
    };
    Refusal {
        kind,
        message: format!("{what}: {e}"),
    }
}

fn symbol_refusal(e: &SymbolError) -> Refusal {
    let kind = match e {
        SymbolError::NoSuchProcess { .. } => "process-gone",
        SymbolError::NoSuchSymbol { .. } => "no-such-symbol",
        SymbolError::Ambiguous { .. } => "ambiguous-symbol",
        _ => "error",
    };
    Refusal {
        kind,
        message: e.to_string(),
    }
}

/// Print a refusal (text on stderr, or a JSON line on stdout) and return the
/// exit status.
fn refuse(json_out: bool, r: &Refusal) -> i32 {
    if json_out {
        println!(
            "{{\"type\":\"error\",\"kind\":{},\"message\":{}}}",
            json::string(r.kind),
            json::string(&r.message)
        );
    }
    eprintln!("hwbp-watch: {}", r.message);
    1
}

/// Whether the process has exited (gone, or a zombie).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_none_or(|state| matches!(state, 'Z' | 'X')),
        Err(_) => true,
    }
}

/// The length to watch: `--len`, else the symbol's size if the hardware
/// takes it, else an instruction's.
fn length(args: &Args, symbol_size: Option<u64>) -> Result<u64, Refusal> {
    if args.kind == Kind::Exec {
        return Ok(args
            .len
            .unwrap_or(if cfg!(target_arch = "x86_64") { 1 } else { 4 }));
    }
    match (args.len, symbol_size) {
        (Some(n), _) => Ok(n),
        (None, Some(s @ (1 | 2 | 4 | 8))) => Ok(s),
        (None, Some(s)) => Err(Refusal {
            kind: "length",
            message: format!(
                "the symbol is {s} bytes, which one debug register cannot cover: give --len 1, 2, 4 or 8 \
                 (the watch then covers that many bytes at its start)"
            ),
        }),
        (None, None) => Ok(8),
    }
}

/// One line per sample, at most `limit` a second.
struct Live {
    limit: u32,
    second: u64,
    printed: u32,
    suppressed: u64,
}

impl Live {
    fn admit(&mut self, elapsed: Duration) -> bool {
        let second = elapsed.as_secs();
        if second != self.second {
            self.second = second;
            self.printed = 0;
        }
        if self.printed < self.limit {
            self.printed += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

fn short_chain(frames: &[Frame], n: usize) -> String {
    let mut parts: Vec<String> = frames
        .iter()
        .take(n)
        .map(|f| match f.place() {
            Some(p) => format!("{} ({})", f.name(), p.rsplit('/').next().unwrap_or(&p)),
            None => f.name(),
        })
        .collect();
    if frames.len() > n {
        parts.push("...".to_owned());
    }
    parts.join(" <- ")
}

fn print_sample(args: &Args, start_ns: u64, s: &Sample, frames: &[Frame]) {
    let t = s.time.saturating_sub(start_ns) as f64 / 1e9;
    if args.json {
        println!(
            "{{\"type\":\"sample\",\"seconds\":{t:.6},\"pid\":{},\"tid\":{},\"ip\":\"{:#x}\",\"kernel_mode\":{},\"frames\":{}}}",
            s.pid,
            s.tid,
            s.ip,
            s.kernel_mode,
            json::frames(frames)
        );
    } else {
        let mode = if s.kernel_mode {
            " (in a system call)"
        } else {
            ""
        };
        println!(
            "{t:9.6}s  tid {:<7} {}{mode}",
            s.tid,
            short_chain(frames, 3)
        );
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (the samples' clock).
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Run the command; the exit status.
pub fn main(argv: Vec<String>) -> i32 {
    let args = match args::parse(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{}", args::USAGE);
            return 0;
        }
        Err(e) => {
            eprintln!("hwbp-watch: {e}\n\n{}", args::USAGE);
            return 2;
        }
    };
    let pid = args.pid;
    let mut sym = match Symbolizer::new(pid) {
        Ok(s) => s,
        Err(e) => return refuse(args.json, &symbol_refusal(&e)),
    };
    let (addr, label, size) = match &args.what {
        What::Addr(a) => (*a, format!("{a:#x}"), None),
        What::Symbol(name) => match sym.lookup(name) {
            Ok(s) => (s.addr, s.name, Some(s.size)),
            Err(e) => return refuse(args.json, &symbol_refusal(&e)),
        },
    };
    let len = match length(&args, size) {
        Ok(l) => l,
        Err(r) => return refuse(args.json, &r),
    };
    let access = match args.kind {
        Kind::ReadWrite => Access::RW,
        Kind::Write => Access::WRITE,
        Kind::Exec => Access::EXEC,
    };
    let attr = BreakpointAttr::watch(addr, len, access).sample_period(args.period);
    let options = SampleOptions {
        data_pages: args.pages,
        ..SampleOptions::default()
    };
    let mut bp = match SampledBreakpoint::open_process(pid, &attr, &options) {
        Ok(bp) => bp,
        Err(e) => return refuse(args.json, &refusal_of(pid, &e)),
    };
    catch_sigint();
    let started = Instant::now();
    let start_ns = monotonic_ns();
    let tasks: Vec<String> = bp.tasks().iter().map(i32::to_string).collect();
    if args.json {
        println!(
            "{{\"type\":\"start\",\"pid\":{pid},\"what\":{},\"addr\":\"{addr:#x}\",\"len\":{len},\"access\":\"{}\",\"period\":{},\"threads\":[{}],\"kernel_hits\":{}}}",
            json::string(&label),
            args.kind.name(),
            args.period,
            tasks.join(","),
            bp.kernel_hits()
        );
    }
    eprintln!(
        "hwbp-watch: watching {label} ({addr:#x}, {len} bytes, {}) in pid {pid}: {} threads, every {} hit(s){}; Ctrl-C to stop",
        args.kind.name(),
        tasks.len(),
        args.period,
        if bp.kernel_hits() { ", system calls too" } else { "" }
    );
    let _ = std::io::stderr().flush();
    let mut report = ChainReport::new(args.depth);
    let mut live = Live {
        limit: args.lines,
        second: 0,
        printed: 0,
        suppressed: 0,
    };
    let mut records = Vec::new();
    let mut last_progress = Instant::now();
    let mut why = "stopped";
    loop {
        let done = if INTERRUPTED.load(Ordering::Relaxed) {
            why = "interrupted";
            true
        } else if args.duration.is_some_and(|d| started.elapsed() >= d) {
            why = "duration reached";
            true
        } else if gone(pid) {
            why = "process exited";
            true
        } else {
            false
        };
        if !done {
            let left = args.duration.map_or(Duration::from_millis(200), |d| {
                d.saturating_sub(started.elapsed())
            });
            let _ = bp.wait(left.min(Duration::from_millis(200)));
        }
        records.clear();
        if let Err(e) = bp.read(&mut records) {
            eprintln!("hwbp-watch: {e}");
        }
        for r in &records {
            if let Record::Sample(s) = r {
                let frames = sym.chain(s);
                if live.admit(started.elapsed()) {
                    print_sample(&args, start_ns, s, &frames);
                }
                report.add(frames);
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(1) || done {
            last_progress = Instant::now();
            let t = bp.totals();
            let hits = bp.count().unwrap_or(0);
            let secs = started.elapsed().as_secs_f64();
            if args.json {
                println!(
                    "{{\"type\":\"progress\",\"seconds\":{secs:.3},\"hits\":{hits},\"samples\":{},\"lost\":{},\"lines_suppressed\":{}}}",
                    t.samples, t.lost, live.suppressed
                );
            } else if !done {
                eprintln!(
                    "hwbp-watch: {secs:.1} s: {hits} hits, {} samples, {} lost, {} lines not shown",
                    t.samples, t.lost, live.suppressed
                );
            }
        }
        if done {
            break;
        }
    }
    print_report(
        &args,
        &bp,
        &report,
        &label,
        addr,
        len,
        started.elapsed(),
        why,
    );
    0
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    args: &Args,
    bp: &SampledBreakpoint,
    report: &ChainReport,
    label: &str,
    addr: u64,
    len: u64,
    elapsed: Duration,
    why: &str,
) {
    let t = bp.totals();
    let hits = bp.count().unwrap_or(0);
    let recorded = (t.samples + t.lost).saturating_mul(args.period);
    let unrecorded = hits.saturating_sub(recorded);
    let entries = report.entries();
    let secs = elapsed.as_secs_f64();
    if args.json {
        let chains: Vec<String> = entries
            .iter()
            .map(|e| {
                format!(
                    "{{\"count\":{},\"percent\":{:.2},\"frames\":{}}}",
                    e.count,
                    e.percent,
                    json::frames(&e.frames)
                )
            })
            .collect();
        println!(
            "{{\"type\":\"report\",\"why\":{},\"seconds\":{secs:.3},\"what\":{},\"addr\":\"{addr:#x}\",\"len\":{len},\"hits\":{hits},\"samples\":{},\"lost\":{},\"throttled\":{},\"unrecorded\":{unrecorded},\"chains\":[{}]}}",
            json::string(why),
            json::string(label),
            t.samples,
            t.lost,
            t.throttled,
            chains.join(",")
        );
        return;
    }
    println!();
    println!(
        "# hwbp-watch: {label} ({addr:#x}, {len} bytes, {}) in pid {}, {secs:.1} s, {why}",
        args.kind.name(),
        args.pid
    );
    println!(
        "# hits {hits} (the kernel's count), samples {} (every {} hit(s)), lost {}, throttled {}, not recorded {unrecorded}",
        t.samples, args.period, t.lost, t.throttled
    );
    if unrecorded > 0 {
        println!(
            "# not recorded: hits while the kernel throttled sampling, or drops it reports only with its next record"
        );
    }
    println!("#");
    println!(
        "# Samples grouped by call chain (innermost first, {} frames at most):",
        args.depth
    );
    println!();
    for e in &entries {
        let mut first = true;
        for f in &e.frames {
            let place = f.place().map(|p| format!("  {p}")).unwrap_or_default();
            let inl = if f.inlined { " (inlined)" } else { "" };
            if first {
                println!(
                    "{:7.2}%  {:>8}  {}{inl}{place}",
                    e.percent,
                    e.count,
                    f.name()
                );
                first = false;
            } else {
                println!("{:19}<- {}{inl}{place}", "", f.name());
            }
        }
        println!();
    }
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kind: Kind, len: Option<u64>) -> Args {
        let mut a = args::parse(&["--pid".into(), "1".into(), "--addr".into(), "8".into()])
            .unwrap()
            .unwrap();
        a.kind = kind;
        a.len = len;
        a
    }

    #[test]
    fn length_from_the_symbol_or_the_flag() {
        let ok = |k, l, s| length(&args(k, l), s).ok();
        assert_eq!(ok(Kind::Write, None, Some(4)), Some(4));
        assert_eq!(ok(Kind::Write, Some(2), Some(64)), Some(2));
        assert_eq!(ok(Kind::Write, None, None), Some(8));
        let x = if cfg!(target_arch = "x86_64") { 1 } else { 4 };
        assert_eq!(ok(Kind::Exec, None, Some(300)), Some(x));
        let e = length(&args(Kind::ReadWrite, None), Some(24))
            .err()
            .unwrap();
        assert!(
            e.message.contains("24 bytes") && e.message.contains("--len"),
            "{}",
            e.message
        );
    }

    #[test]
    fn live_lines_are_limited_per_second() {
        let mut l = Live {
            limit: 2,
            second: 0,
            printed: 0,
            suppressed: 0,
        };
        let at = Duration::from_millis;
        assert!(l.admit(at(0)) && l.admit(at(10)) && !l.admit(at(20)));
        assert!(l.admit(at(1000)), "a new second");
        assert_eq!(l.suppressed, 1);
    }

    #[test]
    fn refusals_have_a_kind_and_say_why() {
        let r = refusal_of(42, &Error::NoSuchTask { tid: 42 });
        assert_eq!(r.kind, "process-gone");
        assert!(r.message.starts_with("process 42 is gone"), "{}", r.message);
        let r = refusal_of(1, &Error::NoSlot);
        assert_eq!(r.kind, "no-free-debug-register");
        assert!(r.message.contains("ENOSPC"), "{}", r.message);
        let r = refusal_of(
            1,
            &Error::Permission {
                errno: 13,
                paranoid: Some(3),
                per_cpu: false,
            },
        );
        assert_eq!(r.kind, "permission");
        assert!(
            r.message.contains("perf_event_paranoid is 3"),
            "{}",
            r.message
        );
        let r = symbol_refusal(&SymbolError::NoSuchSymbol {
            name: "nope".into(),
            files: 3,
        });
        assert_eq!(r.kind, "no-such-symbol");
        assert!(
            r.message.contains("no symbol named `nope`"),
            "{}",
            r.message
        );
    }

    #[test]
    fn chains_are_shortened_for_live_lines() {
        let f = |n: &str| Frame {
            function: Some(n.into()),
            file: Some("/a/b/c.rs".into()),
            line: Some(7),
            ..Frame::default()
        };
        let s = short_chain(&[f("x"), f("y"), f("z"), f("w")], 2);
        assert_eq!(s, "x (c.rs:7) <- y (c.rs:7) <- ...");
    }
}
