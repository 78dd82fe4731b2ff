//! End-to-end tests of the operating-room window and the live path: the real binary,
//! the real window under Xvfb (wgpu on Mesa's lavapipe), the real threads.
//! One test binary, one module per concern.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../common/mod.rs"]
mod common;
use common::{bin, text};

mod ai_faults;
mod recording;
mod report;
mod soak;
mod source;

/// `foramen [--config CONFIG] live --device DEVICE --headless --record`, to add to.
fn live_recording(device: &str, config: Option<&Path>) -> Command {
    let mut cmd = Command::new(bin());
    if let Some(cfg) = config {
        cmd.args(["--config", &cfg.display().to_string()]);
    }
    cmd.args(["live", "--device", device, "--headless", "--record"]);
    cmd
}

/// `foramen recording SESSION`: what survived of a recording, checked.
fn check_recording(session: &Path) -> Output {
    Command::new(bin())
        .args(["recording", &session.display().to_string()])
        .output()
        .expect("foramen recording")
}

/// Runs `foramen ARGS` in a window: under `xvfb-run` (installed by `make setup`).
fn windowed(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("xvfb-run");
    cmd.args(["-a", "-s", "-screen 0 1024x768x24", bin()])
        .args(args)
        .env("FORAMEN_LOG", "foramen=info")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .expect("xvfb-run not found: `make setup` installs xvfb and xauth")
}

/// The number written just before the first word `key` in a summary line
/// (`"... 12 frames, 3 lost"`: `frames` -> 12).
/// The log of a run that exited successfully after showing `frames` frames (its
/// summary line), for the checks that follow.
fn log_of_run_showing(out: &Output, frames: usize, what: &str) -> String {
    let log = text(out);
    assert!(out.status.success(), "{log}");
    let summary = format!("{frames} frames");
    assert!(
        log.lines().any(|l| l.starts_with(&summary)),
        "{what}:\n{log}"
    );
    log
}

/// The count a summary line starts with (`125 frames captured, ...`); 0 when none.
fn leading_count(line: &str) -> u64 {
    line.split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The number just before the word `key` in `line` (`recording ...: 250 frames, ...`).
fn number_before(line: &str, key: &str) -> f64 {
    let words: Vec<&str> = line
        .split([' ', ',', ':'])
        .filter(|w| !w.is_empty())
        .collect();
    let at = words.iter().position(|w| *w == key).expect(key);
    words[at - 1].parse().expect("number")
}

/// A folder of `n` copies of one synthetic scene: a still picture replayed as video,
/// so that two runs show the same pixels and differ only in what Foramen draws.
fn still_clip(dir: &Path, n: usize) -> PathBuf {
    still_clip_of(dir, "clip", n, 11, "480x270")
}

/// As [`still_clip`], in folder `name`, of scene `seed` at `size` (WxH).
fn still_clip_of(dir: &Path, name: &str, n: usize, seed: u64, size: &str) -> PathBuf {
    let data = dir.join(format!("{name}-scene"));
    let out = Command::new(bin())
        .args([
            "synth",
            "--out",
            &data.display().to_string(),
            "--count",
            "1",
        ])
        .args(["--seed", &seed.to_string(), "--size", size])
        .output()
        .expect("synth");
    assert!(out.status.success(), "{}", text(&out));
    let image = common::first_entry(&data.join("images"));
    let clip = dir.join(name);
    std::fs::create_dir_all(&clip).expect("mkdir");
    for i in 0..n {
        std::fs::copy(&image, clip.join(format!("{i:04}.png"))).expect("copy");
    }
    clip
}

struct Run {
    log: String,
    png: image::RgbaImage,
    /// (frame, video latency, mask frame, annotation latency) rows.
    rows: Vec<Vec<String>>,
}

fn view(dir: &Path, name: &str, clip: &Path, model: &str, cfg: &str, env: &[(&str, &str)]) -> Run {
    let png = dir.join(format!("{name}.png"));
    let csv = dir.join(format!("{name}.csv"));
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, cfg).expect("config");
    let out = windowed(
        &[
            "--config",
            &config.display().to_string(),
            "view",
            &clip.display().to_string(),
            "--model",
            model,
            "--fps",
            "10",
            "--window-size",
            "640x360",
            "--snapshot-after-frames",
            "20",
            &png.display().to_string(),
            "--exit-after-frames",
            "20",
            "--telemetry",
            &csv.display().to_string(),
        ],
        env,
    );
    let log = text(&out);
    assert!(out.status.success(), "{name}: {log}");
    let png = image::open(&png)
        .unwrap_or_else(|e| panic!("{name}: no window snapshot: {e}\n{log}"))
        .into_rgba8();
    let rows = std::fs::read_to_string(&csv)
        .expect("telemetry")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    Run { log, png, rows }
}

/// Mean absolute difference over the middle of the window (the video, away from the
/// status line, HUD and legend).
fn centre_diff(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    let (w, h) = a.dimensions();
    let (mut sum, mut n) = (0u64, 0u64);
    for y in h * 3 / 10..h * 7 / 10 {
        for x in w * 3 / 10..w * 7 / 10 {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            sum += (0..3).map(|k| p[k].abs_diff(q[k]) as u64).sum::<u64>();
            n += 3;
        }
    }
    sum as f64 / n as f64
}
