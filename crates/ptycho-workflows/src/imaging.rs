//! PNG output for people: amplitude (gray), phase (cyclic colormap) and loss curves.
//! Files are written atomically.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};
use ndarray::ArrayView2;
use plotters::prelude::{
    BLACK, BitMapBackend, ChartBuilder, Color, DrawingAreaErrorKind, DrawingBackend, EmptyElement,
    IntoDrawingArea, LineSeries, PathElement, RGBColor, Rectangle, WHITE,
};

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
/// y range spans all finite values, non-finite values are left out. Numbers are in the CSV beside
/// it: the chart has no text. Drawn with `plotters` into an in-memory bitmap (an error only if
/// plotters reports one).
pub fn render_line_chart(series: &[Series<'_>]) -> std::io::Result<RgbImage> {
    let mut img = RgbImage::new(640, 400);
    let size = img.dimensions();
    draw_line_chart(&mut img, size, series).map_err(std::io::Error::other)?;
    Ok(img)
}

fn draw_line_chart(
    buf: &mut [u8],
    size: (u32, u32),
    series: &[Series<'_>],
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>> {
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
    } else if lo.is_finite() {
        (lo.min(0.0), lo.max(0.0) + 1.0)
    } else {
        (0.0, 1.0)
    };
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let x_max = (n - 1) as f64;

    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin_top(20)
        .margin_left(40)
        .margin_right(20)
        .margin_bottom(30)
        .build_cartesian_2d(0.0..x_max, lo..hi)?;
    let grid = RGBColor(225, 225, 225);
    chart.draw_series((0..=4).map(|k| {
        let y = lo + (hi - lo) * k as f64 / 4.0;
        PathElement::new(vec![(0.0, y), (x_max, y)], grid)
    }))?;
    chart.draw_series([PathElement::new(
        vec![(0.0, hi), (0.0, lo), (x_max, lo)],
        BLACK,
    )])?;
    for s in series {
        let color = RGBColor(s.color[0], s.color[1], s.color[2]);
        let pts: Vec<(f64, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| (i as f64, v))
            .collect();
        chart.draw_series(LineSeries::new(pts.iter().copied(), color))?;
        chart
            .draw_series(pts.iter().map(|&p| {
                EmptyElement::at(p) + Rectangle::new([(-2, -2), (2, 2)], color.filled())
            }))?;
    }
    root.present()
}

/// Write a line chart PNG (atomic).
pub fn write_line_chart(path: &Path, series: &[Series<'_>]) -> std::io::Result<()> {
    write_bytes_atomic(path, &encode_png(&render_line_chart(series)?)?)
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

    /// Pixels of colour `c` or of `c` blended with the white background (anti-aliased lines).
    fn tinted(img: &RgbImage, c: [u8; 3]) -> usize {
        let (k, _) = (0..3)
            .map(|i| (i, 255 - c[i] as i32))
            .max_by_key(|&(_, d)| d)
            .unwrap();
        img.pixels()
            .filter(|px| {
                let alpha = (255 - px.0[k] as i32) as f64 / (255 - c[k] as i32) as f64;
                alpha > 0.1
                    && (0..3).all(|i| {
                        let want = alpha * c[i] as f64 + (1.0 - alpha) * 255.0;
                        (px.0[i] as f64 - want).abs() <= 3.0
                    })
            })
            .count()
    }

    #[test]
    fn line_chart_draws_series() {
        let v = [3.0, 2.0, 1.5, 1.2];
        let img = render_line_chart(&[Series {
            values: &v,
            color: [255, 0, 0],
        }])
        .unwrap();
        assert!(tinted(&img, [255, 0, 0]) > 600);
    }

    #[test]
    fn line_chart_png_is_written_and_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loss_curve.png");
        let loss = [5.0, 4.0, 3.5, f64::NAN, 3.2];
        let val = [f64::NAN; 5];
        let blue = [f64::NAN, 4.5, 3.9, 3.6, 3.4];
        write_line_chart(
            &p,
            &[
                Series {
                    values: &loss,
                    color: [214, 39, 40],
                },
                Series {
                    values: &val,
                    color: [0, 200, 0],
                },
                Series {
                    values: &blue,
                    color: [31, 119, 180],
                },
            ],
        )
        .unwrap();
        // Written atomically: only the PNG is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (640, 400));
        let white = img.pixels().filter(|px| px.0 == [255, 255, 255]).count();
        assert!(white > 640 * 400 / 2, "mostly white background");
        let (red, blue) = (tinted(&img, [214, 39, 40]), tinted(&img, [31, 119, 180]));
        eprintln!("red {red}, blue {blue}");
        assert!(red > 400, "red curve drawn");
        assert!(blue > 400, "blue curve drawn");
        assert_eq!(
            tinted(&img, [0, 200, 0]),
            0,
            "an all-NaN series draws nothing"
        );
        // The y axis is a vertical black line left of the plotting area.
        let left_axis = (0..640)
            .find(|&x| (100..300).all(|y| img.get_pixel(x, y).0 == [0, 0, 0]))
            .expect("a vertical black axis");
        assert!(left_axis < 64, "y axis at x = {left_axis}");
    }
}
