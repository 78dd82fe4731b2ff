//! The video view: a wgpu paint callback that uploads the newest frame and mask into
//! textures that are updated in place, and blends them with `foramen-overlay`'s WGSL
//! shader inside egui's render pass. The UI thread does no per-pixel work: the frame's
//! RGB bytes go to the GPU as they are.

use std::sync::{Arc, Mutex};

use eframe::egui;
use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, ScreenDescriptor};
use eframe::wgpu;
use foramen_core::{Frame, Mask, clock_us, lock};
use foramen_overlay::gpu::OverlayParams;
use foramen_overlay::{OverlayGpu, OverlayStyle};

use crate::present_log::{PresentLog, PresentRow};

/// One paint of the video view.
pub struct VideoCallback {
    /// Frame to show.
    pub frame: Arc<Frame>,
    /// Mask to draw over it; `None` shows the video alone.
    pub mask: Option<Arc<Mask>>,
    /// Colours, visibility, opacity, mode.
    pub style: Arc<OverlayStyle>,
    /// Where, in points.
    pub rect: egui::Rect,
    /// Framebuffer format of the window.
    pub target_format: wgpu::TextureFormat,
    /// Shared with the HUD.
    pub log: Arc<Mutex<PresentLog>>,
    /// Outline width factor: `[overlay].contour_px` is for a 1080-line display, so the
    /// window passes its video height / 1080 (1 draws it as configured).
    pub contour_scale: f32,
}

impl CallbackTrait for VideoCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if resources.get::<OverlayGpu>().is_none() {
            resources.insert(OverlayGpu::new(device, self.target_format));
        }
        let Some(gpu) = resources.get_mut::<OverlayGpu>() else {
            return Vec::new();
        };
        let f = &self.frame;
        let new_frame = gpu.upload_frame(device, queue, f);
        let new_mask = gpu.upload_mask(device, queue, self.mask.as_deref());
        let vp = egui::epaint::ViewportInPixels::from_points(
            &self.rect,
            screen.pixels_per_point,
            screen.size_in_pixels,
        );
        let mut params = OverlayParams::new(
            &self.style,
            [f.width, f.height],
            self.mask.as_ref().map(|m| [m.width, m.height]),
            [vp.left_px as f32, vp.top_px as f32],
            [vp.width_px as f32, vp.height_px as f32],
            self.target_format.is_srgb(),
        );
        params.contour_radius_px = (params.contour_radius_px * self.contour_scale).max(1.0);
        gpu.prepare(device, queue, &params);
        if new_frame || new_mask {
            let now = clock_us();
            let mask = self.mask.as_ref().filter(|_| new_mask);
            lock(&self.log).record(PresentRow {
                frame_id: f.id,
                video_latency_ms: new_frame
                    .then(|| now.saturating_sub(f.captured_at_us) as f64 / 1e3),
                mask_frame: mask.map(|m| m.source_frame_id),
                annotation_latency_ms: mask
                    .map(|m| now.saturating_sub(m.source_captured_at_us) as f64 / 1e3),
            });
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        if let Some(gpu) = resources.get::<OverlayGpu>() {
            gpu.draw(render_pass);
        }
    }
}

