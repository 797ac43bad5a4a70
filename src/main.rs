//! The `beacons` binary: parses the command line and hands over to `beacons::cli`.

fn main() {
    std::process::exit(beacons::cli::main());
}
