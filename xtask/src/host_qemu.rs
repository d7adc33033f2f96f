//! QEMU for the boards (and `gdb-multiarch` for `cargo xtask gdb`), without
//! ever removing or downgrading a host package.
//!
//! In order:
//! 1. the QEMU executables a board needs are on `PATH`: use them;
//! 2. they were fetched earlier into `target/qemu/root`: use those;
//! 3. as root, `apt-get install --no-remove` of only the Debian packages the
//!    requested boards need (apt refuses, changing nothing, if the install
//!    would remove a package — a fresh image's newer `qemu-utils` is one);
//! 4. otherwise (refused, or not root) the packages and the libraries they
//!    need that the host lacks are downloaded with `apt-get download` using
//!    private package lists under `target/qemu/apt`, unpacked with
//!    `dpkg-deb -x` into `target/qemu/root` (a `<package>.complete` marker beside it once
//!    everything a package needs is there) and run from there. Debian's QEMU
//!    is relocatable (it looks for its firmware in `../share` next to its
//!    executable), and a wrapper script in `target/qemu/bin` sets
//!    `LD_LIBRARY_PATH` for QEMU alone.
//!
//! Nothing here writes to the host's package database or apt lists except
//! step 3, which apt itself guarantees removes nothing.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{have, is_root, root, run, Result};

/// The Debian package that ships each QEMU executable the boards use.
pub fn package_of(bin: &str) -> Option<&'static str> {
    match bin {
        "qemu-system-x86_64" => Some("qemu-system-x86"),
        "qemu-system-aarch64" | "qemu-system-arm" => Some("qemu-system-arm"),
        // Debian ships the RISC-V (and other less common) system emulators
        // together in qemu-system-misc.
        "qemu-system-riscv64" | "qemu-system-riscv32" => Some("qemu-system-misc"),
        // Not QEMU, but installed the same way, for `cargo xtask gdb`.
        "gdb-multiarch" => Some("gdb-multiarch"),
        _ => None,
    }
}

/// Where fetched packages are unpacked and the wrappers live.
fn dir() -> PathBuf {
    root().join("target").join("qemu")
}

/// Make every executable in `bins` runnable by name from this process and
/// its children (`PATH` gains `target/qemu/bin` when the fetched copy is
/// used).
pub fn ensure(bins: &[&str]) -> Result {
    let missing: Vec<&str> = bins.iter().copied().filter(|b| !have(b)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if use_fetched(&missing)? {
        return Ok(());
    }
    let mut pkgs: Vec<&str> = Vec::new();
    for b in &missing {
        let p = package_of(b).ok_or_else(|| format!("no known package ships {b}"))?;
        if !pkgs.contains(&p) {
            pkgs.push(p);
        }
    }
    if !have_cmd("apt-get") || !have_cmd("dpkg-deb") {
        return Err(format!(
            "{} missing and this is not a Debian-like system (no apt-get/dpkg-deb). Install QEMU \
             with your package manager and run again, e.g.:\n    \
             Fedora:  sudo dnf install qemu-system-x86 qemu-system-aarch64 qemu-system-arm qemu-system-riscv\n    \
             Arch:    sudo pacman -S qemu-system-x86 qemu-system-aarch64 qemu-system-arm qemu-system-riscv\n    \
             openSUSE: sudo zypper install qemu-x86 qemu-arm qemu-extra\n    \
             macOS:   brew install qemu",
            missing.join(", ")
        ));
    }
    if is_root() && env_unset("XTASK_QEMU_NO_SYSTEM") && system_install(&pkgs) {
        if missing.iter().all(|b| have(b)) {
            return Ok(());
        }
        eprintln!("xtask: apt-get installed {pkgs:?} but QEMU is still not on PATH");
    }
    eprintln!(
        "xtask: fetching {} into {} (not installed on the host)",
        pkgs.join(" "),
        dir().display()
    );
    fetch(&pkgs)?;
    if use_fetched(&missing)? {
        Ok(())
    } else {
        Err(format!(
            "{} is still missing after unpacking {} into {}",
            missing.join(", "),
            pkgs.join(" "),
            dir().join("root").display()
        ))
    }
}

fn env_unset(name: &str) -> bool {
    std::env::var_os(name).is_none()
}

fn have_cmd(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `apt-get install` that apt aborts, changing nothing, if any installed
/// package would have to be removed. Returns whether it installed.
fn system_install(pkgs: &[&str]) -> bool {
    let wait_lock = ["-o", "DPkg::Lock::Timeout=600"];
    let update = run(
        "apt-get update",
        Command::new("apt-get").args(wait_lock).arg("update"),
    );
    if update.is_err() {
        return false;
    }
    let mut cmd = Command::new("apt-get");
    cmd.args(wait_lock)
        .args(["install", "-y", "--no-install-recommends", "--no-remove"])
        .args(pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive");
    match run(
        &format!(
            "apt-get install -y --no-install-recommends --no-remove {}",
            pkgs.join(" ")
        ),
        &mut cmd,
    ) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "xtask: the system install was refused ({e}); nothing was changed. \
                 Using QEMU from Debian's packages unpacked under target/ instead."
            );
            false
        }
    }
}

