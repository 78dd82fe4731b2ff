//! The legend at the bottom left: each class with its colour, tag, key and fill, a
//! touch target that shows or hides it; and the buttons a nurse without a keyboard
//! needs (keys, reset, settings). In colour only while masks are on screen.

use eframe::egui::{self, Align2, Color32, RichText, Sense};
use foramen_core::ClassSet;
use foramen_core::config::OverlayMode;

use crate::panels::panel;
use crate::scale::UiScale;
use crate::view_state::ViewState;

/// What a click on the legend asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegendRequest {
    /// Show or hide the class with this index.
    ToggleClass(usize),
    /// The key card.
    Help,
    /// Back to the case's starting view.
    Reset,
    /// The settings view.
    Settings,
}

/// Draws the legend; `live_colours` false greys it (nothing drawn, or a fault).
pub fn legend(
    ctx: &egui::Context,
    s: UiScale,
    classes: &ClassSet,
    view: &ViewState,
    live_colours: bool,
) -> Option<LegendRequest> {
    let mut request = None;
    egui::Area::new(egui::Id::unique("legend"))
        .anchor(Align2::LEFT_BOTTOM, [s.margin(), -s.margin()])
        .show(ctx, |ui| {
            panel(s, 200).show(ui, |ui| {
                ui.spacing_mut().item_spacing.y = s.margin() * 0.4;
                let tags = classes.tags();
                for (i, c) in classes.classes.iter().enumerate().skip(1) {
                    if entry(ui, s, c, &tags[i], i, view, live_colours) {
                        request = Some(LegendRequest::ToggleClass(i));
                    }
                }
                let mode = match view.mode {
                    OverlayMode::Fill => "fill",
                    OverlayMode::Contour => "outline",
                    OverlayMode::Both => "outline + fill",
                };
                let line = RichText::new(mode)
                    .color(Color32::from_gray(200))
                    .size(s.small());
                ui.label(line);
                ui.horizontal(|ui| {
                    // Touch targets a gloved finger can hit.
                    ui.spacing_mut().button_padding = egui::vec2(s.margin(), s.margin() * 0.5);
                    ui.style_mut().text_styles.insert(
                        egui::TextStyle::Button,
                        egui::FontId::proportional(s.text() * 0.8),
                    );
                    for (text, r) in [
                        ("? keys", LegendRequest::Help),
                        ("reset", LegendRequest::Reset),
                        ("settings", LegendRequest::Settings),
                    ] {
                        if ui.button(text).clicked() {
                            request = Some(r);
                        }
                    }
                });
            });
        });
    request
}

/// One class: swatch, tag, name, fill. True when clicked.
fn entry(
    ui: &mut egui::Ui,
    s: UiScale,
    c: &foramen_core::ClassInfo,
    tag: &str,
    index: usize,
    view: &ViewState,
    live_colours: bool,
) -> bool {
    let hidden = view.hidden.contains(&c.name);
    let [r, g, b] = c.color;
    let swatch = if live_colours && !hidden {
        Color32::from_rgb(r, g, b)
    } else {
        Color32::from_gray(110)
    };
    let tone = if hidden || !live_colours {
        Color32::from_gray(150)
    } else {
        Color32::WHITE
    };
    let fill = (view.fill_of(&c.name) * 100.0).round();
    let text = if hidden {
        format!("{index}  {tag}  {}  HIDDEN", c.name.to_uppercase())
    } else {
        format!("{index}  {tag}  {}  {fill:.0} %", c.name.to_uppercase())
    };
    let response = ui
        .horizontal(|ui| {
            let side = s.text() * 0.9;
            let (rect, _) = ui.allocate_exact_size(egui::vec2(side, side), Sense::hover());
            if hidden {
                let stroke = egui::Stroke::new(side * 0.15, swatch);
                ui.painter()
                    .rect_stroke(rect, 2.0, stroke, egui::StrokeKind::Inside);
            } else {
                ui.painter().rect_filled(rect, 2.0, swatch);
            }
            let label = egui::Label::new(RichText::new(text).color(tone).size(s.text()))
                .wrap_mode(egui::TextWrapMode::Extend)
                .sense(Sense::click());
            ui.add(label)
        })
        .inner;
    response.on_hover_text("click to show or hide").clicked()
}
