"""One round of the intake memory benchmark (scripts/bench-intake-memory.sh):
starts the service binary given, opens N connections that each announce a
10 MiB notebook and send all of it but the last byte, then reports the
service's resident memory before, at its peak, and 2 s after the clients
gave up, how many uploads it refused unread, and whether /healthz answered
meanwhile. Usage: bench-intake-memory.py BINARY N COURSE_REPO OUT_DIR"""
import os, socket, subprocess, sys, time, json, urllib.request
binary, n, size = sys.argv[1], int(sys.argv[2]), 10 << 20
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data = os.path.join(sys.argv[4], f"data-{os.path.basename(binary)}-{time.time_ns()}")
os.makedirs(data)
port = 20000 + os.getpid() % 10000
env = {"PATH": os.environ["PATH"], "HOME": "/tmp", "OTTER_LISTEN": f"127.0.0.1:{port}", "OTTER_DATA_DIR": data,
       "OTTER_COURSE_REPOS": "8x=" + sys.argv[3], "OTTER_COMMAND": f"{root}/.venv/bin/otter", "TEST_USER": "student",
       "OTTER_MAX_IN_FLIGHT_PER_USER": "10000", "OTTER_WORKERS": "1"}
p = subprocess.Popen([binary, "serve"], env=env, stderr=open(data + "/log", "w"))
def rss(field):
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) // 1024
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1); break
    except Exception: time.sleep(0.1)
idle = rss("VmRSS")
conns, refused = [], 0
head = f"POST /services/otter_grade/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
chunk = b" " * (1 << 20)
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    conns.append(s)
t0 = time.time()
for s in conns:
    try:
        s.settimeout(0.5)
        sent = 0
        while sent < size - 1:
            k = s.send(chunk[: min(len(chunk), size - 1 - sent)])
            sent += k
    except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
        refused += 1
t_health = time.time()
ok = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status
health = time.time() - t_health
peak = rss("VmHWM")
for s in conns: s.close()
time.sleep(2)
after = rss("VmRSS")
p.terminate(); p.wait(60)
print(json.dumps({"binary": os.path.basename(binary), "connections": n, "idle_MiB": idle, "peak_MiB": peak, "after_MiB": after,
                  "not_read": refused, "healthz": ok, "healthz_s": round(health, 3)}))
