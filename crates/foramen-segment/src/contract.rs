//! The contract a Foramen model carries in its ONNX metadata (key `foramen`): classes,
//! input size and normalisation, output kind. Nothing about a model is hard-coded in Rust.

use foramen_core::{ClassInfo, ClassSet};
use serde::{Deserialize, Serialize};

/// Input tensor description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Graph input name.
    pub name: String,
    /// Width the network expects.
    pub width: u32,
    /// Height the network expects.
    pub height: u32,
    /// Only `NCHW` is supported.
    pub layout: String,
    /// Only `RGB` is supported.
    pub color: String,
    /// Pixel values are divided by this first (255 for 0..1).
    pub scale: f32,
    /// Per-channel mean subtracted after scaling.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by last.
    pub std: [f32; 3],
    /// Only `stretch` (plain resize to width x height) is supported.
    #[serde(default = "stretch")]
    pub resize: String,
}

fn stretch() -> String {
    "stretch".into()
}

/// Output tensor description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Graph output name.
    pub name: String,
    /// `logits` (softmax applied here) or `probabilities`.
    pub kind: String,
}

/// How an INT8 variant was quantized (`foramen_train.quantize` writes it; absent in a
/// float model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// `QDQ`.
    pub format: String,
    /// Bits of the weights: 7 (`--reduce-range`, the default: safe on every x86 CPU) or
    /// 8 (`--full-range`: only where the CPU has VNNI, see [`int8_cpu_refusal`]).
    pub weight_bits: u8,
    /// Bits of the depthwise convolutions' weights, 8 even beside 7-bit `weight_bits`
    /// (`--depthwise-bits`, since 2026-12-04): ONNX Runtime runs depthwise layers with a
    /// kernel of their own that widens both operands to 16 bits and adds in 32, so they
    /// cannot saturate on any CPU and [`int8_cpu_refusal`] need not look at them. Absent
    /// in models quantized before: as `weight_bits`.
    #[serde(default)]
    pub depthwise_weight_bits: Option<u8>,
    /// Calibration method (`minmax`, `entropy`, `percentile`).
    #[serde(default)]
    pub calibration: String,
    /// Training frames the activations were calibrated on.
    #[serde(default)]
    pub calibration_frames: u32,
    /// Weight-name prefixes of the layers left in float (`--keep-float`): the bundled
    /// vocalfolds model keeps its encoder's first layers, where 7-bit weights shifted the
    /// decisions most.
    #[serde(default)]
    pub float_layers: Vec<String>,
}

/// Why an INT8 model must not run on this CPU, if it must not: ONNX Runtime adds u8 x s8
/// products in pairs into 16 bits on x86 CPUs without VNNI (AVX2 only), which 8-bit
/// weights overflow, and the masks turn to garbage without any error (an earlier
/// Lite0 model scored 0.500 mIoU against 0.79). 7-bit weights cannot overflow; VNNI
/// adds in 32 bits. `provider` is the provider in use; only the CPU runs these kernels.
pub fn int8_cpu_refusal(
    quantization: Option<&Quantization>,
    provider: &str,
    x86_without_vnni: bool,
) -> Option<String> {
    let q = quantization?;
    let on_cpu = provider.split('+').any(|p| p == "cpu");
    (q.weight_bits > 7 && on_cpu && x86_without_vnni).then(|| {
        format!(
            "this INT8 model has {}-bit weights, which overflow on an x86 CPU without VNNI (as \
             this one is) and give wrong masks: quantize it with --reduce-range (the default), \
             or run the FP32 model",
            q.weight_bits
        )
    })
}

/// True on an x86 CPU whose integer dot products lack VNNI (neither AVX-512 VNNI nor
/// AVX-VNNI), where 8-bit INT8 weights overflow; false elsewhere (ARM has no such limit).
pub fn x86_without_vnni() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        !(std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni"))
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
    {
        false
    }
}

/// Everything Foramen needs to know to run a model, read from the model itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelContract {
    /// Contract version; this build reads version 1.
    pub format: u32,
    /// Model name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Classes in index order with display colours.
    pub classes: Vec<ClassInfo>,
    /// Mask value for "not labelled".
    #[serde(default = "ignore")]
    pub ignore_index: u8,
    /// Classes whose truth pixels evaluation leaves out (a `void` that marks unannotated
    /// gaps, as Cityscapes treats it); `foramen eval` with this model uses them.
    #[serde(default)]
    pub ignore_classes: Vec<String>,
    /// Input.
    pub input: InputSpec,
    /// Output.
    pub output: OutputSpec,
    /// How it was trained (free-form, shown in reports).
    #[serde(default)]
    pub training: serde_json::Value,
    /// How it was quantized, for an INT8 variant.
    #[serde(default)]
    pub quantization: Option<Quantization>,
}

fn ignore() -> u8 {
    255
}

impl ModelContract {
    /// The metadata key holding the JSON contract.
    pub const METADATA_KEY: &'static str = "foramen";

    /// Parses and checks the JSON contract.
    pub fn parse(json: &str) -> Result<Self, String> {
        let c: Self = serde_json::from_str(json)
            .map_err(|e| format!("`{}` is not a valid contract: {e}", Self::METADATA_KEY))?;
        if c.format != 1 {
            return Err(format!(
                "contract format {} is not supported (this build reads 1)",
                c.format
            ));
        }
        c.class_set().map_err(|e| format!("classes: {e}"))?;
        if let Some(bad) = c
            .ignore_classes
            .iter()
            .find(|n| !c.classes.iter().any(|k| &k.name == *n))
        {
            return Err(format!("ignore_classes: `{bad}` is not one of the classes"));
        }
        let i = &c.input;
        if i.layout != "NCHW" || i.color != "RGB" || i.resize != "stretch" {
            return Err(format!(
                "input must be NCHW, RGB, stretch; found {}, {}, {}",
                i.layout, i.color, i.resize
            ));
        }
        if !(8..=8192).contains(&i.width) || !(8..=8192).contains(&i.height) {
            return Err(format!("input size {}x{} out of range", i.width, i.height));
        }
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !positive(i.scale) || !i.std.iter().all(|&s| positive(s)) {
            return Err("input scale and std must be positive".into());
        }
        if !matches!(c.output.kind.as_str(), "logits" | "probabilities") {
            return Err(format!(
                "output kind {:?} must be logits or probabilities",
                c.output.kind
            ));
        }
        Ok(c)
    }

