//! Video files and V4L2/UVC capture cards through OpenCV's videoio.

use std::path::Path;
use std::sync::Arc;

use foramen_core::{Frame, FramePool};
use opencv::core::Mat;
use opencv::prelude::*;
use opencv::{imgproc, videoio};

use crate::{CaptureError, FrameSource, SourceInfo};

/// Capture-card settings for [`OpenCvSource::open_device`].
#[derive(Clone, Debug)]
pub struct V4l2Options {
    /// Requested width (the driver may choose another; the actual one is reported).
    pub width: u32,
    /// Requested height.
    pub height: u32,
    /// Requested frame rate.
    pub fps: f64,
    /// FOURCC pixel format, e.g. `MJPG` or `YUYV`.
    pub fourcc: [char; 4],
}

impl Default for V4l2Options {
    fn default() -> Self {
        Self {
            width: 1920,
            height: 1080,
            fps: 60.0,
            fourcc: ['M', 'J', 'P', 'G'],
        }
    }
}

/// A stream read through `cv::VideoCapture`: any file its FFmpeg backend decodes, or
/// a V4L2 device.
pub struct OpenCvSource {
    cap: videoio::VideoCapture,
    info: SourceInfo,
    bgr: Mat,
    rgb: Mat,
    next: u64,
    /// Buffers to decode into, when the consumer gives them back.
    pool: Option<FramePool>,
}

fn cv_err(source_name: &str) -> impl Fn(opencv::Error) -> CaptureError + '_ {
    move |e| CaptureError::Open {
        source_name: source_name.to_string(),
        reason: e.message,
    }
}

impl OpenCvSource {
    /// Opens a video file.
    pub fn open_file(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let cap =
            videoio::VideoCapture::from_file(&name, videoio::CAP_ANY).map_err(cv_err(&name))?;
        Self::from_capture(cap, name, false)
    }

    /// Opens a V4L2 device such as `/dev/video0`, asking for the smallest driver
    /// queue: OpenCV's default of 4 buffers adds up to 4 frames (67 ms at 60 fps) of lag.
    pub fn open_device(device: &str, opts: &V4l2Options) -> Result<Self, CaptureError> {
        let mut cap =
            videoio::VideoCapture::from_file(device, videoio::CAP_V4L2).map_err(cv_err(device))?;
        let [a, b, c, d] = opts.fourcc;
        let fourcc = videoio::VideoWriter::fourcc(a, b, c, d).map_err(cv_err(device))?;
        // Settings a driver rejects are not fatal: the actual values are read back.
        for (prop, value) in [
            (videoio::CAP_PROP_FOURCC, fourcc as f64),
            (videoio::CAP_PROP_FRAME_WIDTH, opts.width as f64),
            (videoio::CAP_PROP_FRAME_HEIGHT, opts.height as f64),
            (videoio::CAP_PROP_FPS, opts.fps),
            (videoio::CAP_PROP_BUFFERSIZE, 1.0),
        ] {
            if !cap.set(prop, value).unwrap_or(false) {
                tracing::warn!("{device}: driver ignored property {prop} = {value}");
            }
        }
        Self::from_capture(cap, device.to_string(), true)
    }

    fn from_capture(
        cap: videoio::VideoCapture,
        name: String,
        live: bool,
    ) -> Result<Self, CaptureError> {
        let opened = cap.is_opened().map_err(cv_err(&name))?;
        if !opened {
            return Err(CaptureError::Open {
                source_name: name,
                reason:
                    "OpenCV could not open it (not a video, unsupported codec, or no such device)"
                        .into(),
            });
        }
        let get = |p| cap.get(p).unwrap_or(0.0);
        let (width, height) = (
            get(videoio::CAP_PROP_FRAME_WIDTH) as u32,
            get(videoio::CAP_PROP_FRAME_HEIGHT) as u32,
        );
        if width == 0 || height == 0 {
            return Err(CaptureError::Open {
                source_name: name,
                reason: "stream reports no frame size".into(),
            });
        }
        // The one limit on pictures, before the first frame is decoded.
        if let Err(e) = foramen_core::limits::check_pixels("the video", width, height) {
            return Err(CaptureError::Open {
                reason: e.to_string(),
                source_name: name,
            });
        }
        let fps = match get(videoio::CAP_PROP_FPS) {
            f if f.is_finite() && f > 0.0 && f < 1000.0 => f,
            _ => 25.0,
        };
        let count = get(videoio::CAP_PROP_FRAME_COUNT);
        Ok(Self {
            cap,
            info: SourceInfo {
                name,
                width,
                height,
                fps,
                frame_count: (!live && count >= 1.0).then_some(count as u64),
                live,
            },
            bgr: Mat::default(),
            rgb: Mat::default(),
            next: 0,
            pool: None,
        })
    }
}

