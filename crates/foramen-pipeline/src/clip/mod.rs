//! A span of a recording as a video file (`foramen clip`, and the window's export): the
//! original frames with the recorded masks drawn as the window draws them (the CPU
//! reference compositor with the configured style) and a small burned-in caption (the
//! class legend, the time in the recording, what the AI showed, the research notice).
//!
//! Streaming: `frames.csv` rows and `masks.bin` records are walked together in file
//! order (a row's mask is always at or before it in `masks.bin`), keeping only the
//! current mask, and each segment is decoded sequentially; memory does not grow with the
//! recording or the span.
//!
//! Rules (as the window's): a frame whose mask is older than
//! `[inference].max_mask_age_ms` at capture is drawn clean (`AI: stale`); one whose mask
//! cannot be read back (`masks.bin` cut by a crash, damaged) too (`AI: no mask`). Frames
//! a segment cut by a crash cannot give are left out and counted. Nothing of
//! `session.toml` but the classes and the frame rate is used: the clip carries no source
//! name and no start time.

mod caption;
mod paint;
mod stills;
mod walk;

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use foramen_capture::{CaptureError, VideoEncoder};
use foramen_core::config::{OverlayConfig, OverlayMode};
use foramen_core::{ClassInfo, ClassSet, Config, Frame, Mask};
use foramen_data::recording::{
    FrameRecord, FrameRows, RecordingError, open_masks, read_session_info,
};
use foramen_data::timeline::SessionInfo;
use foramen_eval::plot::PlotError;

pub use caption::{AiState, RESEARCH_NOTICE, caption_band_height};
use paint::Painter;
pub use stills::{Still, stills};
use walk::{MaskWalk, Segments};

/// Why a clip could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// A file of the recording could not be read.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The span asked for does not select frames of the recording.
    #[error("{0}")]
    Span(String),
    /// Not one frame of the span could be decoded.
    #[error("{}: none of the span's {rows} frames could be decoded from its video segments{why}", dir.display())]
    NothingDecoded {
        /// The recording.
        dir: PathBuf,
        /// Rows in the span.
        rows: u64,
        /// `: the first segment's error`, or empty.
        why: String,
    },
    /// The clip could not be written.
    #[error("writing the clip")]
    Encode(#[source] CaptureError),
    /// The caption could not be rendered.
    #[error("rendering the caption")]
    Caption(#[source] PlotError),
    /// The caller asked to stop (the clip is removed).
    #[error("clip cancelled")]
    Cancelled,
}

/// Seconds from `75`, `75.5`, `1:15`, `1:15.5` or `1:01:15.5` (hours, minutes, seconds).
pub fn parse_time(s: &str) -> Result<f64, String> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "{s:?} is not a time: give seconds (75, 75.5) or m:ss (1:15, 1:15.5)"
        ));
    }
    let (last, whole) = parts.split_last().ok_or("empty time")?;
    let secs: f64 = last
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0 && !last.starts_with('+'))
        .ok_or_else(|| format!("{s:?}: {last:?} is not a number of seconds (0 or more)"))?;
    if !whole.is_empty() && secs >= 60.0 {
        return Err(format!("{s:?}: the seconds after a ':' must be below 60"));
    }
    let mut total = 0.0;
    for (i, p) in whole.iter().enumerate() {
        let v: u64 = p
            .parse()
            .map_err(|_| format!("{s:?}: {p:?} is not a whole number"))?;
        if i > 0 && v >= 60 {
            return Err(format!("{s:?}: the minutes after a ':' must be below 60"));
        }
        total = total * 60.0 + v as f64;
    }
    Ok(total * 60.0 + secs)
}

/// `mm:ss.s` (tenths, truncated as timecodes are; minutes past 59 keep counting).
pub fn format_time(seconds: f64) -> String {
    let tenths = (seconds.max(0.0) * 10.0 + 1e-6).floor() as u64;
    format!(
        "{:02}:{:02}.{}",
        tenths / 600,
        tenths % 600 / 10,
        tenths % 10
    )
}

/// `fill`, `contour` or `both` (`--mode`).
pub fn parse_mode(s: &str) -> Result<OverlayMode, String> {
    match s {
        "fill" => Ok(OverlayMode::Fill),
        "contour" => Ok(OverlayMode::Contour),
        "both" => Ok(OverlayMode::Both),
        _ => Err(format!("{s:?}: the mode is fill, contour or both")),
    }
}

