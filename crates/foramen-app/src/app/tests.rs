//! The window's app driven through egui_kittest with a real session and the real shader.

use super::*;
use eframe::egui::Key;
use eframe::egui_wgpu;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use egui_kittest::wgpu::{WgpuTestRenderer, create_render_state, default_wgpu_setup};
use foramen_pipeline::live::SessionSpec;

pub(super) const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/lumbar-synth.onnx"
);

fn harness(input: &str, model: &str, cfg: Config) -> Harness<'static, ForamenApp> {
    harness_with(input, model, cfg, AppOptions::default(), (480.0, 270.0))
}

fn harness_with(
    input: &str,
    model: &str,
    cfg: Config,
    opts: AppOptions,
    size: (f32, f32),
) -> Harness<'static, ForamenApp> {
    let spec = SessionSpec {
        input: input.into(),
        mode: Mode::Live,
        model: model.into(),
        config: cfg.clone(),
        fps: None,
        record: false,
    };
    harness_spec(spec, opts, size)
}

/// The app around a session started from `spec`, rendered by the real shader.
pub(super) fn harness_spec(
    spec: SessionSpec,
    opts: AppOptions,
    size: (f32, f32),
) -> Harness<'static, ForamenApp> {
    let cfg = spec.config.clone();
    let session = LiveSession::start(spec, Arc::new(|| ())).expect("session");
    let rs = create_render_state(
        default_wgpu_setup(),
        egui_wgpu::RendererOptions::PREDICTABLE,
    );
    let app = ForamenApp::new(session, cfg, opts, Some(rs.target_format));
    Harness::builder()
        .with_size(egui::vec2(size.0, size.1))
        .with_pixels_per_point(1.0)
        .renderer(WgpuTestRenderer::from_render_state(rs))
        // The paint callback (upload + shader) runs when a frame is rendered.
        .with_render_every_step(true)
        .build_ui_state(|ui, app: &mut ForamenApp| app.show(ui), app)
}

