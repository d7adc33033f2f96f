//! `cargo xtask` — build, run and check hwbp.
//!
//! * `cargo xtask test [--long]`: formatting, clippy, every host test and doc
//!   test, the loom model checks, `miri`, the crates.io packages, unused
//!   dependencies, the MSRV, cross-builds and clippy of every library crate
//!   for the bare-metal targets (proving `no_std` without `alloc`, also on
//!   targets without 64-bit atomics), the minimal per-arch integrations
//!   (built and linked), the QEMU boards, and `linux-arm64`.
//! * `cargo xtask miri`: hwbp-core's unit tests (`--lib`) and scenario tests
//!   (`--test scenarios`) and hwbp-linux's unit tests that make no system
//!   call, run under Miri (nightly, in `target/miri`), which fails on
//!   undefined behaviour, data races and leaks.
//! * `cargo xtask qemu [x86_64|aarch64|aarch64-el2|aarch64-el2-vhe|armv7|riscv64|riscv32|all] [--bless]`: build the
//!   example firmware and run it on QEMU, compare each board's transcript
//!   with its `expected.txt` (normalised, see [`transcript`];
//!   `aarch64-el2-vhe` is `examples/qemu-aarch64-el2` on a Cortex-A76, with
//!   VHE, compared with its `expected-vhe.txt`) and print a
//!   PASS/FAIL line per board; `--bless` writes the transcripts of passing
//!   runs as the new expected ones.
//! * `cargo xtask gdb [aarch64|x86_64|all]`: the gdb stub firmware
//!   (`examples/gdb-*`) on QEMU, driven by Debian's `gdb-multiarch` in batch
//!   mode over a TCP serial port; checks GDB's transcript (watch, rwatch,
//!   awatch, hbreak, one watchpoint too many, stepi, exit) and prints
//!   `hwbp gdb <board>: N checks passed` (also part of `test`; see [`gdb`]).
//! * `cargo xtask bench`: the scale benchmarks of issue 14 (hwbp-core's
//!   `switch`, `fork`, `table`, `stack` with their largest shapes, and
//!   hwbp-linux's `open_close`), then one summary table: each goal, the
//!   figure, the baseline measured in the same run, the ratio, met or not
//!   ([`mod@bench`]; also written to `target/hwbp-bench/summary.md`);
//!   `--summary-only` prints the table from the figures already on disk.
//! * `cargo xtask packages`: `cargo publish --workspace --dry-run` and the doc
//!   tests of every packaged library crate (also part of `test`).
//! * `cargo xtask unused-deps`: fails when a library crate declares a
//!   dependency its library does not use (also part of `test`).
//! * `cargo xtask msrv`: the library crates checked with the declared
//!   `rust-version` (1.88), for the host and `thumbv7em-none-eabihf` (also
//!   part of `test`).
//! * `cargo xtask linux-arm64`: hwbp-linux's test binaries, built for
//!   `aarch64-unknown-linux-musl`, run on Debian's arm64 Linux kernel under
//!   `qemu-system-aarch64 -M virt -cpu cortex-a53` (TCG), from an initramfs
//!   whose `/init` is `examples/linux-arm64-init`.
//!
//! Missing rustup targets are added (only those the command needs). A missing
//! QEMU is installed with `apt-get --no-remove` of only the packages the
//! requested boards need, or, when that would remove a host package or the
//! user is not root, fetched from Debian's packages into `target/qemu` and
//! run from there ([`host_qemu`]); no host package is ever removed or
//! downgraded. The arm64 kernel package is downloaded, never installed.
//! A nightly toolchain with Miri is added through rustup when missing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use std::{env, thread};

mod bench;
mod gdb;
mod host_qemu;
mod linux_arm64;
mod transcript;

/// Bare-metal targets every library crate must build for (and is linted
/// for): the three boards', and two without 64-bit atomics (Cortex-M,
/// 32-bit RISC-V), where `hwbp_core::atomic::AtomicU64` falls back to
/// critical sections.
const TARGETS: [&str; 5] = [
    "aarch64-unknown-none",
    "x86_64-unknown-none",
    "armv7a-none-eabi",
    "thumbv7em-none-eabihf",
    "riscv32imac-unknown-none-elf",
];

