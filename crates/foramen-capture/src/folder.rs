//! Replays a folder of images in file-name order as a video stream.

use std::path::{Path, PathBuf};

use foramen_core::Frame;

use crate::{CaptureError, FrameSource, SourceInfo};

/// Images of a folder, sorted by name, at a fixed frame rate. Frames whose size
/// differs from the first are scaled to it (a warning is logged) so that a stream
/// keeps one size, as a capture card's does.
pub struct ImageFolderSource {
    info: SourceInfo,
    files: Vec<PathBuf>,
    next: usize,
}

impl ImageFolderSource {
    /// Lists the images in `dir`; their first one fixes the stream's size.
    pub fn open(dir: &Path, fps: f64) -> Result<Self, CaptureError> {
        let open_err = |reason: String| CaptureError::Open {
            source_name: dir.display().to_string(),
            reason,
        };
        let files = foramen_data::dataset::list_images(dir).map_err(|e| open_err(e.to_string()))?;
        let first = files
            .first()
            .ok_or_else(|| open_err("no images (png, jpg, bmp, tif) in folder".into()))?;
        let (width, height) = image::image_dimensions(first)
            .map_err(|e| open_err(format!("{}: {e}", first.display())))?;
        foramen_core::limits::check_pixels(&first.display().to_string(), width, height)
            .map_err(|e| open_err(e.to_string()))?;
        Ok(Self {
            info: SourceInfo {
                name: dir.display().to_string(),
                width,
                height,
                fps,
                frame_count: Some(files.len() as u64),
                live: false,
            },
            files,
            next: 0,
        })
    }

    /// The image files in replay order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl FrameSource for ImageFolderSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        let id = self.next as u64;
        self.next += 1;
        let frame_err = |reason: String| CaptureError::Frame {
            source_name: path.display().to_string(),
            frame: id,
            reason,
        };
        // The declared size first: one huge picture in the folder is a lost frame, not
        // gigabytes of memory.
        let (w, h) = image::image_dimensions(path).map_err(|e| frame_err(e.to_string()))?;
        foramen_core::limits::check_pixels("the picture", w, h)
            .map_err(|e| frame_err(e.to_string()))?;
        let mut img = image::open(path)
            .map_err(|e| frame_err(e.to_string()))?
            .into_rgb8();
        if img.dimensions() != (self.info.width, self.info.height) {
            tracing::warn!(
                "{}: {}x{} scaled to the stream's {}x{}",
                path.display(),
                img.width(),
                img.height(),
                self.info.width,
                self.info.height
            );
            img = image::imageops::resize(
                &img,
                self.info.width,
                self.info.height,
                image::imageops::FilterType::Triangle,
            );
        }
        let pts_us = (id as f64 * 1e6 / self.info.fps).round() as i64;
        Frame::new(id, pts_us, img.width(), img.height(), img.into_raw())
            .map(Some)
            .ok_or_else(|| frame_err("decoded size mismatch".into()))
    }

    fn seek(&mut self, index: u64) -> Result<(), CaptureError> {
        self.next = (index as usize).min(self.files.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_in_name_order_and_keeps_one_size() {
        let dir = tempfile::tempdir().expect("tmp");
        for (name, w, v) in [("b.png", 8u32, 20u8), ("a.png", 8, 10), ("c.png", 4, 30)] {
            image::RgbImage::from_pixel(w, 6 * w / 8, image::Rgb([v, v, v]))
                .save(dir.path().join(name))
                .expect("save");
        }
        std::fs::write(dir.path().join("notes.txt"), "not an image").expect("w");
        let mut s = ImageFolderSource::open(dir.path(), 10.0).expect("open");
        assert_eq!(s.info().frame_count, Some(3));
        let mut firsts = vec![];
        while let Some(f) = s.next_frame().expect("frame") {
            assert_eq!((f.width, f.height), (8, 6));
            firsts.push((f.rgb[0], f.pts_us));
        }
        assert_eq!(firsts, vec![(10, 0), (20, 100_000), (30, 200_000)]);
    }

    #[test]
    fn empty_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = ImageFolderSource::open(dir.path(), 25.0)
            .err()
            .expect("error")
            .to_string();
        assert!(
            err.contains(&dir.path().display().to_string()) && err.contains("no images"),
            "{err}"
        );
    }
}
