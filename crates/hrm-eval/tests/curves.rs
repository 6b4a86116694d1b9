//! Training curves: train and eval counts on separate charts, constant series on sensible axes, and
//! smoothed training lines drawn over the faint raw series.

use std::path::Path;

use hrm_eval::report::curves::{charts_from_metrics, parse_metrics_jsonl};

/// `train/*` lines of `hrm train` (windows; accuracies only when something halted) and `eval/*` lines.
const METRICS: &str = "\
{\"step\": 10, \"train/count\": 0, \"train/lm_loss\": 2.5, \"train/lr\": 0.001}
{\"step\": 20, \"train/count\": 12, \"train/exact_accuracy\": 0.1, \"train/lm_loss\": 2.1, \"train/lr\": 0.001}
{\"step\": 30, \"train/count\": 40, \"train/exact_accuracy\": 0.2, \"train/lm_loss\": 1.9, \"train/lr\": 0.001}
{\"step\": 30, \"eval/count\": 2048, \"eval/exact_accuracy\": 0.15, \"eval/lm_loss\": 2.0}
";

#[test]
fn train_and_eval_counts_never_share_a_chart() {
    let log = parse_metrics_jsonl(METRICS, Path::new("metrics.jsonl")).unwrap();
    let charts = charts_from_metrics(&log);
    for chart in &charts {
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert!(
            !(names.contains(&"train/count") && names.contains(&"eval/count")),
            "chart {} mixes the counts: {names:?}",
            chart.title
        );
    }
    let train = charts.iter().find(|c| c.title == "train/count").unwrap();
    assert_eq!(train.series.len(), 1);
    assert!(train.y_label.contains("halted"), "{}", train.y_label);
    let eval = charts.iter().find(|c| c.title == "eval/count").unwrap();
    assert_eq!(eval.series.len(), 1);
    assert!(eval.y_label.contains("evaluated"), "{}", eval.y_label);
    // Comparable metrics still share a chart.
    let acc = charts.iter().find(|c| c.title == "exact_accuracy").unwrap();
    assert_eq!(acc.series.len(), 2);
}

/// The y tick labels of a chart's SVG (the only right-aligned texts).
fn y_tick_labels(svg: &str) -> Vec<String> {
    svg.split(r##"text-anchor="end" fill="#444">"##)
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_string())
        .collect()
}

/// The y coordinates of a chart's data dots.
fn dot_ys(svg: &str) -> Vec<f64> {
    svg.split("<circle ")
        .skip(1)
        .map(|rest| {
            let cy = rest.split("cy=\"").nth(1).unwrap();
            cy.split('"').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn constant_series_get_a_padded_axis() {
    let cases = [
        ("all equal", vec![0.5, 0.5, 0.5, 0.5]),
        ("all zero", vec![0.0, 0.0, 0.0]),
        ("one point", vec![2.0]),
        ("float noise", vec![1000.0, 1000.0 + 1e-10, 1000.0]),
        ("large", vec![3.0e9, 3.0e9]),
    ];
    for (what, values) in cases {
        let text: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{{\"step\": {}, \"eval/count\": {v}}}\n", 100 * (i + 1)))
            .collect();
        let log = parse_metrics_jsonl(&text, Path::new("m")).unwrap();
        let chart = &charts_from_metrics(&log)[0];
        let svg = chart.to_svg(560, 300);
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "{what}: non-finite coordinates"
        );
        let labels = y_tick_labels(&svg);
        assert!(
            (2..=12).contains(&labels.len()),
            "{what}: {} y ticks: {labels:?}",
            labels.len()
        );
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct, labels, "{what}: repeated tick labels");
        // The flat line sits inside the plot, not on its top or bottom edge.
        let ys = dot_ys(&svg);
        assert_eq!(ys.len(), values.len(), "{what}");
        let (top, bottom) = (55.0, 300.0 - 46.0);
        for y in ys {
            assert!(y > top + 5.0 && y < bottom - 5.0, "{what}: dot at y = {y}");
        }
    }
}

#[test]
fn smoothing_keeps_constants_and_follows_length() {
    use hrm_eval::report::curves::{smooth, smoothing_weight};
    assert_eq!(smoothing_weight(5), 0.0, "short series are not smoothed");
    assert!((smoothing_weight(10) - 0.6).abs() < 1e-12);
    assert!((smoothing_weight(1000) - 0.9).abs() < 1e-12);
    assert_eq!(smoothing_weight(100_000), 0.9);
    assert!(smoothing_weight(100) > 0.6 && smoothing_weight(100) < 0.9);
    let flat = smooth(&[3.0; 50], 0.8);
    assert!(flat.iter().all(|v| (v - 3.0).abs() < 1e-12), "{flat:?}");
    let s = smooth(&[1.0, 0.0, 1.0, 0.0], 0.6);
    assert_eq!(s[0], 1.0, "debiased: the first value is kept");
    assert!(s[1] > 0.0 && s[1] < 1.0);
}

#[test]
fn training_curves_are_smoothed_over_the_faint_raw_line() {
    let mut text = String::new();
    for i in 0..200 {
        let noise = if i % 2 == 0 { 0.3 } else { -0.3 };
        text.push_str(&format!(
            "{{\"step\": {}, \"train/lm_loss\": {}, \"train/lr\": 0.001}}\n",
            10 * i,
            2.0 - i as f64 / 200.0 + noise
        ));
        if i % 50 == 0 {
            text.push_str(&format!(
                "{{\"step\": {}, \"eval/lm_loss\": {}}}\n",
                10 * i,
                2.0 - i as f64 / 200.0
            ));
        }
    }
    let log = parse_metrics_jsonl(&text, Path::new("m")).unwrap();
    let charts = charts_from_metrics(&log);
    let loss = charts.iter().find(|c| c.title == "lm_loss").unwrap();
    let svg = loss.to_svg(720, 400);
    // The training series: one faint raw line and one smoothed line; the eval series: a plain line with dots.
    assert_eq!(svg.matches(r#"class="raw""#).count(), 1, "{svg}");
    assert!(svg.contains(r#"stroke-opacity="0.25""#));
    assert_eq!(svg.matches(r#"class="smoothed""#).count(), 1);
    assert!(
        svg.contains("train/lm_loss (smoothed 0."),
        "legend names the weight"
    );
    assert_eq!(svg.matches("<polyline").count(), 3);
    assert_eq!(svg.matches("<circle").count(), 4, "the 4 eval points only");
    // The smoothed line is flatter than the raw one (the ±0.3 zig-zag is damped).
    let spread = |class: &str| {
        let pts = svg.split(&format!(r#"class="{class}""#)).nth(1).unwrap();
        let pts = pts
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let ys: Vec<f64> = pts
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        ys.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>()
    };
    assert!(spread("smoothed") < spread("raw") / 3.0);
    // The learning rate is a schedule: drawn as is.
    let lr = charts
        .iter()
        .find(|c| c.title == "lr")
        .unwrap()
        .to_svg(720, 400);
    assert!(!lr.contains("smoothed") && !lr.contains(r#"class="raw""#));
}
