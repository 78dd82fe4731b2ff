//! The live session without a window (`foramen live --headless`: a recording station,
//! the tests): a status line a second and a summary, written to the caller's writer.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use foramen_segment::{WorkerState, WorkerStatus};

use super::{CaptureStats, LiveSession, SessionSpec};
use crate::{PipelineError, Result};

/// Writes a line; a closed pipe (`... | head`) is not an error.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// How a headless session runs (`SessionSpec::record` records it from its first frame).
#[derive(Clone, Copy, Debug, Default)]
pub struct HeadlessOptions {
    /// End after this many frames (else at the end of the stream or on `stop`).
    pub exit_after_frames: Option<u64>,
}

/// The once-a-second status line of a headless session.
fn status_line(
    session: &LiveSession,
    cap: &CaptureStats,
    w: &WorkerState,
    no_signal_ms: f64,
    t_s: f64,
) -> String {
    let mut rec = session
        .recording()
        .map(|r| {
            let failed = r
                .error
                .map(|e| format!("  RECORDING FAILED: {e}"))
                .unwrap_or_default();
            format!(" rec {} frames {} lost{failed}", r.frames, r.lost)
        })
        .unwrap_or_default();
    let silent_ms = foramen_core::clock_us().saturating_sub(cap.last_frame_at_us) / 1000;
    if silent_ms as f64 > no_signal_ms {
        rec.push_str(&format!(
            "  NO SIGNAL for {silent_ms} ms: {}",
            cap.last_error
                .clone()
                .unwrap_or_else(|| "no frames arriving".into())
        ));
    }
    format!(
        "{t_s:>6.1} s  frames {}  capture {:.1} fps  masks {}  AI {:?}{}",
        cap.frames, cap.fps, w.masks, w.status, rec
    )
}

/// Runs the session until the stream ends, `exit_after_frames` or `stop` (a signal
/// handler's flag: the session then ends exactly as at the end of the stream, the open
/// segment closed and the summary written). Fails when no frame came.
pub fn run_headless(
    spec: SessionSpec,
    opts: HeadlessOptions,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<()> {
    let no_signal_ms = spec.config.capture.no_signal_ms;
    let session = LiveSession::start(spec, Arc::new(|| ()))?;
    if let Some(r) = session.recording() {
        say!(out, "recording to {}", r.dir.display());
    }
    let t0 = Instant::now();
    let mut next_print = Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        let cap = session.capture_stats();
        let w = session.worker();
        if t0.elapsed() >= next_print {
            next_print += Duration::from_secs(1);
            let t_s = t0.elapsed().as_secs_f64();
            say!(
                out,
                "{}",
                status_line(&session, &cap, &w, no_signal_ms, t_s)
            );
        }
        let done = opts.exit_after_frames.is_some_and(|n| cap.frames >= n) || cap.ended.is_some();
        if done {
            break;
        }
    }
    summary(&session, out)
}

/// The end-of-session summary of a headless session; fails when no frame came.
fn summary(session: &LiveSession, out: &mut dyn Write) -> Result<()> {
    let cap = session.capture_stats();
    let w = session.worker();
    // A model load or run must not outlive the runtime at process exit: a session torn
    // down under it is reported as a broken model, or crashes. A load cannot be
    // interrupted, so a session that ends while the model is loading waits for it.
    session.stop_worker(Duration::from_secs(30));
    // The status above is the moment the stream ended; the faults are the whole session,
    // including a load that failed while the session was stopping.
    let after = session.worker();
    if let Some(r) = session.finish_recording(Duration::from_secs(60)) {
        say!(
            out,
            "recording {}: {} frames, {} masks, {} segments, {} lost{}",
            r.dir.display(),
            r.frames,
            r.masks,
            r.segments,
            r.lost,
            r.error.map(|e| format!(", error: {e}")).unwrap_or_default()
        );
    }
    // How far the newest mask was behind the newest frame when the session ended: with
    // newest-frame-wins inference it stays within about one inference time.
    let behind_ms = match (session.latest_frame(), session.latest_mask()) {
        (Some(f), Some(m)) => {
            Some(f.captured_at_us.saturating_sub(m.source_captured_at_us) as f64 / 1e3)
        }
        _ => None,
    };
    say!(
        out,
        "AI: {} masks, {} stale frames skipped{}",
        w.masks,
        w.skipped,
        behind_ms
            .map(|ms| format!(", last mask {ms:.0} ms behind the video"))
            .unwrap_or_default()
    );
    let faults = match (after.faults, after.last_fault) {
        (0, _) | (_, None) => String::new(),
        // The status already says why.
        (n, Some(last)) if matches!(&w.status, WorkerStatus::Failed { reason, .. } if *reason == last) =>
        {
            format!(", {n} AI faults")
        }
        (n, Some(last)) => format!(", {n} AI faults, the last: {last}"),
    };
    say!(
        out,
        "{} frames, {} masks, {} capture errors, AI {:?}{faults}",
        cap.frames,
        w.masks,
        cap.errors,
        w.status
    );
    if cap.frames == 0 {
        return Err(PipelineError::NoFrames {
            source_name: session.info().name.clone(),
            why: cap.last_error.map(|e| format!(": {e}")).unwrap_or_default(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::Mode;
    use foramen_core::Config;

    #[test]
    fn a_session_recorded_from_its_start_holds_its_first_frame_and_every_one_after() {
        let root = tempfile::tempdir().expect("tmp");
        let mut config = Config::default();
        config.recording.dir = root.path().to_path_buf();
        let spec = SessionSpec {
            input: "synthetic:3:96x54@50".into(),
            mode: Mode::Live,
            // The recording does not wait for a model: a missing one is a worker fault.
            model: root.path().join("no-model.onnx"),
            config,
            fps: None,
            record: true,
        };
        let opts = HeadlessOptions {
            exit_after_frames: Some(12),
        };
        let mut log = Vec::new();
        run_headless(spec, opts, &AtomicBool::new(false), &mut log).expect("session");
        let log = String::from_utf8_lossy(&log);
        assert!(log.contains("recording to "), "{log}");
        // The missing model is a fault of the session, whatever the status at its end.
        let last = log.lines().last().unwrap_or_default();
        assert!(
            last.contains(" AI faults") && last.contains("no-model.onnx"),
            "{log}"
        );
        let dir = std::fs::read_dir(root.path())
            .expect("root")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("frames.csv").exists())
            .expect("a recording");
        let csv = std::fs::read_to_string(dir.join("frames.csv")).expect("frames.csv");
        let ids: Vec<u64> = csv
            .lines()
            .skip(1)
            .map(|row| {
                row.split(',')
                    .next()
                    .and_then(|id| id.parse().ok())
                    .expect(row)
            })
            .collect();
        // The recording starts at the source's first frame, id 0, with no gap. The session
        // counts a frame once the recorder has it, so it holds the 12 frames at least;
        // the router may hand it one more before the session's 20 ms poll sees the count.
        assert!(ids.len() >= 12, "{ids:?}\n{log}");
        assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>(), "{log}");
    }
}