/// How a clip is drawn.
#[derive(Clone, Debug)]
pub struct ClipSettings {
    /// The overlay's style, as `[overlay]` gives it to the window.
    pub overlay: OverlayConfig,
    /// Draw the recorded masks (else the raw frames with the caption).
    pub draw_masks: bool,
    /// `[inference].max_mask_age_ms`: older masks are not drawn.
    pub max_mask_age_ms: f64,
}

impl ClipSettings {
    /// The window's settings from `cfg`, masks drawn.
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            overlay: cfg.overlay.clone(),
            draw_masks: true,
            max_mask_age_ms: cfg.inference.max_mask_age_ms,
        }
    }
}

/// A span of a recording resolved to its `frames.csv` rows.
#[derive(Clone, Debug, PartialEq)]
pub struct RowSpan {
    /// Complete rows of `frames.csv` (0 = the first after the header) in the span.
    pub rows: Range<u64>,
    /// Time of the span's first and last frame, seconds since the recording's first.
    pub first_s: f64,
    /// See `first_s`.
    pub last_s: f64,
    /// Time of the recording's last frame.
    pub duration_s: f64,
}

/// The rows of `DIR/frames.csv` captured in `[from_s, to_s)` seconds since the
/// recording's first frame (streamed). A span that ends past the recording is cut to it;
/// one with its end not after its start, starting past the recording's end, or with no
/// frame (a gap) is an error saying so.
pub fn resolve_span(dir: &Path, from_s: f64, to_s: f64) -> Result<RowSpan, ClipError> {
    if to_s <= from_s {
        return Err(ClipError::Span(format!(
            "the end ({}) is not after the start ({})",
            format_time(to_s),
            format_time(from_s)
        )));
    }
    let (mut t0, mut n, mut duration) = (None, 0u64, 0.0f64);
    let mut hit: Option<(u64, u64, f64, f64)> = None;
    for (i, row) in FrameRows::open(&dir.join("frames.csv"))?.enumerate() {
        let at = row?.captured_at_us;
        let t = at.saturating_sub(*t0.get_or_insert(at)) as f64 / 1e6;
        duration = duration.max(t);
        n += 1;
        if t >= from_s && t < to_s {
            let h = hit.get_or_insert((i as u64, i as u64, t, t));
            (h.1, h.3) = (i as u64, t);
        }
    }
    let Some((first, last, first_s, last_s)) = hit else {
        return Err(ClipError::Span(if n == 0 {
            format!(
                "{}: no frame was recorded",
                dir.join("frames.csv").display()
            )
        } else if from_s > duration {
            format!(
                "the span starts at {} but the recording ends at {} ({n} frames)",
                format_time(from_s),
                format_time(duration)
            )
        } else {
            format!(
                "no frame was recorded from {} to {} (a gap in the recording)",
                format_time(from_s),
                format_time(to_s)
            )
        }));
    };
    Ok(RowSpan {
        rows: first..last + 1,
        first_s,
        last_s,
        duration_s: duration,
    })
}

/// What a clip holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClipSummary {
    /// The clip.
    pub out: PathBuf,
    /// The `frames.csv` rows it covers.
    pub rows: Range<u64>,
    /// Time in the recording of its first and last frame, seconds.
    pub first_s: f64,
    /// See `first_s`.
    pub last_s: f64,
    /// Frames written.
    pub frames: u64,
    /// Of those: mask drawn, stale, unreadable, none at capture (see [`AiState`]).
    pub drawn: u64,
    /// See `drawn`.
    pub stale: u64,
    /// See `drawn`.
    pub unreadable: u64,
    /// See `drawn`.
    pub no_mask: u64,
    /// Rows of the span whose frame could not be decoded (a segment cut by a crash).
    pub undecodable: u64,
    /// Frames left out because their size differs from the clip's first frame (the
    /// source changed its resolution while recording).
    pub other_size: u64,
    /// The codec written.
    pub codec: &'static str,
}

impl fmt::Display for ClipSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} frames, {} to {} of the recording ({}); mask drawn on {}, stale on {}, \
             unreadable on {}, none on {}",
            self.out.display(),
            self.frames,
            format_time(self.first_s),
            format_time(self.last_s),
            self.codec,
            self.drawn,
            self.stale,
            self.unreadable,
            self.no_mask
        )?;
        if self.undecodable > 0 {
            write!(
                f,
                "; {} frame(s) of the span could not be decoded",
                self.undecodable
            )?;
        }
        if self.other_size > 0 {
            write!(f, "; {} frame(s) of another size left out", self.other_size)?;
        }
        Ok(())
    }
}

