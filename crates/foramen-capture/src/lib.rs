//! Frame sources (V4L2 devices and video files via OpenCV, recording folders, image folders, synthetic scenes), pacing, the capture thread, and the video encoder.

mod encoder;
mod folder;
mod opencv_source;
mod pacing;
mod reconnect;
mod recording;
mod synthetic;
mod thread;

use std::path::{Path, PathBuf};

pub use encoder::{Codec, VideoEncoder};
pub use folder::ImageFolderSource;
pub use opencv_source::{OpenCvSource, V4l2Options};
pub use pacing::{Paced, Retimed};
pub use reconnect::{Opener, ReconnectingSource};
pub use recording::{RecordingSource, SESSION_FILE, is_recording};
pub use synthetic::SyntheticSource;
pub use thread::{CaptureEvent, CaptureHandle, DropPolicy, spawn_capture};

/// Opens a V4L2 device with explicit options (see [`open_source`] for everything else).
pub fn open_device(device: &str, opts: &V4l2Options) -> Result<Box<dyn FrameSource>, CaptureError> {
    Ok(Box::new(OpenCvSource::open_device(device, opts)?))
}

use foramen_core::Frame;

/// Errors from frame sources and the encoder; each names the source.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The source could not be opened.
    #[error("cannot open {source_name}: {reason}")]
    Open {
        /// Path, device or description.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// A frame could not be read or decoded (the stream may continue).
    #[error("{source_name}: frame {frame}: {reason}")]
    Frame {
        /// Path, device or description.
        source_name: String,
        /// Index of the frame that failed.
        frame: u64,
        /// Why.
        reason: String,
    },
    /// The encoder failed.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// Output file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What a source delivers.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceInfo {
    /// Human-readable name (path, device, `synthetic:SEED`).
    pub name: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Nominal frame rate.
    pub fps: f64,
    /// Number of frames, when the source knows it (files and folders).
    pub frame_count: Option<u64>,
    /// True for a live device: frames arrive at their own pace and are never re-read.
    pub live: bool,
}

/// Anything that yields frames: capture card, file replay, image folder, synthetic.
///
/// Replay implements the same trait as the capture card, so tests and CI drive the
/// live path with recorded or synthetic video.
pub trait FrameSource: Send {
    /// Size, rate and length of the stream.
    fn info(&self) -> &SourceInfo;

    /// The next frame; `Ok(None)` at the end of a finite stream. A `Frame` error
    /// means this frame is lost but the stream may go on.
    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError>;

    /// Moves to frame `index` (0-based) for offline review; live sources refuse.
    fn seek(&mut self, index: u64) -> Result<(), CaptureError> {
        Err(CaptureError::Frame {
            source_name: self.info().name.clone(),
            frame: index,
            reason: "this source cannot seek".into(),
        })
    }

    /// Forgets pacing history, so the next frame is released at once (after a pause,
    /// a seek or a step). Unpaced sources ignore it.
    fn restart_clock(&mut self) {}

    /// Decode into buffers from `pool` from now on (the consumer gives them back).
    /// Sources that cannot ignore it and allocate as before; wrappers pass it on.
    fn set_frame_pool(&mut self, _pool: foramen_core::FramePool) {}
}

/// Opens `input`: a recording folder (its segments as one stream), a folder of images, `synthetic[:SEED[:WxH[@FPS[:FRAMES]]]]`, a
/// `/dev/video*` device, or any video file OpenCV reads.
pub fn open_source(input: &str) -> Result<Box<dyn FrameSource>, CaptureError> {
    if let Some(spec) = input.strip_prefix("synthetic") {
        return Ok(Box::new(SyntheticSource::parse(spec)?));
    }
    let path = Path::new(input);
    if path.is_dir() && is_recording(path) {
        return Ok(Box::new(RecordingSource::open(path)?));
    }
    if path.is_dir() {
        return Ok(Box::new(ImageFolderSource::open(path, 25.0)?));
    }
    if input.starts_with("/dev/video") {
        return Ok(Box::new(OpenCvSource::open_device(
            input,
            &V4l2Options::default(),
        )?));
    }
    if !path.exists() {
        return Err(CaptureError::Open {
            source_name: input.to_string(),
            reason: "no such file or folder".into(),
        });
    }
    Ok(Box::new(OpenCvSource::open_file(path)?))
}
