//! NNet import: the classic ACAS Xu text format → `Graph`.
//!
//! In: NNet text. After `//` comment lines come, one record per line with comma-separated
//! values (a trailing comma is allowed): `numLayers, inputSize, outputSize, maxLayerSize`;
//! the `numLayers + 1` layer sizes; a deprecated flag line (ignored); the input minimums and
//! maximums (`inputSize` each); the means and ranges (`inputSize + 1` each: the inputs, then
//! the output); then per layer its weight rows (one line per output neuron) followed by its
//! biases (one value per line). Hidden layers are ReLU, the last layer is affine.
//!
//! Out: a [`Model`] whose graph computes the NNet function exactly:
//! input `[1, inputSize]` → `AddConst(−mean)` → `DivConst(range)` → (`Linear` → `Relu`)* →
//! `Linear` → `MulConst(range_out)` → `AddConst(mean_out)`. Normalisation nodes that would be
//! the identity (all means exactly 0, all ranges exactly 1) are left out.
//!
//! Reference NNet evaluators also clip each input to `[min, max]`. The graph does **not**:
//! clipping is not part of the network function a property talks about, and the input box
//! of a property should stay inside the domain anyway. The domain is recorded in
//! `Model::notes` so reports can show it.
//!
//! Every malformed input gives `Error::Parse` with the file, line and column and what was
//! expected; nothing here panics on user data, and nothing is allocated from header sizes
//! before the data is actually read.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array1, Array2, ArrayD, IxDyn};

use crate::error::{Error, Location, Result};
use crate::ir::{Graph, Model, Op};

/// Loads an NNet file.
pub fn load(path: &Path) -> Result<Model> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path)
}

/// Parses NNet text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Model> {
    let mut r = Reader::new(text, path);

    let line = r.line("the header `numLayers, inputSize, outputSize, maxLayerSize`")?;
    let head = r.integers(
        &line,
        "header values (numLayers, inputSize, outputSize, maxLayerSize)",
        Some(4),
    )?;
    let (num_layers, input_size, output_size) = (head[0].0, head[1].0, head[2].0);
    if num_layers == 0 {
        return Err(r.err(head[0].1, "numLayers must be at least 1"));
    }
    let count = num_layers
        .checked_add(1)
        .ok_or_else(|| r.err(head[0].1, "numLayers is too large"))?;

    let line = r.line("the layer sizes")?;
    let sizes = r.integers(&line, "layer sizes (numLayers + 1)", Some(count))?;
    if let Some((_, at)) = sizes.iter().find(|(s, _)| *s == 0) {
        return Err(r.err(*at, "layer sizes must be at least 1"));
    }
    if sizes[0].0 != input_size {
        return Err(r.err(
            sizes[0].1,
            &format!(
                "the first layer size ({}) must equal inputSize ({input_size})",
                sizes[0].0
            ),
        ));
    }
    if sizes[num_layers].0 != output_size {
        return Err(r.err(
            sizes[num_layers].1,
            &format!(
                "the last layer size ({}) must equal outputSize ({output_size})",
                sizes[num_layers].0
            ),
        ));
    }
    let sizes: Vec<usize> = sizes.into_iter().map(|(s, _)| s).collect();

    r.line("the (deprecated) symmetric flag line")?;
    let line = r.line("the input minimums")?;
    let mins = r.floats(&line, "input minimums", input_size)?;
    let line = r.line("the input maximums")?;
    let maxs = r.floats(&line, "input maximums", input_size)?;
    let line = r.line("the means")?;
    let means = r.floats(&line, "means (inputSize + 1)", input_size + 1)?;
    let line = r.line("the ranges")?;
    let ranges = r.floats(&line, "ranges (inputSize + 1)", input_size + 1)?;
    if let Some(i) = ranges[..input_size].iter().position(|&v| v == 0.0) {
        let at = r.token_location(&line, i);
        return Err(r.err(
            at,
            &format!("the range of input {i} is 0; inputs are divided by their range"),
        ));
    }

    let mut layers = Vec::with_capacity(num_layers.min(1024));
    for l in 0..num_layers {
        let (rows, cols) = (sizes[l + 1], sizes[l]);
        let mut weights = Vec::new();
        for o in 0..rows {
            let what = format!("weight row {} of layer {} ({cols} values)", o + 1, l + 1);
            let line = r.line(&what)?;
            weights.extend(r.floats(&line, &what, cols)?);
        }
        let mut bias = Vec::new();
        for o in 0..rows {
            let what = format!("bias {} of layer {} (one value per line)", o + 1, l + 1);
            let line = r.line(&what)?;
            bias.extend(r.floats(&line, &what, 1)?);
        }
        let w = Array2::from_shape_vec((rows, cols), weights)
            .map_err(|e| Error::model(path, format!("layer {}", l + 1), e.to_string()))?;
        layers.push((w, Array1::from(bias)));
    }
    if let Some(line) = r.next_content() {
        let at = Location {
            line: line.no,
            column: 1,
        };
        return Err(r.err(at, "unexpected content after the biases of the last layer"));
    }

    let graph =
        build(&layers, &means, &ranges, input_size).map_err(|e| Error::model(path, "graph", e))?;
    let mut source_ops = BTreeMap::new();
    source_ops.insert("Dense".to_string(), num_layers);
    if num_layers > 1 {
        source_ops.insert("Relu".to_string(), num_layers - 1);
    }
    let domain: Vec<String> = mins
        .iter()
        .zip(&maxs)
        .enumerate()
        .map(|(i, (a, b))| format!("x{i} in [{a}, {b}]"))
        .collect();
    let notes = vec![
        format!(
            "NNet input domain (not applied: the graph does not clip inputs): {}",
            domain.join(", ")
        ),
        format!(
            "NNet normalisation built into the graph: inputs (x - mean) / range with means {:?} and ranges {:?}; output y * {} + {}",
            &means[..input_size],
            &ranges[..input_size],
            ranges[input_size],
            means[input_size]
        ),
    ];
    Ok(Model {
        graph,
        format: "nnet",
        source_ops,
        notes,
    })
}

