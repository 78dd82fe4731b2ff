//! The video source's faults: unplugged, stalled, a corrupt frame, a resolution change;
//! the video comes back by itself and the masks and recording follow.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::{bin, bundled_model, text};
use crate::{leading_count, log_of_run_showing, still_clip, still_clip_of};

#[test]
fn an_unplugged_source_shows_no_signal_and_comes_back_without_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = still_clip(dir.path(), 10);
    let gone = dir.path().join("unplugged");
    let mut child = Command::new(bin())
        .args([
            "live",
            "--device",
            &clip.display().to_string(),
            "--headless",
        ])
        .args(["--model", "/nonexistent.onnx", "--exit-after-frames", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // "Unplug" after about a second, "replug" two seconds later.
    std::thread::sleep(Duration::from_millis(1200));
    std::fs::rename(&clip, &gone).expect("unplug");
    std::thread::sleep(Duration::from_millis(2000));
    std::fs::rename(&gone, &clip).expect("replug");
    let t = Instant::now();
    let out = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no reconnection");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut log)
        .expect("read");
    assert!(out.success(), "{log}");
    assert!(log.contains("NO SIGNAL"), "the outage was reported:\n{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("60 frames"),
        "frames kept coming after the replug:\n{log}"
    );
}

#[test]
fn a_corrupt_frame_is_counted_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = still_clip(dir.path(), 10);
    std::fs::write(clip.join("0004.png"), b"\x89PNG\r\n\x1a\n but then garbage").expect("corrupt");
    let out = Command::new(bin())
        .args([
            "view",
            &clip.display().to_string(),
            "--headless",
            "--fps",
            "50",
        ])
        .args(["--model", "/nonexistent.onnx"])
        .env("FORAMEN_LOG", "error")
        .output()
        .expect("run");
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("9 frames") && last.contains("1 capture errors"),
        "{log}"
    );
}

#[test]
fn a_resolution_change_mid_stream_is_followed_by_video_masks_and_recording() {
    // A tower switching its output mode: the signal drops, then comes back at another
    // size (the source folder replaced by one of smaller pictures while Foramen runs).
    let dir = tempfile::tempdir().expect("tmp");
    let clip = still_clip(dir.path(), 10);
    let small = still_clip_of(dir.path(), "small", 10, 12, "320x176");
    let rec = dir.path().join("rec");
    let child = Command::new(bin())
        .args([
            "live",
            "--device",
            &clip.display().to_string(),
            "--headless",
        ])
        .args([
            "--model",
            &bundled_model(),
            "--exit-after-frames",
            "90",
            "--record",
        ])
        .args(["--record-dir", &rec.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::rename(&clip, dir.path().join("old")).expect("unplug");
    std::fs::rename(&small, &clip).expect("replug at the new size");
    let out = child.wait_with_output().expect("wait");
    log_of_run_showing(&out, 90, "every frame of the two sizes");
    let session = common::first_entry(&rec);
    // The recording goes on in a new segment at the new size.
    let mut segs: Vec<_> = std::fs::read_dir(&session)
        .expect("session")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    segs.sort();
    let sizes: Vec<(u32, u32)> = segs
        .iter()
        .map(|s| {
            let src = foramen_capture::open_source(&s.display().to_string()).expect("segment");
            (src.info().width, src.info().height)
        })
        .collect();
    assert_eq!(sizes.first(), Some(&(480, 270)), "{sizes:?}");
    assert_eq!(sizes.last(), Some(&(320, 176)), "{sizes:?}");
    // And masks were made from the new frames: the last rows carry recent masks.
    let csv = std::fs::read_to_string(session.join("frames.csv")).expect("csv");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let last_segment = (segs.len() - 1).to_string();
    let late: Vec<_> = rows.iter().filter(|r| r[3] == last_segment).collect();
    let first_late_frame: u64 = late.first().expect("rows in the last segment")[0]
        .parse()
        .expect("id");
    assert!(
        late.iter()
            .any(|r| r[4].parse::<u64>().is_ok_and(|m| m >= first_late_frame)),
        "no mask made from a frame at the new size:\n{csv}"
    );
}

#[test]
fn a_stalled_source_shows_no_signal_and_the_video_resumes_by_itself() {
    // The capture card stops delivering for 2.5 s without any error, then goes on.
    let out = Command::new(bin())
        .args(["live", "--device", "synthetic:6:160x96@25", "--headless"])
        .args(["--model", "/nonexistent.onnx", "--exit-after-frames", "60"])
        .env("FORAMEN_FAULT_INJECT", "capture_stall@20:2500")
        .output()
        .expect("run");
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("NO SIGNAL for") && log.contains("no frames arriving"),
        "the stall is shown:\n{log}"
    );
    let last = log
        .lines()
        .rfind(|l| l.contains(" frames, "))
        .unwrap_or_default();
    let frames = leading_count(last);
    assert!(frames >= 60, "frames came again after the stall:\n{log}");
}
