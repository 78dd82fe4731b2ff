//! What can stop a pipeline from starting or finishing. Each variant names the file,
//! input or thread concerned; the binary adds no context of its own.

use std::path::PathBuf;

use foramen_capture::CaptureError;
use foramen_segment::SegmentError;

/// A pipeline error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The input (file, folder, device or `synthetic:...`) could not be opened.
    #[error("opening {input}")]
    Open {
        /// The input as given.
        input: String,
        /// Why.
        #[source]
        source: CaptureError,
    },
    /// No `--model` and no bundled model.
    #[error("no --model given and the bundled {looked_for} was not found")]
    NoModel {
        /// The bundled paths looked for.
        looked_for: String,
    },
    /// The model could not be loaded.
    #[error("loading model {}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// Why.
        #[source]
        source: SegmentError,
    },
    /// A file could not be created or written.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done, e.g. `creating`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The recording folder could not be set up.
    #[error("cannot record into {}: {error}", path.display())]
    Record {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The output video could not be created, written or closed.
    #[error("{what} {}", path.display())]
    Encode {
        /// What was being done.
        what: &'static str,
        /// The output video.
        path: PathBuf,
        /// Why.
        #[source]
        source: CaptureError,
    },
    /// A stage's thread could not be started.
    #[error("starting the {name} thread")]
    Spawn {
        /// The thread's name.
        name: &'static str,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A session ended without a single frame.
    #[error("no frames from {source_name}{why}")]
    NoFrames {
        /// The source.
        source_name: String,
        /// `: the last capture error`, or empty.
        why: String,
    },
    /// A line of an inputs list cannot be used.
    #[error("{}, line {line}: {message}", path.display())]
    List {
        /// The list file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A stage's thread panicked.
    #[error("{name} thread panicked")]
    Panicked {
        /// The thread's name.
        name: &'static str,
    },
}

/// An error with its causes, `a: b: c`, as the binary prints them.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

impl PipelineError {
    /// An I/O error on `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}
