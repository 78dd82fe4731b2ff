//! The operating-room window (`foramen live`, `foramen view`): the video, always; the
//! overlay only while its mask is fresh; status, HUD, legend and controls.
//!
//! One paint ([`ForamenApp::show`]): keys -> newest frame -> overlay decision
//! (`overlay`) -> video view (wgpu callback) -> panels (`status` text drawn by `panels`)
//! -> snapshots and exit. The UI thread never blocks and does no per-pixel work.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui::{self, Color32};
use eframe::wgpu;
use foramen_core::config::OverlayMode;
use foramen_core::{ClassSet, Config, Frame, Mask, clock_us, lock};
use foramen_overlay::OverlayStyle;
use foramen_pipeline::live::{CaptureStats, LiveSession, Mode};
use foramen_segment::{WorkerState, WorkerStatus};

use crate::keys::{self, Action};
use crate::overlay::{self, OverlayInputs, OverlayState};
use crate::panels::{self, ReviewRequest};
use crate::present_log::{PresentLog, recent_percentile};
use crate::snapshot::{self, SnapshotState};
use crate::status::{self, AiRate, HudInputs, StatusInputs, StatusLog};
use crate::video_view::{self, VideoCallback};

/// Options that come from the command line rather than the settings file.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Where settings changes are saved (`--config`); none: not persisted.
    pub config_path: Option<PathBuf>,
    /// Save a screenshot of the window once this many frames have been presented.
    pub snapshot_after: Option<(u64, PathBuf)>,
    /// Save a screenshot of the window after this many seconds.
    pub snapshot_after_s: Option<(f64, PathBuf)>,
    /// Close once this many frames have been presented (after any snapshot is saved).
    pub exit_after_frames: Option<u64>,
    /// Per-frame display latency CSV written at exit.
    pub telemetry: Option<PathBuf>,
    /// Folder for snapshots taken with the S key.
    pub snapshot_dir: PathBuf,
}

/// The eframe application.
pub struct ForamenApp {
    session: LiveSession,
    cfg: Config,
    opts: AppOptions,
    classes: ClassSet,
    style: Arc<OverlayStyle>,
    overlay_on: bool,
    frozen: bool,
    shown: Option<Arc<Frame>>,
    shown_mask: Option<Arc<Mask>>,
    target_format: Option<wgpu::TextureFormat>,
    log: Arc<Mutex<PresentLog>>,
    snapshot_state: Arc<Mutex<SnapshotState>>,
    timed_snapshot: Arc<Mutex<SnapshotState>>,
    toast: Option<(String, f64)>,
    fullscreen: bool,
    ai_rate: AiRate,
    status_log: StatusLog,
    started_us: u64,
}

impl ForamenApp {
    /// Builds the app around a started session.
    pub fn new(
        session: LiveSession,
        cfg: Config,
        opts: AppOptions,
        target_format: Option<wgpu::TextureFormat>,
    ) -> Self {
        let classes = ClassSet::lumbar();
        let style = Arc::new(OverlayStyle::new(&classes, &cfg.overlay));
        let now = clock_us();
        Self {
            session,
            fullscreen: cfg.display.fullscreen,
            cfg,
            opts,
            classes,
            style,
            overlay_on: true,
            frozen: false,
            shown: None,
            shown_mask: None,
            target_format,
            log: Arc::new(Mutex::new(PresentLog::default())),
            snapshot_state: Arc::new(Mutex::new(SnapshotState::NotYet)),
            timed_snapshot: Arc::new(Mutex::new(SnapshotState::NotYet)),
            toast: None,
            ai_rate: AiRate::new(now),
            status_log: StatusLog::default(),
            started_us: now,
        }
    }

    /// The display statistics.
    #[cfg(test)]
    pub fn present_log(&self) -> Arc<Mutex<PresentLog>> {
        self.log.clone()
    }

    /// Rebuilds the overlay style and saves the settings the staff just changed
    /// (`changed`: `(section, key)`), and only those: the file keeps its comments, and
    /// what the command line set for this run only (`--record-dir`, ...) is never saved.
    fn restyle(&mut self, changed: &[(&str, &str)]) {
        self.style = Arc::new(OverlayStyle::new(&self.classes, &self.cfg.overlay));
        if let (Some(path), false) = (&self.opts.config_path, changed.is_empty()) {
            // Settings persist as soon as they change; an error is shown, not fatal.
            if let Err(e) = self.cfg.save_keys(path, changed) {
                self.say(format!("settings not saved: {e}"));
            }
        }
    }

