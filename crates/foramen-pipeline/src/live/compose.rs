//! The live session's whole graph, wired in one place. Every edge states its capacity
//! and its drop policy here (docs/ARCHITECTURE.md shows this function):
//!
//! | edge | capacity | policy |
//! | --- | --- | --- |
//! | capture -> router | 2 | newest wins (`DropPolicy::NewestWins`) |
//! | router -> display | 1 | newest wins (`NewestSlot`) |
//! | router -> inference | 1 | newest wins (the worker's `NewestSlot`) |
//! | inference -> latest mask | 1 | newest wins (the worker's `NewestSlot`) |
//! | router -> recorder | `max_backlog_frames` | count and drop (`Recorder::push`) |

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use foramen_capture::{
    CaptureError, CaptureHandle, DropPolicy, FrameSource, Paced, ReconnectingSource, V4l2Options,
    spawn_capture,
};
use foramen_core::config::CaptureConfig;
use foramen_core::{NewestSlot, clock_us};
use foramen_segment::{InferenceWorker, TemporalSettings, WorkerConfig};

use super::{CaptureStats, Mode, SessionSpec, Shared};
use crate::model::pipeline_model_config;
use crate::{PipelineError, Result};

/// Capacity of capture -> router: two frames, the oldest dropped when full (a capture
/// card never waits; the display shows the newest frame).
pub const CAPTURE_TO_ROUTER: usize = 2;

/// The running graph's parts that the session keeps.
pub(super) struct Graph {
    pub shared: Arc<Shared>,
    pub capture: CaptureHandle,
    pub worker: Arc<InferenceWorker>,
}

/// Opens the source and starts every stage of the live graph: inference (worker), the
/// recorder when `spec.record` (else the edge is opened empty and filled by
/// `LiveSession::start_recording`), capture, router. The capture thread starts after
/// the recorder, so a session recorded from its start loses no first frame. `repaint`
/// is called when there is something new to show.
pub(super) fn compose(spec: &SessionSpec, repaint: Arc<dyn Fn() + Send + Sync>) -> Result<Graph> {
    let source = open(spec)?;
    let info = source.info().clone();
    // router -> inference and inference -> latest mask: the worker's slots of one,
    // newest wins; a new mask asks for a repaint.
    let on_mask = repaint.clone();
    let worker = Arc::new(InferenceWorker::spawn(
        WorkerConfig {
            model: spec.model.clone(),
            // The live path is a pipeline too: no spinning unless the config asks.
            model_cfg: pipeline_model_config(&spec.config),
            latency_budget_ms: spec.config.inference.latency_budget_ms,
            backoff_ms: 250,
            max_backoff_ms: 8000,
            // Checked when the config was read; a config built in code with a value out
            // of range runs unfiltered, and says so.
            temporal: TemporalSettings::from_config(&spec.config.inference).unwrap_or_else(|e| {
                tracing::warn!("{e}: the temporal filter is off");
                TemporalSettings::OFF
            }),
        },
        Box::new(move || on_mask()),
    ));
    let shared = Arc::new(Shared {
        // router -> display: a slot of one, newest wins; the UI thread peeks at it.
        display: NewestSlot::new(),
        stats: Mutex::new(CaptureStats {
            epoch_us: clock_us(),
            ..Default::default()
        }),
        // router -> recorder: bounded(max_backlog_frames), count and drop, once recording.
        recorder: Mutex::new(
            spec.record
                .then(|| super::open_recorder(spec, &info, &worker))
                .transpose()?,
        ),
        stop: AtomicBool::new(false),
    });
    // capture -> router: CAPTURE_TO_ROUTER, newest wins.
    let capture = spawn_capture(source, CAPTURE_TO_ROUTER, DropPolicy::NewestWins);
    let (sh, w, events) = (shared.clone(), worker.clone(), capture.events().clone());
    std::thread::Builder::new()
        .name("router".into())
        .spawn(move || super::router::route(&sh, &w, &events, repaint.as_ref()))
        .map_err(|source| PipelineError::Spawn {
            name: "router",
            source,
        })?;
    Ok(Graph {
        shared,
        capture,
        worker,
    })
}

/// Whether `input` is a capture device, opened with `[capture]`'s size, rate and format
/// (every other source delivers its own).
pub fn is_device(input: &str) -> bool {
    input.starts_with("/dev/video")
}

/// Opens `input` once, as the live session does: a device with `[capture]`'s size, rate
/// and format; any other source paced at its own rate, as a device would deliver it.
/// `foramen check` measures what this delivers.
pub fn open_live(input: &str, cap: &CaptureConfig) -> Result<Box<dyn FrameSource>, CaptureError> {
    let src: Box<dyn FrameSource> = if is_device(input) {
        let mut fourcc = ['M', 'J', 'P', 'G'];
        for (slot, ch) in fourcc.iter_mut().zip(cap.fourcc.chars()) {
            *slot = ch;
        }
        let opts = V4l2Options {
            width: cap.width,
            height: cap.height,
            fps: cap.fps,
            fourcc,
        };
        foramen_capture::open_device(input, &opts)?
    } else {
        foramen_capture::open_source(input)?
    };
    Ok(if src.info().live {
        src
    } else {
        Box::new(Paced::new(src))
    })
}

/// Opens the session's source: live devices reconnect; files and folders are paced at
/// their own rate so that review behaves exactly like live.
fn open(spec: &SessionSpec) -> Result<Box<dyn FrameSource>> {
    let input = spec.input.clone();
    let opening = |source| PipelineError::Open {
        input: spec.input.clone(),
        source,
    };
    match spec.mode {
        Mode::Live => {
            let cap = spec.config.capture.clone();
            let opener: foramen_capture::Opener = Box::new(move || open_live(&input, &cap));
            let src = ReconnectingSource::new(
                opener,
                spec.config.capture.reconnect_ms as u64,
                spec.config.capture.reconnect_max_ms as u64,
            )
            .map_err(opening)?;
            Ok(Box::new(src))
        }
        Mode::Review => {
            let mut src = foramen_capture::open_source(&input).map_err(opening)?;
            if let Some(fps) = spec.fps {
                src = Box::new(foramen_capture::Retimed::new(src, fps));
            }
            Ok(Box::new(Paced::new(src)))
        }
    }
}
