//! Drawing one paint: the video with its overlay, class tags and fault frame, then the
//! panels over it.

use std::path::PathBuf;

use eframe::egui::{self, Align2, Color32, FontId};
use foramen_core::{clock_us, lock};
use foramen_pipeline::check::session::SessionMeasures;
use foramen_pipeline::live::CaptureStats;
use foramen_segment::{WorkerState, WorkerStatus};

use super::ForamenApp;
use crate::badge::{Badge, BadgeKind, Note};
use crate::help;
use crate::hud::{self, HudInputs};
use crate::legend;
use crate::overlay::OverlayState;
use crate::panels::{self, RecBadge};
use crate::present_log::recent_percentile;
use crate::readiness;
use crate::scale::UiScale;
use crate::tags;
use crate::video_view::{self, VideoCallback};

impl ForamenApp {
    /// The video, letterboxed in black, with the mask when the decision allows it,
    /// framed in the badge's colour in a fault state.
    pub(super) fn paint_video(
        &mut self,
        ui: &egui::Ui,
        overlay: &OverlayState,
        no_signal: bool,
        badge: &Badge,
    ) {
        let s = UiScale::of(ui.ctx());
        let full = ui.max_rect();
        ui.painter().rect_filled(full, 0.0, Color32::BLACK);
        let Some(f) = self.shown.clone() else {
            panels::no_signal(ui.painter(), full, s);
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
            let height_px = rect.height() * ui.ctx().pixels_per_point();
            let cb = VideoCallback {
                frame: f,
                mask: mask.clone(),
                style: self.style.clone(),
                rect,
                target_format: fmt,
                log: self.log.clone(),
                contour_scale: height_px / 1080.0,
            };
            video_view::paint(ui, cb);
        }
        if let Some(m) = mask.filter(|_| badge.kind == BadgeKind::Drawing) {
            self.paint_tags(ui.painter(), rect, &m, s);
        }
        if no_signal {
            ui.painter()
                .rect_filled(rect, 0.0, Color32::from_black_alpha(140));
            panels::no_signal(ui.painter(), rect, s);
        }
        if badge.kind.is_fault() {
            panels::fault_frame(ui.painter(), rect, s, badge.severity);
        }
    }

    /// Each drawn class's tag on its region, dark-haloed to read on any colour.
    fn paint_tags(
        &mut self,
        painter: &egui::Painter,
        rect: egui::Rect,
        m: &foramen_core::Mask,
        s: UiScale,
    ) {
        if self
            .tags
            .as_ref()
            .is_none_or(|(id, ..)| *id != m.source_frame_id)
        {
            let names = self.classes.tags();
            self.tags = Some((m.source_frame_id, tags::tag_positions(m), names));
        }
        let Some((_, positions, names)) = &self.tags else {
            return;
        };
        let font = FontId::proportional(s.text());
        for t in positions {
            let Some(c) = self.classes.classes.get(t.class as usize) else {
                continue;
            };
            if !self.style.visible[t.class as usize] {
                continue;
            }
            let at = rect.min + egui::vec2(t.x * rect.width(), t.y * rect.height());
            let tag = &names[t.class as usize];
            for d in [[-1.5, 0.0], [1.5, 0.0], [0.0, -1.5], [0.0, 1.5]] {
                painter.text(
                    at + egui::vec2(d[0], d[1]),
                    Align2::CENTER_CENTER,
                    tag,
                    font.clone(),
                    Color32::BLACK,
                );
            }
            let [r, g, b] = c.color;
            painter.text(
                at,
                Align2::CENTER_CENTER,
                tag,
                font.clone(),
                Color32::from_rgb(r, g, b),
            );
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

    /// `● REC mm:ss` while recording, `RECORDING FAILED` after a write error.
    fn rec_badge(&mut self, now_us: u64) -> Option<RecBadge> {
        let Some(r) = self.session.recording() else {
            self.rec_started = None;
            return None;
        };
        if r.error.is_some() {
            return Some(RecBadge::Failed);
        }
        if r.finished {
            return None;
        }
        let dir: PathBuf = r.dir;
        let start = match &self.rec_started {
            Some((d, t)) if *d == dir => *t,
            _ => {
                self.rec_started = Some((dir, now_us));
                now_us
            }
        };
        Some(RecBadge::Recording(
            now_us.saturating_sub(start) / 1_000_000,
        ))
    }

    /// `model X on cpu · not for clinical use`: the model and provider actually in use.
    fn model_line(&self, w: &WorkerState) -> String {
        let name = self
            .session
            .model_path()
            .file_name()
            .map_or_else(|| "-".into(), |n| n.to_string_lossy().into_owned());
        let on = match w.status {
            WorkerStatus::Running => format!(" on {}", w.provider),
            _ => " (not running)".into(),
        };
        format!("model {name}{on} · research software, not for clinical use")
    }

    /// The badge (always), REC, legend, HUD, review bar, toast, key card, settings.
    pub(super) fn draw_panels(
        &mut self,
        ctx: &egui::Context,
        overlay: &OverlayState,
        badge: &Badge,
        notes: &[Note],
        cap: &CaptureStats,
        w: &WorkerState,
    ) {
        let s = UiScale::of(ctx);
        let now = clock_us();
        let rec = self.rec_badge(now);
        panels::badge(ctx, s, badge, notes, rec.as_ref());
        panels::model_line(ctx, s, &self.model_line(w));
        if self.view.hud {
            panels::hud(ctx, s, hud::hud_text(&self.hud_inputs(overlay, cap, w)));
        }
        if self.view.legend {
            let live = badge.kind == BadgeKind::Drawing;
            if let Some(r) = legend::legend(ctx, s, &self.classes, &self.view, live) {
                self.apply_legend(r);
            }
        }
        if self.is_review() {
            self.review_bar(ctx, s);
        }
        if let Some((msg, until)) = &self.toast
            && (now as f64 / 1e6) < *until
        {
            panels::toast(ctx, s, msg);
        }
        if self.help_open
            && help::key_card(ctx, s, &self.opts.keymap, &self.classes, !self.is_review())
        {
            self.help_open = false;
        }
        self.readiness_panel(ctx, s, cap, w, now);
        let can_save = self.opts.config_path.is_some();
        if let Some(draft) = &mut self.settings
            && let Some(r) = help::settings_view(ctx, s, draft, &self.classes, can_save)
        {
            self.apply_settings(r);
        }
    }

    /// The start-of-case check, until READY has shown or the staff close it.
    fn readiness_panel(
        &mut self,
        ctx: &egui::Context,
        s: UiScale,
        cap: &CaptureStats,
        w: &WorkerState,
        now_us: u64,
    ) {
        if self.is_review() || self.readiness.done {
            return;
        }
        let m = SessionMeasures {
            input: self.session.input(),
            model: self.session.model_path(),
            info: self.session.info(),
            capture: cap,
            worker: w,
        };
        if let Some(r) = self.readiness.update(&self.cfg, &m, now_us)
            && readiness::show(ctx, s, &r)
        {
            self.readiness.done = true;
        }
    }
}