    fn say(&mut self, msg: String) {
        tracing::info!("{msg}");
        self.toast = Some((msg, clock_us() as f64 / 1e6 + 3.0));
    }

    fn toggle_class(&mut self, index: usize) {
        let Some(c) = self.classes.classes.get(index) else {
            return;
        };
        let name = c.name.clone();
        let hidden = &mut self.cfg.overlay.hidden_classes;
        if let Some(pos) = hidden.iter().position(|h| h == &name) {
            hidden.remove(pos);
            self.say(format!("{name}: shown"));
        } else {
            hidden.push(name.clone());
            self.say(format!("{name}: hidden"));
        }
        self.restyle(&[("overlay", "hidden_classes")]);
    }

    fn is_review(&self) -> bool {
        *self.session.mode() == Mode::Review
    }

    /// Carries out one key's action.
    fn apply(&mut self, ctx: &egui::Context, action: Action) {
        match action {
            Action::ToggleClass(i) => self.toggle_class(i),
            Action::ToggleOverlay => {
                self.overlay_on = !self.overlay_on;
                let msg = format!("overlay {}", if self.overlay_on { "on" } else { "off" });
                self.say(msg);
            }
            Action::Opacity(step) => {
                let o = &mut self.cfg.overlay.opacity;
                *o = ((*o + 0.1 * f32::from(step)) * 10.0)
                    .round()
                    .clamp(0.0, 10.0)
                    / 10.0;
                let msg = format!("opacity {:.0}%", self.cfg.overlay.opacity * 100.0);
                self.say(msg);
                self.restyle(&[("overlay", "opacity")]);
            }
            Action::CycleMode => {
                self.cfg.overlay.mode = match self.cfg.overlay.mode {
                    OverlayMode::Fill => OverlayMode::Contour,
                    OverlayMode::Contour => OverlayMode::Both,
                    OverlayMode::Both => OverlayMode::Fill,
                };
                let msg = format!("mode: {:?}", self.cfg.overlay.mode).to_lowercase();
                self.say(msg);
                self.restyle(&[("overlay", "mode")]);
            }
            Action::Freeze => self.frozen = !self.frozen,
            Action::ToggleHud => {
                self.cfg.display.hud = !self.cfg.display.hud;
                self.restyle(&[("display", "hud")]);
            }
            Action::ToggleLegend => {
                self.cfg.display.legend = !self.cfg.display.legend;
                self.restyle(&[("display", "legend")]);
            }
            Action::ToggleFullscreen => self.toggle_fullscreen(ctx),
            Action::LeaveFullscreen if self.fullscreen => self.toggle_fullscreen(ctx),
            Action::LeaveFullscreen => {}
            Action::Snapshot => self.snapshot(),
            Action::ToggleRecording => self.toggle_recording(),
            _ if !self.is_review() => {}
            Action::PlayPause => self.session.set_paused(!self.session.is_paused()),
            Action::StepForward => {
                self.session.set_paused(true);
                self.session.step();
            }
            Action::StepBack => {
                if let Some(id) = self.shown.as_ref().map(|f| f.id) {
                    self.session.set_paused(true);
                    self.session.seek(id.saturating_sub(1));
                }
            }
        }
    }

