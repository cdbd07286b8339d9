//! Error codes, the per-thread last-error message, and the guards that keep
//! panics from ever crossing the C ABI.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Success.
pub const QS_OK: i32 = 0;
/// Nothing (more) to do: no datagram, no event, no data yet. A normal outcome.
pub const QS_DONE: i32 = -1;
/// A stream write (or stream open) was refused by flow control, congestion
/// control or the stream limit; retry after a WRITABLE / STREAMS_AVAILABLE event.
pub const QS_BLOCKED: i32 = -2;
/// An argument was null, out of range or malformed.
pub const QS_ERR_INVALID_ARGUMENT: i32 = -10;
/// The connection or stream is unknown, closed, or in the wrong state.
pub const QS_ERR_INVALID_STATE: i32 = -11;
/// Certificates, keys or TLS settings could not be used.
pub const QS_ERR_TLS_CONFIG: i32 = -12;
/// The peer stopped or reset the stream; the error code is in the out parameter.
pub const QS_ERR_STREAM_RESET: i32 = -13;
/// The connection is closed or lost; see `qs_conn_error`.
pub const QS_ERR_CONNECTION_CLOSED: i32 = -14;
/// The engine refused to start a connection (bad address, unsupported version, ...).
pub const QS_ERR_CONNECT: i32 = -15;
/// A Rust panic was caught at the boundary; the object that panicked should be dropped.
pub const QS_ERR_PANIC: i32 = -99;

#[derive(Debug)]
pub struct QsError {
    pub code: i32,
    pub message: String,
}

impl QsError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        QsError { code, message: message.into() }
    }
    pub fn arg(message: impl Into<String>) -> Self {
        Self::new(QS_ERR_INVALID_ARGUMENT, message)
    }
    pub fn state(message: impl Into<String>) -> Self {
        Self::new(QS_ERR_INVALID_STATE, message)
    }
}

pub type QsResult<T> = Result<T, QsError>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: &str) {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        e.push_str(message);
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    };
    format!("internal error in quicsend_native (caught panic): {what}")
}

/// Runs `f`, turning an error or a panic into a negative code and the last-error message.
/// Non-negative results pass through (a status, a length or a count).
pub fn guard(f: impl FnOnce() -> QsResult<i64>) -> i64 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.code as i64
        }
        Err(p) => {
            set_last_error(&panic_message(&*p));
            QS_ERR_PANIC as i64
        }
    }
}

/// `guard` for calls that return only a status.
pub fn guard_status(f: impl FnOnce() -> QsResult<i32>) -> i32 {
    guard(|| f().map(i64::from)) as i32
}

/// `guard` for constructors: null on failure, with the reason in the last-error message.
pub fn guard_ptr<T>(f: impl FnOnce() -> QsResult<*mut T>) -> *mut T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            std::ptr::null_mut()
        }
        Err(p) => {
            set_last_error(&panic_message(&*p));
            std::ptr::null_mut()
        }
    }
}

/// Copies `text` into a caller buffer (UTF-8, not NUL-terminated) and returns
/// the full length, so a caller whose buffer was too small can retry.
pub fn copy_text(text: &str, buf: *mut u8, cap: usize) -> i64 {
    let n = text.len().min(cap);
    if n > 0 && !buf.is_null() {
        // SAFETY: the caller promises `buf` has room for `cap` bytes.
        unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buf, n) };
    }
    text.len() as i64
}

/// Copies the calling thread's last error message into `buf` (UTF-8, no NUL)
/// and returns its full length in bytes.
#[no_mangle]
pub extern "C" fn qs_last_error(buf: *mut u8, cap: usize) -> i64 {
    catch_unwind(|| LAST_ERROR.with(|e| copy_text(&e.borrow(), buf, cap))).unwrap_or(0)
}

/// Turns a (pointer, length) pair from the caller into a slice; null is only valid with length 0.
pub fn slice<'a>(ptr: *const u8, len: usize, what: &str) -> QsResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(QsError::arg(format!("{what} is null but its length is {len}")));
    }
    // SAFETY: the caller promises `ptr` points at `len` readable bytes for the call's duration.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

pub fn slice_mut<'a>(ptr: *mut u8, len: usize, what: &str) -> QsResult<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(QsError::arg(format!("{what} is null but its length is {len}")));
    }
    // SAFETY: the caller promises `ptr` points at `len` writable bytes for the call's duration.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

pub fn utf8<'a>(ptr: *const u8, len: usize, what: &str) -> QsResult<&'a str> {
    std::str::from_utf8(slice(ptr, len, what)?).map_err(|_| QsError::arg(format!("{what} is not valid UTF-8")))
}

/// Writes through an out pointer, refusing null.
pub fn out<T>(ptr: *mut T, value: T, what: &str) -> QsResult<()> {
    if ptr.is_null() {
        return Err(QsError::arg(format!("{what} (out parameter) is null")));
    }
    // SAFETY: non-null, and the caller promises it points at a valid T.
    unsafe { ptr.write(value) };
    Ok(())
}
