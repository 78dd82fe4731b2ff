//! What is drawn over the video: the status area, the HUD, the legend, the review bar
//! and the toast. Drawing only: the words come from `status`, the decisions from the app.

use eframe::egui::{self, Align2, Color32, FontId, RichText};
use foramen_core::ClassSet;
use foramen_core::config::OverlayMode;

use crate::status::{Severity, StatusLine};

/// The colour of a status line.
pub fn color(severity: Severity) -> Color32 {
    match severity {
        Severity::Alarm => Color32::from_rgb(230, 60, 50),
        Severity::Warning => Color32::from_rgb(240, 170, 30),
        Severity::Good => Color32::from_rgb(80, 200, 120),
        Severity::Info => Color32::LIGHT_GRAY,
    }
}

/// The translucent box behind on-screen text, so it stays legible over any tissue.
fn panel(alpha: u8) -> egui::Frame {
    egui::Frame::new()
        .fill(Color32::from_black_alpha(alpha))
        .inner_margin(6.0)
        .corner_radius(4.0)
}

/// `NO SIGNAL` in large red letters at the centre of `rect`.
pub fn no_signal(painter: &egui::Painter, rect: egui::Rect) {
    painter.text(
        rect.center(),
        Align2::CENTER_CENTER,
        "NO SIGNAL",
        FontId::proportional(48.0),
        color(Severity::Alarm),
    );
}

/// The status lines at the top centre: always on top, never hideable.
pub fn status(ctx: &egui::Context, lines: &[StatusLine]) {
    egui::Area::new(egui::Id::unique("status"))
        .anchor(Align2::CENTER_TOP, [0.0, 8.0])
        .order(egui::Order::Foreground)
        .interactable(false)
        .show(ctx, |ui| {
            for l in lines {
                panel(190).show(ui, |ui| {
                    let text = RichText::new(&l.text)
                        .color(color(l.severity))
                        .size(20.0)
                        .strong();
                    ui.add(egui::Label::new(text).wrap_mode(egui::TextWrapMode::Extend));
                });
            }
        });
}

/// The HUD at the top left.
pub fn hud(ctx: &egui::Context, text: String) {
    egui::Area::new(egui::Id::unique("hud"))
        .anchor(Align2::LEFT_TOP, [8.0, 8.0])
        .order(egui::Order::Middle)
        .interactable(false)
        .show(ctx, |ui| {
            panel(160).show(ui, |ui| {
                let text = RichText::new(text)
                    .monospace()
                    .color(Color32::from_gray(230))
                    .size(13.0);
                ui.add(egui::Label::new(text).wrap_mode(egui::TextWrapMode::Extend));
            });
        });
}

/// The legend at the bottom left: each class with its key, colour and visibility.
pub fn legend(
    ctx: &egui::Context,
    classes: &ClassSet,
    hidden: &[String],
    opacity: f32,
    mode: OverlayMode,
) {
    egui::Area::new(egui::Id::unique("legend"))
        .anchor(Align2::LEFT_BOTTOM, [8.0, -8.0])
        .interactable(false)
        .show(ctx, |ui| {
            panel(160).show(ui, |ui| {
                for (i, c) in classes.classes.iter().enumerate().skip(1) {
                    let [r, g, b] = c.color;
                    let off = hidden.contains(&c.name);
                    ui.horizontal(|ui| {
                        let (rect, _) =
                            ui.allocate_exact_size(egui::vec2(14.0, 14.0), egui::Sense::hover());
                        ui.painter()
                            .rect_filled(rect, 2.0, Color32::from_rgb(r, g, b));
                        let t = format!("{i} {}{}", c.name, if off { " (hidden)" } else { "" });
                        let tone = if off { Color32::GRAY } else { Color32::WHITE };
                        ui.label(RichText::new(t).color(tone));
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

/// What the review bar asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewRequest {
    /// Pause (true) or play.
    Pause(bool),
    /// One frame forward.
    Step,
    /// Go to a frame.
    Seek(u64),
}

/// The review bar at the bottom right: play/pause, step and a frame slider.
pub fn review_bar(
    ctx: &egui::Context,
    paused: bool,
    current: u64,
    total: u64,
) -> Option<ReviewRequest> {
    let mut request = None;
    egui::Area::new(egui::Id::unique("review"))
        .anchor(Align2::RIGHT_BOTTOM, [-8.0, -8.0])
        .show(ctx, |ui| {
            panel(160).show(ui, |ui| {
                ui.horizontal(|ui| {
                    let label = if paused { "Play (P)" } else { "Pause (P)" };
                    if ui.button(label).clicked() {
                        request = Some(ReviewRequest::Pause(!paused));
                    }
                    if ui.button("Step (->)").clicked() {
                        request = Some(ReviewRequest::Step);
                    }
                    let mut pos = current;
                    if total > 0 {
                        let slider =
                            egui::Slider::new(&mut pos, 0..=total.saturating_sub(1)).text("frame");
                        if ui.add(slider).drag_stopped() || pos.abs_diff(current) > 1 {
                            request = Some(ReviewRequest::Seek(pos));
                        }
                    } else {
                        ui.label(format!("frame {current}"));
                    }
                });
            });
        });
    request
}

/// The short-lived message at the bottom centre (what a key just did).
pub fn toast(ctx: &egui::Context, msg: &str) {
    egui::Area::new(egui::Id::unique("toast"))
        .anchor(Align2::CENTER_BOTTOM, [0.0, -48.0])
        .interactable(false)
        .show(ctx, |ui| {
            ui.label(RichText::new(msg).size(18.0).color(Color32::WHITE));
        });
}
