//! The readiness check before a case (`foramen check`, and the window's panel before its
//! first frame): the model loads on the intended provider, a warm inference fits the
//! latency budget, the capture delivers the configured size and rate, and the recording
//! folder is writable with room for `[recording].min_free_minutes`.
//!
//! Each check gives one [`CheckItem`]: its outcome and what was measured against what
//! was required, in plain words. [`Readiness::ready`] is true only when every check
//! passed. Every check runs under a time limit ([`CheckLimits`]), so the check never
//! hangs on a stalled device, a slow provider or a dead network share; a check that runs
//! out of time fails and says so. Nothing is left behind: the recording folder's probe
//! file is deleted, no folder is created.
//!
//! One concern per file: [`capture`], [`model`] (load and warm inference),
//! [`recording`]; this file holds the types and [`run_checks`], which runs them in order.
//! [`session`] judges a running session's own measurements the same way (the window's
//! panel, without opening the device twice).

pub mod capture;
pub mod model;
pub mod recording;
pub mod session;

use std::path::PathBuf;
use std::time::Duration;

use foramen_core::{Config, Frame};
use serde::Serialize;

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Measured and within its requirement.
    Pass,
    /// Measured and outside its requirement, or it could not be measured.
    Fail,
    /// Not run, because a check it needs failed (inference without a model).
    Skipped,
}

impl Outcome {
    /// `PASS`, `FAIL` or `SKIP`: the word printed before the check's line.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skipped => "SKIP",
        }
    }
}

/// One check's result, as plain text ready to show.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckItem {
    /// `model`, `inference`, `capture` or `recording`.
    pub name: String,
    /// Passed, failed or skipped.
    pub outcome: Outcome,
    /// What was measured against what is required, e.g. `warm inference 38.2 ms
    /// (median of 5) <= budget 60 ms`; for a failure, what failed and why.
    pub detail: String,
}

impl CheckItem {
    /// A passed check.
    pub fn pass(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Outcome::Pass, detail)
    }

    /// A failed check.
    pub fn fail(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Outcome::Fail, detail)
    }

    /// A check not run.
    pub fn skipped(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, Outcome::Skipped, detail)
    }

    fn new(name: &str, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            outcome,
            detail: detail.into(),
        }
    }

    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    /// The check's line: `PASS  model      lumbar-synth.onnx on cpu (...)`.
    pub fn line(&self) -> String {
        format!(
            "{}  {:<10} {}",
            self.outcome.label(),
            self.name,
            self.detail
        )
    }
}

/// Every check's result, in the order model, inference, capture, recording.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Readiness {
    /// One item per check.
    pub items: Vec<CheckItem>,
}

impl Readiness {
    /// True only when there are checks and every one passed.
    pub fn ready(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(CheckItem::passed)
    }

    /// The checks that did not pass.
    pub fn not_passed(&self) -> impl Iterator<Item = &CheckItem> {
        self.items.iter().filter(|i| !i.passed())
    }

    /// `READY`, or `NOT READY: capture, inference (not run)`: the one line to show in
    /// large type.
    pub fn verdict(&self) -> String {
        if self.ready() {
            return "READY".into();
        }
        let failed: Vec<String> = self
            .not_passed()
            .map(|i| match i.outcome {
                Outcome::Skipped => format!("{} (not run)", i.name),
                _ => i.name.clone(),
            })
            .collect();
        if failed.is_empty() {
            "NOT READY: nothing was checked".into()
        } else {
            format!("NOT READY: {}", failed.join(", "))
        }
    }
}

impl std::fmt::Display for Readiness {
    /// One line per check, then the verdict.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for item in &self.items {
            writeln!(f, "{}", item.line())?;
        }
        write!(f, "{}", self.verdict())
    }
}

/// How long each check may take, and how much it measures.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckLimits {
    /// Frames are read for this long from the first one, to measure size and rate.
    pub capture_window: Duration,
    /// Opening the source and waiting for its first frame.
    pub capture_open: Duration,
    /// Loading the model (TensorRT may build an engine on its first load).
    pub model_load: Duration,
    /// Timed inference runs after one warm-up run.
    pub inference_runs: usize,
    /// The warm-up and the timed runs together.
    pub inference: Duration,
    /// The recording folder's probe write and free-space query (a dead network share
    /// can block them).
    pub recording: Duration,
}

