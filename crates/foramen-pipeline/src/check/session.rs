//! The readiness of a session that is already running (the window's panel before its
//! first frames): the model, inference and capture items judged from what the session
//! has measured, with the same judges and wording as [`run_checks`](super::run_checks),
//! without opening the device a second time or loading the model twice.
//!
//! [`session_items`] does no I/O and takes no lock: cheap enough for every repaint. The
//! recording folder needs I/O: run [`check_recording`](super::recording::check_recording)
//! once, off the UI thread, and add its item. An item is `Skipped` ("waiting ...") until
//! the session has something to judge.

use std::path::Path;

use foramen_capture::SourceInfo;
use foramen_core::Config;
use foramen_segment::{WorkerState, WorkerStatus};

use super::CheckItem;
use super::capture::{Delivered, Required, judge_capture};
use super::model::{judge_latency, judge_provider};
use crate::live::CaptureStats;

/// What a running session has measured, as `LiveSession` hands it out.
#[derive(Clone, Copy, Debug)]
pub struct SessionMeasures<'a> {
    /// The source as given (`/dev/video0`, `synthetic:...`).
    pub input: &'a str,
    /// The model file the session runs.
    pub model: &'a Path,
    /// `LiveSession::info`.
    pub info: &'a SourceInfo,
    /// `LiveSession::capture_stats`.
    pub capture: &'a CaptureStats,
    /// `LiveSession::worker`.
    pub worker: &'a WorkerState,
}

/// The model, inference and capture items of a running session, in that order.
pub fn session_items(cfg: &Config, m: &SessionMeasures<'_>) -> [CheckItem; 3] {
    [
        model_item(cfg, m),
        inference_item(cfg, m),
        capture_item(cfg, m),
    ]
}

/// The worker's load: failed with its reason, loading, or running on its provider.
fn model_item(cfg: &Config, m: &SessionMeasures<'_>) -> CheckItem {
    let w = m.worker;
    match &w.status {
        WorkerStatus::Failed { reason, .. } => CheckItem::fail("model", reason.clone()),
        WorkerStatus::Running => judge_provider(
            m.model,
            cfg.model.execution_provider.name(),
            w.provider,
            w.provider_fallback.as_deref(),
        ),
        WorkerStatus::Loading => CheckItem::skipped(
            "model",
            format!("waiting: {} is loading", m.model.display()),
        ),
        WorkerStatus::Stopped => CheckItem::fail("model", "the inference worker is stopped"),
    }
}

/// The last mask's time against the budget, once a warm one (the second) exists.
fn inference_item(cfg: &Config, m: &SessionMeasures<'_>) -> CheckItem {
    let w = m.worker;
    if w.masks < 2 || !matches!(w.status, WorkerStatus::Running) {
        return CheckItem::skipped("inference", "waiting for a warm inference");
    }
    judge_latency(
        cfg.inference.latency_budget_ms,
        &[f64::from(w.last_timings.total_ms())],
        w.provider,
        (m.info.width, m.info.height),
    )
}

/// The session's measured capture rate and size against what is required.
fn capture_item(cfg: &Config, m: &SessionMeasures<'_>) -> CheckItem {
    let c = m.capture;
    if c.frames < 2 || c.fps <= 0.0 {
        if let Some(why) = &c.ended {
            return CheckItem::fail("capture", format!("{}: {why}", m.info.name));
        }
        return CheckItem::skipped(
            "capture",
            format!("waiting for frames from {}", m.info.name),
        );
    }
    let required = Required::for_source(&cfg.capture, m.input, m.info);
    let delivered = Delivered {
        name: m.info.name.clone(),
        width: m.info.width,
        height: m.info.height,
        frames: c.frames,
        fps: Some(c.fps),
        errors: c.errors,
        last_error: c.last_error.clone(),
        required_fps: required.fps,
        ..Default::default()
    };
    judge_capture(&required, &delivered)
}
