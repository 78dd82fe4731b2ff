//! Video frames as they leave a source: packed RGB8 with an id and timestamps.

use std::sync::{Arc, Mutex};

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
        Self::from_shared(id, pts_us, width, height, Arc::new(rgb))
    }

    /// Wraps a shared RGB buffer (from a [`FramePool`]); `None` when its length does not
    /// match the size.
    pub fn from_shared(
        id: FrameId,
        pts_us: i64,
        width: u32,
        height: u32,
        rgb: Arc<Vec<u8>>,
    ) -> Option<Self> {
        (rgb.len() == width as usize * height as usize * 3).then(|| Self {
            id,
            pts_us,
            captured_at_us: crate::clock_us(),
            width,
            height,
            rgb,
        })
    }

    /// Number of pixels.
    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// Frame buffers passed round a pipeline instead of allocated per frame.
///
/// A source takes a buffer that only it holds, decodes into it and sends the frame on;
/// the last stage gives the buffer back. A buffer someone else still holds (the display,
/// the recorder) is not taken back, and an empty pool hands out a new buffer, so a pool
/// never changes what a frame contains, only where its bytes live. At 1080p a frame is
/// 6.2 MB: allocating one per frame cost a large allocation per frame and, with four
/// threads freeing them, hundreds of MB of RSS held in allocator arenas.
#[derive(Clone, Debug)]
pub struct FramePool {
    free: Arc<Mutex<Vec<Arc<Vec<u8>>>>>,
    capacity: usize,
}

impl FramePool {
    /// A pool keeping at most `capacity` free buffers.
    pub fn new(capacity: usize) -> Self {
        Self {
            free: Arc::new(Mutex::new(Vec::with_capacity(capacity))),
            capacity,
        }
    }

    /// A buffer of `len` bytes that the caller alone holds (contents unspecified).
    pub fn take(&self, len: usize) -> Arc<Vec<u8>> {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        if let Some(mut buf) = reused
            && let Some(v) = Arc::get_mut(&mut buf)
        {
            v.resize(len, 0);
            return buf;
        }
        Arc::new(vec![0; len])
    }

    /// Gives `buf` back; kept when nobody else holds it and the pool has room.
    pub fn give(&self, buf: Arc<Vec<u8>>) {
        if Arc::strong_count(&buf) != 1 || Arc::weak_count(&buf) != 0 {
            return;
        }
        if let Ok(mut free) = self.free.lock()
            && free.len() < self.capacity
        {
            free.push(buf);
        }
    }

    /// Free buffers held now.
    pub fn free_buffers(&self) -> usize {
        self.free.lock().map_or(0, |f| f.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_reuses_only_buffers_nobody_else_holds() {
        let pool = FramePool::new(2);
        let a = pool.take(12);
        let ptr = a.as_ptr();
        let shared = a.clone();
        pool.give(a);
        assert_eq!(pool.free_buffers(), 0, "still held by `shared`");
        pool.give(shared);
        assert_eq!(pool.free_buffers(), 1);
        let b = pool.take(12);
        assert_eq!(b.as_ptr(), ptr, "the same buffer comes back");
        assert_eq!(Arc::strong_count(&b), 1);
        let f = Frame::from_shared(1, 0, 2, 2, b).expect("frame");
        assert_eq!(f.rgb.len(), 12);
        assert!(Frame::from_shared(1, 0, 3, 2, pool.take(12)).is_none());
        for _ in 0..3 {
            pool.give(pool.take(5));
        }
        pool.give(Arc::new(vec![0; 5]));
        pool.give(Arc::new(vec![0; 5]));
        pool.give(Arc::new(vec![0; 5]));
        assert_eq!(pool.free_buffers(), 2, "capacity bounds the pool");
    }

    #[test]
    fn rejects_wrong_buffer_length() {
        assert!(Frame::new(0, 0, 4, 2, vec![0; 24]).is_some());
        assert!(Frame::new(0, 0, 4, 2, vec![0; 23]).is_none());
    }
}
