//! What a clip reads, one item at a time: `masks.bin` walked beside `frames.csv`, and the
//! recording's video segments decoded in order.

use std::io::Read;
use std::path::{Path, PathBuf};

use foramen_capture::{FrameSource, OpenCvSource};
use foramen_core::{Frame, Mask};
use foramen_data::recording::MaskStream;

/// `masks.bin` walked beside `frames.csv`: records are in ascending source frame id, and
/// rows ask for ids that never go down, so one record is kept, the current one.
pub(crate) struct MaskWalk<R> {
    stream: Option<MaskStream<R>>,
    current: Option<Mask>,
}

impl<R: Read + std::io::Seek> MaskWalk<R> {
    /// A walk over `stream` (`None`: no `masks.bin`, every mask unreadable).
    pub(crate) fn new(stream: Option<MaskStream<R>>) -> Self {
        Self {
            stream,
            current: None,
        }
    }

    /// The mask of source frame `id`, reading forward to it; `None` when its record is
    /// not in the file (cut, damaged) or lies behind the walk.
    pub(crate) fn find(&mut self, id: u64) -> Option<&Mask> {
        while self.current.as_ref().is_none_or(|m| m.source_frame_id < id) {
            let next = match self.stream.as_mut()?.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => {
                    self.stream = None;
                    return None;
                }
                Err(e) => {
                    // Unreadable from here on (a disk error): the rest is drawn clean.
                    tracing::warn!("{e}: the masks after it are not drawn");
                    self.stream = None;
                    return None;
                }
            };
            self.current = Some(Mask {
                source_frame_id: next.frame_id,
                source_pts_us: next.pts_us,
                source_captured_at_us: next.captured_at_us,
                width: next.width,
                height: next.height,
                classes: next.classes,
                // Not recorded; the compositor does not read it.
                confidence: Vec::new(),
                infer_ms: next.infer_ms,
            });
        }
        self.current.as_ref().filter(|m| m.source_frame_id == id)
    }

    /// The mask last found (meaningful right after a [`Self::find`] that found it).
    pub(crate) fn current(&self) -> Option<&Mask> {
        self.current.as_ref()
    }
}

/// The recording's video segments, decoded sequentially: the open segment and the
/// place of its next frame.
pub(crate) struct Segments {
    dir: PathBuf,
    open: Option<(u64, Result<OpenCvSource, String>, u64)>,
}

impl Segments {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            open: None,
        }
    }

    /// Frame `place` of segment `segment`, decoding forward to it; an error says why it
    /// cannot be had (the segment does not open, or ends before it).
    pub(crate) fn frame(&mut self, segment: u64, place: u64) -> Result<Frame, String> {
        if self
            .open
            .as_ref()
            .is_none_or(|o| o.0 != segment || o.2 > place)
        {
            let path = self.dir.join(format!("video-{segment:05}.mp4"));
            let src = OpenCvSource::open_file(&path).map_err(|e| e.to_string());
            self.open = Some((segment, src, 0));
        }
        let Some((_, src, next)) = self.open.as_mut() else {
            return Err("no segment".into());
        };
        let src = src.as_mut().map_err(|e| e.clone())?;
        loop {
            let frame = src
                .next_frame()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{}: ends before frame {place}", src.info().name))?;
            *next += 1;
            if *next > place {
                return Ok(frame);
            }
        }
    }
}
