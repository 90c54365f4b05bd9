//! The documents' checkable facts (issue 32, "Docs that fit"): the README
//! stays short, nothing points outside the repository, every relative link
//! and image resolves, the count of examples the documents state is the
//! count `gradscope example` lists, and every `make` target the README
//! names is a target of the Makefile. Each failure names the file and the
//! line at fault.

mod common;

use common::repo;
use std::path::{Path, PathBuf};

/// The README's hard limit, in lines.
const README_MAX_LINES: usize = 300;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `path` relative to the repository root, for messages.
fn shown(path: &Path) -> String {
    let root = repo().canonicalize().unwrap();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    match path.strip_prefix(&root) {
        Ok(p) if p.as_os_str().is_empty() => "the repository root".to_string(),
        Ok(p) => p.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// The text of line `n` (1-based), trimmed.
fn line_text(text: &str, n: usize) -> &str {
    text.lines().nth(n - 1).unwrap_or("").trim()
}

/// Files under `dir` (recursively, skipping hidden folders and `target`)
/// whose names end in `suffix`.
fn files_under(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                files_under(&path, suffix, out);
            }
        } else if name.ends_with(suffix) {
            out.push(path);
        }
    }
}

/// The Markdown documents: README.md, crates/README.md and docs/*.md.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs = vec![root.join("README.md"), root.join("crates/README.md")];
    files_under(&root.join("docs"), ".md", &mut docs);
    docs
}

/// `s` with every character but newlines replaced by as many spaces as
/// its UTF-8 length, so that byte offsets stay those of `s`.
fn blank(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\n' {
                "\n".to_string()
            } else {
                " ".repeat(c.len_utf8())
            }
        })
        .collect()
}

/// `text` with fenced code blocks blanked out ([`blank`]).
fn without_fences(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fenced = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push_str(&blank(line));
        } else if fenced {
            out.push_str(&blank(line));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The inline code spans of `text` as byte ranges of their contents: a
/// run of n backticks opens a span that the next run of n backticks
/// closes.
fn code_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|&&b| b == b'`').count();
        match open {
            None => open = Some((i + run, run)),
            Some((from, n)) if n == run => {
                spans.push(from..i);
                open = None;
            }
            Some(_) => {}
        }
        i += run;
    }
    spans
}

/// `text` with fenced code blocks and inline code (backticks included)
/// blanked out, so that offsets and line numbers stay those of `text`.
fn prose_only(text: &str) -> String {
    let mut prose = without_fences(text);
    for span in code_spans(&prose).into_iter().rev() {
        // Blank the backticks around the span too.
        let start = prose[..span.start].trim_end_matches('`').len();
        let end =
            span.end + prose[span.end..].len() - prose[span.end..].trim_start_matches('`').len();
        let blanked = blank(&prose[start..end]);
        prose.replace_range(start..end, &blanked);
    }
    prose
}

/// The contents of the code in `text` (the lines of fenced blocks and
/// inline spans), each with the byte offset where it starts.
fn code_parts(text: &str) -> Vec<(usize, String)> {
    let mut parts = Vec::new();
    let mut fenced = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            parts.push((offset, line.to_string()));
        }
        offset += line.len();
    }
    let prose = without_fences(text);
    for span in code_spans(&prose) {
        parts.push((span.start, prose[span.clone()].to_string()));
    }
    parts
}

#[test]
fn readme_is_at_most_300_lines() {
    let path = repo().join("README.md");
    let text = read(&path);
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md: {lines} lines, over the limit of {README_MAX_LINES}; line {}: {:?} is past it \
         (move the detail into docs/)",
        README_MAX_LINES + 1,
        line_text(&text, README_MAX_LINES + 1)
    );
}

