"""Side-by-side benchmarks: our push server, python-socketio and the raw limits (issue 7)."""
