//! `foramen-gpu-bench`: the window's overlay path on the GPU, offscreen, at 1080p and 4K.
//!
//! Each timed frame does what the window's paint callback does for a new frame and a
//! new mask (upload the packed RGB frame and the class map into their textures, write the
//! parameters, draw the WGSL overlay into a target of the frame's size), then submits and
//! waits for the GPU. "draw only" repeats the same frame, so nothing is uploaded: the
//! shader's own cost. It needs no window, no OpenCV and no ONNX Runtime, so it runs on a
//! bare GPU machine (Vulkan loader and driver only).
//!
//! `foramen-gpu-bench [--frames N] [--json OUT]` (N timed frames per case, default 200,
//! after N/10 warm-up frames, at most 20); `WGPU_BACKEND=vulkan|gl` picks the backend.

use std::sync::Arc;
use std::time::Instant;

use eframe::wgpu;
use foramen_core::config::OverlayConfig;
use foramen_core::{ClassSet, Frame, LatencyStats, Mask};
use foramen_overlay::gpu::OverlayParams;
// The window's own GPU code: the same uploads and the same draw as the paint callback.
use foramen_overlay::{OverlayGpu, OverlayStyle};

const TARGET_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn arg_value(args: &[String], name: &str) -> Result<Option<String>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("{name}: missing value")),
    }
}

fn scene(width: u32, height: u32, id: u64) -> Frame {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            rgb.extend([
                ((x + id as u32) % 251) as u8,
                ((y * 3) % 241) as u8,
                ((x ^ y) % 239) as u8,
            ]);
        }
    }
    let mut f = Frame::new(id, 0, width, height, rgb).unwrap_or_else(|| unreachable!());
    f.captured_at_us = id;
    f
}

fn mask(id: u64) -> Mask {
    let (w, h) = (384u32, 224u32);
    let classes = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            if (x - 192).pow(2) + (y - 112).pow(2) < 60 * 60 {
                3
            } else if x < 120 {
                1
            } else if y > 150 {
                2
            } else {
                0
            }
        })
        .collect::<Vec<u8>>();
    Mask {
        source_frame_id: id,
        source_pts_us: 0,
        source_captured_at_us: id,
        width: w,
        height: h,
        confidence: vec![255; classes.len()],
        classes,
        infer_ms: 0.0,
    }
}

struct Target {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
}

fn target(device: &wgpu::Device, width: u32, height: u32) -> Target {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("bench_target"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: TARGET_FORMAT,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    Target { texture, view }
}

/// One overlay frame: uploads (when the frame or mask is new), parameters, draw, submit, wait.
fn frame_ms(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    gpu: &mut OverlayGpu,
    t: &Target,
    f: &Frame,
    m: &Mask,
    style: &OverlayStyle,
) -> Result<f64, String> {
    let start = Instant::now();
    gpu.upload_frame(device, queue, f);
    gpu.upload_mask(device, queue, Some(m));
    let size = [t.texture.width() as f32, t.texture.height() as f32];
    let params = OverlayParams::new(
        style,
        [f.width, f.height],
        Some([m.width, m.height]),
        [0.0, 0.0],
        size,
        TARGET_FORMAT.is_srgb(),
    );
    gpu.prepare(device, queue, &params);
    let mut encoder =
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("bench_overlay"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &t.view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        gpu.draw(&mut pass);
    }
    queue.submit([encoder.finish()]);
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| format!("waiting for the GPU: {e}"))?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

fn stats_line(name: &str, s: &LatencyStats) -> String {
    format!(
        "{name:<28} p50 {:>7.3}  p90 {:>7.3}  p99 {:>7.3}  max {:>7.3} ms",
        s.percentile(50.0),
        s.percentile(90.0),
        s.percentile(99.0),
        s.max()
    )
}

/// The high-performance adapter's device and queue (textures up to 8K), and what the
/// adapter is.
fn open_device() -> Result<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo), String> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        compatible_surface: None,
        force_fallback_adapter: false,
        apply_limit_buckets: false,
    }))
    .map_err(|e| format!("no GPU adapter: {e}"))?;
    let info = adapter.get_info();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("foramen-gpu-bench"),
        required_limits: wgpu::Limits {
            max_texture_dimension_2d: 8192,
            ..wgpu::Limits::downlevel_defaults()
        },
        ..Default::default()
    }))
    .map_err(|e| format!("no device on {}: {e}", info.name))?;
    Ok((device, queue, info))
}

