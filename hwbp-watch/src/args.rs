//! Command-line arguments, parsed by hand.

use std::time::Duration;

/// What to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// A symbol of the target, resolved in its mappings.
    Symbol(String),
    /// An address in the target.
    Addr(u64),
}

/// Which accesses trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reads or writes.
    ReadWrite,
    /// Writes.
    Write,
    /// Execution.
    Exec,
}

impl Kind {
    /// The short name used in output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ReadWrite => "rw",
            Kind::Write => "w",
            Kind::Exec => "x",
        }
    }
}

/// Everything the command line says.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// The target process.
    pub pid: i32,
    /// What to watch in it.
    pub what: What,
    /// `--len`.
    pub len: Option<u64>,
    /// `--rw`, `--w` or `--x`.
    pub kind: Kind,
    /// `--duration`; `None` runs until the process exits or Ctrl-C.
    pub duration: Option<Duration>,
    /// `--json`.
    pub json: bool,
    /// `--period`: record every Nth hit.
    pub period: u64,
    /// `--depth`: frames per call chain in the report (0: all).
    pub depth: usize,
    /// `--pages`: data pages per ring buffer.
    pub pages: usize,
    /// `--lines`: live lines per second at most.
    pub lines: u32,
}

/// The usage text.
pub const USAGE: &str = "\
usage: hwbp-watch --pid PID (--symbol NAME | --addr ADDR) [options]

Watch memory (or code) of a running process with a hardware breakpoint and
report who touched it: live lines, then samples grouped by call chain.

  --pid PID        the process (all its threads, and those they create)
  --symbol NAME    a symbol of the process: `counter`, `module::COUNTER`,
                   a full Rust path or a C name
  --addr ADDR      an address in the process (hex with 0x, or decimal)
  --len N          bytes to watch: 1, 2, 4 or 8 (default: the symbol's size
                   when it is one of those, else required)
  --w | --rw | --x trigger on writes (default), reads or writes, execution
  --duration S     stop after S seconds (default: when the process exits or
                   on Ctrl-C)
  --period N       record every Nth hit (default 1); counts stay exact
  --depth N        call-chain frames per report group (default 8; 0 = all)
  --pages N        ring buffer data pages per CPU, a power of two (default 64)
  --lines N        live lines per second at most (default 20; 0 = none)
  --json           JSON lines on stdout instead of text
  -h, --help       this text
";

fn number(flag: &str, v: &str) -> Result<u64, String> {
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|_| format!("{flag}: `{v}` is not a number"))
}

/// Parse the arguments after the program name. `Ok(None)` means `--help`.
pub fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut pid = None;
    let mut what = None;
    let mut out = Args {
        pid: 0,
        what: What::Addr(0),
        len: None,
        kind: Kind::Write,
        duration: None,
        json: false,
        period: 1,
        depth: 8,
        pages: 64,
        lines: 20,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "--pid" => {
                let v = value()?;
                let p: i32 = v
                    .parse()
                    .map_err(|_| format!("--pid: `{v}` is not a process id"))?;
                if p <= 0 {
                    return Err(format!("--pid: `{v}` is not a process id"));
                }
                pid = Some(p);
            }
            "--symbol" | "--addr" if what.is_some() => {
                return Err("give one of --symbol and --addr".to_owned());
            }
            "--symbol" => what = Some(What::Symbol(value()?)),
            "--addr" => what = Some(What::Addr(number(flag, &value()?)?)),
            "--len" => out.len = Some(number(flag, &value()?)?),
            "--w" => out.kind = Kind::Write,
            "--rw" => out.kind = Kind::ReadWrite,
            "--x" => out.kind = Kind::Exec,
            "--json" => out.json = true,
            "--duration" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .map_err(|_| format!("--duration: `{v}` is not a number of seconds"))?;
                out.duration = Some(
                    Duration::try_from_secs_f64(s)
                        .map_err(|_| format!("--duration: `{v}` is out of range"))?,
                );
            }
            "--period" => {
                out.period = number(flag, &value()?)?;
                if out.period == 0 {
                    return Err("--period: must be at least 1".to_owned());
                }
            }
            "--depth" => {
                out.depth = usize::try_from(number(flag, &value()?)?).map_err(|e| e.to_string())?
            }
            "--pages" => {
                out.pages = usize::try_from(number(flag, &value()?)?).map_err(|e| e.to_string())?;
                if !out.pages.is_power_of_two() {
                    return Err("--pages: must be a power of two".to_owned());
                }
            }
            "--lines" => {
                out.lines = u32::try_from(number(flag, &value()?)?).map_err(|e| e.to_string())?
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    out.pid = pid.ok_or("--pid is required")?;
    out.what = what.ok_or("give --symbol NAME or --addr ADDR")?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<Args>, String> {
        parse(&s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn a_full_command_line() {
        let a = p("--pid 42 --symbol demo::COUNTER --len 4 --rw --duration 1.5 --json --period 10 --depth=3")
            .unwrap()
            .unwrap();
        assert_eq!(a.pid, 42);
        assert_eq!(a.what, What::Symbol("demo::COUNTER".into()));
        assert_eq!(a.len, Some(4));
        assert_eq!(a.kind, Kind::ReadWrite);
        assert_eq!(a.duration, Some(Duration::from_millis(1500)));
        assert!(a.json);
        assert_eq!((a.period, a.depth, a.pages, a.lines), (10, 3, 64, 20));
        let b = p("--addr 0x7ffd1000 --pid 7 --x").unwrap().unwrap();
        assert_eq!(
            (b.what, b.kind, b.len, b.duration),
            (What::Addr(0x7ffd_1000), Kind::Exec, None, None)
        );
        assert_eq!(
            p("--addr 4096 --pid 7").unwrap().unwrap().what,
            What::Addr(4096)
        );
        assert_eq!(p("--help"), Ok(None));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        for (line, want) in [
            ("--symbol x", "--pid is required"),
            ("--pid 3", "give --symbol NAME or --addr ADDR"),
            (
                "--pid 3 --symbol a --addr 1",
                "give one of --symbol and --addr",
            ),
            ("--pid -3 --symbol a", "not a process id"),
            ("--pid 3 --addr zz", "`zz` is not a number"),
            ("--pid 3 --symbol", "--symbol needs a value"),
            ("--pid 3 --symbol a --period 0", "at least 1"),
            ("--pid 3 --symbol a --pages 3", "power of two"),
            (
                "--pid 3 --symbol a --duration soon",
                "not a number of seconds",
            ),
            (
                "--pid 3 --symbol a --frobnicate",
                "unknown argument `--frobnicate`",
            ),
        ] {
            let got = p(line).unwrap_err();
            assert!(got.contains(want), "{line}: {got}");
        }
    }
}
