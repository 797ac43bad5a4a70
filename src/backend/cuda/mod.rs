//! The CUDA backend (feature `cuda`): the kernels of `kernels/*.cu` compiled at run time by
//! NVRTC and launched through cudarc, behind [`DeviceBackend`].
//!
//! What comes in: the flat arrays of [`Kernels`]. What goes out: the same arrays computed on
//! the GPU. The CUDA driver (`libcuda.so`) and NVRTC (`libnvrtc.so`) are loaded dynamically
//! when a backend is opened, so beacons builds and runs where CUDA is absent; [`open`] then
//! says why there is no device. Every family is compiled once, when the backend is opened,
//! and kept for the life of the backend (the CLI opens one per command).
//!
//! Each primitive copies its inputs to the device, launches, and copies the results back:
//! correct, but not yet what a GPU is fast at (the stacked matrices of a round could stay on
//! the device between steps). None of this has been run on a real GPU yet: the kernels are
//! compiled and assembled in CI (`tests/gpu_kernels_compile.rs`) and their sources are tested
//! on the host through the emulator (`tests/gpu_backend.rs`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};

use super::device::{shape_1d, shape_tiles, DeviceBackend, Kernels, Lines, Relaxed};
use super::kernels::{Family, FAMILIES};
use crate::error::{Error, Result};

/// The backend on a GPU.
pub type CudaBackend = DeviceBackend<CudaKernels>;

/// The compiled kernels on one GPU, and the stream they run on.
pub struct CudaKernels {
    stream: Arc<CudaStream>,
    functions: HashMap<&'static str, CudaFunction>,
    device: String,
}

/// NVRTC's options for every family: no contraction of plain `a * b + c` (the kernels say
/// where they fuse), IEEE single precision left alone.
fn options() -> CompileOptions {
    CompileOptions {
        fmad: Some(false),
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        name: None,
        ..Default::default()
    }
}

/// Compiles one family to PTX with NVRTC (loaded on first use), the production compile path.
pub fn compile_family(family: &Family) -> std::result::Result<String, String> {
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err("NVRTC (libnvrtc.so.12) is not installed or not on the library path".into());
    }
    let mut opts = options();
    opts.name = Some(format!("{}.cu", family.name));
    compile_ptx_with_opts(family.unit(), opts)
        .map(|ptx| ptx.to_src())
        .map_err(|e| format!("kernels/{}.cu: {e}", family.name))
}

/// Loads `libnvrtc.so.12` from an explicit path (e.g. the `nvidia-cuda-nvrtc-cu12` wheel's
/// `nvidia/cuda_nvrtc/lib`), before cudarc looks for it by name: the dynamic loader then finds
/// the library already loaded under its soname. The library stays loaded for the process.
pub fn preload_nvrtc(path: &Path) -> Result<()> {
    // SAFETY: loading NVRTC runs its initialisers only; it is the library cudarc would load.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| Error::Invalid(format!("{}: cannot load NVRTC: {e}", path.display())))?;
    std::mem::forget(lib);
    Ok(())
}

/// Opens GPU 0 and compiles every kernel family, or says why not.
pub fn open() -> std::result::Result<CudaBackend, String> {
    std::panic::catch_unwind(open_inner)
        .unwrap_or_else(|_| Err("the CUDA libraries could not be loaded".into()))
}

fn open_inner() -> std::result::Result<CudaBackend, String> {
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("the CUDA driver library (libcuda.so) is not installed".into());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("no GPU could be opened ({e})"))?;
    let device = ctx.name().unwrap_or_else(|_| "GPU 0".into());
    let stream = ctx.default_stream();
    let mut functions = HashMap::new();
    for family in FAMILIES {
        let ptx = compile_family(family)?;
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(|e| format!("kernels/{}.cu does not load: {e}", family.name))?;
        for &name in family.entry_points {
            let f = module
                .load_function(name)
                .map_err(|e| format!("kernel {name} is missing: {e}"))?;
            functions.insert(name, f);
        }
    }
    Ok(DeviceBackend::new(CudaKernels {
        stream,
        functions,
        device,
    }))
}

impl CudaBackend {
    /// The GPU's name, for the `--device auto` notice.
    pub fn device_name(&self) -> String {
        self.kernels.device.clone()
    }
}

fn dev_err(e: cudarc::driver::DriverError) -> Error {
    Error::Invalid(format!("CUDA: {e}"))
}

