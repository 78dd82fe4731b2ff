//! The live inference worker: one named thread that owns the model, always takes the
//! newest frame (a slot of one: newest wins, never a queue), stamps every mask with its
//! source frame, and survives model faults by reporting them and reloading with backoff.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foramen_core::config::ModelConfig;
use foramen_core::{ClassSet, Frame, Mask, NewestSlot, clock_us, fault, lock};

use crate::temporal::{FrameStamp, TemporalFilter, TemporalSettings};
use crate::{SegmentError, SegmentOutput, Segmenter, StageTimings};

/// What the worker is doing, for the status line.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerStatus {
    /// Loading the model.
    Loading,
    /// Ready or segmenting.
    Running,
    /// The model could not be loaded or a run failed; retrying after `retry_in_ms`.
    Failed {
        /// Why, naming the model file.
        reason: String,
        /// Delay before the next attempt.
        retry_in_ms: u64,
    },
    /// Stopped on request.
    Stopped,
}

/// A snapshot of the worker for the HUD.
#[derive(Clone, Debug)]
pub struct WorkerState {
    /// Current status.
    pub status: WorkerStatus,
    /// Last time the thread was alive, on [`clock_us`]'s clock.
    pub heartbeat_us: u64,
    /// Masks produced.
    pub masks: u64,
    /// Frames replaced in the slot before the worker took them.
    pub skipped: u64,
    /// Timings of the last mask.
    pub last_timings: StageTimings,
    /// Masks whose total time exceeded the budget.
    pub over_budget: u64,
    /// Model (re)loads so far.
    pub loads: u64,
    /// Classes of the loaded model (none until the first load succeeds).
    pub classes: Option<ClassSet>,
    /// Execution provider in use (`cpu`, `cuda`, ...), once loaded.
    pub provider: &'static str,
    /// Why the provider asked for is not the one in use (`CUDA unavailable: ...`).
    pub provider_fallback: Option<String>,
    /// Faults so far (failed loads and runs): `status` is only the present moment, and a
    /// worker that fails and retries passes through `Loading` and `Running` again.
    pub faults: u64,
    /// The reason of the newest fault, kept after a retry.
    pub last_fault: Option<String>,
}

impl WorkerState {
    /// Enters `Failed` and counts the fault (its reason outlives the retry).
    fn record_fault(&mut self, reason: String, retry_in_ms: u64) {
        self.faults += 1;
        self.last_fault = Some(reason.clone());
        self.status = WorkerStatus::Failed {
            reason,
            retry_in_ms,
        };
    }
}

struct Shared {
    /// The frame to segment next (newest wins).
    slot: NewestSlot<Arc<Frame>>,
    /// The newest mask (newest wins; readers peek).
    latest: NewestSlot<Arc<Mask>>,
    state: Mutex<WorkerState>,
    stop: AtomicBool,
}

/// Settings of the worker.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The ONNX model.
    pub model: PathBuf,
    /// Provider and threads.
    pub model_cfg: ModelConfig,
    /// Masks slower than this (pre + model + post) are counted as over budget.
    pub latency_budget_ms: f64,
    /// First retry delay after a fault; doubles per failure up to `max_backoff_ms`.
    pub backoff_ms: u64,
    /// Longest retry delay.
    pub max_backoff_ms: u64,
    /// The temporal filter applied to every mask (`TemporalSettings::OFF` for the raw
    /// per-frame argmax); its history restarts on each model (re)load.
    pub temporal: TemporalSettings,
}

/// Handle to the running worker. Dropping it asks the thread to stop; it never waits.
pub struct InferenceWorker {
    shared: Arc<Shared>,
}

