//! Comparing a board's transcript with the one committed next to it
//! (`examples/qemu-<board>/expected.txt`), after normalising what differs
//! between builds and runs:
//!
//! * hexadecimal numbers of five digits or more (addresses, which move with
//!   every change to the code, and register images) become `0x*`; shorter
//!   ones are values the checks wrote and stay;
//! * a `~` followed by digits (a value the firmware marks as run-dependent
//!   with `board_kit::Varies`: timer ticks, loop rounds) becomes `~N`;
//! * trailing white space and the serial console's `\r` are dropped.

use std::fmt::Write as _;

/// Lines of context around each difference.
const CONTEXT: usize = 3;
/// Diff lines printed at most: the first differences are what matters.
const MAX_DIFF_LINES: usize = 60;

/// The normalised form of one transcript line.
pub fn normalise_line(line: &str) -> String {
    let line = line.trim_end();
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        let starts_number = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if starts_number && b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            let digits = b[i + 2..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit() || **c == b'_')
                .count();
            let hex = b[i + 2..i + 2 + digits]
                .iter()
                .filter(|c| **c != b'_')
                .count();
            if hex >= 5 {
                out.push_str("0x*");
                i += 2 + digits;
                continue;
            }
        }
        if b[i] == b'~' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            out.push_str("~N");
            i += 1 + digits;
            continue;
        }
        // Copy up to the next byte the rules look at (keeps UTF-8 intact).
        let next = b[i + 1..]
            .iter()
            .position(|c| matches!(c, b'0' | b'~'))
            .map_or(b.len(), |p| i + 1 + p);
        out.push_str(&line[i..next]);
        i = next;
    }
    out
}

/// The normalised transcript: one line per line, each ending in `\n`.
pub fn normalise(lines: &[String]) -> String {
    lines.iter().map(|l| normalise_line(l) + "\n").collect()
}

/// An edit of the line diff.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Edit {
    Same,
    Removed,
    Added,
}

/// The line edits turning `old` into `new` (a longest common subsequence;
/// transcripts are a few hundred lines, so the quadratic table is small).
fn edits<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<(Edit, &'a str)> {
    let (n, m) = (old.len(), new.len());
    // lcs[i][j]: common lines of old[i..] and new[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            out.push((Edit::Same, old[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions, as `diff -u` prints them.
            out.push((Edit::Removed, old[i]));
            i += 1;
        } else {
            out.push((Edit::Added, new[j]));
            j += 1;
        }
    }
    out
}

/// A unified-style diff of `expected` against `actual` (`-` expected, `+`
/// got, `@@` with the expected transcript's line numbers), cut after the
/// first differences; `None` if they are equal.
pub fn diff(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    let e = edits(&old, &new);
    // Which edits to show: every change and CONTEXT lines either side.
    let mut show = vec![false; e.len()];
    for (k, (kind, _)) in e.iter().enumerate() {
        if *kind != Edit::Same {
            let lo = k.saturating_sub(CONTEXT);
            let hi = (k + CONTEXT + 1).min(e.len());
            show[lo..hi].iter_mut().for_each(|s| *s = true);
        }
    }
    let mut out = String::new();
    let mut printed = 0;
    let (mut old_line, mut new_line) = (1, 1);
    let mut in_hunk = false;
    for (k, (kind, text)) in e.iter().enumerate() {
        if show[k] {
            if !in_hunk {
                let _ = writeln!(out, "@@ expected line {old_line}, got line {new_line} @@");
                in_hunk = true;
            }
            let sign = match kind {
                Edit::Same => ' ',
                Edit::Removed => '-',
                Edit::Added => '+',
            };
            let _ = writeln!(out, "{sign}{text}");
            printed += 1;
            if printed >= MAX_DIFF_LINES {
                out.push_str("... (more differences follow)\n");
                break;
            }
        } else {
            in_hunk = false;
        }
        match kind {
            Edit::Same => {
                old_line += 1;
                new_line += 1;
            }
            Edit::Removed => old_line += 1,
            Edit::Added => new_line += 1,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_small_values_kept() {
        assert_eq!(
            normalise_line(
                "  #DB: bp 0 addr 0x11b018 ip 0x10017f value 0xc0ffee42 len 0x8 0x1111\r"
            ),
            "  #DB: bp 0 addr 0x* ip 0x* value 0x* len 0x8 0x1111"
        );
        assert_eq!(normalise_line("DBGWCR0: 0x0000_1ff7"), "DBGWCR0: 0x*");
        // Not a number of its own: left alone.
        assert_eq!(
            normalise_line("ab0x123456 10x123456"),
            "ab0x123456 10x123456"
        );
    }

    #[test]
    fn marked_run_dependent_values_are_normalised_and_others_kept() {
        assert_eq!(
            normalise_line("ok 45 - the timer ticked (~20 times) in 254 rounds, ~ 3"),
            "ok 45 - the timer ticked (~N times) in 254 rounds, ~ 3"
        );
        assert_eq!(
            normalise_line("per watchpoint: [(~20, ~16, ~198)] é"),
            "per watchpoint: [(~N, ~N, ~N)] é"
        );
    }

    #[test]
    fn equal_transcripts_have_no_diff() {
        assert_eq!(diff("a\nb\n", "a\nb\n"), None);
    }

    #[test]
    fn a_changed_line_shows_as_removed_and_added_with_context() {
        let expected = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let actual = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        let d = diff(expected, actual).expect("differs");
        assert_eq!(
            d,
            "@@ expected line 2, got line 2 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn a_missing_line_and_an_extra_line() {
        let d = diff("a\nb\nc\n", "a\nc\nd\n").expect("differs");
        assert_eq!(d, "@@ expected line 1, got line 1 @@\n a\n-b\n c\n+d\n");
    }

    #[test]
    fn long_diffs_are_cut() {
        let expected: String = (0..200).map(|i| format!("{i}\n")).collect();
        let actual: String = (0..200).map(|i| format!("x{i}\n")).collect();
        let d = diff(&expected, &actual).expect("differs");
        assert_eq!(d.lines().count(), MAX_DIFF_LINES + 2);
        assert!(d.ends_with("... (more differences follow)\n"));
    }
}
