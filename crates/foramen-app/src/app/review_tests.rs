//! Review of a real recording in the window (egui_kittest, real shader): the timeline
//! strip seeks, the moment keys jump, the clip marks show.

use super::tests::{MODEL, harness_spec, has, patient_cfg, presented, run_until, wait_for};
use super::*;
use eframe::egui::Key;
use foramen_data::timeline::nav::Direction;
use foramen_pipeline::live::SessionSpec;
use foramen_pipeline::live::headless::{HeadlessOptions, run_headless};
use std::sync::atomic::AtomicBool;

/// Records `frames` frames of a synthetic 25 fps scene with the model, headless, as
/// `foramen live --headless --record` does; returns the root and the recording folder.
fn record(frames: u64) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().expect("tmp");
    let mut cfg = Config::default();
    cfg.recording.dir = root.path().to_path_buf();
    let spec = SessionSpec {
        input: "synthetic:5:160x90@25".into(),
        mode: Mode::Live,
        model: MODEL.into(),
        config: cfg,
        fps: None,
        record: true,
    };
    let opts = HeadlessOptions {
        exit_after_frames: Some(frames),
    };
    run_headless(spec, opts, &AtomicBool::new(false), &mut std::io::sink()).expect("recording");
    let dir = std::fs::read_dir(root.path())
        .expect("root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("session.toml").exists())
        .expect("a recording folder");
    (root, dir)
}

fn click(h: &mut egui_kittest::Harness<'static, ForamenApp>, pos: egui::Pos2) {
    let button = |pressed| egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    };
    h.input_mut().events.push(egui::Event::PointerMoved(pos));
    h.input_mut().events.push(button(true));
    h.step();
    h.input_mut().events.push(button(false));
    h.step();
}

fn shown_id(app: &ForamenApp) -> u64 {
    app.shown.as_ref().map_or(0, |f| f.id)
}

/// B: the previous moment before second `target` for the classes shown, as the
/// timeline defines it (or a toast that there is none).
fn check_previous_moment(
    h: &mut egui_kittest::Harness<'static, ForamenApp>,
    t: &foramen_data::timeline::Timeline,
    target: usize,
) {
    let shown: Vec<usize> = (1..h.state().classes.classes.len()).collect();
    h.key_press(Key::B);
    match t.moment(target, Direction::Back, &shown) {
        Some(s) => {
            let to = t.row_of_second(s).expect("row");
            run_until(h, |app| shown_id(app) == to);
            wait_for(h, &review::mmss(s));
            assert!(has(h, &review::mmss(s)), "the toast names the moment");
        }
        None => {
            wait_for(h, "no earlier moment");
            assert!(has(h, "no earlier moment"));
        }
    }
}

#[test]
fn the_timeline_strip_of_a_recording_seeks_and_the_moment_keys_jump() {
    let (_root, dir) = record(150);
    let mut cfg = patient_cfg();
    let elsewhere = tempfile::tempdir().expect("tmp");
    cfg.recording.dir = elsewhere.path().to_path_buf();
    let spec = SessionSpec {
        input: dir.display().to_string(),
        mode: Mode::Review,
        model: MODEL.into(),
        config: cfg,
        fps: None,
        record: false,
    };
    let mut h = harness_spec(spec, AppOptions::default(), (960.0, 540.0));
    run_until(&mut h, |app| {
        presented(app) >= 3 && app.timeline.timeline().is_some() && app.strip_rect.is_some()
    });
    h.state().session.set_paused(true);
    let t = h.state().timeline.timeline().cloned().expect("timeline");
    let rows: u64 = t.seconds.iter().map(|s| s.frames).sum();
    assert_eq!(
        h.state().session.info().frame_count,
        Some(rows),
        "the video is frames.csv's rows"
    );
    assert!(t.seconds.len() >= 5, "{} s", t.seconds.len());

    // A click at 90 % of the strip shows the first frame of that second.
    let rect = h.state().strip_rect.expect("strip");
    let target = (t.seconds.len() as f32 * 0.9) as usize;
    let x = rect.left() + (target as f32 + 0.5) / t.seconds.len() as f32 * rect.width();
    click(&mut h, egui::pos2(x, rect.center().y));
    let row = t.row_of_second(target).expect("row");
    run_until(&mut h, |app| shown_id(app) == row);
    assert_eq!(h.state().second_of(row), Some(target));

    check_previous_moment(&mut h, &t, target);

    // [ here, ] one second later (a click on the strip), then X saves the clip with
    // the frames in between into [recording].dir/clips.
    let from = shown_id(h.state());
    let at = h.state().second_of(from).expect("second");
    h.key_press(Key::OpenBracket);
    wait_for(&mut h, &format!("in {} · out -", review::mmss(at)));
    let later = (at + 1).min(t.seconds.len() - 1);
    let x = rect.left() + (later as f32 + 0.5) / t.seconds.len() as f32 * rect.width();
    click(&mut h, egui::pos2(x, rect.center().y));
    let to = t.row_of_second(later).expect("row");
    run_until(&mut h, |app| shown_id(app) == to);
    h.key_press(Key::CloseBracket);
    let marks = format!("in {} · out {}", review::mmss(at), review::mmss(later));
    wait_for(&mut h, &marks);
    assert!(has(&h, &marks), "marks on the line");
    h.key_press(Key::X);
    wait_for(&mut h, "clip saved");
    let frames = to - from + 1;
    assert!(
        has(&h, &format!("({frames} frames")),
        "the clip has the marked frames"
    );
    let clips: Vec<_> = std::fs::read_dir(elsewhere.path().join("clips"))
        .expect("clips folder")
        .collect();
    assert_eq!(clips.len(), 1);
    assert!(
        std::fs::read_dir(&dir).expect("rec").all(|e| {
            let name = e.expect("entry").file_name();
            !name.to_string_lossy().contains("frames-")
        }),
        "nothing written into the recording"
    );
}
