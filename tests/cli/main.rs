//! End-to-end tests: the real `foramen` binary on synthetic clips, the bundled model,
//! and (when present) real endoscopic frames from ../shared/data/vocalfolds. One test
//! binary, one module per command (or per concern that spans commands).

use std::path::{Path, PathBuf};

use foramen_capture::{FrameSource, open_source};

#[path = "../common/mod.rs"]
mod common;

mod bench;
mod check;
mod clip;
mod compare;
mod data_loop;
mod eval;
mod outputs;
mod replay;
mod report;
mod segment;

/// Frame count, width and height of a video file or image folder.
fn count_frames(input: &str) -> (u64, u32, u32) {
    let mut src = open_source(input).expect("open");
    let (w, h) = (src.info().width, src.info().height);
    let mut n = 0;
    while src.next_frame().expect("frame").is_some() {
        n += 1;
    }
    (n, w, h)
}

/// Every file and folder under `dir`, depth first, in directory order.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// Mean absolute difference of two RGB frames over rows `rows` and columns `cols`.
fn mad(
    a: &[u8],
    b: &[u8],
    w: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> f64 {
    let mut sum = 0u64;
    for y in rows.clone() {
        for i in y * w * 3 + cols.start * 3..y * w * 3 + cols.end * 3 {
            sum += a[i].abs_diff(b[i]) as u64;
        }
    }
    sum as f64 / ((rows.len() * cols.len() * 3).max(1)) as f64
}