/// Writes the span `[from_s, to_s)` seconds of recording `dir` to `out`
/// ([`resolve_span`] then [`clip_rows`]).
pub fn clip_span(
    dir: &Path,
    from_s: f64,
    to_s: f64,
    out: &Path,
    settings: &ClipSettings,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<ClipSummary, ClipError> {
    let span = resolve_span(dir, from_s, to_s)?;
    clip_rows(dir, span.rows, out, settings, progress)
}

/// Writes rows `rows` of recording `dir`'s `frames.csv` to the video `out` (MP4 at the
/// session's rate): each frame decoded from its segment, its recorded mask drawn by the
/// compositor when the window would have drawn it, and the caption. `progress(done,
/// total)` is called after each row; returning `false` stops and removes the clip. The
/// caller checks that `out` is outside the recording.
pub fn clip_rows(
    dir: &Path,
    rows: Range<u64>,
    out: &Path,
    settings: &ClipSettings,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<ClipSummary, ClipError> {
    let session = read_session_info(dir)?;
    let mut writer = ClipWriter::new(out, &session, settings);
    writer.summary.rows = rows.clone();
    let span = rows.clone();
    let result = walk(dir, rows, settings, &mut writer, progress).and_then(|read| {
        if read > span.start {
            return Ok(());
        }
        Err(ClipError::Span(format!(
            "rows {}..{} are not in {}: it has {read} complete rows",
            span.start,
            span.end,
            dir.join("frames.csv").display()
        )))
    });
    let (summary, encoder) = (writer.summary, writer.encoder);
    let created = encoder.is_some();
    let finished = match (result, encoder) {
        (Ok(()), Some(enc)) => enc.finish().map_err(ClipError::Encode),
        (Ok(()), None) => Err(ClipError::NothingDecoded {
            dir: dir.to_path_buf(),
            rows: summary.rows.end - summary.rows.start,
            why: writer
                .first_error
                .map_or(String::new(), |e| format!(": {e}")),
        }),
        (Err(e), enc) => {
            drop(enc);
            Err(e)
        }
    };
    if finished.is_err() && created {
        // A clip cut short would pass for the whole span.
        let _ = std::fs::remove_file(out);
    }
    finished.map(|()| summary)
}

/// The walk over `frames.csv` up to the span's end, beside `masks.bin` and the segments,
/// handing the rows of `rows` that `sink` wants to it; the number of rows read.
pub(crate) fn walk(
    dir: &Path,
    rows: Range<u64>,
    settings: &ClipSettings,
    sink: &mut dyn RowSink,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<u64, ClipError> {
    let bin = dir.join("masks.bin");
    let mut masks = MaskWalk::new(open_masks(&bin).ok());
    let mut video = Segments::new(dir);
    let total = rows.end.saturating_sub(rows.start);
    let (mut t0, mut place, mut read) = (None, (u64::MAX, 0u64), 0);
    for (i, row) in FrameRows::open(&dir.join("frames.csv"))?.enumerate() {
        let (i, row) = (i as u64, row?);
        if i >= rows.end {
            break;
        }
        read = i + 1;
        let t0 = *t0.get_or_insert(row.captured_at_us);
        // Frames of a segment are its rows in order: the row's place in its segment.
        place = if place.0 == row.segment {
            (row.segment, place.1 + 1)
        } else {
            (row.segment, 0)
        };
        if i < rows.start || !sink.wants(i) {
            continue;
        }
        let state = ai_state(&row, settings, &mut masks);
        match video.frame(place.0, place.1) {
            Ok(frame) => {
                let time = row.captured_at_us.saturating_sub(t0) as f64 / 1e6;
                sink.take(i, &frame, time, state, masks.current())?;
            }
            Err(e) => sink.undecodable(i, e),
        }
        if !progress(i + 1 - rows.start, total) {
            return Err(ClipError::Cancelled);
        }
    }
    Ok(read)
}

/// What the caption says of `row` (and whether [`MaskWalk::current`] is drawn): the
/// window's age rule on the age `frames.csv` recorded.
fn ai_state<R: Read + std::io::Seek>(
    row: &FrameRecord,
    settings: &ClipSettings,
    masks: &mut MaskWalk<R>,
) -> AiState {
    if !settings.draw_masks {
        return AiState::OverlayOff;
    }
    let Some(id) = row.mask_frame else {
        return AiState::NoMask;
    };
    let Some(m) = masks.find(id) else {
        return AiState::Unreadable;
    };
    let age_ms = row
        .mask_age_ms
        .unwrap_or_else(|| row.captured_at_us.saturating_sub(m.source_captured_at_us) as f64 / 1e3);
    if age_ms > settings.max_mask_age_ms {
        AiState::Stale
    } else {
        AiState::Drawn
    }
}

/// Where the walk hands the rows it was asked for.
pub(crate) trait RowSink {
    /// Whether row `i` (0-based) is wanted; rows not wanted are not decoded.
    fn wants(&self, i: u64) -> bool;
    /// Row `i`'s frame, `time_s` into the recording, what the AI showed and its mask.
    fn take(
        &mut self,
        i: u64,
        frame: &Frame,
        time_s: f64,
        state: AiState,
        mask: Option<&Mask>,
    ) -> Result<(), ClipError>;
    /// Row `i`'s frame could not be decoded, for this reason.
    fn undecodable(&mut self, i: u64, why: String);
}

/// The encoder side: paints and writes the frames.
struct ClipWriter {
    out: PathBuf,
    fps: f64,
    painter: Painter,
    encoder: Option<VideoEncoder>,
    summary: ClipSummary,
    /// Why the first undecodable frame could not be had.
    first_error: Option<String>,
}

impl ClipWriter {
    fn new(out: &Path, session: &SessionInfo, settings: &ClipSettings) -> Self {
        Self {
            out: out.to_path_buf(),
            fps: if session.fps.is_finite() && session.fps > 0.0 {
                session.fps
            } else {
                25.0
            },
            painter: Painter::new(session, settings),
            encoder: None,
            summary: ClipSummary {
                out: out.to_path_buf(),
                ..ClipSummary::default()
            },
            first_error: None,
        }
    }
}

impl RowSink for ClipWriter {
    fn wants(&self, i: u64) -> bool {
        self.summary.rows.contains(&i)
    }

    /// Paints and writes one frame; the first one sets the clip's size.
    fn take(
        &mut self,
        _i: u64,
        frame: &Frame,
        time_s: f64,
        state: AiState,
        mask: Option<&Mask>,
    ) -> Result<(), ClipError> {
        if self.encoder.is_none() {
            let (w, h) = (frame.width, frame.height);
            let enc = VideoEncoder::create(&self.out, w, h, self.fps).map_err(ClipError::Encode)?;
            self.summary.codec = enc.codec();
            self.encoder = Some(enc);
            self.summary.first_s = time_s;
        }
        let Some(painted) = self.painter.paint(frame, time_s, state, mask)? else {
            self.summary.other_size += 1;
            return Ok(());
        };
        if let Some(enc) = self.encoder.as_mut() {
            enc.write_rgb(painted).map_err(ClipError::Encode)?;
        }
        let s = &mut self.summary;
        s.frames += 1;
        s.last_s = time_s;
        match state {
            AiState::Drawn => s.drawn += 1,
            AiState::Stale => s.stale += 1,
            AiState::Unreadable => s.unreadable += 1,
            AiState::NoMask => s.no_mask += 1,
            AiState::OverlayOff => {}
        }
        Ok(())
    }

    fn undecodable(&mut self, _i: u64, why: String) {
        self.summary.undecodable += 1;
        self.first_error.get_or_insert(why);
    }
}

/// The recording's classes in the theatre's colours (as the window shows them); when
/// `session.toml` names none (a recording started before the model loaded, whose header
/// could not be rewritten) or an invalid list, `class 0` ... `class 7`.
pub fn session_classes(session: &SessionInfo) -> ClassSet {
    let named = |names: &[String]| {
        let classes = names
            .iter()
            .enumerate()
            .map(|(i, name)| ClassInfo {
                index: i as u8,
                name: name.clone(),
                color: session
                    .colors
                    .get(i)
                    .copied()
                    .unwrap_or(GENERIC_COLORS[i % 8]),
            })
            .collect();
        ClassSet::new(classes, foramen_core::classes::DEFAULT_IGNORE_INDEX)
    };
    named(&session.classes)
        .unwrap_or_else(|_| {
            // No (valid) class list: say nothing the recording does not, only indices.
            let generic: Vec<String> = (0..8).map(|k| format!("class {k}")).collect();
            named(&generic).unwrap_or_else(|_| ClassSet::lumbar())
        })
        .with_display_colors()
}

/// Colours of classes a recording does not name.
const GENERIC_COLORS: [[u8; 3]; 8] = [
    [0, 0, 0],
    [230, 120, 40],
    [120, 200, 80],
    [180, 90, 200],
    [240, 200, 60],
    [60, 160, 230],
    [220, 80, 140],
    [160, 160, 160],
];

#[cfg(test)]
pub(crate) mod tests;
