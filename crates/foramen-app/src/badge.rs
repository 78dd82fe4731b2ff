//! The status badge: exactly one state of the overlay, always true, read from across
//! the room, plus the few notes that qualify it (frozen, video ended, AI on the CPU).
//! Pure functions of the session's counters, so each state is tested without a window.

use foramen_pipeline::live::CaptureStats;
use foramen_segment::{WorkerState, WorkerStatus};

use crate::overlay::OverlayState;

/// How loud a badge or note is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Something is wrong now (red): no signal, AI off or not responding, recording failed.
    Alarm,
    /// Worth knowing (amber): stale masks, loading, frozen, AI on the CPU.
    Warning,
    /// Masks are on screen now (green). Nothing else is ever green.
    Good,
    /// Neutral (grey): the overlay switched off by the staff.
    Info,
}

/// The one state the badge shows, most serious first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadgeKind {
    /// A live source has gone silent.
    NoSignal,
    /// The model is not running (failed to load or failed; retrying).
    AiOff,
    /// The worker's heartbeat stopped.
    NotResponding,
    /// The newest mask is older than the limit.
    Stale,
    /// Nothing is drawn, for any other reason (switched off, all classes hidden,
    /// loading, no mask yet).
    OverlayOff,
    /// Masks are drawn now.
    Drawing,
}

impl BadgeKind {
    /// A fault: the legend greys and the video is framed in the badge's colour.
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            Self::NoSignal | Self::AiOff | Self::NotResponding | Self::Stale
        )
    }
}

/// The badge: a title in capitals and one line of plain words under it.
#[derive(Clone, Debug, PartialEq)]
pub struct Badge {
    /// Its state.
    pub kind: BadgeKind,
    /// `AI ON`, `OVERLAY OFF`, `AI PAUSED: STALE`, `AI OFF`, `AI NOT RESPONDING`, `NO SIGNAL`.
    pub title: &'static str,
    /// What is drawn, or why not; never a path (those go to the log).
    pub detail: String,
    /// Its colour.
    pub severity: Severity,
}

/// A note under the badge.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Stable title (`FROZEN`, `VIDEO ENDED`, `AI ON CPU`).
    pub title: &'static str,
    /// The specifics.
    pub detail: String,
    /// Its colour.
    pub severity: Severity,
}

/// The facts the badge is made of.
pub struct BadgeInputs<'a> {
    /// Now, [`foramen_core::clock_us`].
    pub now_us: u64,
    /// Capture counters.
    pub capture: &'a CaptureStats,
    /// The worker's state.
    pub worker: &'a WorkerState,
    /// The overlay decision for this paint.
    pub overlay: &'a OverlayState,
    /// A live source has been silent longer than `[capture].no_signal_ms`.
    pub no_signal: bool,
    /// The classes that leave a mark with the current view (empty: nothing would show).
    pub drawn_classes: &'a [String],
}

/// Silence longer than this from the worker means it is not responding.
pub const HEARTBEAT_LIMIT_MS: f64 = 1000.0;

/// Milliseconds since the worker's last heartbeat.
pub fn heartbeat_age_ms(worker: &WorkerState, now_us: u64) -> f64 {
    now_us.saturating_sub(worker.heartbeat_us) as f64 / 1e3
}

fn badge_of(kind: BadgeKind, detail: String) -> Badge {
    let (title, severity) = match kind {
        BadgeKind::NoSignal => ("NO SIGNAL", Severity::Alarm),
        BadgeKind::AiOff => ("AI OFF", Severity::Alarm),
        BadgeKind::NotResponding => ("AI NOT RESPONDING", Severity::Alarm),
        BadgeKind::Stale => ("AI PAUSED: STALE", Severity::Warning),
        BadgeKind::OverlayOff => ("OVERLAY OFF", Severity::Warning),
        BadgeKind::Drawing => ("AI ON", Severity::Good),
    };
    Badge {
        kind,
        title,
        detail,
        severity,
    }
}

