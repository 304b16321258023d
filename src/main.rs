//! The `weir` command: run SQL scripts of streaming jobs, ad hoc streaming queries and explain.
//! All logic lives in [`cli`]; this file only maps the outcome to an exit code.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