fn build(
    layers: &[(Array2<f64>, Array1<f64>)],
    means: &[f64],
    ranges: &[f64],
    n: usize,
) -> Result<Graph, String> {
    let vec_const = |v: &[f64]| {
        ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).map_err(|e| e.to_string())
    };
    let mut g = Graph::new();
    let mut v = g.add_input("input", vec![1, n]);
    if means[..n].iter().any(|&m| m != 0.0) {
        let neg: Vec<f64> = means[..n].iter().map(|m| -m).collect();
        v = g.add_node(
            "normalise_mean",
            Op::AddConst(vec_const(&neg)?),
            vec![v],
            "centred",
        )?;
    }
    if ranges[..n].iter().any(|&r| r != 1.0) {
        v = g.add_node(
            "normalise_range",
            Op::DivConst(vec_const(&ranges[..n])?),
            vec![v],
            "normalised",
        )?;
    }
    for (l, (w, b)) in layers.iter().enumerate() {
        let op = Op::Linear {
            weight: w.clone(),
            bias: Some(b.clone()),
        };
        let last = l + 1 == layers.len();
        v = g.add_node(
            format!("layer{}", l + 1),
            op,
            vec![v],
            format!("layer{}", l + 1),
        )?;
        if !last {
            v = g.add_node(
                format!("relu{}", l + 1),
                Op::Relu,
                vec![v],
                format!("relu{}", l + 1),
            )?;
        }
    }
    if ranges[n] != 1.0 {
        v = g.add_node(
            "unnormalise_range",
            Op::MulConst(vec_const(&ranges[n..])?),
            vec![v],
            "scaled",
        )?;
    }
    if means[n] != 0.0 {
        v = g.add_node(
            "unnormalise_mean",
            Op::AddConst(vec_const(&means[n..])?),
            vec![v],
            "output",
        )?;
    }
    g.add_output(v);
    Ok(g)
}

