//! Saving the marked span of a recording as an annotated clip from the review window:
//! `foramen_pipeline::clip` (what `foramen clip` runs) on thread `clip-export`, with the
//! window's overlay settings of the moment, so the clip looks as the review did. The UI
//! reads its progress without waiting; dropping the job cancels it (the half-written clip
//! is removed by the clip writer), never blocking.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use foramen_pipeline::clip::{ClipSettings, ClipSummary, clip_rows, format_time};
use foramen_pipeline::error::error_chain;

/// A clip being written.
pub struct ClipJob {
    out: PathBuf,
    done: Arc<AtomicU64>,
    total: u64,
    stop: Arc<AtomicBool>,
    result: Arc<OnceLock<Result<ClipSummary, String>>>,
}

/// Where the window saves the clip of `rows` of recording `dir`: `root/clips/`, named
/// after the recording folder and the span's first and last frame.
pub fn clip_path(root: &Path, dir: &Path, rows: &Range<u64>) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "recording".into(), |n| n.to_string_lossy().into_owned());
    root.join("clips").join(format!(
        "{name}-frames-{}-{}.mp4",
        rows.start,
        rows.end.saturating_sub(1)
    ))
}

impl ClipJob {
    /// Starts writing `rows` of recording `dir` to `out`; an output inside the
    /// recording, or a folder that cannot be made, is refused at once.
    pub fn start(
        dir: &Path,
        rows: Range<u64>,
        out: PathBuf,
        settings: ClipSettings,
    ) -> Result<Self, String> {
        foramen_core::paths::check_output(&out, &[dir]).map_err(|e| e.to_string())?;
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let job = Self {
            out: out.clone(),
            done: Arc::new(AtomicU64::new(0)),
            total: rows.end - rows.start,
            stop: Arc::new(AtomicBool::new(false)),
            result: Arc::new(OnceLock::new()),
        };
        let (done, stop, result) = (job.done.clone(), job.stop.clone(), job.result.clone());
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("clip-export".into())
            .spawn(move || {
                let mut progress = |n: u64, _total: u64| {
                    done.store(n, Ordering::Relaxed);
                    !stop.load(Ordering::Relaxed)
                };
                let r = clip_rows(&dir, rows, &out, &settings, &mut progress);
                let _ = result.set(r.map_err(|e| error_chain(&e)));
            })
            .map_err(|e| format!("cannot start the clip thread: {e}"))?;
        Ok(job)
    }

    /// True once the clip is written or has failed.
    pub fn finished(&self) -> bool {
        self.result.get().is_some()
    }

    /// One line for the review bar: progress, the file written, or why not.
    pub fn status(&self) -> String {
        match self.result.get() {
            None => format!(
                "saving clip {} %",
                self.done.load(Ordering::Relaxed) * 100 / self.total.max(1)
            ),
            Some(Ok(s)) => format!(
                "clip saved: {} ({} frames, {} to {})",
                self.out.display(),
                s.frames,
                format_time(s.first_s),
                format_time(s.last_s)
            ),
            Some(Err(e)) => format!("clip not saved: {e}"),
        }
    }

    /// The clip's file.
    pub fn out(&self) -> &Path {
        &self.out
    }
}

impl Drop for ClipJob {
    fn drop(&mut self) {
        // The thread sees the flag at its next frame and removes the partial clip.
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_are_named_after_the_recording_and_the_span() {
        let p = clip_path(Path::new("/r"), Path::new("/r/20261127-101500"), &(30..91));
        assert_eq!(p, Path::new("/r/clips/20261127-101500-frames-30-90.mp4"));
    }

    #[test]
    fn an_output_inside_the_recording_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().expect("tmp");
        let inside = dir.path().join("clip.mp4");
        let settings = ClipSettings::from_config(&foramen_core::Config::default());
        let e = ClipJob::start(dir.path(), 0..10, inside.clone(), settings)
            .err()
            .expect("refused");
        assert!(e.contains("clip.mp4"), "{e}");
        assert!(!inside.exists());
    }
}
