//! Screenshot test: renders a small report.html from synthetic predictions in headless
//! Chromium and checks the PNG is the right size, not blank, and shows the ARC colours.
//!
//! Chromium must be installed at /usr/bin/chromium (`apt-get install -y chromium`); CI
//! installs it the same way. Without it this test fails on purpose.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hrm_eval::report::{write_report, ReportOptions};

const CHROMIUM: &str = "/usr/bin/chromium";
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 900;

/// Runs headless Chromium on `html`, writing `png`; fails after two minutes.
fn screenshot(html: &Path, png: &Path, profile: &Path) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install it with `apt-get update && apt-get install -y chromium` \
         (CI installs it the same way)"
    );
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("chromium can be waited on") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            assert!(status.success(), "chromium failed ({status}): {err}");
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hex(colour: &str) -> [u8; 3] {
    let v = u32::from_str_radix(&colour[1..], 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[test]
fn report_html_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (data, preds) = report_world(dir.path());
    let options = ReportOptions {
        note: "Synthetic predictions for the screenshot test.".into(),
        metrics_jsonl: Some(write_metrics(dir.path())),
        ..ReportOptions::default()
    };
    let out = dir.path().join("report");
    let (_, files) = write_report(&out, &preds, &data, &options).unwrap();
    let png_path = dir.path().join("shot.png");
    screenshot(&files.html, &png_path, &dir.path().join("profile"));
    // Set HRM_EVAL_KEEP_DIR to keep the page and the screenshot for a look by eye.
    if let Ok(keep) = std::env::var("HRM_EVAL_KEEP_DIR") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        std::fs::copy(&png_path, keep.join("shot.png")).unwrap();
        std::fs::copy(&files.html, keep.join("report.html")).unwrap();
        std::fs::copy(&files.markdown, keep.join("report.md")).unwrap();
    }

    let file = std::fs::File::open(&png_path).expect("chromium wrote the PNG");
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a valid PNG header");
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("valid PNG data");
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "colour PNG expected, got {:?}",
        info.color_type
    );
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let distinct: std::collections::HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(
        distinct.len() > 20,
        "only {} distinct colours: blank page?",
        distinct.len()
    );
    let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 3);
    // The grids of the first task are visible above the fold and use these ARC colours.
    for colour in [
        "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#F012BE", "#7FDBFF",
    ] {
        let want = hex(colour);
        let count = pixels.iter().filter(|&&p| near(p, want)).count();
        assert!(
            count >= 20,
            "ARC colour {colour} shows on only {count} pixels"
        );
    }
}