/// The badge for this paint: the most serious state that holds.
pub fn badge(i: &BadgeInputs) -> Badge {
    let w = i.worker;
    if i.no_signal {
        let why = i.capture.last_error.clone().map_or_else(
            || "no frames from the video source".to_string(),
            // The source's own "NO SIGNAL: why" is shown once; paths stay in the log.
            |e| e.rsplit("NO SIGNAL: ").next().unwrap_or(&e).to_string(),
        );
        return badge_of(BadgeKind::NoSignal, why);
    }
    if let WorkerStatus::Failed { retry_in_ms, .. } = &w.status {
        let what = if w.masks == 0 {
            "model not loaded"
        } else {
            "the AI stopped after an error"
        };
        let retry_s = *retry_in_ms as f64 / 1e3;
        let detail = format!("{what}, retrying in {retry_s:.0} s; video only");
        return badge_of(BadgeKind::AiOff, detail);
    }
    let heartbeat_ms = heartbeat_age_ms(w, i.now_us);
    if heartbeat_ms > HEARTBEAT_LIMIT_MS && !matches!(w.status, WorkerStatus::Stopped) {
        let detail = format!("no answer for {:.0} s; video only", heartbeat_ms / 1e3);
        return badge_of(BadgeKind::NotResponding, detail);
    }
    match i.overlay {
        OverlayState::NoSignal => badge_of(BadgeKind::NoSignal, "no live picture".into()),
        OverlayState::Stale { age_ms, limit_ms } => badge_of(
            BadgeKind::Stale,
            format!("mask {age_ms:.0} ms old (limit {limit_ms:.0} ms): overlay hidden"),
        ),
        OverlayState::Off => {
            let mut b = badge_of(BadgeKind::OverlayOff, "switched off (Space)".into());
            b.severity = Severity::Info;
            b
        }
        OverlayState::Waiting => {
            let why = match w.status {
                WorkerStatus::Loading => "AI loading the model",
                _ => "waiting for the first mask",
            };
            badge_of(BadgeKind::OverlayOff, why.into())
        }
        OverlayState::Drawn { .. } if i.drawn_classes.is_empty() => {
            let mut b = badge_of(BadgeKind::OverlayOff, "every class hidden".into());
            b.severity = Severity::Info;
            b
        }
        OverlayState::Drawn { age_ms } => badge_of(
            BadgeKind::Drawing,
            format!("{}  ({age_ms:.0} ms behind)", i.drawn_classes.join(", ")),
        ),
    }
}

/// What qualifies the badge: a frozen picture, an ended video, the AI on the CPU.
pub fn notes(i: &BadgeInputs, frozen: bool) -> Vec<Note> {
    let mut notes = vec![];
    if frozen {
        notes.push(Note {
            title: "FROZEN",
            detail: "F to resume".into(),
            severity: Severity::Warning,
        });
    }
    if let Some(end) = &i.capture.ended {
        notes.push(Note {
            title: "VIDEO ENDED",
            detail: end.clone(),
            severity: Severity::Warning,
        });
    }
    // The provider actually used, never the one asked for: a GPU that failed is said.
    if let (WorkerStatus::Running, Some(why)) = (&i.worker.status, &i.worker.provider_fallback) {
        notes.push(Note {
            title: "AI ON CPU",
            detail: why.clone(),
            severity: Severity::Warning,
        });
    }
    notes
}

/// Logs each change of the screen's state once: the badge's kind, notes coming and
/// going, and the recording failing; with the full reasons (paths included) that the
/// screen leaves out.
#[derive(Default)]
pub struct StatusLog {
    last: Vec<&'static str>,
}

impl StatusLog {
    /// Compares this paint's titles with the last paint's and logs what changed.
    pub fn update(
        &mut self,
        badge: &Badge,
        notes: &[Note],
        worker: &WorkerState,
        rec: Option<&str>,
    ) {
        let mut titles = vec![badge.title];
        titles.extend(notes.iter().map(|n| n.title));
        titles.extend(rec.map(|_| "RECORDING FAILED"));
        if titles == self.last {
            return;
        }
        if !self.last.contains(&badge.title) {
            let why = match &worker.status {
                WorkerStatus::Failed { reason, .. } => format!(" ({reason})"),
                _ => String::new(),
            };
            match badge.severity {
                Severity::Alarm | Severity::Warning => {
                    tracing::warn!("status: {}: {}{why}", badge.title, badge.detail)
                }
                _ => tracing::info!("status: {}: {}", badge.title, badge.detail),
            }
        }
        for n in notes.iter().filter(|n| !self.last.contains(&n.title)) {
            tracing::warn!("status: {}: {}", n.title, n.detail);
        }
        if let (Some(e), false) = (rec, self.last.contains(&"RECORDING FAILED")) {
            tracing::error!("status: RECORDING FAILED: {e}");
        }
        self.last = titles;
    }
}

#[cfg(test)]
mod tests;
