//! The difference between two texts as a few small splices, so that an edit
//! made in an editor touches only what changed and concurrent edits to the
//! rest of the document survive the merge.
//!
//! [`splices`] strips the common prefix and suffix, then diffs what is left
//! line by line (a longest common subsequence of lines, when the middle is
//! small enough), then trims each changed run of lines to the characters
//! that differ. Positions count characters (Unicode code points), as
//! `RichText::splice` does.

/// Above this many line pairs, the changed middle becomes one splice rather
/// than paying for the line-by-line table.
const MAX_LINE_PAIRS: usize = 4_000_000;

/// Replace `delete` characters at `pos` by `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Splice {
    pub(super) pos: usize,
    pub(super) delete: usize,
    pub(super) insert: String,
}

/// Splices that turn `old` into `new`: sorted by position, not overlapping,
/// every position counted in `old`. Apply them from the last to the first.
pub(super) fn splices(old: &str, new: &str) -> Vec<Splice> {
    let (a, b): (Vec<char>, Vec<char>) = (old.chars().collect(), new.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (a_rest, b_rest) = (&a[prefix..], &b[prefix..]);
    let suffix = a_rest
        .iter()
        .rev()
        .zip(b_rest.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (
        &a_rest[..a_rest.len() - suffix],
        &b_rest[..b_rest.len() - suffix],
    );
    line_runs(a_mid, b_mid)
        .into_iter()
        .filter_map(|(old, new)| trimmed(&a_mid[old.clone()], &b_mid[new], prefix + old.start))
        .collect()
}

/// `old` with `splices` (as [`splices`] returns them) applied.
pub(super) fn apply(old: &str, splices: &[Splice]) -> String {
    let mut chars: Vec<char> = old.chars().collect();
    for splice in splices.iter().rev() {
        chars.splice(
            splice.pos..splice.pos + splice.delete,
            splice.insert.chars(),
        );
    }
    chars.into_iter().collect()
}

/// `mine` (splices of a base text) moved onto the text that `theirs`
/// (other splices of the same base) made, or `None` when the two touch the
/// same place and which should win is a question for a person.
pub(super) fn rebase(mine: &[Splice], theirs: &[Splice]) -> Option<Vec<Splice>> {
    mine.iter()
        .map(|splice| {
            let (start, end) = (splice.pos, splice.pos + splice.delete);
            if theirs
                .iter()
                .any(|t| start <= t.pos + t.delete && t.pos <= end)
            {
                return None;
            }
            let shift: isize = theirs
                .iter()
                .filter(|t| t.pos + t.delete < start)
                .map(|t| to_isize(t.insert.chars().count()) - to_isize(t.delete))
                .sum();
            let pos = usize::try_from(to_isize(start) + shift).ok()?;
            Some(Splice {
                pos,
                ..splice.clone()
            })
        })
        .collect()
}

fn to_isize(n: usize) -> isize {
    // A character count of a string in memory is below isize::MAX.
    isize::try_from(n).unwrap_or(isize::MAX)
}

/// The runs of lines that differ between `a` and `b`, as character ranges of
/// each.
fn line_runs(a: &[char], b: &[char]) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    if a.is_empty() && b.is_empty() {
        return Vec::new();
    }
    let (a_lines, b_lines) = (lines(a), lines(b));
    if a_lines.len().saturating_mul(b_lines.len()) > MAX_LINE_PAIRS {
        return vec![(0..a.len(), 0..b.len())];
    }
    let pairs = common_lines(a, &a_lines, b, &b_lines);
    let mut runs = Vec::new();
    let (mut i, mut j) = (0, 0);
    for (next_i, next_j) in pairs
        .into_iter()
        .chain(std::iter::once((a_lines.len(), b_lines.len())))
    {
        if next_i > i || next_j > j {
            runs.push((
                span(&a_lines, i, next_i, a.len()),
                span(&b_lines, j, next_j, b.len()),
            ));
        }
        (i, j) = (next_i + 1, next_j + 1);
    }
    runs
}

/// The character range covered by lines `from..to` (`total` past the last).
fn span(
    lines: &[std::ops::Range<usize>],
    from: usize,
    to: usize,
    total: usize,
) -> std::ops::Range<usize> {
    let start = lines.get(from).map_or(total, |line| line.start);
    let end = lines.get(to).map_or(total, |line| line.start);
    start..end
}

/// Each line of `text` as a character range, its `\n` included.
fn lines(text: &[char]) -> Vec<std::ops::Range<usize>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (index, c) in text.iter().enumerate() {
        if *c == '\n' {
            lines.push(start..index + 1);
            start = index + 1;
        }
    }
    if start < text.len() {
        lines.push(start..text.len());
    }
    lines
}

/// The pairs (line of `a`, line of `b`) of a longest common subsequence of
/// equal lines, in order.
fn common_lines(
    a: &[char],
    a_lines: &[std::ops::Range<usize>],
    b: &[char],
    b_lines: &[std::ops::Range<usize>],
) -> Vec<(usize, usize)> {
    let (n, m) = (a_lines.len(), b_lines.len());
    let same = |i: usize, j: usize| a[a_lines[i].clone()] == b[b_lines[j].clone()];
    // longest[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut longest = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            longest[i][j] = if same(i, j) {
                longest[i + 1][j + 1] + 1
            } else {
                longest[i + 1][j].max(longest[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut pairs) = (0, 0, Vec::new());
    while i < n && j < m {
        if same(i, j) {
            pairs.push((i, j));
            (i, j) = (i + 1, j + 1);
        } else if longest[i + 1][j] >= longest[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

/// The splice replacing `old` (at `pos`) by `new`, trimmed to the characters
/// that differ; `None` if nothing does.
fn trimmed(old: &[char], new: &[char], pos: usize) -> Option<Splice> {
    let prefix = old.iter().zip(new).take_while(|(x, y)| x == y).count();
    let (old, new) = (&old[prefix..], &new[prefix..]);
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (old, new) = (&old[..old.len() - suffix], &new[..new.len() - suffix]);
    (!old.is_empty() || !new.is_empty()).then(|| Splice {
        pos: pos + prefix,
        delete: old.len(),
        insert: new.iter().collect(),
    })
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
