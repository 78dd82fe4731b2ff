//! `foramen check`: the readiness check before a case (`foramen_pipeline::check`).

use std::path::PathBuf;

use anyhow::Result;
use foramen_core::Config;
use foramen_pipeline::check::{CheckSpec, run_checks};

/// `foramen check` options: those of `live` that the checks use.
#[derive(clap::Args)]
pub struct Args {
    /// Capture device or any source, as for `live` (default: `[capture].device`).
    #[arg(long)]
    device: Option<String>,
    /// ONNX model (default: `[model].path`, else the bundled lumbar model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Folder for recordings (overrides `[recording].dir`).
    #[arg(long)]
    record_dir: Option<PathBuf>,
    /// Print JSON: `ready`, `verdict`, `items`.
    #[arg(long)]
    json: bool,
}

/// Prints one line per check and the verdict; the exit status is 0 only when ready.
pub fn exec(a: Args, mut config: Config) -> Result<()> {
    config.recording.dir = a.record_dir.unwrap_or(config.recording.dir);
    let input = a.device.unwrap_or_else(|| config.capture.device.clone());
    let r = run_checks(&config, &CheckSpec::new(input, a.model));
    let doc = serde_json::json!({"ready": r.ready(), "verdict": r.verdict(), "items": r.items});
    match a.json {
        true => say!("{doc:#}"),
        false => say!("{r}"),
    }
    // Not ready: the verdict is printed, no `error:` line repeats it.
    if !r.ready() {
        std::process::exit(1);
    }
    Ok(())
}
