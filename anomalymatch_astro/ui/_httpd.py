"""A bounded HTTP server for the labelling UI: fixed worker pool, read deadlines, one request per connection.

The stdlib's ``ThreadingHTTPServer`` spends one thread per connection for as
long as the client keeps it open, so idle or slow ("slowloris") clients pile up
threads without limit.  `BoundedHTTPServer` instead:

* accepts at most ``max_connections`` connections at a time; the rest wait in
  the listen backlog (``request_queue_size``) without costing anything;
* reads each request's header in the accepting thread, without blocking (a
  selector), and closes connections whose header has not arrived within
  ``timeout`` seconds -- an idle or slow client never holds a thread;
* hands a connection to a fixed pool of ``workers`` threads only once its whole
  header is there, so the handler checks the token before a thread waits on a
  body; the body must arrive within ``timeout`` seconds too;
* answers one request per connection (``Connection: close``).
"""

import concurrent.futures
import http.server
import io
import logging
import selectors
import socket
import threading
import time

__all__ = ["BoundedHTTPServer", "DeadlineReader"]

log = logging.getLogger(__name__)

#: Largest request header read before the connection is handed to a handler (which refuses it).
MAX_HEADER = 128 * 1024


class DeadlineReader(io.RawIOBase):
    """Read ``prefix`` first, then the socket; every read must end by ``deadline`` (`time.monotonic`)."""

    def __init__(self, sock, prefix, deadline):
        self._sock = sock
        self._prefix = memoryview(bytes(prefix))
        self._deadline = deadline

    def readable(self):
        """Yes."""
        return True

    def readinto(self, b):
        """Fill ``b`` from the prefix or the socket; `TimeoutError` past the deadline."""
        if len(self._prefix):
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            msg = "the request did not arrive in time"
            raise TimeoutError(msg)
        self._sock.settimeout(remaining)
        return self._sock.recv_into(b)


def _header_done(buf):
    return b"\r\n\r\n" in buf or b"\n\n" in buf or b"\n\r\n" in buf


class BoundedHTTPServer(http.server.HTTPServer):
    """An HTTP server with a bounded worker pool, a connection cap and read deadlines.

    Parameters
    ----------
    address : tuple
        ``(host, port)``.
    handler : type
        A `http.server.BaseHTTPRequestHandler` subclass whose ``__init__`` takes
        the keyword arguments ``prefix`` (the bytes read so far) and ``deadline``.
    workers : int, optional
        Threads that run handlers.
    max_connections : int, optional
        Connections open at a time (waiting for their header or being handled).
    timeout : float, optional
        Seconds a client has to send its header, and again its body.
    """

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler, *, workers=16, max_connections=128, timeout=15.0):
        self.workers = int(workers)
        self.max_connections = int(max_connections)
        self.request_timeout = float(timeout)
        super().__init__(address, handler)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="amui-worker")
        self._count_lock = threading.Lock()
        self._open = 0
        self._busy = set()  # connections handed to a worker
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def open_connections(self):
        """Connections accepted and not yet closed."""
        return self._open

    # ------------------------------------------------------------ serving loop
    def serve_forever(self, poll_interval=0.2):
        """Serve until `shutdown`."""
        if self._stop.is_set():
            return
        self._stopped.clear()
        waiting = {}  # socket -> (address, bytearray, deadline)
        sel = selectors.DefaultSelector()
        self.socket.setblocking(False)
        listening = False
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                for conn in [c for c, (_, _, deadline) in waiting.items() if deadline <= now]:
                    log.debug("closing a connection whose request did not arrive in %.1f s", self.request_timeout)
                    self._drop(sel, waiting, conn)
                want = self._open < self.max_connections
                if want != listening:
                    if want:
                        sel.register(self.socket, selectors.EVENT_READ)
                    else:
                        sel.unregister(self.socket)
                    listening = want
                timeout = poll_interval
                if waiting:
                    timeout = max(0.0, min(timeout, min(d for _, _, d in waiting.values()) - now))
                for key, _ in sel.select(timeout):
                    if key.fileobj is self.socket:
                        self._accept(sel, waiting)
                    else:
                        self._read(sel, waiting, key.fileobj)
        finally:
            for conn in list(waiting):
                self._drop(sel, waiting, conn)
            sel.close()
            self._stopped.set()

    def _accept(self, sel, waiting):
        while self._open < self.max_connections:
            try:
                conn, addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("accept failed: %s", exc)
                return
            conn.setblocking(False)
            with self._count_lock:
                self._open += 1
            waiting[conn] = (addr, bytearray(), time.monotonic() + self.request_timeout)
            sel.register(conn, selectors.EVENT_READ)

    def _read(self, sel, waiting, conn):
        addr, buf, _ = waiting[conn]
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(sel, waiting, conn)
            return
        buf += data
        if _header_done(buf) or len(buf) > MAX_HEADER:
            sel.unregister(conn)
            del waiting[conn]
            conn.setblocking(True)
            with self._count_lock:
                self._busy.add(conn)
            self._pool.submit(self._work, conn, addr, bytes(buf))

    def _drop(self, sel, waiting, conn):
        waiting.pop(conn, None)
        try:
            sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        self._close(conn)

    def _close(self, conn):
        try:
            conn.close()
        finally:
            with self._count_lock:
                self._open -= 1
                self._busy.discard(conn)

    def _work(self, conn, addr, prefix):
        try:
            deadline = time.monotonic() + self.request_timeout
            self.RequestHandlerClass(conn, addr, self, prefix=prefix, deadline=deadline)
        except Exception as exc:  # a client that hangs up or times out mid-request
            log.debug("request from %s ended: %s: %s", addr[0] if addr else "?", type(exc).__name__, exc)
        finally:
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._close(conn)

    # ------------------------------------------------------------ stopping
    def shutdown(self):
        """Stop `serve_forever` and wait until it has returned."""
        self._stop.set()
        self._stopped.wait()

    def server_close(self):
        """Close the listening socket, cut connections still being handled and stop the workers."""
        self._stop.set()
        super().server_close()
        with self._count_lock:
            busy = list(self._busy)
        for conn in busy:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._pool.shutdown(wait=True)
