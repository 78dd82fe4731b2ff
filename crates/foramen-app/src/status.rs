//! The status lines and the HUD as plain text: what the screen says about the video,
//! the AI and the recording. Pure functions of the session's counters, so every message
//! is tested without a window or a GPU; `panels` only draws them.

use foramen_pipeline::live::CaptureStats;
use foramen_segment::{StageTimings, WorkerState, WorkerStatus};

use crate::overlay::OverlayState;

/// How loud a status line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Something is wrong now (red): no signal, AI off or not responding, recording failed.
    Alarm,
    /// Worth knowing (amber): loading, video ended, overlay hidden, frozen.
    Warning,
    /// The AI is on and its overlay fresh (green).
    Good,
    /// Neutral information (grey).
    Info,
}

/// One line of the status area.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusLine {
    /// The text.
    pub text: String,
    /// Its colour.
    pub severity: Severity,
}

fn line(text: String, severity: Severity) -> StatusLine {
    StatusLine { text, severity }
}

/// The facts the status lines are made of.
pub struct StatusInputs<'a> {
    /// A live source (silence means NO SIGNAL) rather than a review.
    pub live: bool,
    /// Now, [`foramen_core::clock_us`].
    pub now_us: u64,
    /// Capture counters.
    pub capture: &'a CaptureStats,
    /// The worker's state.
    pub worker: &'a WorkerState,
    /// The overlay decision for this paint.
    pub overlay: &'a OverlayState,
    /// The picture is frozen (F).
    pub frozen: bool,
    /// The recorder's error, if it failed.
    pub recording_error: Option<&'a str>,
    /// `[capture].no_signal_ms`.
    pub no_signal_ms: f64,
}

/// Silence longer than this from the worker means it is not responding.
pub const HEARTBEAT_LIMIT_MS: f64 = 1000.0;

/// Milliseconds since the worker's last heartbeat.
pub fn heartbeat_age_ms(worker: &WorkerState, now_us: u64) -> f64 {
    now_us.saturating_sub(worker.heartbeat_us) as f64 / 1e3
}

/// The status lines, most important first; empty when all is well.
pub fn status_lines(i: &StatusInputs) -> Vec<StatusLine> {
    let mut lines = vec![];
    let cap = i.capture;
    let silent_ms = i.now_us.saturating_sub(cap.last_frame_at_us) as f64 / 1e3;
    if let Some(end) = &cap.ended {
        lines.push(line(format!("VIDEO ENDED: {end}"), Severity::Warning));
    } else if i.live && (cap.frames == 0 || silent_ms > i.no_signal_ms) {
        let why = cap.last_error.clone().map_or_else(
            || "waiting for frames".to_string(),
            // The source's own "NO SIGNAL: why" is shown once.
            |e| e.rsplit("NO SIGNAL: ").next().unwrap_or(&e).to_string(),
        );
        lines.push(line(format!("NO SIGNAL: {why}"), Severity::Alarm));
    }
    match &i.worker.status {
        WorkerStatus::Failed {
            reason,
            retry_in_ms,
        } => lines.push(line(
            format!(
                "AI OFF: {reason} (retry in {:.1} s)",
                *retry_in_ms as f64 / 1e3
            ),
            Severity::Alarm,
        )),
        WorkerStatus::Loading => lines.push(line("AI: loading model".into(), Severity::Warning)),
        // The provider actually used, never the one asked for: a GPU that failed is said.
        WorkerStatus::Running => {
            if let Some(why) = &i.worker.provider_fallback {
                lines.push(line(format!("AI ON CPU ({why})"), Severity::Warning));
            }
        }
        _ => {}
    }
    let heartbeat_ms = heartbeat_age_ms(i.worker, i.now_us);
    if heartbeat_ms > HEARTBEAT_LIMIT_MS {
        lines.push(line(
            format!(
                "AI NOT RESPONDING for {:.1} s: overlay hidden",
                heartbeat_ms / 1e3
            ),
            Severity::Alarm,
        ));
    }
    if let OverlayState::Stale { age_ms, limit_ms } = i.overlay {
        lines.push(line(
            format!("OVERLAY HIDDEN: mask {age_ms:.0} ms old (limit {limit_ms:.0} ms)"),
            Severity::Warning,
        ));
    }
    if i.frozen {
        lines.push(line("FROZEN (F to resume)".into(), Severity::Warning));
    }
    if let Some(e) = i.recording_error {
        lines.push(line(format!("RECORDING FAILED: {e}"), Severity::Alarm));
    }
    lines
}

