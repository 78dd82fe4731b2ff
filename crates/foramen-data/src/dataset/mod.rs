//! The Foramen data set format: `dataset.toml`, `images/`, `masks/`, and PaddleSeg
//! file lists (`train.txt`, `val.txt`, `test.txt`, lines `image_path mask_path`).

use std::path::{Path, PathBuf};

use foramen_core::{ClassInfo, ClassSet, ClassesError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::synth::{SceneSpec, render_still};

mod ignore;
mod shard;
mod tiles;
pub use ignore::ignored_flags;
pub use shard::{parse_shard, select_shard};
pub use tiles::side_by_side;

/// Errors reading or writing a data set; each names the file (and line) at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A list line is malformed or names a file that does not exist.
    #[error("{path}, line {line}: {message}")]
    List {
        /// The list file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `dataset.toml` is malformed.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// toml's message (names key and line) or the class-list error.
        message: String,
    },
    /// An image could not be encoded or decoded.
    #[error("{path}: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The codec's message.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The contents of `dataset.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetInfo {
    /// Short name, e.g. `lumbar-synth`.
    pub name: String,
    /// Free text: where the data came from, licence, how it was made.
    #[serde(default)]
    pub description: String,
    /// Mask value ignored in training and evaluation.
    #[serde(default = "foramen_core::classes::default_ignore")]
    pub ignore_index: u8,
    /// Classes in index order.
    pub classes: Vec<ClassInfo>,
    /// Classes whose truth pixels training and evaluation leave out (e.g. a `void` that
    /// marks unannotated gaps, as Cityscapes and CamVid treat it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_classes: Vec<String>,
}

impl DatasetInfo {
    /// The manifest file name inside a data set folder.
    pub const FILE: &'static str = "dataset.toml";

    /// Reads `DIR/dataset.toml`; `Ok(None)` when the folder has none (e.g. vocalfolds).
    pub fn read(dir: &Path) -> Result<Option<Self>, DataError> {
        let path = dir.join(Self::FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let info: Self = toml::from_str(&text).map_err(|e| DataError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        info.class_set().map_err(|e| DataError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if let Some(bad) = info
            .ignore_classes
            .iter()
            .find(|n| !info.classes.iter().any(|c| &c.name == *n))
        {
            return Err(DataError::Manifest {
                path,
                message: format!("ignore_classes: `{bad}` is not one of the classes"),
            });
        }
        Ok(Some(info))
    }

    /// Writes `DIR/dataset.toml`.
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        let path = dir.join(Self::FILE);
        let text = toml::to_string_pretty(self).map_err(|e| DataError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, text).map_err(io_err(&path))
    }

    /// The validated class set.
    pub fn class_set(&self) -> Result<ClassSet, ClassesError> {
        ClassSet::new(self.classes.clone(), self.ignore_index)
    }

    /// The class names for a folder of masks and where they came from: `given` (a
    /// command's `--classes`), else the classes of the `dataset.toml` in the folder or
    /// beside it (in its parent: `DATA/masks` is named by `DATA/dataset.toml`), else
    /// none, and the caller names the classes by index.
    pub fn names_for(
        masks: &Path,
        given: Option<Vec<String>>,
    ) -> Result<(Vec<String>, String), DataError> {
        if let Some(names) = given {
            return Ok((names, "--classes".into()));
        }
        for dir in std::iter::once(masks).chain(masks.parent()) {
            if let Some(info) = Self::read(dir)? {
                let names = info.classes.into_iter().map(|c| c.name).collect();
                return Ok((names, dir.join(Self::FILE).display().to_string()));
            }
        }
        Ok((Vec::new(), "indices".into()))
    }
}

/// One image and its mask, as absolute (root-joined) paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The picture.
    pub image: PathBuf,
    /// The class-index mask.
    pub mask: PathBuf,
}

/// The sequence (video, procedure) an image of the data set at `root` belongs to, for
/// figures by sequence and the temporal flip rate: its folder relative to `root`, and for
/// frames named `<video>_<digits>` (as `foramen extract` names them) the video too:
/// `img/patient1/seq3`, `frames/caseA`. Stills numbered alike (`synth_000123`) make one.
pub fn sequence_of(root: &Path, image: &Path) -> String {
    let rel = image.strip_prefix(root).unwrap_or(image);
    let folder = rel
        .parent()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .filter(|p| !p.is_empty());
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let stem = rel
        .file_stem()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let video = crate::labelstudio::source_video(&name);
    match (folder, video != stem) {
        (Some(f), true) => format!("{f}/{video}"),
        (Some(f), false) => f,
        (None, true) => video,
        (None, false) => ".".into(),
    }
}

/// Reads a PaddleSeg list: one `image_path mask_path` per line, relative to `root`.
/// Blank lines and `#` comments are skipped; every named file must exist.
pub fn read_list(root: &Path, list: &Path) -> Result<Vec<Sample>, DataError> {
    let text = std::fs::read_to_string(list).map_err(io_err(list))?;
    // A byte-order mark (editors on Windows add one) is not part of the first path.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    parse_list(text, root, list, |p| p.is_file())
}

/// Parses the text of list file `list` (named in errors), joining paths to `root` and
/// asking `exists` about each named file. [`read_list`] without the file system, so the
/// parser can be fuzzed.
pub fn parse_list(
    text: &str,
    root: &Path,
    list: &Path,
    exists: impl Fn(&Path) -> bool,
) -> Result<Vec<Sample>, DataError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| DataError::List {
            path: list.to_path_buf(),
            line: i + 1,
            message,
        };
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [image, mask] = parts[..] else {
            return Err(err(format!(
                "expected `image_path mask_path`, found {} field(s): {line:?}",
                parts.len()
            )));
        };
        let sample = Sample {
            image: root.join(image),
            mask: root.join(mask),
        };
        for p in [&sample.image, &sample.mask] {
            if !exists(p) {
                return Err(err(format!("file not found: {}", p.display())));
            }
        }
        out.push(sample);
    }
    Ok(out)
}