impl Default for CheckLimits {
    fn default() -> Self {
        Self {
            capture_window: Duration::from_millis(1500),
            capture_open: Duration::from_secs(5),
            model_load: Duration::from_secs(120),
            inference_runs: 5,
            inference: Duration::from_secs(30),
            recording: Duration::from_secs(5),
        }
    }
}

/// What to check, given as to `foramen live`.
#[derive(Clone, Debug)]
pub struct CheckSpec {
    /// The source: a device (`/dev/video0`) or anything `foramen live --device` takes.
    pub input: String,
    /// The model; `None`: `[model].path`, else the bundled model.
    pub model: Option<PathBuf>,
    /// Time limits.
    pub limits: CheckLimits,
}

impl CheckSpec {
    /// `input` and `model` with the default limits.
    pub fn new(input: impl Into<String>, model: Option<PathBuf>) -> Self {
        Self {
            input: input.into(),
            model,
            limits: CheckLimits::default(),
        }
    }
}

/// Runs every check against `cfg`: the capture first (its last frame is the one the
/// inference is timed on, and its size and rate give the recording's data rate), then
/// the model and a warm inference, then the recording folder. One check after another,
/// so that none disturbs another's timing. Never hangs: each is under its time limit.
pub fn run_checks(cfg: &Config, spec: &CheckSpec) -> Readiness {
    let limits = &spec.limits;
    let (capture_item, delivered) = capture::check_capture(cfg, &spec.input, limits);
    let frame = delivered
        .as_ref()
        .and_then(|d| d.frame.clone())
        .or_else(|| stand_in_frame(cfg));
    let (model_item, segmenter) = model::check_model(cfg, spec.model.as_deref(), limits);
    let (inference_item, mask_size) = match (segmenter, &frame) {
        (Some(seg), Some(frame)) => model::check_inference(cfg, seg, frame.clone(), limits),
        (None, _) => (
            CheckItem::skipped("inference", "not run: the model did not load"),
            None,
        ),
        (Some(_), None) => (
            CheckItem::skipped("inference", "not run: no frame to time it on"),
            None,
        ),
    };
    // The recording's rate: the faster of the delivered and the required one (a capture
    // measured slow now may deliver its full rate during the case).
    let fps = match &delivered {
        Some(d) => d.fps.unwrap_or(0.0).max(d.required_fps),
        None => cfg.capture.fps,
    };
    let fps = if fps > 0.0 {
        fps
    } else {
        recording::FALLBACK_FPS
    };
    let (width, height) = frame.as_ref().map_or((1920, 1080), |f| (f.width, f.height));
    let rate = recording::DataRate {
        width,
        height,
        fps,
        mask_size,
    };
    let recording_item = recording::check_recording(&cfg.recording, &rate, limits.recording);
    Readiness {
        items: vec![model_item, inference_item, capture_item, recording_item],
    }
}

/// The frame inference is timed on when the capture gave none: black, at `[capture]`'s
/// size, else 1920x1080 (the largest a capture card usually delivers).
fn stand_in_frame(cfg: &Config) -> Option<Frame> {
    let (w, h) = match (cfg.capture.width, cfg.capture.height) {
        (0, _) | (_, 0) => (1920, 1080),
        (w, h) => (w, h),
    };
    let rgb = vec![0; w as usize * h as usize * 3];
    Frame::new(0, 0, w, h, rgb)
}

/// Runs `f` on a thread named `check-NAME` and waits at most `limit` for its result.
/// On time-out the thread is left to finish on its own (it owns everything it uses);
/// the error says what happened, ready for a check's detail.
pub(crate) fn within<T: Send + 'static>(
    name: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name(format!("check-{name}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    match rx.recv_timeout(limit) {
        Ok(v) => Ok(v),
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
            Err(format!("no answer within {:.1} s", limit.as_secs_f64()))
        }
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err("the check panicked".into()),
    }
}

#[cfg(test)]
mod tests;