/// The AI's own line under the status, when nothing above already speaks for it.
pub fn ai_line(overlay: &OverlayState, status: &WorkerStatus) -> Option<StatusLine> {
    match (overlay, status) {
        (_, WorkerStatus::Failed { .. }) => None,
        (OverlayState::Drawn { age_ms }, _) => Some(line(
            format!("AI ON  {} ms behind  heartbeat ok", age_ms.round()),
            Severity::Good,
        )),
        (OverlayState::Off, _) => Some(line("AI OVERLAY OFF (Space)".into(), Severity::Info)),
        (OverlayState::Waiting, WorkerStatus::Running) => Some(line(
            "AI: waiting for the first mask".into(),
            Severity::Info,
        )),
        _ => None,
    }
}

/// Logs each change of the status (every new kind of line once), so the log tells the
/// same story as the screen.
#[derive(Default)]
pub struct StatusLog {
    last: Vec<String>,
}

impl StatusLog {
    /// Compares `lines` with the last ones and logs what is new.
    pub fn update(&mut self, lines: &[StatusLine]) {
        // The retry countdown changes every paint; it is not a new status.
        let texts: Vec<String> = lines
            .iter()
            .map(|l| {
                l.text
                    .split(" (retry")
                    .next()
                    .unwrap_or(&l.text)
                    .to_string()
            })
            .collect();
        let kinds = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|t| t.split(':').next().unwrap_or(t).to_string())
                .collect()
        };
        if kinds(&texts) != kinds(&self.last) {
            for t in texts.iter().filter(|t| !self.last.contains(t)) {
                tracing::warn!("status: {t}");
            }
            if texts.is_empty() {
                tracing::info!("status: all clear");
            }
            self.last = texts;
        }
    }
}

/// The facts the HUD shows.
pub struct HudInputs<'a> {
    /// Source name and size.
    pub source: (&'a str, u32, u32),
    /// The execution provider the model runs on (`cpu`, `cuda`, ...; empty before it loads).
    pub provider: &'a str,
    /// Capture rate.
    pub capture_fps: f64,
    /// Mask rate.
    pub ai_fps: f64,
    /// Timings of the last mask.
    pub timings: StageTimings,
    /// The overlay decision.
    pub overlay: &'a OverlayState,
    /// Video latency p50 and p99 over the recent window, ms.
    pub video_ms: (Option<f64>, Option<f64>),
    /// Annotation latency p50 and p99, ms.
    pub annotation_ms: (Option<f64>, Option<f64>),
    /// Frames the capture thread dropped, frames the AI skipped, capture errors.
    pub dropped: (u64, u64, u64),
    /// While recording: frames, masks, lost.
    pub recording: Option<(u64, u64, u64)>,
}

