//! Constants of the ONNX importer: `TensorProto` → [`Const`], and the few operations on them.
//!
//! A [`Const`] is either a float tensor (`FLOAT` or `DOUBLE` data, stored as `f64`: every
//! `f32` widens exactly) or an integer tensor (`INT64`, `INT32`, `INT8`, `BOOL`, … stored as
//! `i64`), which is what shape plumbing computes with. Data may come from `raw_data`
//! (little-endian) or the typed repeated fields; its length is checked against the declared
//! dimensions before anything is allocated, dimension products are computed with overflow
//! checks, and tensors stored in external files are refused with a clear message.

use ndarray::{ArrayD, IxDyn};

use super::pb::TensorProto;

/// Largest number of elements a constant computed at import time (not read from the file)
/// may have. Tensors read from the file are bounded by the file size instead.
pub const MAX_COMPUTED_ELEMENTS: usize = 1 << 24;

/// A constant known at import time.
#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    Float(ArrayD<f64>),
    Int(ArrayD<i64>),
}

/// Applies the same generic expression to either variant of a [`Const`], keeping the variant.
macro_rules! map_const {
    ($c:expr, $a:ident => $e:expr) => {
        match $c {
            $crate::ir::onnx::tensor::Const::Float($a) => {
                $crate::ir::onnx::tensor::Const::Float($e)
            }
            $crate::ir::onnx::tensor::Const::Int($a) => $crate::ir::onnx::tensor::Const::Int($e),
        }
    };
}
pub(crate) use map_const;

/// ONNX `TensorProto.DataType` codes this importer reads.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const UINT16: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const DOUBLE: i32 = 11;
    pub const UINT32: i32 = 12;
}

impl Const {
    pub fn shape(&self) -> &[usize] {
        match self {
            Const::Float(a) => a.shape(),
            Const::Int(a) => a.shape(),
        }
    }

    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// The values as `f64` (integers convert exactly up to 2^53; beyond that it is an error).
    pub fn to_f64(&self) -> Result<ArrayD<f64>, String> {
        match self {
            Const::Float(a) => Ok(a.clone()),
            Const::Int(a) => {
                if a.iter().any(|&v| v.unsigned_abs() > 1 << 53) {
                    return Err("integer constant too large to be exact as a float".into());
                }
                Ok(a.mapv(|v| v as f64))
            }
        }
    }

    /// The values as integers (floats must be integral), in row-major order.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>, String> {
        match self {
            Const::Int(a) => Ok(a.iter().copied().collect()),
            Const::Float(a) => a
                .iter()
                .map(|&v| {
                    if v.fract() == 0.0 && v.abs() < 9.0e18 {
                        Ok(v as i64)
                    } else {
                        Err(format!("expected integers, found {v}"))
                    }
                })
                .collect(),
        }
    }

    /// Reshapes (row-major) to `shape`, which must have the same number of elements.
    pub fn reshaped(&self, shape: &[usize]) -> Result<Const, String> {
        let n = checked_product(shape)?;
        if n != self.len() {
            return Err(format!(
                "cannot reshape a constant of shape {:?} to {shape:?}",
                self.shape()
            ));
        }
        let r = map_const!(self, a => {
            let v: Vec<_> = a.iter().cloned().collect();
            ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| e.to_string())?
        });
        Ok(r)
    }
}

/// Product of dimensions, or an error on overflow.
pub fn checked_product(dims: &[usize]) -> Result<usize, String> {
    dims.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| format!("dimensions {dims:?} overflow"))
    })
}

/// Converts ONNX `int64` dimensions to `usize`, refusing negative values and overflow.
pub fn dims_to_usize(dims: &[i64]) -> Result<Vec<usize>, String> {
    let out = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d} in {dims:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    checked_product(&out)?;
    Ok(out)
}

