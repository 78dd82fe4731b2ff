//! Segmentation masks tied to the frame they were computed from.

use crate::frame::FrameId;

/// A class-index mask with per-pixel confidence, stamped with its source frame.
///
/// The stamp is what lets the display refuse to draw a stale mask (safety rule 2):
/// age is always measured from the *source frame's* capture time, never from when
/// inference finished.
#[derive(Clone, Debug)]
pub struct Mask {
    /// Id of the frame this mask was computed from.
    pub source_frame_id: FrameId,
    /// Presentation time of that frame, microseconds.
    pub source_pts_us: i64,
    /// Capture time of that frame on [`crate::clock_us`]'s clock.
    pub source_captured_at_us: u64,
    /// Mask width in pixels (the model's output size, not necessarily the frame's).
    pub width: u32,
    /// Mask height in pixels.
    pub height: u32,
    /// Class index per pixel, row-major.
    pub classes: Vec<u8>,
    /// Softmax probability of the chosen class, scaled to 0..=255.
    pub confidence: Vec<u8>,
    /// Time spent producing the mask, milliseconds (pre + inference + post).
    pub infer_ms: f32,
}

impl Mask {
    /// Age of the mask relative to `now_us` on the same clock, in milliseconds.
    pub fn age_ms(&self, now_us: u64) -> f64 {
        now_us.saturating_sub(self.source_captured_at_us) as f64 / 1000.0
    }

    /// Class index at mask pixel (x, y).
    pub fn class_at(&self, x: u32, y: u32) -> u8 {
        self.classes[y as usize * self.width as usize + x as usize]
    }

    /// Mean confidence (0 to 1) over the pixels the overlay draws (class 0 is never
    /// drawn); `None` when there are none.
    pub fn drawn_confidence(&self) -> Option<f64> {
        let (sum, n) = self
            .classes
            .iter()
            .zip(&self.confidence)
            .filter(|&(&c, _)| c != 0)
            .fold((0u64, 0u64), |(s, n), (_, &p)| (s + u64::from(p), n + 1));
        (n > 0).then(|| sum as f64 / n as f64 / 255.0)
    }

    /// Fraction of pixels carrying each class index `0..n_classes`.
    pub fn coverage(&self, n_classes: usize) -> Vec<f64> {
        let mut counts = vec![0usize; n_classes];
        for &c in &self.classes {
            if let Some(slot) = counts.get_mut(c as usize) {
                *slot += 1;
            }
        }
        let total = self.classes.len().max(1) as f64;
        counts.into_iter().map(|c| c as f64 / total).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(classes: Vec<u8>) -> Mask {
        Mask {
            source_frame_id: 7,
            source_pts_us: 0,
            source_captured_at_us: 1_000,
            width: 2,
            height: 2,
            confidence: vec![255; classes.len()],
            classes,
            infer_ms: 0.0,
        }
    }

    #[test]
    fn drawn_confidence_leaves_the_background_out() {
        let mut m = mask(vec![0, 1, 1, 3]);
        m.confidence = vec![10, 255, 51, 102];
        let c = m.drawn_confidence().expect("drawn pixels");
        assert!(
            (c - (255.0 + 51.0 + 102.0) / 3.0 / 255.0).abs() < 1e-12,
            "{c}"
        );
        assert_eq!(mask(vec![0, 0, 0, 0]).drawn_confidence(), None);
    }

    #[test]
    fn age_counts_from_source_capture() {
        let m = mask(vec![0, 1, 1, 3]);
        assert_eq!(m.age_ms(51_000), 50.0);
        assert_eq!(
            m.age_ms(0),
            0.0,
            "a clock before the capture reads as age 0"
        );
    }

    #[test]
    fn coverage_and_lookup() {
        let m = mask(vec![0, 1, 1, 3]);
        assert_eq!(m.class_at(1, 1), 3);
        assert_eq!(m.coverage(4), vec![0.25, 0.5, 0.0, 0.25]);
    }
}
