//! Figures people look at rather than read: ROC curves, a confusion heat map and a box
//! plot, written as SVG (exact, for documents) and rendered to PNG (for Markdown).

use std::fmt::Write as _;
use std::path::Path;

use resvg::{tiny_skia, usvg};

/// Errors writing a figure.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The SVG could not be parsed (a bug) or the PNG not written.
    #[error("{path}: {reason}")]
    Write {
        /// The figure file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

const W: f64 = 640.0;
const H: f64 = 480.0;
const FONT: &str = "font-family=\"DejaVu Sans, sans-serif\"";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn css(c: [u8; 3]) -> String {
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

/// A plot area with axes from 0 to 1 (or `y` range) and tick labels.
fn frame(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    y: (f64, f64),
) -> (String, impl Fn(f64, f64) -> (f64, f64)) {
    let (l, r, t, b) = (70.0, W - 20.0, 40.0, H - 60.0);
    let map = move |xv: f64, yv: f64| (l + xv * (r - l), b - (yv - y.0) / (y.1 - y.0) * (b - t));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" {FONT}>{}</text>\n",
        W / 2.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        "<rect x=\"{l}\" y=\"{t}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>",
        r - l,
        b - t
    );
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let (x, _) = map(f, y.0);
        let (_, yy) = map(0.0, y.0 + f * (y.1 - y.0));
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{t}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#ddd\"/><line x1=\"{l}\" y1=\"{yy}\" x2=\"{r}\" y2=\"{yy}\" stroke=\"#ddd\"/>"
        );
        if !xlabel.is_empty() {
            let _ = writeln!(
                s,
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{f:.1}</text>",
                b + 18.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" {FONT}>{:.2}</text>",
            l - 6.0,
            yy + 4.0,
            y.0 + f * (y.1 - y.0)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" {FONT}>{}</text>",
        (l + r) / 2.0,
        H - 20.0,
        esc(xlabel)
    );
    let _ = writeln!(
        s,
        "<text x=\"18\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" {FONT} transform=\"rotate(-90 18 {})\">{}</text>",
        (t + b) / 2.0,
        (t + b) / 2.0,
        esc(ylabel)
    );
    (s, map)
}

/// One class's ROC curve for [`roc_svg`].
#[derive(Clone, Debug)]
pub struct RocCurve {
    /// Class name.
    pub name: String,
    /// Line colour.
    pub color: [u8; 3],
    /// (false-positive rate, true-positive rate) points.
    pub points: Vec<(f64, f64)>,
    /// Area under the curve.
    pub auc: f64,
}

/// ROC curves, one per class, AUC in the legend.
pub fn roc_svg(curves: &[RocCurve]) -> String {
    let (mut s, map) = frame(
        "ROC, one class against the rest",
        "false-positive rate",
        "true-positive rate",
        (0.0, 1.0),
    );
    let (x0, y0) = map(0.0, 0.0);
    let (x1, y1) = map(1.0, 1.0);
    let _ = writeln!(
        s,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y1}\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>"
    );
    for (
        i,
        RocCurve {
            name,
            color,
            points: pts,
            auc,
        },
    ) in curves.iter().enumerate()
    {
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| {
                let (px, py) = map(x, y);
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            path.join(" "),
            css(*color)
        );
        let ly = 330.0 + 20.0 * i as f64 - 20.0 * curves.len() as f64 + 60.0;
        let _ = writeln!(
            s,
            "<line x1=\"400\" y1=\"{ly}\" x2=\"425\" y2=\"{ly}\" stroke=\"{}\" stroke-width=\"3\"/><text x=\"432\" y=\"{}\" font-size=\"13\" {FONT}>{} (AUC {auc:.3})</text>",
            css(*color),
            ly + 4.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Row-normalised confusion matrix as a heat map (rows = truth, columns = prediction).
pub fn confusion_svg(names: &[String], counts: &[Vec<u64>]) -> String {
    let n = names.len().max(1);
    let cell = (360.0 / n as f64).min(90.0);
    let (ox, oy) = (W - 20.0 - cell * n as f64, 60.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" {FONT}>Confusion matrix (rows: truth, normalised)</text>\n",
        W / 2.0
    );
    for (t, row) in counts.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (p, &v) in row.iter().enumerate() {
            let f = if total > 0 {
                v as f64 / total as f64
            } else {
                0.0
            };
            let shade = (255.0 * (1.0 - f)) as u8;
            let (x, y) = (ox + p as f64 * cell, oy + t as f64 * cell);
            let ink = if f > 0.5 { "white" } else { "black" };
            let _ = writeln!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgb({shade},{shade},255)\" stroke=\"white\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"{ink}\" {FONT}>{f:.2}</text>",
                x + cell / 2.0,
                y + cell / 2.0 + 4.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" {FONT}>{}</text>",
            ox - 6.0,
            oy + t as f64 * cell + cell / 2.0 + 4.0,
            esc(&names[t])
        );
    }
    for (p, name) in names.iter().enumerate() {
        let (x, y) = (
            ox + p as f64 * cell + cell / 2.0,
            oy + n as f64 * cell + 14.0,
        );
        let _ = writeln!(
            s,
            "<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" font-size=\"12\" {FONT} transform=\"rotate(-35 {x} {y})\">{}</text>",
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    // Linear interpolation between closest ranks (NumPy's default).
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Box plot (median, quartiles, 1.5 IQR whiskers, outliers) per group.
pub fn boxplot_svg(title: &str, ylabel: &str, groups: &[(String, Vec<f64>)]) -> String {
    let (mut s, map) = frame(title, "", ylabel, (0.0, 1.0));
    let n = groups.len().max(1) as f64;
    for (i, (name, vals)) in groups.iter().enumerate() {
        let mut v: Vec<f64> = vals.iter().copied().filter(|x| x.is_finite()).collect();
        let xc = (i as f64 + 0.5) / n;
        let (cx, by) = map(xc, 0.0);
        let _ = writeln!(
            s,
            "<text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" {FONT}>{}</text>",
            by + 18.0,
            esc(name)
        );
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let (q1, med, q3) = (quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75));
        let iqr = q3 - q1;
        let lo = v
            .iter()
            .copied()
            .find(|&x| x >= q1 - 1.5 * iqr)
            .unwrap_or(q1);
        let hi = v
            .iter()
            .rev()
            .copied()
            .find(|&x| x <= q3 + 1.5 * iqr)
            .unwrap_or(q3);
        let half = 0.25 / n * (W - 90.0);
        let (_, y1) = map(xc, q1);
        let (_, y3) = map(xc, q3);
        let (_, ym) = map(xc, med);
        let (_, ylo) = map(xc, lo);
        let (_, yhi) = map(xc, hi);
        let _ = writeln!(
            s,
            "<line x1=\"{cx}\" y1=\"{ylo}\" x2=\"{cx}\" y2=\"{yhi}\" stroke=\"black\"/>"
        );
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{y3}\" width=\"{}\" height=\"{}\" fill=\"#9ecae1\" stroke=\"black\"/>",
            cx - half,
            2.0 * half,
            (y1 - y3).max(0.5)
        );
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{ym}\" x2=\"{}\" y2=\"{ym}\" stroke=\"black\" stroke-width=\"2\"/>",
            cx - half,
            cx + half
        );
        for &o in v.iter().filter(|&&x| x < lo || x > hi) {
            let (_, oy) = map(xc, o);
            let _ = writeln!(
                s,
                "<circle cx=\"{cx}\" cy=\"{oy}\" r=\"3\" fill=\"none\" stroke=\"black\"/>"
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Writes `svg` to `stem.svg` and its rendering to `stem.png`.
pub fn write_svg_png(svg: &str, dir: &Path, stem: &str) -> Result<(), PlotError> {
    let svg_path = dir.join(format!("{stem}.svg"));
    let png_path = dir.join(format!("{stem}.png"));
    let err = |path: &Path, reason: String| PlotError::Write {
        path: path.to_path_buf(),
        reason,
    };
    std::fs::write(&svg_path, svg).map_err(|e| err(&svg_path, e.to_string()))?;
    let mut opt = usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| err(&svg_path, e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| err(&png_path, "empty figure".into()))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .save_png(&png_path)
        .map_err(|e| err(&png_path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_to_svg_and_png() {
        let dir = tempfile::tempdir().expect("tmp");
        let roc = roc_svg(&[RocCurve {
            name: "bone".into(),
            color: [0, 150, 255],
            points: vec![(0.0, 0.0), (0.1, 0.8), (1.0, 1.0)],
            auc: 0.93,
        }]);
        assert!(roc.contains("bone (AUC 0.930)"));
        write_svg_png(&roc, dir.path(), "roc").expect("roc");
        let cm = confusion_svg(&["a".into(), "b<c".into()], &[vec![8, 2], vec![0, 0]]);
        assert!(cm.contains("b&lt;c") && cm.contains(">0.80<"));
        write_svg_png(&cm, dir.path(), "cm").expect("cm");
        let bp = boxplot_svg(
            "IoU",
            "IoU",
            &[
                ("senior".into(), vec![0.5, 0.6, 0.62, 0.7, 0.1]),
                ("empty".into(), vec![]),
            ],
        );
        write_svg_png(&bp, dir.path(), "box").expect("box");
        let png = std::fs::read(dir.path().join("roc.png")).expect("png");
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 5_000, "a drawn figure, not an empty canvas");
    }

    #[test]
    fn quantiles_match_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.5), 2.5);
    }
}
