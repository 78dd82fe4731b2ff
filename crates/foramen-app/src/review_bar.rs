//! The review bar at the bottom right: play/pause, step, the frame slider and, for a
//! recording, the timeline strip under it with the clip marks. Drawing only: the app
//! decides what a request does.

use eframe::egui::{self, Align2, Color32, FontId, RichText, TextureHandle};

use crate::panels::{label, panel};
use crate::scale::UiScale;
use crate::timeline_strip::{self, StripMarks};

/// What the review bar asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewRequest {
    /// Pause (true) or play.
    Pause(bool),
    /// One frame forward.
    Step,
    /// Go to a frame.
    Seek(u64),
    /// Go to a second of the recording (a click on the timeline strip).
    SeekSecond(usize),
}

/// What the bar shows.
pub struct ReviewBar<'a> {
    /// Paused?
    pub paused: bool,
    /// The shown frame's index.
    pub current: u64,
    /// Frames in the stream (0: unknown).
    pub total: u64,
    /// The recording's timeline strip and its marks.
    pub strip: Option<(&'a TextureHandle, StripMarks)>,
    /// One line under the strip: the marks, the clip being written, or why there is no
    /// timeline.
    pub line: Option<String>,
}

/// Draws the bar; returns what the staff asked for, and where the strip is.
pub fn review_bar(
    ctx: &egui::Context,
    s: UiScale,
    bar: ReviewBar<'_>,
) -> (Option<ReviewRequest>, Option<egui::Rect>) {
    let mut request = None;
    let mut strip_rect = None;
    // With a timeline the bar spans 40 % of the screen (a second must stay clickable)
    // and sits above the model line, which it would otherwise cover.
    let width = bar.strip.as_ref().map(|_| ctx.content_rect().width() * 0.4);
    let lift = match width {
        Some(_) => s.small() * 1.6 + s.margin() * 1.5,
        None => s.margin(),
    };
    egui::Area::new(egui::Id::unique("review"))
        .anchor(Align2::RIGHT_BOTTOM, [-s.margin(), -lift])
        .show(ctx, |ui| {
            panel(s, 190).show(ui, |ui| {
                ui.style_mut()
                    .text_styles
                    .insert(egui::TextStyle::Button, FontId::proportional(s.small()));
                if let Some(w) = width {
                    ui.spacing_mut().slider_width = w - s.small() * 16.0;
                }
                ui.horizontal(|ui| controls(ui, &bar, &mut request));
                if let (Some((texture, marks)), Some(w)) = (bar.strip, width) {
                    let (rect, second) =
                        timeline_strip::draw(ui, texture, marks, w, s.small() * 3.0);
                    strip_rect = Some(rect);
                    if let Some(second) = second {
                        request = Some(ReviewRequest::SeekSecond(second));
                    }
                }
                if let Some(line) = &bar.line {
                    label(
                        ui,
                        RichText::new(line)
                            .size(s.small())
                            .color(Color32::from_gray(220)),
                    );
                }
            });
        });
    (request, strip_rect)
}

/// Play/pause, step and the frame slider.
fn controls(ui: &mut egui::Ui, bar: &ReviewBar<'_>, request: &mut Option<ReviewRequest>) {
    let label = if bar.paused { "Play (P)" } else { "Pause (P)" };
    if ui.button(label).clicked() {
        *request = Some(ReviewRequest::Pause(!bar.paused));
    }
    if ui.button("Step (->)").clicked() {
        *request = Some(ReviewRequest::Step);
    }
    let mut pos = bar.current;
    if bar.total > 0 {
        let slider = egui::Slider::new(&mut pos, 0..=bar.total.saturating_sub(1)).text("frame");
        if ui.add(slider).drag_stopped() || pos.abs_diff(bar.current) > 1 {
            *request = Some(ReviewRequest::Seek(pos));
        }
    } else {
        ui.label(format!("frame {}", bar.current));
    }
}
