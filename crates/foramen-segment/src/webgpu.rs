//! The WebGPU execution provider: one GPU path for every vendor (Vulkan, Metal, D3D12
//! through Dawn), ONNX Runtime's *plugin* provider `libonnxruntime_providers_webgpu.so`
//! (PyPI `onnxruntime-ep-webgpu`, pinned in `models/training/requirements.txt`),
//! registered with the environment and selected through its device.
//!
//! The session is first made with ONNX Runtime's CPU fallback turned off
//! (`session.disable_cpu_ep_fallback`): when that works, every node runs on WebGPU and
//! the provider is `webgpu`. When some nodes can only run on the CPU (ONNX Runtime says
//! so), it is made again with the fallback allowed and the provider is `webgpu+cpu`,
//! never plain `webgpu`. A provider that cannot start (no adapter: Dawn refuses Debian
//! 12's lavapipe, "Vulkan shaderUniform*ArrayDynamicIndexing required") is an error with
//! ONNX Runtime's reason, which the caller turns into an explicit CPU fallback or, with
//! `require_provider`, a load error.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use foramen_core::config::ModelConfig;
use ort::logging::LogLevel;
use ort::session::Session;

use crate::runtime::{find_onnxruntime, init_runtime};

/// The plugin's library in the `onnxruntime-ep-webgpu` package.
const LIB: &str = "libonnxruntime_providers_webgpu.so";

/// The provider's name among ONNX Runtime's devices.
pub const EP_NAME: &str = "WebGpuExecutionProvider";

/// `[model] webgpu_library`, else the plugin beside the ONNX Runtime library in use, else
/// `onnxruntime_ep_webgpu/` in the `site-packages` that holds it.
pub fn library(cfg: &ModelConfig) -> Result<PathBuf, String> {
    if let Some(p) = &cfg.webgpu_library {
        return match p.is_file() {
            true => Ok(p.clone()),
            false => Err(format!(
                "[model] webgpu_library {}: no such file",
                p.display()
            )),
        };
    }
    let ort = find_onnxruntime().ok_or("ONNX Runtime library not found")?;
    // Beside the library (a bundle, docs/GPU.md), or in the package next to onnxruntime's.
    let beside = ort.parent().map(|d| d.join(LIB));
    beside
        .into_iter()
        .chain(
            ort.ancestors()
                .map(|d| d.join("onnxruntime_ep_webgpu").join(LIB)),
        )
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{LIB} not found near {} (pip install onnxruntime-ep-webgpu, or set \
                 [model] webgpu_library)",
                ort.display()
            )
        })
}

/// Registers the plugin once per process (ONNX Runtime refuses a second registration,
/// so the first library registered is the one used).
fn register(lib: &Path) -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let env = init_runtime().map_err(|e| e.to_string())?;
            env.register_ep_library("webgpu", lib)
                .map_err(|e| format!("{}: {e}", lib.display()))
        })
        .clone()
}

/// ONNX Runtime's answer when nodes would need the CPU and its fallback is off.
const NEEDS_CPU: &str = "fallback to CPU EP has been explicitly disabled";

/// A session of `path` on WebGPU and whether some of its nodes run on the CPU, or why
/// there is none.
pub fn session(path: &Path, cfg: &ModelConfig) -> Result<(Session, bool), String> {
    match session_with(path, cfg, false) {
        Err(e) if e.contains(NEEDS_CPU) => session_with(path, cfg, true).map(|s| (s, true)),
        other => other.map(|s| (s, false)),
    }
}

/// A session of `path` on the WebGPU device, with or without ONNX Runtime's CPU fallback.
fn session_with(path: &Path, cfg: &ModelConfig, cpu_too: bool) -> Result<Session, String> {
    let lib = library(cfg)?;
    register(&lib)?;
    let env = init_runtime().map_err(|e| e.to_string())?;
    let devices: Vec<_> = env
        .devices()
        .filter(|d| d.ep().is_ok_and(|ep| ep == EP_NAME))
        .collect();
    if devices.is_empty() {
        return Err(
            "the WebGPU provider found no GPU adapter (no Vulkan loader or GPU; \
                    ORT_WEBGPU_EP_ALLOW_SOFTWARE_ADAPTER=1 lets it try a CPU Vulkan driver)"
                .into(),
        );
    }
    crate::session::base_builder(cfg)
        .map_err(|e| e.to_string())?
        .with_config_entry(
            "session.disable_cpu_ep_fallback",
            if cpu_too { "0" } else { "1" },
        )
        .map_err(|e| e.to_string())?
        // The all-WebGPU try fails as expected for most models: its error is the answer
        // read below, not a line for the log.
        .with_log_level(if cpu_too {
            LogLevel::Warning
        } else {
            LogLevel::Fatal
        })
        .map_err(|e| e.to_string())?
        .with_devices(devices, None)
        .map_err(|e| e.to_string())?
        .commit_from_file(path)
        .map_err(|e| first_line_of_reason(&e.to_string()))
}

/// ONNX Runtime's EP errors carry file and line prefixes: the part a person reads.
fn first_line_of_reason(e: &str) -> String {
    let reason = e
        .rsplit_once("was false. ")
        .map_or(e, |(_, r)| r)
        .lines()
        .next()
        .unwrap_or(e);
    reason.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dawns_reason_is_kept_and_its_source_location_dropped() {
        let e = "Error creating execution provider: [ONNXRuntimeError] : 11 : EP_FAIL : \
                 /src/webgpu_context.cc:136 lambda adapter_result.status == \
                 wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU \
                 adapter: No supported adapters\n";
        assert_eq!(
            first_line_of_reason(e),
            "Failed to get a WebGPU adapter: No supported adapters"
        );
        assert_eq!(first_line_of_reason("plain"), "plain");
    }

    #[test]
    fn a_missing_library_is_named_with_the_way_to_get_it() {
        let cfg = ModelConfig {
            webgpu_library: Some("/nonexistent/libwebgpu.so".into()),
            ..ModelConfig::default()
        };
        let e = library(&cfg).expect_err("missing");
        assert!(
            e.contains("webgpu_library /nonexistent/libwebgpu.so: no such file"),
            "{e}"
        );
    }
}
