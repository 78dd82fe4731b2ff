//! Unit tests of the readiness check: each judge on passing and failing measurements,
//! the recording folder on real folders, the capture on a synthetic source, time limits.

use std::path::Path;
use std::time::{Duration, Instant};

use foramen_core::Config;
use foramen_core::config::RecordingConfig;

use super::capture::{Delivered, Required, check_capture, judge_capture};
use super::model::{check_model, judge_latency, judge_provider};
use super::recording::{DataRate, FolderError, check_recording, judge_space, probe};
use super::session::{SessionMeasures, session_items};
use super::{CheckItem, CheckLimits, CheckSpec, Outcome, Readiness, run_checks, within};
use crate::live::CaptureStats;
use foramen_capture::SourceInfo;
use foramen_segment::{StageTimings, WorkerState, WorkerStatus};

fn rate() -> DataRate {
    DataRate {
        width: 1920,
        height: 1080,
        fps: 30.0,
        mask_size: Some((384, 224)),
    }
}

fn recording(dir: &Path, minutes: u32) -> RecordingConfig {
    RecordingConfig {
        dir: dir.to_path_buf(),
        min_free_minutes: minutes,
        ..Default::default()
    }
}

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn a_writable_folder_passes_and_keeps_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("case-1.txt"), "kept").expect("write");
    let before = entries(tmp.path());
    let item = check_recording(&recording(tmp.path(), 0), &rate(), Duration::from_secs(5));
    assert_eq!(item.outcome, Outcome::Pass, "{item:?}");
    assert!(item.detail.contains("writable"), "{}", item.detail);
    assert!(item.detail.contains("need 0 min"), "{}", item.detail);
    assert_eq!(
        entries(tmp.path()),
        before,
        "the probe file was left behind"
    );
}

#[test]
fn a_missing_folder_fails_by_name_and_is_not_created() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("usb-disk").join("recordings");
    let item = check_recording(&recording(&dir, 0), &rate(), Duration::from_secs(5));
    assert_eq!(item.outcome, Outcome::Fail);
    assert!(
        item.detail.contains(&dir.display().to_string()) && item.detail.contains("does not exist"),
        "{}",
        item.detail
    );
    assert!(
        entries(tmp.path()).is_empty(),
        "the check created something"
    );
}

#[test]
fn a_file_in_place_of_the_folder_fails() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("recordings");
    std::fs::write(&file, "not a folder").expect("write");
    assert!(matches!(probe(&file), Err(FolderError::NotAFolder { .. })));
    let item = check_recording(&recording(&file, 0), &rate(), Duration::from_secs(5));
    assert_eq!(item.outcome, Outcome::Fail);
    assert!(item.detail.contains("is not a folder"), "{}", item.detail);
}

#[test]
fn a_folder_that_takes_no_file_fails_by_name() {
    // /proc refuses new files even to root (a chmod'ed folder would not stop root).
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        eprintln!("no /proc here; skipped");
        return;
    }
    let item = check_recording(&recording(proc, 0), &rate(), Duration::from_secs(5));
    assert_eq!(item.outcome, Outcome::Fail);
    assert!(
        item.detail
            .contains("recording folder /proc is not writable"),
        "{}",
        item.detail
    );
}

#[test]
fn too_little_room_fails_and_enough_passes() {
    let per_min = rate().bytes_per_minute();
    let dir = Path::new("/rec");
    let short = judge_space(dir, (per_min * 59.5) as u64, &rate(), 60);
    assert_eq!(short.outcome, Outcome::Fail, "{short:?}");
    assert!(short.detail.contains("59 min"), "{}", short.detail);
    assert!(short.detail.contains("need 60 min"), "{}", short.detail);
    let enough = judge_space(dir, (per_min * 60.5) as u64, &rate(), 60);
    assert_eq!(enough.outcome, Outcome::Pass, "{enough:?}");
}

#[test]
fn the_data_rate_counts_video_masks_and_rows() {
    let r = rate();
    // 1920 x 1080 x 0.2 / 8 video bytes + 384 x 224 + 40 mask bytes + 64 CSV bytes.
    let want = 51_840.0 + 86_056.0 + 64.0;
    assert!(
        (r.bytes_per_frame() - want).abs() < 1e-6,
        "{}",
        r.bytes_per_frame()
    );
    assert!((r.bytes_per_minute() - want * 1800.0).abs() < 1e-3);
    let unknown_mask = DataRate {
        mask_size: None,
        ..rate()
    };
    assert!(unknown_mask.bytes_per_frame() > r.bytes_per_frame());
}

