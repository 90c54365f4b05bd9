//! Issue 37 §2, "Charts that read at a glance", read off the pictures:
//! the grid of panels (rows for folders, columns for variants, at most
//! three), legends outside every plot area at font scale 1 and 1.4,
//! `YScale::Panel` giving each panel its own tick labels, a diverged run
//! that sets no shared range, and a diverged run's ✕ with its step.
//!
//! The results folders are written by hand in the file contract's format
//! (as `render.rs` does): tiny nets, synthetic values, and a `run.json`
//! per run whose `status` and `diverged_at_step` are what a diverged run
//! records. Positions come from the SVG: plotters writes every text with
//! its `x` and `y`, and every panel's plot area is a
//! `<rect class="gs-plot">`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use gradscope_plot::compare;
use gradscope_plot::{
    render_all_with, Style, YScale, ACTIVATION_MEAN_VS_STEP, ERROR_VS_DEPTH, GRADIENT_PROFILE,
    TRAIN_ERROR_VS_STEP,
};

const STEPS: [u64; 4] = [0, 10, 20, 30];

/// How one folder's runs behave.
struct Folder<'a> {
    variants: &'a [&'a str],
    depths: &'a [u32],
    /// `(variant, depth, step)` of the runs that diverge.
    diverged: &'a [(&'a str, u32, u64)],
    /// Decay of dL/dh per layer, towards the input, by variant.
    decay: fn(&str) -> f64,
    /// A diverged run's activation mean at its last probed step.
    blown_mean: f64,
}

impl Default for Folder<'_> {
    fn default() -> Self {
        Folder {
            variants: &["plain", "residual"],
            depths: &[4, 8],
            diverged: &[],
            decay: |v| if v == "plain" { 0.3 } else { 0.9 },
            blown_mean: 8.5e5,
        }
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

/// Writes `folder` as a results directory at `root`.
fn write_folder(root: &Path, folder: &Folder) {
    let mut summary =
        String::from("run,variant,depth,seed,status,final_train_error,final_test_error\n");
    for &variant in folder.variants {
        for &depth in folder.depths {
            let run = format!("{variant}-d{depth}-s0");
            let dir = root.join("runs").join(&run);
            let diverged_at = folder
                .diverged
                .iter()
                .find(|d| d.0 == variant && d.1 == depth)
                .map(|d| d.2);
            let alive = |step: u64| diverged_at.is_none_or(|s| step < s);
            let rate = 0.01 * f64::from(depth) / 4.0;

            let mut metrics = String::from("step,epoch,split,loss,error,lr,elapsed_s\n");
            for &step in &STEPS {
                let e = if alive(step) {
                    format!("{:.4}", 0.9 * (-rate * step as f64).exp())
                } else {
                    "NaN".to_owned()
                };
                writeln!(metrics, "{step},0,train,{e},{e},0.1,1").expect("fmt");
            }
            write(&dir.join("metrics.csv"), &metrics);

            let mut grads = String::from("step,layer,name,kind,l2,rms\n");
            let decay = (folder.decay)(variant);
            for &step in &STEPS[..3] {
                for layer in 0..depth {
                    let v = decay.powi((depth - 1 - layer) as i32) * 0.1;
                    writeln!(
                        grads,
                        "{step},{layer},layer{layer:02}.linear,output,{v:e},{v:e}"
                    )
                    .expect("fmt");
                }
            }
            write(&dir.join("gradients.csv"), &grads);

            let mut acts = String::from("step,layer,name,mean,std,saturation\n");
            for &step in &STEPS[..3] {
                for layer in 0..depth - 1 {
                    let mean = if diverged_at.is_some() && step == 20 {
                        folder.blown_mean
                    } else {
                        0.3 + 0.02 * f64::from(layer)
                    };
                    writeln!(acts, "{step},{layer},layer{layer:02}.linear,{mean},0.5,0.1")
                        .expect("fmt");
                }
            }
            write(&dir.join("activations.csv"), &acts);

            let (status, at) = match diverged_at {
                Some(s) => ("diverged", s.to_string()),
                None => ("completed", "null".to_owned()),
            };
            write(
                &dir.join("run.json"),
                &format!(r#"{{"status": "{status}", "diverged_at_step": {at}}}"#),
            );
            let e = 0.9 * (-rate * 30.0).exp();
            let (train, test) = if diverged_at.is_some() {
                ("NaN".to_owned(), "NaN".to_owned())
            } else {
                (format!("{e:.4}"), format!("{:.4}", e + 0.05))
            };
            writeln!(summary, "{run},{variant},{depth},0,{status},{train},{test}").expect("fmt");
        }
    }
    write(&root.join("summary.csv"), &summary);
}

/// A text of the SVG: where plotters put it, how big, what it says.
#[derive(Debug, Clone)]
struct Text {
    x: f64,
    y: f64,
    anchor: String,
    size: f64,
    body: String,
}

/// A panel's plot area, from its `<rect class="gs-plot">`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn contains(&self, x: f64, y: f64) -> bool {
        x > self.x && x < self.x + self.w && y > self.y && y < self.y + self.h
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let tag = format!(" {tag}");
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_owned())
}

