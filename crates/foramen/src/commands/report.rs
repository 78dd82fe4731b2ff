//! `foramen report RECORDING --out DIR`: the recording's timeline (`timeline.csv`, the
//! figure `timeline.svg`/`.png`) and `report.html` (`foramen_data::timeline`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use foramen_data::timeline::Timeline;

/// `foramen report` options.
#[derive(clap::Args)]
pub struct Args {
    /// The recording folder (with session.toml), cut by a crash or not.
    dir: PathBuf,
    /// Folder for timeline.csv, timeline.svg/.png and report.html (outside the recording).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `foramen report`: streams the recording, writes the timeline and the page.
pub fn exec(a: Args, config: &foramen_core::Config) -> Result<()> {
    foramen_core::paths::check_output(&a.out, &[&a.dir])?;
    let t = Timeline::read(&a.dir, config.inference.max_mask_age_ms)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (classes, shares) = t.figure_series();
    let svg = foramen_eval::plot::timeline_svg(&classes, &shares, &t.bands());
    foramen_eval::plot::write_svg_png(&svg, &a.out, "timeline")?;
    for (name, text) in [("timeline.csv", t.csv()), ("report.html", t.html(&svg))] {
        let path = a.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    say!("{}: {}", a.dir.display(), t.summary());
    Ok(())
}
