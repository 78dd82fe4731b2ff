//! The `?` key card and the settings view: the one place where a change is meant to
//! last and is saved for every later case (key presses change only this case).

use eframe::egui::{self, Align2, Color32, RichText};
use foramen_core::ClassSet;
use foramen_core::config::{DisplayConfig, OverlayConfig, OverlayMode};

use crate::keys::{ACTIONS, Action, Keymap};
use crate::panels::panel;
use crate::scale::UiScale;

/// The key card at the centre: every action with its keys. True when it asks to close.
pub fn key_card(
    ctx: &egui::Context,
    s: UiScale,
    keys: &Keymap,
    classes: &ClassSet,
    live: bool,
) -> bool {
    let mut close = false;
    egui::Area::new(egui::Id::unique("keys"))
        .anchor(Align2::CENTER_CENTER, [0.0, 0.0])
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            panel(s, 235).show(ui, |ui| {
                let size = s.small() * 1.15;
                ui.label(
                    RichText::new("KEYS")
                        .size(s.text())
                        .strong()
                        .color(Color32::WHITE),
                );
                egui::Grid::new("keys-grid")
                    .spacing([s.margin() * 2.0, s.margin() * 0.3])
                    .show(ui, |ui| {
                        for (_, action, what) in ACTIONS {
                            let review_only = what.starts_with("review:");
                            let bound = keys.keys_of(*action);
                            // Classes the model has, by name; none for the others.
                            let what = match action {
                                Action::ToggleClass(i) => match classes.classes.get(*i) {
                                    Some(c) => format!("show / hide {}", c.name),
                                    None => continue,
                                },
                                _ => what.to_string(),
                            };
                            if bound.is_empty() || (live && review_only) {
                                continue;
                            }
                            // Proportional: a monospace O reads as a zero.
                            let k = RichText::new(bound.join("   ")).size(size).strong();
                            ui.label(k.color(Color32::from_rgb(240, 200, 90)));
                            ui.label(RichText::new(what).size(size).color(Color32::WHITE));
                            ui.end_row();
                        }
                    });
                ui.label(
                    RichText::new("Tap a legend entry to show or hide its class.")
                        .size(size)
                        .color(Color32::from_gray(200)),
                );
                if ui.button(RichText::new("close").size(size)).clicked() {
                    close = true;
                }
            });
        });
    close
}

/// The settings being edited, until saved or closed.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingsDraft {
    /// `[overlay]` as edited.
    pub overlay: OverlayConfig,
    /// `[display]` as edited.
    pub display: DisplayConfig,
}

/// What the settings view asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum SettingsRequest {
    /// Save the draft for every case (and use it now).
    Save,
    /// Close without saving.
    Close,
}

/// The settings view: the defaults every case starts with.
pub fn settings_view(
    ctx: &egui::Context,
    s: UiScale,
    draft: &mut SettingsDraft,
    classes: &ClassSet,
    can_save: bool,
) -> Option<SettingsRequest> {
    let mut request = None;
    egui::Area::new(egui::Id::unique("settings"))
        .anchor(Align2::CENTER_CENTER, [0.0, 0.0])
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            panel(s, 240).show(ui, |ui| {
                let size = s.small() * 1.15;
                for style in [egui::TextStyle::Body, egui::TextStyle::Button] {
                    ui.style_mut()
                        .text_styles
                        .insert(style, egui::FontId::proportional(size));
                }
                ui.label(
                    RichText::new("SETTINGS FOR EVERY CASE")
                        .size(s.text())
                        .strong()
                        .color(Color32::WHITE),
                );
                fields(ui, draft, classes);
                ui.horizontal(|ui| {
                    let save = ui.add_enabled(can_save, egui::Button::new("save for every case"));
                    if save.clicked() {
                        request = Some(SettingsRequest::Save);
                    }
                    if ui.button("close").clicked() {
                        request = Some(SettingsRequest::Close);
                    }
                });
                if !can_save {
                    ui.label("no settings file (--config): changes last for this case only");
                }
            });
        });
    request
}

fn fields(ui: &mut egui::Ui, d: &mut SettingsDraft, classes: &ClassSet) {
    let o = &mut d.overlay;
    ui.add(egui::Slider::new(&mut o.opacity, 0.0..=1.0).text("fill opacity"));
    ui.add(egui::Slider::new(&mut o.contour_px, 1..=12).text("outline width (px at 1080p)"));
    ui.horizontal(|ui| {
        ui.radio_value(&mut o.mode, OverlayMode::Both, "outline + fill");
        ui.radio_value(&mut o.mode, OverlayMode::Contour, "outline");
        ui.radio_value(&mut o.mode, OverlayMode::Fill, "fill");
    });
    ui.horizontal(|ui| {
        for c in classes.classes.iter().skip(1) {
            let mut shown = !o.hidden_classes.contains(&c.name);
            if ui.checkbox(&mut shown, &c.name).changed() {
                o.hidden_classes.retain(|h| h != &c.name);
                if !shown {
                    o.hidden_classes.push(c.name.clone());
                }
            }
        }
    });
    ui.checkbox(&mut d.display.legend, "legend");
    ui.checkbox(&mut d.display.hud, "engineering HUD");
}

impl SettingsDraft {
    /// The `(section, key)` pairs that differ from `overlay` and `display`: what a save
    /// writes, and nothing else.
    pub fn changed(
        &self,
        overlay: &OverlayConfig,
        display: &DisplayConfig,
    ) -> Vec<(&'static str, &'static str)> {
        let (a, b) = (&self.overlay, overlay);
        let mut out = vec![];
        if a.opacity != b.opacity {
            out.push(("overlay", "opacity"));
        }
        if a.contour_px != b.contour_px {
            out.push(("overlay", "contour_px"));
        }
        if a.mode != b.mode {
            out.push(("overlay", "mode"));
        }
        if a.hidden_classes != b.hidden_classes {
            out.push(("overlay", "hidden_classes"));
        }
        if self.display.legend != display.legend {
            out.push(("display", "legend"));
        }
        if self.display.hud != display.hud {
            out.push(("display", "hud"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_edited_is_saved() {
        let (o, d) = (OverlayConfig::default(), DisplayConfig::default());
        let mut draft = SettingsDraft {
            overlay: o.clone(),
            display: d.clone(),
        };
        assert!(draft.changed(&o, &d).is_empty());
        draft.overlay.opacity = 0.3;
        draft.display.hud = true;
        assert_eq!(
            draft.changed(&o, &d),
            [("overlay", "opacity"), ("display", "hud")]
        );
    }
}
