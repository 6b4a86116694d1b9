//! The `hrm` command-line tool.

fn main() {
    println!("hrm: work in progress");
}
