//! A page written twice from one description: as Markdown (read on GitHub
//! or in a terminal) and as one self-contained HTML file (opened offline in
//! a browser, charts inline as SVG, tables sortable by a click on a header).
//!
//! Writing both from the same [`Block`]s keeps them saying the same thing;
//! converting one format into the other would need a parser for the first.
//! Inline text may use two Markdown marks, `` `code` `` and `**bold**`,
//! which the HTML writer turns into `<code>` and `<b>`.

use gradscope_format::files::PLOTS_DIR;
use std::fmt::Write as _;
use std::path::Path;

/// One block of a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading, level 1 to 3.
    Heading(u8, String),
    /// A paragraph.
    Para(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A bulleted list that the next block follows without a blank line in
    /// Markdown: the report's notes on what is missing ("`NAME`: not in
    /// plots/", "RUN: no activations.csv …") are written so, and report.md
    /// keeps its published bytes. A paragraph right after one reads, in
    /// CommonMark, as part of its last item; the HTML writes it as a list.
    TightList(Vec<String>),
    /// A table: header cells, then rows.
    Table(Vec<String>, Vec<Vec<String>>),
    /// A chart of `plots/`: its file stem and caption. Markdown links the
    /// PNG; HTML inlines the SVG so that the file needs nothing beside it.
    Chart(String, String),
    /// A quoted paragraph (`> text`).
    Quote(String),
    /// A fenced code block: its language (`sh`; empty for none), which
    /// only the Markdown names, and its text.
    Code(String, String),
}

/// Markdown: charts linked relatively as `plots/NAME.png`.
pub fn markdown(blocks: &[Block]) -> String {
    let mut md = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(md, "{} {text}\n", "#".repeat(usize::from(*level)));
            }
            Block::Para(text) => {
                let _ = writeln!(md, "{text}\n");
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(md, "- {item}");
                }
                md.push('\n');
            }
            Block::Table(header, rows) => {
                let cell = |c: &String| c.replace('|', "\\|");
                let _ = writeln!(
                    md,
                    "| {} |",
                    header.iter().map(cell).collect::<Vec<_>>().join(" | ")
                );
                let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
                for row in rows {
                    let _ = writeln!(
                        md,
                        "| {} |",
                        row.iter().map(cell).collect::<Vec<_>>().join(" | ")
                    );
                }
                md.push('\n');
            }
            Block::TightList(items) => {
                for item in items {
                    let _ = writeln!(md, "- {item}");
                }
            }
            // A chart without a caption is the image alone: the report
            // writes its captions as paragraphs before the image.
            Block::Chart(name, caption) if caption.is_empty() => {
                let _ = writeln!(md, "![{name}](plots/{name}.png)\n");
            }
            Block::Chart(name, caption) => {
                let _ = writeln!(md, "![{name}](plots/{name}.png)\n\n*{caption}*\n");
            }
            Block::Quote(text) => {
                let _ = writeln!(md, "> {text}\n");
            }
            Block::Code(lang, text) => {
                let _ = writeln!(md, "```{lang}\n{text}\n```\n");
            }
        }
    }
    md
}

/// One HTML file: the charts' SVG read from `root/plots/` and inlined (a
/// missing one is named in its place), a small script that sorts a table
/// by the clicked column, and no reference to anything outside the file.
pub fn html(title: &str, blocks: &[Block], root: &Path) -> String {
    html_live(title, blocks, root, None)
}

