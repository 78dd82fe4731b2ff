//! The Foramen data set format: `dataset.toml`, `images/`, `masks/`, and PaddleSeg
//! file lists (`train.txt`, `val.txt`, `test.txt`, lines `image_path mask_path`).

use std::io::Write;
use std::path::{Path, PathBuf};

use foramen_core::{ClassInfo, ClassSet, ClassesError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::synth::{SceneSpec, render_still};

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
}

/// One image and its mask, as absolute (root-joined) paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The picture.
    pub image: PathBuf,
    /// The class-index mask.
    pub mask: PathBuf,
}

/// Reads a PaddleSeg list: one `image_path mask_path` per line, relative to `root`.
/// Blank lines and `#` comments are skipped; every named file must exist.
pub fn read_list(root: &Path, list: &Path) -> Result<Vec<Sample>, DataError> {
    let text = std::fs::read_to_string(list).map_err(io_err(list))?;
    parse_list(&text, root, list, |p| p.is_file())
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
    let n_train = (opts.count as f64 * opts.split.0).round() as usize;
    let n_val = (opts.count as f64 * opts.split.1).round() as usize;
    let mut counts = SplitCounts::default();
    for (list, range, slot) in [
        ("train.txt", 0..n_train, &mut counts.train),
        (
            "val.txt",
            n_train..(n_train + n_val).min(opts.count),
            &mut counts.val,
        ),
        (
            "test.txt",
            (n_train + n_val).min(opts.count)..opts.count,
            &mut counts.test,
        ),
    ] {
        let path = out.join(list);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io_err(&path))?);
        for name in &names[range] {
            writeln!(f, "images/{name}.png masks/{name}.png").map_err(io_err(&path))?;
            *slot += 1;
        }
        f.flush().map_err(io_err(&path))?;
    }
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

/// Reads an 8-bit single-channel mask PNG.
pub fn load_mask(path: &Path) -> Result<image::GrayImage, DataError> {
    image::open(path)
        .map(|i| i.into_luma8())
        .map_err(|e| DataError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synth_dataset_round_trips_through_lists() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = SynthDatasetOptions {
            count: 10,
            seed: 100,
            width: 96,
            height: 54,
            split: (0.8, 0.1),
        };
        let counts = write_synth_dataset(dir.path(), &opts, &|| ()).expect("write");
        assert_eq!(
            counts,
            SplitCounts {
                train: 8,
                val: 1,
                test: 1
            }
        );
        let train = read_list(dir.path(), &dir.path().join("train.txt")).expect("list");
        assert_eq!(train.len(), 8);
        let mask = load_mask(&train[0].mask).expect("mask");
        assert_eq!(mask.dimensions(), (96, 54));
        assert!(mask.pixels().all(|p| p.0[0] <= 3));
        let info = DatasetInfo::read(dir.path())
            .expect("read")
            .expect("present");
        assert_eq!(
            info.class_set().expect("valid").names(),
            ["background", "bone", "ligament", "disc"]
        );
    }

    #[test]
    fn list_errors_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let list = dir.path().join("l.txt");
        std::fs::write(dir.path().join("a.png"), b"x").expect("w");
        std::fs::write(&list, "# comment\na.png a.png\n\nonly_one_field\n").expect("w");
        let msg = read_list(dir.path(), &list).unwrap_err().to_string();
        assert!(
            msg.contains("l.txt, line 4") && msg.contains("1 field"),
            "{msg}"
        );

        std::fs::write(&list, "a.png missing.png\n").expect("w");
        let msg = read_list(dir.path(), &list).unwrap_err().to_string();
        assert!(
            msg.contains("line 1") && msg.contains("missing.png"),
            "{msg}"
        );
    }

    #[test]
    fn manifest_errors_are_reported() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("dataset.toml"),
            "name = \"x\"\n[[classes]]\nindex = 1\nname = \"a\"\ncolor = [0, 0, 0]\n",
        )
        .expect("w");
        let msg = DatasetInfo::read(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("dataset.toml") && msg.contains("expected 0"),
            "{msg}"
        );
    }

    #[test]
    fn reads_vocalfolds_lists_when_present() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/vocalfolds");
        if !root.exists() {
            eprintln!("skipping: {} not present", root.display());
            return;
        }
        let val = read_list(&root, &root.join("val.txt")).expect("val list");
        assert_eq!(val.len(), 70);
        assert!(DatasetInfo::read(&root).expect("read").is_none());
        let m = load_mask(&val[0].mask).expect("mask");
        assert!(m.pixels().all(|p| p.0[0] <= 6));
    }
}