fn int(n: usize) -> Result<i32> {
    i32::try_from(n)
        .map_err(|_| Error::Invalid(format!("CUDA: size {n} exceeds the kernels' int range")))
}

fn config((grid, block): ([u32; 3], [u32; 3])) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid[0], grid[1], grid[2]),
        block_dim: (block[0], block[1], block[2]),
        shared_mem_bytes: 0,
    }
}

impl CudaKernels {
    fn function(&self, name: &str) -> Result<&CudaFunction> {
        self.functions
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("CUDA: kernel {name} is not loaded")))
    }

    fn upload<T: cudarc::driver::DeviceRepr>(&self, host: &[T]) -> Result<CudaSlice<T>> {
        self.stream.clone_htod(host).map_err(dev_err)
    }

    fn zeros(&self, n: usize) -> Result<CudaSlice<f64>> {
        self.stream.alloc_zeros::<f64>(n.max(1)).map_err(dev_err)
    }

    fn download(&self, dev: &CudaSlice<f64>, n: usize) -> Result<Vec<f64>> {
        let mut v = self.stream.clone_dtoh(dev).map_err(dev_err)?;
        v.truncate(n);
        Ok(v)
    }
}

/// A one-element stand-in for an empty array (the device has no zero-length buffers).
fn nonempty<T: Copy + Default>(v: &[T]) -> Vec<T> {
    if v.is_empty() {
        vec![T::default()]
    } else {
        v.to_vec()
    }
}

impl Kernels for CudaKernels {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn affine_interval(
        &self,
        w: &[f64],
        bias: Option<&[f64]>,
        n_out: usize,
        n_in: usize,
        xlo: &[f64],
        xhi: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let n_vec = xlo.len() / n_in.max(1);
        let total = n_vec * n_out;
        if total == 0 {
            return Ok((vec![], vec![]));
        }
        let (dw, dx_lo, dx_hi) = (
            self.upload(&nonempty(w))?,
            self.upload(&nonempty(xlo))?,
            self.upload(&nonempty(xhi))?,
        );
        let db = self.upload(&nonempty(bias.unwrap_or(&[])))?;
        let (mut lo, mut hi) = (self.zeros(total)?, self.zeros(total)?);
        let has_bias = bias.is_some() as i32;
        let (no, ni, nv) = (int(n_out)?, int(n_in)?, int(n_vec)?);
        let f = self.function("affine_interval_f64")?;
        let mut b = self.stream.launch_builder(f);
        b.arg(&dw).arg(&db).arg(&has_bias).arg(&dx_lo).arg(&dx_hi);
        b.arg(&mut lo).arg(&mut hi).arg(&no).arg(&ni).arg(&nv);
        // SAFETY: the arguments match the kernel's signature, every buffer has the length the
        // kernel indexes (n_out·n_in, n_out, n_vec·n_in, n_vec·n_out), and it guards by total.
        unsafe { b.launch(config(shape_1d(total))) }.map_err(dev_err)?;
        Ok((self.download(&lo, total)?, self.download(&hi, total)?))
    }