/// If the fetched copy has every executable in `bins`, put its wrappers
/// first on `PATH` and say so.
fn use_fetched(bins: &[&str]) -> Result<bool> {
    let root_dir = dir().join("root");
    let complete = |b: &&str| {
        root_dir.join("usr/bin").join(b).is_file()
            && package_of(b).is_some_and(|p| marker(p).is_file())
    };
    if !bins.iter().all(complete) {
        return Ok(false);
    }
    let wrappers = dir().join("bin");
    fs::create_dir_all(&wrappers).map_err(|e| format!("{}: {e}", wrappers.display()))?;
    let libs = library_dirs(&root_dir).join(":");
    for b in bins {
        let real = root_dir.join("usr/bin").join(b);
        let w = wrappers.join(b);
        let script = format!(
            "#!/bin/sh\n# Written by cargo xtask: QEMU from Debian's packages, unpacked under target/.\n\
             LD_LIBRARY_PATH='{libs}'${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}} exec '{}' \"$@\"\n",
            real.display()
        );
        fs::write(&w, script).map_err(|e| format!("{}: {e}", w.display()))?;
        fs::set_permissions(&w, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", w.display()))?;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut parts = vec![wrappers.clone()];
    parts.extend(std::env::split_paths(&path).filter(|p| p != &wrappers));
    let joined = std::env::join_paths(parts).map_err(|e| format!("PATH: {e}"))?;
    // Single-threaded here (before any board or test runs): children
    // inherit the new PATH.
    std::env::set_var("PATH", joined);
    if let Some(missing) = bins.iter().find(|b| !have(b)) {
        return Err(format!(
            "{missing} from {} does not start (`{missing} --version` failed): \
             delete target/qemu and run again",
            root_dir.display()
        ));
    }
    eprintln!(
        "xtask: using {} from {}",
        bins.join(", "),
        root_dir.display()
    );
    Ok(true)
}

/// The shared-library directories of the unpacked tree.
fn library_dirs(root_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for base in ["usr/lib", "lib"] {
        let b = root_dir.join(base);
        if let Ok(rd) = fs::read_dir(&b) {
            let mut multiarch: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && p.to_string_lossy().ends_with("-linux-gnu"))
                .collect();
            multiarch.sort();
            out.extend(multiarch.iter().map(|p| p.display().to_string()));
        }
        out.push(b.display().to_string());
    }
    out
}

/// apt options for private package lists and cache under `target/qemu/apt`;
/// the host's status file is read (to skip what it has) but never written.
fn apt_options(apt: &Path) -> Vec<String> {
    let mut o = vec![
        "-o".to_owned(),
        format!("Dir::State::Lists={}", apt.join("lists").display()),
        "-o".to_owned(),
        format!("Dir::Cache={}", apt.join("cache").display()),
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

/// Download `pkgs` and every package they depend on that the host does not
/// have, and unpack them into `target/qemu/root`.
fn fetch(pkgs: &[&str]) -> Result {
    let apt = dir().join("apt");
    for d in ["lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(apt.join(d)).map_err(|e| format!("{}: {e}", apt.display()))?;
    }
    let opts = apt_options(&apt);
    run(
        "apt-get update (private package lists under target/qemu/apt)",
        Command::new("apt-get").args(&opts).arg("update"),
    )?;
    let installed = host_packages()?;
    let wanted = closure(&opts, pkgs, &installed)?;
    eprintln!(
        "xtask: {} packages to fetch: {}",
        wanted.len(),
        wanted.join(" ")
    );
    let debs = apt.join("debs");
    let _ = fs::remove_dir_all(&debs);
    fs::create_dir_all(&debs).map_err(|e| format!("{}: {e}", debs.display()))?;
    run(
        "apt-get download (QEMU and the libraries the host lacks)",
        Command::new("apt-get")
            .args(&opts)
            .arg("download")
            .args(&wanted)
            .current_dir(&debs),
    )?;
    let root_dir = dir().join("root");
    fs::create_dir_all(&root_dir).map_err(|e| format!("{}: {e}", root_dir.display()))?;
    for pkg in pkgs {
        // Unpacked again below: not complete until its marker is back.
        let _ = fs::remove_file(marker(pkg));
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(&debs)
        .map_err(|e| format!("{}: {e}", debs.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    entries.sort();
    for deb in &entries {
        run(
            &format!("dpkg-deb -x {}", file_name(deb)),
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root_dir),
        )?;
    }
    relink_absolute_symlinks(&root_dir, &root_dir)?;
    for pkg in pkgs {
        fs::write(marker(pkg), wanted.join("\n"))
            .map_err(|e| format!("{}: {e}", marker(pkg).display()))?;
    }
    let _ = fs::remove_dir_all(&debs);
    Ok(())
}

/// Written once `pkg` and everything it needs are unpacked: a fetch cut
/// short is fetched again.
fn marker(pkg: &str) -> PathBuf {
    dir().join(format!("{pkg}.complete"))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Packages installed on the host (any version).
fn host_packages() -> Result<HashSet<String>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${db:Status-Abbrev}\n"])
        .output()
        .map_err(|e| format!("dpkg-query: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, status) = l.split_once('\t')?;
            status.starts_with("ii").then(|| name.to_owned())
        })
        .collect())
}

/// One `Depends`/`PreDepends` line group of `apt-cache depends`: the
/// alternatives, each a package or the providers of a virtual package.
type Group = Vec<Vec<String>>;

/// Parse `apt-cache depends` output into, per package, its dependency groups.
pub fn parse_depends(text: &str) -> Vec<(String, Vec<Group>)> {
    let mut out: Vec<(String, Vec<Group>)> = Vec::new();
    // Whether the previous dependency line ended with `|` (an alternative
    // follows).
    let mut or_next = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            out.push((line.trim().to_owned(), Vec::new()));
            or_next = false;
            continue;
        }
        let Some((_, groups)) = out.last_mut() else {
            continue;
        };
        if let Some(provider) = line.strip_prefix("    ") {
            // A provider of the virtual package named on the line before.
            if let Some(alt) = groups.last_mut().and_then(|g| g.last_mut()) {
                alt.push(provider.trim().to_owned());
            }
            continue;
        }
        let alternative = line.starts_with(" |");
        let body = line.trim_start_matches([' ', '|']);
        let Some((kind, name)) = body.split_once(": ") else {
            continue;
        };
        if kind != "Depends" && kind != "PreDepends" {
            or_next = false;
            continue;
        }
        let name = name.trim();
        // A virtual package (`<name>`) is never downloaded itself: its
        // providers follow on the next lines, indented further.
        let alt = if name.starts_with('<') {
            Vec::new()
        } else {
            vec![name.to_owned()]
        };
        if or_next {
            if let Some(g) = groups.last_mut() {
                g.push(alt);
            }
        } else {
            groups.push(vec![alt]);
        }
        or_next = alternative;
    }
    out
}

/// `pkgs` and, transitively, the first alternative of every dependency group
/// that no host package satisfies.
fn closure(opts: &[String], pkgs: &[&str], installed: &HashSet<String>) -> Result<Vec<String>> {
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = pkgs.iter().map(|p| (*p).to_owned()).collect();
    while !queue.is_empty() {
        let batch: Vec<String> = queue
            .drain(..)
            .filter(|p| wanted.insert(p.clone()))
            .collect();
        if batch.is_empty() {
            break;
        }
        let out = Command::new("apt-cache")
            .args(opts)
            .args([
                "depends",
                "--no-recommends",
                "--no-suggests",
                "--no-conflicts",
                "--no-breaks",
                "--no-replaces",
                "--no-enhances",
            ])
            .args(&batch)
            .output()
            .map_err(|e| format!("apt-cache depends: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "apt-cache depends {}: {}",
                batch.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        for (_, groups) in parse_depends(&String::from_utf8_lossy(&out.stdout)) {
            for group in groups {
                let satisfied = group
                    .iter()
                    .flatten()
                    .any(|p| installed.contains(p) || wanted.contains(p));
                if satisfied {
                    continue;
                }
                if let Some(first) = group.iter().flatten().next() {
                    queue.push_back(first.clone());
                }
            }
        }
    }
    Ok(wanted.into_iter().collect())
}

/// Point symlinks with absolute targets (`/usr/share/…`) into the unpacked
/// tree, so nothing resolves to the host's files by accident.
fn relink_absolute_symlinks(top: &Path, d: &Path) -> Result {
    let rd = fs::read_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
    for e in rd.flatten() {
        let p = e.path();
        let meta = fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            if let Ok(rel) = target.strip_prefix("/") {
                let inside = top.join(rel);
                if inside.exists() {
                    fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    std::os::unix::fs::symlink(&inside, &p)
                        .map_err(|e| format!("{}: {e}", p.display()))?;
                }
            }
        } else if meta.is_dir() {
            relink_absolute_symlinks(top, &p)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_groups_alternatives_and_virtuals() {
        let text = "qemu-system-x86\n  Depends: libc6\n |Depends: debconf\n  Depends: cdebconf\n  \
                    Depends: <libvirt-x>\n    provider-a\n    provider-b\n  Recommends: qemu-utils\n\
                    seabios\n  PreDepends: dpkg\n";
        let parsed = parse_depends(text);
        assert_eq!(parsed.len(), 2);
        let (name, groups) = &parsed[0];
        assert_eq!(name, "qemu-system-x86");
        assert_eq!(groups.len(), 3, "{groups:?}");
        assert_eq!(groups[0], vec![vec!["libc6".to_owned()]]);
        assert_eq!(
            groups[1],
            vec![vec!["debconf".to_owned()], vec!["cdebconf".to_owned()]]
        );
        assert_eq!(
            groups[2],
            vec![vec!["provider-a".to_owned(), "provider-b".to_owned()]]
        );
        assert_eq!(parsed[1].1, vec![vec![vec!["dpkg".to_owned()]]]);
    }

    #[test]
    fn every_board_executable_has_a_package() {
        for b in crate::BOARDS.iter() {
            assert!(package_of(b.qemu).is_some(), "{}", b.qemu);
        }
    }
}
