//! Writes RGB frames to a video file through OpenCV's FFmpeg backend.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use opencv::core::{Mat, Scalar, Size};
use opencv::prelude::*;
use opencv::videoio;

use crate::CaptureError;

/// An open video file of exactly the requested size. Even sizes go through OpenCV:
/// H.264 (`avc1`) when its FFmpeg build has an encoder for it, else MPEG-4 Part 2
/// (`mp4v`). Both are 4:2:0, for which FFmpeg silently crops odd sizes, so odd sizes
/// are piped to the `ffmpeg` program as H.264 4:4:4, which keeps every pixel.
pub struct VideoEncoder {
    backend: Backend,
    path: PathBuf,
    width: u32,
    height: u32,
    codec: &'static str,
}

enum Backend {
    OpenCv {
        writer: videoio::VideoWriter,
        bgr: Mat,
    },
    Pipe {
        child: Child,
        stdin: Option<ChildStdin>,
    },
}

/// A codec to ask for instead of the default choice (H.264 first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// H.264 (`avc1`).
    H264,
    /// MPEG-4 Part 2 (`mp4v`): cheaper to encode, larger files. What the OpenCV
    /// wheels for Python can write, so `foramen bench` uses it to compare like with like.
    Mpeg4,
}

impl VideoEncoder {
    /// Creates `path` for `width` x `height` frames at `fps`.
    pub fn create(path: &Path, width: u32, height: u32, fps: f64) -> Result<Self, CaptureError> {
        Self::create_with(path, width, height, fps, None)
    }

    /// As [`Self::create`], with `codec` only (for even sizes; odd sizes always go
    /// through the `ffmpeg` program as H.264 4:4:4).
    pub fn create_with(
        path: &Path,
        width: u32,
        height: u32,
        fps: f64,
        codec: Option<Codec>,
    ) -> Result<Self, CaptureError> {
        let err = |reason: String| CaptureError::Write {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let (backend, codec) = if width.is_multiple_of(2) && height.is_multiple_of(2) {
            open_opencv(path, width, height, fps, codec).map_err(err)?
        } else {
            open_pipe(path, width, height, fps).map_err(err)?
        };
        Ok(Self {
            backend,
            path: path.to_path_buf(),
            width,
            height,
            codec,
        })
    }

    /// The codec in use (`h264`, `mpeg4`, or `h264-444` for odd sizes).
    pub fn codec(&self) -> &'static str {
        self.codec
    }

    /// Appends one packed RGB8 frame of the encoder's size.
    pub fn write_rgb(&mut self, rgb: &[u8]) -> Result<(), CaptureError> {
        let err = |reason: String| CaptureError::Write {
            path: self.path.clone(),
            reason,
        };
        if rgb.len() != self.width as usize * self.height as usize * 3 {
            return Err(err(format!(
                "frame of {} bytes for a {}x{} video",
                rgb.len(),
                self.width,
                self.height
            )));
        }
        match &mut self.backend {
            Backend::OpenCv { writer, bgr } => {
                // OpenCV's SIMD swizzle into the reused BGR buffer: a byte loop here
                // cost a few ms per 1080p frame (`foramen bench`).
                let view = opencv::core::Mat::new_rows_cols_with_bytes::<opencv::core::Vec3b>(
                    self.height as i32,
                    self.width as i32,
                    rgb,
                )
                .map_err(|e| err(e.message))?;
                opencv::imgproc::cvt_color_def(&view, bgr, opencv::imgproc::COLOR_RGB2BGR)
                    .map_err(|e| err(e.message))?;
                writer.write(bgr).map_err(|e| err(e.message))
            }
            Backend::Pipe { stdin, .. } => stdin
                .as_mut()
                .ok_or_else(|| err("encoder already closed".into()))?
                .write_all(rgb)
                .map_err(|e| err(format!("ffmpeg stopped accepting frames: {e}"))),
        }
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<(), CaptureError> {
        let err = |reason: String| CaptureError::Write {
            path: self.path.clone(),
            reason,
        };
        match &mut self.backend {
            Backend::OpenCv { writer, .. } => writer.release().map_err(|e| err(e.message)),
            Backend::Pipe { child, stdin } => {
                drop(stdin.take());
                let out = wait_with_stderr(child).map_err(|e| err(e.to_string()))?;
                if out.0.success() {
                    Ok(())
                } else {
                    Err(err(format!("ffmpeg failed: {}", out.1.trim())))
                }
            }
        }
    }
}

impl Drop for VideoEncoder {
    fn drop(&mut self) {
        // Closing stdin lets ffmpeg finish the file on its own; never wait here.
        if let Backend::Pipe { stdin, .. } = &mut self.backend {
            drop(stdin.take());
        }
    }
}

/// Waits for `child` to exit; returns its status and what it printed on stderr.
fn wait_with_stderr(child: &mut Child) -> std::io::Result<(std::process::ExitStatus, String)> {
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr)?;
    }
    Ok((child.wait()?, stderr))
}

