//! Throughput of the stress tester's forward passes: a 12-input MLP over 1,000,000 generated
//! vitals samples and a small CNN over 100,000 generated cell images (samples per second of
//! `eval::forward_f32`, batched like the runner does, all cores).
//!
//! `cargo bench --bench stress_throughput` prints a table. With `-- --export DIR` it also
//! writes the networks' weights, the exact input batches (`.npy`, f32) and the first outputs,
//! so `benches/compare_onnxruntime.py` can run onnxruntime on the same networks and batches
//! and cross-check the outputs; with `-- --json` it prints one JSON object. Sizes can be
//! scaled down with `BEACONS_STRESS_MLP_SAMPLES` / `BEACONS_STRESS_CNN_SAMPLES`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use beacons::eval;
use beacons::ir::{Conv2d, Graph, Op, Pool2d};
use beacons::stress::generators::GeneratorSpec;
use ndarray::{s, Array1, Array2, Array4, ArrayView2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const MLP_BATCH: usize = 10_000;
const CNN_BATCH: usize = 1_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn randn(rng: &mut StdRng, shape: &[usize], scale: f64) -> Vec<f64> {
    (0..shape.iter().product::<usize>())
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

/// Tensors of a network, by name, for the export.
type Weights = Vec<(String, Vec<usize>, Vec<f64>)>;

/// 12 → 64 → 64 → 2, ReLU, He-initialised with a fixed seed.
fn mlp() -> (Graph, Weights) {
    let mut rng = StdRng::seed_from_u64(12);
    let mut g = Graph::new();
    let mut x = g.add_input("x", vec![12]);
    let mut weights = Weights::new();
    let sizes = [12, 64, 64, 2];
    for (k, w) in sizes.windows(2).enumerate() {
        let (i, o) = (w[0], w[1]);
        let wv = randn(&mut rng, &[o, i], (2.0 / i as f64).sqrt());
        let bv = randn(&mut rng, &[o], 0.1);
        weights.push((format!("w{k}"), vec![o, i], wv.clone()));
        weights.push((format!("b{k}"), vec![o], bv.clone()));
        let op = Op::Linear {
            weight: Array2::from_shape_vec((o, i), wv).unwrap(),
            bias: Some(Array1::from(bv)),
        };
        x = g
            .add_node(format!("fc{k}"), op, vec![x], format!("h{k}"))
            .unwrap();
        if k + 2 < sizes.len() {
            x = g
                .add_node(format!("relu{k}"), Op::Relu, vec![x], format!("r{k}"))
                .unwrap();
        }
    }
    g.add_output(x);
    (g, weights)
}

/// 1×28×28 → conv 8@3×3 (pad 1) → ReLU → max-pool 2 → conv 16@3×3 (pad 1) → ReLU →
/// max-pool 2 → flatten 784 → linear 3.
fn cnn() -> (Graph, Weights) {
    let mut rng = StdRng::seed_from_u64(28);
    let mut g = Graph::new();
    let mut x = g.add_input("x", vec![1, 1, 28, 28]);
    let mut weights = Weights::new();
    let pool = Pool2d {
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0; 4],
        dilations: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    for (k, (cin, cout)) in [(1usize, 8usize), (8, 16)].into_iter().enumerate() {
        let wv = randn(
            &mut rng,
            &[cout, cin, 3, 3],
            (2.0 / (9 * cin) as f64).sqrt(),
        );
        let bv = randn(&mut rng, &[cout], 0.1);
        weights.push((format!("c{k}"), vec![cout, cin, 3, 3], wv.clone()));
        weights.push((format!("cb{k}"), vec![cout], bv.clone()));
        let conv = Conv2d {
            weight: Array4::from_shape_vec((cout, cin, 3, 3), wv).unwrap(),
            bias: Some(Array1::from(bv)),
            strides: [1, 1],
            pads: [1, 1, 1, 1],
            dilations: [1, 1],
            group: 1,
        };
        x = g
            .add_node(format!("conv{k}"), Op::Conv(conv), vec![x], format!("c{k}"))
            .unwrap();
        x = g
            .add_node(format!("relu{k}"), Op::Relu, vec![x], format!("r{k}"))
            .unwrap();
        x = g
            .add_node(
                format!("pool{k}"),
                Op::MaxPool(pool.clone()),
                vec![x],
                format!("p{k}"),
            )
            .unwrap();
    }
    x = g
        .add_node(
            "flatten",
            Op::Reshape {
                shape: vec![1, 784],
            },
            vec![x],
            "flat",
        )
        .unwrap();
    let wv = randn(&mut rng, &[3, 784], (1.0 / 784.0f64).sqrt());
    let bv = randn(&mut rng, &[3], 0.1);
    weights.push(("fw".into(), vec![3, 784], wv.clone()));
    weights.push(("fb".into(), vec![3], bv.clone()));
    let op = Op::Linear {
        weight: Array2::from_shape_vec((3, 784), wv).unwrap(),
        bias: Some(Array1::from(bv)),
    };
    x = g.add_node("fc", op, vec![x], "logits").unwrap();
    g.add_output(x);
    (g, weights)
}

/// Writes a little-endian `.npy` file (`<f4` or `<f8`).
fn write_npy(path: &Path, shape: &[usize], f32_data: Option<&[f32]>, f64_data: Option<&[f64]>) {
    let descr = if f32_data.is_some() { "<f4" } else { "<f8" };
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(b"\x93NUMPY\x01\x00").unwrap();
    f.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    if let Some(d) = f32_data {
        for v in d {
            f.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    if let Some(d) = f64_data {
        for v in d {
            f.write_all(&v.to_le_bytes()).unwrap();
        }
    }
}

/// Samples per second of `forward_f32` over `x` in batches of `batch` rows (best of `reps`),
/// and the outputs.
fn time_forward(g: &Graph, x: ArrayView2<f32>, batch: usize, reps: usize) -> (f64, Array2<f32>) {
    let mut best = f64::INFINITY;
    let mut out = Array2::zeros((0, 0));
    for _ in 0..reps {
        let t = Instant::now();
        let parts: Vec<Array2<f32>> = x
            .axis_chunks_iter(Axis(0), batch)
            .map(|b| eval::forward_f32(g, b).unwrap())
            .collect();
        best = best.min(t.elapsed().as_secs_f64());
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        out = ndarray::concatenate(Axis(0), &views).unwrap();
    }
    (x.nrows() as f64 / best, out)
}

fn generate(spec: &str, n: usize) -> (Array2<f64>, f64) {
    let spec: GeneratorSpec = toml::from_str(spec).unwrap();
    spec.validate().unwrap();
    let t = Instant::now();
    let cohort = spec.build().generate(n, &mut StdRng::seed_from_u64(1));
    (cohort.x, n as f64 / t.elapsed().as_secs_f64())
}

fn main() {
    // As the `beacons` binary does before `beacons stress` runs.
    // SAFETY: no other thread exists yet.
    unsafe { beacons::tune_allocator() };
    let args: Vec<String> = std::env::args().collect();
    let export = args
        .iter()
        .position(|a| a == "--export")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let json = args.iter().any(|a| a == "--json");
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this target without it,
    // as a smoke check of the harness on a small workload (speed is measured only by benches).
    let full = args.iter().any(|a| a == "--bench");
    let n_mlp = env_usize(
        "BEACONS_STRESS_MLP_SAMPLES",
        if full { 1_000_000 } else { 20_000 },
    );
    let n_cnn = env_usize(
        "BEACONS_STRESS_CNN_SAMPLES",
        if full { 100_000 } else { 2_000 },
    );
    let threads = rayon::current_num_threads();

    // MLP on vitals: z-scored per column (the binding's standard normalisation).
    let (x, gen_mlp) = generate("kind = \"vitals\"", n_mlp);
    let mean = x.mean_axis(Axis(0)).unwrap();
    let sd = x
        .std_axis(Axis(0), 0.0)
        .mapv(|v| if v > 0.0 { v } else { 1.0 });
    let xm: Array2<f32> = ((&x - &mean) / &sd).mapv(|v| v as f32);
    let (g, w_mlp) = mlp();
    let (mlp_rate, mlp_out) = time_forward(&g, xm.view(), MLP_BATCH, 3);

    // CNN on cell images, scaled to [0, 1]-ish by the image maximum.
    let (xi, gen_cnn) = generate("kind = \"cell_image\"", n_cnn);
    let peak = xi.iter().fold(1.0f64, |a, &b| a.max(b));
    let xc: Array2<f32> = xi.mapv(|v| (v / peak) as f32);
    let (gc, w_cnn) = cnn();
    let (cnn_rate, cnn_out) = time_forward(&gc, xc.view(), CNN_BATCH, 2);

    if let Some(dir) = &export {
        std::fs::create_dir_all(dir).unwrap();
        for (prefix, w) in [("mlp", &w_mlp), ("cnn", &w_cnn)] {
            for (name, shape, data) in w.iter() {
                write_npy(
                    &dir.join(format!("{prefix}_{name}.npy")),
                    shape,
                    None,
                    Some(data),
                );
            }
        }
        let xm_flat = xm.as_standard_layout();
        write_npy(
            &dir.join("mlp_x.npy"),
            &[n_mlp, 12],
            xm_flat.as_slice(),
            None,
        );
        let xc_flat = xc.as_standard_layout();
        write_npy(
            &dir.join("cnn_x.npy"),
            &[n_cnn, 1, 28, 28],
            xc_flat.as_slice(),
            None,
        );
        let head = |o: &Array2<f32>| o.slice(s![..o.nrows().min(10_000), ..]).to_owned();
        let (mo, co) = (head(&mlp_out), head(&cnn_out));
        write_npy(
            &dir.join("mlp_out.npy"),
            &[mo.nrows(), 2],
            mo.as_slice(),
            None,
        );
        write_npy(
            &dir.join("cnn_out.npy"),
            &[co.nrows(), 3],
            co.as_slice(),
            None,
        );
    }
    if json {
        println!(
            "{{\"threads\": {threads}, \"mlp\": {{\"samples\": {n_mlp}, \"batch\": {MLP_BATCH}, \"samples_per_s\": {mlp_rate:.1}, \"generated_per_s\": {gen_mlp:.1}}}, \"cnn\": {{\"samples\": {n_cnn}, \"batch\": {CNN_BATCH}, \"samples_per_s\": {cnn_rate:.1}, \"generated_per_s\": {gen_cnn:.1}}}}}"
        );
    } else {
        println!("stress throughput ({threads} threads, forward_f32, best of runs)");
        println!(
            "  MLP 12-64-64-2 on {n_mlp} vitals samples, batch {MLP_BATCH}: {mlp_rate:>12.0} samples/s (generator {gen_mlp:.0} samples/s)"
        );
        println!(
            "  CNN 2 conv + fc on {n_cnn} 28x28 cell images, batch {CNN_BATCH}: {cnn_rate:>10.0} images/s (generator {gen_cnn:.0} images/s)"
        );
    }
}
