"""The Mercure hub: Server-Sent Events and HTTP publishing on the server's port (docs/sse.md)."""
