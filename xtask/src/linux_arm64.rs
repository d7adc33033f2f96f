//! `cargo xtask linux-arm64`: hwbp-linux's test binaries on a real arm64
//! Linux kernel, under `qemu-system-aarch64 -M virt -cpu cortex-a53` (TCG).
//!
//! 1. The kernel: Debian's arm64 cloud kernel package is downloaded (never
//!    installed) with apt-get using a private state directory under
//!    `target/linux-arm64/apt`, so the host's apt configuration and dpkg
//!    architectures are left alone. Its `vmlinuz` (an uncompressed arm64
//!    `Image`; gzip is undone if a later package compresses it) is cached as
//!    `target/linux-arm64/Image`; delete that file to fetch a newer kernel.
//! 2. The tests: `cargo test -p hwbp-linux --target aarch64-unknown-linux-musl
//!    --no-run`, linked statically by rust-lld; the executables come from
//!    cargo's JSON messages.
//! 3. The initramfs: a newc cpio written here, with `/init` (built from
//!    `examples/linux-arm64-init`), `/dev/console` and `/tests/<binary>`.
//! 4. The boot: the console is streamed with a `[linux-arm64]` prefix; `/init`
//!    runs every binary, prints a summary line and powers off.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{
    cargo, ensure_qemu, ensure_targets, is_root, root, run, stream, Result, BOARDS,
    LINUX_ARM64_INIT, LINUX_ARM64_KERNEL, LINUX_ARM64_MUSL, LINUX_ARM64_TIMEOUT,
};

const NAME: &str = "linux-arm64";

/// Build, boot and check; returns the guest's summary line.
/// `test_args` go to every test binary (after `--` on the kernel command
/// line, which the kernel hands to `/init`).
pub fn run_all(test_args: &[String]) -> Result<String> {
    let started = Instant::now();
    ensure_targets(&[LINUX_ARM64_MUSL])?;
    let board = BOARDS
        .iter()
        .find(|b| b.name == "aarch64")
        .ok_or("no aarch64 board")?;
    ensure_qemu(&[board])?;
    let dir = root().join("target").join(NAME);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let kernel = ensure_kernel(&dir)?;
    let tests = build_tests()?;
    let init = build_init()?;
    let initrd = dir.join("initramfs.cpio");
    write_initramfs(&initrd, &init, &tests)?;
    eprintln!(
        "xtask: boot {} ({} test binaries) on qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2",
        kernel.display(),
        tests.len()
    );
    let booted = Instant::now();
    let mut qemu = Command::new("qemu-system-aarch64");
    qemu.args([
        "-M",
        "virt",
        "-cpu",
        "cortex-a53",
        "-smp",
        "2",
        "-m",
        "1G",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-nic",
        "none",
        "-no-reboot",
        "-kernel",
    ])
    .arg(&kernel)
    .arg("-initrd")
    .arg(&initrd)
    // `panic=-1` with `-no-reboot`: a dying /init ends QEMU at once.
    .arg("-append")
    .arg(format!(
        "console=ttyAMA0 panic=-1 quiet -- {}",
        test_args.join(" ")
    ));
    let (status, lines) = stream(qemu, NAME, LINUX_ARM64_TIMEOUT)?;
    let Some(status) = status else {
        return Err(format!("timed out after {LINUX_ARM64_TIMEOUT:?}"));
    };
    eprintln!(
        "xtask: {NAME}: guest ran {:.0?} ({:.0?} in all)",
        booted.elapsed(),
        started.elapsed()
    );
    check_transcript(&lines, tests.len())?;
    let summary = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("hwbp linux-arm64: ") && l.contains(" binaries ("))
        .cloned()
        .unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "guest printed '{summary}' but QEMU exited with {status}"
        ));
    }
    Ok(summary)
}