#[test]
fn a_budget_too_small_fails_and_a_large_one_passes() {
    let times = [4.0, 5.0, 40.0, 4.5, 4.2];
    let slow = judge_latency(0.001, &times, "cpu", (640, 480));
    assert_eq!(slow.outcome, Outcome::Fail);
    assert!(
        slow.detail.contains("4.5 ms > budget 0.001 ms") && slow.detail.contains("worst 40.0 ms"),
        "{}",
        slow.detail
    );
    // The median, not one slow run, is held against the budget.
    let ok = judge_latency(10.0, &times, "cpu", (640, 480));
    assert_eq!(ok.outcome, Outcome::Pass, "{ok:?}");
    assert!(ok.detail.contains("640x480 frame on cpu"), "{}", ok.detail);
    assert_eq!(
        judge_latency(10.0, &[], "cpu", (1, 1)).outcome,
        Outcome::Fail
    );
}

#[test]
fn a_cpu_fallback_fails_with_its_reason() {
    let m = Path::new("m.onnx");
    let fell = judge_provider(m, "cuda", "cpu", Some("CUDA unavailable: no driver"));
    assert_eq!(fell.outcome, Outcome::Fail);
    assert!(
        fell.detail
            .contains("runs on cpu, not the configured cuda: CUDA unavailable: no driver"),
        "{}",
        fell.detail
    );
    assert!(judge_provider(m, "cpu", "cpu", None).passed());
    assert!(!judge_provider(m, "tensorrt", "cuda", None).passed());
}

#[test]
fn a_missing_model_fails_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("nope.onnx");
    let (item, seg) = check_model(&Config::default(), Some(&missing), &CheckLimits::default());
    assert!(seg.is_none());
    assert_eq!(item.outcome, Outcome::Fail);
    assert!(
        item.detail.contains(&missing.display().to_string()),
        "{}",
        item.detail
    );
}

fn delivered(w: u32, h: u32, fps: Option<f64>, frames: u64) -> Delivered {
    Delivered {
        name: "/dev/video0".into(),
        width: w,
        height: h,
        frames,
        fps,
        ..Default::default()
    }
}

fn configured(w: u32, h: u32, fps: f64) -> Required {
    Required {
        width: w,
        height: h,
        fps,
        from: "configured",
    }
}

#[test]
fn the_capture_must_deliver_the_configured_size_and_rate() {
    let req = configured(1280, 720, 30.0);
    let good = judge_capture(&req, &delivered(1280, 720, Some(29.9), 45));
    assert!(good.passed(), "{good:?}");
    assert!(
        good.detail
            .contains("1280x720 at 29.9 fps (configured 1280x720 at 30 fps)"),
        "{}",
        good.detail
    );
    let small = judge_capture(&req, &delivered(640, 480, Some(30.0), 45));
    assert!(
        !small.passed() && small.detail.starts_with("wrong size"),
        "{small:?}"
    );
    let slow = judge_capture(&req, &delivered(1280, 720, Some(25.0), 38));
    assert!(
        !slow.passed() && slow.detail.contains("below 95 % of the rate"),
        "{slow:?}"
    );
    let one = judge_capture(&req, &delivered(1280, 720, None, 1));
    assert!(
        !one.passed() && one.detail.contains("too few frames"),
        "{one:?}"
    );
    let mut none = delivered(0, 0, None, 0);
    none.last_error = Some("NO SIGNAL".into());
    let none = judge_capture(&req, &none);
    assert!(!none.passed() && none.detail.contains("no frame from /dev/video0: NO SIGNAL"));
}

#[test]
fn an_unset_size_and_rate_accept_what_is_delivered() {
    let any = judge_capture(&configured(0, 0, 0.0), &delivered(720, 576, Some(25.0), 38));
    assert!(any.passed(), "{any:?}");
    assert!(
        any.detail
            .contains("720x576 at 25.0 fps (configured any size at any rate)")
    );
}

#[test]
fn a_synthetic_source_is_measured_at_its_own_size_and_rate() {
    let limits = CheckLimits {
        capture_window: Duration::from_millis(600),
        ..Default::default()
    };
    let (item, d) = check_capture(&Config::default(), "synthetic:3:64x48@20", &limits);
    let d = d.expect("measured");
    assert_eq!((d.width, d.height), (64, 48));
    let fps = d.fps.expect("a rate");
    assert!((fps - 20.0).abs() < 2.0, "paced at its own rate: {fps}");
    assert!(item.passed(), "{item:?}");
    assert!(
        item.detail.contains("(the source's own 64x48 at 20 fps)"),
        "{}",
        item.detail
    );
    assert!(d.frame.is_some());
    let (bad, none) = check_capture(&Config::default(), "/no/such/clip.mp4", &limits);
    assert!(none.is_none() && !bad.passed());
    assert!(bad.detail.contains("/no/such/clip.mp4"), "{}", bad.detail);
}

#[test]
fn a_check_that_hangs_is_cut_off_at_its_limit() {
    let t = Instant::now();
    let r = within("test", Duration::from_millis(100), || {
        std::thread::sleep(Duration::from_secs(5));
    });
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(r, Err("no answer within 0.1 s".to_string()));
    let panicked: Result<(), String> = within("test", Duration::from_secs(5), || panic!("boom"));
    assert_eq!(panicked, Err("the check panicked".to_string()));
}

