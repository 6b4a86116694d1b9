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
