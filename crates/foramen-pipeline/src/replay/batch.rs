//! Many recordings, many machines: `foramen replay --inputs LIST --shard I/N --out-dir D`
//! replays every N-th input of a list (stable order) into one annotated video and one
//! telemetry CSV per input, and writes a per-shard summary, so any array-job scheduler
//! (Slurm, a Kubernetes Indexed Job) fans an archive out over its nodes.

use std::io::Write;
use std::path::{Path, PathBuf};

use foramen_core::Config;
use foramen_data::dataset::select_shard;

use super::{ReplayObserver, ReplayOptions, run};
use crate::{PipelineError, Result};

/// One input of the list and where its outputs go.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchItem {
    /// The input as `foramen replay` takes it (a path relative to the list's folder is
    /// resolved against it).
    pub input: String,
    /// `DIR/<stem>.annotated.mp4`.
    pub out: PathBuf,
    /// `DIR/<stem>.telemetry.csv`.
    pub telemetry: PathBuf,
}

/// Reads the list (one input per line; blank lines and `#` comments skipped), takes
/// shard `(i, n)` and names each input's outputs in `out_dir`. Two inputs with one file
/// name would overwrite each other's outputs: an error naming both lines.
pub fn plan(list: &Path, shard: (usize, usize), out_dir: &Path) -> Result<Vec<BatchItem>> {
    let text = std::fs::read_to_string(list).map_err(PipelineError::io("reading", list))?;
    let base = list.parent().unwrap_or(Path::new(""));
    let mut all: Vec<(usize, String, String)> = vec![];
    for (k, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| PipelineError::List {
            path: list.to_path_buf(),
            line: k + 1,
            message,
        };
        let p = Path::new(line);
        let input = if p.is_relative() && !line.contains(':') {
            base.join(p).display().to_string()
        } else {
            line.to_string()
        };
        let stem = p
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| err(format!("{line:?} has no file name")))?
            .replace(':', "_");
        if let Some((first, ..)) = all.iter().find(|(_, _, s)| *s == stem) {
            return Err(err(format!(
                "{line:?} has the file name of line {first}: their outputs would collide"
            )));
        }
        all.push((k + 1, input, stem));
    }
    Ok(select_shard(all, shard)
        .into_iter()
        .map(|(_, input, stem)| BatchItem {
            input,
            out: out_dir.join(format!("{stem}.annotated.mp4")),
            telemetry: out_dir.join(format!("{stem}.telemetry.csv")),
        })
        .collect())
}

/// What a batch did.
#[derive(Clone, Debug)]
pub struct BatchSummary {
    /// Inputs in the shard.
    pub inputs: usize,
    /// Inputs whose replay failed.
    pub failed: usize,
    /// The shard's summary CSV.
    pub csv: PathBuf,
}

impl std::fmt::Display for BatchSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ok = self.inputs - self.failed;
        write!(
            f,
            "replayed {ok} of {} inputs; summary {}",
            self.inputs,
            self.csv.display()
        )
    }
}

/// [`plan`] then [`run_batch`]: the shard `(i, n)` of `list` into `out_dir`.
pub fn run_list(
    list: &Path,
    shard: (usize, usize),
    out_dir: &Path,
    model: Option<&Path>,
    cfg: &Config,
    observer: &mut dyn ReplayObserver,
) -> Result<BatchSummary> {
    let items = plan(list, shard, out_dir)?;
    let failed = run_batch(&items, model, cfg, shard, out_dir, observer)?;
    Ok(BatchSummary {
        inputs: items.len(),
        failed,
        csv: out_dir.join(format!("shard-{}-of-{}.csv", shard.0, shard.1)),
    })
}

/// Replays every item; one that fails is recorded in the summary and the others go on
/// (a damaged recording must not stop an archive). Writes `DIR/shard-I-of-N.csv` (input,
/// output, frames, seconds, status) and returns how many failed.
pub fn run_batch(
    items: &[BatchItem],
    model: Option<&Path>,
    cfg: &Config,
    shard: (usize, usize),
    out_dir: &Path,
    observer: &mut dyn ReplayObserver,
) -> Result<usize> {
    std::fs::create_dir_all(out_dir).map_err(PipelineError::io("creating", out_dir))?;
    let path = out_dir.join(format!("shard-{}-of-{}.csv", shard.0, shard.1));
    let file = std::fs::File::create(&path).map_err(PipelineError::io("creating", &path))?;
    let mut csv = std::io::BufWriter::new(file);
    let io = PipelineError::io;
    writeln!(csv, "input,output,frames,seconds,status").map_err(io("writing", &path))?;
    let mut failed = 0;
    for it in items {
        let opts = ReplayOptions::default();
        let r = run(
            &it.input,
            model,
            &it.out,
            Some(&it.telemetry),
            cfg,
            &opts,
            observer,
        );
        let (frames, seconds, status) = match r {
            Ok(s) => (s.frames, s.seconds, "ok".to_string()),
            Err(e) => {
                failed += 1;
                tracing::error!("{}: {}", it.input, crate::error::error_chain(&e));
                (0, 0.0, format!("failed: {}", crate::error::error_chain(&e)))
            }
        };
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        writeln!(
            csv,
            "{},{},{frames},{seconds:.1},{}",
            quote(&it.input),
            quote(&it.out.display().to_string()),
            quote(&status)
        )
        .and_then(|_| csv.flush())
        .map_err(io("writing", &path))?;
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_resolves_paths_takes_the_shard_and_refuses_colliding_names() {
        let dir = tempfile::tempdir().expect("tmp");
        let list = dir.path().join("archive.txt");
        let text = "# archive\na/case1.mp4\n\n/abs/case2.mp4\nsynthetic:3:64x48@5:10\nb/case4\n";
        std::fs::write(&list, text).expect("list");
        let out = Path::new("/out");
        let all = plan(&list, (0, 1), out).expect("plan");
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[0].input,
            dir.path().join("a/case1.mp4").display().to_string()
        );
        assert_eq!(all[1].input, "/abs/case2.mp4");
        assert_eq!(all[2].input, "synthetic:3:64x48@5:10");
        assert_eq!(all[0].out, out.join("case1.annotated.mp4"));
        let odd = plan(&list, (1, 2), out).expect("plan");
        assert_eq!(odd, vec![all[1].clone(), all[3].clone()]);
        std::fs::write(&list, "a/x.mp4\nb/x.mp4\n").expect("list");
        let e = plan(&list, (0, 1), out).expect_err("collision").to_string();
        assert!(
            e.contains("archive.txt, line 2") && e.contains("line 1"),
            "{e}"
        );
    }
}
