//! `cargo xtask bench`: run the scale benchmarks of issue 14 and print one
//! summary table: each goal, the figure measured, the baseline measured in
//! the same run, their ratio, the bound, met or not.
//!
//! Timings come from criterion's `target/criterion/<group>/<id>/new/estimates.json`
//! (the median), written by this run (older files are ignored); register
//! writes, peak stack and sizes from the files the benches leave in
//! `target/hwbp-bench/`. See `BENCHMARKS.md` for what each row measures.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::{cargo, root, run, Result};

/// The hwbp-core benches that measure the goals (`reserve` predates them).
const CORE_BENCHES: [&str; 4] = ["switch", "fork", "table", "stack"];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Run every bench (largest shapes included) and print the summary; with
/// `summary_only`, print the summary of the figures already on disk (of
/// whichever run left them) without running anything.
pub fn bench(summary_only: bool) -> Result {
    if summary_only {
        return report(SystemTime::UNIX_EPOCH, &[]);
    }
    let started = SystemTime::now();
    // One bench at a time, carrying on past a failure (a shape that
    // crashes must not hide the others' figures): the summary says what
    // failed, and so does the exit status.
    let mut failed = Vec::new();
    let benches = CORE_BENCHES
        .iter()
        .map(|b| ("hwbp-core", *b))
        .chain([("hwbp-linux", "open_close")]);
    for (krate, b) in benches {
        let what = format!("benchmark {krate} {b} (HWBP_BENCH_FULL=1)");
        let status = run(
            &what,
            cargo()
                .args(["bench", "-p", krate, "--bench", b])
                .env("HWBP_BENCH_FULL", "1"),
        );
        if let Err(e) = status {
            eprintln!("xtask: {e}");
            failed.push(format!("{krate} {b}"));
        }
    }
    report(started, &failed)
}

/// Print and write the summary of the figures written since `since`.
fn report(since: SystemTime, failed: &[String]) -> Result {
    let facts = Facts {
        criterion: target_dir().join("criterion"),
        out: target_dir().join("hwbp-bench"),
        since,
    };
    let table = summary(&facts);
    let when = if since == SystemTime::UNIX_EPOCH {
        format!(
            "Figures on disk from the last `cargo xtask bench` run, summarised {}",
            date()
        )
    } else {
        format!("Measured {}", date())
    };
    let header = format!(
        "{when} on {} ({} CPUs online), `cargo xtask bench`.\n\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let failures = if failed.is_empty() {
        String::new()
    } else {
        format!(
            "\nBenches that failed (their rows are missing): {}.\n",
            failed.join(", ")
        )
    };
    let text = format!("{header}{table}{failures}");
    println!("\n{text}");
    let _ = fs::create_dir_all(&facts.out);
    let path = facts.out.join("summary.md");
    fs::write(&path, &text).map_err(|e| format!("write {}: {e}", path.display()))?;
    eprintln!("xtask: summary written to {}", path.display());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("benches failed: {}", failed.join(", ")))
    }
}

/// Where this run's figures are.
struct Facts {
    criterion: PathBuf,
    out: PathBuf,
    since: SystemTime,
}

impl Facts {
    /// The median time in ns of `group/id`, if this run measured it.
    fn time(&self, group: &str, id: &str) -> Option<f64> {
        let path = self
            .criterion
            .join(group)
            .join(id)
            .join("new/estimates.json");
        let fresh = fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= self.since);
        if !fresh {
            return None;
        }
        median(&fs::read_to_string(path).ok()?)
    }

    /// The ids this run measured in `group`, as numbers (ascending).
    fn numeric_ids(&self, group: &str) -> Vec<u64> {
        let mut ids: Vec<u64> = fs::read_dir(self.criterion.join(group))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|id: &u64| self.time(group, &id.to_string()).is_some())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Groups whose name starts with `prefix`: (the rest, group), sorted by
    /// the rest as a number, then as text.
    fn groups(&self, prefix: &str) -> Vec<(String, String)> {
        let mut groups: Vec<(String, String)> = fs::read_dir(&self.criterion)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                let rest = name.strip_prefix(prefix)?.to_owned();
                Some((rest, name))
            })
            .collect();
        groups.sort_by_key(|(rest, _)| (rest.parse::<u64>().unwrap_or(u64::MAX), rest.clone()));
        groups
    }

    /// A file the benches left, if this run wrote it.
    fn file(&self, name: &str) -> Option<String> {
        let path = self.out.join(name);
        let fresh = fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= self.since);
        fresh.then(|| fs::read_to_string(path).ok()).flatten()
    }
}

