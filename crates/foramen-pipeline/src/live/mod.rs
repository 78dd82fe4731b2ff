//! The live pipeline without its window: capture, the router that fans each frame out
//! to the display slot, the inference worker and the recorder, and the counters the HUD
//! shows. `foramen live --headless` runs it alone; the window reads from it.
//!
//! The graph, every edge with its capacity and drop policy, is wired in one place:
//! [`compose`]. Review of files uses the same graph, paced at the file's rate.

pub mod compose;
pub mod headless;
pub mod realtime;
pub mod recorder;
mod router;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foramen_capture::{CaptureHandle, SourceInfo};
use foramen_core::{Config, Frame, Mask, NewestSlot, clock_us, lock};
use foramen_segment::{InferenceWorker, WorkerState};

use crate::Result;
use recorder::{Recorder, RecorderState};

/// Which kind of session: live (a device, reconnecting) or review (a file or folder,
/// paced like live, with pause, step and seek).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A capture device or any source treated as live.
    Live,
    /// Offline review of a recording.
    Review,
}

/// The shortest window the capture rate is measured over.
pub const FPS_WINDOW_US: u64 = 1_000_000;

/// Counters of the capture side, for the HUD.
#[derive(Clone, Debug, Default)]
pub struct CaptureStats {
    /// Frames received from the source.
    pub frames: u64,
    /// Frames the source reported lost (corrupt, no signal).
    pub errors: u64,
    /// The last such report.
    pub last_error: Option<String>,
    /// When the last frame arrived ([`clock_us`]).
    pub last_frame_at_us: u64,
    /// Capture rate: frames over the last window of at least [`FPS_WINDOW_US`], so
    /// that a source delivering in bursts reads at its true rate (1/Δt of a burst does not).
    pub fps: f64,
    /// Start of the current rate window ([`clock_us`]) and frames in it.
    pub fps_window: (u64, u64),
    /// Set when the stream ended (finite sources) or failed for good.
    pub ended: Option<String>,
    /// Bumped at every seek, reconnection or source restart: masks computed before it
    /// belong to another timeline and are never drawn.
    pub epoch_us: u64,
}

/// What the router shares with the session's handle.
struct Shared {
    /// router -> display: newest wins.
    display: NewestSlot<Arc<Frame>>,
    stats: Mutex<CaptureStats>,
    /// router -> recorder, while recording.
    recorder: Mutex<Option<Recorder>>,
    stop: AtomicBool,
}

/// Everything a session needs to start.
#[derive(Clone, Debug)]
pub struct SessionSpec {
    /// Source as `open_source` understands it (device path, file, folder, `synthetic:...`).
    pub input: String,
    /// Live or review.
    pub mode: Mode,
    /// The model file (it may be missing or broken: the worker reports that).
    pub model: PathBuf,
    /// Settings.
    pub config: Config,
    /// Review pacing: override the file's own frame rate.
    pub fps: Option<f64>,
    /// Record from the first frame (into `[recording].dir`): the recorder is in place
    /// before the capture thread starts, so the recording holds every frame the session
    /// shows. A recording started later ([`LiveSession::start_recording`]) begins at the
    /// next frame.
    pub record: bool,
}

/// A running session. Dropping it stops every thread without waiting.
pub struct LiveSession {
    shared: Arc<Shared>,
    capture: CaptureHandle,
    worker: Arc<InferenceWorker>,
    info: SourceInfo,
    spec: SessionSpec,
}

impl LiveSession {
    /// Opens the source, starts the capture thread, the inference worker and the router;
    /// `repaint` is called (from worker threads) whenever there is something new to show.
    pub fn start(spec: SessionSpec, repaint: Arc<dyn Fn() + Send + Sync>) -> Result<Self> {
        let graph = compose::compose(&spec, repaint)?;
        let info = graph.capture.info().clone();
        Ok(Self {
            shared: graph.shared,
            capture: graph.capture,
            worker: graph.worker,
            info,
            spec,
        })
    }