/// One line of content: its 1-based number and its text (without the newline).
struct Line<'a> {
    no: usize,
    text: &'a str,
}

/// A comma-separated token with its 1-based column.
struct Token<'a> {
    column: usize,
    text: &'a str,
}

struct Reader<'a> {
    text: &'a str,
    path: &'a Path,
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str, path: &'a Path) -> Reader<'a> {
        Reader {
            text,
            path,
            lines: text.lines().enumerate(),
        }
    }

    fn err(&self, at: Location, message: &str) -> Error {
        Error::parse(self.path, at, message)
    }

    /// The next line that is neither blank nor a `//` comment.
    fn next_content(&mut self) -> Option<Line<'a>> {
        for (i, text) in self.lines.by_ref() {
            let t = text.trim();
            if !t.is_empty() && !t.starts_with("//") {
                return Some(Line { no: i + 1, text });
            }
        }
        None
    }

    fn line(&mut self, what: &str) -> Result<Line<'a>> {
        self.next_content().ok_or_else(|| {
            let end = Location::of_offset(self.text, self.text.len());
            self.err(
                end,
                &format!("expected {what}, but the file ends here (is it truncated?)"),
            )
        })
    }

    /// The comma-separated tokens of a line; one empty token at the end (a trailing comma) is
    /// dropped.
    fn tokens(line: &Line<'a>) -> Vec<Token<'a>> {
        let mut out = Vec::new();
        let mut start = 0;
        for piece in line.text.split(',') {
            let lead = piece.len() - piece.trim_start().len();
            let column = line.text[..start + lead].chars().count() + 1;
            out.push(Token {
                column,
                text: piece.trim(),
            });
            start += piece.len() + 1;
        }
        if out.len() > 1 && out.last().is_some_and(|t| t.text.is_empty()) {
            out.pop();
        }
        out
    }

    fn token_location(&self, line: &Line<'a>, i: usize) -> Location {
        let column = Self::tokens(line).get(i).map_or(1, |t| t.column);
        Location {
            line: line.no,
            column,
        }
    }

    /// Checks the number of tokens (`expected == None`: any positive number).
    fn counted(
        &self,
        line: &Line<'a>,
        what: &str,
        expected: Option<usize>,
    ) -> Result<Vec<Token<'a>>> {
        let toks = Self::tokens(line);
        if let Some(n) = expected {
            if toks.len() < n {
                let at = Location {
                    line: line.no,
                    column: line.text.chars().count() + 1,
                };
                return Err(self.err(
                    at,
                    &format!(
                        "expected {n} {what}, found only {} on this line",
                        toks.len()
                    ),
                ));
            }
            if toks.len() > n {
                let at = Location {
                    line: line.no,
                    column: toks[n].column,
                };
                return Err(self.err(
                    at,
                    &format!("expected {n} {what}, found {} on this line", toks.len()),
                ));
            }
        }
        Ok(toks)
    }

    fn integers(
        &self,
        line: &Line<'a>,
        what: &str,
        expected: Option<usize>,
    ) -> Result<Vec<(usize, Location)>> {
        self.counted(line, what, expected)?
            .into_iter()
            .map(|t| {
                let at = Location {
                    line: line.no,
                    column: t.column,
                };
                t.text.parse::<usize>().map(|v| (v, at)).map_err(|_| {
                    self.err(
                        at,
                        &format!(
                            "expected a non-negative integer in the {what}, found `{}`",
                            t.text
                        ),
                    )
                })
            })
            .collect()
    }

    fn floats(&self, line: &Line<'a>, what: &str, expected: usize) -> Result<Vec<f64>> {
        self.counted(line, what, Some(expected))?
            .into_iter()
            .map(|t| {
                let at = Location {
                    line: line.no,
                    column: t.column,
                };
                match t.text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    Ok(_) => Err(self.err(
                        at,
                        &format!("expected a finite number in the {what}, found `{}`", t.text),
                    )),
                    Err(_) => Err(self.err(
                        at,
                        &format!("expected a number in the {what}, found `{}`", t.text),
                    )),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "// a tiny network\n// second comment\n2,2,1,3,\n2,3,1,\n0,\n-1.0,-2.0,\n1.0,2.0,\n0.5,0.0,1.5,\n2.0,4.0,10.0,\n1.0,-1.0,\n0.5,0.25,\n-2.0,1.0,\n0.0,\n0.5,\n-1.0,\n1.0,1.0,-1.0,\n0.25,\n";

    fn parse_str(s: &str) -> Result<Model> {
        parse(s, Path::new("t.nnet"))
    }

    #[test]
    fn parses_a_small_network_with_normalisation() {
        let m = parse_str(SMALL).unwrap();
        let kinds: Vec<&str> = m.graph.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(
            kinds,
            ["AddConst", "DivConst", "Linear", "Relu", "Linear", "MulConst", "AddConst"]
        );
        // x = (1.5, 4): normalised (0.5, 1); layer1: (0.5-1, 0.25+0.25, -1+1) + b
        // = (-0.5, 0.5, 0) + (0, 0.5, -1) -> relu (0, 1, 0); layer2: 1 + 0.25 = 1.25;
        // output 1.25 * 10 + 1.5 = 14.
        let y = crate::eval::forward_f64(&m.graph, ndarray::array![[1.5, 4.0]].view()).unwrap();
        assert_eq!(y[(0, 0)], 14.0);
        assert!(m.notes[0].contains("x1 in [-2, 2]"));
    }

    #[test]
    fn identity_normalisation_is_skipped() {
        let s = SMALL
            .replace("0.5,0.0,1.5,", "0.0,0.0,0.0,")
            .replace("2.0,4.0,10.0,", "1.0,1.0,1.0,");
        let m = parse_str(&s).unwrap();
        let kinds: Vec<&str> = m.graph.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(kinds, ["Linear", "Relu", "Linear"]);
    }

    fn located(s: &str) -> (usize, usize, String) {
        match parse_str(s) {
            Err(Error::Parse {
                location, message, ..
            }) => (location.line, location.column, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn errors_say_where_and_what() {
        let (l, c, m) = located(&SMALL.replace("0.5,0.25,", "0.5,abc,"));
        assert_eq!((l, c), (11, 5));
        assert!(
            m.contains("weight row 2 of layer 1") && m.contains("`abc`"),
            "{m}"
        );
        let (l, _, m) = located(&SMALL.replace("-1.0,-2.0,", "-1.0,"));
        assert_eq!(l, 6);
        assert!(m.contains("expected 2 input minimums, found only 1"), "{m}");
        let (l, c, m) = located(&SMALL.replace("2,3,1,", "2,3,1,4,"));
        assert_eq!((l, c), (4, 7));
        assert!(m.contains("layer sizes"), "{m}");
        let (l, _, m) = located(&format!("{SMALL}0.5,\n"));
        assert_eq!(l, 18);
        assert!(m.contains("after the biases"), "{m}");
        let (_, _, m) = located(&SMALL.replace("2.0,4.0,10.0,", "2.0,0.0,10.0,"));
        assert!(m.contains("range of input 1 is 0"), "{m}");
        let (_, _, m) = located(&SMALL.replace("-2.0,1.0,", "NaN,1.0,"));
        assert!(m.contains("finite"), "{m}");
        let (l, c, m) = located(&SMALL[..SMALL.len() - 6]);
        assert_eq!((l, c), (17, 1));
        assert!(
            m.contains("bias 1 of layer 2") && m.contains("file ends"),
            "{m}"
        );
        let (_, _, m) = located("// only a comment\n");
        assert!(m.contains("header"), "{m}");
        let (_, _, m) = located("18446744073709551615,1,1,1\n1,1\n");
        assert!(m.contains("too large"), "{m}");
    }
}
