//! Sizes from the window's height, so that text read from across the room keeps its
//! share of the screen at 720p, 1080p and 4K alike (fixed pixel sizes shrink to half
//! at 4K). Fractions are of the screen height; egui's fonts have a capital height of
//! about 0.70 of their size (measured in the window tests).

use eframe::egui;

/// Font sizes and margins for the current window, in points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UiScale {
    /// Screen height, points.
    pub height_pt: f32,
}

impl UiScale {
    /// The scale of `ctx`'s window.
    pub fn of(ctx: &egui::Context) -> Self {
        Self {
            height_pt: ctx.content_rect().height().max(120.0),
        }
    }

    fn frac(&self, f: f32, min_pt: f32) -> f32 {
        (self.height_pt * f).max(min_pt)
    }

    /// The badge's title: capitals of at least 2.2 % of the height (size x 0.70).
    pub fn badge(&self) -> f32 {
        self.frac(0.036, 14.0)
    }

    /// The badge's detail, the legend, toasts, notes and the REC badge: capitals of
    /// about 18 px at 1080p.
    pub fn text(&self) -> f32 {
        self.frac(0.027, 11.0)
    }

    /// NO SIGNAL at the centre.
    pub fn no_signal(&self) -> f32 {
        self.frac(0.07, 24.0)
    }

    /// Small print: the model line, the HUD.
    pub fn small(&self) -> f32 {
        self.frac(0.017, 9.0)
    }

    /// Outer margin and panel padding.
    pub fn margin(&self) -> f32 {
        self.frac(0.01, 4.0)
    }

    /// The coloured frame around the video in a fault state.
    pub fn frame_px(&self) -> f32 {
        self.frac(0.008, 3.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_height() {
        let hd = UiScale { height_pt: 1080.0 };
        let uhd = UiScale { height_pt: 2160.0 };
        assert!((uhd.badge() / hd.badge() - 2.0).abs() < 1e-6);
        assert!(hd.badge() * 0.70 >= 0.022 * 1080.0);
        assert!(hd.text() * 0.70 >= 18.0);
        // A tiny window still gets readable text.
        assert_eq!(UiScale { height_pt: 120.0 }.text(), 11.0);
    }
}
