//! Compile-fail tests of `#[derive(weir::Record)]`: each file in `ui/` is one mistake, and its
//! `.stderr` is the error the user sees. Regenerate with `TRYBUILD=overwrite` and read the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
