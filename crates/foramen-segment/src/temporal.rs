//! A steadier, honest overlay: an exponential moving average of the per-class
//! probabilities, in the mask's own pixel grid, with hysteresis on class switches and a
//! minimum confidence below which a pixel is not drawn.
//!
//! Frame by frame, a network's argmax flickers where two classes are close: the border
//! between tissues jumps, a patch of one class blinks inside another. The filter keeps a
//! running average `avg = alpha * avg + (1 - alpha) * p` of the probabilities `p` of
//! each new mask, and a shown class per pixel that changes only when another class's
//! average beats the shown one's by `hysteresis`. The average restarts (the new mask is
//! taken as it is) whenever the history belongs to another picture: the first frame, a
//! frame id that goes back (seek, restarted stream) or jumps ahead by more than
//! [`TemporalFilter::MAX_FRAME_GAP`], capture times more than
//! [`TemporalFilter::MAX_PAUSE_US`] apart (pause, reconnection), another mask size, a
//! scene cut or large motion (the mean change of the probabilities against the average
//! above `scene_cut_threshold`), or [`TemporalFilter::reset`] (model reloaded, new
//! sequence).
//!
//! Confidence: a pixel whose largest averaged probability is below `min_confidence` gets
//! class 0, which the overlay never draws (the window and `foramen-overlay` do not read
//! `Mask::confidence`), so an unsure region is left as plain video rather than painted
//! as if it were known. The mask's confidence stays the averaged probability of the
//! class the pixel shows (of the most likely class where it shows 0).

use foramen_core::FrameId;
use foramen_core::config::InferenceConfig;

/// Errors of the filter's settings or of the probabilities handed to it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemporalError {
    /// A setting outside its range; names the `[inference]` key.
    #[error("[inference] {key} = {value} is out of range ({range})")]
    OutOfRange {
        /// The config key.
        key: &'static str,
        /// The value given.
        value: f32,
        /// The allowed range, in words.
        range: &'static str,
    },
    /// The probability planes or the output buffers do not have the size stated.
    #[error(
        "temporal filter: {got} probabilities and {out} output pixels for {classes} classes of {width}x{height}"
    )]
    Shape {
        /// Probability values handed in.
        got: usize,
        /// Output pixels handed in (the shorter of classes and confidence).
        out: usize,
        /// Classes stated.
        classes: usize,
        /// Width stated.
        width: usize,
        /// Height stated.
        height: usize,
    },
}

/// The filter's settings (`[inference]` keys `temporal_alpha`, `temporal_hysteresis`,
/// `min_confidence`, `scene_cut_threshold`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TemporalSettings {
    /// Weight of the past in the average, per mask (0 = no averaging, below 1).
    pub alpha: f32,
    /// How much more averaged probability another class needs to replace the shown one.
    pub hysteresis: f32,
    /// Per-pixel motion gate: the past's weight and the hysteresis margin fall linearly
    /// with a pixel's change (half the L1 distance between its new probabilities and its
    /// average), to 0 at this change; 0 turns the gate off.
    pub motion: f32,
    /// Pixels whose largest averaged probability is below this show class 0 (not drawn).
    pub min_confidence: f32,
    /// Mean change of the probabilities against the average (half the L1 distance per
    /// pixel, averaged: 0 same, 1 every pixel changed class with certainty) above which
    /// the average restarts. 1 never restarts on content.
    pub scene_cut_threshold: f32,
}

impl TemporalSettings {
    /// No filtering: the plain per-frame argmax.
    pub const OFF: Self = Self {
        alpha: 0.0,
        hysteresis: 0.0,
        motion: 0.0,
        min_confidence: 0.0,
        scene_cut_threshold: 1.0,
    };

