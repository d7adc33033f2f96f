//! Names for the addresses in a running process, and addresses for names
//! (feature `symbols`, on by default).
//!
//! The process's mappings come from `/proc/PID/maps`. For each mapped ELF file
//! the load bias is worked out from its `PT_LOAD` segments and the mapping
//! that holds them, so that a runtime address becomes the address the file's
//! symbol table and DWARF use. Functions, inlined frames, files and lines come
//! from gimli's `addr2line` (DWARF, with the ELF symbol table as fallback);
//! names are demangled (Rust legacy and v0). Kernel addresses are named from
//! `/proc/kallsyms` when it shows them (root, or `kptr_restrict` 0).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol};

use crate::record::Sample;

/// Why a name or an address could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SymbolError {
    /// `/proc/PID/maps` does not exist: no such process (or it exited).
    NoSuchProcess {
        /// The process id.
        pid: i32,
    },
    /// No symbol of any mapped ELF file has this name.
    NoSuchSymbol {
        /// The name asked for.
        name: String,
        /// How many ELF files were searched.
        files: usize,
    },
    /// Several symbols at different addresses match.
    Ambiguous {
        /// The name asked for.
        name: String,
        /// The matching symbols' full names.
        candidates: Vec<String>,
    },
    /// A file could not be read.
    Io {
        /// What was being read.
        what: String,
        /// The error.
        error: String,
    },
}

impl fmt::Display for SymbolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SymbolError::NoSuchProcess { pid } => {
                write!(f, "no process with id {pid} (/proc/{pid}/maps is missing)")
            }
            SymbolError::NoSuchSymbol { name, files } => write!(
                f,
                "no symbol named `{name}` in the {files} ELF file(s) mapped by the process; give a \
                 function or static name (`counter`, `module::COUNTER`; a static that is never \
                 used may have been optimised away, and a stripped binary has no symbol table) \
                 or watch an address with --addr"
            ),
            SymbolError::Ambiguous { name, candidates } => {
                write!(
                    f,
                    "`{name}` matches {} symbols; name one with its path: ",
                    candidates.len()
                )?;
                f.write_str(&candidates.join(", "))
            }
            SymbolError::Io { what, error } => write!(f, "cannot read {what}: {error}"),
        }
    }
}

impl std::error::Error for SymbolError {}

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Offset in the file of `start`.
    pub offset: u64,
    /// `r-xp` and so on.
    pub perms: String,
    /// The mapped file, if any (`[heap]`, `[stack]` and anonymous mappings
    /// have none).
    pub path: Option<PathBuf>,
}

/// Parse the text of `/proc/PID/maps`. Lines that do not parse are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(offset), Some(_dev), Some(_inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let hex = |s: &str| u64::from_str_radix(s, 16).ok();
        let (Some(start), Some(end), Some(offset)) = (hex(start), hex(end), hex(offset)) else {
            continue;
        };
        let path = f
            .next()
            .map(str::trim_start)
            .filter(|p| p.starts_with('/') && !p.ends_with(" (deleted)"));
        out.push(Mapping {
            start,
            end,
            offset,
            perms: perms.to_owned(),
            path: path.map(PathBuf::from),
        });
    }
    out
}

/// The load bias of an ELF file mapped by `maps`: runtime address minus the
/// file's virtual address. `segments` are its `PT_LOAD`s as
/// `(p_vaddr, p_offset)`.
pub fn load_bias(path: &Path, maps: &[Mapping], segments: &[(u64, u64)]) -> Option<u64> {
    maps.iter()
        .filter(|m| m.path.as_deref() == Some(path))
        .find_map(|m| {
            segments.iter().find_map(|&(vaddr, offset)| {
                let len = m.end - m.start;
                (m.offset <= offset && offset - m.offset < len)
                    .then(|| m.start.wrapping_add(offset - m.offset).wrapping_sub(vaddr))
            })
        })
}