/// The `rust-version` the workspace declares: the library crates are
/// checked with this toolchain (for the host and [`MSRV_BARE_METAL`]).
const MSRV: &str = "1.88";

/// The bare-metal target of the MSRV check: one without 64-bit atomics, so
/// the fallback is compiled too.
const MSRV_BARE_METAL: &str = "thumbv7em-none-eabihf";

/// 32-bit x86: no bare-metal target ships with rustup, so hwbp-x86's 32-bit
/// register access (`mov` to and from DR0-DR7 in 32-bit mode) is compiled for
/// this one; it builds an rlib only, so no 32-bit linker or libc is needed.
const X86_32: &str = "i686-unknown-linux-gnu";

/// hwbp-linux's other architecture: type-checked (clippy, all targets) for
/// it on every run, since the hosts here are x86_64.
const LINUX_ARM64: &str = "aarch64-unknown-linux-gnu";

/// hwbp-linux's test binaries for the arm64 kernel: static, linked by
/// rust-lld with the musl objects the rustup target ships (no C toolchain).
const LINUX_ARM64_MUSL: &str = "aarch64-unknown-linux-musl";

/// `/init` of the arm64 initramfs: its own workspace, built for
/// [`LINUX_ARM64_MUSL`] by its `.cargo/config.toml`.
const LINUX_ARM64_INIT: &str = "examples/linux-arm64-init";

/// Debian's arm64 cloud kernel (meta package; its one dependency is the
/// versioned image). An uncompressed `Image` with the PL011 console, PSCI,
/// initramfs and perf hardware breakpoints built in, so no modules are needed.
const LINUX_ARM64_KERNEL: &str = "linux-image-cloud-arm64";

/// How long the arm64 Linux guest may run (the build and download are not
/// counted).
const LINUX_ARM64_TIMEOUT: Duration = Duration::from_secs(300);

/// `no_std` library crates.
const LIBS: [&str; 5] = [
    "hwbp-core",
    "hwbp-x86",
    "hwbp-arm64",
    "hwbp-sh",
    "hwbp-riscv",
];

/// Every library crate (the `no_std` ones and hwbp-linux): each must use
/// every dependency it declares ([`unused_deps`]).
const ALL_LIBS: [&str; 7] = [
    "hwbp-core",
    "hwbp-x86",
    "hwbp-arm64",
    "hwbp-sh",
    "hwbp-riscv",
    "hwbp-gdbstub",
    "hwbp-linux",
];

/// `no_std` library crates without a `defmt` feature (cross-built and
/// linted with [`LIBS`], but not in the `defmt` build).
const LIBS_NO_DEFMT: [&str; 1] = ["hwbp-gdbstub"];

/// RISC-V targets: hwbp-riscv's CSR access (and hwbp-core, whose 64-bit
/// atomics fall back to critical sections on riscv32imac) is compiled and
/// linted for them.
const RISCV_TARGETS: [&str; 2] = ["riscv64gc-unknown-none-elf", "riscv32imac-unknown-none-elf"];

/// Crates published to crates.io, in dependency order.
const PUBLISHED: [&str; 7] = [
    "hwbp-core",
    "hwbp-x86",
    "hwbp-arm64",
    "hwbp-sh",
    "hwbp-riscv",
    "hwbp-gdbstub",
    "hwbp-linux",
];

/// A QEMU board: example directory, the executable it needs.
struct Board {
    name: &'static str,
    dir: &'static str,
    qemu: &'static str,
    /// The rustup target its firmware is built for.
    target: &'static str,
    /// Its expected transcript, a file in `dir`.
    expected: &'static str,
    /// The QEMU command line that runs it instead of the runner of `dir`'s
    /// `.cargo/config.toml` (`None`: that runner): another CPU for the same
    /// firmware.
    runner: Option<&'static str>,
}

/// The runner of `examples/qemu-aarch64-el2` with a Cortex-A76, which has
/// VHE (`ID_AA64MMFR1_EL1.VH`): the firmware then runs its host with
/// `HCR_EL2.E2H = 1`.
const AARCH64_EL2_VHE_RUNNER: &str = "qemu-system-aarch64 -M virt,virtualization=on \
    -cpu cortex-a76 -smp 1 -display none -serial stdio -monitor none -nic none -semihosting -kernel";

