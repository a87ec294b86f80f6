#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
kregion.py create NAME SIZE | destroy NAME — a region of gmem.ko made or
destroyed straight on /dev/gmem, bypassing gmemd, as whoever runs it (the
tests run it as user gmemd to play a region gmemd made but never recorded).
The structs and ioctl numbers are those of kmod/include/uapi/linux/gmem.h.
"""
import ctypes
import os
import struct
import sys

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]


def ioctl(fd, request, buf):
    """ioctl(2) with a buffer, returning what it returns (an fd for some)."""
    r = LIBC.ioctl(fd, request, buf)
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (0xB9 << 8) | nr


CREATE = ioc(3, 0x01, 8 * 8 + 72)       # struct gmem_create_region
OPEN = ioc(1, 0x02, 8 * 8 + 72)         # struct gmem_open_region
DESTROY = ioc(1, 0x16, 4 * 8)           # struct gmem_destroy


def main():
    dev = os.open("/dev/gmem", os.O_RDWR | os.O_CLOEXEC)
    if sys.argv[1] == "create":
        arg = ctypes.create_string_buffer(struct.pack("=QQQ5Q72s", int(sys.argv[3]), 0, 0, 0, 0, 0, 0, 0,
                                                      sys.argv[2].encode()))
        ioctl(dev, CREATE, arg)
        print(f"created {sys.argv[2]} (id {struct.unpack_from('=Q', arg.raw, 16)[0]})")
    else:
        arg = ctypes.create_string_buffer(struct.pack("=QQ6Q72s", 0, 0, 0, 0, 0, 0, 0, 0, sys.argv[2].encode()))
        fd = ioctl(dev, OPEN, arg)
        ioctl(fd, DESTROY, ctypes.create_string_buffer(32))
        print(f"destroyed {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
