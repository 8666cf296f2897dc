//! A guest built for a future ork host ABI v2: it imports `ork:host/v2`
//! instead of `ork:host/v1`, so a v1 host must refuse it when loading it,
//! before any of its code runs. It does not use the SDK.

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "ork:host/v2")]
extern "C" {
    fn call(op_ptr: *const u8, op_len: usize, req_ptr: *const u8, req_len: usize) -> i32;
    fn response(buf_ptr: *mut u8, buf_len: usize) -> i32;
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("abi-v2 is a wasm32 guest");
    std::process::exit(2);
}

#[cfg(target_arch = "wasm32")]
fn main() {
    let op = b"abi.hello";
    let req = br#"{"abi":2,"sdk":"abi-v2-test"}"#;
    // SAFETY: both buffers are valid for their lengths.
    let r = unsafe { call(op.as_ptr(), op.len(), req.as_ptr(), req.len()) };
    let mut buf = vec![0u8; r.unsigned_abs() as usize];
    // SAFETY: buf is valid for its length.
    let n = unsafe { response(buf.as_mut_ptr(), buf.len()) };
    println!(
        "a v2 host answered {}: {}",
        r,
        String::from_utf8_lossy(&buf[..n.max(0) as usize])
    );
}