const BOARDS: [Board; 7] = [
    Board {
        name: "x86_64",
        dir: "examples/qemu-x86_64",
        qemu: "qemu-system-x86_64",
        target: "x86_64-unknown-none",
        expected: "expected.txt",
        runner: None,
    },
    Board {
        name: "aarch64",
        dir: "examples/qemu-aarch64",
        qemu: "qemu-system-aarch64",
        target: "aarch64-unknown-none",
        expected: "expected.txt",
        runner: None,
    },
    // A hypervisor at EL2 (`-M virt,virtualization=on`) and its guest at EL1.
    Board {
        name: "aarch64-el2",
        dir: "examples/qemu-aarch64-el2",
        qemu: "qemu-system-aarch64",
        target: "aarch64-unknown-none",
        expected: "expected.txt",
        runner: None,
    },
    // The same firmware on a CPU with VHE: the host at EL2 with E2H = 1.
    Board {
        name: "aarch64-el2-vhe",
        dir: "examples/qemu-aarch64-el2",
        qemu: "qemu-system-aarch64",
        target: "aarch64-unknown-none",
        expected: "expected-vhe.txt",
        runner: Some(AARCH64_EL2_VHE_RUNNER),
    },
    Board {
        name: "armv7",
        dir: "examples/qemu-armv7",
        qemu: "qemu-system-arm",
        target: "armv7a-none-eabi",
        expected: "expected.txt",
        runner: None,
    },
    Board {
        name: "riscv64",
        dir: "examples/qemu-riscv64",
        qemu: "qemu-system-riscv64",
        target: "riscv64gc-unknown-none-elf",
        expected: "expected.txt",
        runner: None,
    },
    Board {
        name: "riscv32",
        dir: "examples/qemu-riscv32",
        qemu: "qemu-system-riscv32",
        target: "riscv32imac-unknown-none-elf",
        expected: "expected.txt",
        runner: None,
    },
];

/// The boards' firmware directories, each once (one firmware may run as two
/// boards).
fn board_dirs() -> Vec<&'static str> {
    let mut dirs: Vec<&'static str> = Vec::new();
    for b in &BOARDS {
        if !dirs.contains(&b.dir) {
            dirs.push(b.dir);
        }
    }
    dirs
}

/// The harness every board's firmware uses (a path dependency of each).
const BOARD_KIT: &str = "examples/board-kit";

/// The minimal kernel integration of each arch (the porting guides'
/// code), each its own workspace building for its bare-metal target: built
/// (and so linked: a missing embedder piece such as the critical-section
/// implementation is a link error) and linted by `cargo xtask test`.
const MINIMAL: [&str; 3] = [
    "examples/minimal-aarch64",
    "examples/minimal-x86_64",
    "examples/minimal-armv7",
];

/// How long one board may run (the build is not counted).
const BOARD_TIMEOUT: Duration = Duration::from_secs(120);

/// The toolchain Miri comes with (it ships only on nightly).
const MIRI_TOOLCHAIN: &str = "nightly";

/// hwbp-linux's unit tests that make no system call: each source file keeps
/// them in a module named `pure_tests` (the tests in `tests` modules call the
/// kernel, or read /proc, which Miri's isolation refuses).
const MIRI_LINUX_FILTER: &str = "pure_tests";

/// Proptest cases per property: the default keeps CI well inside its budget;
/// `--long` runs deeper.
const CASES_DEFAULT: &str = "64";
const CASES_LONG: &str = "4096";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(args.iter().skip(1).any(|a| a == "--long")),
        Some("packages") => packages(),
        Some("bench") => bench::bench(args.iter().skip(1).any(|a| a == "--summary-only")),
        Some("qemu") => {
            let bless = args.iter().skip(1).any(|a| a == "--bless");
            let board = args.iter().skip(1).find(|a| *a != "--bless");
            qemu(board.map_or("all", String::as_str), bless)
        }
        Some("miri") => miri(),
        Some("gdb") => gdb::gdb(args.get(1).map_or("all", String::as_str)),
        Some("unused-deps") => unused_deps(),
        Some("msrv") => msrv(),
        Some("linux-arm64") => {
            let rest: Vec<String> = args
                .iter()
                .skip(1)
                .skip_while(|a| *a == "--")
                .cloned()
                .collect();
            linux_arm64(&rest)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask test [--long] | cargo xtask packages | cargo xtask miri \
                 | cargo xtask unused-deps | cargo xtask msrv \
                 | cargo xtask qemu [x86_64|aarch64|aarch64-el2|aarch64-el2-vhe|armv7|riscv64|riscv32|all] [--bless] \
                 | cargo xtask gdb [aarch64|x86_64|all] \
                 | cargo xtask linux-arm64 [-- TEST-ARGS] | cargo xtask bench [--summary-only]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(what: &str, cmd: &mut Command) -> Result {
    eprintln!("xtask: {what}");
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what}: {status}"))
    }
}

