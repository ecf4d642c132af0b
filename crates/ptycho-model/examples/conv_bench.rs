//! Times the network's 3×3 convolutions on flex, Burn's `Conv2d` against ours
//! (`ptycho_model::conv`), forward and forward+backward, at the layer shapes of the N = 64 model.
//!
//! `cargo run --release -p ptycho-model --example conv_bench [BATCH] [REPEATS]`
use std::time::Instant;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Tensor, activation};
use ptycho_model::conv::conv3x3;

fn layer(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device)
}

fn run(c: &Conv2d, x: Tensor<4>, ours: bool) -> Tensor<4> {
    if ours {
        conv3x3(x, c.weight.val(), c.bias.as_ref().unwrap().val(), true)
    } else {
        activation::relu(c.forward(x))
    }
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let b = args.first().copied().unwrap_or(16);
    let reps = args.get(1).copied().unwrap_or(5);
    let shapes = [
        (1, 32, 64),
        (32, 32, 64),
        (32, 64, 32),
        (64, 64, 32),
        (64, 128, 16),
        (128, 128, 16),
        (128, 64, 8),
        (64, 64, 16),
        (64, 32, 16),
        (32, 32, 32),
        (28, 1, 32),
        (4, 32, 16),
        (32, 32, 64),
        (32, 1, 64),
    ];
    println!(
        "batch {b}, {} rayon threads; ms per call (fwd, fwd+bwd)",
        rayon::current_num_threads()
    );
    println!(
        "{:>16} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6}",
        "cin→cout@hw", "burn f", "ours f", "burn fb", "ours fb", "f×", "fb×"
    );
    let (mut tb, mut to) = (0.0, 0.0);
    for &(cin, cout, hw) in &shapes {
        let dev = Device::flex();
        let ad = dev.clone().autodiff();
        let c = layer(cin, cout, &dev);
        let ca = layer(cin, cout, &ad);
        let x = Tensor::<4>::random([b, cin, hw, hw], Distribution::Normal(0.0, 1.0), &dev);
        let xa = Tensor::<4>::random([b, cin, hw, hw], Distribution::Normal(0.0, 1.0), &ad)
            .require_grad();
        let mut f = [0.0; 2];
        let mut fb = [0.0; 2];
        for (i, ours) in [false, true].into_iter().enumerate() {
            f[i] = time(reps, || {
                drop(run(&c, x.clone(), ours).into_data());
            });
            fb[i] = time(reps, || {
                let g = run(&ca, xa.clone(), ours).sum().backward();
                drop(ca.weight.grad(&g).unwrap().into_data());
            });
        }
        tb += fb[0];
        to += fb[1];
        println!(
            "{:>16} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>6.2} {:>6.2}",
            format!("{cin}→{cout}@{hw}"),
            f[0] * 1e3,
            f[1] * 1e3,
            fb[0] * 1e3,
            fb[1] * 1e3,
            f[0] / f[1],
            fb[0] / fb[1]
        );
    }
    println!(
        "total fwd+bwd: burn {:.1} ms, ours {:.1} ms, {:.2}×",
        tb * 1e3,
        to * 1e3,
        tb / to
    );
}
