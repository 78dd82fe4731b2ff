//! The capture check: opens the source as `foramen live` does
//! ([`open_live`](crate::live::compose::open_live)), reads frames for a moment and
//! compares the delivered size and rate with what is required.
//!
//! A device (`/dev/video*`) is opened with `[capture]`'s width, height and rate, so those
//! are required (0 in the config: anything the driver gives). Any other source
//! (`synthetic:...`, a file, a folder) is played at its own size and rate, which
//! `[capture]` does not change, so its own are required: the check then shows that it
//! opens and keeps its pace on this machine.

use std::time::{Duration, Instant};

use foramen_capture::{CaptureError, SourceInfo};
use foramen_core::config::CaptureConfig;
use foramen_core::{Config, Frame};

use super::{CheckItem, CheckLimits, within};
use crate::live::compose::{is_device, open_live};

/// The delivered rate may be this fraction of the required one (a 30 fps card measured
/// at 29.97 over a second and a half passes; 27 fps does not).
pub const RATE_TOLERANCE: f64 = 0.95;

/// Extra time over the opening and measuring limits before the check gives up on a
/// source that blocks inside a read.
const READ_GRACE: Duration = Duration::from_secs(2);

/// What the capture must deliver; 0 means anything.
#[derive(Clone, Debug, PartialEq)]
pub struct Required {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// Where the requirement comes from: `configured` or `the source's own`.
    pub from: &'static str,
}

impl Required {
    /// `[capture]`'s size and rate for a device; the source's own otherwise.
    pub fn for_source(cap: &CaptureConfig, input: &str, info: &SourceInfo) -> Self {
        if is_device(input) {
            Self {
                width: cap.width,
                height: cap.height,
                fps: cap.fps,
                from: "configured",
            }
        } else {
            Self {
                width: info.width,
                height: info.height,
                fps: info.fps,
                from: "the source's own",
            }
        }
    }

    /// `1280x720 at 30 fps`, `any size at any rate`.
    pub fn describe(&self) -> String {
        let size = if self.width == 0 || self.height == 0 {
            "any size".to_string()
        } else {
            format!("{}x{}", self.width, self.height)
        };
        let rate = if self.fps > 0.0 {
            format!("{} fps", self.fps)
        } else {
            "any rate".to_string()
        };
        format!("{size} at {rate}")
    }
}

/// What the source delivered while it was measured.
#[derive(Clone, Debug, Default)]
pub struct Delivered {
    /// The source's name (device, file, `synthetic:...`).
    pub name: String,
    /// Width of the frames (the last one's, if it changed).
    pub width: u32,
    /// Height of the frames.
    pub height: u32,
    /// Frames received.
    pub frames: u64,
    /// Measured rate, first to last frame; `None` with fewer than two frames.
    pub fps: Option<f64>,
    /// Frames the source reported lost.
    pub errors: u64,
    /// The last such report.
    pub last_error: Option<String>,
    /// The stream ended during the measurement (a short file).
    pub ended: bool,
    /// Frames of more than one size arrived.
    pub size_changed: bool,
    /// The last frame (inference is timed on it).
    pub frame: Option<Frame>,
    /// The rate required of the source (0: none).
    pub required_fps: f64,
}

/// Opens `input` as `foramen live` does, reads for `limits.capture_window` from the first
/// frame and judges what arrived. The measurement is returned with the item when the
/// source opened.
pub fn check_capture(
    cfg: &Config,
    input: &str,
    limits: &CheckLimits,
) -> (CheckItem, Option<Delivered>) {
    let (cap, owned) = (cfg.capture.clone(), input.to_string());
    let (window, open) = (limits.capture_window, limits.capture_open);
    let limit = open + window + READ_GRACE;
    match within("capture", limit, move || {
        measure(&owned, &cap, window, open)
    }) {
        Err(e) => (CheckItem::fail("capture", format!("{input}: {e}")), None),
        Ok(Err(e)) => (CheckItem::fail("capture", e.to_string()), None),
        Ok(Ok((required, delivered))) => (judge_capture(&required, &delivered), Some(delivered)),
    }
}

/// Reads frames from `input` until `window` has passed since the first one, the stream
/// ends, or no frame came within `open` of opening.
fn measure(
    input: &str,
    cap: &CaptureConfig,
    window: Duration,
    open: Duration,
) -> Result<(Required, Delivered), CaptureError> {
    let mut src = open_live(input, cap)?;
    let required = Required::for_source(cap, input, src.info());
    let mut d = Delivered {
        name: src.info().name.clone(),
        required_fps: required.fps,
        ..Default::default()
    };
    let opened = Instant::now();
    let mut span: Option<(Instant, Instant)> = None;
    loop {
        match span {
            Some((first, _)) if first.elapsed() >= window => break,
            None if opened.elapsed() >= open => break,
            _ => {}
        }
        match src.next_frame() {
            Ok(Some(f)) => {
                let now = Instant::now();
                span = Some((span.map_or(now, |s| s.0), now));
                if d.frames > 0 && (f.width, f.height) != (d.width, d.height) {
                    d.size_changed = true;
                }
                (d.width, d.height) = (f.width, f.height);
                d.frames += 1;
                d.frame = Some(f);
            }
            Ok(None) => {
                d.ended = true;
                break;
            }
            Err(e) => {
                d.errors += 1;
                d.last_error = Some(e.to_string());
                // A device that fails at once must not be asked again in a busy loop.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    if let Some((first, last)) = span.filter(|_| d.frames >= 2) {
        let s = (last - first).as_secs_f64();
        d.fps = (s > 0.0).then(|| (d.frames - 1) as f64 / s);
    }
    Ok((required, d))
}

/// Passes when frames arrived at the required size (where one is required) and at
/// least [`RATE_TOLERANCE`] of the required rate (where one is required).
pub fn judge_capture(required: &Required, d: &Delivered) -> CheckItem {
    if d.frames == 0 {
        let why = d.last_error.as_deref().map_or_else(
            || if d.ended { ": the stream is empty" } else { "" }.to_string(),
            |e| format!(": {e}"),
        );
        return CheckItem::fail("capture", format!("no frame from {}{why}", d.name));
    }
    let rate = d.fps.map_or_else(
        || "an unmeasurable rate".to_string(),
        |f| format!("{f:.1} fps"),
    );
    let mut problems = Vec::new();
    if required.width > 0
        && required.height > 0
        && (d.width, d.height) != (required.width, required.height)
    {
        problems.push("wrong size".to_string());
    }
    if d.size_changed {
        problems.push("the size changed while measured".to_string());
    }
    match d.fps {
        Some(f) if required.fps > 0.0 && f < required.fps * RATE_TOLERANCE => {
            problems.push(format!("below {:.0} % of the rate", RATE_TOLERANCE * 100.0))
        }
        None if required.fps > 0.0 => {
            problems.push(format!("too few frames ({}) to measure the rate", d.frames));
        }
        _ => {}
    }
    let mut detail = format!(
        "{} delivers {}x{} at {rate} ({} {})",
        d.name,
        d.width,
        d.height,
        required.from,
        required.describe()
    );
    if d.errors > 0 {
        let last = d.last_error.as_deref().unwrap_or_default();
        detail.push_str(&format!("; {} frame errors, last: {last}", d.errors));
    }
    if d.ended {
        detail.push_str(&format!("; the stream ended after {} frames", d.frames));
    }
    if problems.is_empty() {
        CheckItem::pass("capture", detail)
    } else {
        CheckItem::fail("capture", format!("{}: {detail}", problems.join(", ")))
    }
}
