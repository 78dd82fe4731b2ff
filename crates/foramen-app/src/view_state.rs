//! What the staff change during a case: overlay on/off, hidden classes, fill opacity,
//! mode, HUD, legend. It starts from the settings file and is never written back: the
//! next case starts from the settings again (lasting changes go through `settings`).

use std::collections::BTreeMap;

use foramen_core::ClassSet;
use foramen_core::config::{DisplayConfig, OverlayConfig, OverlayMode};

/// The highest fill opacity `+` reaches: above it the tissue's texture is lost.
pub const MAX_KEY_FILL: f32 = 0.6;

/// The per-case view.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewState {
    /// The overlay switch (Space).
    pub overlay_on: bool,
    /// Classes hidden for this case.
    pub hidden: Vec<String>,
    /// Fill opacity of classes without their own.
    pub opacity: f32,
    /// Per-class fill opacity.
    pub class_opacity: BTreeMap<String, f32>,
    /// Fill, contour or both.
    pub mode: OverlayMode,
    /// Engineering HUD.
    pub hud: bool,
    /// Legend.
    pub legend: bool,
}

impl ViewState {
    /// The view a case starts with.
    pub fn from_settings(overlay: &OverlayConfig, display: &DisplayConfig) -> Self {
        Self {
            overlay_on: true,
            hidden: overlay.hidden_classes.clone(),
            opacity: overlay.opacity,
            class_opacity: overlay.class_opacity.clone(),
            mode: overlay.mode,
            hud: display.hud,
            legend: display.legend,
        }
    }

    /// The overlay settings the compositor draws with: the file's, with this view's
    /// choices over them.
    pub fn overlay_config(&self, base: &OverlayConfig) -> OverlayConfig {
        OverlayConfig {
            opacity: self.opacity,
            mode: self.mode,
            hidden_classes: self.hidden.clone(),
            class_opacity: self.class_opacity.clone(),
            ..base.clone()
        }
    }

    /// Shows or hides class `name`; true when it is now shown.
    pub fn toggle_class(&mut self, name: &str) -> bool {
        if let Some(pos) = self.hidden.iter().position(|h| h == name) {
            self.hidden.remove(pos);
            true
        } else {
            self.hidden.push(name.to_string());
            false
        }
    }

    /// `+` (1) or `-` (-1): every fill opacity, the per-class ones too, by 10 points,
    /// between 0 and [`MAX_KEY_FILL`] (a value set higher in the file is not raised).
    pub fn step_opacity(&mut self, step: i8) {
        let f = |o: f32| {
            let next = ((o + 0.1 * f32::from(step)) * 10.0).round() / 10.0;
            if step > 0 {
                next.min(MAX_KEY_FILL.max(o)).max(0.0)
            } else {
                next.max(0.0)
            }
        };
        self.opacity = f(self.opacity);
        for o in self.class_opacity.values_mut() {
            *o = f(*o);
        }
    }

    /// The fill opacity class `name` is drawn with.
    pub fn fill_of(&self, name: &str) -> f32 {
        *self.class_opacity.get(name).unwrap_or(&self.opacity)
    }

    /// Whether class `name` leaves a mark on screen: shown, and outlined or filled.
    pub fn marks(&self, name: &str) -> bool {
        let outlined = matches!(self.mode, OverlayMode::Contour | OverlayMode::Both);
        !self.hidden.iter().any(|h| h == name) && (outlined || self.fill_of(name) > 0.0)
    }

    /// The classes (not the background) that leave a mark, in index order.
    pub fn drawn_classes(&self, classes: &ClassSet) -> Vec<String> {
        classes
            .classes
            .iter()
            .skip(1)
            .filter(|c| self.marks(&c.name))
            .map(|c| c.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ViewState {
        ViewState::from_settings(&OverlayConfig::default(), &DisplayConfig::default())
    }

    #[test]
    fn plus_is_capped_and_moves_per_class_opacities_too() {
        let mut v = view();
        v.class_opacity.insert("disc".into(), 0.5);
        v.class_opacity.insert("bone".into(), 0.9);
        for _ in 0..10 {
            v.step_opacity(1);
        }
        assert_eq!(v.opacity, MAX_KEY_FILL);
        assert_eq!(v.fill_of("disc"), MAX_KEY_FILL);
        // Set higher in the file: `+` does not raise it, `-` lowers it.
        assert_eq!(v.fill_of("bone"), 0.9);
        v.step_opacity(-1);
        assert_eq!((v.opacity, v.fill_of("disc")), (0.5, 0.5));
        assert!((v.fill_of("bone") - 0.8).abs() < 1e-6);
        for _ in 0..12 {
            v.step_opacity(-1);
        }
        assert_eq!(
            (v.opacity, v.fill_of("disc"), v.fill_of("bone")),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn drawn_classes_are_those_that_leave_a_mark() {
        let classes = ClassSet::lumbar();
        let mut v = view();
        assert_eq!(v.drawn_classes(&classes), ["bone", "ligament", "disc"]);
        v.toggle_class("ligament");
        assert_eq!(v.drawn_classes(&classes), ["bone", "disc"]);
        // Fill only at 0 %: nothing on screen from the classes without their own fill.
        v.mode = OverlayMode::Fill;
        v.opacity = 0.0;
        v.class_opacity.insert("disc".into(), 0.6);
        assert_eq!(v.drawn_classes(&classes), ["disc"]);
        assert!(v.toggle_class("ligament"));
        v.hidden = vec!["disc".into()];
        assert!(v.drawn_classes(&classes).is_empty());
    }

    #[test]
    fn the_compositor_gets_the_view_over_the_file() {
        let mut v = view();
        v.toggle_class("bone");
        v.mode = OverlayMode::Contour;
        let base = OverlayConfig {
            black_level: 20,
            ..OverlayConfig::default()
        };
        let c = v.overlay_config(&base);
        assert_eq!(c.hidden_classes, ["bone"]);
        assert_eq!((c.mode, c.black_level), (OverlayMode::Contour, 20));
    }
}
