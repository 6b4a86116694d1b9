//! Build script: an rpath to the resolved libtorch folder and an eager `libtorch_cuda` link (see `hrm-tch-link`).

fn main() {
    hrm_tch_link::emit();
}
