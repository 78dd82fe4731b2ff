//! `foramen bench --realtime`: the live session on a source paced at its own frame rate,
//! without a window, timing each new frame and mask from the session's repaint
//! notifications.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use foramen_core::{Config, LatencyStats, clock_us};

use super::{LiveSession, Mode, SessionSpec};
use crate::Result;

/// What a paced run measured.
#[derive(Debug)]
pub struct PacedRun {
    /// Frames captured.
    pub frames: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// The source's own rate.
    pub source_fps: f64,
    /// Masks the worker made.
    pub masks: u64,
    /// Frames the worker skipped (newest wins).
    pub skipped: u64,
    /// Video path: a frame's capture to its being ready for display, per new frame, ms.
    pub video: LatencyStats,
    /// Annotation: a frame's capture to its mask being ready, per new mask, ms.
    pub annotation: LatencyStats,
}

/// Runs the live architecture (capture, router, newest-frame-wins inference worker; no
/// window) on `input` paced as review until it ends or `frames` came. The GPU upload
/// that follows in the window is measured by `make bench-window`.
pub fn run_paced(input: &str, model: &Path, cfg: &Config, frames: Option<u64>) -> Result<PacedRun> {
    let spec = SessionSpec {
        input: input.to_string(),
        mode: Mode::Review,
        model: model.to_path_buf(),
        config: cfg.clone(),
        fps: None,
        record: false,
    };
    // Woken by the router (new frame) and the worker (new mask); a full queue only
    // means the loop is already behind and will read the newest state anyway.
    let (tx, rx) = crossbeam_channel::bounded::<()>(1024);
    let repaint: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let _ = tx.try_send(());
    });
    let session = LiveSession::start(spec, repaint)?;
    let t0 = Instant::now();
    let (video, annotation) = measure(&session, &rx, frames);
    let seconds = t0.elapsed().as_secs_f64();
    let cap = session.capture_stats();
    let w = session.worker();
    session.stop_worker(Duration::from_secs(5));
    Ok(PacedRun {
        frames: cap.frames,
        seconds,
        source_fps: session.info().fps,
        masks: w.masks,
        skipped: w.skipped,
        video,
        annotation,
    })
}

/// Times each new frame (video path) and each new mask (annotation) from its capture,
/// woken by the session's repaint requests, until the source ends or `frames` came.
fn measure(
    session: &LiveSession,
    wake: &Receiver<()>,
    frames: Option<u64>,
) -> (LatencyStats, LatencyStats) {
    let (mut video, mut annotation) = (LatencyStats::default(), LatencyStats::default());
    let (mut last_frame, mut last_mask) = (None, None);
    while let Ok(()) | Err(RecvTimeoutError::Timeout) = wake.recv_timeout(Duration::from_millis(50))
    {
        let now = clock_us();
        if let Some(f) = session.latest_frame()
            && last_frame != Some(f.id)
        {
            last_frame = Some(f.id);
            video.push(now.saturating_sub(f.captured_at_us) as f64 / 1e3);
        }
        if let Some(m) = session.latest_mask()
            && last_mask != Some(m.source_frame_id)
        {
            last_mask = Some(m.source_frame_id);
            annotation.push(now.saturating_sub(m.source_captured_at_us) as f64 / 1e3);
        }
        let cap = session.capture_stats();
        if cap.ended.is_some() || frames.is_some_and(|n| cap.frames >= n) {
            break;
        }
    }
    (video, annotation)
}