impl FrameSource for OpenCvSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        let id = self.next;
        let frame_err = |reason: String| CaptureError::Frame {
            source_name: self.info.name.clone(),
            frame: id,
            reason,
        };
        let got = self
            .cap
            .read(&mut self.bgr)
            .map_err(|e| frame_err(e.message))?;
        if !got || self.bgr.empty() {
            return Ok(None);
        }
        self.next += 1;
        let (w, h) = (self.bgr.cols() as u32, self.bgr.rows() as u32);
        // A stream may change size mid-way (a tower switching mode).
        foramen_core::limits::check_pixels("the frame", w, h)
            .map_err(|e| frame_err(e.to_string()))?;
        let rgb = match &self.pool {
            // Convert straight into a pooled buffer: no allocation and no extra copy.
            Some(pool) if self.bgr.typ() == opencv::core::CV_8UC3 => {
                let mut buf = pool.take(w as usize * h as usize * 3);
                let bytes = Arc::get_mut(&mut buf)
                    .ok_or_else(|| frame_err("pooled frame buffer is shared".into()))?;
                let mut view = Mat::new_rows_cols_with_bytes_mut::<opencv::core::Vec3b>(
                    h as i32,
                    w as i32,
                    bytes.as_mut_slice(),
                )
                .map_err(|e| frame_err(e.message))?;
                imgproc::cvt_color_def(&self.bgr, &mut view, imgproc::COLOR_BGR2RGB)
                    .map_err(|e| frame_err(e.message))?;
                buf
            }
            _ => {
                imgproc::cvt_color_def(&self.bgr, &mut self.rgb, imgproc::COLOR_BGR2RGB)
                    .map_err(|e| frame_err(e.message))?;
                Arc::new(
                    self.rgb
                        .data_bytes()
                        .map_err(|e| frame_err(e.message))?
                        .to_vec(),
                )
            }
        };
        // Files use their own timestamps; live devices and timestamp-less streams
        // fall back to the frame index at the nominal rate.
        let pos_ms = self.cap.get(videoio::CAP_PROP_POS_MSEC).unwrap_or(-1.0);
        let pts_us = if !self.info.live && pos_ms >= 0.0 && (id == 0 || pos_ms > 0.0) {
            (pos_ms * 1000.0).round() as i64
        } else {
            (id as f64 * 1e6 / self.info.fps).round() as i64
        };
        let frame = Frame::from_shared(id, pts_us, w, h, rgb)
            .ok_or_else(|| frame_err("decoded frame has an unexpected layout".into()))?;
        Ok(Some(frame))
    }

    fn set_frame_pool(&mut self, pool: FramePool) {
        self.pool = Some(pool);
    }

    fn seek(&mut self, index: u64) -> Result<(), CaptureError> {
        let err = |reason: String| CaptureError::Frame {
            source_name: self.info.name.clone(),
            frame: index,
            reason,
        };
        if self.info.live {
            return Err(err("a live device cannot seek".into()));
        }
        let ok = self
            .cap
            .set(videoio::CAP_PROP_POS_FRAMES, index as f64)
            .map_err(|e| err(e.message))?;
        if !ok {
            return Err(err("the decoder refused to seek".into()));
        }
        self.next = index;
        Ok(())
    }
}
