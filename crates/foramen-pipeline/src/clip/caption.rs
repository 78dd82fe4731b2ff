//! The caption burned into a clip: the class legend, the time in the recording, what the
//! AI showed on the frame and the research notice, as SVG text rendered by
//! `foramen_eval::plot::render_svg_rgba` on a semi-transparent dark panel at the
//! bottom-left.
//!
//! One line when it fits the frame's width, else two (legend above); the layout is
//! chosen once per clip so the band keeps its place. The text is rendered again only when
//! it changes (the time has tenths of a second), not for every frame.

use foramen_core::ClassSet;
use foramen_eval::plot::{PlotError, Rendered, render_svg_rgba};
use foramen_overlay::OverlayStyle;

/// The notice every clip carries.
pub const RESEARCH_NOTICE: &str = "RESEARCH MODEL - NOT FOR CLINICAL USE";

/// What the AI showed on a frame of the clip, as its caption says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AiState {
    /// The recorded mask is drawn (`AI: on`).
    Drawn,
    /// The mask was older than `[inference].max_mask_age_ms`: not drawn (`AI: stale`).
    Stale,
    /// The mask cannot be read back from `masks.bin` (cut by a crash, damaged): not
    /// drawn (`AI: no mask`).
    Unreadable,
    /// The frame had no mask when it was captured (`AI: off`).
    NoMask,
    /// `--overlay off`: no mask is drawn on any frame (`overlay off`).
    OverlayOff,
}

impl AiState {
    /// The caption's words.
    pub fn caption(self) -> &'static str {
        match self {
            Self::Drawn => "AI: on",
            Self::Stale => "AI: stale",
            Self::Unreadable => "AI: no mask",
            Self::NoMask => "AI: off",
            Self::OverlayOff => "overlay off",
        }
    }
}

/// Font size, line height and padding of the caption for a frame height, in pixels.
fn metrics(height: u32) -> (u32, u32, u32) {
    // 2 % of the height (22 px at 1080p, legible on the theatre's monitors), never so
    // small that a low-resolution recording's caption cannot be read at all.
    let font = ((height as f64 * 0.02).round() as u32).max(9);
    let line = (font as f64 * 1.3).ceil() as u32;
    let pad = ((font as f64 * 0.5).round() as u32).max(2);
    (font, line, pad)
}

/// The most rows the caption takes at the bottom of a `height`-row frame (two lines):
/// everything above them is the compositor's picture.
pub fn caption_band_height(height: u32) -> u32 {
    let (_, line, pad) = metrics(height);
    (2 * line + pad).min(height)
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The caption of one clip: its layout and the last rendering.
pub(crate) struct Caption {
    /// The legend's SVG (tspans), empty with the overlay off.
    legend: String,
    /// Frame size.
    width: u32,
    height: u32,
    /// Lines (1 or 2), font, line height, padding.
    pub(super) lines: u32,
    font: u32,
    line: u32,
    pad: u32,
    /// The text last rendered, its pixels and the panel's width.
    cache: Option<(String, Rendered, u32)>,
}

impl Caption {
    /// The caption for `width` x `height` frames: the legend lists the classes `style`
    /// draws (none when `draw_masks` is off).
    pub(crate) fn new(
        classes: &ClassSet,
        style: &OverlayStyle,
        draw_masks: bool,
        width: u32,
        height: u32,
    ) -> Self {
        let drawn: Vec<_> = classes
            .classes
            .iter()
            .skip(1)
            .filter(|c| draw_masks && style.visible[c.index as usize])
            .collect();
        let legend: String = drawn
            .iter()
            .map(|c| {
                let [r, g, b] = c.color;
                format!(
                    "<tspan fill=\"rgb({r},{g},{b})\">\u{25A0}</tspan> {}   ",
                    esc(&c.name)
                )
            })
            .collect();
        let legend_chars: usize = drawn.iter().map(|c| c.name.chars().count() + 5).sum();
        let (font, line, pad) = metrics(height);
        // The longest second part: "00:00.0 · AI: no mask · RESEARCH ...".
        let rest_chars = 7 + 3 + 11 + 3 + RESEARCH_NOTICE.len();
        // DejaVu Sans averages about 0.62 em per character in this mix of capitals.
        let one_line = (legend_chars + rest_chars) as f64 * 0.62 * font as f64;
        let lines = if one_line + 2.0 * pad as f64 <= width as f64 || legend.is_empty() {
            1
        } else {
            2
        };
        Self {
            legend,
            width,
            height,
            lines,
            font,
            line,
            pad,
            cache: None,
        }
    }

    /// Rows of the band.
    fn band(&self) -> u32 {
        (self.lines * self.line + self.pad).min(self.height)
    }

    /// The caption's SVG for a frame at `time` saying `state`.
    pub(super) fn svg(&self, time: &str, state: AiState) -> String {
        let (font, line, pad) = (self.font, self.line, self.pad);
        let text = |i: u32, body: &str| {
            let y = pad / 2 + (font as f64 * 0.95).round() as u32 + i * line;
            format!(
                "<text x=\"{pad}\" y=\"{y}\" font-size=\"{font}\" fill=\"white\" \
                 font-family=\"DejaVu Sans, sans-serif\" xml:space=\"preserve\">{body}</text>"
            )
        };
        let rest = format!("{time} \u{b7} {} \u{b7} {RESEARCH_NOTICE}", state.caption());
        let body = if self.lines == 1 {
            text(0, &format!("{}{rest}", self.legend))
        } else {
            text(0, &self.legend) + &text(1, &rest)
        };
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">{body}</svg>",
            self.width,
            self.band()
        )
    }

    /// Burns the caption into `rgb` (packed RGB8 of the caption's frame size).
    pub(crate) fn draw(
        &mut self,
        rgb: &mut [u8],
        time: &str,
        state: AiState,
    ) -> Result<(), PlotError> {
        let key = format!("{time}|{}", state.caption());
        if self.cache.as_ref().is_none_or(|c| c.0 != key) {
            let r = render_svg_rgba(&self.svg(time, state))?;
            // The panel ends a padding after the text's last inked column.
            let inked = (0..r.width as usize)
                .rev()
                .find(|&x| {
                    (0..r.height as usize).any(|y| r.rgba[(y * r.width as usize + x) * 4 + 3] > 0)
                })
                .map_or(0, |x| x as u32 + 1);
            let panel = (inked + self.pad).min(self.width);
            self.cache = Some((key, r, panel));
        }
        let Some((_, r, panel)) = &self.cache else {
            return Ok(());
        };
        let (w, band) = (self.width as usize, self.band() as usize);
        let top = self.height as usize - band;
        for y in 0..band {
            let row = &mut rgb[(top + y) * w * 3..(top + y + 1) * w * 3];
            let ink = &r.rgba[y * r.width as usize * 4..(y + 1) * r.width as usize * 4];
            for x in 0..*panel as usize {
                let (o, t) = (&mut row[x * 3..x * 3 + 3], &ink[x * 4..x * 4 + 4]);
                for k in 0..3 {
                    // The panel: black at 60 % opacity, then the text over it.
                    let dark = o[k] as u32 * 102 / 255;
                    o[k] = (t[k] as u32 + dark * (255 - t[3] as u32) / 255).min(255) as u8;
                }
            }
        }
        Ok(())
    }
}
