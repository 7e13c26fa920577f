//! Runnable examples live in `examples/`; run them with `cargo run -p zerotouch-examples --example NAME`.