pub(super) fn run_until(
    h: &mut Harness<'static, ForamenApp>,
    mut done: impl FnMut(&ForamenApp) -> bool,
) {
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        h.step();
        if done(h.state()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("condition not reached in 60 s");
}

pub(super) fn presented(app: &ForamenApp) -> u64 {
    app.present_log().lock().expect("log").frames
}

fn annotated(app: &ForamenApp) -> bool {
    !app.present_log()
        .lock()
        .expect("log")
        .annotation_latency_ms
        .is_empty()
}

/// A config whose age limit is not under test (debug builds on 2 shared cores are slow).
pub(super) fn patient_cfg() -> Config {
    let mut cfg = Config::default();
    cfg.inference.max_mask_age_ms = 5000.0;
    cfg
}

pub(super) fn has(h: &Harness<'static, ForamenApp>, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

/// Steps until `text` is on screen (at most 30 s); the caller asserts.
pub(super) fn wait_for(h: &mut Harness<'static, ForamenApp>, text: &str) {
    let t = std::time::Instant::now();
    while !has(h, text) && t.elapsed() < Duration::from_secs(30) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn with_the_model_missing_the_video_plays_and_the_badge_says_ai_off_in_plain_words() {
    let mut h = harness(
        "synthetic:3:160x90@25",
        "/nonexistent/model.onnx",
        Config::default(),
    );
    run_until(&mut h, |app| {
        presented(app) >= 5 && matches!(app.session.worker().status, WorkerStatus::Failed { .. })
    });
    assert!(has(&h, "AI OFF"), "the fault is on screen");
    // The readiness panel says what failed, as `foramen check` would, until closed.
    assert!(has(&h, "NOT READY: model"), "the readiness panel");
    h.key_press(Key::Escape);
    run_until(&mut h, |app| app.readiness.done);
    h.step();
    assert!(!has(&h, "NOT READY"));
    assert!(has(&h, "model not loaded"));
    // The path is for the log; the model line names the file and says it is not running.
    assert!(!has(&h, "/nonexistent"));
    assert!(has(&h, "model model.onnx (not running)"));
    assert!(!has(&h, "AI ON"), "one state only");
    let img = h.render().expect("render");
    // The video (160x90 scaled into 480x270) is on screen: the centre is not black.
    let centre = img.get_pixel(240, 150);
    assert!(
        centre[0] as u32 + centre[1] as u32 + centre[2] as u32 > 60,
        "{centre:?}"
    );
    // The fault frames the video in red: its left edge, half-way down.
    let red = |x| {
        let p = img.get_pixel(x, 135);
        p[0] > 200 && p[1] < 90 && p[2] < 90
    };
    assert!((0..120).any(red), "no red frame at the left edge");
    assert!(
        h.state()
            .present_log()
            .lock()
            .expect("log")
            .annotation_latency_ms
            .is_empty()
    );
}

#[test]
fn with_the_model_the_overlay_is_drawn_and_keys_change_this_case_only() {
    let dir = tempfile::tempdir().expect("tmp");
    // The theatre's settings file, with a comment: key presses never write into it.
    let settings = "# theatre 3\n[recording]\ndir = \"/srv/rec\"\n";
    std::fs::write(dir.path().join("or.toml"), settings).expect("settings");
    let opts = AppOptions {
        config_path: Some(dir.path().join("or.toml")),
        snapshot_dir: dir.path().join("snapshots"),
        ..AppOptions::default()
    };
    let size = (480.0, 270.0);
    let mut h = harness_with("synthetic:3:192x108@10", MODEL, patient_cfg(), opts, size);
    run_until(&mut h, annotated);
    // S: the annotated frame at full resolution, written off the UI thread.
    h.key_press(Key::S);
    h.step();
    let t = std::time::Instant::now();
    let png = loop {
        let found = std::fs::read_dir(dir.path().join("snapshots"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path());
        if let Some(p) = found.filter(|p| image::image_dimensions(p).is_ok()) {
            break p;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no snapshot written");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(image::image_dimensions(&png).expect("png"), (192, 108));
    run_until(&mut h, |_| true);
    assert!(has(&h, "AI ON"));
    assert!(has(&h, "BONE"), "legend");
    h.key_press(Key::Space);
    h.step();
    assert!(!h.state().view.overlay_on);
    assert!(has(&h, "OVERLAY OFF") && has(&h, "switched off"));
    h.key_press(Key::Space);
    h.key_press(Key::Num2);
    h.step();
    assert_eq!(h.state().view.hidden, vec!["ligament".to_string()]);
    assert!(has(&h, "LIGAMENT  HIDDEN"));
    for _ in 0..6 {
        h.key_press(Key::Plus);
        h.step();
    }
    assert_eq!(h.state().view.opacity, crate::view_state::MAX_KEY_FILL);
    assert!(has(&h, "BONE  60 %"), "the legend shows each class's fill");
    // Nothing of this case was written: the next case starts from the file.
    let text = std::fs::read_to_string(dir.path().join("or.toml")).expect("read");
    assert_eq!(text, settings);
}

#[test]
fn every_class_hidden_is_overlay_off_and_a_legend_tap_brings_one_back() {
    let mut h = harness_with(
        "synthetic:3:192x108@10",
        MODEL,
        patient_cfg(),
        AppOptions::default(),
        (960.0, 540.0),
    );
    run_until(&mut h, annotated);
    for k in [Key::Num1, Key::Num2, Key::Num3] {
        h.key_press(k);
        h.step();
    }
    // A loaded 2-core machine may show a true fault state first (a late heartbeat).
    wait_for(&mut h, "every class hidden");
    assert!(has(&h, "OVERLAY OFF") && has(&h, "every class hidden"));
    assert!(!has(&h, "AI ON"), "never green while nothing is drawn");
    // A tap on the legend (a nurse without a keyboard).
    h.get_by_label_contains("DISC").click();
    run_until(&mut h, |app| app.view.hidden.len() == 2);
    run_until(&mut h, |_| true);
    assert!(
        has(&h, "AI ON") && has(&h, "disc  ("),
        "disc is drawn again"
    );
}

#[test]
fn a_pedal_key_from_the_settings_works_and_reset_restores_the_case_start() {
    let mut cfg = patient_cfg();
    cfg.keys.insert("overlay".into(), vec!["F13".into()]);
    cfg.overlay.hidden_classes = vec!["disc".into()];
    let opts = AppOptions {
        keymap: crate::keys::Keymap::from_config(&cfg.keys).expect("keys"),
        ..AppOptions::default()
    };
    let mut h = harness_with("synthetic:3:192x108@10", MODEL, cfg, opts, (480.0, 270.0));
    run_until(&mut h, annotated);
    h.key_press(Key::F13);
    h.key_press(Key::Num1);
    h.key_press(Key::Num3);
    h.key_press(Key::M);
    h.step();
    let v = &h.state().view;
    assert!(!v.overlay_on);
    assert_eq!(v.hidden, ["bone"]);
    h.key_press(Key::Num0);
    h.step();
    let v = &h.state().view;
    assert!(v.overlay_on);
    assert_eq!(v.hidden, ["disc"], "back to the settings' hidden classes");
    assert_eq!(v.mode, foramen_core::config::OverlayMode::Both);
    assert!(has(&h, "view reset"));
    // The key card lists the pedal's key.
    h.key_press(Key::F1);
    h.step();
    assert!(has(&h, "F13"));
}

#[test]
fn the_settings_view_saves_only_what_was_changed_there() {
    let dir = tempfile::tempdir().expect("tmp");
    let settings = "# theatre 3\n[overlay]\nopacity = 0.3 # agreed\n";
    let path = dir.path().join("or.toml");
    std::fs::write(&path, settings).expect("settings");
    let cfg = Config::load(&path).expect("load");
    let opts = AppOptions {
        config_path: Some(path.clone()),
        ..AppOptions::default()
    };
    let mut h = harness_with("synthetic:3:192x108@10", MODEL, cfg, opts, (960.0, 720.0));
    run_until(&mut h, |app| presented(app) > 2);
    h.key_press(Key::Num2);
    h.key_press(Key::F2);
    h.step();
    h.get_by_label("engineering HUD").click();
    h.step();
    h.get_by_label("save for every case").click();
    run_until(&mut h, |app| app.settings.is_none());
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text, format!("{settings}\n[display]\nhud = true\n"));
    assert!(h.state().view.hud, "the case takes the new settings too");
}

/// Rows (top to bottom) of the longest vertical run of pixels matching `hit` inside `area`.
fn run_height(
    img: &image::RgbaImage,
    area: (u32, u32, u32, u32),
    hit: impl Fn(&image::Rgba<u8>) -> bool,
) -> Vec<(u32, u32)> {
    let (x0, y0, x1, y1) = area;
    let rows: Vec<bool> = (y0..y1)
        .map(|y| (x0..x1).any(|x| hit(img.get_pixel(x, y))))
        .collect();
    let mut runs = vec![];
    let mut start = None;
    for (i, &r) in rows.iter().chain([&false]).enumerate() {
        match (r, start) {
            (true, None) => start = Some(i as u32),
            (false, Some(s)) => {
                runs.push((y0 + s, i as u32 - s));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

#[test]
fn text_keeps_its_share_of_the_screen_at_720p_1080p_and_4k() {
    for (w, h_px) in [(1280u32, 720u32), (1920, 1080), (3840, 2160)] {
        let mut h = harness_with(
            "synthetic:3:192x108@10",
            "/nonexistent/model.onnx",
            Config::default(),
            AppOptions::default(),
            (w as f32, h_px as f32),
        );
        run_until(&mut h, |app| presented(app) >= 2);
        // The readiness panel closed (it would cover the centre).
        h.key_press(Key::Escape);
        run_until(&mut h, |app| app.readiness.done);
        run_until(&mut h, |_| true);
        // The model is missing: AI OFF, white capitals in a red box; the fault frame
        // around the video is red too, but spans the whole width.
        let img = h.render().expect("render");
        if let Ok(dir) = std::env::var("FORAMEN_TEST_SHOTS") {
            img.save(format!("{dir}/ai-off-{h_px}p.png")).expect("save");
        }
        let red = |p: &image::Rgba<u8>| {
            p[0].abs_diff(230) < 4 && p[1].abs_diff(60) < 4 && p[2].abs_diff(50) < 4
        };
        let (cx0, cx1) = (w * 3 / 10, w * 7 / 10);
        let in_box = |y: u32| {
            let n = (cx0..cx1).filter(|&x| red(img.get_pixel(x, y))).count() as u32;
            n > 10 && n < (cx1 - cx0) / 2
        };
        let box_rows: Vec<u32> = (0..h_px / 4).filter(|&y| in_box(y)).collect();
        let (top, bottom) = (box_rows[0], *box_rows.last().expect("badge box"));
        // White ink inside it: the capitals of the title (antialiased edges excluded,
        // so this slightly under-reads the cap height).
        let ink = run_height(&img, (cx0, top, cx1, bottom), |p| {
            p[0] > 235 && p[1] > 235 && p[2] > 235
        });
        let cap = ink.iter().map(|r| r.1).max().unwrap_or(0) as f32;
        let share = cap / h_px as f32;
        assert!(
            share >= 0.022,
            "{w}x{h_px}: badge capitals {cap} px = {:.2} %",
            share * 100.0
        );
        // The legend's first entry (capitals and digits, bottom left), greyed as the AI
        // is off.
        let grey = |p: &image::Rgba<u8>| p.0[..3].iter().all(|c| c.abs_diff(150) < 4);
        // Left of the video (which starts at 22 % of the width), where only the legend is.
        let legend = run_height(&img, (0, h_px / 2, w * 18 / 100, h_px), grey);
        let first = legend.first().expect("legend text").1 as f32;
        let need = 18.0 * h_px as f32 / 1080.0;
        assert!(
            first >= need * 0.95,
            "{w}x{h_px}: legend capitals {first} px, need {need}"
        );
        eprintln!(
            "{w}x{h_px}: badge capitals {cap} px ({:.2} %), legend {first} px",
            share * 100.0
        );
    }
}

/// Closes the start-of-case panel (Esc) and waits until it is gone.
fn close_readiness(h: &mut Harness<'static, ForamenApp>) {
    h.key_press(Key::Escape);
    run_until(h, |app| app.readiness.done);
    h.step();
}

/// Saves the window as `<FORAMEN_TEST_SHOTS>/<name>.png` when that folder is given
/// (`tools/window_states.py` makes `docs/window-states.jpg` from them).
fn shot(h: &mut Harness<'static, ForamenApp>, name: &str) {
    if let Ok(dir) = std::env::var("FORAMEN_TEST_SHOTS") {
        let img = h.render().expect("render");
        img.save(format!("{dir}/{name}.png")).expect("save");
    }
}

/// The status badges' titles: exactly one is on screen at a time.
const BADGES: [&str; 5] = [
    "AI ON",
    "OVERLAY OFF",
    "AI PAUSED: STALE",
    "AI OFF",
    "NO SIGNAL",
];

/// The size the badge tests' window has.
const BADGE_WINDOW: (f32, f32) = (1280.0, 720.0);

/// Waits for `title` (a loaded 2-core machine may pass through other true states, such
/// as a late heartbeat), then checks that no other badge is on screen with it.
fn only(h: &mut Harness<'static, ForamenApp>, title: &str) {
    let t = std::time::Instant::now();
    while !has(h, title) && t.elapsed() < Duration::from_secs(30) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in BADGES {
        // Each title is its own label: "AI OFF" is not found inside "OVERLAY OFF".
        let found = h.query_all_by_label(t).next().is_some();
        assert_eq!(found, t == title, "{title}: {t} found={found}");
    }
}

/// Drawing while recording (with the key card over it), then every overlay hidden.
fn badge_drawing_then_hidden() {
    let size = BADGE_WINDOW;
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = patient_cfg();
    cfg.recording.dir = dir.path().join("rec");
    std::fs::create_dir(&cfg.recording.dir).expect("recording folder");
    let mut h = harness_with(
        "synthetic:3:640x360@10",
        MODEL,
        cfg,
        AppOptions::default(),
        size,
    );
    run_until(&mut h, annotated);
    close_readiness(&mut h);
    h.key_press(Key::R);
    run_until(&mut h, |app| {
        app.session.recording().is_some_and(|r| r.frames > 2)
    });
    run_until(&mut h, |_| true);
    only(&mut h, "AI ON");
    assert!(has(&h, "REC 00:0"), "the REC badge");
    shot(&mut h, "1-drawing-rec");
    // The key card over it.
    h.key_press(Key::F1);
    h.step();
    assert!(has(&h, "KEYS") && has(&h, "overlay on / off"));
    shot(&mut h, "6-keys");
    h.key_press(Key::Escape);
    for k in [Key::Num1, Key::Num2, Key::Num3] {
        h.key_press(k);
    }
    run_until(&mut h, |_| true);
    only(&mut h, "OVERLAY OFF");
    shot(&mut h, "2-all-hidden");
    drop(h);
}

/// Masks older than the limit.
fn badge_stale() {
    let size = BADGE_WINDOW;
    let mut cfg = patient_cfg();
    cfg.inference.max_mask_age_ms = 1.0;
    // 60 fps: the newest frame is ahead of the newest mask.
    let mut h = harness_with(
        "synthetic:3:640x360@60",
        MODEL,
        cfg,
        AppOptions::default(),
        size,
    );
    run_until(&mut h, |app| app.session.worker().masks > 2);
    close_readiness(&mut h);
    only(&mut h, "AI PAUSED: STALE");
    shot(&mut h, "3-stale");
}

/// No model: not ready, then AI OFF.
fn badge_ai_off() {
    let size = BADGE_WINDOW;
    let mut h = harness_with(
        "synthetic:3:640x360@10",
        "/nonexistent/model.onnx",
        Config::default(),
        AppOptions::default(),
        size,
    );
    run_until(&mut h, |app| {
        presented(app) > 2 && matches!(app.session.worker().status, WorkerStatus::Failed { .. })
    });
    run_until(&mut h, |_| true);
    assert!(has(&h, "NOT READY: model"));
    shot(&mut h, "7-not-ready");
    close_readiness(&mut h);
    only(&mut h, "AI OFF");
    shot(&mut h, "4-ai-off");
}

/// A live source that delivers one frame a second: silent for longer than
/// `[capture].no_signal_ms` between frames, as a stalled capture card.
fn badge_no_signal() {
    let size = BADGE_WINDOW;
    let mut h = harness_with(
        "synthetic:3:640x360@1",
        MODEL,
        patient_cfg(),
        AppOptions::default(),
        size,
    );
    run_until(&mut h, |app| presented(app) > 0);
    close_readiness(&mut h);
    only(&mut h, "NO SIGNAL");
    shot(&mut h, "5-no-signal");
}

#[test]
fn each_state_shows_its_own_badge_and_only_that_one() {
    badge_drawing_then_hidden();
    badge_stale();
    badge_ai_off();
    badge_no_signal();
}

#[test]
fn on_a_good_set_up_the_readiness_panel_says_ready_and_steps_aside() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = patient_cfg();
    // The checks' judges are under test, not this loaded machine's speed.
    cfg.inference.latency_budget_ms = 5000.0;
    cfg.recording.dir = dir.path().to_path_buf();
    let mut h = harness_with(
        "synthetic:3:160x90@5",
        MODEL,
        cfg,
        AppOptions::default(),
        (480.0, 270.0),
    );
    let t = std::time::Instant::now();
    while h.query_by_label("READY").is_none() && t.elapsed() < Duration::from_secs(60) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        h.query_all_by_label("PASS").count(),
        4,
        "every check passed"
    );
    assert!(!has(&h, "NOT READY") && !has(&h, "FAIL"));
    // Nothing was left in the recording folder by its probe.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    run_until(&mut h, |app| app.readiness.done);
    h.step();
    assert!(
        h.query_by_label("READY").is_none(),
        "it steps aside by itself"
    );
}