    /// Checked settings; an error names the `[inference]` key out of range.
    pub fn new(
        alpha: f32,
        hysteresis: f32,
        motion: f32,
        min_confidence: f32,
        scene_cut_threshold: f32,
    ) -> Result<Self, TemporalError> {
        let check = |key, value: f32, ok: bool, range| {
            if ok && value.is_finite() {
                Ok(value)
            } else {
                Err(TemporalError::OutOfRange { key, value, range })
            }
        };
        Ok(Self {
            alpha: check(
                "temporal_alpha",
                alpha,
                (0.0..1.0).contains(&alpha),
                "0 <= alpha < 1",
            )?,
            hysteresis: check(
                "temporal_hysteresis",
                hysteresis,
                (0.0..=1.0).contains(&hysteresis),
                "0 to 1",
            )?,
            motion: check(
                "temporal_motion",
                motion,
                (0.0..=1.0).contains(&motion),
                "0 to 1",
            )?,
            min_confidence: check(
                "min_confidence",
                min_confidence,
                (0.0..=1.0).contains(&min_confidence),
                "0 to 1",
            )?,
            scene_cut_threshold: check(
                "scene_cut_threshold",
                scene_cut_threshold,
                scene_cut_threshold > 0.0 && scene_cut_threshold <= 1.0,
                "0 < threshold <= 1",
            )?,
        })
    }

    /// The settings of a config's `[inference]` section.
    pub fn from_config(cfg: &InferenceConfig) -> Result<Self, TemporalError> {
        Self::new(
            cfg.temporal_alpha,
            cfg.temporal_hysteresis,
            cfg.temporal_motion,
            cfg.min_confidence,
            cfg.scene_cut_threshold,
        )
    }

    /// True when the filter would give back the plain argmax (nothing to do).
    pub fn is_off(&self) -> bool {
        self.alpha == 0.0 && self.hysteresis == 0.0 && self.min_confidence == 0.0
    }

    /// One line for reports and logs, with the config keys.
    pub fn describe(&self) -> String {
        format!(
            "temporal_alpha {}, temporal_hysteresis {}, temporal_motion {}, min_confidence {}, scene_cut_threshold {}",
            self.alpha, self.hysteresis, self.motion, self.min_confidence, self.scene_cut_threshold
        )
    }
}

/// Why the average restarted at a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// No history yet.
    First,
    /// [`TemporalFilter::reset`] was called (model reloaded, new sequence).
    Requested,
    /// The mask's size or class count changed.
    SizeChanged,
    /// The frame id went back or stayed (seek, restarted stream).
    Backwards,
    /// The frame id jumped ahead by more than [`TemporalFilter::MAX_FRAME_GAP`].
    Gap,
    /// Capture times more than [`TemporalFilter::MAX_PAUSE_US`] apart.
    Pause,
    /// The probabilities changed by more than `scene_cut_threshold`.
    SceneCut,
}

/// What one frame did to the filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    /// Why the average restarted at this frame, if it did.
    pub reset: Option<ResetReason>,
    /// Mean change of the probabilities against the average (0 when there was none).
    pub change: f32,
}

/// Which frame a mask belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameStamp {
    /// The source frame's id (ids grow by one per captured frame).
    pub id: FrameId,
    /// The source frame's capture time in microseconds.
    pub at_us: u64,
}

/// The running filter; its buffers are kept from frame to frame (no allocation once warm).
#[derive(Clone, Debug)]
pub struct TemporalFilter {
    settings: TemporalSettings,
    /// (classes, width, height) of the history.
    shape: (usize, usize, usize),
    /// Averaged probabilities, planar (C, H, W).
    avg: Vec<f32>,
    /// The class each pixel shows before the confidence rule (the hysteresis state).
    shown: Vec<u8>,
    /// Per pixel: its change against the average, then its motion gate (1 still, 0 moved).
    gate: Vec<f32>,
    last: Option<FrameStamp>,
    reset_asked: bool,
}

impl TemporalFilter {
    /// A frame id further ahead of the last one than this starts afresh (a seek ahead);
    /// smaller gaps are frames the live worker skipped while busy.
    pub const MAX_FRAME_GAP: u64 = 30;
    /// Capture times further apart than this start afresh (a pause, a reconnection).
    pub const MAX_PAUSE_US: u64 = 300_000;