/// The HUD's text (monospace, one fact per line).
pub fn hud_text(h: &HudInputs) -> String {
    let p = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let age = match h.overlay {
        OverlayState::Drawn { age_ms } | OverlayState::Stale { age_ms, .. } => {
            format!("{age_ms:.0} ms")
        }
        _ => "-".into(),
    };
    let t = &h.timings;
    let mut s = format!(
        "{}  {}x{}\ncapture {:.1} fps   AI {:.1} fps on {}\ninference {:.1} ms (pre {:.1} model {:.1} post {:.1})\nmask age {}\nvideo latency p50/p99 {} / {} ms\nannotation latency p50/p99 {} / {} ms\ndropped: capture {}  AI skipped {}  errors {}",
        h.source.0,
        h.source.1,
        h.source.2,
        h.capture_fps,
        h.ai_fps,
        if h.provider.is_empty() {
            "-"
        } else {
            h.provider
        },
        t.total_ms(),
        t.pre_ms,
        t.infer_ms,
        t.post_ms,
        age,
        p(h.video_ms.0),
        p(h.video_ms.1),
        p(h.annotation_ms.0),
        p(h.annotation_ms.1),
        h.dropped.0,
        h.dropped.1,
        h.dropped.2,
    );
    if let Some((frames, masks, lost)) = h.recording {
        s.push_str(&format!(
            "\nREC {frames} frames, {masks} masks, {lost} lost"
        ));
    }
    s
}

/// The AI's mask rate, smoothed over about a second.
#[derive(Clone, Copy, Debug)]
pub struct AiRate {
    masks: u64,
    since_us: u64,
    /// Masks per second.
    pub fps: f64,
}

impl AiRate {
    /// Starts counting at `now_us`.
    pub fn new(now_us: u64) -> Self {
        Self {
            masks: 0,
            since_us: now_us,
            fps: 0.0,
        }
    }