    fn matmul(&self, a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Result<Vec<f64>> {
        if m * n == 0 {
            return Ok(vec![0.0; m * n]);
        }
        let (da, db) = (self.upload(&nonempty(a))?, self.upload(&nonempty(b))?);
        let mut c = self.zeros(m * n)?;
        let (mi, ki, ni) = (int(m)?, int(k)?, int(n)?);
        let f = self.function("matmul_f64")?;
        let mut l = self.stream.launch_builder(f);
        l.arg(&da).arg(&db).arg(&mut c).arg(&mi).arg(&ki).arg(&ni);
        // SAFETY: a is m·k, b is k·n, c is m·n; the kernel guards every tile access by m, k, n.
        unsafe { l.launch(config(shape_tiles(m, n))) }.map_err(dev_err)?;
        self.download(&c, m * n)
    }

    fn abs_matvec_up(&self, a: &[f64], rows: usize, cols: usize, x: &[f64]) -> Result<Vec<f64>> {
        if rows == 0 {
            return Ok(vec![]);
        }
        let (da, dx) = (self.upload(&nonempty(a))?, self.upload(&nonempty(x))?);
        let mut y = self.zeros(rows)?;
        let (r, c) = (int(rows)?, int(cols)?);
        let f = self.function("abs_matvec_up_f64")?;
        let mut l = self.stream.launch_builder(f);
        l.arg(&da).arg(&dx).arg(&mut y).arg(&r).arg(&c);
        // SAFETY: a is rows·cols, x is cols, y is rows; the kernel guards by rows.
        unsafe { l.launch(config(shape_1d(rows))) }.map_err(dev_err)?;
        self.download(&y, rows)
    }

    fn dot_with_error(
        &self,
        a: &[f64],
        rows: usize,
        cols: usize,
        b: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        if rows == 0 {
            return Ok((vec![], vec![]));
        }
        let (da, db) = (self.upload(&nonempty(a))?, self.upload(&nonempty(b))?);
        let (mut v, mut e) = (self.zeros(rows)?, self.zeros(rows)?);
        let (r, c) = (int(rows)?, int(cols)?);
        let f = self.function("dot_with_error_f64")?;
        let mut l = self.stream.launch_builder(f);
        l.arg(&da).arg(&db).arg(&mut v).arg(&mut e).arg(&r).arg(&c);
        // SAFETY: a is rows·cols, b is cols, v and e are rows; the kernel guards by rows.
        unsafe { l.launch(config(shape_1d(rows))) }.map_err(dev_err)?;
        Ok((self.download(&v, rows)?, self.download(&e, rows)?))
    }

    fn relax_rows(
        &self,
        lam: &[f64],
        rows: usize,
        n: usize,
        lines: &Lines,
        row_box: &[u32],
    ) -> Result<Relaxed> {
        if rows == 0 {
            return Ok(Relaxed {
                res: vec![],
                v: vec![],
                v_err: vec![],
                charge: vec![],
            });
        }
        let dl = self.upload(&nonempty(lam))?;
        let ls = self.upload(&nonempty(&lines.lo_slope))?;
        let li = self.upload(&nonempty(&lines.lo_int))?;
        let us = self.upload(&nonempty(&lines.up_slope))?;
        let ui = self.upload(&nonempty(&lines.up_int))?;
        let mg = self.upload(&nonempty(&lines.mag))?;
        let rb = self.upload(row_box)?;
        let mut res = self.zeros(rows * n)?;
        let (mut v, mut ve, mut ch) = (self.zeros(rows)?, self.zeros(rows)?, self.zeros(rows)?);
        let (r, ni) = (int(rows)?, int(n)?);
        let f = self.function("relax_rows_f64")?;
        let mut l = self.stream.launch_builder(f);
        l.arg(&dl)
            .arg(&ls)
            .arg(&li)
            .arg(&us)
            .arg(&ui)
            .arg(&mg)
            .arg(&rb);
        l.arg(&mut res)
            .arg(&mut v)
            .arg(&mut ve)
            .arg(&mut ch)
            .arg(&r)
            .arg(&ni);
        // SAFETY: lam and res are rows·n, the lines boxes·n with every row_box entry a box
        // index (DeviceBackend builds both from the same blocks), the outputs rows.
        unsafe { l.launch(config(shape_1d(rows))) }.map_err(dev_err)?;
        Ok(Relaxed {
            res: self.download(&res, rows * n)?,
            v: self.download(&v, rows)?,
            v_err: self.download(&ve, rows)?,
            charge: self.download(&ch, rows)?,
        })
    }

    fn concretize(
        &self,
        lam: &[f64],
        rows: usize,
        n: usize,
        lo: &[f64],
        hi: &[f64],
        row_box: &[u32],
        bias: &[f64],
        err: &[f64],
    ) -> Result<Vec<f64>> {
        if rows == 0 {
            return Ok(vec![]);
        }
        let dl = self.upload(&nonempty(lam))?;
        let (dlo, dhi) = (self.upload(&nonempty(lo))?, self.upload(&nonempty(hi))?);
        let rb = self.upload(row_box)?;
        let (db, de) = (self.upload(bias)?, self.upload(err)?);
        let mut out = self.zeros(rows)?;
        let (r, ni) = (int(rows)?, int(n)?);
        let f = self.function("concretize_f64")?;
        let mut l = self.stream.launch_builder(f);
        l.arg(&dl)
            .arg(&dlo)
            .arg(&dhi)
            .arg(&rb)
            .arg(&db)
            .arg(&de)
            .arg(&mut out);
        l.arg(&r).arg(&ni);
        // SAFETY: lam is rows·n, lo and hi boxes·n with every row_box entry a box index,
        // bias, err and out rows; the kernel guards by rows.
        unsafe { l.launch(config(shape_1d(rows))) }.map_err(dev_err)?;
        self.download(&out, rows)
    }
}
