//! `foramen report RECORDING --out DIR`: the recording's timeline (`timeline.csv`, the
//! figure `timeline.svg`/`.png`), key frames and `report.html` (`foramen_pipeline::report`).

use std::path::PathBuf;

use anyhow::{Context, Result};

/// `foramen report` options.
#[derive(clap::Args)]
pub struct Args {
    /// The recording folder (with session.toml), cut by a crash or not.
    dir: PathBuf,
    /// Folder for timeline.csv, timeline.svg/.png, keyframes/ and report.html (outside the
    /// recording).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `foramen report`: streams the recording, writes the timeline, the key frames
/// and the page.
pub fn exec(a: Args, config: &foramen_core::Config) -> Result<()> {
    foramen_core::paths::check_output(&a.out, &[&a.dir])?;
    let t = foramen_pipeline::report::write_report(&a.dir, &a.out, config)
        .with_context(|| format!("report of {}", a.dir.display()))?;
    say!("{}: {}", a.dir.display(), t.summary());
    Ok(())
}
