//! Image URLs of Label Studio tasks: writing them (`foramen export label-studio`) and
//! finding the file a task's URL names (`foramen import label-studio`). A local-files
//! storage URL (`/data/local-files/?d=images/a.png`) names a path relative to the
//! storage's document root in its `d` parameter, percent-decoded as Label Studio's server
//! decodes it; an upload (`/data/upload/3/1a2b3c4d-a.png`) carries an 8-hex-digit prefix.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Decodes `%XX` escapes (and `+` as a space in a query, as a server parses one); a
/// malformed escape stays as it is, bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' && plus_is_space {
            b' '
        } else {
            b[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The path a local-files URL names, relative to the document root: its `d` query
/// parameter, decoded (`/data/local-files/?d=images%2Fa%20b.png` -> `images/a b.png`).
/// `None` for URLs without a `d` parameter.
pub fn local_files_path(url: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("d="))
        .map(|v| percent_decode(v, true))
}

/// The image's file name: the last component of a local-files path or of the URL's
/// path (decoded), with Label Studio's upload prefix (8 hex digits and a dash) removed
/// from uploads.
pub fn image_file_name(url: &str) -> String {
    let path = local_files_path(url)
        .unwrap_or_else(|| percent_decode(url.split(['?', '#']).next().unwrap_or(url), false));
    let name = path.rsplit(['/', '\\']).next().unwrap_or(&path);
    // Only uploaded files carry Label Studio's 8-hex-digit prefix: a local file named
    // `20240131-case7.png` keeps its date.
    let uploaded = url.contains("/data/upload/");
    match name.split_once('-') {
        Some((prefix, rest))
            if uploaded
                && prefix.len() == 8
                && prefix.chars().all(|c| c.is_ascii_hexdigit())
                && !rest.is_empty() =>
        {
            rest.to_string()
        }
        _ => name.to_string(),
    }
}

/// The URL of image file `name` under `root` (`/data/local-files/?d=images`), the name
/// percent-encoded so that Label Studio's server decodes it back; the bare name when
/// `root` is empty.
pub fn image_url(root: &str, name: &str) -> String {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        name.to_string()
    } else {
        format!("{root}/{}", percent_encode(name))
    }
}

/// The image files an export's tasks name, under one folder (`--images`): a local-files
/// path is taken relative to the folder where that file exists (the whole path, else
/// the path without its first folders: `d=images/a.png` is found under the document
/// root and under `images/` itself); otherwise, and for other URLs, the folder's images
/// are matched by file name.
pub struct ImageFiles {
    root: PathBuf,
    by_name: BTreeMap<String, PathBuf>,
}

impl ImageFiles {
    /// Lists the images directly in `root`.
    pub fn new(root: &Path) -> Result<Self, crate::DataError> {
        let by_name = crate::dataset::list_images(root)?
            .into_iter()
            .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), p)))
            .collect();
        Ok(Self {
            root: root.to_path_buf(),
            by_name,
        })
    }

    /// The file task image `url` names, if it is there.
    pub fn find(&self, url: &str) -> Option<PathBuf> {
        if let Some(rel) = local_files_path(url) {
            let parts: Vec<&str> = rel.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
            for k in 0..parts.len() {
                let tail = parts[k..].join("/");
                let tail = Path::new(&tail);
                // Never outside the folder: no `..`, no root.
                if tail.components().all(|c| matches!(c, Component::Normal(_))) {
                    let p = self.root.join(tail);
                    if p.is_file() {
                        return Some(p);
                    }
                }
            }
        }
        self.by_name.get(&image_file_name(url)).cloned()
    }
}
