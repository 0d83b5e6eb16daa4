"""The server's shared web infrastructure, below every app: app errors and their one mapping
to JSON and error frames, validation at the edge, the API decorator and its middleware, rate
limits, the WebSocket Origin check, the Content-Security-Policy and the import map.

It imports no other app (tests/test_layers.py), so every app may import it.
"""
