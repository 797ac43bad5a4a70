//! The `beacons` binary: parses the command line and hands over to `beacons::cli`.

fn main() {
    tune_allocator();
    std::process::exit(beacons::cli::main());
}

/// The bound engines allocate and free coefficient matrices of a few megabytes many times per
/// bound. glibc serves such blocks with `mmap` and returns freed memory to the system at once,
/// so every allocation page-faults afresh (measured: about a quarter of alpha-CROWN's time on
/// mnist_fc 256x6). Keeping them in the heap instead costs only the peak memory the engines
/// use anyway.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
