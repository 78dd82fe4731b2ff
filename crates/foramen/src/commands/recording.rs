//! `foramen recording DIR`: what of a recording survived (after a crash too), per file.

use std::path::PathBuf;

use anyhow::{Result, bail};
use foramen_capture::{FrameSource, OpenCvSource};

/// `foramen recording` options.
#[derive(clap::Args)]
pub struct Args {
    /// The recording folder (with session.toml).
    dir: PathBuf,
}

/// Runs `foramen recording`: each video segment's readable frames, the telemetry rows
/// and the masks (`foramen_data::recording_check`). Fails when nothing is readable.
pub fn exec(a: Args) -> Result<()> {
    let check = foramen_data::recording_check::check_recording(&a.dir, |seg| {
        let mut src = OpenCvSource::open_file(seg).map_err(|e| e.to_string())?;
        let mut n = 0u64;
        while let Ok(Some(_)) = src.next_frame() {
            n += 1;
        }
        Ok(n)
    })?;
    say!("{check}");
    if !check.readable() {
        bail!("{}: nothing readable", a.dir.display());
    }
    Ok(())
}
