//! A blittable socket address shared with the caller.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::error::{QsError, QsResult};

pub const QS_AF_INET: u16 = 4;
pub const QS_AF_INET6: u16 = 6;

/// An IPv4 or IPv6 address and port. `family` is 4 or 6; an IPv4 address uses
/// the first 4 bytes of `ip` (network order); `port` is in host order.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct QsAddr {
    pub family: u16,
    pub port: u16,
    pub flowinfo: u32,
    pub scope_id: u32,
    pub ip: [u8; 16],
}

impl QsAddr {
    pub fn to_socket_addr(&self) -> QsResult<SocketAddr> {
        match self.family {
            QS_AF_INET => {
                let ip = Ipv4Addr::new(self.ip[0], self.ip[1], self.ip[2], self.ip[3]);
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, self.port)))
            }
            QS_AF_INET6 => Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(self.ip),
                self.port,
                self.flowinfo,
                self.scope_id,
            ))),
            f => Err(QsError::arg(format!("address family {f} is neither 4 (IPv4) nor 6 (IPv6)"))),
        }
    }

    pub fn from_socket_addr(a: &SocketAddr) -> Self {
        let mut out = QsAddr { port: a.port(), ..Default::default() };
        match a {
            SocketAddr::V4(v4) => {
                out.family = QS_AF_INET;
                out.ip[..4].copy_from_slice(&v4.ip().octets());
            }
            SocketAddr::V6(v6) => {
                out.family = QS_AF_INET6;
                out.ip = v6.ip().octets();
                out.flowinfo = v6.flowinfo();
                out.scope_id = v6.scope_id();
            }
        }
        out
    }
}

pub fn read_addr(ptr: *const QsAddr, what: &str) -> QsResult<SocketAddr> {
    if ptr.is_null() {
        return Err(QsError::arg(format!("{what} is null")));
    }
    // SAFETY: non-null; the caller promises a valid QsAddr.
    unsafe { &*ptr }.to_socket_addr()
}
