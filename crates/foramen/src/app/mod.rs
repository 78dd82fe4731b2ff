//! The operating-room window (`foramen live`, `foramen view`): the video, always; the
//! overlay only while its mask is fresh; status, HUD, legend and controls.

pub mod overlay_gpu;
pub mod video_view;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui::{self, Align2, Color32, FontId, Key, RichText};
use foramen_core::config::OverlayMode;
use foramen_core::{ClassSet, Config, Frame, Mask, clock_us};
use foramen_overlay::OverlayStyle;
use foramen_segment::{WorkerState, WorkerStatus};

use crate::live::{CaptureStats, LiveSession, Mode};
use video_view::{PresentLog, VideoCallback};

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

/// Why the overlay is or is not drawn on the current frame.
#[derive(Clone, Debug, PartialEq)]
pub enum OverlayState {
    /// Drawn; the mask lags the shown frame by this much.
    Drawn {
        /// Mask age relative to the shown frame, ms.
        age_ms: f64,
    },
    /// Switched off by the user.
    Off,
    /// No mask yet (model loading, or the AI has never produced one).
    Waiting,
    /// The newest mask is older than the limit: hidden.
    Stale {
        /// Its age, ms.
        age_ms: f64,
        /// The limit, ms.
        limit_ms: f64,
    },
    /// No live signal: the last frame is frozen, nothing is drawn over it.
    NoSignal,
}

/// Decides whether `mask` may be drawn on `frame` (safety rule 2). The mask's age is
/// measured from its source frame's capture to the shown frame's capture; masks from
/// before `epoch_us` (a seek or a reconnection) belong to another timeline.
pub fn overlay_state(
    frame: &Frame,
    mask: Option<&Mask>,
    epoch_us: u64,
    overlay_on: bool,
    max_age_ms: f64,
) -> OverlayState {
    if !overlay_on {
        return OverlayState::Off;
    }
    let Some(m) = mask.filter(|m| m.source_captured_at_us >= epoch_us) else {
        return OverlayState::Waiting;
    };
    if m.source_captured_at_us > frame.captured_at_us {
        // A mask of a later frame (possible after stepping back): never draw the future.
        return OverlayState::Waiting;
    }
    let age_ms = (frame.captured_at_us - m.source_captured_at_us) as f64 / 1e3;
    if age_ms > max_age_ms {
        OverlayState::Stale {
            age_ms,
            limit_ms: max_age_ms,
        }
    } else {
        OverlayState::Drawn { age_ms }
    }
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
    target_format: Option<eframe::wgpu::TextureFormat>,
    log: Arc<Mutex<PresentLog>>,
    snapshot_state: Arc<Mutex<SnapshotState>>,
    toast: Option<(String, f64)>,
    fullscreen: bool,
    ai_fps: (u64, u64, f64),
    last_status: Vec<String>,
    started_us: u64,
    timed_snapshot: Arc<Mutex<SnapshotState>>,
}

#[derive(Default, PartialEq)]
enum SnapshotState {
    #[default]
    NotYet,
    Requested,
    Saved,
}