    /// A filter with no history.
    pub fn new(settings: TemporalSettings) -> Self {
        Self {
            settings,
            shape: (0, 0, 0),
            avg: Vec::new(),
            shown: Vec::new(),
            gate: Vec::new(),
            last: None,
            reset_asked: false,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> TemporalSettings {
        self.settings
    }

    /// Forgets the history: the next frame is taken as it is (model reloaded, stream
    /// reconnected, a new sequence).
    pub fn reset(&mut self) {
        self.reset_asked = true;
    }

    /// The averaged probabilities after the last frame, planar (C, H, W).
    pub fn averaged(&self) -> &[f32] {
        &self.avg
    }

    /// Filters one frame's probabilities `probs` (planar (C, H, W), `classes` x `size`)
    /// into the class and confidence (0..255) of each pixel.
    pub fn apply(
        &mut self,
        stamp: FrameStamp,
        probs: &[f32],
        classes: usize,
        size: (usize, usize),
        class_out: &mut [u8],
        conf_out: &mut [u8],
    ) -> Result<StepInfo, TemporalError> {
        let n = size.0 * size.1;
        let out = class_out.len().min(conf_out.len());
        if classes == 0 || classes > 256 || probs.len() != classes * n || out != n {
            return Err(TemporalError::Shape {
                got: probs.len(),
                out,
                classes,
                width: size.0,
                height: size.1,
            });
        }
        let shape = (classes, size.0, size.1);
        let mut reset = self.reset_reason(stamp, shape);
        let mut change = 0.0;
        if reset.is_none() {
            change = self.measure_change(probs);
            if change > self.settings.scene_cut_threshold {
                reset = Some(ResetReason::SceneCut);
            }
        }
        if reset.is_some() {
            self.avg.clear();
            self.avg.extend_from_slice(probs);
            self.shown.resize(n, 0);
            self.gate.clear();
            self.gate.resize(n, 0.0);
            self.shape = shape;
        } else {
            self.blend(probs);
        }
        self.decide(reset.is_some(), class_out, conf_out);
        self.last = Some(stamp);
        self.reset_asked = false;
        Ok(StepInfo { reset, change })
    }

    /// Whether this frame starts afresh, and why.
    fn reset_reason(&self, stamp: FrameStamp, shape: (usize, usize, usize)) -> Option<ResetReason> {
        let Some(last) = self.last else {
            return Some(ResetReason::First);
        };
        if self.reset_asked {
            Some(ResetReason::Requested)
        } else if shape != self.shape {
            Some(ResetReason::SizeChanged)
        } else if stamp.id <= last.id {
            Some(ResetReason::Backwards)
        } else if stamp.id - last.id > Self::MAX_FRAME_GAP {
            Some(ResetReason::Gap)
        } else if stamp.at_us.abs_diff(last.at_us) > Self::MAX_PAUSE_US {
            Some(ResetReason::Pause)
        } else {
            None
        }
    }

    /// Each pixel's change (half the L1 distance of its probabilities to the average)
    /// into `gate`; returns their mean.
    fn measure_change(&mut self, probs: &[f32]) -> f32 {
        let (classes, n) = (self.shape.0, self.shown.len());
        self.gate.resize(n, 0.0);
        let mut sum = 0.0f64;
        for (i, d) in self.gate.iter_mut().enumerate() {
            let l1: f32 = (0..classes)
                .map(|c| (probs[c * n + i] - self.avg[c * n + i]).abs())
                .sum();
            *d = 0.5 * l1;
            sum += f64::from(*d);
        }
        (sum / n.max(1) as f64) as f32
    }

    /// Turns each pixel's change into its motion gate and blends its probabilities into
    /// the average with the gated weight of the past.
    fn blend(&mut self, probs: &[f32]) {
        let (classes, n) = (self.shape.0, self.shown.len());
        let TemporalSettings { alpha, motion, .. } = self.settings;
        for (i, g) in self.gate.iter_mut().enumerate() {
            *g = if motion > 0.0 {
                (1.0 - *g / motion).max(0.0)
            } else {
                1.0
            };
            let w = alpha * *g;
            for c in 0..classes {
                let v = &mut self.avg[c * n + i];
                *v = w * *v + (1.0 - w) * probs[c * n + i];
            }
        }
    }

    /// Per pixel: the shown class (hysteresis; the argmax when `fresh`), then the
    /// confidence rule, into the outputs.
    fn decide(&mut self, fresh: bool, class_out: &mut [u8], conf_out: &mut [u8]) {
        let (classes, n) = (self.shape.0, self.shown.len());
        let TemporalSettings {
            hysteresis,
            min_confidence,
            ..
        } = self.settings;
        let (avg, gate) = (&self.avg, &self.gate);
        for (i, ((shown, c_out), p_out)) in self
            .shown
            .iter_mut()
            .zip(class_out.iter_mut())
            .zip(conf_out.iter_mut())
            .enumerate()
        {
            let margin = hysteresis * gate[i];
            let (mut best, mut best_v) = (0usize, f32::NEG_INFINITY);
            for c in 0..classes {
                let v = avg[c * n + i];
                if v > best_v {
                    best_v = v;
                    best = c;
                }
            }
            let current = *shown as usize;
            if fresh || current >= classes || best_v > avg[current * n + i] + margin {
                *shown = best as u8;
            }
            let shown_p = avg[*shown as usize * n + i];
            let (class, p) = if best_v < min_confidence {
                (0, best_v)
            } else {
                (*shown, shown_p)
            };
            *c_out = class;
            *p_out = (p.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        }
    }
}

/// The filter over a list of stills in order (`foramen eval --temporal`): consecutive
/// entries are taken as consecutive frames, and the average restarts whenever an entry
/// comes from another sequence (another folder) or has another size. It counts the
/// sequences and the scene cuts, for the report.
#[derive(Clone, Debug)]
pub struct ListFilter {
    filter: TemporalFilter,
    sequence: Option<std::path::PathBuf>,
    next_id: FrameId,
    sequences: u64,
    scene_cuts: u64,
}

impl ListFilter {
    /// A filter with no history.
    pub fn new(settings: TemporalSettings) -> Self {
        Self {
            filter: TemporalFilter::new(settings),
            sequence: None,
            next_id: 0,
            sequences: 0,
            scene_cuts: 0,
        }
    }

    /// Filters the next entry, from folder `sequence`: as [`TemporalFilter::apply`].
    pub fn apply(
        &mut self,
        sequence: &std::path::Path,
        probs: &[f32],
        classes: usize,
        size: (usize, usize),
        class_out: &mut [u8],
        conf_out: &mut [u8],
    ) -> Result<StepInfo, TemporalError> {
        if self.sequence.as_deref() != Some(sequence) {
            self.filter.reset();
            self.sequence = Some(sequence.to_path_buf());
            self.sequences += 1;
        }
        let stamp = FrameStamp {
            id: self.next_id,
            at_us: 0,
        };
        self.next_id += 1;
        let info = self
            .filter
            .apply(stamp, probs, classes, size, class_out, conf_out)?;
        self.scene_cuts += u64::from(info.reset == Some(ResetReason::SceneCut));
        Ok(info)
    }

    /// The averaged probabilities after the last entry, planar (C, H, W).
    pub fn averaged(&self) -> &[f32] {
        self.filter.averaged()
    }

    /// Filters the list entry of picture `image` (its folder is its sequence): `probs`
    /// (C, H, W) of `size` (w, h) in, its filtered classes (written over `classes`) and
    /// averaged probabilities out.
    pub fn entry(
        &mut self,
        image: &std::path::Path,
        probs: &[f32],
        size: (u32, u32),
        mut classes: Vec<u8>,
    ) -> Result<(Vec<u8>, Option<Vec<f32>>), TemporalError> {
        let size = (size.0 as usize, size.1 as usize);
        let mut conf = vec![0u8; classes.len()];
        let folder = image.parent().unwrap_or(std::path::Path::new(""));
        let c = probs.len() / (size.0 * size.1).max(1);
        self.apply(folder, probs, c, size, &mut classes, &mut conf)?;
        Ok((classes, Some(self.averaged().to_vec())))
    }

    /// The settings, the sequences seen and the scene cuts, for `metrics.json`.
    pub fn to_json(&self) -> serde_json::Value {
        let s = self.filter.settings();
        // As written in the config (0.3, not f32's 0.30000001).
        let v = |x: f32| (f64::from(x) * 1e6).round() / 1e6;
        serde_json::json!({
            "temporal_alpha": v(s.alpha),
            "temporal_hysteresis": v(s.hysteresis),
            "temporal_motion": v(s.motion),
            "min_confidence": v(s.min_confidence),
            "scene_cut_threshold": v(s.scene_cut_threshold),
            "sequences": self.sequences,
            "scene_cuts": self.scene_cuts,
        })
    }

    /// One line for `report.md`.
    pub fn describe(&self) -> String {
        format!(
            "Temporal filter on (`--temporal`): {}; the average restarted at {} sequence starts and {} scene cuts.",
            self.filter.settings().describe(),
            self.sequences,
            self.scene_cuts
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepost::argmax_confidence;

    fn settings(alpha: f32, hysteresis: f32, min_confidence: f32) -> TemporalSettings {
        TemporalSettings::new(alpha, hysteresis, 0.0, min_confidence, 1.0).expect("valid")
    }

    fn at(id: u64) -> FrameStamp {
        FrameStamp {
            id,
            at_us: id * 33_333,
        }
    }

    /// Two classes, one pixel per (class 0, class 1) pair: planar probabilities.
    fn planes(pixels: &[(f32, f32)]) -> Vec<f32> {
        let mut p: Vec<f32> = pixels.iter().map(|x| x.0).collect();
        p.extend(pixels.iter().map(|x| x.1));
        p
    }

    /// Runs one frame of 2 classes and returns the classes shown and the step.
    fn step(f: &mut TemporalFilter, id: u64, pixels: &[(f32, f32)]) -> (Vec<u8>, StepInfo) {
        step_at(f, at(id), pixels)
    }

    fn step_at(f: &mut TemporalFilter, s: FrameStamp, px: &[(f32, f32)]) -> (Vec<u8>, StepInfo) {
        let (mut c, mut p) = (vec![9; px.len()], vec![0; px.len()]);
        let info = f
            .apply(s, &planes(px), 2, (px.len(), 1), &mut c, &mut p)
            .expect("apply");
        (c, info)
    }

    #[test]
    fn off_is_the_plain_argmax_and_steady_input_is_unchanged() {
        let (w, h, classes) = (13, 7, 4);
        let n = w * h;
        // Deterministic pseudo-random probabilities, normalised per pixel.
        let mut raw: Vec<f32> = (0..classes * n)
            .map(|i| ((i * 7919 + 13) % 101) as f32 + 1.0)
            .collect();
        for i in 0..n {
            let s: f32 = (0..classes).map(|c| raw[c * n + i]).sum();
            (0..classes).for_each(|c| raw[c * n + i] /= s);
        }
        let (mut want_c, mut want_p) = (vec![0; n], vec![0; n]);
        argmax_confidence(&raw, classes, false, &mut want_c, &mut want_p);
        for s in [TemporalSettings::OFF, settings(0.7, 0.1, 0.0)] {
            let mut f = TemporalFilter::new(s);
            for id in 0..20 {
                let (mut c, mut p) = (vec![0; n], vec![0; n]);
                f.apply(at(id), &raw, classes, (w, h), &mut c, &mut p)
                    .expect("apply");
                assert_eq!((&c, &p), (&want_c, &want_p), "{s:?} frame {id}");
            }
        }
    }

    #[test]
    fn a_single_frame_flicker_is_suppressed_and_shown_without_the_filter() {
        let steady = [(0.2, 0.8), (0.9, 0.1)];
        let flicker = [(0.7, 0.3), (0.9, 0.1)];
        let mut plain = TemporalFilter::new(TemporalSettings::OFF);
        let mut smooth = TemporalFilter::new(settings(0.6, 0.1, 0.0));
        for id in 0..5 {
            assert_eq!(step(&mut plain, id, &steady).0, [1, 0]);
            assert_eq!(step(&mut smooth, id, &steady).0, [1, 0]);
        }
        assert_eq!(
            step(&mut plain, 5, &flicker).0,
            [0, 0],
            "the raw argmax flips"
        );
        assert_eq!(step(&mut smooth, 5, &flicker).0, [1, 0], "the filter holds");
        assert_eq!(step(&mut smooth, 6, &steady).0, [1, 0]);
    }

    #[test]
    fn a_real_change_is_adopted_after_a_few_frames_and_kept() {
        // alpha 0.6, margin 0.1: after k frames of (0.9, 0.1) the average is
        // (0.9 - 0.7 * 0.6^k, 0.1 + 0.7 * 0.6^k): class 0 leads by more than 0.1 from k = 2.
        let mut f = TemporalFilter::new(settings(0.6, 0.1, 0.0));
        for id in 0..5 {
            assert_eq!(step(&mut f, id, &[(0.2, 0.8)]).0, [1]);
        }
        assert_eq!(
            step(&mut f, 5, &[(0.9, 0.1)]).0,
            [1],
            "one frame is not enough"
        );
        for id in 6..12 {
            assert_eq!(step(&mut f, id, &[(0.9, 0.1)]).0, [0], "frame {id}");
        }
    }

    #[test]
    fn the_motion_gate_follows_confident_changes_at_once_and_smooths_the_uncertain() {
        // Pixel 0 moves with certainty (change 0.8), pixel 1 flickers (change 0.2).
        let before = [(0.1, 0.9), (0.4, 0.6)];
        let after = [(0.9, 0.1), (0.6, 0.4)];
        for (motion, want) in [(0.0, [1u8, 1]), (0.5, [0, 1])] {
            let s = TemporalSettings::new(0.8, 0.1, motion, 0.0, 1.0).expect("valid");
            let mut f = TemporalFilter::new(s);
            for id in 0..5 {
                assert_eq!(step(&mut f, id, &before).0, [1, 1]);
            }
            assert_eq!(step(&mut f, 5, &after).0, want, "motion {motion}");
            // Gate 0 for pixel 0 with 0.5: its average is the new frame exactly.
            if motion > 0.0 {
                assert!((f.averaged()[0] - 0.9).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn hysteresis_keeps_the_shown_class_until_another_leads_by_the_margin() {
        for (margin, want) in [(0.0, 1u8), (0.2, 0)] {
            let mut f = TemporalFilter::new(settings(0.0, margin, 0.0));
            assert_eq!(step(&mut f, 0, &[(0.6, 0.4)]).0, [0]);
            for id in 1..10 {
                assert_eq!(
                    step(&mut f, id, &[(0.45, 0.55)]).0,
                    [want],
                    "margin {margin}"
                );
            }
            assert_eq!(step(&mut f, 10, &[(0.35, 0.65)]).0, [1], "margin {margin}");
            // And back only past the margin again.
            assert_eq!(step(&mut f, 11, &[(0.55, 0.45)]).0, [1 - want]);
        }
    }

    #[test]
    fn seeks_gaps_pauses_scene_cuts_and_requests_start_afresh() {
        let old = [(0.1, 0.9); 4];
        let new = [(0.9, 0.1), (0.9, 0.1), (0.1, 0.9), (0.1, 0.9)];
        let fresh = vec![0, 0, 1, 1];
        type Jump = fn(&mut TemporalFilter) -> FrameStamp;
        let cases: [(Jump, ResetReason); 5] = [
            (|_| at(3), ResetReason::Backwards),
            (
                |_| at(9 + TemporalFilter::MAX_FRAME_GAP + 1),
                ResetReason::Gap,
            ),
            (
                |_| FrameStamp {
                    id: 10,
                    at_us: 9 * 33_333 + TemporalFilter::MAX_PAUSE_US + 1,
                },
                ResetReason::Pause,
            ),
            (
                |f| {
                    f.reset();
                    at(10)
                },
                ResetReason::Requested,
            ),
            (|_| at(10), ResetReason::SceneCut),
        ];
        for (jump, why) in cases {
            let s = TemporalSettings::new(0.9, 0.3, 0.0, 0.0, 0.3).expect("valid");
            let mut f = TemporalFilter::new(s);
            assert_eq!(step(&mut f, 0, &old).1.reset, Some(ResetReason::First));
            for id in 1..10 {
                let (c, info) = step(&mut f, id, &old);
                assert_eq!((c, info.reset), (vec![1; 4], None));
            }
            let s = jump(&mut f);
            let (c, info) = step_at(&mut f, s, &new);
            assert_eq!((c, info.reset), (fresh.clone(), Some(why)));
            if why == ResetReason::SceneCut {
                assert!((info.change - 0.4).abs() < 1e-5, "{info:?}");
            }
        }
        // Below the threshold the same change is filtered, not a cut.
        let mut f =
            TemporalFilter::new(TemporalSettings::new(0.9, 0.3, 0.0, 0.0, 0.45).expect("ok"));
        step(&mut f, 0, &old);
        let (c, info) = step(&mut f, 1, &new);
        assert_eq!((c, info.reset), (vec![1; 4], None));
        // Another size starts afresh too.
        let (c, info) = step(&mut f, 2, &[(0.9, 0.1)]);
        assert_eq!((c, info.reset), (vec![0], Some(ResetReason::SizeChanged)));
    }

    #[test]
    fn unsure_pixels_show_class_zero_with_their_probability() {
        let mut f = TemporalFilter::new(settings(0.5, 0.0, 0.4));
        let p = [0.3, 0.1, 0.35, 0.2, 0.35, 0.7];
        let (mut c, mut conf) = ([9u8; 2], [0u8; 2]);
        f.apply(at(0), &p, 3, (2, 1), &mut c, &mut conf)
            .expect("apply");
        assert_eq!(c, [0, 2], "max 0.35 is under 0.4: not drawn");
        assert_eq!(
            conf,
            [(0.35f32 * 255.0 + 0.5) as u8, (0.7f32 * 255.0 + 0.5) as u8]
        );
        // Once sure again, the pixel shows its class.
        let p = [0.1, 0.1, 0.8, 0.2, 0.1, 0.7];
        f.apply(at(1), &p, 3, (2, 1), &mut c, &mut conf)
            .expect("apply");
        assert_eq!(
            c,
            [1, 2],
            "pixel 0 averages (0.2, 0.575, 0.225): class 1, drawn"
        );
    }

    #[test]
    fn a_list_restarts_at_each_new_folder_and_counts_scene_cuts() {
        let s = TemporalSettings::new(0.9, 0.0, 0.0, 0.0, 0.5).expect("valid");
        let mut f = ListFilter::new(s);
        let (a, b) = (planes(&[(0.1, 0.9)]), planes(&[(0.9, 0.1)]));
        let (mut c, mut p) = ([0u8], [0u8]);
        let mut run = |f: &mut ListFilter, dir: &str, probs: &[f32]| {
            let info = f.apply(std::path::Path::new(dir), probs, 2, (1, 1), &mut c, &mut p);
            (c[0], info.expect("apply").reset)
        };
        assert_eq!(run(&mut f, "s1", &a), (1, Some(ResetReason::First)));
        assert_eq!(run(&mut f, "s1", &a), (1, None));
        assert_eq!(run(&mut f, "s2", &a), (1, Some(ResetReason::Requested)));
        assert_eq!(run(&mut f, "s2", &b), (0, Some(ResetReason::SceneCut)));
        let json = f.to_json();
        assert_eq!(
            (json["sequences"].as_u64(), json["scene_cuts"].as_u64()),
            (Some(2), Some(1))
        );
        assert!((json["temporal_alpha"].as_f64().expect("alpha") - 0.9).abs() < 1e-6);
        assert!(
            f.describe().contains("temporal_alpha 0.9"),
            "{}",
            f.describe()
        );
        let (c, avg) = f
            .entry(std::path::Path::new("s3/a.png"), &b, (1, 1), vec![1])
            .expect("entry");
        assert_eq!(
            (c, avg),
            (vec![0], Some(b.clone())),
            "a new folder starts afresh"
        );
        assert_eq!(f.to_json()["sequences"].as_u64(), Some(3));
    }

    #[test]
    fn bad_settings_name_their_key_and_bad_shapes_are_errors() {
        let e = TemporalSettings::new(1.0, 0.1, 0.0, 0.3, 0.3).unwrap_err();
        assert!(e.to_string().contains("temporal_alpha = 1"), "{e}");
        let e = TemporalSettings::new(0.5, -0.1, 0.0, 0.3, 0.3).unwrap_err();
        assert!(e.to_string().contains("temporal_hysteresis"), "{e}");
        let e = TemporalSettings::new(0.5, 0.1, 0.0, f32::NAN, 0.3).unwrap_err();
        assert!(e.to_string().contains("min_confidence"), "{e}");
        let e = TemporalSettings::new(0.5, 0.1, 1.5, 0.3, 0.3).unwrap_err();
        assert!(e.to_string().contains("temporal_motion"), "{e}");
        let e = TemporalSettings::new(0.5, 0.1, 0.0, 0.3, 0.0).unwrap_err();
        assert!(e.to_string().contains("scene_cut_threshold"), "{e}");
        let mut f = TemporalFilter::new(TemporalSettings::OFF);
        let (mut c, mut p) = ([0u8; 3], [0u8; 3]);
        let e = f.apply(at(0), &[0.5; 5], 2, (3, 1), &mut c, &mut p);
        assert!(
            matches!(e, Err(TemporalError::Shape { got: 5, .. })),
            "{e:?}"
        );
    }
}
