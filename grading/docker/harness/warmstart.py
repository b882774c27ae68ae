# otter-service's warm start (run as `python3 -c <this file> <spec>`, as
# root, in a spare grading container before any job is known).
#
# The grader and the notebook's kernel import mostly the same modules
# (pandas, numpy, nbconvert, IPython, jupyter_client…: about 0.7 s of CPU
# each). This process imports them once, then forks: the child becomes the
# kernel, as the student's uid, and starts it exactly as the cold kernel
# command does; this process becomes the grader, as the grader's uid, and
# runs grader.py --warm. Both drop root before anything else; no code of
# any submission has run, or is here, by then.
#
# What is imported here must not depend on the kernel having started:
# modules that look at the running kernel or capture what it replaces when
# they are imported (otter, whose logging keeps the stream of its import;
# doctest, which captures pdb.Pdb; ipywidgets, which registers itself with
# the kernel; matplotlib, which picks its backend) are left to each side,
# as in a cold start.
#
# The kernel's output goes through a pipe this process forwards to its
# standard error, so that nothing of the student's holds the grader's own
# output open: its end is the grader's end. The grader waits for the kernel
# (grader.py --kernel-pid) and ends at once if it ends.
import json
import os
import sys

spec = json.loads(sys.argv[1])
for _name in spec["shared"]:
    try:
        __import__(_name)
    except Exception:
        pass  # imported by the side that needs it, or never
sys.stdout.flush()
sys.stderr.flush()


def _become_kernel(k, r, w):
    """The child's part: the student's uid, the kernel's files, then the
    cold kernel command's code, in a __main__ as bare as its own."""
    try:
        os.setgroups(k["groups"])
        os.setresgid(k["gid"], k["gid"], k["gid"])
        os.setresuid(k["uid"], k["uid"], k["uid"])
    except BaseException:
        os._exit(1)  # never anything as root
    # A change of uid makes a process undumpable (its /proc files root's);
    # the cold kernel is not.
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(w, 1)
    os.dup2(w, 2)
    for fd in (null, r, w):
        os.close(fd)
    os.chdir(k["cwd"])
    main = globals()
    for name in [n for n in main if not n.startswith("__")]:
        if name not in ("os", "sys"):
            del main[name]
    exec(k["code"], main)


_r, _w = os.pipe()
_pid = os.fork()
if _pid == 0:
    _become_kernel(spec["kernel"], _r, _w)
    raise SystemExit
os.close(_w)
_g = spec["grader"]
os.setgroups(_g["groups"])
os.setresgid(_g["gid"], _g["gid"], _g["gid"])
os.setresuid(_g["uid"], _g["uid"], _g["uid"])
for _kv in _g["env"]:
    _key, _, _value = _kv.partition("=")
    os.environ[_key] = _value
os.chdir(_g["cwd"])
# What was drawn before the fork is the kernel's to know too.
for _rng in ("random", "numpy.random"):
    if _rng in sys.modules:
        sys.modules[_rng].seed()
if "tempfile" in sys.modules:
    sys.modules["tempfile"].tempdir = None  # TMPDIR is the grader's now


def _forward(fd):
    while True:
        data = os.read(fd, 65536)
        if not data:
            return
        os.write(2, data)


import threading  # noqa: E402

threading.Thread(target=_forward, args=(_r,), daemon=True).start()
# As `python3 -I grader.py` would have it: the grader's directory first,
# and nothing of the working directory.
sys.path[:] = [os.path.dirname(_g["path"])] + [p for p in sys.path if p not in ("", os.getcwd())]
sys.argv = [_g["path"]] + _g["args"] + ["--kernel-pid", str(_pid)]
import runpy  # noqa: E402

runpy.run_path(_g["path"], run_name="__main__")
