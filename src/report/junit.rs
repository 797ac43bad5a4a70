//! `junit.xml`: one test case per formal property and per scenario property, so CI systems
//! list them natively (the common JUnit schema: testsuites > testsuite > testcase, with
//! `failure` for a violated property or failing stress property and `error` for an undecided
//! property).

use super::{esc, num, Report};

pub fn render(r: &Report) -> String {
    let mut suites = String::new();
    let (mut all_tests, mut all_failures, mut all_errors) = (0, 0, 0);
    if !r.properties.is_empty() {
        let mut cases = String::new();
        let (mut failures, mut errors, mut time) = (0, 0, 0.0);
        for p in &r.properties {
            time += p.seconds;
            cases += &format!(
                "    <testcase name=\"{}\" classname=\"{}.properties\" time=\"{:.3}\">\n",
                esc(&p.name),
                esc(&r.policy_name),
                p.seconds
            );
            match p.verdict.as_str() {
                "holds" => {}
                "violated" => {
                    failures += 1;
                    let detail = p.counterexample.as_ref().map_or(String::new(), |c| {
                        let x: Vec<String> = c.input.iter().map(|v| num(*v)).collect();
                        format!("counterexample X = [{}]", x.join(", "))
                    });
                    cases += &format!(
                        "      <failure message=\"property violated\" type=\"violated\">{}</failure>\n",
                        esc(&detail)
                    );
                }
                v => {
                    errors += 1;
                    cases += &format!(
                        "      <error message=\"{}\" type=\"{}\">{}</error>\n",
                        esc(&format!("property {v}")),
                        esc(v),
                        esc(&p.reason)
                    );
                }
            }
            cases += "    </testcase>\n";
        }
        suites += &format!(
            "  <testsuite name=\"{}: formal properties\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">\n{cases}  </testsuite>\n",
            esc(&r.policy_name),
            r.properties.len()
        );
        all_tests += r.properties.len();
        all_failures += failures;
        all_errors += errors;
    }
    for sc in &r.scenarios {
        let res = &sc.results;
        let mut cases = String::new();
        let mut failures = 0;
        for p in &res.properties {
            cases += &format!(
                "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"0\">\n",
                esc(&p.name),
                esc(&r.policy_name),
                esc(&res.scenario)
            );
            if !p.passed {
                failures += 1;
                let text: Vec<String> = p
                    .failures
                    .iter()
                    .map(|f| {
                        format!(
                            "under {} from severity {} on {} sample(s); replay: {}",
                            f.perturbation,
                            num(f.severity),
                            f.samples.len(),
                            f.replay
                        )
                    })
                    .collect();
                cases += &format!(
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                    esc(&format!("{} fails", p.kind)),
                    esc(&p.kind),
                    esc(&text.join("\n"))
                );
            }
            cases += "    </testcase>\n";
        }
        suites += &format!(
            "  <testsuite name=\"{}: stress scenario {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">\n{cases}  </testsuite>\n",
            esc(&r.policy_name),
            esc(&res.scenario),
            res.properties.len(),
            sc.seconds
        );
        all_tests += res.properties.len();
        all_failures += failures;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"beacons gate {}\" tests=\"{all_tests}\" failures=\"{all_failures}\" errors=\"{all_errors}\" time=\"{:.3}\">\n{suites}</testsuites>\n",
        esc(&r.policy_name),
        r.duration_seconds
    )
}
