//! A minute of live video with recording: memory and open files stay flat.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::live_recording;

fn rss_kb_and_fds(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

/// The CI-sized soak: the live path (capture, inference, recording) for about a minute;
/// memory and open files must stay flat after warm-up. `make soak` runs it for an hour.
#[test]
fn a_minute_of_live_video_with_recording_keeps_memory_and_files_flat() {
    let dir = tempfile::tempdir().expect("tmp");
    let secs: u64 = std::env::var("FORAMEN_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let cfg = dir.path().join("soak.toml");
    std::fs::write(&cfg, "[recording]\nsegment_s = 2.0\n").expect("cfg");
    let mut child = live_recording("synthetic:9:192x108@25", Some(&cfg))
        .args([
            "--record-dir",
            &dir.path().join("rec").display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut samples = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(s) = rss_kb_and_fds(pid) {
            samples.push(s);
        }
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(samples.len() as u64 >= secs * 8 / 10, "{samples:?}");
    // Warm-up: model load, first segments, allocator growth.
    let warm = samples.len() / 4;
    let (early, late) = samples[warm..].split_at((samples.len() - warm) / 2);
    let mean = |v: &[(u64, usize)]| v.iter().map(|s| s.0).sum::<u64>() as f64 / v.len() as f64;
    let (rss_early, rss_late) = (mean(early), mean(late));
    eprintln!(
        "soak {secs} s: RSS {:.1} -> {:.1} MB, fds {:?} -> {:?}",
        rss_early / 1024.0,
        rss_late / 1024.0,
        early.first().map(|s| s.1),
        late.last().map(|s| s.1)
    );
    assert!(
        rss_late < rss_early * 1.05 + 4096.0,
        "memory grows: {rss_early:.0} kB -> {rss_late:.0} kB"
    );
    let max_fds_early = early.iter().map(|s| s.1).max().unwrap_or(0);
    let max_fds_late = late.iter().map(|s| s.1).max().unwrap_or(0);
    assert!(
        max_fds_late <= max_fds_early + 2,
        "open files grow: {max_fds_early} -> {max_fds_late}"
    );
}
