//! What is drawn over the video: the status badge and its notes, the REC badge, NO
//! SIGNAL, the model line, the HUD and the toast (the review bar: `review_bar`). Drawing only: the
//! words come from `badge` and `hud`, the sizes from `scale`, the decisions from the app.

use eframe::egui::{self, Align2, Color32, FontId, RichText};

use crate::badge::{Badge, Note, Severity};
use crate::scale::UiScale;

/// The colour of a severity.
pub fn color(severity: Severity) -> Color32 {
    match severity {
        Severity::Alarm => Color32::from_rgb(230, 60, 50),
        Severity::Warning => Color32::from_rgb(240, 170, 30),
        Severity::Good => Color32::from_rgb(80, 200, 120),
        Severity::Info => Color32::from_gray(200),
    }
}

/// The dark box behind on-screen text, so it stays legible over any tissue.
pub fn panel(s: UiScale, alpha: u8) -> egui::Frame {
    egui::Frame::new()
        .fill(Color32::from_black_alpha(alpha))
        .inner_margin(s.margin())
        .corner_radius(s.margin() * 0.6)
}

pub(crate) fn label(ui: &mut egui::Ui, text: RichText) {
    ui.add(egui::Label::new(text).wrap_mode(egui::TextWrapMode::Extend));
}

/// `NO SIGNAL` in large red capitals on an opaque panel at the centre of `rect`.
pub fn no_signal(painter: &egui::Painter, rect: egui::Rect, s: UiScale) {
    let font = FontId::proportional(s.no_signal());
    let red = color(Severity::Alarm);
    let galley = painter.layout_no_wrap("NO SIGNAL".into(), font, red);
    let pad = egui::vec2(s.no_signal() * 0.6, s.no_signal() * 0.35);
    let bg = egui::Rect::from_center_size(rect.center(), galley.size() + 2.0 * pad);
    painter.rect_filled(bg, s.margin(), Color32::from_gray(12));
    painter.rect_stroke(
        bg,
        s.margin(),
        egui::Stroke::new(s.frame_px() * 0.5, red),
        egui::StrokeKind::Inside,
    );
    painter.galley(bg.min + pad, galley, red);
}

/// The badge, the REC badge beside it, and the notes under them, at the top centre,
/// where towers leave the screen free (their own text sits in the corners): always on
/// top, never hideable.
pub fn badge(ctx: &egui::Context, s: UiScale, b: &Badge, notes: &[Note], rec: Option<&RecBadge>) {
    egui::Area::new(egui::Id::unique("badge"))
        .anchor(Align2::CENTER_TOP, [0.0, s.margin()])
        .order(egui::Order::Foreground)
        .interactable(false)
        .show(ctx, |ui| {
            ui.spacing_mut().item_spacing = egui::vec2(s.margin(), s.margin() * 0.5);
            ui.vertical_centered(|ui| {
                ui.horizontal(|ui| {
                    panel(s, 225).show(ui, |ui| {
                        ui.vertical(|ui| {
                            title_box(ui, s, b);
                            let detail = RichText::new(&b.detail).color(Color32::WHITE);
                            label(ui, detail.size(s.text()));
                        });
                    });
                    if let Some(r) = rec {
                        rec_badge(ui, s, r);
                    }
                });
                for n in notes {
                    panel(s, 210).show(ui, |ui| {
                        let t = format!("{}: {}", n.title, n.detail);
                        label(ui, RichText::new(t).color(color(n.severity)).size(s.text()));
                    });
                }
            });
        });
}

/// The badge's title in a box of its state's colour: white on red, black on the others.
fn title_box(ui: &mut egui::Ui, s: UiScale, b: &Badge) {
    let ink = match b.severity {
        Severity::Alarm => Color32::WHITE,
        _ => Color32::from_gray(10),
    };
    egui::Frame::new()
        .fill(color(b.severity))
        .inner_margin(egui::Margin::symmetric(
            (s.margin() * 1.2) as i8,
            (s.margin() * 0.5) as i8,
        ))
        .corner_radius(s.margin() * 0.5)
        .show(ui, |ui| {
            label(
                ui,
                RichText::new(b.title).color(ink).size(s.badge()).strong(),
            );
        });
}

