//! The self-contained HTML report: inline CSS and SVG, no scripts. ARC tasks show the
//! demonstrations, test input, truth ("hidden" when unknown), top-2 attempts and the
//! segment-by-segment answer; Sudoku and Maze show a few example boards.

use std::fmt::Write as _;

use hrm_grid::Grid;

use super::curves::{escape, LineChart};
use super::{percent, unscored_note, Benchmark, HRM_SCORING, PRIZE_SCORING};
use crate::arc::{Answer, ArcReport, ArcTaskResult, Attempt};
use crate::dataset::ArcTestPair;
use crate::validity::{MAZE_GOAL, MAZE_OPEN, MAZE_PATH, MAZE_START, MAZE_WALL};
use crate::{EvalReport, TaskFamily};

/// The 10 ARC colours, indexed by colour.
pub const ARC_COLOURS: [&str; 10] = [
    "#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B",
    "#7FDBFF", "#870C25",
];

/// One traced row of the refinement view: the answer after each segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentView {
    /// The prediction row.
    pub row: usize,
    /// The variant name of the row (its augmentation).
    pub variant: String,
    /// The test input of the task it votes for, when it matched one.
    pub test_index: Option<usize>,
    /// The de-augmented answer after each segment, with whether it equals the truth.
    pub steps: Vec<(Answer, bool)>,
}

/// Everything the page shows about one ARC task.
#[derive(Debug, Clone, PartialEq)]
pub struct ArcTaskView {
    /// The scored task.
    pub result: ArcTaskResult,
    /// Its demonstration pairs (from the dataset's train split).
    pub demonstrations: Vec<ArcTestPair>,
    /// The traced rows of this task.
    pub traces: Vec<SegmentView>,
}

/// One Sudoku or Maze example shown on the page (tokens in dataset encoding).
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleView {
    /// The prediction row.
    pub row: usize,
    /// The input tokens.
    pub input: Vec<u8>,
    /// The predicted tokens.
    pub pred: Vec<u8>,
    /// The label tokens.
    pub label: Vec<u8>,
    /// Whether the prediction equals the label.
    pub exact: bool,
    /// Whether the prediction is a valid solution.
    pub valid: bool,
    /// The predicted tokens after each segment, when traced.
    pub segments: Vec<Vec<u8>>,
}

/// The inputs of [`render_html`].
#[derive(Debug, Clone)]
pub struct HtmlPage<'a> {
    /// The page title.
    pub title: &'a str,
    /// The scores.
    pub report: &'a EvalReport,
    /// The published benchmark compared against.
    pub benchmark: Benchmark,
    /// The part of the benchmark measured, when not all of it (see [`super::scope_note`]).
    pub scope: Option<&'a str>,
    /// The free-text note (plain text; shown pre-wrapped); a blank note leaves the section out.
    pub note: &'a str,
    /// Training curves.
    pub charts: &'a [LineChart],
    /// pass@K against K (ARC), shown after the summary, before the training curves.
    pub pass_at_k: Option<&'a LineChart>,
    /// ARC tasks to show.
    pub arc_tasks: &'a [ArcTaskView],
    /// Sudoku or Maze examples to show.
    pub examples: &'a [ExampleView],
}