/// A source position for an address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The runtime address this frame was found for.
    pub addr: u64,
    /// The function (demangled, without Rust's hash), if known.
    pub function: Option<String>,
    /// Source file, if the DWARF says.
    pub file: Option<String>,
    /// Source line, if the DWARF says.
    pub line: Option<u32>,
    /// This frame was inlined into the next one (same address).
    pub inlined: bool,
    /// The mapped file the address is in (`[kernel]` for kernel addresses).
    pub object: Option<String>,
}

impl Frame {
    /// `function`, or the address in hex when unknown.
    pub fn name(&self) -> String {
        self.function
            .clone()
            .unwrap_or_else(|| format!("{:#x}", self.addr))
    }

    /// `file:line`, or the object file, or nothing.
    pub fn place(&self) -> Option<String> {
        match (&self.file, self.line, &self.object) {
            (Some(file), Some(line), _) => Some(format!("{file}:{line}")),
            (Some(file), None, _) => Some(file.clone()),
            (None, _, Some(object)) => Some(object.clone()),
            _ => None,
        }
    }
}

/// Where an address of a call chain comes from, which decides the address
/// looked up: a return address is one past its call, so the call's line is
/// that of the byte before it; on x86 a watchpoint hit's IP is one past the
/// access (a trap), on arm64 it is the access itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The sampled IP.
    Hit,
    /// A return address.
    Return,
}

/// A symbol found by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Its name, demangled.
    pub name: String,
    /// Its runtime address in the process.
    pub addr: u64,
    /// Its size from the symbol table (0 if unknown).
    pub size: u64,
    /// The file that defines it.
    pub object: PathBuf,
}

struct Loaded {
    loader: addr2line::Loader,
    bias: u64,
}

/// Resolves addresses of one process (see the module docs). Files are loaded
/// once, when first needed.
pub struct Symbolizer {
    pid: i32,
    maps: Vec<Mapping>,
    objects: HashMap<PathBuf, Option<Loaded>>,
    kernel: Option<Vec<(u64, String)>>,
}

impl fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Symbolizer")
            .field("pid", &self.pid)
            .field("mappings", &self.maps.len())
            .finish()
    }
}

/// The demangled form of a symbol name (Rust without its hash), or the name.
pub fn demangle(raw: &str) -> String {
    match rustc_demangle::try_demangle(raw) {
        Ok(d) => format!("{d:#}"),
        Err(_) => raw.to_owned(),
    }
}

/// The `PT_LOAD` segments of an ELF file as `(p_vaddr, p_offset)`.
fn segments(file: &object::File<'_>) -> Vec<(u64, u64)> {
    file.segments()
        .map(|s| (s.address(), s.file_range().0))
        .collect()
}

impl Symbolizer {
    /// Read `/proc/PID/maps`.
    pub fn new(pid: i32) -> Result<Self, SymbolError> {
        let mut s = Symbolizer {
            pid,
            maps: Vec::new(),
            objects: HashMap::new(),
            kernel: None,
        };
        s.refresh()?;
        Ok(s)
    }

