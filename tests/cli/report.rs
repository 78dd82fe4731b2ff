//! `foramen report`: a recording's per-second timeline against its own masks, on
//! synthetic and on real endoscopic video, with a crash-cut recording marked.

use std::path::Path;

use crate::common;
use crate::common::{bundled_model, foramen, ok, repo};

/// Checks `out/timeline.csv` against recording `session`'s own files: its frames and
/// masks add up to `frames.csv`'s rows and `masks.bin`'s records, and every second's
/// class shares equal those computed from the records captured in it; and that each
/// key frame of `report.html` is there. Returns the number of seconds.
fn assert_timeline_matches_masks(session: &Path, out: &Path) -> usize {
    let (masks, _) =
        foramen_data::recording::read_masks(&session.join("masks.bin")).expect("masks");
    let csv = std::fs::read_to_string(out.join("timeline.csv")).expect("timeline");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    let first_share = header
        .iter()
        .position(|c| c.starts_with("share_"))
        .expect("shares");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let frames_csv = std::fs::read_to_string(session.join("frames.csv")).expect("frames");
    let sum = |col: usize| {
        rows.iter()
            .map(|r| r[col].parse::<u64>().expect("count"))
            .sum::<u64>()
    };
    assert_eq!(sum(1), frames_csv.lines().count() as u64 - 1, "{csv}");
    assert_eq!(sum(3), masks.len() as u64, "{csv}");
    let t0: u64 = frames_csv
        .lines()
        .nth(1)
        .expect("row")
        .split(',')
        .nth(2)
        .expect("t")
        .parse()
        .expect("t0");
    for (second, row) in rows.iter().enumerate() {
        let here: Vec<_> = masks
            .iter()
            .filter(|m| (m.captured_at_us - t0) / 1_000_000 == second as u64)
            .collect();
        let pixels: usize = here.iter().map(|m| m.classes.len()).sum();
        for (k, cell) in row[first_share..].iter().enumerate() {
            let n: usize = here
                .iter()
                .map(|m| m.classes.iter().filter(|&&c| c as usize == k).count())
                .sum();
            if pixels == 0 {
                assert!(cell.is_empty(), "second {second}: {csv}");
                continue;
            }
            let share: f64 = cell.parse().expect("share");
            assert!(
                (share - n as f64 / pixels as f64).abs() < 1e-6,
                "second {second}, class {k}: {csv}"
            );
        }
    }
    let html = std::fs::read_to_string(out.join("report.html")).expect("html");
    for src in html.split("src=\"").skip(1) {
        let file = src.split('"').next().expect("src");
        assert!(out.join(file).is_file(), "{file}");
    }
    rows.len()
}

/// Issue 22, item 1: `foramen report` on a recording made by `live --headless --record`:
/// one timeline row per second whose frames and masks add up to the recording's files,
/// each class's share as computed from `masks.bin`, the figure and the page; a
/// `masks.bin` cut by a crash still gives a report, which marks the missing span.
#[test]
fn report_writes_a_per_second_timeline_of_a_recording_and_marks_a_cut() {
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("rec");
    let rec_s = rec.display().to_string();
    let model = bundled_model();
    ok(&[
        "live",
        "--device",
        "synthetic:3:96x64@25",
        "--headless",
        "--record",
        "--record-dir",
        &rec_s,
        "--exit-after-frames",
        "100",
        "--model",
        &model,
    ]);
    let session = common::first_entry(&rec);
    let session_s = session.display().to_string();
    let out = dir.path().join("report");
    let out_s = out.display().to_string();
    let log = ok(&["report", &session_s, "--out", &out_s]);
    let rows = assert_timeline_matches_masks(&session, &out);
    assert!(rows >= 4, "{rows} seconds");
    for f in ["timeline.svg", "timeline.png", "report.html"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).expect("html");
    assert!(
        html.contains("no patient data") && html.contains("lumbar-synth.onnx"),
        "{html}"
    );
    // Which version of the model ran: its size and CRC-32 when the recording started.
    let model_bytes = std::fs::metadata(&model).expect("model").len();
    assert!(
        html.contains(&format!("lumbar-synth.onnx ({model_bytes} bytes, CRC-32 ")),
        "{html}"
    );
    assert!(log.contains("nothing missing"), "{log}");
    // Never written into the recording.
    let inside = session.join("report").display().to_string();
    assert!(
        !foramen(&["report", &session_s, "--out", &inside])
            .status
            .success()
    );
    // A crash cut masks.bin in its middle: what is readable is reported, the rest missing.
    let bin = session.join("masks.bin");
    let len = std::fs::metadata(&bin).expect("bin").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&bin)
        .expect("open");
    f.set_len(len / 2 - 5).expect("cut");
    let log = ok(&["report", &session_s, "--out", &out_s]);
    assert!(
        log.contains("last mask cut") && log.contains("missing from"),
        "{log}"
    );
    let csv = std::fs::read_to_string(out.join("timeline.csv")).expect("timeline");
    assert!(
        csv.lines().last().expect("last").contains(",missing,"),
        "{csv}"
    );
}

/// Issue 22, item 1 on real endoscopic video: a vocalfolds sequence played through the
/// live path (`live --device FOLDER --headless --record`) with the vocalfolds model;
/// its report's per-second shares equal `masks.bin`'s, and its key frames are there.
#[test]
fn report_of_a_recorded_vocalfolds_sequence_matches_its_masks() {
    let seq = repo().join("../shared/data/vocalfolds/img/patient2/seq6");
    if !seq.is_dir() {
        eprintln!("skipped: {} not present", seq.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let model = repo().join("models/vocalfolds.onnx").display().to_string();
    let session = common::record(dir.path(), &seq.display().to_string(), &model, 44, &[]);
    let out = dir.path().join("report");
    let log = ok(&[
        "report",
        &session.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    // Every frame: `--record` puts the recorder in place before the capture starts (43 of
    // 44 were recorded once, 2026-12-03, when the recording opened after the first
    // frame). One more may reach the recorder before the session's poll sees the count.
    assert!(
        log.contains("44 frames") || log.contains("45 frames"),
        "{log}"
    );
    assert!(assert_timeline_matches_masks(&session, &out) >= 1);
    let csv = std::fs::read_to_string(out.join("timeline.csv")).expect("timeline");
    for class in ["void", "vocal folds", "other tissue"] {
        assert!(
            csv.lines()
                .next()
                .expect("header")
                .contains(&format!("share_{class}")),
            "{csv}"
        );
    }
    let keys = std::fs::read_dir(out.join("keyframes"))
        .expect("key frames")
        .count();
    assert!(keys >= 3, "{keys} key frames");
}
