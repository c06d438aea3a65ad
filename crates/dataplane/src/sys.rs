//! Thin wrappers over the Linux syscalls the splice pump and the UDP
//! sockets need, and the one registration of a descriptor with Tokio. This is the only module with `unsafe` code: each wrapper
//! takes borrowed or owned descriptors, so the callers cannot pass a
//! closed or foreign fd, and turns `-1` into `io::Error`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A new pipe as `(read end, write end)`, both nonblocking and
/// close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` is a valid, writable array of two c_ints, which is
    // exactly what pipe2 writes to; the flags are valid constants.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by
    // nobody else; each is wrapped exactly once and closed on drop.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((r, w))
}

/// Asks the kernel to resize a pipe to `size` bytes and returns the size it
/// got. Fails when `size` passes `/proc/sys/fs/pipe-max-size` or the user's
/// pipe budget.
pub(crate) fn set_pipe_size(pipe: BorrowedFd<'_>, size: usize) -> io::Result<usize> {
    let size =
        libc::c_int::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `pipe` is a live descriptor for the duration of the borrow
    // and F_SETPIPE_SZ takes a plain int argument; no memory is passed.
    let rc = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(rc).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// Moves up to `len` bytes from `from` to `to` inside the kernel, without
/// blocking on the pipe end (the socket end follows its own O_NONBLOCK).
/// `Ok(0)` means end of input.
pub(crate) fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are live for the duration of the borrows;
    // null offsets are allowed (and required for sockets and pipes) and
    // make the kernel use the file positions, so no memory is passed.
    let rc = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(rc).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// A new epoll instance (mio's), registered with the current Tokio
/// runtime for readability. Must run inside a Tokio runtime.
pub(crate) fn async_poll() -> io::Result<tokio::io::unix::AsyncFd<mio::Poll>> {
    let poll = mio::Poll::new()?;
    // SAFETY: `mio::Poll` owns its epoll descriptor, closes it only when
    // dropped, and always reports that same descriptor, so it stays open
    // and unchanged for as long as the `AsyncFd` holds it; its users only
    // call `poll` and the registry through it, never replace it.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE)
    };
    registered.map_err(|e| e.into())
}

/// Sets an integer socket option, for the few options `socket2` has no
/// setter for.
pub(crate) fn set_int_option(
    socket: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the descriptor is live for the duration of the borrow; the
    // option value points at a c_int on this stack frame and the length
    // passed is exactly its size, so the kernel reads nothing else.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