impl ForamenApp {
    /// Builds the app around a started session.
    pub fn new(
        session: LiveSession,
        cfg: Config,
        opts: AppOptions,
        target_format: Option<eframe::wgpu::TextureFormat>,
    ) -> Self {
        let classes = ClassSet::lumbar();
        let style = Arc::new(OverlayStyle::new(&classes, &cfg.overlay));
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
            toast: None,
            ai_fps: (0, clock_us(), 0.0),
            last_status: Vec::new(),
            started_us: clock_us(),
            timed_snapshot: Arc::new(Mutex::new(SnapshotState::NotYet)),
        }
    }

    /// The display statistics.
    #[cfg(test)]
    pub fn present_log(&self) -> Arc<Mutex<PresentLog>> {
        self.log.clone()
    }

    fn restyle(&mut self) {
        self.style = Arc::new(OverlayStyle::new(&self.classes, &self.cfg.overlay));
        if let Some(path) = &self.opts.config_path {
            // Settings persist as soon as they change; an error is shown, not fatal.
            if let Err(e) = self.cfg.save(path) {
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
        self.restyle();
    }

    fn keys(&mut self, ctx: &egui::Context) {
        let pressed = |k: Key| ctx.input(|i| i.key_pressed(k));
        let nums = [
            Key::Num1,
            Key::Num2,
            Key::Num3,
            Key::Num4,
            Key::Num5,
            Key::Num6,
            Key::Num7,
            Key::Num8,
            Key::Num9,
        ];
        for (i, k) in nums.into_iter().enumerate() {
            if pressed(k) {
                self.toggle_class(i + 1);
            }
        }
        if pressed(Key::Space) || pressed(Key::O) {
            self.overlay_on = !self.overlay_on;
            let msg = format!("overlay {}", if self.overlay_on { "on" } else { "off" });
            self.say(msg);
        }
        let step = if pressed(Key::Plus) || pressed(Key::Equals) {
            0.1
        } else if pressed(Key::Minus) {
            -0.1
        } else {
            0.0
        };
        if step != 0.0 {
            let o = &mut self.cfg.overlay.opacity;
            *o = ((*o + step) * 10.0).round().clamp(0.0, 10.0) / 10.0;
            let msg = format!("opacity {:.0}%", self.cfg.overlay.opacity * 100.0);
            self.say(msg);
            self.restyle();
        }
        if pressed(Key::M) {
            self.cfg.overlay.mode = match self.cfg.overlay.mode {
                OverlayMode::Fill => OverlayMode::Contour,
                OverlayMode::Contour => OverlayMode::Both,
                OverlayMode::Both => OverlayMode::Fill,
            };
            let msg = format!("mode: {:?}", self.cfg.overlay.mode).to_lowercase();
            self.say(msg);
            self.restyle();
        }
        if pressed(Key::F) {
            self.frozen = !self.frozen;
        }
        if pressed(Key::H) {
            self.cfg.display.hud = !self.cfg.display.hud;
            self.restyle();
        }
        if pressed(Key::L) {
            self.cfg.display.legend = !self.cfg.display.legend;
            self.restyle();
        }
        if pressed(Key::F11) || (self.fullscreen && pressed(Key::Escape)) {
            self.fullscreen = !self.fullscreen;
            if let (true, Some(m)) = (self.fullscreen, self.cfg.display.monitor) {
                ctx.send_viewport_cmd(egui::ViewportCommand::SetMonitor(m));
            } else {
                ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(self.fullscreen));
            }
        }
        if pressed(Key::S) {
            self.snapshot();
        }
        if pressed(Key::R) {
            self.toggle_recording();
        }
        if *self.session.mode() == Mode::Review {
            if pressed(Key::P) || pressed(Key::K) {
                let p = !self.session.is_paused();
                self.session.set_paused(p);
            }
            if pressed(Key::ArrowRight) || pressed(Key::Period) {
                self.session.set_paused(true);
                self.session.step();
            }
            if (pressed(Key::ArrowLeft) || pressed(Key::Comma))
                && let Some(f) = &self.shown
            {
                self.session.set_paused(true);
                self.session.seek(f.id.saturating_sub(1));
            }
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
                Err(e) => self.say(format!("cannot record: {e:#}")),
            }
        }
    }

    /// The annotated frame at full resolution as PNG, composited on the CPU in a
    /// background thread (the UI thread never does per-pixel work).
    fn snapshot(&mut self) {
        let Some(frame) = self.shown.clone() else {
            return;
        };
        let mask = self.shown_mask.clone();
        let style = self.style.clone();
        let dir = self.opts.snapshot_dir.clone();
        let path = dir.join(format!("snapshot-{:06}-{}.png", frame.id, clock_us()));
        self.say(format!("snapshot: {}", path.display()));
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let mut out = frame.rgb.as_ref().clone();
                if let Some(m) = &mask {
                    foramen_overlay::Compositor::new().composite(
                        &frame.rgb,
                        frame.width,
                        frame.height,
                        m,
                        &style,
                        &mut out,
                    );
                }
                let saved = std::fs::create_dir_all(&dir)
                    .map_err(|e| e.to_string())
                    .and_then(|_| {
                        image::save_buffer(
                            &path,
                            &out,
                            frame.width,
                            frame.height,
                            image::ExtendedColorType::Rgb8,
                        )
                        .map_err(|e| e.to_string())
                    });
                if let Err(e) = saved {
                    tracing::error!("snapshot {}: {e}", path.display());
                }
            });
        if let Err(e) = spawned {
            self.say(format!("snapshot failed: {e}"));
        }
    }

    fn status_lines(
        &self,
        overlay: &OverlayState,
        now_us: u64,
        cap: &CaptureStats,
        w: &WorkerState,
    ) -> Vec<(String, Color32)> {
        let red = Color32::from_rgb(230, 60, 50);
        let amber = Color32::from_rgb(240, 170, 30);
        let mut lines = vec![];
        let live = *self.session.mode() == Mode::Live;
        let silent_ms = now_us.saturating_sub(cap.last_frame_at_us) as f64 / 1e3;
        if let Some(end) = &cap.ended {
            lines.push((format!("VIDEO ENDED: {end}"), amber));
        } else if live && (cap.frames == 0 || silent_ms > self.cfg.capture.no_signal_ms) {
            let why = cap.last_error.clone().map_or_else(
                || "waiting for frames".to_string(),
                // The source's own "NO SIGNAL: why" is shown once.
                |e| e.rsplit("NO SIGNAL: ").next().unwrap_or(&e).to_string(),
            );
            lines.push((format!("NO SIGNAL: {why}"), red));
        }
        match &w.status {
            WorkerStatus::Failed {
                reason,
                retry_in_ms,
            } => lines.push((
                format!(
                    "AI OFF: {reason} (retry in {:.1} s)",
                    *retry_in_ms as f64 / 1e3
                ),
                red,
            )),
            WorkerStatus::Loading => lines.push(("AI: loading model".into(), amber)),
            _ => {}
        }
        let heartbeat_ms = now_us.saturating_sub(w.heartbeat_us) as f64 / 1e3;
        if heartbeat_ms > 1000.0 {
            lines.push((
                format!(
                    "AI NOT RESPONDING for {:.1} s: overlay hidden",
                    heartbeat_ms / 1e3
                ),
                red,
            ));
        }
        if let OverlayState::Stale { age_ms, limit_ms } = overlay {
            lines.push((
                format!("OVERLAY HIDDEN: mask {age_ms:.0} ms old (limit {limit_ms:.0} ms)"),
                amber,
            ));
        }
        if self.frozen {
            lines.push(("FROZEN (F to resume)".into(), amber));
        }
        if let Some(r) = self.session.recording()
            && let Some(e) = &r.error
        {
            lines.push((format!("RECORDING FAILED: {e}"), red));
        }
        lines
    }

    fn hud_text(&self, overlay: &OverlayState, cap: &CaptureStats, w: &WorkerState) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let p = |s: &std::collections::VecDeque<f64>, q| {
            video_view::recent_percentile(s, q)
                .map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
        };
        let age = match overlay {
            OverlayState::Drawn { age_ms } | OverlayState::Stale { age_ms, .. } => {
                format!("{age_ms:.0} ms")
            }
            _ => "-".into(),
        };
        let mut s = format!(
            "{}  {}x{}\ncapture {:.1} fps   AI {:.1} fps\ninference {:.1} ms (pre {:.1} model {:.1} post {:.1})\nmask age {}\nvideo latency p50/p99 {} / {} ms\nannotation latency p50/p99 {} / {} ms\ndropped: capture {}  AI skipped {}  errors {}",
            self.session.info().name,
            self.session.info().width,
            self.session.info().height,
            cap.fps,
            self.ai_fps.2,
            w.last_timings.total_ms(),
            w.last_timings.pre_ms,
            w.last_timings.infer_ms,
            w.last_timings.post_ms,
            age,
            p(&log.recent_video_ms, 50.0),
            p(&log.recent_video_ms, 99.0),
            p(&log.recent_annotation_ms, 50.0),
            p(&log.recent_annotation_ms, 99.0),
            self.session.capture_dropped(),
            w.skipped,
            cap.errors,
        );
        if let Some(r) = self.session.recording().filter(|r| !r.finished) {
            s.push_str(&format!(
                "\nREC {} frames, {} masks, {} lost",
                r.frames, r.masks, r.lost
            ));
        }
        s
    }

    fn update_ai_fps(&mut self, masks: u64, now_us: u64) {
        let (m0, t0, fps) = self.ai_fps;
        let dt = now_us.saturating_sub(t0) as f64 / 1e6;
        if dt >= 1.0 {
            let inst = masks.saturating_sub(m0) as f64 / dt;
            self.ai_fps = (
                masks,
                now_us,
                if fps == 0.0 {
                    inst
                } else {
                    0.5 * fps + 0.5 * inst
                },
            );
        }
    }

    /// One frame of the UI; public so that tests can drive it through egui_kittest.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.keys(&ctx);
        let now = clock_us();
        let w = self.session.worker();
        if let Some(c) = &w.classes
            && c.classes != self.classes.classes
        {
            self.classes = c.clone();
            self.restyle();
        }
        self.update_ai_fps(w.masks, now);
        if !self.frozen
            && let Some(f) = self.session.latest_frame()
        {
            self.shown = Some(f);
        }
        let cap = self.session.capture_stats();
        let live = *self.session.mode() == Mode::Live;
        let silent_ms = now.saturating_sub(cap.last_frame_at_us) as f64 / 1e3;
        let no_signal = live && !self.frozen && silent_ms > self.cfg.capture.no_signal_ms;
        let heartbeat_ms = now.saturating_sub(w.heartbeat_us) as f64 / 1e3;
        let overlay = match &self.shown {
            None => OverlayState::Waiting,
            Some(_) if no_signal => OverlayState::NoSignal,
            Some(f) => {
                if self.frozen {
                    // A frozen picture keeps the mask it was frozen with.
                    match &self.shown_mask {
                        Some(m) if self.overlay_on => OverlayState::Drawn {
                            age_ms: f.captured_at_us.saturating_sub(m.source_captured_at_us) as f64
                                / 1e3,
                        },
                        _ if !self.overlay_on => OverlayState::Off,
                        _ => OverlayState::Waiting,
                    }
                } else {
                    let mask = self.session.latest_mask();
                    let healthy =
                        heartbeat_ms <= 1000.0 && !matches!(w.status, WorkerStatus::Failed { .. });
                    let st = overlay_state(
                        f,
                        mask.as_deref().filter(|_| healthy),
                        cap.epoch_us,
                        self.overlay_on,
                        self.cfg.inference.max_mask_age_ms,
                    );
                    self.shown_mask = match st {
                        OverlayState::Drawn { .. } => mask,
                        _ => None,
                    };
                    st
                }
            }
        };

        let full = ui.max_rect();
        ui.painter().rect_filled(full, 0.0, Color32::BLACK);
        if let Some(f) = &self.shown {
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
                video_view::paint(
                    ui,
                    VideoCallback {
                        frame: f.clone(),
                        mask,
                        style: self.style.clone(),
                        rect,
                        target_format: fmt,
                        log: self.log.clone(),
                    },
                );
            }
            if no_signal {
                ui.painter()
                    .rect_filled(rect, 0.0, Color32::from_black_alpha(140));
                ui.painter().text(
                    rect.center(),
                    Align2::CENTER_CENTER,
                    "NO SIGNAL",
                    FontId::proportional(48.0),
                    Color32::from_rgb(230, 60, 50),
                );
            }
        } else {
            ui.painter().text(
                full.center(),
                Align2::CENTER_CENTER,
                "NO SIGNAL",
                FontId::proportional(48.0),
                Color32::from_rgb(230, 60, 50),
            );
        }

        // Status: always on top, never hideable; every change also goes to the log.
        let lines = self.status_lines(&overlay, now, &cap, &w);
        let texts: Vec<String> = lines
            .iter()
            .map(|(t, _)| t.split(" (retry").next().unwrap_or(t).to_string())
            .collect();
        let kinds = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|t| t.split(':').next().unwrap_or(t).to_string())
                .collect()
        };
        if kinds(&texts) != kinds(&self.last_status) {
            for t in texts.iter().filter(|t| !self.last_status.contains(t)) {
                tracing::warn!("status: {t}");
            }
            if texts.is_empty() {
                tracing::info!("status: all clear");
            }
            self.last_status = texts;
        }
        let ai_line = match (&overlay, &w.status) {
            (_, WorkerStatus::Failed { .. }) => None,
            (OverlayState::Drawn { age_ms }, _) => Some((
                format!("AI ON  {} ms behind  heartbeat ok", age_ms.round()),
                Color32::from_rgb(80, 200, 120),
            )),
            (OverlayState::Off, _) => Some(("AI OVERLAY OFF (Space)".into(), Color32::LIGHT_GRAY)),
            (OverlayState::Waiting, WorkerStatus::Running) => {
                Some(("AI: waiting for the first mask".into(), Color32::LIGHT_GRAY))
            }
            _ => None,
        };
        egui::Area::new(egui::Id::unique("status"))
            .anchor(Align2::CENTER_TOP, [0.0, 8.0])
            .order(egui::Order::Foreground)
            .interactable(false)
            .show(&ctx, |ui| {
                for (text, color) in lines.iter().chain(ai_line.iter()) {
                    panel(190).show(ui, |ui| {
                        ui.add(
                            egui::Label::new(RichText::new(text).color(*color).size(20.0).strong())
                                .wrap_mode(egui::TextWrapMode::Extend),
                        );
                    });
                }
            });

        if self.cfg.display.hud {
            let text = self.hud_text(&overlay, &cap, &w);
            egui::Area::new(egui::Id::unique("hud"))
                .anchor(Align2::LEFT_TOP, [8.0, 8.0])
                .order(egui::Order::Middle)
                .interactable(false)
                .show(&ctx, |ui| {
                    panel(160).show(ui, |ui| {
                        ui.add(
                            egui::Label::new(
                                RichText::new(text)
                                    .monospace()
                                    .color(Color32::from_gray(230))
                                    .size(13.0),
                            )
                            .wrap_mode(egui::TextWrapMode::Extend),
                        );
                    });
                });
        }
        if self.cfg.display.legend {
            let classes = self.classes.clone();
            let hidden = self.cfg.overlay.hidden_classes.clone();
            let opacity = self.cfg.overlay.opacity;
            let mode = self.cfg.overlay.mode;
            egui::Area::new(egui::Id::unique("legend"))
                .anchor(Align2::LEFT_BOTTOM, [8.0, -8.0])
                .interactable(false)
                .show(&ctx, |ui| {
                    panel(160).show(ui, |ui| {
                        for (i, c) in classes.classes.iter().enumerate().skip(1) {
                            let [r, g, b] = c.color;
                            let off = hidden.contains(&c.name);
                            ui.horizontal(|ui| {
                                let (rect, _) = ui.allocate_exact_size(
                                    egui::vec2(14.0, 14.0),
                                    egui::Sense::hover(),
                                );
                                ui.painter()
                                    .rect_filled(rect, 2.0, Color32::from_rgb(r, g, b));
                                let t = format!(
                                    "{} {}{}",
                                    i,
                                    c.name,
                                    if off { " (hidden)" } else { "" }
                                );
                                ui.label(RichText::new(t).color(if off {
                                    Color32::GRAY
                                } else {
                                    Color32::WHITE
                                }));
                            });
                        }
                        ui.label(
                            RichText::new(format!("{:?} {:.0}%", mode, opacity * 100.0))
                                .color(Color32::LIGHT_GRAY)
                                .small(),
                        );
                    });
                });
        }
        if *self.session.mode() == Mode::Review {
            self.review_bar(&ctx);
        }
        if let Some((msg, until)) = &self.toast
            && (now as f64 / 1e6) < *until
        {
            egui::Area::new(egui::Id::unique("toast"))
                .anchor(Align2::CENTER_BOTTOM, [0.0, -48.0])
                .interactable(false)
                .show(&ctx, |ui| {
                    ui.label(RichText::new(msg).size(18.0).color(Color32::WHITE));
                });
        }
        // A review that ends before N frames were shown still gets its snapshot.
        self.after_frame(&ctx, cap.ended.is_some());
        // Status, ages and the heartbeat change without new frames: keep them current.
        ctx.request_repaint_after(Duration::from_millis(100));
    }

    fn review_bar(&mut self, ctx: &egui::Context) {
        let total = self.session.info().frame_count.unwrap_or(0);
        let current = self.shown.as_ref().map_or(0, |f| f.id);
        let paused = self.session.is_paused();
        egui::Area::new(egui::Id::unique("review"))
            .anchor(Align2::RIGHT_BOTTOM, [-8.0, -8.0])
            .show(ctx, |ui| {
                panel(160).show(ui, |ui| {
                    ui.horizontal(|ui| {
                        if ui
                            .button(if paused { "Play (P)" } else { "Pause (P)" })
                            .clicked()
                        {
                            self.session.set_paused(!paused);
                        }
                        if ui.button("Step (->)").clicked() {
                            self.session.set_paused(true);
                            self.session.step();
                        }
                        let mut pos = current;
                        if total > 0 {
                            let slider = egui::Slider::new(&mut pos, 0..=total.saturating_sub(1))
                                .text("frame");
                            if ui.add(slider).drag_stopped() || pos.abs_diff(current) > 1 {
                                self.session.seek(pos);
                            }
                        } else {
                            ui.label(format!("frame {current}"));
                        }
                    });
                });
            });
    }

    fn after_frame(&mut self, ctx: &egui::Context, ended: bool) {
        let presented = self.log.lock().unwrap_or_else(|e| e.into_inner()).frames;
        if let Some((secs, path)) = &self.opts.snapshot_after_s {
            let elapsed_s = clock_us().saturating_sub(self.started_us) as f64 / 1e6;
            if elapsed_s >= *secs {
                request_window_snapshot(ctx, path, &self.timed_snapshot);
            } else {
                ctx.request_repaint_after(Duration::from_millis(20));
            }
        }
        if let Some((n, path)) = &self.opts.snapshot_after
            && (presented >= *n || (ended && presented > 0))
        {
            request_window_snapshot(ctx, path, &self.snapshot_state);
        }
        if let Some(n) = self.opts.exit_after_frames {
            let done = |s: &Arc<Mutex<SnapshotState>>, asked: bool| {
                !asked || *s.lock().unwrap_or_else(|e| e.into_inner()) == SnapshotState::Saved
            };
            let snap_done = done(&self.snapshot_state, self.opts.snapshot_after.is_some())
                && done(&self.timed_snapshot, self.opts.snapshot_after_s.is_some());
            if (presented >= n || ended) && snap_done {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// Writes the display telemetry (if asked), closes the recording and stops the
    /// worker (a model run must not outlive the runtime at process exit).
    pub fn shutdown(&mut self) {
        self.session.stop_worker(Duration::from_secs(2));
        {
            let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let cap = self.session.capture_stats();
            let pct = |s: &foramen_core::LatencyStats, q| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.1}", s.percentile(q))
                }
            };
            say!(
                "{} frames captured, {} presented; video latency p50 {} p99 {} max {} ms; annotation latency p50 {} p99 {} ms ({} masks drawn)",
                cap.frames,
                log.frames,
                pct(&log.video_latency_ms, 50.0),
                pct(&log.video_latency_ms, 99.0),
                pct(&log.video_latency_ms, 100.0),
                pct(&log.annotation_latency_ms, 50.0),
                pct(&log.annotation_latency_ms, 99.0),
                log.annotation_latency_ms.len()
            );
        }
        if let Some(path) = &self.opts.telemetry {
            let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let mut s = String::from("frame,video_latency_ms,mask_frame,annotation_latency_ms\n");
            for (id, v, m, a) in &log.rows {
                let opt = |x: Option<String>| x.unwrap_or_default();
                s.push_str(&format!(
                    "{id},{},{},{}\n",
                    if v.is_nan() {
                        String::new()
                    } else {
                        format!("{v:.2}")
                    },
                    opt(m.map(|m| m.to_string())),
                    opt(a.map(|a| format!("{a:.2}")))
                ));
            }
            if let Err(e) = std::fs::write(path, s) {
                tracing::error!("telemetry {}: {e}", path.display());
            }
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

/// The translucent box behind on-screen text, so it stays legible over any tissue.
fn panel(alpha: u8) -> egui::Frame {
    egui::Frame::new()
        .fill(Color32::from_black_alpha(alpha))
        .inner_margin(6.0)
        .corner_radius(4.0)
}

/// Asks egui for a screenshot of the window (once per `state`) and saves it as PNG.
fn request_window_snapshot(
    ctx: &egui::Context,
    path: &std::path::Path,
    state: &Arc<Mutex<SnapshotState>>,
) {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if *st != SnapshotState::NotYet {
        return;
    }
    *st = SnapshotState::Requested;
    let (path, state, ctx2) = (path.to_path_buf(), state.clone(), ctx.clone());
    ctx.request_screenshot(move |img| {
        let rgba: Vec<u8> = img.pixels.iter().flat_map(|c| c.to_array()).collect();
        let saved = image::save_buffer(
            &path,
            &rgba,
            img.size[0] as u32,
            img.size[1] as u32,
            image::ExtendedColorType::Rgba8,
        );
        match saved {
            Ok(()) => tracing::info!("window snapshot: {}", path.display()),
            Err(e) => tracing::error!("window snapshot {}: {e}", path.display()),
        }
        *state.lock().unwrap_or_else(|e| e.into_inner()) = SnapshotState::Saved;
        ctx2.request_repaint();
    });
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
mod tests {
    use super::*;
    use crate::live::SessionSpec;
    use eframe::egui_wgpu;
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::wgpu::{WgpuTestRenderer, create_render_state, default_wgpu_setup};

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
            presented(app) >= 5
                && matches!(app.session.worker().status, WorkerStatus::Failed { .. })
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
        // Settings persist as they change.
        let saved = Config::load(&dir.path().join("or.toml")).expect("saved settings");
        assert_eq!(saved.overlay.hidden_classes, vec!["ligament".to_string()]);
    }

    fn frame(id: u64, at_us: u64) -> Frame {
        let mut f = Frame::new(id, 0, 2, 2, vec![0; 12]).expect("frame");
        f.captured_at_us = at_us;
        f
    }

    fn mask(at_us: u64) -> Mask {
        Mask {
            source_frame_id: 0,
            source_pts_us: 0,
            source_captured_at_us: at_us,
            width: 1,
            height: 1,
            classes: vec![1],
            confidence: vec![255],
            infer_ms: 1.0,
        }
    }

    #[test]
    fn masks_older_than_the_limit_are_not_drawn() {
        let f = frame(10, 1_000_000);
        assert_eq!(
            overlay_state(&f, Some(&mask(900_000)), 0, true, 250.0),
            OverlayState::Drawn { age_ms: 100.0 }
        );
        assert_eq!(
            overlay_state(&f, Some(&mask(600_000)), 0, true, 250.0),
            OverlayState::Stale {
                age_ms: 400.0,
                limit_ms: 250.0
            }
        );
        assert_eq!(
            overlay_state(&f, Some(&mask(900_000)), 0, false, 250.0),
            OverlayState::Off
        );
        assert_eq!(
            overlay_state(&f, None, 0, true, 250.0),
            OverlayState::Waiting
        );
    }

    #[test]
    fn masks_from_another_timeline_or_the_future_are_not_drawn() {
        let f = frame(10, 1_000_000);
        // Computed before a seek or reconnection.
        assert_eq!(
            overlay_state(&f, Some(&mask(950_000)), 960_000, true, 250.0),
            OverlayState::Waiting
        );
        // From a frame captured after the shown one.
        assert_eq!(
            overlay_state(&f, Some(&mask(1_000_001)), 0, true, 250.0),
            OverlayState::Waiting
        );
    }
}
