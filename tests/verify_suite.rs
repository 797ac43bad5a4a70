//! `beacons verify --instances` and `beacons merge`: a small ACAS Xu suite run whole and as
//! three shards; the merged shard results must equal the whole run (verdicts and instance
//! order; seconds excluded), and `merge` must refuse duplicate, missing and foreign shards.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use beacons::verify::results::Results;

/// Fast instances with both verdicts (network, property).
const SUITE: &[(&str, &str)] = &[
    ("1_1", "prop_1"),
    ("1_7", "prop_3"),
    ("1_9", "prop_1"),
    ("1_8", "prop_3"),
    ("2_1", "prop_4"),
    ("1_9", "prop_4"),
];

fn beacons(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_beacons"))
        .args(args)
        .output()
        .expect("run beacons")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn read(p: &Path) -> Results {
    let text = std::fs::read_to_string(p).expect("results file");
    Results::parse(&text, p).expect("results parse")
}

/// The rows without their seconds.
fn verdicts(r: &Results) -> Vec<(String, String, &'static str)> {
    r.rows
        .iter()
        .map(|x| (x.onnx.clone(), x.vnnlib.clone(), x.verdict.name()))
        .collect()
}

#[test]
fn sharded_suite_merges_into_the_whole_run() {
    let Some(bench) = common::benchmarks("verify_suite") else {
        return;
    };
    let acas = bench.join("acasxu");
    let tmp = tempfile::tempdir().expect("tempdir");
    // Paths relative to the CSV's folder: the CSV sits in the tempdir, the files are absolute.
    let csv: String = SUITE
        .iter()
        .map(|(n, p)| {
            format!(
                "{},{},116\n",
                acas.join(format!("onnx/ACASXU_run2a_{n}_batch_2000.onnx"))
                    .display(),
                acas.join(format!("vnnlib/{p}.vnnlib")).display()
            )
        })
        .collect();
    let list = tmp.path().join("instances.csv");
    std::fs::write(&list, csv).expect("write list");
    let whole = tmp.path().join("whole.csv");
    let o = beacons(&[
        "verify",
        "--instances",
        s(&list),
        "--timeout-cap",
        "30",
        "--out",
        s(&whole),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.contains("6 instances: 6 decided"), "{summary}");
    let shards: Vec<PathBuf> = (1..=3)
        .map(|k| {
            let out = tmp.path().join(format!("shard{k}.csv"));
            let shard = format!("{k}/3");
            let o = beacons(&[
                "verify",
                "--instances",
                s(&list),
                "--timeout-cap",
                "30",
                "--shard",
                &shard,
                "--out",
                s(&out),
            ]);
            assert_eq!(o.status.code(), Some(0));
            assert_eq!(read(&out).rows.len(), 2);
            out
        })
        .collect();
    let merged = tmp.path().join("merged.csv");
    let o = beacons(&[
        "merge",
        s(&shards[2]),
        s(&shards[0]),
        s(&shards[1]),
        "--instances",
        s(&list),
        "--out",
        s(&merged),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (m, w) = (read(&merged), read(&whole));
    assert_eq!(verdicts(&m), verdicts(&w));
    assert_eq!(
        (&m.fingerprint, m.count, m.shard),
        (&w.fingerprint, w.count, w.shard)
    );

    // Refusals: exit 2 with a one-line reason.
    let refused = |args: &[&str], why: &str| {
        let o = beacons(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    };
    let (a, b, c) = (s(&shards[0]), s(&shards[1]), s(&shards[2]));
    refused(&["merge", a, b, b, c], "appears twice");
    refused(&["merge", a, c], "missing shard(s) 2/3");
    refused(&["merge", a, b, c, s(&whole)], "different shardings");
    let other = tmp.path().join("other.csv");
    std::fs::write(&other, "x.onnx,y.vnnlib,5\n").expect("write");
    refused(
        &["merge", a, b, c, "--instances", s(&other)],
        "different instance list",
    );
    refused(
        &["verify", "--instances", s(&list), "--shard", "4/3"],
        "shard `4/3`",
    );
}