    /// Updates from the worker's mask count, at most once a second.
    pub fn update(&mut self, masks: u64, now_us: u64) {
        let dt = now_us.saturating_sub(self.since_us) as f64 / 1e6;
        if dt >= 1.0 {
            let inst = masks.saturating_sub(self.masks) as f64 / dt;
            self.fps = if self.fps == 0.0 {
                inst
            } else {
                0.5 * self.fps + 0.5 * inst
            };
            self.masks = masks;
            self.since_us = now_us;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(status: WorkerStatus, heartbeat_us: u64) -> WorkerState {
        WorkerState {
            status,
            heartbeat_us,
            masks: 0,
            skipped: 0,
            last_timings: StageTimings::default(),
            over_budget: 0,
            loads: 1,
            classes: None,
            provider: "cpu",
            provider_fallback: None,
        }
    }

    fn texts(lines: &[StatusLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    const NOW: u64 = 10_000_000;

    #[test]
    fn all_clear_says_nothing_and_the_ai_line_says_how_far_behind() {
        let cap = CaptureStats {
            frames: 100,
            last_frame_at_us: NOW - 20_000,
            ..Default::default()
        };
        let w = worker(WorkerStatus::Running, NOW - 50_000);
        let overlay = OverlayState::Drawn { age_ms: 41.6 };
        let i = StatusInputs {
            live: true,
            now_us: NOW,
            capture: &cap,
            worker: &w,
            overlay: &overlay,
            frozen: false,
            recording_error: None,
            no_signal_ms: 500.0,
        };
        assert!(status_lines(&i).is_empty());
        let ai = ai_line(&overlay, &w.status).expect("ai line");
        assert_eq!(ai.text, "AI ON  42 ms behind  heartbeat ok");
        assert_eq!(ai.severity, Severity::Good);
    }

    #[test]
    fn every_fault_has_its_line_and_a_failed_ai_has_no_ai_on_line() {
        let cap = CaptureStats {
            frames: 100,
            last_frame_at_us: NOW - 2_000_000,
            last_error: Some("/dev/video0: NO SIGNAL: device lost".into()),
            ..Default::default()
        };
        let w = worker(
            WorkerStatus::Failed {
                reason: "model m.onnx: bad file".into(),
                retry_in_ms: 2000,
            },
            NOW - 3_000_000,
        );
        let overlay = OverlayState::Stale {
            age_ms: 612.0,
            limit_ms: 250.0,
        };
        let i = StatusInputs {
            live: true,
            now_us: NOW,
            capture: &cap,
            worker: &w,
            overlay: &overlay,
            frozen: true,
            recording_error: Some("disk full"),
            no_signal_ms: 500.0,
        };
        let lines = status_lines(&i);
        assert_eq!(
            texts(&lines),
            [
                "NO SIGNAL: device lost",
                "AI OFF: model m.onnx: bad file (retry in 2.0 s)",
                "AI NOT RESPONDING for 3.0 s: overlay hidden",
                "OVERLAY HIDDEN: mask 612 ms old (limit 250 ms)",
                "FROZEN (F to resume)",
                "RECORDING FAILED: disk full",
            ]
        );
        assert_eq!(lines[0].severity, Severity::Alarm);
        assert_eq!(lines[3].severity, Severity::Warning);
        assert_eq!(ai_line(&overlay, &w.status), None);
    }

    #[test]
    fn a_provider_fallback_is_on_screen() {
        let cap = CaptureStats {
            frames: 10,
            last_frame_at_us: NOW,
            ..Default::default()
        };
        let mut w = worker(WorkerStatus::Running, NOW);
        w.provider_fallback = Some("CUDA unavailable: libcublasLt.so.13 not found".into());
        let i = StatusInputs {
            live: true,
            now_us: NOW,
            capture: &cap,
            worker: &w,
            overlay: &OverlayState::Drawn { age_ms: 20.0 },
            frozen: false,
            recording_error: None,
            no_signal_ms: 500.0,
        };
        assert_eq!(
            texts(&status_lines(&i)),
            ["AI ON CPU (CUDA unavailable: libcublasLt.so.13 not found)"]
        );
    }

    #[test]
    fn a_review_is_never_no_signal_and_an_ended_video_says_so() {
        let cap = CaptureStats {
            frames: 10,
            last_frame_at_us: 0,
            ended: Some("end of stream".into()),
            ..Default::default()
        };
        let w = worker(WorkerStatus::Loading, NOW);
        let i = StatusInputs {
            live: false,
            now_us: NOW,
            capture: &cap,
            worker: &w,
            overlay: &OverlayState::Waiting,
            frozen: false,
            recording_error: None,
            no_signal_ms: 500.0,
        };
        assert_eq!(
            texts(&status_lines(&i)),
            ["VIDEO ENDED: end of stream", "AI: loading model"]
        );
        let review = CaptureStats {
            ended: None,
            ..cap.clone()
        };
        let i = StatusInputs {
            capture: &review,
            ..i
        };
        assert_eq!(texts(&status_lines(&i)), ["AI: loading model"]);
    }

    #[test]
    fn the_hud_gives_rates_timings_latencies_and_the_recording() {
        let h = HudInputs {
            source: ("synthetic:3", 640, 360),
            provider: "cpu",
            capture_fps: 29.97,
            ai_fps: 12.0,
            timings: StageTimings {
                pre_ms: 1.0,
                infer_ms: 8.0,
                post_ms: 0.5,
            },
            overlay: &OverlayState::Drawn { age_ms: 33.3 },
            video_ms: (Some(8.26), None),
            annotation_ms: (None, None),
            dropped: (1, 2, 3),
            recording: Some((10, 4, 0)),
        };
        let s = hud_text(&h);
        assert!(
            s.starts_with("synthetic:3  640x360\ncapture 30.0 fps   AI 12.0 fps on cpu\n"),
            "{s}"
        );
        assert!(
            s.contains("inference 9.5 ms (pre 1.0 model 8.0 post 0.5)"),
            "{s}"
        );
        assert!(
            s.contains("mask age 33 ms\nvideo latency p50/p99 8.3 / - ms"),
            "{s}"
        );
        assert!(
            s.contains("dropped: capture 1  AI skipped 2  errors 3"),
            "{s}"
        );
        assert!(s.ends_with("\nREC 10 frames, 4 masks, 0 lost"), "{s}");
    }

    #[test]
    fn the_ai_rate_updates_once_a_second_and_smooths() {
        let mut r = AiRate::new(0);
        r.update(5, 500_000);
        assert_eq!(r.fps, 0.0);
        r.update(10, 1_000_000);
        assert_eq!(r.fps, 10.0);
        r.update(30, 2_000_000);
        assert_eq!(r.fps, 15.0);
    }
}