fn num(tag: &str, name: &str) -> f64 {
    attr(tag, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {name} in {tag}"))
}

fn texts(svg: &str) -> Vec<Text> {
    svg.split("<text ")
        .skip(1)
        .filter_map(|t| {
            let (tag, rest) = t.split_once('>')?;
            let body = rest.split_once("</text>")?.0.trim().to_owned();
            Some(Text {
                x: num(tag, "x"),
                y: num(tag, "y"),
                anchor: attr(tag, "text-anchor").unwrap_or_default(),
                size: num(tag, "font-size"),
                body,
            })
        })
        .collect()
}

fn plot_rects(svg: &str) -> Vec<Rect> {
    svg.split("<rect class=\"gs-plot\"")
        .skip(1)
        .map(|t| Rect {
            x: num(t, "x"),
            y: num(t, "y"),
            w: num(t, "width"),
            h: num(t, "height"),
        })
        .collect()
}

fn svg_size(svg: &str) -> (u32, u32) {
    let tag = svg.split_once('>').expect("svg tag").0;
    (num(tag, "width") as u32, num(tag, "height") as u32)
}

fn png_size(path: &Path) -> (u32, u32) {
    let b = fs::read(path).expect("png");
    let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
    (be(&b[16..20]), be(&b[20..24]))
}

fn svg(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join("plots").join(format!("{name}.svg"))).expect("svg")
}

/// The sorted distinct values of `v`, to a pixel.
fn distinct(v: impl Iterator<Item = f64>) -> Vec<i64> {
    let mut out: Vec<i64> = v.map(|x| x.round() as i64).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Three folders compared, each with plain and residual.
fn three_folders(tmp: &Path, style: Style) -> PathBuf {
    let dirs: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| tmp.join(n)).collect();
    for (i, d) in dirs.iter().enumerate() {
        let diverged: &[(&str, u32, u64)] = if i == 2 { &[("residual", 8, 20)] } else { &[] };
        write_folder(
            d,
            &Folder {
                diverged,
                ..Folder::default()
            },
        );
    }
    let out = tmp.join("both");
    let c = compare::load(&dirs, &out).expect("load");
    compare::render(&c, style).expect("render");
    out
}

/// Three folders × two variants: three rows of two, each row one folder
/// with plain on the left, residual on the right; the PNG and the SVG are
/// the same size, one row 500 px high and each further row 420 px.
#[test]
fn three_folders_of_two_variants_are_three_rows_of_two() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = three_folders(tmp.path(), Style::default());
    for name in [
        TRAIN_ERROR_VS_STEP,
        GRADIENT_PROFILE,
        ACTIVATION_MEAN_VS_STEP,
    ] {
        let text = svg(&out, name);
        let rects = plot_rects(&text);
        assert_eq!(rects.len(), 6, "{name}: {rects:?}");
        assert_eq!(
            distinct(rects.iter().map(|r| r.x)).len(),
            2,
            "{name}: columns"
        );
        assert_eq!(distinct(rects.iter().map(|r| r.y)).len(), 3, "{name}: rows");
        let size = svg_size(&text);
        assert_eq!(size.1, 500 + 2 * 420, "{name}");
        assert_eq!(
            png_size(&out.join("plots").join(format!("{name}.png"))),
            size,
            "{name}"
        );
        // Each panel's title sits over its plot: folder by row, variant
        // by column.
        let titles = texts(&text);
        for (i, folder) in ["a", "b", "c"].iter().enumerate() {
            for (j, variant) in ["plain", "residual"].iter().enumerate() {
                let r = rects[i * 2 + j];
                let found = titles.iter().any(|t| {
                    t.body.starts_with(&format!("{folder}: {variant}"))
                        && t.x > r.x
                        && t.x < r.x + r.w
                        && t.y < r.y
                        && t.y > r.y - 80.0
                });
                assert!(found, "{name}: no {folder}: {variant} over {r:?}");
            }
        }
    }
}