/// Passes only if no binary failed, every binary packed was run, and more
/// than zero tests passed with none failed.
fn check_transcript(lines: &[String], binaries: usize) -> Result {
    if let Some(fail) = lines.iter().find(|l| l.starts_with("FAIL")) {
        return Err(fail.clone());
    }
    let summary = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("hwbp linux-arm64: ") && l.contains(" binaries ("))
        .ok_or("no 'hwbp linux-arm64: N binaries (...)' summary line in the transcript")?;
    // hwbp linux-arm64: 3 binaries (0 failed), 40 tests passed, 0 failed, 0 ignored
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .filter_map(|w| w.parse().ok())
        .collect();
    // The first number is the 64 of "linux-arm64".
    match numbers.as_slice() {
        [64, ran, 0, passed, 0, _ignored] if *ran == binaries as u64 && *passed > 0 => Ok(()),
        _ => Err(format!(
            "expected {binaries} binaries, none failed and more than 0 tests passed: '{summary}'"
        )),
    }
}

/// The apt-get options that point apt at a private state directory and at
/// arm64 package lists, leaving the host's configuration alone.
fn apt_options(apt: &Path) -> Vec<String> {
    let mut o = vec![
        "-o".to_owned(),
        "APT::Architecture=arm64".to_owned(),
        "-o".to_owned(),
        "APT::Architectures::=arm64".to_owned(),
        "-o".to_owned(),
        format!("Dir::State::Lists={}", apt.join("lists").display()),
        "-o".to_owned(),
        format!("Dir::Cache={}", apt.join("cache").display()),
        "-o".to_owned(),
        "Dir::State::status=/dev/null".to_owned(),
        "-o".to_owned(),
        "Acquire::Languages=none".to_owned(),
        "-o".to_owned(),
        "DPkg::Lock::Timeout=600".to_owned(),
    ];
    if is_root() {
        // The private directories belong to root, not to apt's `_apt` user.
        o.extend(["-o".to_owned(), "APT::Sandbox::User=root".to_owned()]);
    }
    o
}

