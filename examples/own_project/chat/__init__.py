"""An example project's own realtime part: a chat topic and an RPC handler (README "Your own
server")."""