impl InferenceWorker {
    /// Starts thread `inference`; `on_mask` runs after each new mask (e.g. a UI
    /// repaint request) and must not block.
    pub fn spawn(cfg: WorkerConfig, on_mask: Box<dyn Fn() + Send>) -> Self {
        let shared = Arc::new(Shared {
            slot: NewestSlot::new(),
            latest: NewestSlot::new(),
            state: Mutex::new(WorkerState {
                status: WorkerStatus::Loading,
                heartbeat_us: clock_us(),
                masks: 0,
                skipped: 0,
                last_timings: StageTimings::default(),
                over_budget: 0,
                loads: 0,
                classes: None,
                provider: "",
                provider_fallback: None,
                faults: 0,
                last_fault: None,
            }),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || run(&s, &cfg, on_mask.as_ref()));
        if let Err(e) = spawned {
            let reason = format!("cannot start the inference thread: {e}");
            lock(&shared.state).record_fault(reason, 0);
        }
        Self { shared }
    }

    /// Offers a frame; an older frame still waiting is replaced (and counted as skipped).
    pub fn submit(&self, frame: Arc<Frame>) {
        if self.shared.slot.put(frame).is_some() {
            lock(&self.shared.state).skipped += 1;
        }
    }

    /// The newest mask, if any.
    pub fn latest_mask(&self) -> Option<Arc<Mask>> {
        self.shared.latest.peek()
    }

    /// A snapshot of the worker's state.
    pub fn state(&self) -> WorkerState {
        lock(&self.shared.state).clone()
    }
}

impl InferenceWorker {
    /// Asks the thread to stop and waits up to `timeout` until it has (for shutdown
    /// paths; `Drop` never waits).
    pub fn stop_and_wait(&self, timeout: Duration) -> bool {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.slot.wake_all();
        let t = std::time::Instant::now();
        while t.elapsed() < timeout {
            if lock(&self.shared.state).status == WorkerStatus::Stopped {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

impl Drop for InferenceWorker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.slot.wake_all();
    }
}

/// Loads the model, reporting a failure or a panicking loader as a fault (with the
/// backoff before the next try); the status says which provider is in use.
fn load_model(s: &Shared, cfg: &WorkerConfig, backoff: &mut u64) -> Option<Segmenter> {
    lock(&s.state).status = WorkerStatus::Loading;
    let loaded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        Segmenter::load(&cfg.model, &cfg.model_cfg)
    }));
    let seg = match loaded {
        Ok(Ok(seg)) => seg,
        Ok(Err(e)) => {
            fail(s, e.to_string(), backoff, cfg.max_backoff_ms);
            return None;
        }
        Err(_) => {
            let reason = format!("model {}: loader panicked", cfg.model.display());
            fail(s, reason, backoff, cfg.max_backoff_ms);
            return None;
        }
    };
    let mut st = lock(&s.state);
    st.status = WorkerStatus::Running;
    st.loads += 1;
    st.classes = Some(seg.classes().clone());
    st.provider = seg.execution_provider();
    st.provider_fallback = seg.provider_fallback().map(str::to_string);
    Some(seg)
}

/// The newest frame, waiting for one; `None` once the worker is asked to stop.
fn next_frame(s: &Shared) -> Option<Arc<Frame>> {
    loop {
        if s.stop.load(Ordering::Relaxed) {
            return None;
        }
        // Wake up regularly so the heartbeat shows a live, idle worker.
        match s.slot.take_timeout(Duration::from_millis(100)) {
            Some(f) => return Some(f),
            None => lock(&s.state).heartbeat_us = clock_us(),
        }
    }
}

/// Publishes a mask and its timings (counting it against the latency budget).
fn publish(s: &Shared, cfg: &WorkerConfig, out: SegmentOutput) {
    let now = clock_us();
    s.latest.put(Arc::new(out.mask));
    let mut st = lock(&s.state);
    st.masks += 1;
    st.heartbeat_us = now;
    st.last_timings = out.timings;
    if out.timings.total_ms() as f64 > cfg.latency_budget_ms {
        st.over_budget += 1;
    }
}

/// The worker thread: load the model, segment the newest frame until stopped; any
/// fault (an error, a panic) reloads the model after a backoff.
fn run(s: &Shared, cfg: &WorkerConfig, on_mask: &(dyn Fn() + Send)) {
    let mut backoff = cfg.backoff_ms.max(1);
    'reload: while !s.stop.load(Ordering::Relaxed) {
        let Some(mut seg) = load_model(s, cfg, &mut backoff) else {
            continue;
        };
        // A new filter per load: a reloaded model starts without history.
        let mut filter = TemporalFilter::new(cfg.temporal);
        while let Some(frame) = next_frame(s) {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                fault::inject(fault::Site::Inference, frame.id);
                segment_filtered(&mut seg, &mut filter, &frame)
            }));
            let reason = match result {
                Ok(Ok(out)) => {
                    backoff = cfg.backoff_ms.max(1);
                    publish(s, cfg, out);
                    on_mask();
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "inference panicked; reloading the model".into(),
            };
            fail(s, reason, &mut backoff, cfg.max_backoff_ms);
            continue 'reload;
        }
        break;
    }
    lock(&s.state).status = WorkerStatus::Stopped;
}

