//! Annotated stills of chosen frames of a recording (the report's key frames): each
//! frame painted as a clip paints it (mask by the compositor, caption), all in one walk
//! over the recording.

use std::ops::Range;
use std::path::Path;

use foramen_core::{Frame, Mask};
use foramen_data::recording::read_session_info;
use foramen_data::timeline::SessionInfo;

use super::caption::AiState;
use super::paint::Painter;
use super::{ClipError, ClipSettings, RowSink, walk};

/// A painted still: the index of its span, its row, size and packed RGB8 pixels.
pub type Still<'a> = (usize, u64, u32, u32, &'a [u8]);

struct StillSink<'a> {
    spans: &'a [Range<u64>],
    done: Vec<bool>,
    session: SessionInfo,
    settings: &'a ClipSettings,
    each: &'a mut dyn FnMut(Still<'_>) -> Result<(), ClipError>,
    painted: u64,
}

impl StillSink<'_> {
    /// The spans still open that hold row `i`.
    fn open_at(&self, i: u64) -> impl Iterator<Item = usize> + '_ {
        (0..self.spans.len()).filter(move |&k| !self.done[k] && self.spans[k].contains(&i))
    }
}

impl RowSink for StillSink<'_> {
    fn wants(&self, i: u64) -> bool {
        self.open_at(i).next().is_some()
    }

    fn take(
        &mut self,
        i: u64,
        frame: &Frame,
        time_s: f64,
        state: AiState,
        mask: Option<&Mask>,
    ) -> Result<(), ClipError> {
        // A span's still is its first frame shown with its mask, else its last frame.
        let mine: Vec<usize> = self
            .open_at(i)
            .filter(|&k| state == AiState::Drawn || i + 1 == self.spans[k].end)
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        // One painter per still: stills may differ in size, which one clip may not.
        let mut painter = Painter::new(&self.session, self.settings);
        if let Some(rgb) = painter.paint(frame, time_s, state, mask)? {
            for k in mine {
                (self.each)((k, i, frame.width, frame.height, rgb))?;
                self.done[k] = true;
                self.painted += 1;
            }
        }
        Ok(())
    }

    fn undecodable(&mut self, i: u64, why: String) {
        tracing::warn!("row {i}: no still: {why}");
    }
}

/// One still per span of `spans` (0-based `frames.csv` rows) of recording `dir`, painted
/// as a clip would paint it: the span's first frame that was shown with its mask (the
/// window's age rule), else its last frame (its caption says why there is no mask).
/// Each is handed to `each` as it is painted, in row order; returns how many were (a
/// span whose frames cannot be decoded gets none, with a warning).
pub fn stills(
    dir: &Path,
    spans: &[Range<u64>],
    settings: &ClipSettings,
    each: &mut dyn FnMut(Still<'_>) -> Result<(), ClipError>,
) -> Result<u64, ClipError> {
    let (Some(first), Some(end)) = (
        spans.iter().map(|s| s.start).min(),
        spans.iter().map(|s| s.end).max(),
    ) else {
        return Ok(0);
    };
    let mut sink = StillSink {
        spans,
        done: vec![false; spans.len()],
        session: read_session_info(dir)?,
        settings,
        each,
        painted: 0,
    };
    walk(dir, first..end, settings, &mut sink, &mut |_, _| true)?;
    Ok(sink.painted)
}
