//! The one rule for outputs: nothing a command writes may be, contain or lie inside one
//! of its inputs. Paths are compared as they resolve on disk (links followed, `..` and
//! `.` removed, hard links recognised), so another spelling of the same file is caught.
//! Besides the inputs a command names, the settings file and the model are inputs of
//! every command: the binary registers them once with [`protect`].

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Inputs of every command in this process (the settings file, the model), registered
/// by the binary when it knows them. Without them `replay v.mp4 --out model.onnx` would
/// replace the model with a video.
static PROTECTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Adds `paths` to the inputs every later [`check_output`] of this process protects.
pub fn protect<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) {
    crate::sync::lock(&PROTECTED).extend(paths.into_iter().map(|p| p.as_ref().to_path_buf()));
}

/// Links followed before a path is taken as it is written (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// An output that would destroy or pollute an input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("refusing to write {}: it {relation} the input {}; choose an output outside the inputs", output.display(), input.display())]
pub struct OutputClash {
    /// The output as given.
    pub output: PathBuf,
    /// The input as given.
    pub input: PathBuf,
    /// `is`, `lies inside` or `contains`.
    pub relation: &'static str,
}

/// `path` as it resolves on disk: the canonical form of its longest existing ancestor
/// (links followed) with the rest appended, `.` and `..` resolved lexically.
pub fn resolve(path: &Path) -> PathBuf {
    resolve_links(path, MAX_LINKS)
}

/// [`resolve`], where a dangling link on the way counts as where it points (writing
/// through `out -> images/new.png` creates the file inside `images`).
fn resolve_links(path: &Path, links_left: usize) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut existing = abs.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        // A dangling link counts as where it points.
        let base = existing.canonicalize().ok().or_else(|| {
            let is_link = std::fs::symlink_metadata(existing)
                .ok()?
                .file_type()
                .is_symlink();
            if !is_link || links_left == 0 {
                return None;
            }
            let target = std::fs::read_link(existing).ok()?;
            Some(resolve_links(
                &existing.parent()?.join(target),
                links_left - 1,
            ))
        });
        if let Some(mut out) = base {
            for part in rest.iter().rev() {
                push_lexical(&mut out, Path::new(part));
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            // `..` at the end or the root: resolve what is left lexically.
            _ => {
                let mut out = PathBuf::new();
                push_lexical(&mut out, &abs);
                return out;
            }
        }
    }
}

fn push_lexical(out: &mut PathBuf, part: &Path) {
    for c in part.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
}

/// Same file on disk (hard links included), when both exist.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

/// Refuses `output` when it is one of `inputs` or of the [`protect`]ed files, lies inside
/// an input folder, or is a folder that contains an input. Inputs that do not exist are
/// skipped (the command reports them itself).
pub fn check_output(output: &Path, inputs: &[&Path]) -> Result<(), OutputClash> {
    let out = resolve(output);
    let protected = crate::sync::lock(&PROTECTED).clone();
    for input in inputs
        .iter()
        .copied()
        .chain(protected.iter().map(PathBuf::as_path))
    {
        if !input.exists() {
            continue;
        }
        let inp = resolve(input);
        let relation = if out == inp || same_file(output, input) {
            "is"
        } else if out.starts_with(&inp) {
            "lies inside"
        } else if inp.starts_with(&out) {
            "contains"
        } else {
            continue;
        };
        return Err(OutputClash {
            output: output.to_path_buf(),
            input: input.to_path_buf(),
            relation,
        });
    }
    Ok(())
}

/// Refuses two outputs of one command that are the same file (the second would
/// overwrite the first).
pub fn check_distinct(a: &Path, b: &Path) -> Result<(), OutputClash> {
    if resolve(a) == resolve(b) {
        return Err(OutputClash {
            output: b.to_path_buf(),
            input: a.to_path_buf(),
            relation: "is",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_input_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let video = d.join("v.mp4");
        std::fs::write(&video, b"x").expect("write");
        std::fs::create_dir_all(d.join("images/sub")).expect("mkdir");
        let clash = |out: &Path, inp: &Path| check_output(out, &[inp]).map_err(|e| e.relation);
        assert_eq!(clash(&video, &video), Err("is"));
        assert_eq!(clash(&d.join("images/../v.mp4"), &video), Err("is"));
        assert_eq!(clash(&d.join("./images/./../v.mp4"), &video), Err("is"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&video, d.join("link.mp4")).expect("symlink");
            assert_eq!(clash(&d.join("link.mp4"), &video), Err("is"));
            std::fs::hard_link(&video, d.join("hard.mp4")).expect("hard link");
            assert_eq!(clash(&d.join("hard.mp4"), &video), Err("is"));
        }
        let images = d.join("images");
        assert_eq!(clash(&images, &images), Err("is"));
        assert_eq!(
            clash(&d.join("images/sub/new/out"), &images),
            Err("lies inside")
        );
        assert_eq!(clash(d, &images), Err("contains"));
        assert_eq!(clash(&d.join("out"), &images), Ok(()));
        assert_eq!(clash(&d.join("imagesX"), &images), Ok(()));
        assert_eq!(clash(&d.join("out.mp4"), &d.join("missing.mp4")), Ok(()));
        let e = check_output(&video, &[&video])
            .expect_err("clash")
            .to_string();
        assert!(e.contains("v.mp4") && e.contains("is the input"), "{e}");
    }

    #[test]
    fn a_dangling_link_counts_as_where_it_points() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let images = d.join("images");
        std::fs::create_dir_all(&images).expect("mkdir");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(images.join("new.png"), d.join("out.png")).expect("link");
            std::os::unix::fs::symlink(images.join("new"), d.join("outdir")).expect("link");
            let clash = |out: &Path| check_output(out, &[&images]).map_err(|e| e.relation);
            assert_eq!(clash(&d.join("out.png")), Err("lies inside"));
            assert_eq!(clash(&d.join("outdir/masks/a.png")), Err("lies inside"));
            // A loop of links is taken as written, not followed forever.
            std::os::unix::fs::symlink(d.join("b"), d.join("a")).expect("link");
            std::os::unix::fs::symlink(d.join("a"), d.join("b")).expect("link");
            assert_eq!(clash(&d.join("a")), Ok(()));
        }
    }

    #[test]
    fn protected_files_are_inputs_of_every_check() {
        let dir = tempfile::tempdir().expect("tmp");
        let model = dir.path().join("model.onnx");
        let settings = dir.path().join("or.toml");
        std::fs::write(&model, b"onnx").expect("write");
        std::fs::write(&settings, b"").expect("write");
        assert!(check_output(&model, &[]).is_ok(), "not registered yet");
        protect([&model, &settings]);
        let e = check_output(&dir.path().join("x/../model.onnx"), &[]).expect_err("model");
        assert_eq!((e.relation, e.input.as_path()), ("is", model.as_path()));
        assert!(check_output(&settings, &[]).is_err());
        assert!(check_output(&dir.path().join("out.mp4"), &[]).is_ok());
    }

    #[test]
    fn two_outputs_may_not_be_one_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = dir.path().join("tasks.xml");
        assert!(check_distinct(&a, &dir.path().join("x/../tasks.xml")).is_err());
        assert!(check_distinct(&a, &dir.path().join("tasks.json")).is_ok());
    }
}
