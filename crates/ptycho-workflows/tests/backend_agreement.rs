//! flex against libtorch (feature `tch`): the same weights and the same batches of the reference
//! simulator's `sim_lines_train.npz` must give the same loss and the same gradients on both
//! backends, and short Adam runs from identical weights must stay together. This is what lets
//! training results from one backend stand for the other; run it with
//! `cargo test --release -p ptycho-workflows --features tch --test backend_agreement -- --nocapture`.

mod common;

mod with_tch {
    use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};
    use ptycho_config::{GroupingConfig, TrainingConfig, Valid};
    use ptycho_model::ops::to_vec_f64;
    use ptycho_model::{DeviceKind, LossWeights, PtychoPinn, TrainStep, loss};
    use ptycho_workflows::train::{ModelInputs, OffsetSource, training_params};
    use ptycho_workflows::{RawData, group};

    use super::common;

    /// Every float parameter's values (or, given gradients, its gradient), in visit order.
    struct Collect<'a> {
        grads: Option<&'a GradientsParams>,
        out: Vec<Vec<f64>>,
    }

    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let v = match self.grads {
                Some(g) => g
                    .get::<D>(p.id)
                    .map(|t| to_vec_f64(t).unwrap())
                    .unwrap_or_default(),
                None => to_vec_f64(p.val()).unwrap(),
            };
            self.out.push(v);
        }
    }

    fn collect(model: &PtychoPinn, grads: Option<&GradientsParams>) -> Vec<Vec<f64>> {
        let mut c = Collect {
            grads,
            out: Vec::new(),
        };
        model.visit(&mut c);
        c.out
    }

    /// ‖a − b‖ / ‖b‖.
    fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        let n: f64 = b.iter().map(|y| y * y).sum();
        (d / n.max(1e-300)).sqrt()
    }

    struct Setup {
        cfg: Valid<TrainingConfig>,
        inputs: ModelInputs,
        params: ptycho_config::Params,
    }

    fn setup() -> Setup {
        let raw = RawData::from_npz(common::golden("sim_lines_train.npz")).unwrap();
        let cfg = TrainingConfig {
            n_groups: 1024,
            ..Default::default()
        }
        .validate()
        .unwrap();
        let params = training_params(&cfg, &raw).unwrap();
        let grouped = group(
            &raw,
            &params,
            &GroupingConfig {
                n_groups: 1024,
                seed: 1,
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .unwrap();
        let inputs =
            ModelInputs::from_grouped(&grouped, params.intensity_scale(), OffsetSource::Start);
        Setup {
            cfg,
            inputs,
            params,
        }
    }

    /// Loss and per-parameter gradients of one batch.
    fn loss_and_grads(
        model: &PtychoPinn,
        inputs: &ModelInputs,
        idx: &[usize],
        weights: &LossWeights,
        device: &Device,
    ) -> (f64, Vec<Vec<f64>>) {
        let (x, pos) = inputs.batch(idx, device);
        let out = model.autoencoder(x.clone(), pos).unwrap();
        let terms = loss(&out, x, weights).unwrap();
        let l = to_vec_f64(terms.total.clone()).unwrap()[0];
        let grads = GradientsParams::from_grads(terms.total.backward(), model);
        (l, collect(model, Some(&grads)))
    }

    /// Multiplies every float parameter by a constant.
    struct Scale(f64);

    impl ModuleMapper for Scale {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let k = self.0;
            p.map(|t| t.mul_scalar(k).detach().require_grad())
        }
    }

    /// `steps` Adam steps (lr 1e-3) over fixed batches of 16 training groups: the mean pre-step
    /// loss and the final weights, flattened.
    fn adam_run(
        mut model: PtychoPinn,
        inputs: &ModelInputs,
        weights: &LossWeights,
        device: &Device,
        steps: usize,
    ) -> (f64, Vec<f64>) {
        let mut step = TrainStep::new(*weights);
        let mut sum = 0.0;
        for k in 0..steps {
            let idx: Vec<usize> = (0..16).map(|j| (k * 16 + j) % 972).collect();
            let (x, pos) = inputs.batch(&idx, device);
            let (m, l) = step.step(model, x.clone(), pos, x, 1e-3).unwrap();
            model = m;
            sum += l.total;
        }
        let w = collect(&model, None).into_iter().flatten().collect();
        (sum / steps as f64, w)
    }

    #[test]
    #[cfg_attr(not(feature = "tch"), ignore = "needs --features tch (libtorch)")]
    fn flex_and_libtorch_agree() {
        let Setup {
            cfg,
            inputs,
            params,
        } = setup();
        let weights = LossWeights::from_training(&cfg);
        let flex = Device::flex().autodiff();
        let tch = DeviceKind::TchCpu.to_device().unwrap().autodiff();
        flex.seed(42);
        let model_f = PtychoPinn::new(&params, &flex).unwrap();
        // Materialise the lazily initialised weights on flex before copying them.
        let w_f = collect(&model_f, None);
        let model_t = model_f.clone().fork(&tch);
        let w_t = collect(&model_t, None);
        assert_eq!(w_f.len(), w_t.len());
        for (a, b) in w_f.iter().zip(&w_t) {
            assert_eq!(a, b, "weights differ after the copy to libtorch");
        }

        // Gradients of three batches of 16 groups.
        let mut worst = 0.0f64;
        for start in [0usize, 400, 800] {
            let idx: Vec<usize> = (start..start + 16).collect();
            let (lf, gf) = loss_and_grads(&model_f, &inputs, &idx, &weights, &flex);
            let (lt, gt) = loss_and_grads(&model_t, &inputs, &idx, &weights, &tch);
            let dl = (lf - lt).abs() / lt.abs();
            assert!(
                dl < 1e-6,
                "loss {lf} on flex, {lt} on libtorch (rel {dl:.2e})"
            );
            let all_f: Vec<f64> = gf.iter().flatten().copied().collect();
            let all_t: Vec<f64> = gt.iter().flatten().copied().collect();
            let total = rel_l2(&all_f, &all_t);
            let per: Vec<f64> = gf.iter().zip(&gt).map(|(a, b)| rel_l2(a, b)).collect();
            let max_per = per.iter().copied().fold(0.0, f64::max);
            eprintln!(
                "batch {start}..{}: loss {lf:.3} (flex) vs {lt:.3} (libtorch), rel {dl:.2e}; \
                 gradient rel L2 {total:.2e} overall, worst tensor {max_per:.2e}",
                start + 16
            );
            assert!(total < 1e-3, "gradients differ: rel L2 {total:.2e}");
            worst = worst.max(total);
        }

        // Adam from identical weights over the same 60 batches. Trajectories of this network
        // separate whatever the cause (Adam divides by tiny second moments early on), so the
        // yardstick is flex against itself started from weights scaled by 1 + 1e-6 (a few f32
        // ulps): libtorch must stay as close to flex as that.
        let steps = 60;
        let moved_from = w_t.iter().flatten().copied().collect::<Vec<f64>>();
        let nudged = model_f.clone().map(&mut Scale(1.0 + 1e-6));
        let (loss_f, wf) = adam_run(model_f, &inputs, &weights, &flex, steps);
        let (loss_t, wt) = adam_run(model_t, &inputs, &weights, &tch, steps);
        let (loss_n, wn) = adam_run(nudged, &inputs, &weights, &flex, steps);
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let moved = norm(&mut wf.iter().zip(&moved_from).map(|(a, b)| a - b));
        let apart_t = norm(&mut wf.iter().zip(&wt).map(|(a, b)| a - b)) / moved;
        let apart_n = norm(&mut wf.iter().zip(&wn).map(|(a, b)| a - b)) / moved;
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
        eprintln!(
            "{steps} Adam steps, mean loss: flex {loss_f:.3}, libtorch {loss_t:.3} (rel {:.2e}), \
             flex nudged {loss_n:.3} (rel {:.2e}); weights apart / weights moved: libtorch \
             {apart_t:.3}, flex nudged {apart_n:.3}",
            rel(loss_t, loss_f),
            rel(loss_n, loss_f)
        );
        assert!(
            rel(loss_t, loss_f) < 1e-4,
            "loss curves drift apart: {:.2e}",
            rel(loss_t, loss_f)
        );
        assert!(
            apart_t < 3.0 * apart_n.max(0.01),
            "libtorch ends {apart_t:.3} from flex, the nudged flex run only {apart_n:.3}"
        );
        eprintln!("worst single-batch gradient rel L2: {worst:.2e}");
    }
}
