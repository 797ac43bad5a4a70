//! End-to-end tests of the ONNX importer: every committed test model and every shared benchmark
//! model imports; operator histograms and canonical listings of a few are pinned; malformed and
//! unsupported models fail with located messages; and no byte input (truncated, bit-flipped or
//! random) makes the importer panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use beacons::error::Error;
use beacons::ir::onnx::{load, load_bytes};
use proptest::prelude::*;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

/// The shared benchmarks folder, or `None` (with a loud note) when it is absent.
fn benchmarks_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BEACONS_BENCHMARKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/benchmarks"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: benchmark models not found at {} (set BEACONS_BENCHMARKS)",
            dir.display()
        );
        None
    }
}

/// All `.onnx` files under `dir` (recursively), sorted.
fn onnx_files(dir: &Path, recursive: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && recursive {
            out.extend(onnx_files(&p, true));
        } else if p.extension().is_some_and(|x| x == "onnx") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn hist(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn ir_hist(pairs: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

#[test]
fn every_test_model_imports() {
    let files = onnx_files(&models_dir(), false);
    assert!(files.len() >= 15, "expected the committed test models");
    for p in files {
        let m = load(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.format, "onnx");
        assert!(m.graph.validate().is_ok());
        assert!(!m.graph.nodes.is_empty(), "{}", p.display());
        assert!(m.notes[0].contains("opset"), "{:?}", m.notes);
    }
}

#[test]
fn every_benchmark_model_imports() {
    let Some(dir) = benchmarks_dir() else { return };
    let files = onnx_files(&dir, true);
    assert!(
        files.len() >= 48,
        "expected 45 ACAS Xu + 3 mnist_fc models in {}",
        dir.display()
    );
    for p in files {
        let m = load(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.graph.inputs.len(), 1);
        assert_eq!(m.graph.outputs.len(), 1);
    }
}

#[test]
fn benchmark_histograms() {
    let Some(dir) = benchmarks_dir() else { return };
    let acas = load(&dir.join("acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx")).unwrap();
    assert_eq!(
        acas.source_ops,
        hist(&[
            ("Add", 7),
            ("Flatten", 1),
            ("MatMul", 7),
            ("Relu", 6),
            ("Sub", 1)
        ])
    );
    assert_eq!(
        acas.graph.op_histogram(),
        ir_hist(&[("AddConst", 1), ("Linear", 7), ("Relu", 6), ("Reshape", 1)])
    );
    assert_eq!(
        acas.graph.value(acas.graph.inputs[0]).shape,
        vec![1, 1, 1, 5]
    );
    assert!(acas.notes[0].contains("MATLAB") && acas.notes[0].contains("opset 8"));
    let mnist = load(&dir.join("mnist_fc/onnx/mnist-net_256x2.onnx")).unwrap();
    assert_eq!(
        mnist.source_ops,
        hist(&[("Flatten", 1), ("Gemm", 3), ("Relu", 2)])
    );
    assert_eq!(
        mnist.graph.op_histogram(),
        ir_hist(&[("Linear", 3), ("Relu", 2), ("Reshape", 1)])
    );
    assert_eq!(
        mnist.graph.parameter_count(),
        784 * 256 + 256 + 256 * 256 + 256 + 2570
    );
}

#[test]
fn test_model_histograms() {
    let m = load(&models_dir().join("matmul_add_relu.onnx")).unwrap();
    // MatMul + Add pairs become one biased Linear each, also with the bias first.
    assert_eq!(
        m.graph.op_histogram(),
        ir_hist(&[("AddConst", 1), ("Linear", 2), ("Relu", 1), ("Reshape", 1)])
    );
    assert!(m
        .graph
        .nodes
        .iter()
        .all(|n| !matches!(&n.op, beacons::ir::Op::Linear { bias: None, .. })));
    let m = load(&models_dir().join("cnn.onnx")).unwrap();
    assert_eq!(
        m.graph.op_histogram(),
        ir_hist(&[
            ("AveragePool", 1),
            ("BatchNorm", 1),
            ("Conv", 2),
            ("GlobalAveragePool", 1),
            ("Linear", 1),
            ("MaxPool", 1),
            ("Relu", 2),
            ("Reshape", 1)
        ])
    );
    // The symbolic batch `N` is pinned to 1 in the per-sample shape.
    assert_eq!(m.graph.value(m.graph.inputs[0]).shape, vec![1, 3, 9, 9]);
    let m = load(&models_dir().join("residual.onnx")).unwrap();
    assert_eq!(m.graph.op_histogram()["Add"], 1);
    assert_eq!(m.graph.op_histogram()["Sub"], 1);
    let m = load(&models_dir().join("two_io.onnx")).unwrap();
    assert_eq!((m.graph.inputs.len(), m.graph.outputs.len()), (2, 2));
    for opset in [9, 13] {
        let m = load(&models_dir().join(format!("softmax_opset{opset}.onnx"))).unwrap();
        assert!(
            m.notes.iter().any(|n| n.contains("final Softmax")),
            "{:?}",
            m.notes
        );
        assert_eq!(m.graph.op_histogram()["Softmax"], 1);
    }
}

/// The canonical listings of a few imports, pinned.
#[test]
fn canonical_listings() {
    for name in [
        "fc_gemm_relu",
        "gemm_alpha_beta",
        "elementwise",
        "shape_plumbing_opset13",
        "reshape_opset21",
        "cnn_same",
    ] {
        let m = load(&models_dir().join(format!("{name}.onnx"))).unwrap();
        let text = format!(
            "source ops: {:?}\nnotes: {:?}\n{}",
            m.source_ops, m.notes, m.graph
        );
        insta::assert_snapshot!(format!("listing_{name}"), text);
    }
}

/// The opset variants of one network import to the same graph.
#[test]
fn opset_variants_agree() {
    let load_graph = |name: &str| load(&models_dir().join(name)).unwrap().graph;
    let g9 = load_graph("reshape_opset9.onnx");
    assert_eq!(g9, load_graph("reshape_opset13.onnx"));
    assert_eq!(g9, load_graph("reshape_opset21.onnx"));
    let p9 = load_graph("shape_plumbing_opset9.onnx");
    assert_eq!(
        p9.op_histogram(),
        load_graph("shape_plumbing_opset13.onnx").op_histogram()
    );
    assert_eq!(
        p9.op_histogram(),
        load_graph("shape_plumbing_opset11.onnx").op_histogram()
    );
}

fn load_bad(name: &str) -> Error {
    let bytes = std::fs::read(models_dir().join("bad").join(name)).unwrap();
    match load_bytes(&bytes, Path::new(name)) {
        Ok(_) => panic!("{name} should not import"),
        Err(e) => e,
    }
}

#[test]
fn unsupported_operator_names_op_node_and_list() {
    let err = load_bad("einsum.onnx");
    let Error::UnsupportedOp {
        op_type,
        node,
        supported,
        ..
    } = &err
    else {
        panic!("UnsupportedOp expected, got {err}")
    };
    assert_eq!(op_type, "Einsum");
    assert_eq!(node, "mix");
    assert!(supported.contains(&"Gemm") && supported.contains(&"Conv"));
    insta::assert_snapshot!("unsupported_einsum", err.to_string());
}

#[test]
fn malformed_models_fail_with_located_messages() {
    let cases = [
        ("concat_ranks.onnx", "differ in rank"),
        ("cycle.onnx", "cycle"),
        ("external_data.onnx", "external"),
        ("matmul_dynamic.onnx", "two computed tensors"),
        ("maxpool_indices.onnx", "indices"),
        ("opset_7.onnx", "opset 7"),
        ("short_raw_data.onnx", "raw_data has 20 bytes"),
        ("softmax_middle.onnx", "final layer"),
        ("unknown_input.onnx", "`nowhere`"),
    ];
    let mut report = String::new();
    for (name, needle) in cases {
        let err = load_bad(name);
        let Error::Model { context, .. } = &err else {
            panic!("{name}: model error expected, got {err}")
        };
        assert!(!context.is_empty());
        let text = err.to_string();
        assert!(text.contains(needle), "{name}: {text}");
        report.push_str(&text);
        report.push('\n');
    }
    insta::assert_snapshot!("malformed_models", report);
}

/// Whether an import error says where in the model it happened.
fn is_located(e: &Error) -> bool {
    match e {
        Error::Model { context, .. } => !context.is_empty(),
        Error::UnsupportedOp { op_type, .. } => !op_type.is_empty(),
        _ => false,
    }
}

fn corpus() -> &'static Vec<Vec<u8>> {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        onnx_files(&models_dir(), false)
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn truncated_models_fail_cleanly(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let bytes = which.get(corpus());
        let cut = cut.index(bytes.len());
        let result = load_bytes(&bytes[..cut], Path::new("t.onnx"));
        let err = result.err();
        prop_assert!(err.as_ref().is_some_and(is_located), "{:?}", err);
    }

    #[test]
    fn bit_flipped_models_never_panic(which in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4)) {
        let mut bytes = which.get(corpus()).clone();
        for (i, bit) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        if let Err(e) = load_bytes(&bytes, Path::new("f.onnx")) {
            prop_assert!(is_located(&e), "{}", e);
        }
    }

    #[test]
    fn random_bytes_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let err = load_bytes(&bytes, Path::new("r.onnx")).err();
        prop_assert!(err.as_ref().is_some_and(is_located), "{:?}", err);
    }
}

