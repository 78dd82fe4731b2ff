//! `foramen live` and `foramen view`: start the session, then either the window
//! (eframe, wgpu) or, with `--headless`, a console loop that reports the same counters.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use eframe::egui;
use foramen_core::Config;

use crate::WindowArgs;
use crate::app::{AppOptions, ForamenApp};
use crate::live::{LiveSession, Mode, SessionSpec};

/// Runs a live or review session until the window closes (or, headless, until the
/// stream ends, `--exit-after-frames` or Ctrl-C).
pub fn run(
    input: String,
    mode: Mode,
    fps: Option<f64>,
    args: WindowArgs,
    mut config: Config,
    config_path: Option<PathBuf>,
) -> Result<()> {
    if let Some(dir) = &args.record_dir {
        config.recording.dir = dir.clone();
    }

    // A missing model is not fatal here: the video runs and the status says why.
    let model = args
        .model
        .clone()
        .or_else(|| config.model.path.clone())
        .map_or_else(|| crate::model::resolve(None), Ok)
        .unwrap_or_else(|e| {
            tracing::warn!("{e:#}");
            PathBuf::from("models/lumbar-synth.onnx")
        });
    let snapshot_after = match &args.snapshot_after_frames {
        Some(v) => {
            let n: u64 = v[0].parse().with_context(|| {
                format!("--snapshot-after-frames: {:?} is not a frame count", v[0])
            })?;
            Some((n, PathBuf::from(&v[1])))
        }
        None => None,
    };
    let snapshot_after_s = match &args.snapshot_after_seconds {
        Some(v) => {
            let secs: f64 = v[0].parse().with_context(|| {
                format!(
                    "--snapshot-after-seconds: {:?} is not a number of seconds",
                    v[0]
                )
            })?;
            Some((secs, PathBuf::from(&v[1])))
        }
        None => None,
    };
    let spec = SessionSpec {
        input,
        mode,
        model,
        config: config.clone(),
        fps,
    };
    let opts = AppOptions {
        config_path,
        snapshot_after,
        snapshot_after_s,
        exit_after_frames: args.exit_after_frames,
        telemetry: args.telemetry.clone(),
        snapshot_dir: config.recording.dir.join("snapshots"),
    };
    if args.headless {
        return headless(spec, &args);
    }

    let (w, h) = args.window_size.unwrap_or((1280, 720));
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("Foramen")
        .with_inner_size([w as f32, h as f32])
        .with_fullscreen(config.display.fullscreen);
    if let (true, Some(m)) = (config.display.fullscreen, config.display.monitor) {
        viewport = viewport.with_monitor(m);
    }
    let native = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        "foramen",
        native,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let repaint: Arc<dyn Fn() + Send + Sync> = Arc::new(move || ctx.request_repaint());
            let session = LiveSession::start(spec, repaint).map_err(
                |e| -> Box<dyn std::error::Error + Send + Sync> { format!("{e:#}").into() },
            )?;
            if args.record {
                session.start_recording().map_err(
                    |e| -> Box<dyn std::error::Error + Send + Sync> { format!("{e:#}").into() },
                )?;
            }
            let format = cc.wgpu_render_state.as_ref().map(|r| r.target_format);
            Ok(Box::new(ForamenApp::new(session, config, opts, format)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("window: {e}"))?;
    Ok(())
}

/// The pipeline without a window: prints a status line a second and a summary.
fn headless(spec: SessionSpec, args: &WindowArgs) -> Result<()> {
    let no_signal_ms = spec.config.capture.no_signal_ms;
    let session = LiveSession::start(spec, Arc::new(|| ()))?;
    if args.record {
        let dir = session.start_recording()?;
        say!("recording to {}", dir.display());
    }
    let t0 = Instant::now();
    let mut next_print = Duration::from_secs(1);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let cap = session.capture_stats();
        let w = session.worker();
        if t0.elapsed() >= next_print {
            next_print += Duration::from_secs(1);
            let mut rec = session
                .recording()
                .map(|r| {
                    let failed = r
                        .error
                        .map(|e| format!("  RECORDING FAILED: {e}"))
                        .unwrap_or_default();
                    format!(" rec {} frames {} lost{failed}", r.frames, r.lost)
                })
                .unwrap_or_default();
            let silent_ms = foramen_core::clock_us().saturating_sub(cap.last_frame_at_us) / 1000;
            if silent_ms as f64 > no_signal_ms {
                rec.push_str(&format!(
                    "  NO SIGNAL for {silent_ms} ms: {}",
                    cap.last_error
                        .clone()
                        .unwrap_or_else(|| "no frames arriving".into())
                ));
            }
            say!(
                "{:>6.1} s  frames {}  capture {:.1} fps  masks {}  AI {:?}{}",
                t0.elapsed().as_secs_f64(),
                cap.frames,
                cap.fps,
                w.masks,
                w.status,
                rec
            );
        }
        let done = args.exit_after_frames.is_some_and(|n| cap.frames >= n) || cap.ended.is_some();
        if done {
            break;
        }
    }
    let cap = session.capture_stats();
    let w = session.worker();
    if let Some(r) = session.finish_recording(Duration::from_secs(60)) {
        say!(
            "recording {}: {} frames, {} masks, {} segments, {} lost{}",
            r.dir.display(),
            r.frames,
            r.masks,
            r.segments,
            r.lost,
            r.error.map(|e| format!(", error: {e}")).unwrap_or_default()
        );
    }
    // How far the newest mask was behind the newest frame when the session ended: with
    // newest-frame-wins inference it stays within about one inference time.
    let behind_ms = match (session.latest_frame(), session.latest_mask()) {
        (Some(f), Some(m)) => {
            Some(f.captured_at_us.saturating_sub(m.source_captured_at_us) as f64 / 1e3)
        }
        _ => None,
    };
    say!(
        "AI: {} masks, {} stale frames skipped{}",
        w.masks,
        w.skipped,
        behind_ms
            .map(|ms| format!(", last mask {ms:.0} ms behind the video"))
            .unwrap_or_default()
    );
    say!(
        "{} frames, {} masks, {} capture errors, AI {:?}",
        cap.frames,
        w.masks,
        cap.errors,
        w.status
    );
    if cap.frames == 0 {
        bail!(
            "no frames from {}{}",
            session.info().name,
            cap.last_error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    Ok(())
}
