//! An anonymous in-memory file (Linux `memfd_create`) that quiche can load TLS
//! material from by path (`/proc/self/fd/N`), so keys handed over as bytes are
//! never written to disk. Closed, and so gone, when dropped.

use crate::error::{QsError, QsResult, QS_ERR_TLS_CONFIG};

pub struct MemFile {
    fd: i32,
    path: String,
}

impl MemFile {
    #[cfg(target_os = "linux")]
    pub fn new(name: &str, bytes: &[u8]) -> QsResult<MemFile> {
        let cname = std::ffi::CString::new(name).map_err(|_| QsError::arg("file name contains NUL"))?;
        // SAFETY: a plain system call with a valid C string.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(QsError::new(QS_ERR_TLS_CONFIG, format!("cannot create an in-memory file for TLS material ({e})")));
        }
        let file = MemFile { fd, path: format!("/proc/self/fd/{fd}") };
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: fd is ours; rest is valid for its length.
            let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                let e = std::io::Error::last_os_error();
                return Err(QsError::new(QS_ERR_TLS_CONFIG, format!("cannot write TLS material to an in-memory file ({e})")));
            }
            rest = &rest[n as usize..];
        }
        Ok(file)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new(_name: &str, _bytes: &[u8]) -> QsResult<MemFile> {
        Err(QsError::new(QS_ERR_TLS_CONFIG, "loading TLS material from memory needs Linux (memfd_create) in this build"))
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.fd) };
    }
}
