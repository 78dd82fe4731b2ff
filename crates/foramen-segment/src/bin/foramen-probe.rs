//! `foramen-probe`: times one model on one execution provider through the real
//! `segment()` path on synthetic frames and prints the result as JSON. It needs neither
//! OpenCV nor a video, so it runs on a lean GPU machine (see docs/GPU.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use foramen_core::config::ExecutionProvider;
use foramen_segment::probe::{self, ProbeOptions};

const USAGE: &str = "\
usage: foramen-probe --model PATH [--provider cpu|cuda|tensorrt|webgpu] [--require-provider]
                     [--size WxH] [--warmup N] [--runs N] [--threads N] [--compare-cpu]
                     [--cuda-graph] [--spin]

  --model PATH         ONNX model with Foramen's metadata contract (required)
  --provider NAME      execution provider asked for (default cpu)
  --require-provider   fail instead of falling back to the CPU
  --size WxH           synthetic frame size (default 1920x1080)
  --warmup N           untimed runs before each timed series (default 50)
  --runs N             timed runs of each series (default 300)
  --threads N          ONNX Runtime intra-op threads, 0 = all cores (default 0)
  --compare-cpu        also run a CPU session on the same frame and report the
                       largest probability difference
  --cuda-graph         CUDA graphs for the I/O-bound runs (model_bound_ms); with
                       --provider cuda only
  --spin               ONNX Runtime's threads spin while they wait (its default);
                       without it they sleep, as in Foramen's pipelines

ONNX Runtime is loaded from ORT_DYLIB_PATH, else libonnxruntime.so beside the
executable (or ../lib), else the project's .venv. The JSON goes to standard output.";

/// Parses `WxH`.
fn parse_size(s: &str) -> Result<(u32, u32)> {
    let (w, h) = s
        .split_once('x')
        .with_context(|| format!("--size {s:?}: expected WxH, e.g. 1920x1080"))?;
    let dim = |v: &str| -> Result<u32> {
        let n: u32 = v
            .parse()
            .with_context(|| format!("--size {s:?}: {v:?} is not a whole number"))?;
        if n == 0 || n > 16_384 {
            bail!("--size {s:?}: each side must be 1..=16384");
        }
        Ok(n)
    };
    Ok((dim(w)?, dim(h)?))
}

fn parse_provider(s: &str) -> Result<ExecutionProvider> {
    Ok(match s {
        "cpu" => ExecutionProvider::Cpu,
        "cuda" => ExecutionProvider::Cuda,
        "tensorrt" => ExecutionProvider::Tensorrt,
        "webgpu" => ExecutionProvider::Webgpu,
        other => bail!("--provider {other:?}: expected cpu, cuda, tensorrt or webgpu"),
    })
}

fn parse_count(flag: &str, v: &str) -> Result<usize> {
    v.parse()
        .with_context(|| format!("{flag} {v:?}: expected a whole number"))
}

/// The options from the command line; `None` for `--help`.
fn parse(args: &[String]) -> Result<Option<ProbeOptions>> {
    let mut opts = ProbeOptions {
        model: PathBuf::new(),
        provider: ExecutionProvider::Cpu,
        require_provider: false,
        width: 1920,
        height: 1080,
        warmup: 50,
        runs: 300,
        intra_threads: 0,
        compare_cpu: false,
        cuda_graph: false,
        allow_spinning: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value (see --help)"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--model" => opts.model = PathBuf::from(value()?),
            "--provider" => opts.provider = parse_provider(value()?)?,
            "--require-provider" => opts.require_provider = true,
            "--size" => (opts.width, opts.height) = parse_size(value()?)?,
            "--warmup" => opts.warmup = parse_count(flag, value()?)?,
            "--runs" => opts.runs = parse_count(flag, value()?)?,
            "--threads" => opts.intra_threads = parse_count(flag, value()?)?,
            "--compare-cpu" => opts.compare_cpu = true,
            "--cuda-graph" => opts.cuda_graph = true,
            "--spin" => opts.allow_spinning = true,
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if opts.model.as_os_str().is_empty() {
        bail!("--model PATH is required (see --help)");
    }
    if opts.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if opts.cuda_graph && opts.provider != ExecutionProvider::Cuda {
        bail!("--cuda-graph needs --provider cuda (CUDA graphs are a CUDA feature)");
    }
    Ok(Some(opts))
}

fn run(args: &[String]) -> Result<()> {
    let Some(opts) = parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let report = probe::run(&opts).with_context(|| {
        format!(
            "--model {} on --provider {}{}",
            opts.model.display(),
            opts.provider.name(),
            if opts.require_provider {
                " --require-provider"
            } else {
                ""
            }
        )
    })?;
    if let Some(why) = &report.fallback_reason {
        eprintln!("foramen-probe: running on the CPU: {why}");
    }
    let json = serde_json::to_string_pretty(&report).context("encoding the report as JSON")?;
    println!("{json}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("foramen-probe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
