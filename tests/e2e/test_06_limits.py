"""Bad input and limits: nothing a client does crashes a worker."""
import os
import random
import socket
import stat
import threading

from fdt import LineClient, wait_for


def test_06_01_a_line_over_max_input_gets_an_error_and_is_closed(make_server):
    s = make_server(workers=1, server={"max_input": "1k"})
    c = s.client()
    c.send("ECHO " + "x" * 5000)
    assert c.readline() == "ERR line too long"
    assert c.closed_by_server()
    assert s.client().call("PING") == "PONG"


def test_06_02_a_silent_client_is_closed_after_idle_timeout(make_server):
    s = make_server(workers=1, server={"idle_timeout": 0.5})
    c = s.client()
    assert c.closed_by_server(timeout=5)
    busy = s.client()
    assert busy.call("PING") == "PONG"
    assert busy.closed_by_server(timeout=5)


def test_06_03_connections_beyond_max_connections_are_refused_politely(make_server):
    s = make_server(workers=1, server={"max_connections": 3})
    held = [s.client() for _ in range(3)]
    for c in held:
        assert c.call("PING") == "PONG"
    extra = s.client()
    assert extra.readline() == "ERR busy"
    assert extra.closed_by_server()
    assert s.workers()[0]["refused_busy"] >= 1
    held[0].close()
    wait_for(lambda: s.workers()[0]["connections_open"] == 2, what="slot freed")
    assert s.client().call("PING") == "PONG"


def test_06_04_garbage_never_crashes_a_worker(make_server):
    s = make_server(workers=1, threads=4, server={"max_input": "4k"})
    (pid,) = s.worker_pids()
    rnd = random.Random(7)
    errors = []

    def spray(seed):
        r = random.Random(seed)
        for _ in range(15):
            try:
                with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
                    n = r.choice([0, 1, 10, 1000, 5000, 20000])
                    c.sendall(bytes(r.getrandbits(8) for _ in range(n)))
                    if r.random() < 0.5:
                        c.shutdown(socket.SHUT_WR)
                    c.settimeout(0.3)
                    try:
                        while c.recv(65536):
                            pass
                    except (socket.timeout, ConnectionResetError):
                        pass
            except OSError as e:
                errors.append(e)
    ts = [threading.Thread(target=spray, args=(rnd.random(),)) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert s.worker_pids() == [pid], "a worker died"
    assert not errors
    assert s.client().call("PING") == "PONG"


def test_06_05_client_that_vanishes_mid_request(make_server):
    s = make_server(workers=1, threads=2)
    (pid,) = s.worker_pids()
    for _ in range(20):
        c = LineClient(s.port)
        c.send("BODY 100000\nabc")  # promises more than it sends
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()  # reset
        c2 = LineClient(s.port)
        c2.send("SLEEP 50\n")
        c2.close()  # goes away before its answer
    wait_for(lambda: s.workers()[0]["connections_open"] == 0, what="all closed")
    assert s.worker_pids() == [pid]


def test_06_06_control_socket_is_private(make_server):
    s = make_server(workers=1)
    mode = stat.S_IMODE(os.stat(s.ctl_path).st_mode)
    assert mode == 0o600
