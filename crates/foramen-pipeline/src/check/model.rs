//! The model checks: the model loads on the execution provider the config asks for (a
//! CPU fallback when a GPU was asked for fails, with its reason), and a warm inference
//! fits `[inference].latency_budget_ms`.
//!
//! The model is loaded with the live session's settings
//! ([`pipeline_model_config`]), and timed as the live worker
//! times it: preprocessing, the model and postprocessing of one frame of the capture's
//! size, against the budget the worker counts slow frames with.

use std::path::{Path, PathBuf};

use foramen_core::{Config, Frame};
use foramen_segment::{SegmentError, Segmenter};

use super::{CheckItem, CheckLimits, within};
use crate::model::{pipeline_model_config, resolve};

/// The model `foramen live` would run: `model`, else `[model].path`, else the bundled one.
fn model_path(cfg: &Config, model: Option<&Path>) -> crate::Result<PathBuf> {
    match model
        .map(Path::to_path_buf)
        .or_else(|| cfg.model.path.clone())
    {
        Some(p) => Ok(p),
        None => resolve(None),
    }
}

/// Loads the model as the live session does, within `limits.model_load`; the loaded
/// model is handed back for [`check_inference`].
pub fn check_model(
    cfg: &Config,
    model: Option<&Path>,
    limits: &CheckLimits,
) -> (CheckItem, Option<Segmenter>) {
    let path = match model_path(cfg, model) {
        Ok(p) => p,
        Err(e) => return (CheckItem::fail("model", e.to_string()), None),
    };
    let (owned, model_cfg) = (path.clone(), pipeline_model_config(cfg));
    let asked = cfg.model.execution_provider.name();
    match within("model", limits.model_load, move || {
        Segmenter::load(&owned, &model_cfg)
    }) {
        Err(e) => (
            CheckItem::fail("model", format!("{}: loading: {e}", path.display())),
            None,
        ),
        Ok(Err(e)) => (CheckItem::fail("model", e.to_string()), None),
        Ok(Ok(seg)) => {
            let item = judge_provider(
                &path,
                asked,
                seg.execution_provider(),
                seg.provider_fallback(),
            );
            (item, Some(seg))
        }
    }
}

/// Passes when the model runs on the provider asked for; a fallback fails with its reason.
pub fn judge_provider(path: &Path, asked: &str, in_use: &str, fallback: Option<&str>) -> CheckItem {
    let file = path.display();
    match fallback {
        Some(why) => CheckItem::fail(
            "model",
            format!("{file} runs on {in_use}, not the configured {asked}: {why}"),
        ),
        // WebGPU with the nodes it cannot take on the CPU: the provider asked for runs.
        None if in_use.starts_with(asked) && in_use != asked => CheckItem::pass(
            "model",
            format!("{file} loaded on {in_use} (configured {asked}; some nodes on the CPU)"),
        ),
        None if in_use != asked => CheckItem::fail(
            "model",
            format!("{file} runs on {in_use}, not the configured {asked}"),
        ),
        None => CheckItem::pass(
            "model",
            format!("{file} loaded on {in_use} (configured {asked})"),
        ),
    }
}

/// Times of the timed runs, and what they ran on.
struct Timed {
    times_ms: Vec<f64>,
    mask_size: (u32, u32),
    provider: &'static str,
}

/// Runs the model once to warm it up, then `limits.inference_runs` times on `frame`,
/// within `limits.inference`; the item, and the mask's size (the recording's masks are
/// stored at it).
pub fn check_inference(
    cfg: &Config,
    seg: Segmenter,
    frame: Frame,
    limits: &CheckLimits,
) -> (CheckItem, Option<(u32, u32)>) {
    let runs = limits.inference_runs.max(1);
    let size = (frame.width, frame.height);
    let mut seg = seg;
    match within("inference", limits.inference, move || {
        time_runs(&mut seg, &frame, runs)
    }) {
        Err(e) => (
            CheckItem::fail("inference", format!("warm inference: {e}")),
            None,
        ),
        Ok(Err(e)) => (CheckItem::fail("inference", e.to_string()), None),
        Ok(Ok(t)) => {
            let budget = cfg.inference.latency_budget_ms;
            let item = judge_latency(budget, &t.times_ms, t.provider, size);
            (item, Some(t.mask_size))
        }
    }
}

/// One warm-up run, then `runs` timed ones: each frame's preprocessing, model and
/// postprocessing, as the live worker counts them against the budget.
fn time_runs(seg: &mut Segmenter, frame: &Frame, runs: usize) -> Result<Timed, SegmentError> {
    let warm = seg.segment(frame)?;
    let mask_size = (warm.mask.width, warm.mask.height);
    seg.recycle(warm.mask);
    let mut times_ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let out = seg.segment(frame)?;
        times_ms.push(f64::from(out.timings.total_ms()));
        seg.recycle(out.mask);
    }
    Ok(Timed {
        times_ms,
        mask_size,
        provider: seg.execution_provider(),
    })
}

/// Passes when the median of the warm runs is within `budget_ms`; the worst run is shown
/// beside it.
pub fn judge_latency(
    budget_ms: f64,
    times_ms: &[f64],
    provider: &str,
    (w, h): (u32, u32),
) -> CheckItem {
    let mut sorted = times_ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let Some(&worst) = sorted.last() else {
        return CheckItem::fail("inference", "no timed run");
    };
    let median = sorted[sorted.len() / 2];
    let how = match sorted.len() {
        1 => format!("(the last run, on a {w}x{h} frame on {provider})"),
        n => format!("(median of {n} runs on a {w}x{h} frame on {provider}; worst {worst:.1} ms)"),
    };
    if median <= budget_ms {
        CheckItem::pass(
            "inference",
            format!("warm inference {median:.1} ms <= budget {budget_ms} ms {how}"),
        )
    } else {
        CheckItem::fail(
            "inference",
            format!("warm inference {median:.1} ms > budget {budget_ms} ms {how}"),
        )
    }
}