/// Integers that stress index, dimension and overflow handling.
fn nasty_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(-1i64),
        Just(0i64),
        Just(1i64),
        Just(1i64 << 40),
        -8i64..8,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Structured mutations of decoded models: integer attributes, tensor dimensions and node
    /// input names take hostile values. The importer must return a result, never panic.
    #[test]
    fn mutated_fields_never_panic(
        which in any::<prop::sample::Index>(),
        site in any::<prop::sample::Index>(),
        slot in any::<prop::sample::Index>(),
        kind in 0u8..4,
        value in nasty_int(),
    ) {
        use beacons::ir::onnx::pb;
        use prost::Message;
        let mut m = pb::ModelProto::decode(which.get(corpus()).as_slice()).unwrap();
        let g = m.graph.as_mut().unwrap();
        match kind {
            0 if !g.node.is_empty() => {
                let n = site.get_mut(&mut g.node);
                if !n.attribute.is_empty() {
                    let a = slot.get_mut(&mut n.attribute);
                    a.i = value;
                    for v in a.ints.iter_mut() {
                        *v = value;
                    }
                }
            }
            1 if !g.initializer.is_empty() => {
                let t = site.get_mut(&mut g.initializer);
                if !t.dims.is_empty() {
                    *slot.get_mut(&mut t.dims) = value;
                }
            }
            2 if !g.node.is_empty() => {
                let n = site.get_mut(&mut g.node);
                if !n.input.is_empty() {
                    let other = g.initializer.first().map(|t| t.name.clone()).unwrap_or_default();
                    *slot.get_mut(&mut n.input) = other;
                }
            }
            _ => {
                if let Some(vi) = g.input.first_mut() {
                    if let Some(pb::type_proto::Value::TensorType(t)) =
                        vi.r#type.as_mut().and_then(|t| t.value.as_mut())
                    {
                        if let Some(s) = t.shape.as_mut() {
                            if !s.dim.is_empty() {
                                slot.get_mut(&mut s.dim).value =
                                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(value));
                            }
                        }
                    }
                }
            }
        }
        if let Err(e) = load_bytes(&m.encode_to_vec(), Path::new("m.onnx")) {
            prop_assert!(is_located(&e), "{}", e);
        }
    }
}
