//! The README's examples stay true: every `$ beacons …` line in a ```` ```console ```` block
//! of README.md runs (from the repository root) and exits as documented, and every command of
//! the README's command table has at least one such example.
//!
//! An example line may end with `# exit N` when it documents a non-zero exit (a blocked gate,
//! a violated property); otherwise it must exit 0. Examples write only under `target/`.

use std::collections::BTreeSet;
use std::process::Command;

struct Example {
    line: usize,
    args: Vec<String>,
    exit: i32,
}

/// Shell-like split on whitespace with single and double quotes (no escapes needed here).
fn split(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in cmd.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn examples(readme: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut in_console = false;
    for (i, line) in readme.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("```") {
            in_console = !in_console && t == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        let Some(cmd) = t.strip_prefix("$ beacons ") else {
            continue;
        };
        let (cmd, exit) = match cmd.split_once("# exit ") {
            Some((c, e)) => (c, e.trim().parse().expect("`# exit N` with a number")),
            None => (cmd, 0),
        };
        out.push(Example {
            line: i + 1,
            args: split(cmd),
            exit,
        });
    }
    out
}

/// The commands named in the README's command table (`| \`beacons NAME …`).
fn table_commands(readme: &str) -> BTreeSet<String> {
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `beacons "))
        .filter_map(|rest| rest.split([' ', '`']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_examples_run_as_documented() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let examples = examples(&readme);
    assert!(
        examples.len() >= 5,
        "README.md has only {} console examples",
        examples.len()
    );
    let covered: BTreeSet<String> = examples
        .iter()
        .filter_map(|e| e.args.first().cloned())
        .collect();
    let missing: Vec<String> = table_commands(&readme)
        .into_iter()
        .filter(|c| !covered.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "commands in the README's table without a console example: {missing:?}"
    );
    std::fs::create_dir_all(format!("{root}/target/readme-examples")).unwrap();
    for e in &examples {
        let out = Command::new(env!("CARGO_BIN_EXE_beacons"))
            .args(&e.args)
            .current_dir(root)
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        assert_eq!(
            code,
            e.exit,
            "README.md:{}: `beacons {}` exited {code}, documented {}\nstdout:\n{}\nstderr:\n{}",
            e.line,
            e.args.join(" "),
            e.exit,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_example_parser_reads_exits_and_quotes() {
    let md = "```console\n$ beacons verify a 'b c' --timeout 5   # exit 3\n```\n```sh\n$ beacons nope\n```\n| `beacons verify MODEL` | x |\n";
    let ex = examples(md);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].args, ["verify", "a", "b c", "--timeout", "5"]);
    assert_eq!(ex[0].exit, 3);
    assert_eq!(table_commands(md), BTreeSet::from(["verify".to_string()]));
}