/// What `foramen synth --out` writes.
#[derive(Clone, Debug)]
pub struct SynthDatasetOptions {
    /// Number of scenes.
    pub count: usize,
    /// First seed; scene i uses `seed + i`.
    pub seed: u64,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Fractions for train and val; the rest is test.
    pub split: (f64, f64),
}

/// Counts written per list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitCounts {
    /// Lines in train.txt.
    pub train: usize,
    /// Lines in val.txt.
    pub val: usize,
    /// Lines in test.txt.
    pub test: usize,
}

/// Renders a synthetic lumbar data set into `out` (created if missing): images,
/// masks, lists and `dataset.toml`. `progress` is called once per scene written.
pub fn write_synth_dataset(
    out: &Path,
    opts: &SynthDatasetOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<SplitCounts, DataError> {
    for sub in ["images", "masks"] {
        let dir = out.join(sub);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    }
    let names: Vec<String> = (0..opts.count)
        .map(|i| format!("synth_{:06}", opts.seed + i as u64))
        .collect();
    names
        .par_iter()
        .enumerate()
        .try_for_each(|(i, name)| -> Result<(), DataError> {
            let r = render_still(
                &SceneSpec::from_seed(opts.seed + i as u64),
                opts.width,
                opts.height,
            );
            save_rgb(
                &out.join("images").join(format!("{name}.png")),
                r.width,
                r.height,
                r.rgb,
            )?;
            save_gray(
                &out.join("masks").join(format!("{name}.png")),
                r.width,
                r.height,
                r.mask,
            )?;
            progress();
            Ok(())
        })?;

    // Scenes are independent draws, so a split by index is a split by "procedure".
    let n_train = ((opts.count as f64 * opts.split.0).round() as usize).min(opts.count);
    let n_val = ((opts.count as f64 * opts.split.1).round() as usize).min(opts.count - n_train);
    let entries: Vec<String> = names
        .iter()
        .map(|name| format!("images/{name}.png masks/{name}.png"))
        .collect();
    let (train, rest) = entries.split_at(n_train);
    let (val, test) = rest.split_at(n_val);
    write_split_lists(out, [train, val, test])?;
    let counts = SplitCounts {
        train: train.len(),
        val: val.len(),
        test: test.len(),
    };
    let info = DatasetInfo {
        name: "lumbar-synth".into(),
        description: format!(
            "Synthetic transforaminal endoscopy scenes rendered by Foramen's generator, seeds {}..{}, {}x{}. Not real patient data.",
            opts.seed,
            opts.seed + opts.count as u64,
            opts.width,
            opts.height
        ),
        ignore_index: 255,
        classes: ClassSet::lumbar().classes,
        ignore_classes: Vec::new(),
    };
    info.write(out)?;
    Ok(counts)
}

/// Writes the split lists `train.txt`, `val.txt` and `test.txt` into `out`, one entry
/// (`images/<file> masks/<file>`) per line.
pub fn write_split_lists(out: &Path, lists: [&[String]; 3]) -> Result<(), DataError> {
    for (list, name) in lists.iter().zip(["train.txt", "val.txt", "test.txt"]) {
        let path = out.join(name);
        let mut text = list.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(&path, text).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Writes packed RGB8 as PNG.
pub fn save_rgb(path: &Path, w: u32, h: u32, rgb: Vec<u8>) -> Result<(), DataError> {
    save_png(path, image::RgbImage::from_raw(w, h, rgb))
}

/// Writes an 8-bit single-channel PNG.
pub fn save_gray(path: &Path, w: u32, h: u32, data: Vec<u8>) -> Result<(), DataError> {
    save_png(path, image::GrayImage::from_raw(w, h, data))
}

fn save_png<P>(path: &Path, img: Option<image::ImageBuffer<P, Vec<u8>>>) -> Result<(), DataError>
where
    P: image::PixelWithColorType + image::Pixel<Subpixel = u8>,
{
    let err = |message: String| DataError::Image {
        path: path.to_path_buf(),
        message,
    };
    img.ok_or_else(|| err("buffer size does not match image size".into()))?
        .save(path)
        .map_err(|e| err(e.to_string()))
}

/// Image files (png, jpg, bmp, tif) in `dir`, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads a class mask: one class index per pixel. 8-bit grey and palette PNGs give their
/// values and indices as they are; a 16-bit grey PNG is read when every value fits in
/// 8 bits and refused by name otherwise; a colour PNG is refused unless it is grey
/// (R = G = B). Other formats are read as 8-bit grey. The declared size is checked
/// against the pixel limit (`foramen_core::limits`) before anything is decoded.
pub fn load_mask(path: &Path) -> Result<image::GrayImage, DataError> {
    let bad = |message: String| DataError::Image {
        path: path.to_path_buf(),
        message,
    };
    let is_png = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut magic = [0u8; 8];
            std::io::Read::read_exact(&mut f, &mut magic).map(|_| magic)
        })
        .is_ok_and(|m| m == *b"\x89PNG\r\n\x1a\n");
    if is_png {
        return load_png_mask(path).map_err(bad);
    }
    let (w, h) = image::image_dimensions(path).map_err(|e| bad(e.to_string()))?;
    foramen_core::limits::check_pixels("the mask", w, h).map_err(|e| bad(e.to_string()))?;
    image::open(path)
        .map(|i| i.into_luma8())
        .map_err(|e| bad(e.to_string()))
}

/// A PNG class mask without the colour conversions a picture gets.
fn load_png_mask(path: &Path) -> Result<image::GrayImage, String> {
    use png::{BitDepth, ColorType};
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let (w, h) = (reader.info().width, reader.info().height);
    foramen_core::limits::check_pixels("the mask", w, h).map_err(|e| e.to_string())?;
    let (color, depth) = reader.output_color_type();
    let mut buf = vec![0u8; reader.output_buffer_size().ok_or("the mask is too large")?];
    let frame = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let n = (w * h) as usize;
    let rows = buf[..frame.buffer_size()].chunks(frame.line_size);
    let mut out = Vec::with_capacity(n);
    match (color, depth) {
        (ColorType::Grayscale | ColorType::Indexed, BitDepth::Eight) => {
            rows.for_each(|r| out.extend_from_slice(&r[..w as usize]));
        }
        (ColorType::Grayscale | ColorType::Indexed, d) if (d as u8) < 8 => {
            let bits = d as usize;
            for r in rows {
                out.extend((0..w as usize).map(|x| {
                    let shift = 8 - bits - (x * bits) % 8;
                    (r[x * bits / 8] >> shift) & ((1u16 << bits) - 1) as u8
                }));
            }
        }
        (ColorType::Grayscale, BitDepth::Sixteen) => {
            for r in rows {
                for px in r[..2 * w as usize].chunks(2) {
                    let v = u16::from_be_bytes([px[0], px[1]]);
                    let v = u8::try_from(v).map_err(|_| {
                        format!("16-bit mask with value {v}: class masks hold indices 0-255")
                    })?;
                    out.push(v);
                }
            }
        }
        (ColorType::Rgb | ColorType::Rgba, BitDepth::Eight) => {
            let ch = if color == ColorType::Rgb { 3 } else { 4 };
            for r in rows {
                for px in r[..ch * w as usize].chunks(ch) {
                    if px[0] != px[1] || px[1] != px[2] {
                        return Err(format!(
                            "colour mask (pixel {:?}): class masks are single-channel index images",
                            &px[..3]
                        ));
                    }
                    out.push(px[0]);
                }
            }
        }
        (ColorType::GrayscaleAlpha, BitDepth::Eight) => {
            rows.for_each(|r| out.extend(r[..2 * w as usize].iter().step_by(2)));
        }
        (c, d) => {
            return Err(format!(
                "{c:?} {d:?} PNG: class masks are 8-bit grey or palette"
            ));
        }
    }
    image::GrayImage::from_raw(w, h, out).ok_or_else(|| "truncated mask".to_string())
}

#[cfg(test)]
mod tests;