#[test]
fn ready_only_when_every_check_passed() {
    let pass = |n: &str| CheckItem::pass(n, "ok");
    let all = Readiness {
        items: vec![pass("model"), pass("capture")],
    };
    assert!(all.ready());
    assert_eq!(all.verdict(), "READY");
    let some = Readiness {
        items: vec![
            CheckItem::fail("model", "gone"),
            CheckItem::skipped("inference", "not run"),
            pass("capture"),
        ],
    };
    assert!(!some.ready());
    assert_eq!(some.verdict(), "NOT READY: model, inference (not run)");
    let text = some.to_string();
    assert!(
        text.starts_with("FAIL  model      gone\nSKIP  inference  not run\n"),
        "{text}"
    );
    assert!(
        text.ends_with("NOT READY: model, inference (not run)"),
        "{text}"
    );
    assert!(!Readiness::default().ready());
}

#[test]
fn a_missing_model_skips_the_inference_and_the_rest_still_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = Config {
        recording: recording(tmp.path(), 0),
        ..Default::default()
    };
    let mut spec = CheckSpec::new("synthetic:1:64x48@20", Some(tmp.path().join("none.onnx")));
    spec.limits.capture_window = Duration::from_millis(500);
    let r = run_checks(&cfg, &spec);
    let names: Vec<_> = r
        .items
        .iter()
        .map(|i| (i.name.as_str(), i.outcome))
        .collect();
    assert_eq!(
        names,
        [
            ("model", Outcome::Fail),
            ("inference", Outcome::Skipped),
            ("capture", Outcome::Pass),
            ("recording", Outcome::Pass),
        ],
        "{r}"
    );
    assert!(!r.ready());
    assert!(entries(tmp.path()).is_empty());
}

fn worker(status: WorkerStatus, masks: u64, total_ms: f32) -> WorkerState {
    WorkerState {
        status,
        heartbeat_us: 0,
        masks,
        skipped: 0,
        last_timings: StageTimings {
            pre_ms: 0.0,
            infer_ms: total_ms,
            post_ms: 0.0,
        },
        over_budget: 0,
        loads: 1,
        classes: None,
        provider: "cpu",
        provider_fallback: None,
        faults: 0,
        last_fault: None,
    }
}

#[test]
fn a_running_session_is_judged_from_its_own_measures() {
    let info = SourceInfo {
        name: "/dev/video0".into(),
        width: 1280,
        height: 720,
        fps: 30.0,
        frame_count: None,
        live: true,
    };
    let mut cfg = Config::default();
    (cfg.capture.width, cfg.capture.height, cfg.capture.fps) = (1280, 720, 30.0);
    let stats = CaptureStats {
        frames: 60,
        fps: 29.97,
        ..Default::default()
    };
    let running = worker(WorkerStatus::Running, 12, 31.0);
    let m = SessionMeasures {
        input: "/dev/video0",
        model: Path::new("m.onnx"),
        info: &info,
        capture: &stats,
        worker: &running,
    };
    let [model, inference, capture] = session_items(&cfg, &m);
    assert!(model.passed() && inference.passed() && capture.passed());
    assert!(
        inference
            .detail
            .contains("31.0 ms <= budget 80 ms (the last run")
    );
    assert!(capture.detail.contains("(configured 1280x720 at 30 fps)"));
    // Loading and too few frames: waiting, not ready.
    let loading = worker(WorkerStatus::Loading, 0, 0.0);
    let none = CaptureStats::default();
    let early = SessionMeasures {
        worker: &loading,
        capture: &none,
        ..m
    };
    let items = session_items(&cfg, &early);
    assert!(
        items.iter().all(|i| i.outcome == Outcome::Skipped),
        "{items:?}"
    );
    // A failed model, a slow one and a slow capture fail.
    let failed = worker(
        WorkerStatus::Failed {
            reason: "model m.onnx: file not found".into(),
            retry_in_ms: 250,
        },
        0,
        0.0,
    );
    let slow = worker(WorkerStatus::Running, 5, 95.0);
    let slow_stats = CaptureStats {
        frames: 60,
        fps: 20.0,
        ..Default::default()
    };
    let [model, _, _] = session_items(
        &cfg,
        &SessionMeasures {
            worker: &failed,
            ..m
        },
    );
    assert!(!model.passed() && model.detail.contains("file not found"));
    let bad = SessionMeasures {
        worker: &slow,
        capture: &slow_stats,
        ..m
    };
    let [_, inference, capture] = session_items(&cfg, &bad);
    assert!(
        !inference.passed() && !capture.passed(),
        "{inference:?} {capture:?}"
    );
}
