//! `cargo xtask gdb [aarch64|x86_64|all]`: a real GDB (Debian's
//! `gdb-multiarch`) against the gdb stub firmware on each QEMU board.
//!
//! Per board: build the firmware, start QEMU with the stub's serial port on
//! a free local TCP port (`-serial tcp:127.0.0.1:PORT,server=on,wait=on`)
//! and the console on stdout, run `gdb-multiarch -batch` with one `-ex` per
//! command (a failing command, such as a `continue` GDB refuses, does not
//! end the session), then check GDB's transcript and the firmware's console.
//! Every check prints `ok N - …` or `FAIL: …`; the board's result is
//! `hwbp gdb <board>: N checks passed`, and any failure fails the command.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::{cargo, ensure_targets, host_qemu, root, run, Result};

/// One board with a gdb stub firmware.
struct GdbBoard {
    name: &'static str,
    dir: &'static str,
    target: &'static str,
    qemu: &'static str,
    /// QEMU's arguments before `-serial` and `-kernel`.
    machine: &'static [&'static str],
    /// GDB's name for the architecture.
    gdb_arch: &'static str,
    /// Bytes of the no-op after the watched store (what one `stepi` advances).
    nop_len: u64,
    /// QEMU's exit status when the firmware reports success.
    success: i32,
}

const GDB_BOARDS: [GdbBoard; 2] = [
    GdbBoard {
        name: "aarch64",
        dir: "examples/gdb-aarch64",
        target: "aarch64-unknown-none",
        qemu: "qemu-system-aarch64",
        machine: &[
            "-M",
            "virt",
            "-cpu",
            "cortex-a53",
            "-smp",
            "2",
            "-m",
            "128M",
            // The console: semihosting, on QEMU's stdout.
            "-chardev",
            "stdio,id=con",
            "-semihosting-config",
            "enable=on,target=native,chardev=con",
        ],
        gdb_arch: "aarch64",
        nop_len: 4,
        // Semihosting SYS_EXIT with code 0.
        success: 0,
    },
    GdbBoard {
        name: "x86_64",
        dir: "examples/gdb-x86_64",
        target: "x86_64-unknown-none",
        qemu: "qemu-system-x86_64",
        machine: &[
            "-machine",
            "pc",
            "-cpu",
            "qemu64",
            "-m",
            "64M",
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-debugcon",
            "stdio",
        ],
        gdb_arch: "i386:x86-64",
        nop_len: 1,
        // isa-debug-exit: (0x10 << 1) | 1.
        success: 33,
    },
];

/// The gdb firmware directories (formatted and linted by `cargo xtask test`).
pub fn dirs() -> impl Iterator<Item = &'static str> {
    GDB_BOARDS.iter().map(|b| b.dir)
}

/// How long one GDB session may take (each takes a few seconds).
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Run the boards `which` names.
pub fn gdb(which: &str) -> Result {
    let boards: Vec<&GdbBoard> = GDB_BOARDS
        .iter()
        .filter(|b| which == "all" || which == b.name)
        .collect();
    if boards.is_empty() {
        return Err(format!(
            "unknown board {which:?}: expected aarch64, x86_64 or all"
        ));
    }
    let targets: Vec<&str> = boards.iter().map(|b| b.target).collect();
    ensure_targets(&targets)?;
    let mut bins: Vec<&str> = boards.iter().map(|b| b.qemu).collect();
    bins.push("gdb-multiarch");
    host_qemu::ensure(&bins)?;
    let mut failed = Vec::new();
    for b in &boards {
        match session(b) {
            Ok(summary) => println!("PASS gdb {}: {summary}", b.name),
            Err(e) => {
                println!("FAIL gdb {}: {e}", b.name);
                failed.push(b.name);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("gdb sessions failed: {}", failed.join(", ")))
    }
}

/// A free local TCP port (QEMU listens on it next; nothing else here binds
/// ports, so the short window between is harmless).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Kill a child started in its own process group, and the group.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// GDB's commands for `b`, with the markers the checks split on.
fn commands(b: &GdbBoard, port: u16) -> Vec<String> {
    let spare = |i: u32| format!("watch *((unsigned long *)&SPARE + {i})");
    let mut c: Vec<String> = vec![
        "set pagination off".into(),
        "set confirm off".into(),
        "set width 0".into(),
        "set language c".into(),
        format!("set architecture {}", b.gdb_arch),
        "set remotetimeout 20".into(),
        format!("target remote 127.0.0.1:{port}"),
        "echo @@watch\\n".into(),
        "watch *(unsigned long *)&COUNTER".into(),
        "continue".into(),
        "echo @@stepi\\n".into(),
        "p/x $pc".into(),
        "stepi".into(),
        "p/x $pc".into(),
        "delete".into(),
        "echo @@rwatch\\n".into(),
        "rwatch *(unsigned long *)&SHARED".into(),
        "continue".into(),
        "delete".into(),
        "echo @@awatch\\n".into(),
        "awatch *(unsigned long *)&SHARED".into(),
        "continue".into(),
        "delete".into(),
        "echo @@hbreak\\n".into(),
        // At the function's first instruction: GDB's prologue analysis would
        // pick a line inside an inlined `wrapping_mul` and name that frame.
        "hbreak *target_function".into(),
        "continue".into(),
        "delete".into(),
        "echo @@toomany\\n".into(),
    ];
    c.extend((0..5).map(spare));
    c.extend([
        "continue".into(),
        "echo @@goeson\\n".into(),
        "delete $bpnum".into(),
        "continue".into(),
        "delete".into(),
        "echo @@exit\\n".into(),
        "continue".into(),
        "echo @@end\\n".into(),
    ]);
    c
}

/// The part of `out` between `@@<from>` and the next marker.
fn section<'a>(out: &'a str, from: &str) -> &'a str {
    let start = format!("@@{from}\n");
    let Some(i) = out.find(&start) else {
        return "";
    };
    let rest = &out[i + start.len()..];
    match rest.find("@@") {
        Some(j) => &rest[..j],
        None => rest,
    }
}

