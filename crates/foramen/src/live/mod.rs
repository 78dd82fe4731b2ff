//! The live pipeline without its window: capture, the router that fans each frame out
//! to the display slot, the inference worker and the recorder, and the counters the HUD
//! shows. `foramen live --headless` runs it alone; the window reads from it.
//!
//! Edges and their drop policies:
//! - capture -> router: bounded(2), newest wins for live sources (a capture card never
//!   waits); review of files uses the same policy, paced at the file's rate;
//! - router -> display: a slot of one, newest wins (the UI thread takes it when it paints);
//! - router -> inference: the worker's slot of one, newest wins;
//! - router -> recorder: bounded(`max_backlog_frames`), never drops while it keeps up,
//!   and counts (never waits) when it is a full backlog behind: the video on screen
//!   must not wait for a disk.

pub mod recorder;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use foramen_capture::{
    CaptureEvent, CaptureHandle, DropPolicy, FrameSource, Paced, ReconnectingSource, SourceInfo,
    V4l2Options, spawn_capture,
};
use foramen_core::{ClassSet, Config, Frame, Mask, clock_us};
use foramen_segment::{InferenceWorker, WorkerConfig, WorkerState};

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
    /// Smoothed capture rate.
    pub fps: f64,
    /// Set when the stream ended (finite sources) or failed for good.
    pub ended: Option<String>,
    /// Bumped at every seek, reconnection or source restart: masks computed before it
    /// belong to another timeline and are never drawn.
    pub epoch_us: u64,
}

struct Shared {
    display: Mutex<Option<Arc<Frame>>>,
    stats: Mutex<CaptureStats>,
    recorder: Mutex<Option<Recorder>>,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        let source = open(&spec)?;
        let info = source.info().clone();
        let capture = spawn_capture(source, 2, DropPolicy::NewestWins);
        let r = repaint.clone();
        let worker = Arc::new(InferenceWorker::spawn(
            WorkerConfig {
                model: spec.model.clone(),
                // The live path is a pipeline too: no spinning unless the config asks.
                model_cfg: crate::replay::pipeline_model_config(&spec.config),
                latency_budget_ms: spec.config.inference.latency_budget_ms,
                backoff_ms: 250,
                max_backoff_ms: 8000,
            },
            Box::new(move || r()),
        ));
        let shared = Arc::new(Shared {
            display: Mutex::new(None),
            stats: Mutex::new(CaptureStats {
                epoch_us: clock_us(),
                ..Default::default()
            }),
            recorder: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        {
            let (shared, worker, events) =
                (shared.clone(), worker.clone(), capture.events().clone());
            std::thread::Builder::new()
                .name("router".into())
                .spawn(move || route(&shared, &worker, &events, repaint.as_ref()))
                .context("starting the router thread")?;
        }
        Ok(Self {
            shared,
            capture,
            worker,
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

    /// The newest frame (non-blocking apart from a short lock).
    pub fn latest_frame(&self) -> Option<Arc<Frame>> {
        lock(&self.shared.display).clone()
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
        let classes = self.worker.state().classes.unwrap_or_else(ClassSet::lumbar);
        let mut slot = lock(&self.shared.recorder);
        if let Some(r) = slot.as_ref()
            && !r.state().finished
        {
            return Ok(r.state().dir);
        }
        let rec = Recorder::start(
            &self.spec.config.recording.dir,
            &self.info,
            &classes,
            &self.spec.model.display().to_string(),
            &self.spec.config.recording,
        )?;
        let dir = rec.state().dir;
        *slot = Some(rec);
        Ok(dir)
    }

    /// Stops recording (the recorder closes its files in the background).
    pub fn stop_recording(&self) {
        if let Some(r) = lock(&self.shared.recorder).as_ref() {
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
        lock(&self.shared.recorder)
            .as_ref()
            .map(|r| r.stop_and_wait(timeout))
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.stop_recording();
    }
}

/// Opens the session's source: live devices reconnect; files and folders are paced at
/// their own rate so that review behaves exactly like live.
fn open(spec: &SessionSpec) -> Result<Box<dyn FrameSource>> {
    let input = spec.input.clone();
    match spec.mode {
        Mode::Live => {
            let cap = spec.config.capture.clone();
            let opener: foramen_capture::Opener = Box::new(move || {
                let src: Box<dyn FrameSource> = if input.starts_with("/dev/video") {
                    let mut fourcc = ['M', 'J', 'P', 'G'];
                    for (slot, ch) in fourcc.iter_mut().zip(cap.fourcc.chars()) {
                        *slot = ch;
                    }
                    foramen_capture::open_device(
                        &input,
                        &V4l2Options {
                            width: cap.width,
                            height: cap.height,
                            fps: cap.fps,
                            fourcc,
                        },
                    )?
                } else {
                    foramen_capture::open_source(&input)?
                };
                // Non-device sources are paced like a device would deliver them.
                Ok(if src.info().live {
                    src
                } else {
                    Box::new(Paced::new(src)) as Box<dyn FrameSource>
                })
            });
            let src = ReconnectingSource::new(
                opener,
                spec.config.capture.reconnect_ms as u64,
                spec.config.capture.reconnect_max_ms as u64,
            )
            .with_context(|| format!("opening {}", spec.input))?;
            Ok(Box::new(src))
        }
        Mode::Review => {
            let mut src = foramen_capture::open_source(&input)
                .with_context(|| format!("opening {}", spec.input))?;
            if let Some(fps) = spec.fps {
                src = Box::new(foramen_capture::Retimed::new(src, fps));
            }
            Ok(Box::new(Paced::new(src)))
        }
    }
}

fn route(
    shared: &Shared,
    worker: &InferenceWorker,
    events: &crossbeam_channel::Receiver<CaptureEvent>,
    repaint: &(dyn Fn() + Send + Sync),
) {
    let mut last_at: Option<u64> = None;
    let mut last_id: Option<u64> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let ev = match events.recv_timeout(Duration::from_millis(100)) {
            Ok(ev) => ev,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match ev {
            CaptureEvent::Frame(f) => {
                let f = Arc::new(f);
                let now = clock_us();
                {
                    let mut st = lock(&shared.stats);
                    st.frames += 1;
                    st.last_frame_at_us = now;
                    if let Some(prev) = last_at {
                        let dt = now.saturating_sub(prev) as f64 / 1e6;
                        if dt > 0.0 {
                            let inst = 1.0 / dt;
                            st.fps = if st.fps == 0.0 {
                                inst
                            } else {
                                0.9 * st.fps + 0.1 * inst
                            };
                        }
                    }
                    // A frame id that goes backwards means a seek or a restarted
                    // stream: older masks belong to another timeline.
                    if last_id.is_some_and(|p| f.id <= p) {
                        st.epoch_us = f.captured_at_us.min(now);
                    }
                }
                last_at = Some(now);
                last_id = Some(f.id);
                *lock(&shared.display) = Some(f.clone());
                worker.submit(f.clone());
                if let Some(rec) = lock(&shared.recorder).as_ref() {
                    rec.push(f, worker.latest_mask());
                }
                repaint();
            }
            CaptureEvent::FrameError(e) => {
                let mut st = lock(&shared.stats);
                st.errors += 1;
                st.last_error = Some(e.to_string());
                drop(st);
                repaint();
            }
            CaptureEvent::End(e) => {
                lock(&shared.stats).ended =
                    Some(e.map_or_else(|| "end of stream".to_string(), |e| e.to_string()));
                repaint();
                break;
            }
        }
    }
}
