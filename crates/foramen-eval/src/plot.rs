//! Figures people look at rather than read: ROC curves, a confusion heat map, a box
//! plot and a recording's timeline, written as SVG (exact, for documents) and rendered
//! to PNG (for Markdown).

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
    /// An SVG could not be rendered (a bug: the SVG is generated).
    #[error("rendering an SVG: {reason}")]
    Render {
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

/// The colour of a timeline band by its state (`missing`, `gap`, `off`, `stale`).
fn band_color(state: &str) -> &'static str {
    match state {
        "missing" => "rgb(220,40,40)",
        "gap" => "rgb(60,60,60)",
        "stale" => "rgb(230,160,0)",
        _ => "rgb(150,150,150)",
    }
}

/// A recording's timeline: each class's share of the mask per second, stacked (`classes`
/// with their colours; `shares[second][class]`), over bands shading the seconds in
/// `bands` (first, last, state) when the AI was not on.
pub fn timeline_svg(
    classes: &[(String, [u8; 3])],
    shares: &[Vec<f64>],
    bands: &[(usize, usize, &str)],
) -> String {
    let n = shares.len().max(1) as f64;
    let (mut s, map) = frame("Timeline", "", "share of the mask", (0.0, 1.0));
    for &(a, b, state) in bands {
        let (x0, y0) = map(a as f64 / n, 1.0);
        let (x1, y1) = map((b + 1) as f64 / n, 0.0);
        let _ = writeln!(
            s,
            "<rect x=\"{x0:.2}\" y=\"{y0}\" width=\"{:.2}\" height=\"{}\" fill=\"{}\" fill-opacity=\"0.35\"><title>{}</title></rect>",
            x1 - x0,
            y1 - y0,
            band_color(state),
            esc(state)
        );
    }
    let mut below = vec![0.0; shares.len()];
    for (k, (name, color)) in classes.iter().enumerate() {
        let above: Vec<f64> = below
            .iter()
            .zip(shares)
            .map(|(b, v)| b + v.get(k).copied().unwrap_or(0.0))
            .collect();
        let mut pts = String::new();
        for (i, v) in above.iter().enumerate() {
            for x in [i, i + 1] {
                let (px, py) = map(x as f64 / n, *v);
                let _ = write!(pts, "{px:.2},{py:.2} ");
            }
        }
        for (i, v) in below.iter().enumerate().rev() {
            for x in [i + 1, i] {
                let (px, py) = map(x as f64 / n, *v);
                let _ = write!(pts, "{px:.2},{py:.2} ");
            }
        }
        let _ = writeln!(
            s,
            "<polygon points=\"{pts}\" fill=\"{}\" fill-opacity=\"0.85\"><title>{}</title></polygon>",
            css(*color),
            esc(name)
        );
        below = above;
    }
    timeline_axis(&mut s, &map, shares.len(), classes, bands);
    s.push_str("</svg>\n");
    s
}

/// The timeline's time ticks (seconds) and legend (classes, then band states).
fn timeline_axis(
    s: &mut String,
    map: &impl Fn(f64, f64) -> (f64, f64),
    seconds: usize,
    classes: &[(String, [u8; 3])],
    bands: &[(usize, usize, &str)],
) {
    // Whole seconds when the ticks fall on them (or the recording is long).
    let prec = usize::from(!seconds.is_multiple_of(5) && seconds < 50);
    for i in 0..=5 {
        let (x, y) = map(i as f64 / 5.0, 0.0);
        let _ = writeln!(
            s,
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{:.prec$} s</text>",
            y + 18.0,
            seconds as f64 * i as f64 / 5.0
        );
    }
    let mut states: Vec<&str> = bands.iter().map(|b| b.2).collect();
    states.sort_unstable();
    states.dedup();
    let entries = classes.iter().map(|(n, c)| (n.clone(), css(*c))).chain(
        states
            .iter()
            .map(|st| (format!("AI {st}"), band_color(st).to_string())),
    );
    // Entries flow left to right and wrap: seven classes and four states fit in three rows.
    let (mut x, mut y) = (80.0, H - 38.0);
    for (name, fill) in entries {
        let width = 30.0 + 7.0 * name.chars().count() as f64;
        if x + width > W - 10.0 && x > 80.0 {
            (x, y) = (80.0, y + 14.0);
        }
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{y}\" width=\"11\" height=\"11\" fill=\"{fill}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" {FONT}>{}</text>",
            x + 15.0,
            y + 10.0,
            esc(&name)
        );
        x += width;
    }
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
    let pixmap = render_pixmap(svg).map_err(|e| err(&svg_path, e))?;
    pixmap
        .save_png(&png_path)
        .map_err(|e| err(&png_path, e.to_string()))
}

/// An SVG rendered to pixels by [`render_svg_rgba`].
#[derive(Clone, Debug)]
pub struct Rendered {
    /// Width in pixels (the SVG's own).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA8, row-major, alpha premultiplied (as tiny-skia renders): blend onto a
    /// colour `d` as `rgb + d * (255 - a) / 255`.
    pub rgba: Vec<u8>,
}

/// Renders `svg` at its own size to premultiplied RGBA, text in the figures' fonts
/// (DejaVu Sans where installed), for captions burned into video: call it per caption,
/// the system fonts are loaded once per process.
pub fn render_svg_rgba(svg: &str) -> Result<Rendered, PlotError> {
    let pixmap = render_pixmap(svg).map_err(|reason| PlotError::Render { reason })?;
    Ok(Rendered {
        width: pixmap.width(),
        height: pixmap.height(),
        rgba: pixmap.take(),
    })
}

/// The system fonts, loaded once: loading them takes tens of milliseconds, too long to
/// repeat for each caption of a video.
fn fonts() -> std::sync::Arc<usvg::fontdb::Database> {
    static FONTS: std::sync::OnceLock<std::sync::Arc<usvg::fontdb::Database>> =
        std::sync::OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_system_fonts();
            std::sync::Arc::new(db)
        })
        .clone()
}

fn render_pixmap(svg: &str) -> Result<tiny_skia::Pixmap, String> {
    let opt = usvg::Options {
        fontdb: fonts(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| "empty figure".to_string())?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    Ok(pixmap)
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
        let tl = timeline_svg(
            &[
                ("bone".into(), [0, 150, 255]),
                ("disc".into(), [255, 200, 0]),
            ],
            &[vec![0.2, 0.1], vec![0.3, 0.0], vec![0.0, 0.0]],
            &[(2, 2, "missing")],
        );
        assert!(tl.contains("<title>missing</title>") && tl.contains("AI missing"));
        assert_eq!(tl.matches("<polygon").count(), 2);
        write_svg_png(&tl, dir.path(), "timeline").expect("timeline");
        let png = std::fs::read(dir.path().join("roc.png")).expect("png");
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 5_000, "a drawn figure, not an empty canvas");
    }

    #[test]
    fn an_svg_renders_to_premultiplied_rgba_with_text() {
        let svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"20\"><text x=\"2\" y=\"15\" font-size=\"14\" fill=\"white\" {FONT}>Foramen</text></svg>"
        );
        let r = render_svg_rgba(&svg).expect("render");
        assert_eq!((r.width, r.height, r.rgba.len()), (120, 20, 120 * 20 * 4));
        let inked = r.rgba.chunks(4).filter(|p| p[3] > 0).count();
        assert!(inked > 50, "the text is drawn: {inked} pixels");
        assert!(r.rgba.chunks(4).all(|p| p[0] <= p[3]), "premultiplied");
        assert!(render_svg_rgba("<svg").is_err());
    }

    #[test]
    fn quantiles_match_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.5), 2.5);
    }
}
