//! The report of a recording with injected faults: each fault band where it happened.

use std::path::Path;
use std::process::Command;

use crate::common;
use crate::common::{bin, bundled_model, text};

/// Records 250 frames (10 s) of a 25 fps synthetic scene with the bundled model and
/// `fault` injected, then runs `foramen report` on it; the timeline's states, by second.
///
/// The report reads masks as stale only past 1 s (the product's limit is 250 ms): the
/// faults last 2.5 s and 4 s, far beyond it, while a 2-core machine running the soak
/// beside this test can make the worker lag a few hundred milliseconds before any fault
/// is injected, which would read as a stale band where no fault was.
fn report_states_with(dir: &Path, fault: &str) -> Vec<String> {
    let device = "synthetic:4:160x96@25";
    let fault = [("FORAMEN_FAULT_INJECT", fault)];
    let session = common::record(dir, device, &bundled_model(), 250, &fault);
    let report = dir.join("report");
    let cfg = dir.join("report.toml");
    std::fs::write(&cfg, "[inference]\nmax_mask_age_ms = 1000.0\n").expect("config");
    let out = Command::new(bin())
        .args(["--config", &cfg.display().to_string()])
        .args(["report", &session.display().to_string()])
        .args(["--out", &report.display().to_string()])
        .output()
        .expect("report");
    assert!(out.status.success(), "{}", text(&out));
    let csv = std::fs::read_to_string(report.join("timeline.csv")).expect("timeline");
    let state_col = csv
        .lines()
        .next()
        .expect("header")
        .split(',')
        .position(|c| c == "state")
        .expect("state column");
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').nth(state_col).expect("state").to_string())
        .collect()
}

/// Issue 22: the report's fault bands sit where fault injection put them. A worker
/// that hangs for 4 s from frame 75 (3.0 s) leaves the masks stale from second 3 to
/// about 7; a capture card that stops for 2.5 s from frame 75 leaves second 4 without
/// frames (a gap). Before the fault and after it the AI is on. (With the 1 s limit the
/// hang's first second still reads on: its masks are under 1 s old.)
#[test]
fn report_fault_bands_sit_where_the_faults_were_injected() {
    let dir = tempfile::tempdir().expect("tmp");
    let states = report_states_with(&dir.path().join("hang"), "hang@75:4000");
    let stale: Vec<usize> = (0..states.len())
        .filter(|&i| states[i] == "stale")
        .collect();
    assert!(
        [4, 5, 6].iter().all(|i| stale.contains(i)),
        "stale through the hang: {states:?}"
    );
    assert!(
        stale.iter().all(|&i| (3..=8).contains(&i)),
        "stale only around the hang: {states:?}"
    );
    assert!(states[1..3].iter().all(|s| s == "on"), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("on"), "{states:?}");

    let states = report_states_with(&dir.path().join("stall"), "capture_stall@75:2500");
    let gaps: Vec<usize> = (0..states.len()).filter(|&i| states[i] == "gap").collect();
    assert!(gaps.contains(&4), "no frames in second 4: {states:?}");
    assert!(gaps.iter().all(|&i| (3..=5).contains(&i)), "{states:?}");
    assert!(states[1..3].iter().all(|s| s == "on"), "{states:?}");
}
