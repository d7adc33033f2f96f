//! `/init` of the initramfs that `cargo xtask linux-arm64` boots on a real
//! arm64 Linux kernel under `qemu-system-aarch64 -M virt -cpu cortex-a53`.
//!
//! It mounts `/proc`, `/sys` and `/dev`, runs every executable in `/tests`
//! (hwbp-linux's test binaries, built for `aarch64-unknown-linux-musl`) in
//! name order, each with the words that follow `--` on the kernel command
//! line and at most 90 s, echoes their output to the serial console, adds up the
//! harness's `test result:` lines and prints one summary line:
//!
//! ```text
//! hwbp linux-arm64: 3 binaries, 19 passed, 0 failed, 0 ignored
//! ```
//!
//! preceded by `FAIL ...` lines for every binary that failed. Then it powers
//! the machine off. As PID 1 it runs as root, so CAP_PERFMON is there whatever
//! `perf_event_paranoid` says (Debian's default is 3).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

extern "C" {
    // musl (statically linked into every std program for this target).
    fn mount(
        source: *const u8,
        target: *const u8,
        fstype: *const u8,
        flags: u64,
        data: *const u8,
    ) -> i32;
    fn reboot(cmd: i32) -> i32;
    fn sync();
}

/// `RB_POWER_OFF` (`LINUX_REBOOT_CMD_POWER_OFF`).
const RB_POWER_OFF: i32 = 0x4321_fedc_u32 as i32;

fn mount_fs(fstype: &str, target: &str) {
    let _ = std::fs::create_dir_all(target);
    let fs = format!("{fstype}\0");
    let dir = format!("{target}\0");
    // SAFETY: NUL-terminated strings that live across the call; no data.
    let r = unsafe { mount(fs.as_ptr(), dir.as_ptr(), fs.as_ptr(), 0, core::ptr::null()) };
    if r != 0 {
        println!(
            "init: mount {fstype} on {target}: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("({e})"))
}

/// Totals of the libtest lines `test result: ok. 12 passed; 0 failed; 1 ignored; ...`.
#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    results: u64,
}

impl Counts {
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        self.results += 1;
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// How long one test binary may run before it is killed and reported as a
/// failure (the whole run has a longer limit in xtask).
const BINARY_TIMEOUT: Duration = Duration::from_secs(90);

/// Run one test binary with `args`; returns its counts and whether it exited
/// with 0 within [`BINARY_TIMEOUT`].
fn run_one(path: &Path, args: &[String]) -> (Counts, Result<(), String>) {
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return (Counts::default(), Err(format!("pipe: {e}"))),
    };
    let err_writer = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return (Counts::default(), Err(format!("pipe: {e}"))),
    };
    let child = Command::new(path)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(err_writer)
        .spawn();
    // The writers were moved into `Command` and are closed now that the child
    // has its copies, so the reader sees EOF when the child (and any child it
    // forked) is gone.
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (Counts::default(), Err(format!("cannot start: {e}"))),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut counts = Counts::default();
        for line in BufReader::new(reader)
            .lines()
            .map_while(std::result::Result::ok)
        {
            println!("{line}");
            counts.add_line(&line);
        }
        let _ = tx.send(counts);
    });
    let deadline = Instant::now() + BINARY_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("killed after {BINARY_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("wait: {e}")),
        }
    };
    // Output still buffered in the pipe is echoed before the verdict.
    let counts = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    let status = match status {
        Ok(s) => s,
        Err(e) => return (counts, Err(e)),
    };
    if !status.success() {
        return (counts, Err(format!("exited with {status}")));
    }
    if counts.results == 0 {
        return (counts, Err("printed no 'test result:' line".into()));
    }
    if counts.failed > 0 {
        let msg = format!("{} failed", counts.failed);
        return (counts, Err(msg));
    }
    (counts, Ok(()))
}

fn main() {
    let pid1 = std::process::id() == 1;
    // Words after `--` on the kernel command line: passed to every test
    // binary (`cargo xtask linux-arm64 -- --test-threads=1`, a test filter).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if pid1 {
        mount_fs("proc", "/proc");
        mount_fs("sysfs", "/sys");
        mount_fs("devtmpfs", "/dev");
    }
    println!(
        "hwbp linux-arm64: kernel {}, CPUs {} online, perf_event_paranoid {}, test arguments {args:?}",
        read("/proc/sys/kernel/osrelease"),
        read("/sys/devices/system/cpu/online"),
        read("/proc/sys/kernel/perf_event_paranoid"),
    );
    let mut tests: Vec<_> = std::fs::read_dir("/tests")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    tests.sort();
    let mut total = Counts::default();
    let mut failed = 0;
    for path in &tests {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        println!("hwbp linux-arm64: running {name}");
        let (c, result) = run_one(path, &args);
        match result {
            Ok(()) => println!("ok {name}: {} passed, {} ignored", c.passed, c.ignored),
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
        total.passed += c.passed;
        total.failed += c.failed;
        total.ignored += c.ignored;
    }
    if tests.is_empty() {
        println!("FAIL no test binaries in /tests");
    }
    println!(
        "hwbp linux-arm64: {} binaries ({failed} failed), {} tests passed, {} failed, {} ignored",
        tests.len(),
        total.passed,
        total.failed,
        total.ignored
    );
    let _ = std::io::stdout().flush();
    if pid1 {
        // SAFETY: plain system calls; PID 1 may power the machine off.
        unsafe {
            sync();
            reboot(RB_POWER_OFF);
        }
        // Unreachable unless reboot failed; returning from PID 1 panics the
        // kernel, which with `panic=-1` and QEMU's `-no-reboot` ends QEMU too.
    }
}
