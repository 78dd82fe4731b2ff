//! One frame of a clip or a still as the window draws it: the recorded mask by the
//! reference compositor when the window would have drawn it, then the caption.

use foramen_core::{ClassSet, Frame, Mask};
use foramen_data::timeline::SessionInfo;
use foramen_overlay::{Compositor, OverlayStyle};

use super::caption::{AiState, Caption};
use super::{ClipError, ClipSettings, format_time, session_classes};

/// Paints frames of one size (the first one's) with one style and caption.
pub(crate) struct Painter {
    classes: ClassSet,
    style: OverlayStyle,
    draw_masks: bool,
    compositor: Compositor,
    caption: Option<Caption>,
    /// The first frame's size.
    size: (u32, u32),
    buf: Vec<u8>,
}

impl Painter {
    /// A painter for recording `session`'s classes drawn with `settings`.
    pub(crate) fn new(session: &SessionInfo, settings: &ClipSettings) -> Self {
        let classes = session_classes(session);
        let style = OverlayStyle::new(&classes, &settings.overlay);
        Self {
            classes,
            style,
            draw_masks: settings.draw_masks,
            compositor: Compositor::new(),
            caption: None,
            size: (0, 0),
            buf: Vec::new(),
        }
    }

    /// `frame` painted (packed RGB8), at `time_s` in the recording, with `mask` drawn when
    /// `state` says so; `None` for a frame whose size differs from the first one's (one
    /// video has one size, and resampling would show what was not recorded).
    pub(crate) fn paint(
        &mut self,
        frame: &Frame,
        time_s: f64,
        state: AiState,
        mask: Option<&Mask>,
    ) -> Result<Option<&[u8]>, ClipError> {
        let (w, h) = (frame.width, frame.height);
        let caption = match &mut self.caption {
            None => {
                self.size = (w, h);
                self.buf = vec![0; frame.rgb.len()];
                let c = Caption::new(&self.classes, &self.style, self.draw_masks, w, h);
                self.caption.insert(c)
            }
            Some(_) if self.size != (w, h) => return Ok(None),
            Some(c) => c,
        };
        match (state, mask) {
            (AiState::Drawn, Some(m)) => {
                self.compositor
                    .composite(&frame.rgb, w, h, m, &self.style, &mut self.buf)
            }
            _ => self.buf.copy_from_slice(&frame.rgb),
        }
        caption
            .draw(&mut self.buf, &format_time(time_s), state)
            .map_err(ClipError::Caption)?;
        Ok(Some(&self.buf))
    }
}
