//! Linker setup for a Node addon (napi-build): lets the `cdylib` leave the N-API
//! symbols undefined, to be resolved by the `node` process that loads it.

fn main() {
    napi_build::setup();
}