    /// The source as opened.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// Live or review.
    pub fn mode(&self) -> &Mode {
        &self.spec.mode
    }

    /// The source as given (`/dev/video0`, `synthetic:...`, a file).
    pub fn input(&self) -> &str {
        &self.spec.input
    }

    /// The model file the session was started with.
    pub fn model_path(&self) -> &std::path::Path {
        &self.spec.model
    }

    /// The newest frame (non-blocking apart from a short lock).
    pub fn latest_frame(&self) -> Option<Arc<Frame>> {
        self.shared.display.peek()
    }

    /// The newest mask.
    pub fn latest_mask(&self) -> Option<Arc<Mask>> {
        self.worker.latest_mask()
    }

    /// The worker's state.
    pub fn worker(&self) -> WorkerState {
        self.worker.state()
    }

    /// Capture counters.
    pub fn capture_stats(&self) -> CaptureStats {
        lock(&self.shared.stats).clone()
    }

    /// Frames the capture thread dropped because the router fell behind.
    pub fn capture_dropped(&self) -> u64 {
        self.capture.dropped()
    }

    /// Review: pause or resume.
    pub fn set_paused(&self, paused: bool) {
        self.capture.set_paused(paused);
        // Resuming starts a new stretch of pacing; masks from before stay valid.
    }

    /// Review: paused?
    pub fn is_paused(&self) -> bool {
        self.capture.is_paused()
    }

    /// Review: one frame forward while paused.
    pub fn step(&self) {
        self.capture.step();
    }

    /// Review: continue at frame `index`; masks of the old position are discarded.
    pub fn seek(&self, index: u64) {
        lock(&self.shared.stats).epoch_us = clock_us();
        self.capture.seek(index);
    }

    /// Starts recording into `[recording].dir`; an error names the folder. The
    /// model's classes are written with it (the lumbar set until the model has loaded).
    pub fn start_recording(&self) -> Result<PathBuf> {
        let mut slot = lock(&self.shared.recorder);
        if let Some(r) = slot.as_ref()
            && !r.state().finished
        {
            return Ok(r.state().dir);
        }
        let rec = open_recorder(&self.spec, &self.info, &self.worker)?;
        let dir = rec.state().dir;
        *slot = Some(rec);
        Ok(dir)
    }

    /// Stops recording (the recorder closes its files in the background).
    pub fn stop_recording(&self) {
        // Out of the router's reach first, so no frame is queued behind the stop; the
        // recorder thread closes its files on its own.
        let recorder = lock(&self.shared.recorder).take();
        if let Some(r) = recorder {
            r.stop();
        }
    }

    /// The recorder's counters, while one exists.
    pub fn recording(&self) -> Option<RecorderState> {
        lock(&self.shared.recorder).as_ref().map(Recorder::state)
    }

    /// Stops the inference worker and waits up to `timeout` for it (shutdown only).
    pub fn stop_worker(&self, timeout: Duration) {
        self.worker.stop_and_wait(timeout);
    }

    /// Stops recording and waits for its files to close (not from the UI thread).
    pub fn finish_recording(&self, timeout: Duration) -> Option<RecorderState> {
        let recorder = lock(&self.shared.recorder).take();
        recorder.map(|r| r.stop_and_wait(timeout))
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.stop_recording();
    }
}

/// A recorder for the session `spec` on the source `info`, into `[recording].dir`; an
/// error names the folder. Until the model has loaded its classes are not known: the
/// recorder asks the worker for them at each frame instead of writing a set the model
/// may not have.
fn open_recorder(
    spec: &SessionSpec,
    info: &SourceInfo,
    worker: &Arc<InferenceWorker>,
) -> Result<Recorder> {
    let classes = worker.state().classes;
    let w = worker.clone();
    let later: recorder::ClassSource = Arc::new(move || w.state().classes);
    Recorder::start(
        &spec.config.recording.dir,
        info,
        classes.as_ref(),
        Some(later),
        &spec.model.display().to_string(),
        &spec.config.recording,
    )
}
