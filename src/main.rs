//! The `beacons` binary: parses the command line and hands over to `beacons::cli`.

fn main() {
    // SAFETY: no other thread exists yet.
    unsafe { beacons::tune_allocator() };
    std::process::exit(beacons::cli::main());
}