/// [`html`], and with `reload` (`gradscope report --watch`) a page that
/// reloads itself every `reload` seconds and says that the sweep is
/// still running.
pub fn html_live(title: &str, blocks: &[Block], root: &Path, reload: Option<u64>) -> String {
    let mut out = String::new();
    let refresh = reload.map_or(String::new(), |s| {
        format!("<meta http-equiv=\"refresh\" content=\"{s}\">\n")
    });
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{refresh}\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    if let Some(s) = reload {
        let _ = writeln!(
            out,
            "<p class=\"live\">The sweep is still running: this page is rewritten as rows arrive and reloads every {s} s.</p>"
        );
    }
    // What the page found comes first (issue 37): the title, a box with
    // the verdicts, the two key charts, a table of contents; then the
    // rest in order, the key charts left out where they were and long
    // per-layer tables folded.
    let lead = Lead::of(blocks);
    let mut rest = blocks;
    if let Some((first @ Block::Heading(1, _), after)) = blocks.split_first() {
        write_block(&mut out, first, root);
        rest = after;
    }
    if !lead.verdicts.is_empty() {
        out.push_str("<section class=\"summary\">\n<h2 id=\"summary\">What it found</h2>\n<ul>\n");
        for v in &lead.verdicts {
            let _ = writeln!(out, "<li>{}</li>", inline(v));
        }
        out.push_str("</ul>\n</section>\n");
    }
    for chart in &lead.charts {
        write_block(&mut out, chart, root);
    }
    if lead.contents.len() > 1 {
        out.push_str("<nav class=\"toc\"><b>Contents</b><ul>\n");
        for h in &lead.contents {
            let _ = writeln!(out, "<li><a href=\"#{}\">{}</a></li>", anchor(h), inline(h));
        }
        out.push_str("</ul></nav>\n");
    }
    for block in rest {
        if lead.charts.contains(&block) {
            continue;
        }
        write_block(&mut out, block, root);
    }
    out.push_str("<div id=\"gs-tip\" hidden></div>\n");
    let _ = write!(
        out,
        "<script>{SORT_SCRIPT}{HOVER_SCRIPT}</script>\n</body>\n</html>\n"
    );
    out
}

/// An SVG larger than this (bytes) is inlined as its PNG instead.
const INLINE_SVG_MAX: usize = 300_000;

/// Standard base64 (RFC 4648, with padding), for a PNG in a data URI.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Tables longer than this are folded in `<details>`.
const FOLD_ROWS: usize = 12;

/// The charts a report page shows first: what error does with depth, and
/// where the gradient goes (He et al. Fig. 6; the gradient profile).
const LEAD_CHARTS: [&str; 2] = ["error_vs_depth", "gradient_profile"];

/// What a report page leads with, taken from its blocks.
struct Lead<'a> {
    /// The bold claims of the "What the numbers show" sections (each
    /// sentence that holds one) and their bullets that start in bold, in
    /// page order.
    verdicts: Vec<String>,
    charts: Vec<&'a Block>,
    /// The level-2 headings.
    contents: Vec<String>,
}

