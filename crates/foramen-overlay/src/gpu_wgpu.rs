//! The overlay's GPU side: the WGSL pipeline, the video and class textures (updated in
//! place while their sizes stay the same), the parameter buffer and the bind group.
//!
//! Used by the window's paint callback (`foramen-app`'s `video_view`) and by the offscreen
//! GPU benchmark (`foramen-gpu-bench`), so both time the same uploads and the same draw.
//! Behind the `wgpu` feature: the CPU compositor needs none of it.

use std::num::NonZeroU64;

use foramen_core::{Frame, Mask};

use crate::gpu::{
    OVERLAY_WGSL, OverlayParams, PARAMS_BYTES, video_texture_width, video_upload_bytes,
};

/// Pipeline, textures and bindings of the overlay for one target format.
pub struct OverlayGpu {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    params: wgpu::Buffer,
    video: Option<(wgpu::Texture, [u32; 2])>,
    classes: Option<(wgpu::Texture, [u32; 2])>,
    bind_group: Option<wgpu::BindGroup>,
    rebind: bool,
    frame_key: Option<(u64, u64)>,
    mask_key: Option<(u64, u64)>,
}

impl OverlayGpu {
    /// Compiles the shader and builds the pipeline for targets of `format`.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("foramen_overlay"),
            source: wgpu::ShaderSource::Wgsl(OVERLAY_WGSL.into()),
        });
        let tex_entry = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                multisampled: false,
                sample_type: wgpu::TextureSampleType::Uint,
                view_dimension: wgpu::TextureViewDimension::D2,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("foramen_overlay"),
            entries: &[
                tex_entry(0),
                tex_entry(1),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: NonZeroU64::new(PARAMS_BYTES as u64),
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("foramen_overlay"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("foramen_overlay"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                buffers: &[],
                compilation_options: wgpu::PipelineCompilationOptions::default(),
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                targets: &[Some(wgpu::ColorTargetState {
                    format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
                compilation_options: wgpu::PipelineCompilationOptions::default(),
            }),
            multiview_mask: None,
            cache: None,
        });
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("foramen_overlay_params"),
            size: PARAMS_BYTES as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            pipeline,
            layout,
            params,
            video: None,
            classes: None,
            bind_group: None,
            rebind: true,
            frame_key: None,
            mask_key: None,
        }
    }

    /// A texture of `size`, reused while the size stays the same; true when replaced.
    fn texture(
        device: &wgpu::Device,
        slot: &mut Option<(wgpu::Texture, [u32; 2])>,
        size: [u32; 2],
        format: wgpu::TextureFormat,
        label: &str,
    ) -> bool {
        if slot.as_ref().is_some_and(|(_, s)| *s == size) {
            return false;
        }
        let tex = device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width: size[0].max(1),
                height: size[1].max(1),
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        *slot = Some((tex, size));
        true
    }

    /// Uploads `frame` unless it is the one already on the GPU; true when uploaded.
    pub fn upload_frame(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, f: &Frame) -> bool {
        let resized = Self::texture(
            device,
            &mut self.video,
            [video_texture_width(f.width), f.height],
            wgpu::TextureFormat::Rgba8Uint,
            "foramen_video",
        );
        self.rebind |= resized;
        let key = (f.id, f.captured_at_us);
        if self.frame_key == Some(key) && !resized {
            return false;
        }
        if let Some((tex, size)) = &self.video {
            let bytes = video_upload_bytes(&f.rgb, f.width, f.height);
            write(queue, tex, &bytes, size[0] * 4, *size);
        }
        self.frame_key = Some(key);
        true
    }

    /// Uploads `mask` unless it is the one already on the GPU; true when a mask of a new
    /// source frame arrived. Without a mask a 1x1 placeholder keeps the bindings whole.
    pub fn upload_mask(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        mask: Option<&Mask>,
    ) -> bool {
        let Some(m) = mask else {
            if self.classes.is_none() {
                self.rebind |= Self::texture(
                    device,
                    &mut self.classes,
                    [1, 1],
                    wgpu::TextureFormat::R8Uint,
                    "foramen_classes",
                );
            }
            return false;
        };
        let resized = Self::texture(
            device,
            &mut self.classes,
            [m.width, m.height],
            wgpu::TextureFormat::R8Uint,
            "foramen_classes",
        );
        self.rebind |= resized;
        let key = (m.source_frame_id, m.source_captured_at_us);
        if self.mask_key == Some(key) && !resized {
            return false;
        }
        if let Some((tex, size)) = &self.classes {
            write(queue, tex, &m.classes, size[0], *size);
        }
        let new_source = self.mask_key.map(|k| k.0) != Some(key.0);
        self.mask_key = Some(key);
        new_source
    }

    /// Writes the draw parameters and rebuilds the bind group when a texture changed.
    pub fn prepare(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, params: &OverlayParams) {
        queue.write_buffer(&self.params, 0, &params.to_bytes());
        if !(self.rebind || self.bind_group.is_none()) {
            return;
        }
        let (Some((v, _)), Some((c, _))) = (&self.video, &self.classes) else {
            return;
        };
        let vv = v.create_view(&wgpu::TextureViewDescriptor::default());
        let cv = c.create_view(&wgpu::TextureViewDescriptor::default());
        self.bind_group = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("foramen_overlay"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(&vv),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&cv),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: self.params.as_entire_binding(),
                },
            ],
        }));
        self.rebind = false;
    }

    /// Draws the overlaid video (one full-viewport triangle) into `pass`.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>) {
        if let Some(bg) = &self.bind_group {
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, bg, &[]);
            pass.draw(0..3, 0..1);
        }
    }
}

fn write(queue: &wgpu::Queue, tex: &wgpu::Texture, bytes: &[u8], row_bytes: u32, size: [u32; 2]) {
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture: tex,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        bytes,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(row_bytes),
            rows_per_image: Some(size[1]),
        },
        wgpu::Extent3d {
            width: size[0],
            height: size[1],
            depth_or_array_layers: 1,
        },
    );
}
