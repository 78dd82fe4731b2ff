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
            let (best, best_v) = crate::prepost::best_class(avg, classes, n, i);
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
/// comes from another sequence (named by the caller: a folder, a video) or has another
/// size. It counts the
/// sequences and the scene cuts, for the report.
#[derive(Clone, Debug)]
pub struct ListFilter {
    filter: TemporalFilter,
    sequence: Option<String>,
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

    /// Filters the next entry, of `sequence`: as [`TemporalFilter::apply`].
    pub fn apply(
        &mut self,
        sequence: &str,
        probs: &[f32],
        classes: usize,
        size: (usize, usize),
        class_out: &mut [u8],
        conf_out: &mut [u8],
    ) -> Result<StepInfo, TemporalError> {
        if self.sequence.as_deref() != Some(sequence) {
            self.filter.reset();
            self.sequence = Some(sequence.to_string());
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

    /// Filters the list entry of a picture of `sequence`: `probs` (C, H, W) of `size`
    /// (w, h) in, its filtered classes (written over `classes`) and averaged
    /// probabilities out.
    pub fn entry(
        &mut self,
        sequence: &str,
        probs: &[f32],
        size: (u32, u32),
        mut classes: Vec<u8>,
    ) -> Result<(Vec<u8>, Option<Vec<f32>>), TemporalError> {
        let size = (size.0 as usize, size.1 as usize);
        let mut conf = vec![0u8; classes.len()];
        let c = probs.len() / (size.0 * size.1).max(1);
        self.apply(sequence, probs, c, size, &mut classes, &mut conf)?;
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
mod tests;