impl<'a> Lead<'a> {
    fn of(blocks: &'a [Block]) -> Lead<'a> {
        let mut verdicts = Vec::new();
        let mut in_findings = false;
        for b in blocks {
            match b {
                Block::Heading(_, t) => in_findings = t.starts_with("What the numbers show"),
                Block::Para(t) if in_findings && t.starts_with("**") => {
                    verdicts.extend(bold_sentences(t));
                }
                Block::List(items) if in_findings => {
                    verdicts.extend(items.iter().filter(|i| i.starts_with("**")).cloned());
                }
                _ => {}
            }
        }
        let charts = LEAD_CHARTS
            .iter()
            .filter_map(|name| {
                blocks
                    .iter()
                    .find(|b| matches!(b, Block::Chart(n, _) if n == name))
            })
            .collect();
        let contents = blocks
            .iter()
            .filter_map(|b| match b {
                Block::Heading(2, t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        Lead {
            verdicts,
            charts,
            contents,
        }
    }
}

/// The sentences of a paragraph that hold a bold claim, each whole: a
/// sentence ends at a period followed by a space and a bold mark.
fn bold_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut cuts: Vec<usize> = text.match_indices(". **").map(|(i, _)| i + 1).collect();
    cuts.push(text.len());
    for end in cuts {
        let sentence = text[start..end].trim();
        if sentence.contains("**") {
            out.push(sentence.to_owned());
        }
        start = end;
    }
    out
}

/// The `id` of a heading: its text in lower case, letters and digits kept,
/// runs of anything else one `-`.
fn anchor(text: &str) -> String {
    let mut id = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            id.push(c);
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    id.trim_matches('-').to_owned()
}

/// Writes one block as HTML.
fn write_block(out: &mut String, block: &Block, root: &Path) {
    match block {
        Block::Heading(level, text) => {
            let _ = writeln!(
                out,
                "<h{level} id=\"{}\">{}</h{level}>",
                anchor(text),
                inline(text)
            );
        }
        Block::Para(text) => {
            let _ = writeln!(out, "<p>{}</p>", inline(text));
        }
        Block::List(items) | Block::TightList(items) => {
            out.push_str("<ul>\n");
            for item in items {
                let _ = writeln!(out, "<li>{}</li>", inline(item));
            }
            out.push_str("</ul>\n");
        }
        Block::Table(header, rows) => {
            // A per-layer table runs to 60 rows: folded, so that the
            // text and the charts after it stay in reach.
            let folded = rows.len() > FOLD_ROWS;
            if folded {
                let _ = writeln!(
                    out,
                    "<details><summary>table of {} rows (click to open)</summary>",
                    rows.len()
                );
            }
            out.push_str("<table class=\"sortable\">\n<thead><tr>");
            for h in header {
                let _ = write!(out, "<th title=\"click to sort\">{}</th>", inline(h));
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for row in rows {
                out.push_str("<tr>");
                for c in row {
                    let _ = write!(out, "<td>{}</td>", inline(c));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n");
            if folded {
                out.push_str("</details>\n");
            }
        }
        Block::Chart(name, caption) => {
            let plots = root.join(PLOTS_DIR);
            let path = plots.join(format!("{name}.svg"));
            let png = std::fs::read(plots.join(format!("{name}.png")));
            let (drawing, note) = match (std::fs::read_to_string(&path), png) {
                // A chart of many thousand shapes (the heatmap's cells, a
                // line per layer with its hover points) goes in as its PNG:
                // the page stays near 1 MB, and the SVG stays in plots/.
                (Ok(svg), Ok(png)) if svg.len() > INLINE_SVG_MAX => (
                    format!(
                        "<img alt=\"{name}\" src=\"data:image/png;base64,{}\">",
                        base64(&png)
                    ),
                    format!(" (an image here; plots/{name}.svg has the values on hover)"),
                ),
                (Ok(svg), _) => (strip_prolog(&svg).to_owned(), String::new()),
                (Err(e), _) => (
                    format!(
                        "<p class=\"missing\">{}: {e}</p>",
                        escape(&path.display().to_string())
                    ),
                    String::new(),
                ),
            };
            // A chart whose caption is the paragraph above it has none here.
            let caption = match (caption.is_empty(), note.is_empty()) {
                (true, true) => String::new(),
                _ => format!(
                    "\n<figcaption>{}{}</figcaption>",
                    inline(caption),
                    escape(&note)
                ),
            };
            let _ = writeln!(out, "<figure id=\"{name}\">\n{drawing}{caption}\n</figure>");
        }
        Block::Quote(text) => {
            let _ = writeln!(out, "<blockquote>{}</blockquote>", inline(text));
        }
        Block::Code(_, text) => {
            let _ = writeln!(out, "<pre><code>{}</code></pre>", escape(text));
        }
    }
}

/// An SVG file's text without its `<?xml …?>` line, which is not allowed
/// inside HTML.
fn strip_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// `&`, `<`, `>` and `"` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text with `` `code` ``, `**bold**` and `*italic*` turned into
/// tags; an unpaired mark is kept as it is. An italic `*` opens before a
/// non-space and closes after one, as CommonMark's emphasis does, so that
/// `2 * 3` stays text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let tick = rest.find('`').map(|i| (i, "`", "code"));
        let bold = rest.find("**").map(|i| (i, "**", "b"));
        let italic = single_star(rest, true).map(|i| (i, "*", "i"));
        let Some((at, mark, tag)) = [tick, bold, italic]
            .into_iter()
            .flatten()
            .min_by_key(|m| m.0)
        else {
            break;
        };
        let after = &rest[at + mark.len()..];
        let end = match mark {
            "*" => single_star(after, false),
            _ => after.find(mark),
        };
        let Some(end) = end else {
            break;
        };
        out.push_str(&escape(&rest[..at]));
        let _ = write!(out, "<{tag}>{}</{tag}>", escape(&after[..end]));
        rest = &after[end + mark.len()..];
    }
    out.push_str(&escape(rest));
    out
}

/// The first lone `*` (not part of `**`) of `text` that can open emphasis
/// (`opening`: a non-space follows it) or close it (a non-space precedes it).
fn single_star(text: &str, opening: bool) -> Option<usize> {
    let b = text.as_bytes();
    (0..b.len()).find(|&i| {
        let lone = b[i] == b'*' && b.get(i + 1) != Some(&b'*') && (i == 0 || b[i - 1] != b'*');
        let flank = match opening {
            true => b.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()),
            false => i > 0 && !b[i - 1].is_ascii_whitespace(),
        };
        lone && flank
    })
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}\
th{background:#f2f2f2;cursor:pointer;user-select:none}th.asc::after{content:' ▲'}th.desc::after{content:' ▼'}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-style:italic}\
code{background:#f4f4f4;padding:0 3px}.missing{color:#a00}\
blockquote{color:#444;border-left:3px solid #ccc;margin-left:0;padding-left:1em}pre{background:#f4f4f4;padding:.5em}\
#gs-tip{position:absolute;background:#fff;border:1px solid #888;padding:4px 8px;font-size:13px;white-space:pre;pointer-events:none;box-shadow:0 1px 4px rgba(0,0,0,.2)}\
.live{background:#fff6d5;border:1px solid #e0c060;padding:6px 10px}\
.summary{background:#eef5fb;border:1px solid #9cc3e0;padding:4px 14px;margin:1em 0}.summary h2{margin:.4em 0}\
.toc{border:1px solid #ddd;padding:4px 14px;margin:1em 0;columns:2}.toc ul{margin:.3em 0}\
details>summary{cursor:pointer;color:#246;margin:.5em 0}.gs-pt{cursor:crosshair}.gs-pt:hover{stroke:#000;stroke-width:1.5}";

/// Sorts a table's body by the clicked header's column: numbers (the
/// leading number of a cell such as `12.3 ± 0.4`) numerically, the rest as
/// text; a second click reverses.
const SORT_SCRIPT: &str = r#"
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var asc = !th.classList.contains('asc');
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
    th.classList.add(asc ? 'asc' : 'desc');
    var key = function (row) {
      var text = row.cells[col] ? row.cells[col].textContent.trim() : '';
      var n = parseFloat(text);
      return isNaN(n) ? text : n;
    };
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), c;
      if (typeof x === 'number' && typeof y === 'number') c = x - y;
      else c = String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"#;

/// Shows the value under the pointer: each chart's SVG carries a
/// transparent circle per drawn value with its text in `data-v` (written
/// by gradscope-plot); hovering one shows that text beside it.
const HOVER_SCRIPT: &str = r#"
(function () {
  var tip = document.getElementById('gs-tip');
  document.querySelectorAll('.gs-pt').forEach(function (pt) {
    pt.addEventListener('mouseenter', function (e) {
      tip.textContent = pt.getAttribute('data-v');
      tip.hidden = false;
      tip.style.left = (e.pageX + 12) + 'px';
      tip.style.top = (e.pageY + 12) + 'px';
    });
    pt.addEventListener('mouseleave', function () { tip.hidden = true; });
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 37 §1: report.html leads with what it found. Before it, the
    /// first 2,400 px were text and eight tables, the charts after two
    /// 63-row per-layer tables.
    #[test]
    fn the_page_leads_with_its_verdicts_and_key_charts() {
        let long: Vec<Vec<String>> = (0..63).map(|i| vec![format!("layer{i}")]).collect();
        let blocks = vec![
            Block::Heading(1, "Report: x".into()),
            Block::Para("Written by gradscope.".into()),
            Block::Heading(2, "Runs".into()),
            Block::Table(vec!["run".into()], vec![vec!["plain-d4-s0".into()]]),
            Block::Heading(2, "What the numbers show".into()),
            Block::Para(
                "**plain** nets' error rises with depth: 38% → 90%. **residual** nets' does not."
                    .into(),
            ),
            Block::Para("(Rules: a change counts when …)".into()),
            Block::Heading(2, "Per layer".into()),
            Block::Table(vec!["layer".into()], long),
            Block::Heading(2, "Charts".into()),
            Block::Chart("train_error_vs_step".into(), "a".into()),
            Block::Chart("error_vs_depth".into(), "b".into()),
            Block::Chart("gradient_profile".into(), "c".into()),
        ];
        let dir = std::env::temp_dir();
        let page = html("x", &blocks, &dir);
        let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(at("What it found") < at("<table"), "the verdicts first");
        assert!(at("<figure id=\"error_vs_depth\"") < at("<table"));
        assert!(at("<figure id=\"gradient_profile\"") < at("<table"));
        assert!(at("<nav class=\"toc\">") < at("<table"));
        assert_eq!(page.matches("<figure id=\"error_vs_depth\"").count(), 1);
        assert!(page.contains("<li><b>plain</b> nets' error rises with depth: 38% → 90%.</li>"));
        assert!(page.contains("<li><b>residual</b> nets' does not.</li>"));
        assert!(!page.contains("<li>(Rules"), "the rules stay in the text");
        // The 63-row table is folded, the 1-row one is not.
        assert_eq!(page.matches("<details>").count(), 1);
        assert!(page.contains("table of 63 rows"));
        assert!(page.contains("<h2 id=\"what-the-numbers-show\">"));
        assert!(page.contains("<a href=\"#what-the-numbers-show\">"));
        // A chart too large to inline as SVG goes in as its PNG.
        let root = std::env::temp_dir().join(format!("gs-page-{}", std::process::id()));
        std::fs::create_dir_all(root.join(PLOTS_DIR)).unwrap();
        let big = format!("<svg>{}</svg>", "<rect/>".repeat(INLINE_SVG_MAX / 7 + 1));
        std::fs::write(root.join(PLOTS_DIR).join("gradient_heatmap.svg"), big).unwrap();
        std::fs::write(root.join(PLOTS_DIR).join("gradient_heatmap.png"), b"foo").unwrap();
        std::fs::write(
            root.join(PLOTS_DIR).join("error_vs_depth.svg"),
            "<svg>small</svg>",
        )
        .unwrap();
        let charts = [
            Block::Chart("gradient_heatmap".into(), "h".into()),
            Block::Chart("error_vs_depth".into(), "e".into()),
        ];
        let page = html("x", &charts, &root);
        assert!(page.contains("<img alt=\"gradient_heatmap\" src=\"data:image/png;base64,Zm9v\">"));
        assert!(!page.contains("<rect/>"));
        assert!(page.contains("<svg>small</svg>"));
        std::fs::remove_dir_all(&root).unwrap();
        // RFC 4648's test vectors.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
        // The Markdown keeps its order.
        let md = markdown(&blocks);
        assert!(md.find("| run |").unwrap() < md.find("![error_vs_depth]").unwrap());
    }

    #[test]
    fn inline_marks_become_tags_and_text_is_escaped() {
        assert_eq!(
            inline("run `a<b` then **bold** & done"),
            "run <code>a&lt;b</code> then <b>bold</b> &amp; done"
        );
        // An unpaired mark is left as text.
        assert_eq!(inline("2 ` 3"), "2 ` 3");
        // Emphasis as CommonMark reads it: the landscape and lesion
        // captions are italic, and a product's star is not a mark.
        assert_eq!(
            inline("*log10 ‖g‖ of **both** sides*, 2 * 3 = 6"),
            "<i>log10 ‖g‖ of **both** sides</i>, 2 * 3 = 6"
        );
        assert_eq!(inline("**a** and *b*"), "<b>a</b> and <i>b</i>");
    }

    /// The Markdown that report.md is published with: a fence that names
    /// its language, a chart whose caption is the paragraph before it, and
    /// notes that run straight into the next block; the HTML is the same
    /// as for a list, and a fence's language is not shown.
    #[test]
    fn the_reports_own_markdown_forms_are_written_as_published() {
        let blocks = vec![
            Block::Code("sh".into(), "gradscope report r".into()),
            Block::Chart("error_vs_depth".into(), String::new()),
            Block::TightList(vec![
                "`a`: not in plots/".into(),
                "`b`: not in plots/".into(),
            ]),
            Block::Heading(3, "c".into()),
        ];
        assert_eq!(
            markdown(&blocks),
            "```sh\ngradscope report r\n```\n\n![error_vs_depth](plots/error_vs_depth.png)\n\n\
             - `a`: not in plots/\n- `b`: not in plots/\n### c\n\n"
        );
        let page = html("t", &blocks, Path::new("/nonexistent"));
        assert!(
            page.contains("<pre><code>gradscope report r</code></pre>"),
            "{page}"
        );
        assert!(
            page.contains("<ul>\n<li><code>a</code>: not in plots/</li>\n<li>"),
            "{page}"
        );
        // Its caption is the paragraph above it: no empty one below.
        assert!(!page.contains("<figcaption>"), "{page}");
        // A caption is written in italics after the image (compare.md).
        let captioned = [Block::Chart("g".into(), "what it shows".into())];
        assert_eq!(
            markdown(&captioned),
            "![g](plots/g.png)\n\n*what it shows*\n\n"
        );
    }

    #[test]
    fn a_table_is_the_same_in_both_formats() {
        let blocks = vec![Block::Table(
            vec!["a".into(), "b|c".into()],
            vec![vec!["1".into(), "<2>".into()]],
        )];
        assert_eq!(
            markdown(&blocks),
            "| a | b\\|c |\n|---|---|\n| 1 | <2> |\n\n"
        );
        let page = html("t", &blocks, Path::new("/nonexistent"));
        assert!(page.contains("<td>1</td><td>&lt;2&gt;</td>"), "{page}");
        // Self-contained: nothing is fetched when the file opens.
        assert!(!page.contains("src=") && !page.contains("href="), "{page}");
    }
}