    /// The classes as a validated set.
    pub fn class_set(&self) -> Result<ClassSet, foramen_core::ClassesError> {
        ClassSet::new(self.classes.clone(), self.ignore_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_json() -> String {
        r#"{"format": 1, "name": "t", "classes": [
            {"index": 0, "name": "background", "color": [0,0,0]},
            {"index": 1, "name": "bone", "color": [0,150,255]}],
            "ignore_index": 255,
            "input": {"name": "image", "width": 64, "height": 32, "layout": "NCHW", "color": "RGB",
                      "scale": 255.0, "mean": [0.485,0.456,0.406], "std": [0.229,0.224,0.225], "resize": "stretch"},
            "output": {"name": "logits", "kind": "logits"},
            "training": {"epochs": 3}}"#
            .into()
    }

    #[test]
    fn an_8_bit_int8_model_is_refused_on_the_cpu_only_without_vnni() {
        let mut json: serde_json::Value = serde_json::from_str(&sample_json()).expect("json");
        let float = ModelContract::parse(&json.to_string()).expect("valid");
        assert_eq!(float.quantization, None);
        json["quantization"] = serde_json::json!({
            "format": "QDQ", "weight_bits": 8, "activations": "uint8",
            "calibration": "minmax", "calibration_frames": 64
        });
        let full = ModelContract::parse(&json.to_string()).expect("valid");
        let q = full.quantization.clone().expect("read");
        assert_eq!((q.weight_bits, q.calibration_frames), (8, 64));
        assert!(q.float_layers.is_empty(), "absent: none kept in float");
        json["quantization"]["float_layers"] = serde_json::json!(["encoder.conv_stem"]);
        let mixed = ModelContract::parse(&json.to_string()).expect("valid");
        assert_eq!(
            mixed.quantization.expect("read").float_layers,
            ["encoder.conv_stem"]
        );
        let reason = int8_cpu_refusal(Some(&q), "cpu", true).expect("refused");
        assert!(
            reason.contains("8-bit") && reason.contains("--reduce-range"),
            "{reason}"
        );
        assert!(int8_cpu_refusal(Some(&q), "webgpu+cpu", true).is_some());
        // VNNI, a GPU, 7-bit weights or a float model: it runs.
        assert_eq!(int8_cpu_refusal(Some(&q), "cpu", false), None);
        assert_eq!(int8_cpu_refusal(Some(&q), "cuda", true), None);
        let seven = Quantization {
            weight_bits: 7,
            ..q
        };
        assert_eq!(int8_cpu_refusal(Some(&seven), "cpu", true), None);
        // 8-bit depthwise weights beside 7-bit others (the bundled models): no overflow.
        json["quantization"]["weight_bits"] = 7.into();
        json["quantization"]["depthwise_weight_bits"] = 8.into();
        let dw8 = ModelContract::parse(&json.to_string()).expect("valid");
        let dw8 = dw8.quantization.expect("read");
        assert_eq!((dw8.weight_bits, dw8.depthwise_weight_bits), (7, Some(8)));
        assert_eq!(int8_cpu_refusal(Some(&dw8), "cpu", true), None);
        assert_eq!(int8_cpu_refusal(None, "cpu", true), None);
    }

    #[test]
    fn parses_a_valid_contract() {
        let c = ModelContract::parse(&sample_json()).expect("valid");
        assert_eq!(
            c.class_set().expect("classes").names(),
            ["background", "bone"]
        );
        assert_eq!((c.input.width, c.input.height), (64, 32));
    }

    #[test]
    fn ignore_classes_default_empty_and_must_name_classes() {
        assert!(
            ModelContract::parse(&sample_json())
                .unwrap()
                .ignore_classes
                .is_empty()
        );
        let with = sample_json().replace(
            r#""ignore_index": 255,"#,
            r#""ignore_index": 255, "ignore_classes": ["background"],"#,
        );
        assert_eq!(
            ModelContract::parse(&with).unwrap().ignore_classes,
            ["background"]
        );
        let bad = with.replace(r#"["background"]"#, r#"["void"]"#);
        let err = ModelContract::parse(&bad).unwrap_err();
        assert!(
            err.contains("ignore_classes") && err.contains("void"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_contracts_with_reasons() {
        let bad = sample_json().replace("\"NCHW\"", "\"NHWC\"");
        assert!(ModelContract::parse(&bad).unwrap_err().contains("NCHW"));
        let bad = sample_json().replace("\"index\": 1", "\"index\": 4");
        assert!(ModelContract::parse(&bad).unwrap_err().contains("classes"));
        let bad = sample_json().replace("\"format\": 1", "\"format\": 9");
        assert!(ModelContract::parse(&bad).unwrap_err().contains("format 9"));
        assert!(
            ModelContract::parse("{")
                .unwrap_err()
                .contains("not a valid contract")
        );
        let bad = sample_json().replace("\"logits\"}", "\"boxes\"}");
        assert!(ModelContract::parse(&bad).unwrap_err().contains("boxes"));
    }
}