/// The cached kernel `Image`, fetched from Debian's arm64 archive if missing.
fn ensure_kernel(dir: &Path) -> Result<PathBuf> {
    let image = dir.join("Image");
    if image.is_file() {
        let version = fs::read_to_string(dir.join("Image.package")).unwrap_or_default();
        eprintln!(
            "xtask: {NAME}: cached kernel {} ({})",
            image.display(),
            version.trim()
        );
        return Ok(image);
    }
    let apt = dir.join("apt");
    let opts = apt_options(&apt).join(" ");
    if !is_root() {
        return Err(format!(
            "the arm64 kernel is not cached yet and fetching it needs apt-get as root. Run:\n    \
             sudo cargo xtask linux-arm64\nor fetch it by hand (the package is downloaded, \
             not installed):\n    \
             mkdir -p {a}/lists/partial {a}/cache/archives/partial && cd {a} && \
             sudo apt-get {opts} update && \
             sudo apt-get {opts} download $(apt-cache {opts} show --no-all-versions \
             {LINUX_ARM64_KERNEL} | sed -n 's/^Depends: \\([^ ,]*\\).*/\\1/p') && \
             dpkg-deb --fsys-tarfile linux-image-*.deb | tar -xO --wildcards './boot/vmlinuz-*' \
             > {image}",
            a = apt.display(),
            image = image.display(),
        ));
    }
    for d in ["lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(apt.join(d)).map_err(|e| format!("{}: {e}", apt.display()))?;
    }
    let opts = apt_options(&apt);
    run(
        "apt-get update (arm64 package lists, private state directory)",
        Command::new("apt-get").args(&opts).arg("update"),
    )?;
    let out = Command::new("apt-cache")
        .args(&opts)
        .args(["show", "--no-all-versions", LINUX_ARM64_KERNEL])
        .output()
        .map_err(|e| format!("apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let package = text
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .and_then(|d| d.split([' ', ',']).next())
        .filter(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| format!("apt-cache show {LINUX_ARM64_KERNEL}: no linux-image dependency"))?
        .to_owned();
    let debs = apt.join("debs");
    let _ = fs::remove_dir_all(&debs);
    fs::create_dir_all(&debs).map_err(|e| format!("{}: {e}", debs.display()))?;
    run(
        &format!("apt-get download {package} (arm64)"),
        Command::new("apt-get")
            .args(&opts)
            .args(["download", &package])
            .current_dir(&debs),
    )?;
    let deb = fs::read_dir(&debs)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    let tree = debs.join("tree");
    run(
        "dpkg-deb -x (kernel package)",
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree),
    )?;
    let boot = tree.join("boot");
    let find = |prefix: &str| -> Result<PathBuf> {
        fs::read_dir(&boot)
            .map_err(|e| format!("{}: {e}", boot.display()))?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .ok_or_else(|| format!("{package} has no /boot/{prefix}*"))
    };
    let config = fs::read_to_string(find("config-")?).map_err(|e| e.to_string())?;
    for need in [
        "CONFIG_HAVE_HW_BREAKPOINT=y",
        "CONFIG_PERF_EVENTS=y",
        "CONFIG_BLK_DEV_INITRD=y",
        "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y",
        "CONFIG_ARM_PSCI_FW=y",
    ] {
        if !config.lines().any(|l| l == need) {
            return Err(format!("{package} lacks {need}"));
        }
    }
    let raw = fs::read(find("vmlinuz-")?).map_err(|e| e.to_string())?;
    let kernel = if raw.starts_with(&[0x1f, 0x8b]) {
        // Image.gz: QEMU's -kernel wants the Image itself for arm64.
        let mut gz = Command::new("gzip")
            .args(["-dc"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("gzip: {e}"))?;
        let mut stdin = gz.stdin.take().ok_or("gzip stdin")?;
        let writer = std::thread::spawn(move || stdin.write_all(&raw));
        let out = gz.wait_with_output().map_err(|e| format!("gzip: {e}"))?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(format!("gzip -dc of the kernel: {}", out.status));
        }
        out.stdout
    } else {
        raw
    };
    // arm64 Image header: "ARM\x64" at byte 56. An EFI zboot image (a PE file
    // with a compressed payload) would not have it.
    if kernel.get(56..60) != Some(b"ARM\x64".as_slice()) {
        return Err(format!(
            "{package}: /boot/vmlinuz-* is not an arm64 Image (EFI zboot?)"
        ));
    }
    let tmp = dir.join("Image.tmp");
    fs::write(&tmp, &kernel).map_err(|e| e.to_string())?;
    fs::rename(&tmp, &image).map_err(|e| e.to_string())?;
    let version = deb.file_name().map_or_else(String::new, |n| {
        n.to_string_lossy().trim_end_matches(".deb").to_owned()
    });
    fs::write(dir.join("Image.package"), format!("{version}\n")).map_err(|e| e.to_string())?;
    // The package lists and the package are needed only for this fetch.
    let _ = fs::remove_dir_all(&apt);
    eprintln!(
        "xtask: {NAME}: kernel {version} cached as {}",
        image.display()
    );
    Ok(image)
}

/// `cargo test -p hwbp-linux --no-run` for the musl target; the executables.
fn build_tests() -> Result<Vec<PathBuf>> {
    let what = format!("build hwbp-linux tests for {LINUX_ARM64_MUSL}");
    eprintln!("xtask: {what}");
    let out = cargo()
        .args([
            "test",
            "-p",
            "hwbp-linux",
            "--target",
            LINUX_ARM64_MUSL,
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what}: {}", out.status));
    }
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // cargo's JSON: `"executable":"/path"` on test artifacts, `null` on
        // the rest. Paths under the workspace need no JSON unescaping.
        // Test harnesses only: `--no-run` also builds the examples.
        if !line.contains(r#""reason":"compiler-artifact""#) || !line.contains(r#""test":true"#) {
            continue;
        }
        if let Some(rest) = line.split(r#""executable":""#).nth(1) {
            if let Some(path) = rest.split('"').next() {
                exes.push(PathBuf::from(path));
            }
        }
    }
    exes.sort();
    exes.dedup();
    if exes.is_empty() {
        return Err(format!("{what}: cargo reported no test executables"));
    }
    Ok(exes)
}