/// `median.point_estimate` of criterion's `estimates.json`.
fn median(json: &str) -> Option<f64> {
    let rest = &json[json.find("\"median\":")?..];
    let rest = &rest[rest.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// How a ratio is judged.
#[derive(Clone, Copy)]
enum Bound {
    /// measured / baseline at most this.
    AtMost(f64),
    /// baseline / measured at least this (the baseline is the slow one).
    SpeedupAtLeast(f64),
    /// Shown for context only.
    Info,
}

/// One row of the table.
struct Row {
    goal: &'static str,
    what: String,
    measured: String,
    baseline: String,
    ratio: String,
    bound: String,
    met: &'static str,
}

impl Row {
    fn missing(goal: &'static str, what: String, why: &str) -> Self {
        Row {
            goal,
            what,
            measured: "—".into(),
            baseline: "—".into(),
            ratio: "—".into(),
            bound: "—".into(),
            met: if why.is_empty() { "not measured" } else { "no" },
        }
        .why(why)
    }

    fn why(mut self, why: &str) -> Self {
        if !why.is_empty() {
            self.what = format!("{} ({why})", self.what);
        }
        self
    }

    /// A row comparing two times.
    fn times(
        goal: &'static str,
        what: String,
        measured: Option<f64>,
        baseline: Option<f64>,
        bound: Bound,
    ) -> Self {
        let (Some(m), Some(b)) = (measured, baseline) else {
            return Row::missing(goal, what, "");
        };
        let (ratio, bound_text, met) = match bound {
            Bound::AtMost(x) => (m / b, format!("≤ {x}×"), yes(m / b <= x)),
            Bound::SpeedupAtLeast(x) => (b / m, format!("≥ {x}× faster"), yes(b / m >= x)),
            Bound::Info => (m / b, "—".into(), "info"),
        };
        Row {
            goal,
            what,
            measured: ns(m),
            baseline: ns(b),
            ratio: format!("{ratio:.2}×"),
            bound: bound_text,
            met,
        }
    }
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "NO"
    }
}

/// A time in ns, with a unit a reader takes in at a glance.
fn ns(t: f64) -> String {
    if t >= 1e6 {
        format!("{:.2} ms", t / 1e6)
    } else if t >= 1e3 {
        format!("{:.2} µs", t / 1e3)
    } else {
        format!("{t:.0} ns")
    }
}

/// `group/<largest id>` against `group/<smallest id>`.
fn sweep(f: &Facts, goal: &'static str, group: &str, what: &str, bound: Bound) -> Row {
    let ids = f.numeric_ids(group);
    let (Some(lo), Some(hi)) = (ids.first(), ids.last()) else {
        return Row::missing(goal, format!("{what}: `{group}`"), "");
    };
    Row::times(
        goal,
        format!("{what}: `{group}/{hi}` vs `{group}/{lo}`"),
        f.time(group, &hi.to_string()),
        f.time(group, &lo.to_string()),
        bound,
    )
}

fn summary(f: &Facts) -> String {
    let mut rows = Vec::new();
    // Goal 1.
    for (group, what) in [
        ("switch", "context switch (sched_out + sched_in), 8 live"),
        ("rotate", "rotate, 8 flexible on 4 registers"),
        ("hit", "precise hit (handle_exception)"),
    ] {
        rows.push(sweep(f, "1", group, what, Bound::AtMost(1.5)));
    }
    let events = f.numeric_ids("switch").last().copied().unwrap_or(64);
    for (name, what, max) in [
        ("unchanged", "register writes, switch to the same task", 0),
        (
            "changed",
            "register writes, switch between tasks (4 changed registers + 1 control)",
            5,
        ),
    ] {
        let file = format!("writes-{name}-{events}");
        rows.push(
            match f.file(&file).and_then(|s| s.trim().parse::<u64>().ok()) {
                Some(n) => Row {
                    goal: "1",
                    what: format!("{what}, EVENTS = {events}"),
                    measured: n.to_string(),
                    baseline: "—".into(),
                    ratio: "—".into(),
                    bound: format!("≤ {max}"),
                    met: yes(n <= max),
                },
                None => Row::missing("1", what.into(), ""),
            },
        );
    }
    // Goal 2.
    rows.push(sweep(
        f,
        "2",
        "fork-empty",
        "fork of a task with no breakpoints",
        Bound::AtMost(1.5),
    ));
    for (cpus, group) in f.groups("churn-") {
        let full = f.time(&group, "full");
        let table = f.time(&group, "table");
        let without = full.zip(table).map(|(a, t)| a - t);
        rows.push(Row::times(
            "2",
            format!(
                "fork + exit, 4 inherited pinned, 64 × 4 others, {cpus} CPUs: \
                 `{group}/full` vs accounting disabled (`full − table`)"
            ),
            full,
            without,
            Bound::AtMost(1.10),
        ));
        rows.push(Row::times(
            "2",
            format!("the same vs a task with no breakpoints (`{group}/none`)"),
            full,
            f.time(&group, "none"),
            Bound::Info,
        ));
    }
    // Goal 3.
    let stack = f.file("stack-worst.tsv").unwrap_or_default();
    let widest = stack
        .lines()
        .filter_map(|l| l.split('x').next()?.parse::<u64>().ok())
        .max();
    rows.push(match widest {
        Some(n) => Row {
            goal: "3",
            what: "most CPUs a manager was built and run with".into(),
            measured: n.to_string(),
            baseline: "—".into(),
            ratio: "—".into(),
            bound: "≥ 1024".into(),
            met: yes(n >= 1024),
        },
        None => Row::missing("3", "most CPUs a manager ran with".into(), ""),
    });
    let memory = f.file("memory.tsv").unwrap_or_default();
    let bytes = |what: &str, unit: &str| {
        memory.lines().find_map(|l| {
            let mut c = l.split('\t');
            (c.next()? == what && c.next()? == unit)
                .then(|| c.next()?.parse::<f64>().ok())
                .flatten()
        })
    };
    rows.push(
        match (
            bytes("ConstraintTable, 256 CPUs", "per task"),
            bytes("ConstraintTable, 1 CPU", "per task"),
        ) {
            (Some(wide), Some(one)) => Row {
                goal: "3",
                what: "constraint table bytes per task, 256 CPUs vs 1".into(),
                measured: format!("{wide:.0} B"),
                baseline: format!("{one:.0} B"),
                ratio: format!("{:.2}×", wide / one),
                bound: "≤ 1.1×".into(),
                met: yes(wide / one <= 1.1),
            },
            _ => Row::missing("3", "constraint table bytes per task".into(), ""),
        },
    );
    // Goal 4.
    for (group, what) in [
        ("every-cpu", "pinned task request on every CPU"),
        ("all-cpus", "pinned AllCpus request"),
        ("cpu0-task", "pinned task request on CPU 0"),
    ] {
        rows.push(sweep(f, "4", group, what, Bound::AtMost(2.0)));
    }
    for (_, group) in f.groups("seed-") {
        rows.push(Row::times(
            "4",
            format!("AllCpus check vs the seed-era task walk, same data: `{group}`"),
            f.time(&group, "table"),
            f.time(&group, "seed"),
            Bound::SpeedupAtLeast(1000.0),
        ));
    }
    let tasks = f.numeric_ids("tasks");
    let few = tasks.first().map(|n| (n, f.time("tasks", &n.to_string())));
    for n in tasks.iter().skip(1) {
        rows.push(Row::times(
            "4",
            format!(
                "new task's request with {n} tasks vs {} tasks",
                few.map_or(0, |p| *p.0)
            ),
            f.time("tasks", &n.to_string()),
            few.and_then(|p| p.1),
            Bound::AtMost(2.0),
        ));
    }
    for n in f.numeric_ids("tasks-99pct") {
        rows.push(Row::times(
            "4",
            format!(
                "new task's request, task map 99% full (TASKS = {n}) vs {} tasks",
                few.map_or(0, |p| *p.0)
            ),
            f.time("tasks-99pct", &n.to_string()),
            few.and_then(|p| p.1),
            Bound::AtMost(2.0),
        ));
    }
    if let Some(why) = f.file("tasks-broken") {
        rows.push(Row::missing(
            "4",
            "the largest task shapes".into(),
            &format!("broken, not measured: {}", why.trim()),
        ));
    }
    // Goal 5.
    rows.push(Row {
        goal: "5",
        what: "correctness at any accepted capacity: property tests, not a bench".into(),
        measured: "—".into(),
        baseline: "—".into(),
        ratio: "—".into(),
        bound: "—".into(),
        met: "see tests",
    });
    // Goal 6.
    for line in stack.lines() {
        let mut c = line.split('\t');
        let (Some(shape), Some(entry), Some(b)) = (c.next(), c.next(), c.next()) else {
            continue;
        };
        let Ok(b) = b.parse::<u64>() else { continue };
        rows.push(Row {
            goal: "6",
            what: format!("peak stack, CPUS×EVENTS×TASKS = {shape}: worst entry point `{entry}`"),
            measured: format!("{b} B"),
            baseline: "—".into(),
            ratio: "—".into(),
            bound: "≤ 4096 B".into(),
            met: yes(b <= 4096),
        });
    }
    // Goal 7.
    rows.push(Row::times(
        "7",
        "hit, 16 watchpoints: address-only vs precise".into(),
        f.time("dispatch", "address-16"),
        f.time("dispatch", "precise-16"),
        Bound::AtMost(2.0),
    ));
    rows.push(Row::times(
        "7",
        "address-only hit, 16 watchpoints vs 1".into(),
        f.time("dispatch", "address-16"),
        f.time("dispatch", "address-1"),
        Bound::Info,
    ));
    // Goal 8.
    for kind in ["count", "signal"] {
        let hwbp = f.time("linux-open4", &format!("{kind}-hwbp"));
        if hwbp.is_none() && kind == "signal" {
            continue;
        }
        rows.push(Row::times(
            "8",
            format!("hwbp-linux open + close of 4 watchpoints ({kind}) vs raw perf_event_open"),
            hwbp,
            f.time("linux-open4", &format!("{kind}-raw")),
            Bound::AtMost(1.2),
        ));
    }
    render(&rows)
}

fn render(rows: &[Row]) -> String {
    let mut s = String::from(
        "| goal | what | measured | baseline | ratio | bound | met |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.goal, r.what, r.measured, r.baseline, r.ratio, r.bound, r.met
        );
    }
    s
}

/// `date -u`, or nothing.
fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model() -> String {
    fs::read_to_string(Path::new("/proc/cpuinfo"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_read_from_criterion_estimates() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":3.0},"point_estimate":2.5,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":3.0},"point_estimate":2.25,"standard_error":0.1},"median_abs_dev":{"point_estimate":9.0}}"#;
        assert_eq!(median(json), Some(2.25));
        assert_eq!(median("{}"), None);
    }

    #[test]
    fn bounds_decide_met() {
        let r = Row::times(
            "1",
            "x".into(),
            Some(150.0),
            Some(100.0),
            Bound::AtMost(1.5),
        );
        assert_eq!((r.met, r.ratio.as_str()), ("yes", "1.50×"));
        let r = Row::times(
            "1",
            "x".into(),
            Some(151.0),
            Some(100.0),
            Bound::AtMost(1.5),
        );
        assert_eq!(r.met, "NO");
        let r = Row::times(
            "4",
            "x".into(),
            Some(1.0),
            Some(999.0),
            Bound::SpeedupAtLeast(1000.0),
        );
        assert_eq!(r.met, "NO");
        let r = Row::times("4", "x".into(), None, Some(1.0), Bound::AtMost(2.0));
        assert_eq!(r.met, "not measured");
    }
}