/// A folder of four variants in one row would be four panels wide: they
/// wrap into two rows of two, never more than three columns.
#[test]
fn no_chart_is_wider_than_three_panels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("four");
    write_folder(
        &root,
        &Folder {
            variants: &["plain", "residual", "highway", "dense"],
            ..Folder::default()
        },
    );
    render_all_with(&root, Style::default()).expect("render");
    for name in [
        TRAIN_ERROR_VS_STEP,
        GRADIENT_PROFILE,
        ACTIVATION_MEAN_VS_STEP,
    ] {
        let rects = plot_rects(&svg(&root, name));
        assert_eq!(rects.len(), 4, "{name}");
        let cols = distinct(rects.iter().map(|r| r.x)).len();
        assert!(cols <= 3, "{name}: {cols} columns");
        assert_eq!(distinct(rects.iter().map(|r| r.y)).len(), 2, "{name}: rows");
    }
}

/// Every text of every chart lies outside every plot area, but the ✕ of a
/// diverged run: legends sit in their strip. At font scale 1.4 too, where
/// the panel titles also stay above the top tick label.
#[test]
fn legends_lie_outside_every_plot_area_at_font_scale_1_and_1_4() {
    for scale in [1.0, 1.4] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let style = Style {
            font_scale: scale,
            ..Style::default()
        };
        let out = three_folders(tmp.path(), style);
        let single = tmp.path().join("single");
        write_folder(
            &single,
            &Folder {
                diverged: &[("plain", 8, 20)],
                ..Folder::default()
            },
        );
        render_all_with(&single, style).expect("render");
        let mut charts = Vec::new();
        for dir in [&out, &single] {
            for entry in fs::read_dir(dir.join("plots")).expect("plots") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|e| e == "svg") {
                    charts.push(path);
                }
            }
        }
        let mut legend_texts = 0;
        for path in &charts {
            let text = fs::read_to_string(path).expect("svg");
            // A panel with nothing to draw says "no data" (and why) in
            // its middle, by design.
            let rects: Vec<Rect> = plot_rects(&text)
                .into_iter()
                .filter(|r| {
                    !texts(&text)
                        .iter()
                        .any(|t| t.body == "no data" && r.contains(t.x, t.y))
                })
                .collect();
            for t in texts(&text) {
                if t.body == "✕" {
                    continue;
                }
                for r in &rects {
                    assert!(
                        !r.contains(t.x, t.y),
                        "{} at font scale {scale}: {:?} lies in the plot area {r:?}",
                        path.display(),
                        t.body
                    );
                }
                // A legend label: left-aligned, right of a plot area.
                if t.anchor == "start" && rects.iter().any(|r| t.x > r.x + r.w) {
                    legend_texts += 1;
                }
            }
            // The top tick label (centred on the plot's top edge) stays
            // below the panel title. In SVG units a text's em is its
            // font-size: a title placed by its top (dy 0.76em) reaches
            // down to its descenders at about 1 em; a tick label centred
            // on its y (dy 0.5ex) reaches up to its digits' top at about
            // half an em.
            let all = texts(&text);
            for r in &rects {
                let top_tick = all
                    .iter()
                    .filter(|t| t.anchor == "end" && (t.y - r.y).abs() < 1.5 && t.x < r.x)
                    .map(|t| t.y - 0.5 * t.size)
                    .fold(f64::INFINITY, f64::min);
                let title_bottom = all
                    .iter()
                    .filter(|t| t.anchor == "middle" && t.x > r.x && t.x < r.x + r.w)
                    .filter(|t| t.y < r.y && t.y > r.y - 100.0 * scale)
                    .map(|t| t.y + t.size)
                    .fold(f64::NEG_INFINITY, f64::max);
                assert!(
                    title_bottom <= top_tick,
                    "{} at font scale {scale}: panel title ends at {title_bottom}, top tick label starts at {top_tick}",
                    path.display()
                );
            }
        }
        assert!(legend_texts > 20, "only {legend_texts} legend texts found");
    }
}

/// The y tick labels of each plot area: right-aligned texts just left of
/// it, within its height.
fn ticks_per_panel(svg: &str) -> Vec<Vec<String>> {
    let all = texts(svg);
    plot_rects(svg)
        .iter()
        .map(|r| {
            all.iter()
                .filter(|t| t.anchor == "end" && t.x < r.x && t.x > r.x - 80.0)
                .filter(|t| t.y >= r.y - 2.0 && t.y <= r.y + r.h + 2.0)
                .map(|t| t.body.clone())
                .collect()
        })
        .collect()
}

