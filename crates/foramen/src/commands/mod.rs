//! One file per subcommand, named after it; each has its `Args` (clap) and an `exec`
//! that does the command's I/O over the library crates.

pub mod bench;
pub mod check;
pub mod clip;
pub mod compare;
pub mod eval;
pub mod extract;
pub mod labelstudio;
pub mod live;
pub mod recording;
pub mod replay;
pub mod report;
pub mod segment;
pub mod synth;