fn open_opencv(
    path: &Path,
    width: u32,
    height: u32,
    fps: f64,
    only: Option<Codec>,
) -> Result<(Backend, &'static str), String> {
    let name = path.to_str().ok_or("path is not UTF-8")?;
    // OpenCV says only that no encoder opened: find the real reason first.
    foramen_core::limits::check_pixels("the video", width, height).map_err(|e| e.to_string())?;
    std::fs::File::create(path).map_err(|e| format!("cannot write the file: {e}"))?;
    let size = Size::new(width as i32, height as i32);
    let candidates = [
        (Codec::H264, "h264", ['a', 'v', 'c', '1']),
        (Codec::Mpeg4, "mpeg4", ['m', 'p', '4', 'v']),
    ];
    for (_, codec, [a, b, c, d]) in candidates
        .into_iter()
        .filter(|(k, _, _)| only.is_none_or(|o| o == *k))
    {
        let fourcc = videoio::VideoWriter::fourcc(a, b, c, d).map_err(|e| e.message)?;
        let writer =
            videoio::VideoWriter::new(name, fourcc, fps, size, true).map_err(|e| e.message)?;
        if writer.is_opened().unwrap_or(false) {
            let bgr = Mat::new_rows_cols_with_default(
                height as i32,
                width as i32,
                opencv::core::CV_8UC3,
                Scalar::all(0.0),
            )
            .map_err(|e| e.message)?;
            return Ok((Backend::OpenCv { writer, bgr }, codec));
        }
    }
    Err(match only {
        None => "no video encoder available (tried avc1 and mp4v)".into(),
        Some(c) => format!("no {c:?} encoder available in this OpenCV/FFmpeg build"),
    })
}

fn open_pipe(
    path: &Path,
    width: u32,
    height: u32,
    fps: f64,
) -> Result<(Backend, &'static str), String> {
    let mut child = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
        ])
        .arg(format!("{width}x{height}"))
        .args([
            "-r",
            &format!("{fps}"),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
            "-crf",
            "18",
        ])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("odd frame sizes need the ffmpeg program (apt install ffmpeg): {e}")
        })?;
    let stdin = child.stdin.take();
    Ok((Backend::Pipe { child, stdin }, "h264-444"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FrameSource, OpenCvSource};

    #[test]
    fn writes_a_video_that_reads_back_with_its_frame_count_and_size() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("clip.mp4");
        let (w, h) = (96u32, 64u32);
        let mut enc = VideoEncoder::create(&path, w, h, 25.0).expect("encoder");
        for i in 0..12u8 {
            let rgb: Vec<u8> = (0..w * h).flat_map(|_| [200, i * 10, 40]).collect();
            enc.write_rgb(&rgb).expect("write");
        }
        assert!(enc.write_rgb(&[0; 5]).is_err());
        enc.finish().expect("finish");

        let mut src = OpenCvSource::open_file(&path).expect("open");
        assert_eq!((src.info().width, src.info().height), (w, h));
        let mut n = 0;
        let mut last_pts = -1;
        while let Some(f) = src.next_frame().expect("frame") {
            assert!(f.pts_us > last_pts, "timestamps increase");
            last_pts = f.pts_us;
            // Colour survives the BGR round trip (lossy codec: loose tolerance).
            assert!(
                (f.rgb[0] as i32 - 200).abs() < 25 && (f.rgb[2] as i32 - 40).abs() < 25,
                "{:?}",
                &f.rgb[..3]
            );
            n += 1;
        }
        assert_eq!(n, 12);
    }

    #[test]
    fn odd_sizes_are_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("odd.mp4");
        let mut enc = VideoEncoder::create(&path, 33, 19, 10.0).expect("encoder");
        for _ in 0..3 {
            enc.write_rgb(&[90u8; 33 * 19 * 3]).expect("write");
        }
        enc.finish().expect("finish");
        let mut src = OpenCvSource::open_file(&path).expect("open");
        assert_eq!((src.info().width, src.info().height), (33, 19));
        let f = src.next_frame().expect("read").expect("frame");
        assert_eq!((f.width, f.height), (33, 19));
    }

    #[test]
    fn missing_file_is_an_open_error() {
        let err = OpenCvSource::open_file(Path::new("/nonexistent/x.mp4"))
            .err()
            .expect("error")
            .to_string();
        assert!(err.contains("/nonexistent/x.mp4"), "{err}");
    }
}