/// The values of `$N = 0x…` lines, in order.
fn hex_values(s: &str) -> Vec<u64> {
    s.lines()
        .filter_map(|l| {
            let (lhs, rhs) = l.split_once(" = 0x")?;
            lhs.starts_with('$')
                .then(|| u64::from_str_radix(rhs.trim(), 16).ok())
                .flatten()
        })
        .collect()
}

/// Counts checks, printing each.
struct Checks {
    passed: u32,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str, context: &str) {
        if ok {
            self.passed += 1;
            println!("  ok {} - {what}", self.passed + self.failed.len() as u32);
        } else {
            println!("  FAIL: {what}; GDB said:\n{}", indent(context));
            self.failed.push(what.to_owned());
        }
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    | {l}\n")).collect()
}

/// One board: build, QEMU, GDB, checks. Returns the summary line.
fn session(b: &GdbBoard) -> Result<String> {
    let dir = root().join(b.dir);
    run(
        &format!("build {}", b.dir),
        cargo().current_dir(&dir).args(["build", "--release"]),
    )?;
    let elf: PathBuf = dir
        .join("target")
        .join(b.target)
        .join("release")
        .join(format!("hwbp-gdb-{}", b.name));
    let port = free_port()?;
    eprintln!(
        "xtask: gdb {}: QEMU ({}) with the stub on 127.0.0.1:{port}",
        b.name, b.qemu
    );
    let mut qemu = Command::new(b.qemu);
    qemu.args(b.machine)
        .args(["-display", "none", "-monitor", "none", "-nic", "none"])
        .arg("-serial")
        .arg(format!("tcp:127.0.0.1:{port},server=on,wait=on"))
        .arg("-kernel")
        .arg(&elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut qemu, 0);
    let mut qemu = qemu
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", b.qemu))?;
    // The console, line by line.
    let stdout = qemu.stdout.take().ok_or("no QEMU stdout")?;
    let (tx, console_rx) = mpsc::channel();
    let name = b.name;
    let console = thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            let line = line.trim_end_matches('\r').to_owned();
            println!("  [gdb-{name}] {line}");
            let _ = tx.send(line);
        }
    });
    // QEMU says on stderr when it listens; GDB connects after that.
    let mut stderr = qemu.stderr.take().ok_or("no QEMU stderr")?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let errs = thread::spawn(move || {
        let mut all = String::new();
        let mut buf = [0u8; 256];
        let mut told = false;
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            if !told && all.contains("waiting for connection") {
                told = true;
                let _ = ready_tx.send(());
            }
        }
        all
    });
    if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
        kill_group(&mut qemu);
        let errs = errs.join().unwrap_or_default();
        return Err(format!("QEMU did not start listening: {errs}"));
    }
    let cmds = commands(b, port);
    let mut gdb = Command::new("sh");
    gdb.arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg("gdb-multiarch")
        .args(["-batch", "-nx"]);
    for c in &cmds {
        gdb.arg("-ex").arg(c);
    }
    gdb.arg(&elf).stdin(Stdio::null()).stdout(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut gdb, 0);
    let started = Instant::now();
    let mut gdb = gdb
        .spawn()
        .map_err(|e| format!("cannot start gdb-multiarch: {e}"))?;
    let mut gdb_out = gdb.stdout.take().ok_or("no GDB stdout")?;
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = gdb_out.read_to_string(&mut s);
        s
    });
    let mut timed_out = false;
    while gdb.try_wait().map_err(|e| e.to_string())?.is_none() {
        if started.elapsed() > SESSION_TIMEOUT {
            timed_out = true;
            kill_group(&mut gdb);
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let out = reader.join().unwrap_or_default();
    let took = started.elapsed();
    // The firmware leaves QEMU once the program has exited.
    let deadline = Instant::now() + Duration::from_secs(10);
    let qemu_status = loop {
        match qemu.try_wait().map_err(|e| e.to_string())? {
            Some(s) => break Some(s),
            None if Instant::now() > deadline => {
                kill_group(&mut qemu);
                break None;
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    };
    let _ = console.join();
    let qemu_err = errs.join().unwrap_or_default();
    let console: Vec<String> = console_rx.try_iter().collect();
    println!(
        "  GDB transcript ({:.1} s):\n{}",
        took.as_secs_f64(),
        indent(&out)
    );
    if timed_out {
        return Err(format!("GDB did not finish within {SESSION_TIMEOUT:?}"));
    }
    let mut c = Checks {
        passed: 0,
        failed: Vec::new(),
    };
    check_transcript(&mut c, b, &out);
    let summary = format!("hwbp {}: ", format_args!("gdb-{}", b.name));
    c.check(
        console
            .iter()
            .any(|l| l == "gdb stub: program exited with code 0"),
        "the firmware saw the program exit with code 0",
        &console.join("\n"),
    );
    c.check(
        console.iter().all(|l| !l.starts_with("FAIL"))
            && console
                .iter()
                .any(|l| l.starts_with(&summary) && l.ends_with("checks passed")),
        "the firmware's own checks passed",
        &console.join("\n"),
    );
    c.check(
        qemu_status.is_some_and(|s| s.code() == Some(b.success)),
        "QEMU exited with the firmware's success status",
        &format!("{qemu_status:?} {qemu_err}"),
    );
    if c.failed.is_empty() {
        let line = format!("hwbp gdb {}: {} checks passed", b.name, c.passed);
        println!("{line}");
        Ok(line)
    } else {
        println!(
            "hwbp gdb {}: {} of {} checks failed",
            b.name,
            c.failed.len(),
            c.passed as usize + c.failed.len()
        );
        Err(format!("failed: {}", c.failed.join("; ")))
    }
}

/// The checks on GDB's transcript (issue 16).
fn check_transcript(c: &mut Checks, b: &GdbBoard, out: &str) {
    let s = section(out, "watch");
    c.check(
        s.contains("Hardware watchpoint 1: *(unsigned long *)&COUNTER")
            && s.contains("Old value = 0")
            && s.contains("New value = 1"),
        "watch: stops on the write of COUNTER, old value 0 and new value 1",
        s,
    );
    let s = section(out, "stepi");
    let pcs = hex_values(s);
    c.check(
        pcs.len() == 2 && pcs[1] == pcs[0] + b.nop_len && !s.contains("exited"),
        &format!(
            "stepi after the watchpoint stop steps exactly one instruction ({} byte(s))",
            b.nop_len
        ),
        s,
    );
    let s = section(out, "rwatch");
    c.check(
        s.contains("Hardware read watchpoint 2: *(unsigned long *)&SHARED")
            && s.contains("Value = 41"),
        "rwatch: stops on the read of SHARED (value 41)",
        s,
    );
    let s = section(out, "awatch");
    c.check(
        s.contains("Hardware access (read/write) watchpoint 3: *(unsigned long *)&SHARED")
            && s.contains("Value = 41"),
        "awatch: stops on the read of SHARED (value 41)",
        s,
    );
    let s = section(out, "hbreak");
    c.check(
        s.contains("Hardware assisted breakpoint 4 at")
            && s.lines()
                .any(|l| l.starts_with("Breakpoint 4,") && l.contains("target_function")),
        "hbreak: stops at target_function",
        s,
    );
    let s = section(out, "toomany");
    c.check(
        (5..=9).all(|n| s.contains(&format!("Hardware watchpoint {n}: *((unsigned long *)&SPARE")))
            && s.contains("Could not insert hardware watchpoint")
            && !s.contains("Old value"),
        "one watchpoint more than the hardware has: GDB reports it cannot insert it, the program does not run",
        s,
    );
    let s = section(out, "goeson");
    c.check(
        s.contains("*((unsigned long *)&SPARE + 0)")
            && s.contains("Old value = 0")
            && s.contains("New value = 1"),
        "debugging goes on: after deleting it, the other four are inserted and the first write stops",
        s,
    );
    let s = section(out, "exit");
    c.check(
        s.contains("exited normally"),
        "delete, continue: the program exits normally",
        s,
    );
    c.check(
        !out.contains("Remote connection closed") && !out.contains("Remote communication error"),
        "the connection stayed up to the end",
        out,
    );
}