/// One device's benchmark: `frames` timed frames after `warmup` untimed ones.
struct Bench {
    device: wgpu::Device,
    queue: wgpu::Queue,
    style: OverlayStyle,
    frames: usize,
    warmup: usize,
}

impl Bench {
    /// Times `frames` frames at `w`x`h` with a new frame and mask each time (upload +
    /// draw), then with the same ones (draw only); prints both and returns the JSON row.
    fn size(&self, label: &str, w: u32, h: u32) -> Result<serde_json::Value, String> {
        let (device, queue) = (&self.device, &self.queue);
        let t = target(device, w, h);
        let mut gpu = OverlayGpu::new(device, TARGET_FORMAT);
        // Two frames and masks alternate, so every timed frame uploads both.
        let fs = [Arc::new(scene(w, h, 1)), Arc::new(scene(w, h, 2))];
        let ms = [mask(1), mask(2)];
        let mut upload_draw = LatencyStats::default();
        let mut draw_only = LatencyStats::default();
        for i in 0..self.frames + self.warmup {
            let k = i % 2;
            let ms_ = frame_ms(device, queue, &mut gpu, &t, &fs[k], &ms[k], &self.style)?;
            if i >= self.warmup {
                upload_draw.push(ms_);
            }
        }
        for i in 0..self.frames + self.warmup {
            let ms_ = frame_ms(device, queue, &mut gpu, &t, &fs[0], &ms[0], &self.style)?;
            if i >= self.warmup {
                draw_only.push(ms_);
            }
        }
        println!(
            "{}",
            stats_line(&format!("{label} upload + draw"), &upload_draw)
        );
        println!("{}", stats_line(&format!("{label} draw only"), &draw_only));
        Ok(serde_json::json!({
            "size": label, "width": w, "height": h, "frames": self.frames,
            "warmup_frames": self.warmup,
            "upload_draw_p50_ms": upload_draw.percentile(50.0),
            "upload_draw_p99_ms": upload_draw.percentile(99.0),
            "draw_only_p50_ms": draw_only.percentile(50.0),
            "draw_only_p99_ms": draw_only.percentile(99.0),
        }))
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let frames: usize = arg_value(&args, "--frames")?
        .map(|v| v.parse().map_err(|_| format!("--frames: not a count: {v}")))
        .transpose()?
        .unwrap_or(200);
    if frames == 0 {
        return Err("--frames: must be at least 1".into());
    }
    let json_path = arg_value(&args, "--json")?;
    let (device, queue, info) = open_device()?;
    println!(
        "adapter: {} ({:?}, driver {} {})",
        info.name, info.backend, info.driver, info.driver_info
    );
    let bench = Bench {
        device,
        queue,
        style: OverlayStyle::new(&ClassSet::lumbar(), &OverlayConfig::default()),
        frames,
        // Pipeline creation and first uploads are not what is measured.
        warmup: (frames / 10).clamp(1, 20),
    };
    let mut rows = Vec::new();
    for (label, w, h) in [("1080p", 1920u32, 1080u32), ("4K", 3840, 2160)] {
        rows.push(bench.size(label, w, h)?);
    }
    if let Some(path) = json_path {
        let doc = serde_json::json!({
            "adapter": info.name, "backend": format!("{:?}", info.backend),
            "driver": format!("{} {}", info.driver, info.driver_info), "results": rows,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("writing {path}: {e}"))?;
        println!("report: {path}");
    }
    Ok(())
}