fn step(what: &str, args: &[&str]) -> Result {
    run(what, cargo().args(args))
}

fn test(long: bool) -> Result {
    let started = Instant::now();
    if !is_root() {
        eprintln!(
            "xtask: warning: not running as root. The tests on this machine's real \
             debug registers (ptrace, per-CPU perf_event_open) and the arm64 kernel \
             fetch need root and will fail, each saying why: run `sudo -E env PATH=\"$PATH\" cargo xtask test`."
        );
    }
    ensure_targets(&all_targets())?;
    step("rustfmt (workspace)", &["fmt", "--all", "--", "--check"])?;
    for dir in board_dirs().into_iter().chain(gdb::dirs()) {
        let manifest = format!("{dir}/Cargo.toml");
        step(
            &format!("rustfmt ({dir})"),
            &["fmt", "--manifest-path", &manifest, "--", "--check"],
        )?;
    }
    step(
        &format!("rustfmt ({BOARD_KIT})"),
        &[
            "fmt",
            "--manifest-path",
            &format!("{BOARD_KIT}/Cargo.toml"),
            "--",
            "--check",
        ],
    )?;
    for m in MINIMAL {
        let manifest = format!("{m}/Cargo.toml");
        step(
            &format!("rustfmt ({m})"),
            &["fmt", "--manifest-path", &manifest, "--", "--check"],
        )?;
    }
    step(
        &format!("rustfmt ({LINUX_ARM64_INIT})"),
        &[
            "fmt",
            "--manifest-path",
            &format!("{LINUX_ARM64_INIT}/Cargo.toml"),
            "--",
            "--check",
        ],
    )?;
    step(
        "clippy (workspace, all targets, -D warnings)",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let cases = if long { CASES_LONG } else { CASES_DEFAULT };
    run(
        &format!("host tests and doc tests (PROPTEST_CASES={cases})"),
        cargo()
            .args(["test", "--workspace"])
            .env("PROPTEST_CASES", cases),
    )?;
    run(
        "rustdoc (workspace, -D warnings: broken links, undocumented items)",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    step(
        "benchmarks, each run once as a test (cargo xtask bench measures)",
        &["test", "-p", "hwbp-core", "-p", "hwbp-linux", "--benches"],
    )?;
    loom()?;
    miri()?;
    packages()?;
    unused_deps()?;
    msrv()?;
    for t in TARGETS {
        let mut args = vec!["build", "--target", t];
        for l in LIBS.iter().chain(&LIBS_NO_DEFMT) {
            args.extend(["-p", l]);
        }
        step(&format!("cross-build no_std libraries for {t}"), &args)?;
        // The register-access code of each family is only compiled for its
        // own target: lint it there too.
        args[0] = "clippy";
        args.extend(["--", "-D", "warnings"]);
        step(
            &format!("clippy no_std libraries for {t} (-D warnings)"),
            &args,
        )?;
    }
    for t in RISCV_TARGETS {
        let args = ["-p", "hwbp-core", "-p", "hwbp-riscv", "--target", t];
        step(
            &format!("cross-build hwbp-core and hwbp-riscv for {t}"),
            &[&["build"][..], &args].concat(),
        )?;
        step(
            &format!("clippy hwbp-core and hwbp-riscv for {t} (-D warnings)"),
            &[&["clippy"][..], &args, &["--", "-D", "warnings"]].concat(),
        )?;
    }
    step(
        &format!("build hwbp-x86 for {X86_32} (32-bit x86 register access)"),
        &["build", "--target", X86_32, "-p", "hwbp-x86"],
    )?;
    step(
        &format!("clippy hwbp-linux for {LINUX_ARM64} (all targets, -D warnings)"),
        &[
            "clippy",
            "-p",
            "hwbp-linux",
            "--all-targets",
            "--target",
            LINUX_ARM64,
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let features: Vec<String> = LIBS.iter().map(|l| format!("{l}/defmt")).collect();
    let mut args = vec!["build", "--target", TARGETS[0], "--features"];
    let features = features.join(",");
    args.push(&features);
    for l in LIBS {
        args.extend(["-p", l]);
    }
    step(
        &format!("cross-build no_std libraries with defmt for {}", TARGETS[0]),
        &args,
    )?;
    for d in board_dirs().into_iter().chain(gdb::dirs()) {
        let dir = root().join(d);
        run(
            &format!("clippy ({d}, -D warnings)"),
            cargo()
                .current_dir(&dir)
                .args(["clippy", "--release", "--", "-D", "warnings"]),
        )?;
    }
    for m in MINIMAL {
        let dir = root().join(m);
        run(
            &format!("build and link {m}"),
            cargo().current_dir(&dir).args(["build", "--release"]),
        )?;
        run(
            &format!("clippy ({m}, -D warnings)"),
            cargo()
                .current_dir(&dir)
                .args(["clippy", "--release", "--", "-D", "warnings"]),
        )?;
    }
    // The boards' clippy runs lint only their own crates, not this path
    // dependency; it is target-independent, so the host lints it.
    run(
        &format!("clippy ({BOARD_KIT}, -D warnings)"),
        cargo()
            .current_dir(root().join(BOARD_KIT))
            .args(["clippy", "--", "-D", "warnings"]),
    )?;
    run(
        &format!("clippy ({LINUX_ARM64_INIT}, -D warnings)"),
        cargo().current_dir(root().join(LINUX_ARM64_INIT)).args([
            "clippy",
            "--release",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    qemu("all", false)?;
    gdb::gdb("all")?;
    linux_arm64(&[])?;
    eprintln!("xtask: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Remove this workspace's own crates (at this version) from cargo's
/// unpacked-registry and package caches in `$CARGO_HOME` (they never come
/// from crates.io, only from earlier `cargo publish --dry-run`s).
fn forget_unpacked_packages() {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(home) = home else {
        return;
    };
    let version = env!("CARGO_PKG_VERSION");
    for kind in ["src", "cache"] {
        let Ok(registries) = std::fs::read_dir(home.join("registry").join(kind)) else {
            continue;
        };
        for reg in registries.flatten() {
            for c in PUBLISHED {
                let dir = reg.path().join(format!("{c}-{version}"));
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::remove_file(reg.path().join(format!("{c}-{version}.crate")));
            }
        }
    }
}

/// Every library crate as crates.io would get it: `cargo publish --workspace
/// --dry-run` packages and builds each one against the others' packages,
/// then each packaged crate's doc tests run from its unpacked copy (so a doc
/// test that reaches outside its package fails here).
fn packages() -> Result {
    // Start from nothing: cargo's local registry of packaged crates under
    // target/package can hold an older build of the same version, which the
    // verify step would then compile the other crates against.
    let _ = std::fs::remove_dir_all(root().join("target/package"));
    // Cargo also unpacks those local packages into its home's registry
    // (`registry/src/<local registry hash>/<crate>-<version>`) and never
    // unpacks the same name and version again: drop our own crates there so
    // the verify step builds what was just packaged, not an older copy.
    forget_unpacked_packages();
    run(
        "cargo publish --workspace --dry-run (package and verify every library crate)",
        cargo().args(["publish", "--workspace", "--dry-run", "--allow-dirty"]),
    )?;
    let pkg = root().join("target/package");
    let version = env!("CARGO_PKG_VERSION");
    let patches: Vec<String> = PUBLISHED
        .iter()
        .flat_map(|c| {
            [
                "--config".to_owned(),
                format!(
                    "patch.crates-io.{c}.path=\"{}\"",
                    pkg.join(format!("{c}-{version}")).display()
                ),
            ]
        })
        .collect();
    for c in PUBLISHED {
        let dir = pkg.join(format!("{c}-{version}"));
        // In the workspace a crate's own tests enable its `model` feature
        // through a dev-dependency on itself, which packaging drops (a path
        // dev-dependency without a version): enable it by name instead, so
        // doc tests that run against the model run here too.
        let has_model = std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|s| s.lines().any(|l| l.trim_start().starts_with("model = ")));
        let mut cmd = cargo();
        cmd.current_dir(&dir).args(["test", "--doc"]);
        if has_model {
            cmd.args(["--features", "model"]);
        }
        run(
            &format!("doc tests of the packaged {c}"),
            cmd.args(&patches)
                .arg("--target-dir")
                .arg(root().join("target/packaged")),
        )?;
    }
    Ok(())
}

/// Every library crate uses every dependency it declares: its library (not
/// its tests, whose dev-dependencies the lint would count as unused) is
/// checked with `-D unused-crate-dependencies`, one crate at a time (the
/// flag would also apply to the others built as its dependencies), in a
/// target dir of its own so the flag does not invalidate the normal build.
/// Also run by `cargo xtask unused-deps`.
fn unused_deps() -> Result {
    for l in ALL_LIBS {
        run(
            &format!("unused dependencies of {l} (-D unused-crate-dependencies)"),
            cargo()
                .args(["check", "-p", l, "--lib"])
                .env("RUSTFLAGS", "-D unused-crate-dependencies")
                .env("CARGO_TARGET_DIR", root().join("target/unused-deps")),
        )?;
    }
    Ok(())
}

/// The library crates build with the declared `rust-version` ([`MSRV`]),
/// for the host and for [`MSRV_BARE_METAL`]; only the libraries (`--lib`),
/// as dev-dependencies (criterion, proptest) may need a newer Rust. The
/// toolchain (minimal profile) is installed through rustup when missing.
/// Also run by `cargo xtask msrv`.
fn msrv() -> Result {
    let has = toolchain_cargo(MSRV, "target/msrv")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        run(
            &format!("rustup toolchain install {MSRV} --profile minimal"),
            Command::new("rustup").args([
                "toolchain",
                "install",
                MSRV,
                "--profile",
                "minimal",
                "--target",
                MSRV_BARE_METAL,
            ]),
        )?;
    }
    let mut host = vec!["check", "--lib"];
    for l in ALL_LIBS {
        host.extend(["-p", l]);
    }
    run(
        &format!("MSRV: library crates with Rust {MSRV} (host)"),
        toolchain_cargo(MSRV, "target/msrv").args(&host),
    )?;
    let mut bare = vec!["check", "--lib", "--target", MSRV_BARE_METAL];
    for l in LIBS {
        bare.extend(["-p", l]);
    }
    run(
        &format!("MSRV: no_std library crates with Rust {MSRV} ({MSRV_BARE_METAL})"),
        toolchain_cargo(MSRV, "target/msrv").args(&bare),
    )
}

/// The loom model checks: hwbp-core's lock-free dispatch path (`--cfg loom`)
/// and hwbp-linux's signal table (`--cfg hwbp_linux_loom`; under `--cfg loom`
/// its dependency hwbp-core would switch to loom's atomics too, which it
/// supports only in its own unit tests). Each has a target dir of its own, so
/// neither `--cfg` build invalidates the normal one or the other.
fn loom() -> Result {
    let checks = [
        ("hwbp-core", "loom", "the dispatch", "target/loom"),
        (
            "hwbp-linux",
            "hwbp_linux_loom",
            "the signal table",
            "target/loom-linux",
        ),
    ];
    for (krate, cfg, what, target_dir) in checks {
        let has_loom = std::fs::read_to_string(root().join(krate).join("Cargo.toml"))
            .is_ok_and(|s| s.contains("loom"));
        if !has_loom {
            return Err(format!(
                "{krate} has no loom dev-dependency: {what} model checks are missing"
            ));
        }
        run(
            &format!("loom model checks ({krate}, --cfg {cfg})"),
            cargo()
                .args(["test", "-p", krate, "--release", "--lib", "loom"])
                .env("RUSTFLAGS", format!("--cfg {cfg}"))
                .env("CARGO_TARGET_DIR", root().join(target_dir))
                .env("LOOM_MAX_PREEMPTIONS", "3"),
        )?;
    }
    Ok(())
}

/// `cargo +nightly ...` through rustup, in `target/miri` so the nightly
/// build does not invalidate the stable one.
fn nightly_cargo() -> Command {
    toolchain_cargo(MIRI_TOOLCHAIN, "target/miri")
}

/// `cargo +TOOLCHAIN ...` through rustup, in its own target dir (below the
/// workspace root). The variables the outer (stable) cargo and rustup set
/// are dropped so the other toolchain's tools pick their own.
fn toolchain_cargo(toolchain: &str, target_dir: &str) -> Command {
    let mut c = Command::new("rustup");
    c.current_dir(root())
        .args(["run", toolchain, "cargo"])
        .env("CARGO_TARGET_DIR", root().join(target_dir));
    for v in [
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTUP_TOOLCHAIN",
        "RUSTC_WRAPPER",
    ] {
        c.env_remove(v);
    }
    c
}

/// Install nightly with Miri if it is missing (the way the cross targets
/// are added: through rustup), then build Miri's sysroot.
fn ensure_miri() -> Result {
    let has_miri = nightly_cargo()
        .args(["miri", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_miri {
        run(
            &format!(
                "rustup toolchain install {MIRI_TOOLCHAIN} --profile minimal --component miri"
            ),
            Command::new("rustup").args([
                "toolchain",
                "install",
                MIRI_TOOLCHAIN,
                "--profile",
                "minimal",
                "--component",
                "miri",
            ]),
        )?;
    }
    run(
        "Miri sysroot (cargo +nightly miri setup)",
        nightly_cargo().args(["miri", "setup"]),
    )
}

/// The Miri run: hwbp-core's unit and scenario tests, and hwbp-linux's unit
/// tests that make no system call ([`MIRI_LINUX_FILTER`]). Undefined
/// behaviour, a data race or a leak fails the run. None of these tests is a proptest, so no case count is needed; the
/// whole run takes a few minutes (about 4 on 2 busy cores, most of it the
/// scenarios).
fn miri() -> Result {
    ensure_miri()?;
    run(
        "Miri: hwbp-core unit tests",
        nightly_cargo().args(["miri", "test", "-p", "hwbp-core", "--lib"]),
    )?;
    run(
        "Miri: hwbp-core scenario tests",
        nightly_cargo().args(["miri", "test", "-p", "hwbp-core", "--test", "scenarios"]),
    )?;
    run(
        "Miri: hwbp-linux unit tests without system calls (the `pure_tests` modules)",
        nightly_cargo().args([
            "miri",
            "test",
            "-p",
            "hwbp-linux",
            "--lib",
            "--",
            MIRI_LINUX_FILTER,
        ]),
    )
}

/// Every rustup target `cargo xtask test` uses.
fn all_targets() -> Vec<&'static str> {
    TARGETS
        .iter()
        .copied()
        .chain(RISCV_TARGETS)
        .chain([X86_32, LINUX_ARM64, LINUX_ARM64_MUSL])
        .collect()
}

fn ensure_targets(wanted: &[&str]) -> Result {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup is needed to add the cross targets: {e}"))?;
    let installed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run(
        &format!("rustup target add {}", missing.join(" ")),
        Command::new("rustup")
            .args(["target", "add"])
            .args(&missing),
    )
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The QEMU executables `boards` need, installed or fetched without touching
/// any installed host package (see [`host_qemu`]).
fn ensure_qemu(boards: &[&Board]) -> Result {
    let bins: Vec<&str> = boards.iter().map(|b| b.qemu).collect();
    host_qemu::ensure(&bins)
}

/// Build and run the boards `which` names; with `bless`, write the
/// transcripts of the boards that passed as their expected transcripts.
fn qemu(which: &str, bless: bool) -> Result {
    let boards: Vec<&Board> = BOARDS
        .iter()
        .filter(|b| which == "all" || which == b.name)
        .collect();
    if boards.is_empty() {
        return Err(format!(
            "unknown board {which:?}: expected x86_64, aarch64, aarch64-el2, aarch64-el2-vhe, armv7, riscv64, riscv32 or all"
        ));
    }
    let targets: Vec<&str> = boards.iter().map(|b| b.target).collect();
    ensure_targets(&targets)?;
    ensure_qemu(&boards)?;
    let mut failed = Vec::new();
    for b in &boards {
        match run_board(b).and_then(|(summary, lines)| {
            check_transcript(b, &lines, bless)?;
            Ok(summary)
        }) {
            Ok(summary) => println!("PASS {}: {summary}", b.name),
            Err(e) => {
                println!("FAIL {}: {e}", b.name);
                failed.push(b.name);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("QEMU boards failed: {}", failed.join(", ")))
    }
}

/// hwbp-linux's tests on arm64 Linux under QEMU, with a PASS/FAIL line.
fn linux_arm64(test_args: &[String]) -> Result {
    match linux_arm64::run_all(test_args) {
        Ok(summary) => {
            println!("PASS linux-arm64: {summary}");
            Ok(())
        }
        Err(e) => {
            println!("FAIL linux-arm64: {e}");
            Err("hwbp-linux's tests on arm64 Linux failed".into())
        }
    }
}

/// The committed transcript a board's run is compared with.
fn expected_path(b: &Board) -> PathBuf {
    root().join(b.dir).join(b.expected)
}

/// Compare the normalised transcript with the board's `expected.txt`, or
/// (`bless`) write it there.
fn check_transcript(b: &Board, lines: &[String], bless: bool) -> Result {
    let actual = transcript::normalise(lines);
    let path = expected_path(b);
    if bless {
        std::fs::write(&path, &actual)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("xtask: blessed {}", path.display());
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read the expected transcript {}: {e} (write it with `cargo xtask qemu {} --bless`)",
            path.display(),
            b.name
        )
    })?;
    match transcript::diff(&expected, &actual) {
        None => Ok(()),
        Some(d) => {
            println!(
                "transcript of {} differs from {} (after normalising; `-` expected, `+` got):\n{d}",
                b.name,
                path.display()
            );
            Err(format!(
                "transcript differs from {} (diff above; if the change is intended, \
                 re-bless with `cargo xtask qemu {} --bless`)",
                path.display(),
                b.name
            ))
        }
    }
}

/// Build and boot one board; returns its summary line and its transcript.
fn run_board(b: &Board) -> Result<(String, Vec<String>)> {
    let dir = root().join(b.dir);
    run(
        &format!("build {}", b.dir),
        cargo().current_dir(&dir).args(["build", "--release"]),
    )?;
    eprintln!("xtask: boot {} on {}", b.dir, b.qemu);
    let mut cmd = cargo();
    cmd.current_dir(&dir).args(["run", "--quiet", "--release"]);
    if let Some(runner) = b.runner {
        let runner = runner.split_whitespace().collect::<Vec<_>>().join(" ");
        cmd.arg("--config")
            .arg(format!("target.{}.runner=\"{runner}\"", b.target));
    }
    let (status, lines) = stream(cmd, b.name, BOARD_TIMEOUT)?;
    let Some(status) = status else {
        return Err(format!("timed out after {BOARD_TIMEOUT:?}"));
    };
    let failures: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    if let Some(first) = failures.first() {
        return Err(format!(
            "{} FAIL line(s), the first: {first}",
            failures.len()
        ));
    }
    let prefix = format!("hwbp {}: ", b.name);
    let summary = lines
        .iter()
        .rev()
        .find(|l| l.starts_with(&prefix) && l.ends_with("checks passed"))
        .cloned()
        .ok_or_else(|| format!("no '{prefix}N checks passed' line in the transcript"))?;
    if !status.success() {
        return Err(format!(
            "firmware printed '{summary}' but exited with {status}"
        ));
    }
    Ok((summary, lines))
}

/// Run `cmd` in its own process group (so a timeout kills QEMU too, not only
/// a cargo that started it), print its stdout line by line with a `[name]`
/// prefix, and collect the lines. The status is `None` on a timeout.
fn stream(
    mut cmd: Command,
    name: &'static str,
    timeout: Duration,
) -> Result<(Option<std::process::ExitStatus>, Vec<String>)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            // A Linux serial console ends lines with CR LF.
            let line = line.trim_end_matches('\r').to_owned();
            println!("  [{name}] {line}");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(s) => break Some(s),
            None if Instant::now() > deadline => {
                #[cfg(unix)]
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    };
    let _ = reader.join();
    Ok((status, rx.try_iter().collect()))
}
