//! `--device cpu|cuda|auto`: which backend a command runs on, decided once before any work.

use super::AnyBackend;
use crate::error::{Error, Result};

/// The device asked for on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// The CPU (the reference backend).
    #[default]
    Cpu,
    /// An NVIDIA GPU through CUDA; an error where there is none.
    Cuda,
    /// CUDA when a driver and a GPU are present, else the CPU (says which on stderr).
    Auto,
}

/// The chosen backend and the one line to print on stderr about the choice, if any.
pub struct Selection {
    pub backend: AnyBackend,
    pub notice: Option<String>,
}

/// Resolves `device` to a backend. `cuda` without a usable GPU is a usage error (exit 2);
/// `auto` then falls back to the CPU with a notice.
pub fn select(device: Device) -> Result<Selection> {
    match device {
        Device::Cpu => Ok(Selection {
            backend: AnyBackend::Cpu,
            notice: None,
        }),
        Device::Cuda => match open_cuda() {
            Ok((backend, _)) => Ok(Selection {
                backend,
                notice: None,
            }),
            Err(why) => Err(Error::Usage(format!(
                "--device cuda: no CUDA device is usable: {why}\n  run on a machine with an \
                 NVIDIA GPU and driver, or use --device cpu (or --device auto to fall back)"
            ))),
        },
        Device::Auto => match open_cuda() {
            Ok((backend, gpu)) => Ok(Selection {
                backend,
                notice: Some(format!("device: cuda ({gpu})")),
            }),
            Err(why) => Ok(Selection {
                backend: AnyBackend::Cpu,
                notice: Some(format!("device: cpu (no CUDA device: {why})")),
            }),
        },
    }
}

/// The CUDA backend and the GPU's name, or why there is none.
#[cfg(feature = "cuda")]
fn open_cuda() -> std::result::Result<(AnyBackend, String), String> {
    let b = super::cuda::open()?;
    let name = b.device_name();
    Ok((AnyBackend::Shared(std::sync::Arc::new(b)), name))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> std::result::Result<(AnyBackend, String), String> {
    Err("this beacons was built without the `cuda` feature".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_chosen_silently() {
        let s = select(Device::Cpu).unwrap();
        assert!(matches!(s.backend, AnyBackend::Cpu));
        assert!(s.notice.is_none());
    }

    #[test]
    fn cuda_and_auto_agree_on_whether_a_gpu_is_usable() {
        match select(Device::Cuda) {
            // A machine with a GPU: auto takes it too and says so.
            Ok(s) => {
                assert_eq!(s.backend.name(), "cuda");
                let a = select(Device::Auto).unwrap();
                assert_eq!(a.backend.name(), "cuda");
                assert!(a.notice.unwrap().starts_with("device: cuda ("));
            }
            // Without one (as in CI): a usage error, and auto falls back with one line.
            Err(e) => {
                assert!(matches!(e, Error::Usage(_)));
                assert!(e
                    .to_string()
                    .starts_with("--device cuda: no CUDA device is usable: "));
                let a = select(Device::Auto).unwrap();
                assert!(matches!(a.backend, AnyBackend::Cpu));
                let notice = a.notice.unwrap();
                assert!(notice.starts_with("device: cpu (no CUDA device: "));
                assert_eq!(notice.lines().count(), 1);
            }
        }
    }
}