    /// Read `/proc/PID/maps` again (libraries loaded since).
    pub fn refresh(&mut self) -> Result<(), SymbolError> {
        let path = format!("/proc/{}/maps", self.pid);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SymbolError::NoSuchProcess { pid: self.pid },
            _ => SymbolError::Io {
                what: path,
                error: e.to_string(),
            },
        })?;
        self.maps = parse_maps(&text);
        Ok(())
    }

    /// The mappings read last.
    pub fn maps(&self) -> &[Mapping] {
        &self.maps
    }

    fn load(&mut self, path: &Path) -> Option<&Loaded> {
        if !self.objects.contains_key(path) {
            let loaded = (|| {
                let data = std::fs::read(path).ok()?;
                let file = object::File::parse(&*data).ok()?;
                let bias = load_bias(path, &self.maps, &segments(&file))?;
                let loader = addr2line::Loader::new(path).ok()?;
                Some(Loaded { loader, bias })
            })();
            self.objects.insert(path.to_owned(), loaded);
        }
        self.objects.get(path).and_then(Option::as_ref)
    }

    /// The frames at `addr`, innermost (inlined) first; one frame with only
    /// the address when nothing is known.
    pub fn frames(&mut self, addr: u64, site: Site) -> Vec<Frame> {
        let back = match site {
            Site::Return => 1,
            Site::Hit if cfg!(target_arch = "x86_64") => 1,
            Site::Hit => 0,
        };
        let unknown = Frame {
            addr,
            ..Frame::default()
        };
        let Some(path) = self
            .maps
            .iter()
            .find(|m| m.start <= addr && addr < m.end)
            .and_then(|m| m.path.clone())
        else {
            return vec![unknown];
        };
        let object = Some(path.display().to_string());
        let Some(loaded) = self.load(&path) else {
            return vec![Frame { object, ..unknown }];
        };
        let probe = addr.wrapping_sub(loaded.bias).wrapping_sub(back);
        let mut out = Vec::new();
        if let Ok(mut iter) = loaded.loader.find_frames(probe) {
            while let Ok(Some(f)) = iter.next() {
                let function = f
                    .function
                    .as_ref()
                    .and_then(|n| n.demangle().ok())
                    .map(|n| n.into_owned());
                let (file, line) = f
                    .location
                    .map_or((None, None), |l| (l.file.map(str::to_owned), l.line));
                out.push(Frame {
                    addr,
                    function,
                    file,
                    line,
                    inlined: true,
                    object: object.clone(),
                });
            }
        }
        if out.iter().all(|f| f.function.is_none()) {
            let function = loaded.loader.find_symbol(probe).map(demangle);
            let (file, line) = out
                .first()
                .map_or((None, None), |f| (f.file.clone(), f.line));
            out = vec![Frame {
                addr,
                function,
                file,
                line,
                inlined: true,
                object,
            }];
        }
        if let Some(last) = out.last_mut() {
            last.inlined = false;
        }
        out
    }

    /// The kernel function at `addr`, from `/proc/kallsyms`.
    pub fn kernel_frame(&mut self, addr: u64) -> Frame {
        let table = self.kernel.get_or_insert_with(|| {
            let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
            let mut t: Vec<(u64, String)> = text
                .lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    let a = u64::from_str_radix(f.next()?, 16).ok()?;
                    let kind = f.next()?;
                    let name = f.next()?;
                    (a != 0 && matches!(kind, "t" | "T")).then(|| (a, name.to_owned()))
                })
                .collect();
            t.sort_unstable();
            t
        });
        let i = table.partition_point(|(a, _)| *a <= addr);
        let function = i.checked_sub(1).map(|i| table[i].1.clone());
        Frame {
            addr,
            function,
            object: Some("[kernel]".to_owned()),
            ..Frame::default()
        }
    }

    /// The whole call chain of a sample, innermost first: kernel frames (if
    /// any), then user frames, inlined frames expanded.
    pub fn chain(&mut self, sample: &Sample) -> Vec<Frame> {
        let mut out: Vec<Frame> = sample
            .kernel_chain
            .iter()
            .map(|&a| self.kernel_frame(a))
            .collect();
        let user: &[u64] = if sample.user_chain.is_empty() && !sample.kernel_mode {
            core::slice::from_ref(&sample.ip)
        } else {
            &sample.user_chain
        };
        for (i, &a) in user.iter().enumerate() {
            // The first user frame of a user-mode hit is the hit itself; in
            // a kernel-mode hit every user frame is a return address (the
            // system call's).
            let site = if i == 0 && !sample.kernel_mode {
                Site::Hit
            } else {
                Site::Return
            };
            out.extend(self.frames(a, site));
        }
        out
    }

    /// Find a symbol by name in every ELF file the process maps (the
    /// executable first): the exact symbol name, its demangled path (Rust,
    /// without the hash), or a demangled path that ends with `::name`
    /// (`COUNTER` or `module::COUNTER` for `crate::module::COUNTER`). Exact
    /// matches win over suffix matches; several at different addresses are
    /// [`SymbolError::Ambiguous`].
    pub fn lookup(&mut self, name: &str) -> Result<Symbol, SymbolError> {
        let mut paths: Vec<PathBuf> = Vec::new();
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid)).ok();
        for m in &self.maps {
            if let Some(p) = &m.path {
                if !paths.contains(p) {
                    paths.push(p.clone());
                }
            }
        }
        if let Some(exe) = exe {
            if let Some(i) = paths.iter().position(|p| *p == exe) {
                let e = paths.remove(i);
                paths.insert(0, e);
            }
        }
        let suffix = format!("::{name}");
        let (mut exact, mut ends) = (Vec::new(), Vec::new());
        let mut files = 0;
        for path in &paths {
            let Ok(data) = std::fs::read(path) else {
                continue;
            };
            let Ok(file) = object::File::parse(&*data) else {
                continue;
            };
            files += 1;
            let Some(bias) = load_bias(path, &self.maps, &segments(&file)) else {
                continue;
            };
            for sym in file.symbols().chain(file.dynamic_symbols()) {
                if sym.is_undefined() {
                    continue;
                }
                let Ok(raw) = sym.name() else { continue };
                let full = demangle(raw);
                let found = || Symbol {
                    name: full.clone(),
                    addr: sym.address().wrapping_add(bias),
                    size: sym.size(),
                    object: path.clone(),
                };
                if raw == name || full == name {
                    exact.push(found());
                } else if full.ends_with(&suffix) {
                    ends.push(found());
                }
            }
        }
        let mut found = if exact.is_empty() { ends } else { exact };
        found.sort_by_key(|s| s.addr);
        found.dedup_by_key(|s| s.addr);
        match found.len() {
            0 => Err(SymbolError::NoSuchSymbol {
                name: name.to_owned(),
                files,
            }),
            1 => Ok(found.remove(0)),
            _ => Err(SymbolError::Ambiguous {
                name: name.to_owned(),
                candidates: found
                    .into_iter()
                    .map(|s| format!("{} ({:#x})", s.name, s.addr))
                    .collect(),
            }),
        }
    }
}