    fn toggle_fullscreen(&mut self, ctx: &egui::Context) {
        self.fullscreen = !self.fullscreen;
        if let (true, Some(m)) = (self.fullscreen, self.cfg.display.monitor) {
            ctx.send_viewport_cmd(egui::ViewportCommand::SetMonitor(m));
        } else {
            ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(self.fullscreen));
        }
    }

    fn toggle_recording(&mut self) {
        let recording = self.session.recording().is_some_and(|r| !r.finished);
        if recording {
            self.session.stop_recording();
            self.say("recording stopped".into());
        } else {
            match self.session.start_recording() {
                Ok(dir) => self.say(format!("recording to {}", dir.display())),
                Err(e) => self.say(format!("cannot record: {}", error_chain(&e))),
            }
        }
    }

    /// The annotated frame at full resolution as PNG, written off the UI thread.
    fn snapshot(&mut self) {
        let Some(frame) = self.shown.clone() else {
            return;
        };
        let (mask, style) = (self.shown_mask.clone(), self.style.clone());
        match snapshot::save_annotated_frame(frame, mask, style, &self.opts.snapshot_dir) {
            Ok(path) => self.say(format!("snapshot: {}", path.display())),
            Err(e) => self.say(format!("snapshot failed: {e}")),
        }
    }

    /// The model's own classes once it has loaded (the legend and colours follow them).
    fn follow_model_classes(&mut self, w: &WorkerState) {
        if let Some(c) = &w.classes
            && c.classes != self.classes.classes
        {
            self.classes = c.clone();
            self.restyle(&[]);
        }
    }

    /// Decides the overlay for the shown frame and keeps the mask that goes with it.
    fn decide_overlay(
        &mut self,
        now_us: u64,
        cap: &CaptureStats,
        w: &WorkerState,
        no_signal: bool,
    ) -> OverlayState {
        let healthy = status::heartbeat_age_ms(w, now_us) <= status::HEARTBEAT_LIMIT_MS
            && !matches!(w.status, WorkerStatus::Failed { .. });
        let inputs = OverlayInputs {
            shown: self.shown.as_deref(),
            frozen: self.frozen,
            no_signal,
            latest_mask: if self.frozen {
                None
            } else {
                self.session.latest_mask()
            },
            ai_healthy: healthy,
            epoch_us: cap.epoch_us,
            overlay_on: self.overlay_on,
            max_age_ms: self.cfg.inference.max_mask_age_ms,
        };
        let (state, kept) = overlay::decide(inputs, self.shown_mask.take());
        self.shown_mask = kept;
        state
    }

    /// The video, letterboxed in black, with the mask when the decision allows it.
    fn paint_video(&self, ui: &egui::Ui, overlay: &OverlayState, no_signal: bool) {
        let full = ui.max_rect();
        ui.painter().rect_filled(full, 0.0, Color32::BLACK);
        let Some(f) = &self.shown else {
            panels::no_signal(ui.painter(), full);
            return;
        };
        let aspect = f.width as f32 / f.height.max(1) as f32;
        let mut size = full.size();
        if size.x / size.y > aspect {
            size.x = size.y * aspect;
        } else {
            size.y = size.x / aspect;
        }
        let rect = egui::Rect::from_center_size(full.center(), size);
        let mask = match overlay {
            OverlayState::Drawn { .. } => self.shown_mask.clone(),
            _ => None,
        };
        if let Some(fmt) = self.target_format {
            let cb = VideoCallback {
                frame: f.clone(),
                mask,
                style: self.style.clone(),
                rect,
                target_format: fmt,
                log: self.log.clone(),
            };
            video_view::paint(ui, cb);
        }
        if no_signal {
            ui.painter()
                .rect_filled(rect, 0.0, Color32::from_black_alpha(140));
            panels::no_signal(ui.painter(), rect);
        }
    }

    fn hud_inputs<'a>(
        &'a self,
        overlay: &'a OverlayState,
        cap: &CaptureStats,
        w: &WorkerState,
    ) -> HudInputs<'a> {
        let log = lock(&self.log);
        let p = |v, q| recent_percentile(v, q);
        let info = self.session.info();
        HudInputs {
            source: (&info.name, info.width, info.height),
            provider: w.provider,
            capture_fps: cap.fps,
            ai_fps: self.ai_rate.fps,
            timings: w.last_timings,
            overlay,
            video_ms: (p(&log.recent_video_ms, 50.0), p(&log.recent_video_ms, 99.0)),
            annotation_ms: (
                p(&log.recent_annotation_ms, 50.0),
                p(&log.recent_annotation_ms, 99.0),
            ),
            dropped: (self.session.capture_dropped(), w.skipped, cap.errors),
            recording: self
                .session
                .recording()
                .filter(|r| !r.finished)
                .map(|r| (r.frames, r.masks, r.lost)),
        }
    }

    /// Status (always), HUD, legend, review bar and toast.
    fn draw_panels(
        &mut self,
        ctx: &egui::Context,
        overlay: &OverlayState,
        now_us: u64,
        cap: &CaptureStats,
        w: &WorkerState,
    ) {
        let recording_error = self.session.recording().and_then(|r| r.error);
        let mut lines = status::status_lines(&StatusInputs {
            live: !self.is_review(),
            now_us,
            capture: cap,
            worker: w,
            overlay,
            frozen: self.frozen,
            recording_error: recording_error.as_deref(),
            no_signal_ms: self.cfg.capture.no_signal_ms,
        });
        // Every change of the status also goes to the log.
        self.status_log.update(&lines);
        lines.extend(status::ai_line(overlay, &w.status));
        panels::status(ctx, &lines);
        if self.cfg.display.hud {
            panels::hud(ctx, status::hud_text(&self.hud_inputs(overlay, cap, w)));
        }
        if self.cfg.display.legend {
            let o = &self.cfg.overlay;
            panels::legend(ctx, &self.classes, &o.hidden_classes, o.opacity, o.mode);
        }
        if self.is_review() {
            self.review_bar(ctx);
        }
        if let Some((msg, until)) = &self.toast
            && (now_us as f64 / 1e6) < *until
        {
            panels::toast(ctx, msg);
        }
    }

    /// One frame of the UI; public so that tests can drive it through egui_kittest.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        for action in keys::pressed(&ctx) {
            self.apply(&ctx, action);
        }
        let now = clock_us();
        let w = self.session.worker();
        self.follow_model_classes(&w);
        self.ai_rate.update(w.masks, now);
        if !self.frozen
            && let Some(f) = self.session.latest_frame()
        {
            self.shown = Some(f);
        }
        let cap = self.session.capture_stats();
        let silent_ms = now.saturating_sub(cap.last_frame_at_us) as f64 / 1e3;
        let no_signal =
            !self.is_review() && !self.frozen && silent_ms > self.cfg.capture.no_signal_ms;
        let overlay = self.decide_overlay(now, &cap, &w, no_signal);
        self.paint_video(ui, &overlay, no_signal);
        self.draw_panels(&ctx, &overlay, now, &cap, &w);
        // A review that ends before N frames were shown still gets its snapshot.
        self.after_frame(&ctx, cap.ended.is_some());
        // Status, ages and the heartbeat change without new frames: keep them current.
        ctx.request_repaint_after(Duration::from_millis(100));
    }

    fn review_bar(&mut self, ctx: &egui::Context) {
        let total = self.session.info().frame_count.unwrap_or(0);
        let current = self.shown.as_ref().map_or(0, |f| f.id);
        match panels::review_bar(ctx, self.session.is_paused(), current, total) {
            Some(ReviewRequest::Pause(p)) => self.session.set_paused(p),
            Some(ReviewRequest::Step) => {
                self.session.set_paused(true);
                self.session.step();
            }
            Some(ReviewRequest::Seek(pos)) => self.session.seek(pos),
            None => {}
        }
    }

    fn after_frame(&mut self, ctx: &egui::Context, ended: bool) {
        let presented = lock(&self.log).frames;
        if let Some((secs, path)) = &self.opts.snapshot_after_s {
            let elapsed_s = clock_us().saturating_sub(self.started_us) as f64 / 1e6;
            if elapsed_s >= *secs {
                snapshot::request_window_snapshot(ctx, path, &self.timed_snapshot);
            } else {
                ctx.request_repaint_after(Duration::from_millis(20));
            }
        }
        if let Some((n, path)) = &self.opts.snapshot_after
            && (presented >= *n || (ended && presented > 0))
        {
            snapshot::request_window_snapshot(ctx, path, &self.snapshot_state);
        }
        if let Some(n) = self.opts.exit_after_frames {
            let snap_done =
                snapshot::done(&self.snapshot_state, self.opts.snapshot_after.is_some())
                    && snapshot::done(&self.timed_snapshot, self.opts.snapshot_after_s.is_some());
            if (presented >= n || ended) && snap_done {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// Writes the display telemetry (if asked), closes the recording and stops the
    /// worker (a model run must not outlive the runtime at process exit).
    pub fn shutdown(&mut self) {
        // A load cannot be interrupted: closing while the model loads waits for it, as
        // a process that exits under ONNX Runtime may crash.
        self.session.stop_worker(Duration::from_secs(30));
        let captured = self.session.capture_stats().frames;
        let (summary, csv) = {
            let log = lock(&self.log);
            let csv = self.opts.telemetry.as_ref().map(|_| log.telemetry_csv());
            (log.summary(captured), csv)
        };
        {
            use std::io::Write as _;
            // A closed pipe is not an error worth a panic at exit.
            let _ = writeln!(std::io::stdout().lock(), "{summary}");
        }
        if let (Some(path), Some(csv)) = (&self.opts.telemetry, csv)
            && let Err(e) = std::fs::write(path, csv)
        {
            tracing::error!("telemetry {}: {e}", path.display());
        }
        if let Some(r) = self.session.finish_recording(Duration::from_secs(10)) {
            tracing::info!(
                "recording {}: {} frames, {} masks, {} lost",
                r.dir.display(),
                r.frames,
                r.masks,
                r.lost
            );
        }
    }
}

/// An error with its causes, `a: b: c`, as the binary prints them.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

impl eframe::App for ForamenApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn on_exit(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
