//! `foramen recording DIR`: what of a recording survived (after a crash too), per file.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use foramen_capture::{FrameSource, OpenCvSource};
use foramen_data::recording::{count_frame_rows, scan_masks};

/// `foramen recording` options.
#[derive(clap::Args)]
pub struct Args {
    /// The recording folder (with session.toml).
    dir: PathBuf,
}

/// Runs `foramen recording`: each video segment's readable frames, the telemetry rows
/// and the masks. Fails when nothing is readable.
pub fn exec(a: Args) -> Result<()> {
    let dir = &a.dir;
    let session = dir.join("session.toml");
    std::fs::read_to_string(&session)
        .with_context(|| format!("{} is not a recording", dir.display()))?;
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    segments.sort();
    let mut video_frames = 0u64;
    for seg in &segments {
        match OpenCvSource::open_file(seg) {
            Ok(mut src) => {
                let mut n = 0u64;
                while let Ok(Some(_)) = src.next_frame() {
                    n += 1;
                }
                video_frames += n;
                say!("{}: {n} frames", seg.display());
            }
            Err(e) => say!("{}: unreadable (cut by a crash?): {e}", seg.display()),
        }
    }
    let csv = std::fs::read_to_string(dir.join("frames.csv")).unwrap_or_default();
    let rows = count_frame_rows(&csv);
    // Streamed: an hour of masks is gigabytes.
    let scan = scan_masks(&dir.join("masks.bin"), |_| ())?;
    let damaged = if scan.damaged_regions > 0 {
        format!(
            " ({} damaged region(s), {} bytes, skipped)",
            scan.damaged_regions, scan.damaged_bytes
        )
    } else {
        String::new()
    };
    say!(
        "{}: {} segments, {video_frames} readable video frames, {rows} telemetry rows, {} masks{}{damaged}",
        dir.display(),
        segments.len(),
        scan.records,
        if scan.cut {
            " (last mask record cut)"
        } else {
            ""
        }
    );
    if video_frames == 0 && rows == 0 {
        bail!("{}: nothing readable", dir.display());
    }
    Ok(())
}