/// Samples grouped by call chain, as `perf report -g` groups them.
#[derive(Clone, Debug, Default)]
pub struct ChainReport {
    depth: usize,
    groups: HashMap<Vec<String>, (u64, Vec<Frame>)>,
    samples: u64,
}

/// One group of a [`ChainReport`].
#[derive(Clone, Debug, PartialEq)]
pub struct ChainEntry {
    /// Samples with this chain.
    pub count: u64,
    /// `count` as a percentage of all samples added.
    pub percent: f64,
    /// The chain, innermost first (file and line from its first sample).
    pub frames: Vec<Frame>,
}

impl ChainReport {
    /// Group by the innermost `depth` frames (inlined frames count; 0 means
    /// the whole chain).
    pub fn new(depth: usize) -> Self {
        ChainReport {
            depth,
            ..Self::default()
        }
    }

    /// Add one sample's chain (innermost first, as from [`Symbolizer::chain`]).
    pub fn add(&mut self, mut frames: Vec<Frame>) {
        if self.depth > 0 {
            frames.truncate(self.depth);
        }
        let key: Vec<String> = frames.iter().map(Frame::name).collect();
        self.groups.entry(key).or_insert((0, frames)).0 += 1;
        self.samples += 1;
    }

    /// Samples added.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The groups, most samples first (ties by name).
    pub fn entries(&self) -> Vec<ChainEntry> {
        let mut v: Vec<ChainEntry> = self
            .groups
            .values()
            .map(|(count, frames)| ChainEntry {
                count: *count,
                percent: if self.samples == 0 {
                    0.0
                } else {
                    *count as f64 * 100.0 / self.samples as f64
                },
                frames: frames.clone(),
            })
            .collect();
        v.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                let names = |e: &ChainEntry| e.frames.iter().map(Frame::name).collect::<Vec<_>>();
                names(a).cmp(&names(b))
            })
        });
        v
    }
}