/// Segments `frame` and, unless the filter is off, replaces the mask's classes and
/// confidence with the temporally filtered ones (in the mask's own grid, in place).
fn segment_filtered(
    seg: &mut Segmenter,
    filter: &mut TemporalFilter,
    frame: &Frame,
) -> Result<SegmentOutput, SegmentError> {
    if filter.settings().is_off() {
        return seg.segment(frame);
    }
    // The filter decides every pixel from the probabilities: no classes computed first.
    let mut out = seg.segment_probabilities(frame)?;
    let classes = seg.classes().len();
    let m = &mut out.mask;
    let size = (m.width as usize, m.height as usize);
    let stamp = FrameStamp {
        id: frame.id,
        at_us: frame.captured_at_us,
    };
    let probs = seg.output_probabilities();
    filter
        .apply(
            stamp,
            probs,
            classes,
            size,
            &mut m.classes,
            &mut m.confidence,
        )
        .map_err(|e| SegmentError::Inference(e.to_string()))?;
    Ok(out)
}

/// Records a fault and sleeps the backoff (in short steps, so a stop is honoured).
fn fail(s: &Shared, reason: String, backoff: &mut u64, max: u64) {
    tracing::warn!("inference worker: {reason}");
    {
        let mut st = lock(&s.state);
        st.record_fault(reason, *backoff);
        st.heartbeat_us = clock_us();
    }
    let mut left = *backoff;
    while left > 0 && !s.stop.load(Ordering::Relaxed) {
        let step = left.min(50);
        std::thread::sleep(Duration::from_millis(step));
        left -= step;
        lock(&s.state).heartbeat_us = clock_us();
    }
    *backoff = (*backoff * 2).min(max.max(1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Instant;

    fn cfg(model: PathBuf) -> WorkerConfig {
        WorkerConfig {
            model,
            model_cfg: ModelConfig::default(),
            latency_budget_ms: 1e6,
            backoff_ms: 20,
            max_backoff_ms: 80,
            temporal: TemporalSettings::OFF,
        }
    }

    fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    fn frame(id: u64) -> Arc<Frame> {
        Arc::new(
            Frame::new(
                id,
                id as i64 * 1000,
                96,
                54,
                vec![(id % 200) as u8; 96 * 54 * 3],
            )
            .expect("frame"),
        )
    }

    #[test]
    fn newest_frame_wins_and_masks_carry_their_source() {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/lumbar-synth.onnx");
        let w = InferenceWorker::spawn(cfg(model), Box::new(|| ()));
        assert!(
            wait_until(|| w.state().status == WorkerStatus::Running),
            "{:?}",
            w.state()
        );
        // Offer frames far faster than inference: most must be skipped, never queued.
        for id in 0..200 {
            w.submit(frame(id));
        }
        assert!(
            wait_until(|| w.latest_mask().is_some_and(|m| m.source_frame_id == 199)),
            "the last frame is always processed"
        );
        let st = w.state();
        assert!(st.skipped > 100, "frames were replaced, not queued: {st:?}");
        assert!(st.masks + st.skipped >= 200 - 1 && st.masks < 100, "{st:?}");
        let m = w.latest_mask().expect("mask");
        assert_eq!(m.source_pts_us, 199_000);
    }

    #[test]
    fn a_missing_model_is_reported_and_retried_without_blocking() {
        let w = InferenceWorker::spawn(
            cfg(PathBuf::from("/nonexistent/model.onnx")),
            Box::new(|| ()),
        );
        assert!(wait_until(|| matches!(
            w.state().status,
            WorkerStatus::Failed { .. }
        )));
        match w.state().status {
            WorkerStatus::Failed { reason, .. } => {
                assert!(reason.contains("/nonexistent/model.onnx"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        w.submit(frame(1));
        let hb = w.state().heartbeat_us;
        assert!(
            wait_until(|| w.state().heartbeat_us > hb),
            "heartbeat continues while failing"
        );
        assert!(w.latest_mask().is_none());
        // Each retry fails again; the count and the reason outlive the retry's `Loading`.
        assert!(wait_until(|| w.state().faults >= 3), "{:?}", w.state());
        let last = w.state().last_fault.expect("a fault's reason is kept");
        assert!(last.contains("/nonexistent/model.onnx"), "{last}");
        let t = Instant::now();
        drop(w);
        assert!(t.elapsed() < Duration::from_millis(50), "drop never blocks");
    }
}
