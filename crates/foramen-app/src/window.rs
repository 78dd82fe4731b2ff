//! Opens the operating-room window (eframe, wgpu) on a live or review session.

use std::sync::Arc;

use eframe::egui;
use foramen_core::Config;
use foramen_pipeline::live::{LiveSession, SessionSpec};

use foramen_pipeline::error::error_chain;

use crate::app::{AppOptions, ForamenApp};

/// Window settings from the command line.
#[derive(Clone, Copy, Debug)]
pub struct WindowSettings {
    /// Inner size in points.
    pub size: (u32, u32),
}

/// The window could not run.
#[derive(Debug, thiserror::Error)]
#[error("window: {0}")]
pub struct WindowError(String);

/// Starts the session inside the window and runs until the window closes.
pub fn run_window(
    spec: SessionSpec,
    config: Config,
    opts: AppOptions,
    settings: WindowSettings,
) -> Result<(), WindowError> {
    let (w, h) = settings.size;
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
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let boxed = |e: foramen_pipeline::PipelineError| -> BoxError { error_chain(&e).into() };
    eframe::run_native(
        "foramen",
        native,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            // Workers ask for a repaint when there is something new; the UI never polls them.
            let repaint: Arc<dyn Fn() + Send + Sync> = Arc::new(move || ctx.request_repaint());
            // `spec.record`: the recorder is in place before the first frame.
            let session = LiveSession::start(spec, repaint).map_err(boxed)?;
            let format = cc.wgpu_render_state.as_ref().map(|r| r.target_format);
            Ok(Box::new(ForamenApp::new(session, config, opts, format)))
        }),
    )
    .map_err(|e| WindowError(e.to_string()))
}