/// No system calls: these also run under Miri
/// (`cargo +nightly miri test -p hwbp-linux --lib pure_tests`).
#[cfg(test)]
mod pure_tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a3c000 r--p 00000000 fd:01 1234                       /usr/bin/target
55d0c0a3c000-55d0c0b00000 r-xp 0003b000 fd:01 1234                       /usr/bin/target
55d0c0b00000-55d0c0b10000 rw-p 000ff000 fd:01 1234                       /usr/bin/target
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000001000 r-xp 00000000 fd:01 99                         /lib/gone.so (deleted)
";

    #[test]
    fn maps_lines_parse() {
        let m = parse_maps(MAPS);
        assert_eq!(m.len(), 5);
        assert_eq!(m[1].start, 0x55d0_c0a3_c000);
        assert_eq!(m[1].offset, 0x3b000);
        assert_eq!(m[1].perms, "r-xp");
        assert_eq!(m[1].path.as_deref(), Some(Path::new("/usr/bin/target")));
        assert_eq!(m[3].path, None, "[heap]");
        assert_eq!(m[4].path, None, "deleted files are not read");
        assert!(parse_maps("garbage\n1-2 r\n").is_empty());
    }

    #[test]
    fn load_bias_from_any_segment_in_a_mapping() {
        let m = parse_maps(MAPS);
        let exe = Path::new("/usr/bin/target");
        // A PIE: segments at vaddr = offset (+ 0x1000 for the text segment,
        // whose offset is not page aligned).
        let segs = [(0, 0), (0x3c000 + 0x10, 0x3b010)];
        assert_eq!(load_bias(exe, &m, &segs), Some(0x55d0_c0a0_0000));
        // Only the text segment mapped: the same bias from it.
        assert_eq!(
            load_bias(exe, &m[1..2], &segs),
            Some(0x55d0_c0a3_c000 + 0x10 - 0x3c010)
        );
        // A non-PIE executable at its link address has bias 0.
        let fixed = parse_maps("400000-401000 r-xp 00000000 fd:01 5 /bin/fixed\n");
        assert_eq!(
            load_bias(Path::new("/bin/fixed"), &fixed, &[(0x400000, 0)]),
            Some(0)
        );
        assert_eq!(load_bias(Path::new("/other"), &m, &segs), None);
    }

    #[test]
    fn rust_names_demangle_without_hash() {
        assert_eq!(
            demangle("_ZN4demo7COUNTER17h0123456789abcdefE"),
            "demo::COUNTER"
        );
        assert_eq!(demangle("counter"), "counter");
    }

    #[test]
    fn reports_group_by_chain_and_sort_by_count() {
        let f = |name: &str| Frame {
            function: Some(name.to_owned()),
            ..Frame::default()
        };
        let mut r = ChainReport::new(2);
        for _ in 0..3 {
            r.add(vec![f("write_a"), f("path_a"), f("main")]);
        }
        r.add(vec![f("write_b"), f("path_b"), f("other")]);
        r.add(vec![f("write_a"), f("path_a"), f("elsewhere")]);
        let e = r.entries();
        assert_eq!(r.samples(), 5);
        assert_eq!(e.len(), 2, "depth 2 merges chains that differ further out");
        assert_eq!((e[0].count, e[0].percent), (4, 80.0));
        assert_eq!(
            e[0].frames.iter().map(Frame::name).collect::<Vec<_>>(),
            ["write_a", "path_a"]
        );
        assert_eq!((e[1].count, e[1].percent), (1, 20.0));
        let unknown = Frame {
            addr: 0x1234,
            ..Frame::default()
        };
        assert_eq!(unknown.name(), "0x1234");
        assert_eq!(
            Frame {
                file: Some("a.rs".into()),
                line: Some(3),
                ..unknown
            }
            .place()
            .as_deref(),
            Some("a.rs:3")
        );
    }
}
