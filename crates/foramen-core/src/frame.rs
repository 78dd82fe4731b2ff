//! Video frames as they leave a source: packed RGB8 with an id and timestamps.

use std::sync::Arc;

/// Monotonic frame counter assigned by the source, starting at 0.
pub type FrameId = u64;

/// One video frame, packed RGB8, row-major without padding.
///
/// Pixel data sits behind an [`Arc`] so the display, the inference worker and the
/// recorder share one copy of a 1080p frame instead of three.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Position of the frame in its stream (0, 1, 2, ...), gaps mean dropped frames.
    pub id: FrameId,
    /// Presentation time in the stream's own clock, microseconds from its first frame.
    pub pts_us: i64,
    /// When the frame entered Foramen, on [`crate::clock_us`]'s monotonic clock.
    pub captured_at_us: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, RGB order.
    pub rgb: Arc<Vec<u8>>,
}

impl Frame {
    /// Wraps RGB bytes; `None` when the buffer length does not match the size.
    pub fn new(id: FrameId, pts_us: i64, width: u32, height: u32, rgb: Vec<u8>) -> Option<Self> {
        (rgb.len() == width as usize * height as usize * 3).then(|| Self {
            id,
            pts_us,
            captured_at_us: crate::clock_us(),
            width,
            height,
            rgb: Arc::new(rgb),
        })
    }

    /// Number of pixels.
    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_buffer_length() {
        assert!(Frame::new(0, 0, 4, 2, vec![0; 24]).is_some());
        assert!(Frame::new(0, 0, 4, 2, vec![0; 23]).is_none());
    }
}
