"""Loopback fakes of the notification providers, speaking each real wire protocol.

Every fake listens on 127.0.0.1 on a free port, runs in its own thread (so blocking clients and
the test's event loop never wait on each other), records what it received and answers the way
the real service does, including its error formats.
"""
