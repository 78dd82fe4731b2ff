//! The window's app driven through egui_kittest with a real session and the real shader.

use super::*;
use eframe::egui::Key;
use eframe::egui_wgpu;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use egui_kittest::wgpu::{WgpuTestRenderer, create_render_state, default_wgpu_setup};
use foramen_pipeline::live::SessionSpec;

fn harness(input: &str, model: &str, cfg: Config) -> Harness<'static, ForamenApp> {
    harness_with(input, model, cfg, AppOptions::default())
}

fn harness_with(
    input: &str,
    model: &str,
    cfg: Config,
    opts: AppOptions,
) -> Harness<'static, ForamenApp> {
    let spec = SessionSpec {
        input: input.into(),
        mode: Mode::Live,
        model: model.into(),
        config: cfg.clone(),
        fps: None,
    };
    let session = LiveSession::start(spec, Arc::new(|| ())).expect("session");
    let rs = create_render_state(
        default_wgpu_setup(),
        egui_wgpu::RendererOptions::PREDICTABLE,
    );
    let app = ForamenApp::new(session, cfg, opts, Some(rs.target_format));
    Harness::builder()
        .with_size(egui::vec2(480.0, 270.0))
        .with_pixels_per_point(1.0)
        .renderer(WgpuTestRenderer::from_render_state(rs))
        // The paint callback (upload + shader) runs when a frame is rendered.
        .with_render_every_step(true)
        .build_ui_state(|ui, app: &mut ForamenApp| app.show(ui), app)
}

fn run_until(h: &mut Harness<'static, ForamenApp>, mut done: impl FnMut(&ForamenApp) -> bool) {
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

fn presented(app: &ForamenApp) -> u64 {
    app.present_log().lock().expect("log").frames
}

#[test]
fn with_the_model_missing_the_video_plays_and_the_status_says_why() {
    let mut h = harness(
        "synthetic:3:160x90@25",
        "/nonexistent/model.onnx",
        Config::default(),
    );
    run_until(&mut h, |app| {
        presented(app) >= 5 && matches!(app.session.worker().status, WorkerStatus::Failed { .. })
    });
    assert!(
        h.query_by_label_contains("AI OFF").is_some(),
        "the fault is on screen"
    );
    assert!(
        h.query_by_label_contains("/nonexistent/model.onnx")
            .is_some()
    );
    let img = h.render().expect("render");
    // The video (160x90 scaled into 480x270) is on screen: the centre is not black.
    let centre = img.get_pixel(240, 135);
    assert!(
        centre[0] as u32 + centre[1] as u32 + centre[2] as u32 > 60,
        "{centre:?}"
    );
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
fn with_the_model_the_overlay_is_drawn_and_keys_toggle_it() {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/lumbar-synth.onnx"
    );
    let mut cfg = Config::default();
    // Debug builds on a shared 2-core machine are slow: the age limit is not under test here.
    cfg.inference.max_mask_age_ms = 5000.0;
    let dir = tempfile::tempdir().expect("tmp");
    // The theatre's settings file, with a comment; the run's own one-offs (the age limit
    // above, as `--record-dir` would be) must not be written into it.
    let settings = "# theatre 3\n[recording]\ndir = \"/srv/rec\"\n";
    std::fs::write(dir.path().join("or.toml"), settings).expect("settings");
    let opts = AppOptions {
        config_path: Some(dir.path().join("or.toml")),
        snapshot_dir: dir.path().join("snapshots"),
        ..AppOptions::default()
    };
    let mut h = harness_with("synthetic:3:192x108@10", model, cfg, opts);
    run_until(&mut h, |app| {
        !app.present_log()
            .lock()
            .expect("log")
            .annotation_latency_ms
            .is_empty()
    });
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
    assert!(h.query_by_label_contains("AI ON").is_some());
    assert!(h.query_by_label_contains("bone").is_some(), "legend");
    h.key_press(Key::Space);
    h.step();
    assert!(!h.state().overlay_on);
    assert!(h.query_by_label_contains("AI OVERLAY OFF").is_some());
    h.key_press(Key::Num2);
    h.step();
    assert_eq!(
        h.state().cfg.overlay.hidden_classes,
        vec!["ligament".to_string()]
    );
    assert!(h.query_by_label_contains("ligament (hidden)").is_some());
    // Settings persist as they change, and only those.
    let saved = Config::load(&dir.path().join("or.toml")).expect("saved settings");
    assert_eq!(saved.overlay.hidden_classes, vec!["ligament".to_string()]);
    let text = std::fs::read_to_string(dir.path().join("or.toml")).expect("read");
    assert!(text.starts_with(settings), "{text}");
    assert_eq!(saved.inference, Config::default().inference, "{text}");
}