/// `YScale::Panel` gives each panel its own tick labels, `Shared` the
/// same to all; by default a gradient profile whose plain net spans 10⁻⁴⁸
/// beside a residual net's one decade gets per-panel scales, and says so.
#[test]
fn y_scale_panel_gives_each_panel_its_own_tick_labels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("deep");
    write_folder(
        &root,
        &Folder {
            decay: |v| if v == "plain" { 1e-6 } else { 0.8 },
            ..Folder::default()
        },
    );
    let ticks = |y_scale| {
        let style = Style {
            y_scale,
            ..Style::default()
        };
        render_all_with(&root, style).expect("render");
        let text = svg(&root, GRADIENT_PROFILE);
        (ticks_per_panel(&text), text)
    };
    let (shared, _) = ticks(YScale::Shared);
    assert_eq!(shared.len(), 2);
    assert!(!shared[0].is_empty());
    assert_eq!(shared[0], shared[1], "shared: one axis");
    let (panel, text) = ticks(YScale::Panel);
    assert_ne!(panel[0], panel[1], "panel: each its own");
    assert!(text.contains("each panel has its own y scale"));
    let (auto, text) = ticks(YScale::Auto);
    assert_eq!(auto, panel, "auto picks per-panel scales 47 decades apart");
    assert!(text.contains("each panel has its own y scale"));

    // Gradients a few decades apart: auto keeps one shared axis.
    let near = tmp.path().join("near");
    write_folder(&near, &Folder::default());
    render_all_with(&near, Style::default()).expect("render");
    let near = ticks_per_panel(&svg(&near, GRADIENT_PROFILE));
    assert_eq!(near[0], near[1]);
}

/// The value a y tick label stands for ("0.8", "1.5e6" or "10⁵").
fn tick_value(label: &str) -> f64 {
    if let Ok(v) = label.parse() {
        return v;
    }
    let sup: String = label
        .trim_start_matches("10")
        .chars()
        .map(|c| match c {
            '⁻' => '-',
            c => char::from_digit(
                "⁰¹²³⁴⁵⁶⁷⁸⁹".chars().position(|d| d == c).unwrap_or(0) as u32,
                10,
            )
            .unwrap_or('0'),
        })
        .collect();
    10f64.powi(sup.parse().unwrap_or(0))
}

/// A diverged run whose layer means blew up to 8.5e5 sets no shared range:
/// every panel's axis ends under 1; asked for per-panel scales, its own
/// panel does reach 8.5e5.
#[test]
fn a_diverged_value_of_8_5e5_does_not_set_the_shared_range() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("blown");
    write_folder(
        &root,
        &Folder {
            diverged: &[("residual", 8, 20)],
            ..Folder::default()
        },
    );
    let top = |y_scale| -> Vec<f64> {
        let style = Style {
            y_scale,
            ..Style::default()
        };
        render_all_with(&root, style).expect("render");
        let text = svg(&root, ACTIVATION_MEAN_VS_STEP);
        assert!(text.contains("diverged at step 20"), "the panel says so");
        ticks_per_panel(&text)
            .iter()
            .map(|t| t.iter().map(|l| tick_value(l)).fold(f64::MIN, f64::max))
            .collect()
    };
    for y_scale in [YScale::Auto, YScale::Shared] {
        let tops = top(y_scale);
        assert_eq!(tops.len(), 2);
        assert!(
            tops.iter().all(|&t| t < 1.0),
            "{y_scale:?}: the diverged run set the axis: {tops:?}"
        );
    }
    let tops = top(YScale::Panel);
    assert!(tops[1] >= 8.5e5, "{tops:?}");
    assert!(tops[0] < 1.0, "{tops:?}");
}

/// A diverged run is a ✕ with "diverged at step N" in both the training
/// curve chart and the final-error chart; its depth stays in the legend.
#[test]
fn a_diverged_run_is_a_cross_with_its_step() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("div");
    write_folder(
        &root,
        &Folder {
            diverged: &[("plain", 8, 20)],
            ..Folder::default()
        },
    );
    render_all_with(&root, Style::default()).expect("render");
    for (name, label) in [
        (TRAIN_ERROR_VS_STEP, "d8 (diverged at step 20)"),
        (ERROR_VS_DEPTH, "plain d8 (diverged at step 20)"),
    ] {
        let text = svg(&root, name);
        let all = texts(&text);
        assert!(
            all.iter().any(|t| t.body == label),
            "{name} lacks {label:?}"
        );
        let rects = plot_rects(&text);
        let crosses = all
            .iter()
            .filter(|t| t.body == "✕" && rects.iter().any(|r| r.contains(t.x, t.y + 1.0)))
            .count();
        assert!(crosses >= 1, "{name}: no ✕ in a plot area");
    }
}
