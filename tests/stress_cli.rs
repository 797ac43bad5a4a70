//! `beacons stress` on the command line: input errors exit 2 with one located line.

use std::process::Command;

fn beacons(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_beacons"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn input_errors_exit_2_with_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "binding = \"x.toml\"\nsamples = -1\nseed = 1\n").unwrap();
    let (code, err) = beacons(&["stress", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:2:11"), "{err}");
    let (code, err) = beacons(&[
        "stress",
        "scenarios/dose_response_pk.toml",
        "--replay",
        "not-a-token",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--replay: not a beacons replay token"),
        "{err}"
    );
}