/// Nothing may point to a design document outside the repository: users
/// never see it. The needles are split so that this file does not hold
/// them.
#[test]
fn nothing_points_outside_the_repository() {
    let needles = [concat!("DESIGN", ".md"), concat!("..", "/shared")];
    let root = repo();
    let mut files = documents();
    files.push(root.join("Makefile"));
    files_under(&root.join("crates"), ".rs", &mut files);
    files_under(&root.join("crates"), ".md", &mut files);
    files.sort();
    files.dedup();
    let mut found = Vec::new();
    for file in &files {
        let text = read(file);
        for (n, line) in text.lines().enumerate() {
            for needle in needles {
                if line.contains(needle) {
                    found.push(format!(
                        "{}:{}: {:?} names {needle}",
                        shown(file),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "files point to a document outside the repository (say what is meant, or link a file under docs/):\n{}",
        found.join("\n")
    );
}

/// Every relative link and image of the Markdown documents resolves to a
/// file or folder that exists, relative to the document (web links and
/// `#anchors` are left alone; code is not read as links).
#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = read(&doc);
        let prose = prose_only(&text);
        let dir = doc.parent().unwrap();
        let mut from = 0;
        while let Some(at) = prose[from..].find("](") {
            let start = from + at + 2;
            from = start;
            let rest = &prose[start..];
            let Some(end) = rest.find(')') else { break };
            let mut target = rest[..end].trim();
            // `[x](<path with spaces>)` and `[x](path "title")`.
            if let Some(inner) = target.strip_prefix('<').and_then(|t| t.split('>').next()) {
                target = inner;
            } else if let Some((path, _title)) = target.split_once(char::is_whitespace) {
                target = path;
            }
            if target.is_empty()
                || target.starts_with('#')
                || target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap();
            checked += 1;
            if !dir.join(path).exists() {
                let n = line_of(&text, start);
                broken.push(format!(
                    "{}:{n}: {target} does not exist (resolved against {}): {:?}",
                    shown(&doc),
                    shown(dir),
                    line_text(&text, n)
                ));
            }
        }
    }
    assert!(
        checked > 0,
        "no relative links found: the link reader is broken"
    );
    assert!(
        broken.is_empty(),
        "broken relative links:\n{}",
        broken.join("\n")
    );
}

fn number(word: &str) -> Option<usize> {
    let word = word.trim_matches(|c: char| !c.is_alphanumeric());
    if let Ok(n) = word.parse() {
        return Some(n);
    }
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    WORDS.iter().position(|w| w.eq_ignore_ascii_case(word))
}

/// Where a document says how many examples `gradscope example` lists
/// ("`gradscope example` lists 16 experiment files", "lists all
/// thirteen", "lists the same 16"), the number is the one the binary
/// lists. The README must say it.
#[test]
fn the_stated_count_of_examples_is_the_true_one() {
    let out = common::gradscope(&["example"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let listed = common::stdout(&out)
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim().is_empty())
        .count();
    assert!(
        listed > 0,
        "gradscope example lists nothing:\n{}",
        common::stdout(&out)
    );

    let needle = "gradscope example";
    let mut wrong = Vec::new();
    let mut readme_states_it = false;
    for doc in documents() {
        let text = read(&doc);
        // Line breaks as spaces (same length), so that a statement broken
        // over lines is read whole.
        let flat = text.replace('\n', " ");
        for (at, _) in flat.match_indices(needle) {
            let after = flat[at + needle.len()..]
                .trim_start_matches('`')
                .trim_start();
            let Some(rest) = after.strip_prefix("lists ") else {
                continue;
            };
            let Some(stated) = rest
                .split_whitespace()
                .find(|w| !matches!(*w, "all" | "the" | "same" | "its"))
                .and_then(number)
            else {
                continue;
            };
            if doc.ends_with("README.md") && doc.parent() == Some(repo().as_path()) {
                readme_states_it = true;
            }
            if stated != listed {
                let n = line_of(&text, at);
                wrong.push(format!(
                    "{}:{n}: says `gradscope example` lists {stated}, but it lists {listed}: {:?}",
                    shown(&doc),
                    line_text(&text, n)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        readme_states_it,
        "README.md: no line says how many experiment files `gradscope example` lists ({listed})"
    );
}

/// The targets of the Makefile's rules (`name: prerequisites`).
fn make_targets() -> Vec<String> {
    let text = read(&repo().join("Makefile"));
    let mut targets = Vec::new();
    for line in text.lines() {
        if !line.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let Some((names, after)) = line.split_once(':') else {
            continue;
        };
        if after.starts_with('=') || names.contains('=') || names.contains('(') {
            continue;
        }
        targets.extend(names.split_whitespace().map(str::to_string));
    }
    targets
}

/// Every `make TARGET` in the README's code (inline or fenced) names a
/// target the Makefile has. Variable assignments (`make VENV=…`) are
/// skipped; the words after `make` up to the first that is not a target
/// name are read as targets (`make setup build`).
#[test]
fn every_make_target_the_readme_names_exists() {
    let targets = make_targets();
    assert!(
        targets.iter().any(|t| t == "test"),
        "Makefile: no `test` target found (the reader is broken?): {targets:?}"
    );
    let path = repo().join("README.md");
    let text = read(&path);
    let mut missing = Vec::new();
    let mut seen = 0;
    for (offset, code) in code_parts(&text) {
        let words: Vec<(usize, &str)> = code
            .split_whitespace()
            .map(|w| (w.as_ptr() as usize - code.as_ptr() as usize, w))
            .collect();
        for (i, &(_, word)) in words.iter().enumerate() {
            if word != "make" {
                continue;
            }
            for &(at, next) in &words[i + 1..] {
                if next.contains('=') {
                    continue;
                }
                let is_name = !next.is_empty()
                    && next.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    });
                if !is_name {
                    break;
                }
                seen += 1;
                if !targets.iter().any(|t| t == next) {
                    let n = line_of(&text, offset + at);
                    missing.push(format!(
                        "README.md:{n}: `make {next}`: the Makefile has no target {next:?}: {:?}",
                        line_text(&text, n)
                    ));
                }
            }
        }
    }
    assert!(
        seen > 0,
        "README.md: no `make TARGET` found (the reader is broken?)"
    );
    assert!(
        missing.is_empty(),
        "{}\n(Makefile targets: {})",
        missing.join("\n"),
        targets.join(", ")
    );
}
