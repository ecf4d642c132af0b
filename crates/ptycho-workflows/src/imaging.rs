//! PNG output for people: amplitude (gray), phase (cyclic colormap) and loss curves.
//! Files are written atomically.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};
use ndarray::ArrayView2;

use ptycho_persist::write_bytes_atomic;

/// How values map to colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colormap {
    /// Black (low) to white (high).
    Gray,
    /// A cyclic colormap for phase: −π and +π have the same colour.
    Cyclic,
}

impl Colormap {
    /// Colour of `t ∈ [0, 1]`.
    pub fn rgb(self, t: f64) -> [u8; 3] {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match self {
            Colormap::Gray => {
                let v = (t * 255.0).round() as u8;
                [v, v, v]
            }
            Colormap::Cyclic => {
                // Three phase-shifted cosines: smooth and periodic in t with period 1.
                let c = |shift: f64| {
                    let v = 0.5 + 0.42 * (2.0 * std::f64::consts::PI * (t + shift)).cos();
                    (v * 255.0).round().clamp(0.0, 255.0) as u8
                };
                [c(0.0), c(-1.0 / 3.0), c(-2.0 / 3.0)]
            }
        }
    }
}

fn encode_png(img: &RgbImage) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(std::io::Error::other)?;
    Ok(bytes)
}

/// Render a 2-D array `[row, col]` as an RGB image. `range` = (low, high) mapped to the ends of the
/// colormap (values outside are clipped); `None` uses [`robust_range`]. Non-finite values are
/// drawn black.
pub fn render(data: ArrayView2<f32>, cmap: Colormap, range: Option<(f64, f64)>) -> RgbImage {
    let (h, w) = data.dim();
    let (lo, hi) = range.unwrap_or_else(|| robust_range(data));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut img = RgbImage::new(w as u32, h as u32);
    for ((r, c), &v) in data.indexed_iter() {
        let px = if v.is_finite() {
            cmap.rgb((v as f64 - lo) / span)
        } else {
            [0, 0, 0]
        };
        img.put_pixel(c as u32, r as u32, Rgb(px));
    }
    img
}

/// Display range of the data: its 0.5th and 99.5th percentiles over finite values (so a few
/// outliers — an uncovered border, a hot pixel — do not wash out the image); (0, 1) if empty.
pub fn robust_range(data: ArrayView2<f32>) -> (f64, f64) {
    let mut v: Vec<f32> = data.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f32::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64;
    let (lo, hi) = (at(0.005), at(0.995));
    if hi > lo {
        (lo, hi)
    } else {
        (v[0] as f64, v[v.len() - 1] as f64)
    }
}

/// Write `data` as a PNG with the given colormap (atomic).
pub fn write_png(
    path: &Path,
    data: ArrayView2<f32>,
    cmap: Colormap,
    range: Option<(f64, f64)>,
) -> std::io::Result<()> {
    write_bytes_atomic(path, &encode_png(&render(data, cmap, range))?)
}

/// One curve of a line chart.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub values: &'a [f64],
    pub color: [u8; 3],
}

/// Draw curves (x = index) on a white 640×400 chart with axes and 5 horizontal grid lines; the
/// y range spans all finite values. Numbers are in the CSV beside it: the chart has no text.
pub fn render_line_chart(series: &[Series<'_>]) -> RgbImage {
    let (w, h) = (640u32, 400u32);
    let (left, right, top, bottom) = (40i64, 620i64, 20i64, 370i64);
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
    };
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (lo.min(0.0), lo.max(0.0) + 1.0)
    };
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let to_px = |i: usize, v: f64| {
        let x = left + ((right - left) as f64 * i as f64 / (n - 1) as f64).round() as i64;
        let y = bottom - ((bottom - top) as f64 * (v - lo) / (hi - lo)).round() as i64;
        (x, y)
    };
    for k in 0..=4 {
        let y = top + (bottom - top) * k / 4;
        draw_line(&mut img, (left, y), (right, y), [225, 225, 225]);
    }
    draw_line(&mut img, (left, top), (left, bottom), [0, 0, 0]);
    draw_line(&mut img, (left, bottom), (right, bottom), [0, 0, 0]);
    for s in series {
        let pts: Vec<(i64, i64)> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| to_px(i, v))
            .collect();
        for p in &pts {
            for dx in -2..=2 {
                for dy in -2..=2 {
                    put(&mut img, p.0 + dx, p.1 + dy, s.color);
                }
            }
        }
        for pair in pts.windows(2) {
            draw_line(&mut img, pair[0], pair[1], s.color);
        }
    }
    img
}

/// Write a line chart PNG (atomic).
pub fn write_line_chart(path: &Path, series: &[Series<'_>]) -> std::io::Result<()> {
    write_bytes_atomic(path, &encode_png(&render_line_chart(series))?)
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
}

fn draw_line(img: &mut RgbImage, a: (i64, i64), b: (i64, i64), c: [u8; 3]) {
    let (mut x, mut y) = a;
    let dx = (b.0 - a.0).abs();
    let dy = -(b.1 - a.1).abs();
    let sx = if a.0 < b.0 { 1 } else { -1 };
    let sy = if a.1 < b.1 { 1 } else { -1 };
    let mut err = dx + dy;
    loop {
        put(img, x, y, c);
        if (x, y) == b {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn cyclic_colormap_wraps() {
        assert_eq!(Colormap::Cyclic.rgb(0.0), Colormap::Cyclic.rgb(1.0));
        assert_ne!(Colormap::Cyclic.rgb(0.0), Colormap::Cyclic.rgb(0.5));
        assert_eq!(Colormap::Gray.rgb(1.0), [255, 255, 255]);
    }

    #[test]
    fn png_round_trips_through_image() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        let data = Array2::from_shape_fn((5, 7), |(r, c)| (r * 7 + c) as f32);
        write_png(&p, data.view(), Colormap::Gray, None).unwrap();
        let back = image::open(&p).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (7, 5));
        assert_eq!(back.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(back.get_pixel(6, 4).0, [255, 255, 255]);
    }

    #[test]
    fn line_chart_draws_series() {
        let v = [3.0, 2.0, 1.5, 1.2];
        let img = render_line_chart(&[Series {
            values: &v,
            color: [255, 0, 0],
        }]);
        let red = img.pixels().filter(|p| p.0 == [255, 0, 0]).count();
        assert!(red > 100);
    }
}
