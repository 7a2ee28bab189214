# Run by TestIntegrationIoctlGuard under `slim exec`, in a network
# namespace of its own, with fd 3 a socket of the test's (host) namespace.
# Prints one JSON object: what each ioctl returned or its errno.
import array
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys

SIOCGIFCONF, SIOCGIFINDEX, SIOCGIFADDR = 0x8912, 0x8933, 0x8915
SIOCGIFMTU, SIOCSIFMTU, SIOCGSKNS, SIOCINQ = 0x8921, 0x8922, 0x894C, 0x541B


def ifconf(fd):
    buf = array.array("B", bytes(4096))
    addr, _ = buf.buffer_info()
    res = fcntl.ioctl(fd, SIOCGIFCONF, struct.pack("iiQ", len(buf), 0, addr))
    n = struct.unpack("iiQ", res)[0]
    raw = buf.tobytes()[:n]
    return [[raw[i:i + 16].rstrip(b"\0").decode(), socket.inet_ntoa(raw[i + 20:i + 24])]
            for i in range(0, n, 40)]


def ifreq(fd, cmd, name, data=b""):
    return fcntl.ioctl(fd, cmd, struct.pack("16s24s", name.encode(), data))


def ifreq_int(fd, cmd, name, data=b""):
    return struct.unpack("16si20x", ifreq(fd, cmd, name, data))[1]


def attempt(f):
    try:
        return {"ok": f()}
    except OSError as e:
        return {"errno": e.errno}


def set_lo_mtu(fd):
    mtu = ifreq_int(fd, SIOCGIFMTU, "lo")
    ifreq(fd, SIOCSIFMTU, "lo", struct.pack("i", mtu))
    return mtu


def guards():
    """[pid, ppid] of every process running the slim binary."""
    found = []
    for p in os.listdir("/proc"):
        try:
            if not p.isdigit() or os.readlink(f"/proc/{p}/exe") != os.environ["SLIM_BIN"]:
                continue
            with open(f"/proc/{p}/stat") as f:
                found.append([int(p), int(f.read().rsplit(")", 1)[1].split()[1])])
        except OSError:
            pass
    return found


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    return {"rc": r.returncode, "out": r.stdout.strip(), "err": r.stderr.strip()}


own_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
own = own_socket.fileno()
host_mtu = int(os.environ["HOST_LO_MTU"])
out = {
    "pid": os.getpid(),
    "guards": guards(),
    "own_ifconf": attempt(lambda: ifconf(own)),
    "foreign_ifconf": attempt(lambda: ifconf(3)),
    "own_index": attempt(lambda: ifreq_int(own, SIOCGIFINDEX, "lo")),
    "foreign_index": attempt(lambda: ifreq_int(3, SIOCGIFINDEX, "lo")),
    "nametoindex": attempt(lambda: socket.if_nametoindex("lo")),
    "own_addr": attempt(lambda: socket.inet_ntoa(ifreq(own, SIOCGIFADDR, "lo")[20:24])),
    "foreign_addr": attempt(lambda: socket.inet_ntoa(ifreq(3, SIOCGIFADDR, "lo")[20:24])),
    "own_set_mtu": attempt(lambda: set_lo_mtu(own)),
    # The host's own value: a guard that let it through would change nothing.
    "foreign_set_mtu": attempt(lambda: ifreq(3, SIOCSIFMTU, "lo", struct.pack("i", host_mtu)) and 0),
    "foreign_skns": attempt(lambda: fcntl.ioctl(3, SIOCGSKNS, 0)),
    "foreign_inq": attempt(lambda: struct.unpack("i", fcntl.ioctl(3, SIOCINQ, bytes(4)))[0]),
}
if os.environ.get("COMPAT_HELPER"):
    out["compat"] = run([os.environ["COMPAT_HELPER"]], pass_fds=(3,))
if os.environ.get("NESTED"):
    out["nested"] = run([os.environ["SLIM_BIN"], "exec", "--", sys.executable, "-c",
                         "import socket; print(socket.if_nametoindex('lo'))"])
print(json.dumps(out))
