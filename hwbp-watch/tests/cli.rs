//! `hwbp-watch` end to end on the real CPU: this test binary, started again
//! with `HWBP_WATCH_TARGET` set, is the watched process (two threads write
//! `cli::TARGET` through two call paths, 300 and 700 times); the command's
//! JSON report must name both paths with exactly those counts. And the
//! refusals: no such process, no such symbol.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const TARGET_ENV: &str = "HWBP_WATCH_TARGET";

#[repr(C, align(8))]
struct Pair {
    a: u32,
    b: u32,
}

/// The watched static.
static mut TARGET: Pair = Pair { a: 0, b: 0 };

#[inline(never)]
fn store_a(v: u32) {
    // SAFETY: only thread A writes this half.
    unsafe { TARGET.a = black_box(v).wrapping_add(1) };
}

#[inline(never)]
fn store_b(v: u32) {
    // SAFETY: only thread B writes this half.
    unsafe { TARGET.b = black_box(v) ^ 0x5555 };
}

/// `n` writes, 20 a millisecond at most (well below the kernel's sampling
/// throttle).
#[inline(never)]
fn via_a(n: u32) {
    for i in 0..n {
        store_a(black_box(i));
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[inline(never)]
fn via_b(n: u32) {
    for i in 0..n {
        store_b(black_box(i));
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The watched process: says `ready`, waits for `go`, writes, exits.
extern "C" fn target_entry() {
    if std::env::var_os(TARGET_ENV).is_none() {
        return;
    }
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let a = std::thread::spawn(|| via_a(300));
    let b = std::thread::spawn(|| via_b(700));
    a.join().expect("a");
    b.join().expect("b");
    std::process::exit(0);
}

#[used]
#[link_section = ".init_array"]
static TARGET_ENTRY: extern "C" fn() = target_entry;

fn watch(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hwbp-watch"));
    c.args(args);
    c
}

#[test]
fn the_report_names_both_call_paths_with_exact_counts() {
    let mut target = Command::new(std::env::current_exe().unwrap())
        .env(TARGET_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = target.id().to_string();
    let mut out = BufReader::new(target.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let mut w = watch(&[
        "--pid",
        &pid,
        "--symbol",
        "cli::TARGET",
        "--json",
        "--lines",
        "5",
        "--depth",
        "2",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Started once it says so on stderr.
    let mut err = BufReader::new(w.stderr.take().unwrap());
    let mut said = String::new();
    err.read_line(&mut said).unwrap();
    assert!(
        said.starts_with("hwbp-watch: watching cli::TARGET"),
        "{said}"
    );
    writeln!(target.stdin.take().unwrap(), "go").unwrap();
    assert!(target.wait().unwrap().success());
    let output = w.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("{\"type\":\"start\"") && lines[0].contains("\"len\":8"),
        "{}",
        lines[0]
    );
    // Live lines: 5 a second at most, each naming the writer.
    let live: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("{\"type\":\"sample\""))
        .collect();
    assert!(live.len() >= 5 && live.len() < 1000, "{text}");
    assert!(
        live.iter()
            .all(|l| l.contains("\"function\":\"cli::store_")),
        "{text}"
    );
    let report = lines.last().unwrap();
    assert!(
        report.starts_with("{\"type\":\"report\",\"why\":\"process exited\""),
        "{report}"
    );
    for want in [
        "\"hits\":1000,",
        "\"samples\":1000,",
        "\"lost\":0,",
        "\"unrecorded\":0,",
    ] {
        assert!(report.contains(want), "{want} in {report}");
    }
    // The chains, most samples first, with the writers and their callers.
    let chains = report.split("{\"count\":").skip(1).collect::<Vec<_>>();
    assert_eq!(chains.len(), 2, "{report}");
    assert!(
        chains[0].starts_with("700,\"percent\":70.00,"),
        "{}",
        chains[0]
    );
    assert!(
        chains[1].starts_with("300,\"percent\":30.00,"),
        "{}",
        chains[1]
    );
    for (chain, x) in chains.iter().zip(["b", "a"]) {
        let leaf = chain
            .find(&format!("\"function\":\"cli::store_{x}\""))
            .expect(chain);
        let caller = chain
            .find(&format!("\"function\":\"cli::via_{x}\""))
            .expect(chain);
        assert!(leaf < caller, "{chain}");
        assert!(chain.contains("cli.rs\",\"line\":"), "{chain}");
    }
}

#[test]
fn refusals_say_why() {
    // A process that has exited (and been reaped).
    let mut gone = Command::new(std::env::current_exe().unwrap())
        .env(TARGET_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = gone.id().to_string();
    assert!(gone.wait().unwrap().success());
    let out = watch(&["--pid", &pid, "--addr", "0x1000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("no process with id {pid}")), "{err}");

    let me = std::process::id().to_string();
    let out = watch(&["--pid", &me, "--symbol", "no_such_thing_here", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.starts_with("{\"type\":\"error\",\"kind\":\"no-such-symbol\""),
        "{json}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no symbol named `no_such_thing_here`"));

    let out = watch(&["--pid", &me]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --symbol NAME or --addr ADDR"));
}