/// Reads a `TensorProto` into a [`Const`]. Errors are plain messages; the caller adds where.
pub fn read_tensor(t: &TensorProto) -> Result<Const, String> {
    if t.data_location == 1 {
        return Err(
            "tensor data is stored in an external file, which beacons does not read; \
             re-save the model with all tensors inside (onnx.save(..., save_as_external_data=False))"
                .into(),
        );
    }
    let shape = dims_to_usize(&t.dims)?;
    let n = checked_product(&shape)?;
    let raw = &t.raw_data;
    let check_len = |got: usize, what: &str| {
        if got == n {
            Ok(())
        } else {
            Err(format!(
                "{what} holds {got} values but the dimensions {shape:?} need {n}"
            ))
        }
    };
    let from_raw = |size: usize| -> Result<std::slice::ChunksExact<'_, u8>, String> {
        let want = n
            .checked_mul(size)
            .ok_or_else(|| format!("dimensions {shape:?} overflow"))?;
        if raw.len() != want {
            return Err(format!(
                "raw_data has {} bytes but the dimensions {shape:?} need {want}",
                raw.len()
            ));
        }
        Ok(raw.chunks_exact(size))
    };
    let floats: Option<Vec<f64>> = match t.data_type {
        dtype::FLOAT => Some(if !t.raw_data.is_empty() {
            from_raw(4)?
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect()
        } else {
            check_len(t.float_data.len(), "float_data")?;
            t.float_data.iter().map(|&v| v as f64).collect()
        }),
        dtype::DOUBLE => Some(if !t.raw_data.is_empty() {
            from_raw(8)?
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect()
        } else {
            check_len(t.double_data.len(), "double_data")?;
            t.double_data.clone()
        }),
        _ => None,
    };
    if let Some(v) = floats {
        return ArrayD::from_shape_vec(IxDyn(&shape), v)
            .map(Const::Float)
            .map_err(|e| e.to_string());
    }
    let ints: Vec<i64> = match t.data_type {
        dtype::INT64 => {
            if !t.raw_data.is_empty() {
                from_raw(8)?
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect()
            } else {
                check_len(t.int64_data.len(), "int64_data")?;
                t.int64_data.clone()
            }
        }
        dtype::UINT32 => {
            if !t.raw_data.is_empty() {
                from_raw(4)?
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect()
            } else {
                check_len(t.uint64_data.len(), "uint64_data")?;
                t.uint64_data.iter().map(|&v| v as i64).collect()
            }
        }
        dtype::INT32 | dtype::INT16 | dtype::INT8 | dtype::UINT16 | dtype::UINT8 | dtype::BOOL => {
            if !t.raw_data.is_empty() {
                let ty = t.data_type;
                let size = match ty {
                    dtype::INT32 => 4,
                    dtype::INT16 | dtype::UINT16 => 2,
                    _ => 1,
                };
                from_raw(size)?
                    .map(|c| match ty {
                        dtype::INT32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                        dtype::INT16 => i16::from_le_bytes([c[0], c[1]]) as i64,
                        dtype::UINT16 => u16::from_le_bytes([c[0], c[1]]) as i64,
                        dtype::INT8 => c[0] as i8 as i64,
                        _ => c[0] as i64,
                    })
                    .collect()
            } else {
                check_len(t.int32_data.len(), "int32_data")?;
                t.int32_data.iter().map(|&v| v as i64).collect()
            }
        }
        other => {
            return Err(format!(
                "tensor element type {} ({other}) is not supported; beacons reads float, double and integer tensors",
                dtype_name(other)
            ))
        }
    };
    ArrayD::from_shape_vec(IxDyn(&shape), ints)
        .map(Const::Int)
        .map_err(|e| e.to_string())
}

/// The ONNX name of a tensor element type code.
pub fn dtype_name(code: i32) -> &'static str {
    match code {
        0 => "UNDEFINED",
        1 => "FLOAT",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "STRING",
        9 => "BOOL",
        10 => "FLOAT16",
        11 => "DOUBLE",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        16 => "BFLOAT16",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(data_type: i32, dims: Vec<i64>) -> TensorProto {
        TensorProto {
            data_type,
            dims,
            ..Default::default()
        }
    }

    #[test]
    fn raw_and_typed_floats() {
        let mut t = tensor(dtype::FLOAT, vec![2]);
        t.raw_data = [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat();
        assert_eq!(
            read_tensor(&t).unwrap(),
            Const::Float(ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.5, -2.0]).unwrap())
        );
        let mut t = tensor(dtype::FLOAT, vec![1, 2]);
        t.float_data = vec![0.1, 3.0];
        let Const::Float(a) = read_tensor(&t).unwrap() else {
            panic!("float expected")
        };
        assert_eq!(a[[0, 0]], 0.1f32 as f64);
    }

    #[test]
    fn ints_and_lengths_are_checked() {
        let mut t = tensor(dtype::INT64, vec![3]);
        t.int64_data = vec![1, -1, 7];
        assert_eq!(
            read_tensor(&t).unwrap().to_i64_vec().unwrap(),
            vec![1, -1, 7]
        );
        t.dims = vec![4];
        assert!(read_tensor(&t).unwrap_err().contains("need 4"));
        let mut t = tensor(dtype::INT32, vec![2]);
        t.raw_data = vec![1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 9];
        assert!(read_tensor(&t)
            .unwrap_err()
            .contains("raw_data has 9 bytes"));
        let t = tensor(dtype::FLOAT, vec![-1]);
        assert!(read_tensor(&t).unwrap_err().contains("negative"));
        let t = tensor(dtype::FLOAT, vec![1 << 40, 1 << 40]);
        assert!(read_tensor(&t).unwrap_err().contains("overflow"));
        let mut t = tensor(dtype::FLOAT, vec![1]);
        t.data_location = 1;
        assert!(read_tensor(&t).unwrap_err().contains("external"));
        let t = tensor(8, vec![1]);
        assert!(read_tensor(&t).unwrap_err().contains("STRING"));
    }
}