/// `examples/linux-arm64-init`, built for the musl target by its own config.
fn build_init() -> Result<PathBuf> {
    let dir = root().join(LINUX_ARM64_INIT);
    run(
        &format!("build {LINUX_ARM64_INIT}"),
        cargo().current_dir(&dir).args(["build", "--release"]),
    )?;
    Ok(dir.join(format!("target/{LINUX_ARM64_MUSL}/release/init")))
}

/// The name a test binary gets in `/tests`: cargo's without the `-<hash>`.
fn test_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    match name.rsplit_once('-') {
        Some((stem, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => stem.to_owned(),
        _ => name,
    }
}

/// A newc ("070701") cpio archive, as the kernel's initramfs unpacker reads it.
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Self {
        Cpio {
            out: Vec::new(),
            ino: 1,
        }
    }

    fn pad(&mut self) {
        let len = self.out.len().next_multiple_of(4);
        self.out.resize(len, 0);
    }

    /// One entry: `mode` includes the file type bits; `rdev` is for device
    /// nodes.
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0, // check
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, data: &[u8]) {
        self.entry(name, 0o100755, (0, 0), data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

fn write_initramfs(path: &Path, init: &Path, tests: &[PathBuf]) -> Result {
    let read = |p: &Path| fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut cpio = Cpio::new();
    for d in ["dev", "proc", "sys", "tests"] {
        cpio.dir(d);
    }
    // The kernel opens /dev/console for /init's stdin, stdout and stderr
    // before anything could mount devtmpfs.
    cpio.entry("dev/console", 0o020600, (5, 1), &[]);
    cpio.file("init", &read(init)?);
    for t in tests {
        cpio.file(&format!("tests/{}", test_name(t)), &read(t)?);
    }
    fs::write(path, cpio.finish()).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_drop_the_hash() {
        assert_eq!(
            test_name(Path::new("/t/deps/real_cpu-9a96a9e100b7b756")),
            "real_cpu"
        );
        assert_eq!(
            test_name(Path::new("/t/deps/hwbp_linux-f9ad3b70")),
            "hwbp_linux"
        );
        assert_eq!(test_name(Path::new("/t/plain")), "plain");
    }

    #[test]
    fn cpio_newc_layout() {
        let mut c = Cpio::new();
        c.file("ab", b"xyz");
        let out = c.finish();
        // 110-byte header, "ab\0" padded to 4, data padded to 4.
        assert_eq!(&out[..6], b"070701");
        assert_eq!(&out[6..14], b"00000001", "ino");
        assert_eq!(&out[14..22], b"000081ed", "mode 0100755");
        assert_eq!(&out[54..62], b"00000003", "filesize");
        assert_eq!(&out[94..102], b"00000003", "namesize with NUL");
        assert_eq!(&out[110..113], b"ab\0");
        assert_eq!(out[113], 0, "name padded to 4");
        assert_eq!(&out[116..119], b"xyz");
        assert_eq!(out.len() % 4, 0);
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn transcript_checks() {
        let ok = |s: &str| vec![s.to_owned()];
        assert!(check_transcript(
            &ok("hwbp linux-arm64: 3 binaries (0 failed), 40 tests passed, 0 failed, 0 ignored"),
            3
        )
        .is_ok());
        // Fewer binaries than packed, no tests, failures: all refused.
        for bad in [
            "hwbp linux-arm64: 2 binaries (0 failed), 40 tests passed, 0 failed, 0 ignored",
            "hwbp linux-arm64: 3 binaries (0 failed), 0 tests passed, 0 failed, 0 ignored",
            "hwbp linux-arm64: 3 binaries (1 failed), 39 tests passed, 1 failed, 0 ignored",
        ] {
            assert!(check_transcript(&ok(bad), 3).is_err(), "{bad}");
        }
        assert!(check_transcript(&[], 3).is_err());
        let mut with_fail = ok("FAIL real_cpu: exited with exit status: 101");
        with_fail.extend(ok(
            "hwbp linux-arm64: 3 binaries (0 failed), 40 tests passed, 0 failed, 0 ignored",
        ));
        assert!(check_transcript(&with_fail, 3).is_err());
    }
}