/// The recording's state, shown whatever the HUD does.
#[derive(Clone, Debug, PartialEq)]
pub enum RecBadge {
    /// Recording for this many seconds.
    Recording(u64),
    /// The recorder stopped at an error (the video goes on).
    Failed,
}

impl RecBadge {
    /// `REC mm:ss` (drawn after a red dot) or `RECORDING FAILED`.
    pub fn text(&self) -> String {
        match self {
            Self::Recording(s) => format!("REC {:02}:{:02}", s / 60, s % 60),
            Self::Failed => "RECORDING FAILED".into(),
        }
    }
}

fn rec_badge(ui: &mut egui::Ui, s: UiScale, r: &RecBadge) {
    let red = color(Severity::Alarm);
    let (fill, tone) = match r {
        RecBadge::Recording(_) => (Color32::from_black_alpha(225), red),
        RecBadge::Failed => (red, Color32::WHITE),
    };
    egui::Frame::new()
        .fill(fill)
        .stroke(egui::Stroke::new(s.frame_px() * 0.5, red))
        .inner_margin(s.margin())
        .corner_radius(s.margin() * 0.6)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                if matches!(r, RecBadge::Recording(_)) {
                    // The dot is painted: the bundled font has no U+25CF.
                    let d = s.text() * 0.6;
                    let (rect, _) = ui.allocate_exact_size(egui::vec2(d, d), egui::Sense::hover());
                    ui.painter().circle_filled(rect.center(), d * 0.5, red);
                }
                label(
                    ui,
                    RichText::new(r.text()).color(tone).size(s.text()).strong(),
                );
            });
        });
}

/// Frames `rect` in the badge's colour (fault states).
pub fn fault_frame(painter: &egui::Painter, rect: egui::Rect, s: UiScale, severity: Severity) {
    painter.rect_stroke(
        rect,
        0.0,
        egui::Stroke::new(s.frame_px(), color(severity)),
        egui::StrokeKind::Inside,
    );
}

/// The model in use and what it is not for, at the bottom centre.
pub fn model_line(ctx: &egui::Context, s: UiScale, text: &str) {
    egui::Area::new(egui::Id::unique("model"))
        .anchor(Align2::CENTER_BOTTOM, [0.0, -s.margin() * 0.5])
        .interactable(false)
        .show(ctx, |ui| {
            panel(s, 170).show(ui, |ui| {
                label(
                    ui,
                    RichText::new(text)
                        .color(Color32::from_gray(210))
                        .size(s.small()),
                );
            });
        });
}

/// The engineering HUD, on the right edge half-way down: away from the corners, where
/// towers put their own display.
pub fn hud(ctx: &egui::Context, s: UiScale, text: String) {
    egui::Area::new(egui::Id::unique("hud"))
        .anchor(Align2::RIGHT_CENTER, [-s.margin(), 0.0])
        .order(egui::Order::Middle)
        .interactable(false)
        .show(ctx, |ui| {
            panel(s, 190).show(ui, |ui| {
                let text = RichText::new(text)
                    .monospace()
                    .color(Color32::from_gray(230))
                    .size(s.small());
                label(ui, text);
            });
        });
}

/// The short-lived message above the model line (what a key just did), on a panel,
/// on one line.
pub fn toast(ctx: &egui::Context, s: UiScale, msg: &str) {
    egui::Area::new(egui::Id::unique("toast"))
        .anchor(
            Align2::CENTER_BOTTOM,
            [0.0, -(s.small() * 2.0 + s.margin() * 4.0)],
        )
        .order(egui::Order::Foreground)
        .interactable(false)
        .show(ctx, |ui| {
            panel(s, 220).show(ui, |ui| {
                label(ui, RichText::new(msg).size(s.text()).color(Color32::WHITE));
            });
        });
}