/// Adds the video view to `ui` at `rect`.
pub fn paint(ui: &egui::Ui, cb: VideoCallback) {
    let rect = cb.rect;
    ui.painter()
        .add(egui_wgpu::Callback::new_paint_callback(rect, cb));
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::Harness;
    use egui_kittest::wgpu::{WgpuTestRenderer, create_render_state, default_wgpu_setup};
    use foramen_core::ClassSet;
    use foramen_core::config::{OverlayConfig, OverlayMode};
    use foramen_overlay::Compositor;

    /// Renders one frame and mask through the real shader (lavapipe here) at 1:1 and
    /// returns the RGB pixels of the video rectangle.
    pub(crate) fn render_gpu(frame: &Frame, mask: Option<&Mask>, style: &OverlayStyle) -> Vec<u8> {
        let rs = create_render_state(
            default_wgpu_setup(),
            egui_wgpu::RendererOptions::PREDICTABLE,
        );
        let format = rs.target_format;
        let (w, h) = (frame.width, frame.height);
        let (frame, mask, style) = (
            Arc::new(frame.clone()),
            mask.map(|m| Arc::new(m.clone())),
            Arc::new(style.clone()),
        );
        let log = Arc::new(Mutex::new(PresentLog::default()));
        let l2 = log.clone();
        let mut harness = Harness::builder()
            .with_size(egui::vec2(w as f32, h as f32))
            .with_pixels_per_point(1.0)
            .renderer(WgpuTestRenderer::from_render_state(rs))
            .build_ui(move |ui| {
                paint(
                    ui,
                    VideoCallback {
                        frame: frame.clone(),
                        mask: mask.clone(),
                        style: style.clone(),
                        rect: egui::Rect::from_min_size(
                            egui::Pos2::ZERO,
                            egui::vec2(w as f32, h as f32),
                        ),
                        target_format: format,
                        log: l2.clone(),
                        contour_scale: 1.0,
                    },
                );
            });
        harness.step();
        let img = harness.render().expect("render");
        assert_eq!(img.dimensions(), (w, h));
        assert_eq!(log.lock().expect("log").frames, 1, "one frame presented");
        img.pixels().flat_map(|p| [p[0], p[1], p[2]]).collect()
    }

    fn scene() -> (Frame, Mask) {
        let (w, h) = (96u32, 64u32);
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                // A dark corner (below the black level) and a textured rest.
                let dark = x < 10 && y < 10;
                let v = |k: u32| {
                    if dark {
                        3
                    } else {
                        ((x * 7 + y * 13 + k * 50) % 200 + 30) as u8
                    }
                };
                rgb.extend([v(0), v(1), v(2)]);
            }
        }
        let frame = Frame::new(5, 0, w, h, rgb).expect("frame");
        let (mw, mh) = (24u32, 16u32);
        let classes = (0..mw * mh)
            .map(|i| {
                let (x, y) = (i % mw, i / mw);
                if (x as i32 - 12).pow(2) + (y as i32 - 8).pow(2) < 20 {
                    3
                } else if x < 8 {
                    1
                } else if y > 11 {
                    2
                } else {
                    0
                }
            })
            .collect::<Vec<u8>>();
        let mask = Mask {
            source_frame_id: 5,
            source_pts_us: 0,
            source_captured_at_us: 0,
            width: mw,
            height: mh,
            confidence: vec![255; classes.len()],
            classes,
            infer_ms: 1.0,
        };
        (frame, mask)
    }

    #[test]
    fn the_gpu_overlay_matches_the_cpu_reference() {
        let (frame, mask) = scene();
        for mode in [OverlayMode::Fill, OverlayMode::Contour, OverlayMode::Both] {
            let mut cfg = OverlayConfig {
                mode,
                opacity: 0.5,
                contour_px: 2,
                ..OverlayConfig::default()
            };
            cfg.class_opacity.insert("disc".into(), 0.8);
            let style = OverlayStyle::new(&ClassSet::lumbar(), &cfg);
            let gpu = render_gpu(&frame, Some(&mask), &style);
            let mut cpu = vec![0u8; frame.rgb.len()];
            Compositor::new().composite(
                &frame.rgb,
                frame.width,
                frame.height,
                &mask,
                &style,
                &mut cpu,
            );
            let off: Vec<usize> = (0..gpu.len() / 3)
                .filter(|&i| (0..3).any(|k| gpu[i * 3 + k].abs_diff(cpu[i * 3 + k]) > 2))
                .collect();
            // Rounding may flip a vote exactly on a tie; anything more is a real difference.
            assert!(
                off.len() * 200 < gpu.len() / 3,
                "{mode:?}: {} of {} pixels differ, first at {:?}",
                off.len(),
                gpu.len() / 3,
                off.first().map(|i| (i % 96, i / 96))
            );
            let changed = (0..gpu.len()).filter(|&i| gpu[i] != frame.rgb[i]).count();
            assert!(
                changed > 300,
                "{mode:?}: the overlay is visible ({changed})"
            );
            assert_eq!(&gpu[..3], &frame.rgb[..3], "black surround untouched");
        }
    }

    #[test]
    fn without_a_mask_the_video_is_shown_unchanged() {
        let (frame, _) = scene();
        let style = OverlayStyle::new(&ClassSet::lumbar(), &OverlayConfig::default());
        let gpu = render_gpu(&frame, None, &style);
        let max = gpu
            .iter()
            .zip(frame.rgb.iter())
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert_eq!(max, Some(0));
    }
}
