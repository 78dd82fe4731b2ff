//! The operating-room window (`foramen live`, `foramen view`): the video, always; the
//! overlay only while its mask is fresh; one status badge, the REC badge, legend and
//! controls.
//!
//! One paint ([`ForamenApp::show`]): keys -> newest frame -> overlay decision
//! (`overlay`) -> badge (`badge`) -> video view (wgpu callback) -> panels -> snapshots
//! and exit. The UI thread never blocks and does no frame-sized work. What the staff
//! change lives in a per-case [`ViewState`]; only the settings view writes the file.

mod actions;
mod draw;
mod review;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui;
use eframe::wgpu;
use foramen_core::{ClassSet, Config, Frame, Mask, clock_us, lock};
use foramen_overlay::OverlayStyle;
use foramen_pipeline::live::{CaptureStats, LiveSession, Mode};
use foramen_segment::{WorkerState, WorkerStatus};

use crate::badge::{self, BadgeInputs, StatusLog};
use crate::help::SettingsDraft;
use crate::hud::AiRate;
use crate::keys::Keymap;
use crate::overlay::{self, OverlayInputs, OverlayState};
use crate::present_log::PresentLog;
use crate::readiness::ReadinessPanel;
use crate::snapshot::{self, SnapshotState};
use crate::tags::TagPos;
use crate::timeline_strip::ReviewTimeline;
use crate::view_state::ViewState;

/// Options that come from the command line rather than the settings file.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Where the settings view saves (`--config`); none: changes last for the case.
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
    /// The keys (built-in plus `[keys]`, checked by the caller).
    pub keymap: Keymap,
}

/// The eframe application.
pub struct ForamenApp {
    session: LiveSession,
    /// The settings as loaded (or last saved): what every case starts from.
    cfg: Config,
    opts: AppOptions,
    classes: ClassSet,
    style: Arc<OverlayStyle>,
    view: ViewState,
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
    help_open: bool,
    settings: Option<SettingsDraft>,
    /// The recording folder and when this window first saw it recording.
    rec_started: Option<(PathBuf, u64)>,
    /// Tag positions of the mask with this source frame id, and the classes' tags.
    tags: Option<(u64, Vec<TagPos>, Vec<String>)>,
    /// The start-of-case readiness check (live sessions).
    readiness: ReadinessPanel,
    /// Review of a recording folder: its timeline (read on its own thread).
    timeline: ReviewTimeline,
    /// The clip's in and out marks (frame indices of the recording).
    marks: (Option<u64>, Option<u64>),
    /// Where the timeline strip was last drawn.
    strip_rect: Option<egui::Rect>,
    /// The clip being saved (X), or the last one.
    clip_job: Option<crate::clip_export::ClipJob>,
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
        let view = ViewState::from_settings(&cfg.overlay, &cfg.display);
        let style = Arc::new(OverlayStyle::new(
            &classes,
            &view.overlay_config(&cfg.overlay),
        ));
        let now = clock_us();
        let input = std::path::Path::new(session.input());
        let timeline =
            if *session.mode() == Mode::Review && foramen_data::recording::is_recording(input) {
                ReviewTimeline::load(input, cfg.inference.max_mask_age_ms)
            } else {
                ReviewTimeline::default()
            };
        Self {
            timeline,
            marks: (None, None),
            strip_rect: None,
            clip_job: None,
            session,
            fullscreen: cfg.display.fullscreen,
            cfg,
            opts,
            classes,
            style,
            view,
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
            help_open: false,
            settings: None,
            rec_started: None,
            tags: None,
            readiness: ReadinessPanel::default(),
        }
    }

    /// The display statistics.
    #[cfg(test)]
    pub fn present_log(&self) -> Arc<Mutex<PresentLog>> {
        self.log.clone()
    }

    /// Rebuilds the overlay style from the view.
    fn restyle(&mut self) {
        let cfg = self.view.overlay_config(&self.cfg.overlay);
        self.style = Arc::new(OverlayStyle::new(&self.classes, &cfg));
    }

    fn say(&mut self, msg: String) {
        tracing::info!("{msg}");
        self.toast = Some((msg, clock_us() as f64 / 1e6 + 3.0));
    }

    fn is_review(&self) -> bool {
        *self.session.mode() == Mode::Review
    }

    /// The model's own classes once it has loaded (the legend follows them), in the
    /// theatre's colours.
    fn follow_model_classes(&mut self, w: &WorkerState) {
        if let Some(c) = &w.classes {
            let c = c.clone().with_display_colors();
            if c.classes != self.classes.classes {
                self.classes = c;
                self.restyle();
            }
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
        let healthy = badge::heartbeat_age_ms(w, now_us) <= badge::HEARTBEAT_LIMIT_MS
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
            overlay_on: self.view.overlay_on,
            max_age_ms: self.cfg.inference.max_mask_age_ms,
        };
        let (state, kept) = overlay::decide(inputs, self.shown_mask.take());
        self.shown_mask = kept;
        state
    }

    /// One frame of the UI; public so that tests can drive it through egui_kittest.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        for action in self.opts.keymap.pressed(&ctx) {
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
        let drawn = self.view.drawn_classes(&self.classes);
        let inputs = BadgeInputs {
            now_us: now,
            capture: &cap,
            worker: &w,
            overlay: &overlay,
            no_signal,
            drawn_classes: &drawn,
        };
        let (badge, notes) = (badge::badge(&inputs), badge::notes(&inputs, self.frozen));
        let rec_error = self.session.recording().and_then(|r| r.error);
        self.status_log
            .update(&badge, &notes, &w, rec_error.as_deref());
        self.paint_video(ui, &overlay, no_signal, &badge);
        self.draw_panels(&ctx, &overlay, &badge, &notes, &cap, &w);
        // A review that ends before N frames were shown still gets its snapshot.
        self.after_frame(&ctx, cap.ended.is_some());
        // Status, ages and the heartbeat change without new frames: keep them current.
        ctx.request_repaint_after(Duration::from_millis(100));
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

impl eframe::App for ForamenApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn on_exit(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod tests;