const CSS: &str = "
body{font-family:Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#222}
main{max-width:1160px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:22px;margin:6px 0 10px}
h2{font-size:18px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:0 0 8px}
table.summary{border-collapse:collapse;background:#fff;font-size:13px}
table.summary td,table.summary th{border:1px solid #ddd;padding:4px 10px;text-align:left}
table.summary th{background:#eef0f3}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.card{background:#fff;border:1px solid #dcdfe4;border-radius:6px;padding:12px 14px;margin:12px 0}
.fig{display:flex;flex-direction:column;align-items:center;font-size:11px;color:#555;gap:3px}
.pair{display:flex;align-items:center;gap:6px;padding:6px;background:#fafafa;border:1px solid #eee;border-radius:4px}
.arrow{font-size:18px;color:#999}
.ok{color:#1a8f3a;font-weight:bold}
.bad{color:#d0312d;font-weight:bold}
.right{outline:3px solid #2ECC40;outline-offset:2px}
.wrong{outline:3px solid #FF4136;outline-offset:2px}
.label{font-size:12px;color:#666;margin:8px 0 4px}
.note{white-space:pre-wrap;background:#fff;border:1px solid #ddd;padding:10px;border-radius:4px}
.invalid{display:flex;align-items:center;justify-content:center;width:60px;height:60px;background:#eee;border:1px dashed #999;color:#777;font-size:11px}
.strip{display:flex;flex-wrap:wrap;gap:8px}
table.summary td.scope{background:#fff8e1;color:#6b4e00;max-width:520px}
table.summary td.nest{padding:0;border:0}
table.passk{width:100%}
table.passk td{text-align:right}
";

/// An ARC grid as an inline SVG, cells sized so the longer side is about `target` pixels.
pub fn arc_grid_svg(grid: &Grid, target: usize) -> String {
    let (h, w) = grid.shape();
    let cell = (target / h.max(w)).clamp(4, 20);
    let (pw, ph) = (w * cell + 1, h * cell + 1);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{pw}" height="{ph}" viewBox="0 0 {pw} {ph}"><rect width="{pw}" height="{ph}" fill="#555555"/>"##
    );
    for r in 0..h {
        for c in 0..w {
            let colour = ARC_COLOURS[usize::from(grid.get(r, c)).min(9)];
            let _ = write!(
                svg,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{colour}"/>"#,
                c * cell + 1,
                r * cell + 1,
                cell - 1,
                cell - 1
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn figure(body: &str, caption: &str, class: &str) -> String {
    format!(r#"<div class="fig"><div class="{class}">{body}</div><div>{caption}</div></div>"#)
}

/// The truth of a test input, or a "hidden" box when it is unknown.
fn truth_svg(truth: Option<&Grid>, target: usize) -> String {
    match truth {
        Some(g) => arc_grid_svg(g, target),
        None => r#"<div class="invalid">hidden</div>"#.to_string(),
    }
}

fn answer_svg(answer: Option<&Grid>, target: usize) -> String {
    match answer {
        Some(g) => arc_grid_svg(g, target),
        None => r#"<div class="invalid">invalid</div>"#.to_string(),
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        r#"<span class="ok">&#10003;</span>"#
    } else {
        r#"<span class="bad">&#10007;</span>"#
    }
}

fn votes(n: usize) -> String {
    if n == 1 {
        "1 vote".to_string()
    } else {
        format!("{n} votes")
    }
}

/// An attempt with its votes; marked right or wrong only when the truth is `known`.
fn attempt_figure(i: usize, a: &Attempt, known: bool) -> String {
    let judged = if known { mark(a.correct) } else { "" };
    let caption = format!(
        "attempt {} {judged} &middot; {} &middot; q {:.2}",
        i + 1,
        votes(a.votes),
        a.mean_q_halt
    );
    let class = match (known, a.correct) {
        (false, _) => "",
        (true, true) => "right",
        (true, false) => "wrong",
    };
    figure(&answer_svg(a.grid.as_ref(), 120), &caption, class)
}

fn render_arc_task(out: &mut String, view: &ArcTaskView) {
    let r = &view.result;
    let status = match (r.scored, r.task_rank) {
        (false, _) => "unscored: test output hidden".to_string(),
        (true, Some(k)) => format!("{} pass@2 &middot; truth rank {k}", mark(r.solved_at(2))),
        (true, None) => format!("{} never proposed", mark(false)),
    };
    let _ = write!(
        out,
        r#"<div class="card"><h3>Task {} &nbsp; {status}</h3>"#,
        escape(&r.name)
    );
    if !view.demonstrations.is_empty() {
        out.push_str(
            r#"<div class="label">Demonstrations (input &rarr; output)</div><div class="row">"#,
        );
        for pair in &view.demonstrations {
            let _ = write!(
                out,
                r#"<div class="pair">{}<span class="arrow">&rarr;</span>{}</div>"#,
                arc_grid_svg(&pair.input, 80),
                truth_svg(pair.output.as_ref(), 80)
            );
        }
        out.push_str("</div>");
    }
    for t in &r.tests {
        let rank = match (&t.truth, t.rank) {
            (None, _) => "hidden".to_string(),
            (Some(_), Some(k)) => k.to_string(),
            (Some(_), None) => "none".to_string(),
        };
        let _ = write!(
            out,
            r#"<div class="label">Test input {} &middot; {} voting rows &middot; {} distinct answers &middot; truth rank {rank}</div><div class="row">"#,
            t.index,
            t.num_rows,
            t.vote_counts.len()
        );
        out.push_str(&figure(&arc_grid_svg(&t.input, 120), "test input", ""));
        out.push_str(r#"<span class="arrow" style="align-self:center">&rarr;</span>"#);
        out.push_str(&figure(&truth_svg(t.truth.as_ref(), 120), "truth", ""));
        for (i, a) in t.top.iter().enumerate() {
            out.push_str(&attempt_figure(i, a, t.truth.is_some()));
        }
        if t.top.is_empty() {
            out.push_str(&figure(
                r#"<div class="invalid">no votes</div>"#,
                "attempts",
                "",
            ));
        }
        out.push_str("</div>");
    }
    for trace in &view.traces {
        let test = trace
            .test_index
            .map_or("no test input".to_string(), |j| format!("test input {j}"));
        let _ = write!(
            out,
            r#"<div class="label">Segment by segment: row {} ({}, {test}), de-augmented</div><div class="strip">"#,
            trace.row,
            escape(&trace.variant)
        );
        for (m, (answer, ok)) in trace.steps.iter().enumerate() {
            let grid = match answer {
                Answer::Grid(g) => Some(g),
                Answer::Invalid => None,
            };
            let class = if *ok { "right" } else { "" };
            out.push_str(&figure(
                &answer_svg(grid, 60),
                &format!("seg {} {}", m + 1, mark(*ok)),
                class,
            ));
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
}

fn sudoku_svg(tokens: &[u8], givens: &[u8], label: Option<&[u8]>, cell: usize) -> String {
    let font = cell * 14 / 22;
    let size = cell * 9 + 2;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" font-family="Helvetica, Arial, sans-serif" font-size="{font}"><rect width="{size}" height="{size}" fill="#ffffff"/>"##
    );
    for i in 0..81.min(tokens.len()) {
        let (r, c) = (i / 9, i % 9);
        let (x, y) = (1 + c * cell, 1 + r * cell);
        let given = givens.get(i).is_some_and(|&g| g >= 2);
        let wrong = label.is_some_and(|l| l.get(i) != tokens.get(i));
        if wrong {
            let _ = write!(
                svg,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#ffd6d3"/>"##
            );
        } else if given {
            let _ = write!(
                svg,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#eeeeee"/>"##
            );
        }
        let t = tokens[i];
        if (2..=10).contains(&t) {
            let colour = if given {
                "#111111"
            } else if wrong {
                "#FF4136"
            } else {
                "#0074D9"
            };
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle" fill="{colour}">{}</text>"#,
                x + cell / 2,
                y + cell / 2 + font * 5 / 14,
                t - 1
            );
        }
    }
    for k in 0..=9 {
        let p = 1 + k * cell;
        let width = if k % 3 == 0 { 2 } else { 1 };
        let _ = write!(
            svg,
            r##"<line x1="{p}" y1="0" x2="{p}" y2="{size}" stroke="#333" stroke-width="{width}"/><line x1="0" y1="{p}" x2="{size}" y2="{p}" stroke="#333" stroke-width="{width}"/>"##
        );
    }
    svg.push_str("</svg>");
    svg
}

fn maze_svg(tokens: &[u8], side: usize, label: Option<&[u8]>, cell: usize) -> String {
    let size = side * cell;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">"#
    );
    for (i, &t) in tokens.iter().enumerate().take(side * side) {
        let wrong = label.is_some_and(|l| l.get(i) != Some(&t));
        let colour = match t {
            MAZE_WALL => "#333333",
            MAZE_OPEN => "#ffffff",
            MAZE_START => "#2ECC40",
            MAZE_GOAL => "#FF4136",
            MAZE_PATH if wrong => "#FF851B",
            MAZE_PATH => "#0074D9",
            _ => "#F012BE",
        };
        let colour = if wrong && t == MAZE_OPEN {
            "#FFDC00"
        } else {
            colour
        };
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="{cell}" height="{cell}" fill="{colour}"/>"#,
            (i % side) * cell,
            (i / side) * cell
        );
    }
    svg.push_str("</svg>");
    svg
}

fn render_example(out: &mut String, task: TaskFamily, ex: &ExampleView) {
    let _ = write!(
        out,
        r#"<div class="card"><h3>Row {} &nbsp; exact {} &nbsp; valid {}</h3><div class="row">"#,
        ex.row,
        mark(ex.exact),
        mark(ex.valid)
    );
    let side = crate::maze_side(ex.input.len()).unwrap_or(1);
    let draw = |tokens: &[u8], label: Option<&[u8]>, small: bool| match task {
        TaskFamily::Sudoku => sudoku_svg(tokens, &ex.input, label, if small { 14 } else { 22 }),
        _ => maze_svg(tokens, side, label, if small { 4 } else { 7 }),
    };
    out.push_str(&figure(&draw(&ex.input, None, false), "input", ""));
    out.push_str(&figure(&draw(&ex.label, None, false), "label", ""));
    let class = if ex.exact { "right" } else { "wrong" };
    out.push_str(&figure(
        &draw(&ex.pred, Some(&ex.label), false),
        "prediction",
        class,
    ));
    out.push_str("</div>");
    if !ex.segments.is_empty() {
        out.push_str(r#"<div class="label">Segment by segment</div><div class="strip">"#);
        for (m, seg) in ex.segments.iter().enumerate() {
            out.push_str(&figure(
                &draw(seg, Some(&ex.label), true),
                &format!("seg {} {}", m + 1, mark(seg == &ex.label)),
                "",
            ));
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
}

/// The pass@K grid of an ARC report, K across: the rate and count of both scorings, as one
/// full-width row of the summary table.
fn pass_at_table(arc: &ArcReport) -> String {
    let mut out = String::from(
        r#"<tr><td colspan="4" class="nest"><table class="summary passk"><tr><th>pass@K</th>"#,
    );
    for p in &arc.pass_at {
        let _ = write!(out, "<th>K = {}</th>", p.k);
    }
    let scored = arc.num_tasks_scored();
    let lines: [(&str, Vec<String>); 3] = [
        (
            HRM_SCORING,
            arc.pass_at.iter().map(|p| percent(p.rate)).collect(),
        ),
        (
            "tasks solved (HRM)",
            arc.pass_at
                .iter()
                .map(|p| format!("{}/{scored}", p.solved))
                .collect(),
        ),
        (
            PRIZE_SCORING,
            arc.pass_at.iter().map(|p| percent(p.prize)).collect(),
        ),
    ];
    for (name, cells) in &lines {
        let _ = write!(out, "</tr><tr><th>{name}</th>");
        for cell in cells {
            let _ = write!(out, "<td>{cell}</td>");
        }
    }
    out.push_str("</tr></table></td></tr>");
    out
}

/// Renders the whole page.
pub fn render_html(page: &HtmlPage<'_>) -> String {
    let report = page.report;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{}</title><style>{CSS}</style></head><body><main><h1>{}</h1>"#,
        escape(page.title),
        escape(page.title)
    );
    out.push_str(r#"<div class="row"><table class="summary"><tr><th>benchmark</th><th>metric</th><th>measured</th><th>published (HRM paper)</th></tr>"#);
    let _ = write!(
        out,
        "<tr><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td></tr>",
        page.benchmark.label(),
        page.benchmark.metric(),
        percent(report.headline()),
        percent(page.benchmark.published())
    );
    if let Some(scope) = page.scope {
        let _ = write!(
            out,
            r#"<tr><td colspan="4" class="scope">Scope: {}.</td></tr>"#,
            escape(scope)
        );
    }
    if let Some(v) = &report.validity {
        let _ = write!(
            out,
            r#"<tr><td></td><td>valid rate</td><td>{}</td><td></td></tr>"#,
            percent(v.valid_rate)
        );
    }
    if let Some(arc) = &report.arc {
        out.push_str(&pass_at_table(arc));
        if let Some(note) = unscored_note(arc) {
            let _ = write!(
                out,
                r#"<tr><td colspan="4" class="scope">Unscored: {}.</td></tr>"#,
                escape(&note)
            );
        }
    }
    out.push_str("</table><table class=\"summary\">");
    let a = &report.accuracy;
    let rows = [
        ("task", report.task.as_str().to_string()),
        ("checkpoint", report.checkpoint.clone()),
        ("dataset", report.dataset_dir.clone()),
        ("segments", report.num_segments.to_string()),
        ("rows", a.rows.to_string()),
        ("exact accuracy (per row)", percent(a.exact_accuracy)),
        ("token accuracy", percent(a.token_accuracy)),
        ("q_halt accuracy", percent(a.q_halt_accuracy)),
    ];
    for (k, v) in rows {
        let _ = write!(out, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    out.push_str("</table></div>");
    // pass@K first, then the training curves, three to a row.
    let charts: Vec<&LineChart> = page.pass_at_k.into_iter().chain(page.charts).collect();
    if !charts.is_empty() {
        let heading = match (page.pass_at_k.is_some(), page.charts.is_empty()) {
            (true, true) => "pass@K against K",
            (true, false) => "pass@K and training curves",
            (false, _) => "Training curves",
        };
        let _ = write!(out, r#"<h2>{heading}</h2><div class="row">"#);
        for chart in charts {
            out.push_str(&chart.to_svg(360, 270));
        }
        out.push_str("</div>");
    }
    if !page.arc_tasks.is_empty() {
        out.push_str("<h2>ARC tasks</h2>");
        for view in page.arc_tasks {
            render_arc_task(&mut out, view);
        }
    }
    if !page.examples.is_empty() {
        out.push_str("<h2>Examples</h2>");
        let legend = match report.task {
            TaskFamily::Sudoku => "Grey cells are givens, blue digits were filled in, red cells differ from the label.",
            _ => "Walls dark, open cells white, S green, G red, path blue; in predictions, orange path cells are not on the label path and yellow cells are label path cells that were missed.",
        };
        let _ = write!(out, r#"<div class="label">{legend}</div>"#);
        for ex in page.examples {
            render_example(&mut out, report.task, ex);
        }
    }
    if !page.note.trim().is_empty() {
        out.push_str("<h2>Notes</h2>");
        let _ = write!(out, r#"<div class="note">{}</div>"#, escape(page.note));
    }
    out.push_str("</main></body></html>\n");
    out
}
